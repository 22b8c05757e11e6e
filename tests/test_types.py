"""The package type-checks clean (mypy, configured by [tool.mypy] in pyproject.toml): CI runs this
with the suite. scripts/typecheck.py is the one command; its cache makes a rerun take seconds."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from conftest import missing

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_is_clean():
    if importlib.util.find_spec("mypy") is None:
        missing("mypy (pip install 'dicom-hub[dev]')")
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "typecheck.py")], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
