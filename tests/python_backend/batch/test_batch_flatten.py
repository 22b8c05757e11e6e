"""The bytes-level fast reader gives exactly the rows of pydicom's reader (the oracle), file by
file, over every file of pydicom's test data and pydicom-data, whole and cut short; and it does
handle the common cases."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import sample
from dicom_hub.python_backend.batch.fastheader import read_fast
from dicom_hub.python_backend.batch.flatten import PATH_COLUMN, read_row
from factories import ct_slice, save, with_nested_sequences
from pydicom.data import get_testdata_file, get_testdata_files
from pydicom.uid import ImplicitVRLittleEndian


def _corpus() -> list[Path]:
    """pydicom's bundled test files and pydicom-data's real-world files."""
    if get_testdata_file("liver.dcm", read=False, download=False) is None:
        pytest.fail("pydicom-data is missing: install the dev extra")
    return sorted(Path(f) for f in set(get_testdata_files()) if Path(f).is_file())


def _pydicom_row(path: Path, max_binary: int = 256, include_file_meta: bool = True) -> dict[str, str] | str:
    try:
        return read_row(path, max_binary, include_file_meta, fast=False)
    except Exception as err:  # noqa: BLE001 - the oracle's verdict, compared below
        return type(err).__name__


@pytest.mark.filterwarnings("ignore")
def test_fast_rows_equal_pydicom_rows():
    corpus = _corpus()
    handled = 0
    for path in corpus:
        row = {PATH_COLUMN: str(path)}
        if read_fast(path, row, 256, True):  # declined files go to pydicom, the oracle itself
            assert row == _pydicom_row(path), path.name
            handled += 1
            small = {PATH_COLUMN: str(path)}
            assert read_fast(path, small, 0, False)
            assert small == _pydicom_row(path, 0, False), path.name
    assert handled >= 200  # every plain little-endian file of both corpora (202 of 244 when written)


@pytest.mark.filterwarnings("ignore")
def test_files_cut_short_fall_back_or_equal_pydicom(tmp_path):
    """Truncations of every file the fast reader takes: it declines (pydicom then reads the file
    and flags the cut), or, where the cut spares the whole header, gives pydicom's row."""
    target = tmp_path / "cut.dcm"
    cuts = taken = 0
    for path in _corpus():
        if not read_fast(path, {}, 256, True):
            continue
        data = path.read_bytes()
        for cut in sorted({len(data) - 1, len(data) // 2, 700, 300}):
            target.write_bytes(data[:cut])
            cuts += 1
            row = {PATH_COLUMN: str(target)}
            if read_fast(target, row, 256, True):
                taken += 1
                assert row == _pydicom_row(target), (path.name, cut)
    assert cuts > 600 and taken > 0


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "rtplan.dcm", "waveform_ecg.dcm"])
def test_common_files_take_the_fast_path(name):
    row = {}
    assert read_fast(sample(name), row, 256, True)
    assert row["SOPInstanceUID (0008,0018)"]


def test_implicit_vr_with_nested_and_private_data(tmp_path):
    ds = with_nested_sequences(ct_slice(PatientName="Ünal^Zoë"), depth=3)
    ds.SpecificCharacterSet = "ISO_IR 100"
    block = ds.private_block(0x0009, "DICOM_HUB_TEST", create=True)
    block.add_new(0x01, "LO", "private text")
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    path = tmp_path / "implicit.dcm"
    ds.save_as(path, implicit_vr=True, little_endian=True, enforce_file_format=True)
    row = {PATH_COLUMN: str(path)}
    assert read_fast(path, row, 256, True)
    assert row == read_row(path, fast=False)
    assert row["PatientName (0010,0010)"] == "Ünal^Zoë"
    assert "ReferencedImageSequence[0].ReferencedImageSequence[0].ReferencedImageSequence[0].ReferencedSOPInstanceUID (0008,1155)" in row


def test_truncated_and_foreign_charsets_fall_back(tmp_path):
    truncated = tmp_path / "t.dcm"
    truncated.write_bytes(sample("CT_small.dcm").read_bytes()[:1000])
    assert read_fast(truncated, {}, 256, True) is None
    ds = ct_slice()
    ds.SpecificCharacterSet = "ISO 2022 IR 87"
    path = save(ds, tmp_path / "jis.dcm")
    assert read_fast(path, {}, 256, True) is None
    assert read_row(path)["SpecificCharacterSet (0008,0005)"] == "ISO 2022 IR 87"


def test_headers_longer_than_the_first_read(tmp_path):
    ds = ct_slice(ImageComments="x" * 30_000)
    path = save(ds, tmp_path / "long.dcm")
    row = {PATH_COLUMN: str(path)}
    assert read_fast(path, row, 256, True, head=4096)
    assert row == read_row(path, fast=False) and len(row["ImageComments (0020,4000)"]) == 30_000


