"""Type-check the whole `dicom_hub` package with mypy (settings: `[tool.mypy]` in pyproject.toml).

`dicom_hub` is an implicit namespace package mapped from four repository folders by
`[tool.setuptools.package-dir]`, and the editable install reaches them through an import hook that
mypy does not run. So this lays the package out as it is installed, as a farm of symbolic links in
a temporary folder, and runs mypy there. The exit code is mypy's (0: clean). mypy's cache lives in
~/.cache/dicom-hub/mypy (or $DICOM_HUB_MYPY_CACHE), so a rerun checks only what changed.
Extra arguments go to mypy unchanged (e.g. `--no-incremental`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "dicom_hub"
CACHE_DIR = Path(os.environ.get("DICOM_HUB_MYPY_CACHE", Path.home() / ".cache" / "dicom-hub" / "mypy"))


def package_dirs() -> dict[str, Path]:
    """`dicom_hub.<name>` -> its folder, as [tool.setuptools.package-dir] maps them."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        mapping = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
    return {module.removeprefix(PACKAGE + "."): ROOT / folder for module, folder in mapping.items()}


def mypy_command(extra: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "mypy",
        "--config-file", str(ROOT / "pyproject.toml"),
        "--cache-dir", str(CACHE_DIR),
        "-p", PACKAGE,
        *extra,
    ]


def main(argv: list[str] | None = None) -> int:
    extra = sys.argv[1:] if argv is None else argv
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dicom-hub-typecheck-") as tmp:
        package = Path(tmp) / PACKAGE
        package.mkdir()
        for name, folder in package_dirs().items():
            (package / name).symlink_to(folder, target_is_directory=True)
        # Paths in mypy's messages are relative to the farm (dicom_hub/contract/...), which names the module.
        return subprocess.run(mypy_command(extra), cwd=tmp).returncode


if __name__ == "__main__":
    sys.exit(main())
