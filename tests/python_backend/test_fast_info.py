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
    assert taken >= 130  # the plain little-endian files of both corpora (145 when written)


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


@pytest.mark.shared_data
def test_a_real_ct_series_with_sequences_is_read_like_pydicom(shared_ct_series, monkeypatch):
    """Real scanner headers hold sequences of undefined length: the reader walks through them."""
    files = sorted(shared_ct_series.iterdir())[::6]
    for path in files:
        fast = fast_info.fast_info(path)
        assert fast is not None and fast == _pydicom_answer(path, monkeypatch), path


def test_dispatch_uses_it_for_a_plain_file(monkeypatch):
    """`info` on sample:CT_small.dcm goes through the fast path (and stays right)."""
    from dicom_hub.adapters.dispatch import dispatch

    calls = []
    original = fast_info.fast_info
    monkeypatch.setattr(fast_info, "fast_info", lambda path: calls.append(path) or original(path))
    response = dispatch({"op": "info", "input": "sample:CT_small.dcm", "backend": "python"})
    assert response.ok and calls and response.metadata["image"]["Rows"] == 128
    assert response.metadata["file"]["transfer_syntax_name"] == "Explicit VR Little Endian"


# One summary element of each VR the reader converts itself, and pieces of values to build from:
# padding, separators, signs, exponents, non-ASCII bytes (Latin-1 and UTF-8), an escape.
_ELEMENT_OF_VR = {"PN": 0x00100010, "LO": 0x00100020, "SH": 0x00200010, "CS": 0x00080008, "AS": 0x00101010, "DA": 0x00080020,
                  "TM": 0x00080030, "UI": 0x00080016, "DS": 0x00280030, "IS": 0x00200013, "US": 0x00280010}
_PIECES = [b"1", b"23", b"0.5", b"-", b"+", b"e", b"E-3", b".", b" ", b"  ", b"\0", b"\\", b"=", b"^", b"\t", b"\n", b"A", b"Doe",
           b"ORIGINAL", b"1.2.840", b"\xe9", b"\xc3\xa9", b"\xa0", b"\x85", b"\x1b$B", b"_", b"\xff"]
_ENCODINGS = {"iso8859": "", "latin_1": "ISO_IR 100", "UTF8": "ISO_IR 192"}  # pydicom's codec -> the character set


def _pydicom_summary(vr: str, value: bytes, encoding: str) -> Any:
    """`element_value` of pydicom's own conversion of the raw element (what `metadata.info` reports)."""
    from dicom_hub.python_backend._values import element_value
    from pydicom.dataelem import RawDataElement, convert_raw_data_element
    from pydicom.tag import BaseTag

    raw = RawDataElement(BaseTag(_ELEMENT_OF_VR[vr]), vr, len(value), value, 0, False, True)
    with metadata._values_unchecked(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return element_value(convert_raw_data_element(raw, encoding=[encoding]))
        except Exception as err:
            return f"pydicom raised {type(err).__name__}"


def test_each_value_converter_equals_pydicoms_on_random_values():
    """Random values of every VR the reader converts, in each character set it reads: where it
    answers, it answers as pydicom (a value that ends up empty counts as absent, as `info` leaves
    it out); it gives up on the rest."""
    import random

    rng = random.Random(20261202)
    taken = tried = 0
    for vr in _ELEMENT_OF_VR:
        for encoding in _ENCODINGS:
            values = {b"", *(b"".join(rng.choices(_PIECES, k=rng.randint(1, 8))) for _ in range(400))}
            if vr == "US":
                values |= {bytes(rng.randrange(256) for _ in range(rng.randint(0, 9))) for _ in range(100)}
            for value in values:
                tried += 1
                try:
                    ours = fast_info._summary_value(vr, value, encoding)
                except fast_info._GiveUp:
                    continue
                taken += 1
                theirs = _pydicom_summary(vr, value, encoding)
                assert (ours if ours not in ("", []) else None) == (theirs if theirs not in ("", []) else None), (vr, value, encoding)
    assert taken > tried // 3, (taken, tried)


def test_a_file_in_each_character_set_is_read_like_pydicom(tmp_path, monkeypatch):
    """Latin-1 and UTF-8 names, one character set the reader does not decode (it steps aside), and
    Implicit VR Little Endian (VRs from the dictionary), written by pydicom."""
    from pydicom import dcmread
    from pydicom.uid import ImplicitVRLittleEndian

    cases = {"ISO_IR 100": "Müller^Jürgen", "ISO_IR 192": "Ωmega^Łukasz", "ISO_IR 144": "Иванов^Иван"}
    answered = 0
    for charset, name in cases.items():
        for implicit in (False, True):
            ds = dcmread(get_testdata_file("CT_small.dcm"))
            ds.SpecificCharacterSet = charset
            ds.PatientName = name
            ds.InstitutionName = name.replace("^", " ")
            if implicit:
                ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
            path = tmp_path / f"{len(charset)}-{implicit}.dcm"
            ds.save_as(path, enforce_file_format=True)
            fast = fast_info.fast_info(path)
            if charset == "ISO_IR 144":
                assert fast is None
                continue
            answered += 1
            assert fast is not None and fast["patient"]["PatientName"] == name, (charset, implicit, fast)
            assert fast == _pydicom_answer(path, monkeypatch), (charset, implicit)
    assert answered == 4


def test_it_never_imports_pydicom():
    """pydicom's tables are read from their files; the package itself (numpy, the pixel plugins)
    is never imported by this path."""
    import subprocess
    import sys

    code = (
        "import sys; from pathlib import Path; from dicom_hub.python_backend.fast_info import fast_info; "
        "info = fast_info(Path(sys.argv[1])); "
        "print(info['image']['Rows'], info['file']['sop_class_name'], sorted(m for m in sys.modules if m.split('.')[0] in ('pydicom', 'numpy')))"
    )
    run = subprocess.run([sys.executable, "-c", code, get_testdata_file("CT_small.dcm")], capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == "128 CT Image Storage []", run.stdout + run.stderr
