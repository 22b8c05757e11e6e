"""What a wheel would ship: every Python package under the mapped folders, and the contract's data."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_is_listed():
    listed = set(CONFIG["packages"])
    found = set()
    for name, folder in CONFIG["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            found.add(".".join([name, *relative.parts]))
    assert found == listed, f"missing: {sorted(found - listed)}, stale: {sorted(listed - found)}"


def test_contract_data_is_package_data():
    patterns = CONFIG["package-data"]["dicom_hub.contract"]
    contract = ROOT / "contract"
    data = [p.relative_to(contract).as_posix() for p in contract.rglob("*") if p.is_file() and p.suffix in (".json", ".tsv", ".md")]
    unshipped = [d for d in data if not any(fnmatch.fnmatch(d, pat) and d.count("/") == pat.count("/") for pat in patterns)]
    assert not unshipped, f"contract files a wheel would leave out: {unshipped}"
