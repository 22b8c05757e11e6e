"""File rules: sample resolution, input kinds, output protection, atomic writes."""

from __future__ import annotations

import pytest
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.files import atomic_output, resolve_inputs, resolve_output, resolve_sample


def _code(call) -> ErrorCode:
    with pytest.raises(HubError) as info:
        call()
    return info.value.code


def test_sample_names_cannot_escape_the_sample_folder():
    assert _code(lambda: resolve_sample("../../etc/passwd")) is ErrorCode.INVALID_REQUEST
    assert _code(lambda: resolve_sample("..")) is ErrorCode.INVALID_REQUEST
    assert _code(lambda: resolve_sample("no_such_file.dcm")) is ErrorCode.INPUT_NOT_FOUND
    assert resolve_sample("CT_small.dcm").name == "CT_small.dcm"


def test_input_kinds(tmp_path):
    f = tmp_path / "a.dcm"
    f.write_bytes(b"x")
    assert resolve_inputs(str(f), "file", "info") == (f,)
    assert _code(lambda: resolve_inputs(str(tmp_path), "file", "info")) is ErrorCode.INVALID_REQUEST
    assert _code(lambda: resolve_inputs(str(f), "directory", "volume")) is ErrorCode.INVALID_REQUEST
    assert _code(lambda: resolve_inputs(None, "file", "info")) is ErrorCode.INVALID_REQUEST
    assert _code(lambda: resolve_inputs(str(f), "none", "echo")) is ErrorCode.INVALID_REQUEST
    assert _code(lambda: resolve_inputs([str(f), str(f)], "file", "info")) is ErrorCode.INVALID_REQUEST
    assert _code(lambda: resolve_inputs(str(tmp_path / "nope"), "file", "info")) is ErrorCode.INPUT_NOT_FOUND


def test_output_never_clobbers(tmp_path):
    src = tmp_path / "in.dcm"
    src.write_bytes(b"x")
    out = tmp_path / "out.dcm"
    out.write_bytes(b"old")
    assert _code(lambda: resolve_output(str(out), "file", True, "transcode", (src,), False)) is ErrorCode.OUTPUT_EXISTS
    assert resolve_output(str(out), "file", True, "transcode", (src,), True) == out
    assert _code(lambda: resolve_output(str(src), "file", True, "transcode", (src,), True)) is ErrorCode.INVALID_REQUEST
    assert _code(lambda: resolve_output(None, "file", True, "transcode", (src,), False)) is ErrorCode.INVALID_REQUEST
    assert _code(lambda: resolve_output(str(out), "none", False, "info", (src,), False)) is ErrorCode.INVALID_REQUEST


def test_output_folder_inside_input_folder_is_refused(tmp_path):
    assert _code(lambda: resolve_output(str(tmp_path / "sub"), "directory", True, "organize", (tmp_path,), False)) is ErrorCode.INVALID_REQUEST


def test_atomic_output_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "result.dcm"
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("backend died")
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_refuses_a_file_that_appeared(tmp_path):
    target = tmp_path / "result.dcm"
    with pytest.raises(HubError) as info, atomic_output(target) as tmp:
        tmp.write_bytes(b"new")
        target.write_bytes(b"someone else")
    assert info.value.code is ErrorCode.OUTPUT_EXISTS
    assert target.read_bytes() == b"someone else"
    assert [p.name for p in tmp_path.iterdir()] == ["result.dcm"]


def test_atomic_output_replaces_with_overwrite(tmp_path):
    target = tmp_path / "result.dcm"
    target.write_bytes(b"old")
    with atomic_output(target, overwrite=True) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["result.dcm"]
