"""Write `contract/data/dimse-status-pynetdicom-<version>.tsv`: what each DIMSE status code means
(category and the standard's text), per service, so every backend describes a status the same way
without importing pynetdicom (`dicom_hub.contract.dicom.network.status`).

The tables are pynetdicom's (`pynetdicom.status`, transcribed from PS3.7 Annex C and the service
classes of PS3.4), read from the installed pynetdicom, which must be the version named below. Runs of
consecutive codes with the same meaning are stored as one row (`first`..`last`). `--check` fails when
the committed file differs.

    .venv/bin/python scripts/gen_status_table.py [--check]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

VERSION = "3.0.4"
OUTPUT = Path(__file__).resolve().parents[1] / "contract" / "data" / f"dimse-status-pynetdicom-{VERSION}.tsv"
# Service name used in the contract's metadata -> pynetdicom's table.
TABLES = {
    "general": "GENERAL_STATUS",
    "C-STORE": "STORAGE_SERVICE_CLASS_STATUS",
    "C-FIND": "QR_FIND_SERVICE_CLASS_STATUS",
    "C-MOVE": "QR_MOVE_SERVICE_CLASS_STATUS",
    "C-GET": "QR_GET_SERVICE_CLASS_STATUS",
    "worklist C-FIND": "MODALITY_WORKLIST_SERVICE_CLASS_STATUS",
}


def rows() -> list[str]:
    import pynetdicom
    from pynetdicom import status

    if pynetdicom.__version__ != VERSION:
        raise SystemExit(f"pynetdicom {pynetdicom.__version__} is installed; this table is made from {VERSION} (change VERSION to regenerate)")
    lines = []
    for service, name in TABLES.items():
        table = getattr(status, name)
        runs: list[list] = []
        for code in sorted(table):
            if runs and runs[-1][1] == code - 1 and runs[-1][2] == table[code]:
                runs[-1][1] = code
            else:
                runs.append([code, code, table[code]])
        lines += [f"{service}\t{first:04X}\t{last:04X}\t{category}\t{text}" for first, last, (category, text) in runs]
    return lines


def render() -> str:
    header = [
        f"# DIMSE status meanings per service, from pynetdicom {VERSION} (pynetdicom.status: PS3.7 Annex C, PS3.4).",
        "# Written by scripts/gen_status_table.py; read by contract/dicom/network/status.py. Codes are hex;",
        "# `general` applies to every service, a service's own rows win over it.",
        "service\tfirst\tlast\tcategory\ttext",
    ]
    return "\n".join(header + rows()) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the committed table differs")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text(encoding="utf-8") != text:
            print(f"{OUTPUT} is out of date: run scripts/gen_status_table.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
