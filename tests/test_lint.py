"""The code base stays lint-clean (ruff, configured in pyproject.toml): CI runs this with the suite."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import missing

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_is_clean():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        missing("ruff (pip install 'dicom-hub[dev]')")
    result = subprocess.run([ruff, "check", str(ROOT)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
