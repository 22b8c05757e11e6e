"""The bytes-level fast reader gives exactly the rows of pydicom's reader (the oracle), file by
file, over every file pydicom bundles; and it does handle the common cases."""

from __future__ import annotations

import pytest
from conftest import sample
from dicom_hub.contract.files import sample_dir
from dicom_hub.python_backend.batch.fastheader import read_fast
from dicom_hub.python_backend.batch.flatten import PATH_COLUMN, read_row
from factories import ct_slice, save, with_nested_sequences
from pydicom.uid import ImplicitVRLittleEndian

BUNDLED = sorted(p for p in sample_dir().rglob("*") if p.is_file())


@pytest.mark.filterwarnings("ignore")
def test_fast_rows_equal_pydicom_rows():
    handled = []
    for path in BUNDLED:
        row = {PATH_COLUMN: str(path)}
        if read_fast(path, row, 256, True):  # declined files go to pydicom, the oracle itself
            assert row == read_row(path, fast=False), path.name
            handled.append(path)
    assert len(handled) > len(BUNDLED) / 2


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


