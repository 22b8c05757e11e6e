"""`dicom-hub backends`: every registered adapter with language, availability, version and ops."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def describe_backends() -> list[dict]:
    from dicom_hub.adapters.registry import all_adapters

    rows = []
    for adapter in all_adapters():
        availability = adapter.availability
        rows.append(
            {
                "name": adapter.name,
                "language": adapter.language,
                "toolkit": adapter.toolkit,
                "available": availability.ok,
                "version": adapter.version(),
                "reason": availability.reason,
                "install": None if availability.ok else availability.hint,
                "ops": sorted(adapter.capabilities()),
                "partial": {op: s.note for op, s in adapter.capabilities().items() if s.note},
                "unsupported": dict(sorted(adapter.unsupported.items())),
            }
        )
    return rows


def run(args: argparse.Namespace) -> int:
    rows = describe_backends()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        state = f"available, {row['version']}" if row["available"] else f"UNAVAILABLE: {row['reason']}"
        print(f"{row['name']:<10} {row['language']:<7} {row['toolkit']:<14} {state}")
        if not row["available"]:
            print(f"{'':<10} install: {row['install']}")
        print(f"{'':<10} ops: {', '.join(row['ops'])}")
    return 0
