"""`dicom-hub doctor`: an environment report to paste into a bug report (like pydicom.env_info)."""

from __future__ import annotations

import argparse
import json
import platform
import sys

PACKAGES = (
    "dicom-hub", "pydicom", "pynetdicom", "numpy", "pillow", "fastjsonschema",
    "pylibjpeg", "pylibjpeg-libjpeg", "pylibjpeg-openjpeg", "pylibjpeg-rle", "pyjpegls", "python-gdcm",
    "nibabel", "pyarrow", "tqdm", "dicomweb-client", "requests",
)  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def environment() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    from dicom_hub.contract import CONTRACT_VERSION
    from dicom_hub.interface.commands.backends import describe_backends

    packages: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    backends = {row["name"]: row["version"] if row["available"] else f"unavailable: {row['reason']}" for row in describe_backends()}
    return {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "contract": CONTRACT_VERSION,
        "packages": packages,
        "backends": backends,
    }


def run(args: argparse.Namespace) -> int:
    env = environment()
    if args.json:
        print(json.dumps(env, indent=2))
        return 0
    print(f"platform  {env['platform']}\npython    {env['python']}\ncontract  {env['contract']}\n\npackages")
    for name, ver in env["packages"].items():
        print(f"  {name:<20} {ver or '(not installed)'}")
    print("\nbackends")
    for name, state in env["backends"].items():
        print(f"  {name:<20} {state}")
    return 0
