"""Write `contract/data/ps3.3-iods-<source>.json.gz`: which attributes each IOD of PS3.3 defines, and
their types, so de-identification can tell what an IOD needs (PS3.15 E.1.1) without a hand-made list.

The tables come from highdicom's `_standard/` folder (PS3.3 IODs, modules and attributes as extracted
from the standard by innolitics/dicom-standard). The wheel is downloaded from PyPI and read as a zip;
nothing is installed. The output is compacted: each attribute path ("Seq>Seq>Keyword") is stored once,
and each module is one string of "index:type" pairs, so loading the file parses few JSON values and a
reader splits only the modules it needs. `--check` fails when the committed file differs.

    .venv/bin/python scripts/gen_iod_table.py [--check]
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

SOURCE = "highdicom==0.28.2"
OUTPUT = Path(__file__).resolve().parents[1] / "contract" / "data" / "ps3.3-iods-highdicom-0.28.2.json.gz"


def download_wheel(folder: Path) -> Path:
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "-d", str(folder), SOURCE]
    subprocess.run(argv, check=True)
    return next(folder.glob("highdicom-*.whl"))


def read_tables(wheel: Path) -> tuple[dict, dict, dict]:
    with zipfile.ZipFile(wheel) as archive:
        def load(name: str) -> dict:
            return json.loads(archive.read(f"highdicom/_standard/{name}.json"))

        return load("sop_class_iod_map"), load("iod_module_map"), load("module_attribute_map")


def compact(sop_classes: dict, iods: dict, modules: dict) -> dict:
    """Keep only modules some IOD uses; intern attribute paths; one "index:type ..." string per module."""
    used = sorted({module["key"] for entries in iods.values() for module in entries})
    paths: dict[str, int] = {}
    compact_modules = {}
    for name in used:
        rows = []
        for attribute in modules.get(name, ()):  # a few IODs name a module the tables do not define
            path = ">".join([*attribute["path"], attribute["keyword"]])
            kind = attribute["type"] if attribute["type"] != "None" else "3"
            rows.append(f"{paths.setdefault(path, len(paths))}:{kind}")
        compact_modules[name] = " ".join(rows)
    return {
        "source": f"{SOURCE} highdicom/_standard (PS3.3 via innolitics/dicom-standard)",
        "sop_classes": dict(sorted(sop_classes.items())),
        "iods": {iod: [module["key"] for module in entries] for iod, entries in sorted(iods.items())},
        "paths": list(paths),
        "modules": compact_modules,
    }


def render(table: dict) -> bytes:
    text = json.dumps(table, separators=(",", ":"), sort_keys=False).encode()
    return gzip.compress(text, compresslevel=9, mtime=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed table differs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        data = render(compact(*read_tables(download_wheel(Path(folder)))))
    if args.check:
        same = OUTPUT.exists() and gzip.decompress(OUTPUT.read_bytes()) == gzip.decompress(data)
        print(f"{OUTPUT.name}: {'up to date' if same else 'DIFFERS'}")
        return 0 if same else 1
    OUTPUT.write_bytes(data)
    print(f"wrote {OUTPUT} ({len(data):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
