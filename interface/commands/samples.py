"""`dicom-hub samples`: the bundled sample files (pydicom's test data) usable as `sample:<name>`."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON list")


def run(args: argparse.Namespace) -> int:
    from dicom_hub.contract.files import sample_names

    names = sample_names()
    print(json.dumps(names) if args.json else "\n".join(f"sample:{n}" for n in names))
    return 0
