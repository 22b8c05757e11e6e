"""Side files (`mapping_file`, `key_file`) can never land on an input, an output or each other:
refused with `invalid_request` naming both paths, before anything is written."""

from __future__ import annotations

import os
from pathlib import Path

import pydicom
import pytest
from conftest import expect_error, expect_ok
from factories import ct_slice, save

KEY = "side-file-key-0123456789"


def request(source: Path, out: Path, op: str = "anonymize", **options) -> dict:
    return {"op": op, "input": str(source), "output": str(out), "options": options}


def refused(req: dict, *paths: Path) -> str:
    """The op fails with invalid_request and its message names every path in `paths`."""
    message = expect_error(req, "invalid_request")["error"]["message"]
    for path in paths:
        assert str(path.resolve()) in message, f"{path} is not named in: {message}"
    return message


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return save(ct_slice(PatientID="SIDE001"), tmp_path / "in" / "a.dcm")


def test_mapping_file_on_the_output_is_refused_and_nothing_is_written(tmp_path: Path, source: Path) -> None:
    out = tmp_path / "out.dcm"
    refused(request(source, out, key=KEY, mapping_file=str(out)), out)
    assert not out.exists()
    # with overwrite, over an existing output, through a symbolic link: the same refusal
    out.write_bytes(b"previous")
    link = tmp_path / "link.json"
    link.symlink_to(out)
    refused(request(source, out, key=KEY, mapping_file=str(link), overwrite=True), out)
    assert out.read_bytes() == b"previous"


def test_mapping_file_on_the_input_is_refused_even_with_overwrite(tmp_path: Path, source: Path) -> None:
    before = source.read_bytes()
    out = tmp_path / "out.dcm"
    refused(request(source, out, key=KEY, mapping_file=str(source), overwrite=True), source)
    assert source.read_bytes() == before and not out.exists()


def test_key_file_on_the_output_or_input_is_refused(tmp_path: Path, source: Path) -> None:
    out = tmp_path / "out.dcm"
    refused(request(source, out, key_file=str(out)), out)
    assert not out.exists()
    before = source.read_bytes()
    refused(request(source, out, key_file=str(source)), source)
    assert source.read_bytes() == before and not out.exists()


def test_mapping_file_and_key_file_must_differ(tmp_path: Path, source: Path) -> None:
    side = tmp_path / "secrets.txt"
    refused(request(source, tmp_path / "out.dcm", key_file=str(side), mapping_file=str(side)), side)
    assert not side.exists() and not (tmp_path / "out.dcm").exists()


def test_a_foreign_mapping_file_is_never_replaced_even_with_overwrite(tmp_path: Path, source: Path) -> None:
    foreign = tmp_path / "notes.json"
    foreign.write_text("[1, 2, 3]")
    out = tmp_path / "out.dcm"
    expect_error(request(source, out, key=KEY, mapping_file=str(foreign), overwrite=True), "output_exists")
    assert foreign.read_text() == "[1, 2, 3]" and not out.exists()


def test_batch_side_files_must_stay_out_of_the_input_and_output_trees(tmp_path: Path, source: Path) -> None:
    save(ct_slice(PatientID="SIDE002", seed=1), tmp_path / "in" / "sub" / "b.dcm")
    out = tmp_path / "out"
    inside_output = out / "map.json"
    refused(request(source.parent, out, "batch_anonymize", key=KEY, mapping_file=str(inside_output)), inside_output, out)
    assert not out.exists()
    inside_input = source.parent / "sub" / "key.txt"
    refused(request(source.parent, out, "batch_anonymize", key_file=str(inside_input)), inside_input, source.parent)
    assert not inside_input.exists() and not out.exists()


def test_distinct_side_files_work(tmp_path: Path, source: Path) -> None:
    """The check does not refuse the ordinary case: side files beside the data."""
    key_file, mapping = tmp_path / "key.txt", tmp_path / "map.json"
    out = tmp_path / "out.dcm"
    expect_ok(request(source, out, key_file=str(key_file), mapping_file=str(mapping)))
    assert pydicom.dcmread(out).PatientIdentityRemoved == "YES"
    assert "SIDE001" in mapping.read_text() and "SIDE001" not in out.read_text(errors="replace")
    assert oct(os.stat(key_file).st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("option", ["key_file", "mapping_file"])
def test_a_side_file_that_is_a_device_or_fifo_is_refused_at_once(tmp_path: Path, source: Path, option: str) -> None:
    """Reading /dev/zero as a key never ends and a FIFO waits forever: both are refused before any reading."""
    fifo = tmp_path / "side.fifo"
    os.mkfifo(fifo)
    out = tmp_path / "out.dcm"
    for special in (Path("/dev/zero"), fifo):
        message = expect_error(request(source, out, **{option: str(special)}), "invalid_request")["error"]["message"]
        assert str(special) in message and ("device" in message or "FIFO" in message)
        assert not out.exists()
