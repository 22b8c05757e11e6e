"""`dicom-hub ops [OP]`: the catalog; for one op, its options schema and which backends serve it."""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("op", nargs="?", help="show this op in full")
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    from dicom_hub.contract.catalog import get_op, load_catalog
    from dicom_hub.contract.errors import HubError

    if args.op is None:
        catalog = load_catalog()
        if args.json:
            print(json.dumps({n: _describe(s) for n, s in catalog.items()}, indent=2))
            return 0
        width = max(map(len, catalog))
        family = None
        for name, spec in sorted(catalog.items(), key=lambda kv: (kv[1].family, kv[0])):
            if spec.family != family:
                family = spec.family
                print(f"\n[{family}]")
            print(f"  {name:<{width}}  {spec.input:>9} -> {spec.output:<9}  {spec.summary}")
        return 0
    try:
        spec = get_op(args.op)
    except HubError as err:
        print(f"dicom-hub: {err.message}; {err.hint}", file=sys.stderr)
        return 2
    described = _describe(spec)
    described["backends"] = _backend_support(spec.name)
    if args.json:
        print(json.dumps(described, indent=2))
        return 0
    print(f"{spec.name}: {spec.summary}")
    print(f"  input: {spec.input}   output: {spec.output}{' (required)' if spec.output_required else ''}")
    print("  options:")
    for name, schema in spec.options_schema.get("properties", {}).items():
        desc = schema.get("description", "")
        kind = schema.get("type") or ("one of " + "|".join(map(str, schema["enum"])) if "enum" in schema else "")
        default = f" (default {json.dumps(schema['default'])})" if "default" in schema else ""
        print(f"    {name}: {kind}{default}  {desc}")
    print("  backends:")
    for name, state in described["backends"].items():
        print(f"    {name:<10} {state}")
    return 0


def _describe(spec) -> dict:
    return {
        "family": spec.family,
        "summary": spec.summary,
        "input": spec.input,
        "output": spec.output,
        "output_required": spec.output_required,
        "options": spec.options_schema,
    }


def _backend_support(op: str) -> dict[str, str]:
    from dicom_hub.adapters.registry import all_adapters

    states = {}
    for adapter in all_adapters():
        support = adapter.support(op)
        if support is None:
            states[adapter.name] = f"unsupported: {adapter.unsupported_reason(op)}"
        else:
            honoured = "all options" if support.options is None else "options: " + (", ".join(sorted(support.options)) or "none")
            note = f" ({support.note})" if support.note else ""
            ready = "" if adapter.available() else " [not installed]"
            states[adapter.name] = f"supported, {honoured}{note}{ready}"
    return states
