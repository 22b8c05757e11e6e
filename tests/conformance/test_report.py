"""`dicom-hub conformance` end to end: the gate's exit code, and the HTML report as a browser renders it."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import require_tool

CLI = [sys.executable, "-m", "dicom_hub.interface", "conformance"]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_report_renders_in_chromium(tmp_path):
    chromium = require_tool("chromium")
    report = tmp_path / "report"
    result = subprocess.run([*CLI, "--backends", "python", "--specs", "info.*", "--report", str(report)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "python: 4 passed / 0 failed" in result.stdout
    data = json.loads((report / "report.json").read_text())
    assert {c["status"] for c in data["cells"]} == {"pass"}
    dom = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", (report / "report.html").as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert 'id="matrix"' in dom
    assert dom.count('data-status="pass"') == 4, "the browser DOM holds one rendered cell per spec"
    assert "python: 4 passed" in dom


def test_gate_fails_on_regression(tmp_path):
    expected = tmp_path / "expected.json"
    expected.write_text(json.dumps({"cells": {}}))
    ok = subprocess.run([*CLI, "--backends", "python", "--specs", "info.ct-small", "--expect", str(expected)], capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # A record that says the cell is unsupported must be corrected when the backend serves it.
    expected.write_text(json.dumps({"cells": {"info.ct-small": {"python": "unsupported"}}}))
    stale = subprocess.run([*CLI, "--backends", "python", "--specs", "info.ct-small", "--expect", str(expected)], capture_output=True, text=True, timeout=300)
    assert stale.returncode == 1
    assert "recorded unsupported, now served" in stale.stdout


def test_unknown_backend_is_a_usage_error():
    result = subprocess.run([*CLI, "--backends", "nosuch"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "unknown backend" in result.stderr


def test_gate_fails_on_a_new_failing_cell(tmp_path):
    specs = tmp_path / "specs"
    specs.mkdir()
    wrong = {"id": "local.wrong-rows", "request": {"op": "info", "input": "sample:CT_small.dcm"}, "expect": [{"check": "metadata_equals", "path": "image.Rows", "value": 999}]}
    (specs / "local.json").write_text(json.dumps(wrong))
    result = subprocess.run([*CLI, "--backends", "python", "--specs", "local.*", "--spec-dir", str(specs)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "regression: local.wrong-rows x python: none -> fail" in result.stdout
    assert "expected 999, got 128" in result.stdout


def test_a_spec_that_cannot_fail_is_rejected(tmp_path):
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "weak.json").write_text(json.dumps({"id": "local.weak", "request": {"op": "info", "input": "sample:CT_small.dcm"}, "expect": [{"check": "ok"}]}))
    result = subprocess.run([*CLI, "--backends", "python", "--spec-dir", str(specs)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "cannot fail" in result.stderr
