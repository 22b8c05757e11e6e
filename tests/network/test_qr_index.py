"""The SQLite index of `dicom-hub scp` on its own (no network): one row per SOP instance however
often it arrives, files changed or removed while the SCP was down are noticed, and a damaged or
foreign index file is rebuilt from the files."""

from __future__ import annotations

import shutil
import sqlite3

from conftest import sample
from dicom_hub.contract.dicom.network.storage import instance_path
from dicom_hub.python_backend.network.index import INDEX_NAME, InstanceIndex
from pydicom import dcmread


def place(root, name: str, **changes):
    """Copy a sample file into the store layout (optionally with other UIDs); its path."""
    ds = dcmread(sample(name))
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    path = instance_path(root, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path)
    return path


def test_same_instance_twice_keeps_one_row_and_one_file(tmp_path):
    index = InstanceIndex(tmp_path)
    first = place(tmp_path, "CT_small.dcm")
    index.add(first)
    index.add(first)
    assert index.count() == 1
    # The same SOP Instance UID again, now filed under another series: the old copy goes.
    moved = place(tmp_path, "CT_small.dcm", SeriesInstanceUID="1.2.826.0.1.3680043.8.498.1")
    index.add(moved)
    assert index.count() == 1 and moved.exists() and not first.exists()
    assert [i.path for i in index.candidates()] == [moved]


def test_sync_sees_what_changed_while_stopped(tmp_path):
    index = InstanceIndex(tmp_path)
    ct, mr = place(tmp_path, "CT_small.dcm"), place(tmp_path, "MR_small.dcm")
    report = index.sync()
    assert (report.added, report.removed, index.count()) == (2, 0, 2)
    assert index.sync().added == 0  # nothing changed: nothing re-read
    index.close()
    ct.unlink()
    shutil.copyfile(sample("MR_small_RLE.dcm"), mr)  # same instance, other bytes
    index = InstanceIndex(tmp_path)
    report = index.sync()
    assert (report.added, report.removed, index.count()) == (1, 1, 1)
    assert [i.transfer_syntax for i in index.candidates()] == [str(dcmread(sample("MR_small_RLE.dcm")).file_meta.TransferSyntaxUID)]


def test_a_damaged_or_foreign_index_is_rebuilt(tmp_path):
    place(tmp_path, "CT_small.dcm")
    (tmp_path / INDEX_NAME).write_bytes(b"garbage, not SQLite")
    index = InstanceIndex(tmp_path)
    assert index.sync().rebuilt and index.count() == 1
    index.close()
    with sqlite3.connect(tmp_path / INDEX_NAME) as db:
        db.execute("UPDATE meta SET value = '0' WHERE key = 'schema'")  # an older layout
    index = InstanceIndex(tmp_path)
    assert index.count() == 0 and index.sync().added == 1 and index.count() == 1


def test_a_deflated_file_is_indexed_from_a_re_encoded_header(tmp_path):
    original = dcmread(sample("image_dfl.dcm"))
    assert original.file_meta.TransferSyntaxUID.is_deflated
    index = InstanceIndex(tmp_path)
    path = place(tmp_path, "image_dfl.dcm")
    assert dcmread(path).file_meta.TransferSyntaxUID.is_deflated
    index.add(path)
    (row,) = index.candidates()
    header = row.header()
    assert (row.implicit_vr, row.little_endian) == (False, True)
    assert header.SOPInstanceUID == original.SOPInstanceUID and header.Rows == original.Rows
    assert "PixelData" not in header
