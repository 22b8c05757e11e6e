"""The README's backend matrix is generated from the op tables (scripts/gen_backend_matrix.py) and
says what `dicom-hub ops` says."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from dicom_hub.contract.catalog import DISPATCHER_OPTIONS, load_catalog

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gen_backend_matrix.py"
START, END = "<!-- backend-matrix:start -->", "<!-- backend-matrix:end -->"


def generate(readme: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--readme", str(readme), *args], capture_output=True, text=True, timeout=120)


def matrix_cells(text: str) -> dict[tuple[str, str], str]:
    """(op, backend) -> cell, from the markdown table between the markers."""
    block = text[text.index(START) : text.index(END)]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in block.splitlines() if line.startswith("|")]
    header, body = rows[0], rows[2:]
    return {(row[1].strip("`"), backend): value for row in body for backend, value in zip(header[2:], row[2:], strict=True)}


def cell_of_state(op: str, state: str) -> str:
    """What the matrix must show for one `dicom-hub ops <op>` backend state."""
    if state.startswith("unsupported: "):
        return "no"
    own = load_catalog()[op].option_names - DISPATCHER_OPTIONS
    if state.startswith("supported, all options"):
        return "yes"
    listed = re.match(r"supported, options: (none|[a-z0-9_]+(?:, [a-z0-9_]+)*)", state)
    assert listed, state
    honoured = set() if listed[1] == "none" else set(listed[1].split(", "))
    return "yes" if honoured >= own else f"{len(honoured & own)}/{len(own)}"


def test_readme_has_the_generated_matrix():
    """README.md holds the markers, and between them the matrix the op tables give."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert START in readme and END in readme, f"README.md needs the lines {START} and {END} where the backend matrix belongs"
    result = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_the_matrix_says_what_dicom_hub_ops_says(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# before\n\n{START}\nstale\n{END}\n\nafter\n", encoding="utf-8")
    result = generate(readme)
    assert result.returncode == 0, result.stderr
    text = readme.read_text(encoding="utf-8")
    assert text.startswith(f"# before\n\n{START}\n") and text.endswith(f"{END}\n\nafter\n") and "stale" not in text
    cells = matrix_cells(text)
    from dicom_hub.interface.commands.ops import _backend_support

    for op in load_catalog():
        for backend, state in _backend_support(op).items():
            assert cells[(op, backend)] == cell_of_state(op, state), (op, backend, state)
    assert len(cells) == len(load_catalog()) * 6
    # The command line, for one op, agrees too.
    run = subprocess.run([sys.executable, "-m", "dicom_hub.interface", "ops", "transcode", "--json"], capture_output=True, text=True, timeout=120)
    for backend, state in json.loads(run.stdout)["backends"].items():
        assert cells[("transcode", backend)] == cell_of_state("transcode", state)
    assert generate(readme, "--check").returncode == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"{START}\n| old |\n{END}\n", "out of date"),
        ("# no markers\n", "needs one line"),
        (f"{END}\n{START}\n", "needs one line"),
    ],
    ids=["stale", "no-markers", "markers-reversed"],
)
def test_check_fails_on_a_stale_or_missing_matrix(tmp_path, text, message):
    readme = tmp_path / "README.md"
    readme.write_text(text, encoding="utf-8")
    result = generate(readme, "--check")
    assert result.returncode == 1 and message in result.stderr
    assert readme.read_text(encoding="utf-8") == text
