"""The fast `info` path (`python_backend/fast_info.py`) answers exactly what pydicom's path answers,
on every file of pydicom's test data and pydicom-data it takes, whole and cut short; on the rest it
steps aside (None) and pydicom's path answers, errors included."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
from dicom_hub.contract.catalog import get_op
from dicom_hub.contract.errors import HubError
from dicom_hub.contract.job import Job
from dicom_hub.python_backend import fast_info, metadata
from pydicom.data import get_testdata_file, get_testdata_files


def _corpus() -> list[Path]:
    if get_testdata_file("liver.dcm", read=False, download=False) is None:
        pytest.fail("pydicom-data is missing: install the dev extra")
    return sorted(Path(f) for f in set(get_testdata_files()) if Path(f).is_file())


def _pydicom_answer(path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """`info` through dcmread: its metadata, or the error code it raises."""
    with monkeypatch.context() as patch, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        patch.setattr(fast_info, "fast_info", lambda path: None)
        try:
            return metadata.info(Job(op="info", inputs=(path,), output=None, defaults=get_op("info").defaults)).metadata
        except HubError as err:
            return err.code.value


def test_fast_info_equals_pydicom_on_every_file_it_takes(monkeypatch):
    taken = 0
    for path in _corpus():
        fast = fast_info.fast_info(path)
        if fast is None:
            continue
        taken += 1
        assert fast == _pydicom_answer(path, monkeypatch), path
    assert taken >= 100  # the plain little-endian files of both corpora (123 when written)


def test_a_file_cut_short_is_answered_like_pydicom(tmp_path, monkeypatch):
    """Truncations of every file the fast path takes: it gives up (pydicom reports the damage),
    or, where the cut spares everything pydicom reads, gives pydicom's answer."""
    taken = cuts = 0
    target = tmp_path / "cut.dcm"
    for path in _corpus():
        if fast_info.fast_info(path) is None:
            continue
        data = path.read_bytes()
        for cut in sorted({len(data) - 1, len(data) // 2, 1000, 300, 140}):
            target.write_bytes(data[:cut])
            cuts += 1
            fast = fast_info.fast_info(target)
            if fast is not None:
                taken += 1
                assert fast == _pydicom_answer(target, monkeypatch), (path, cut)
    assert cuts >= 400 and taken < cuts  # it did refuse most damaged files


def test_dispatch_uses_it_for_a_plain_file(monkeypatch):
    """`info` on sample:CT_small.dcm goes through the fast path (and stays right)."""
    from dicom_hub.adapters.dispatch import dispatch

    calls = []
    original = fast_info.fast_info
    monkeypatch.setattr(fast_info, "fast_info", lambda path: calls.append(path) or original(path))
    response = dispatch({"op": "info", "input": "sample:CT_small.dcm", "backend": "python"})
    assert response.ok and calls and response.metadata["image"]["Rows"] == 128
    assert response.metadata["file"]["transfer_syntax_name"] == "Explicit VR Little Endian"
