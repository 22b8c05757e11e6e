"""Checks that judge files must be able to say no: each is run on a right and a wrong output."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import expect_ok, sample
from dicom_hub.adapters.conformance.checks import CHECKS, CheckContext, RunResult


def judge(check: str, source: Path, output: Path) -> str | None:
    run = RunResult(response={"output_files": [str(output)]}, output=output)
    return CHECKS[check](CheckContext(run, [source], lambda name: None), {"check": check})


def test_deidentified_refuses_a_copy_and_accepts_the_engine_output(tmp_path: Path) -> None:
    source = sample("CT_small.dcm")
    copy = Path(shutil.copy(source, tmp_path / "copy.dcm"))
    problem = judge("deidentified", source, copy)
    assert problem is not None and "PatientName (0010,0010)" in problem and "(0009,0010)" in problem
    anonymized = tmp_path / "anon.dcm"
    expect_ok({"op": "anonymize", "input": str(source), "output": str(anonymized)})
    assert judge("deidentified", source, anonymized) is None
