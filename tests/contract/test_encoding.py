"""The file meta reader every byte-level reader shares, checked against pydicom's on its own test files."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from dicom_hub.contract.dicom.encoding import (
    LONG_VRS,
    META_START,
    VRS,
    FileMeta,
    MetaPastData,
    NotPart10,
    read_file_meta,
)
from pydicom.data import get_testdata_file
from pydicom.filereader import _read_file_meta_info, read_preamble
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, VR

FILES = ["CT_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "image_dfl.dcm", "JPEG2000.dcm", "MR_small_RLE.dcm", "test-SR.dcm"]


def pydicom_meta(path: Path) -> tuple[dict[int, str], str, int]:
    """pydicom's meta elements (tag -> VR), transfer syntax and where it starts reading the data set."""
    with path.open("rb") as fp:
        read_preamble(fp, False)
        meta = _read_file_meta_info(fp)
        return {int(elem.tag): elem.VR for elem in meta}, str(meta.TransferSyntaxUID), fp.tell()


@pytest.mark.parametrize("name", FILES)
def test_the_meta_of_a_real_file_is_pydicoms(name):
    path = Path(get_testdata_file(name))
    vrs, syntax, start = pydicom_meta(path)
    meta = read_file_meta(path.read_bytes())
    assert (meta.transfer_syntax, meta.data_set_start) == (syntax, start)
    assert {tag: vr.decode() for tag, (vr, _) in meta.elements.items()} == vrs


def fields(meta: FileMeta) -> tuple[object, ...]:
    return meta.elements, meta.transfer_syntax, meta.data_set_start


def test_part_of_a_file_is_enough_when_it_holds_the_meta_group():
    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    whole = fields(read_file_meta(data))
    assert fields(read_file_meta(data[: whole[2] + 8], whole=False)) == whole
    with pytest.raises(MetaPastData):  # it may go on: read more
        read_file_meta(data[: whole[2]], whole=False)
    assert fields(read_file_meta(data[: whole[2]])) == whole  # the whole file: no data set


def test_a_cut_meta_group_is_refused():
    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    cut = data[: read_file_meta(data).data_set_start - 5]
    with pytest.raises(MetaPastData):
        read_file_meta(cut, whole=False)
    with pytest.raises(NotPart10, match="runs past the end") as caught:
        read_file_meta(cut)
    assert not isinstance(caught.value, MetaPastData)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda data: data[:128] + b"DICN" + data[132:], "no DICM"),
        (lambda data: data[:143], "no DICM"),  # too short to hold a meta element
        (lambda data: data[: META_START + 4] + b"\x04\x00" + data[META_START + 6 :], "not in Explicit VR Little Endian"),  # an implicit VR length
        (lambda data: data.replace(b"\x02\x00\x10\x00UI", b"\x02\x00\x11\x00UI", 1), "no Transfer Syntax UID"),
        (lambda data: data[: META_START + 20] + struct.pack("<L", 0xFFFFFFFF) + data[META_START + 24 :], "undefined length"),  # (0002,0001) OB
    ],
)
def test_files_without_a_readable_meta_group_are_refused(change, message):
    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    assert data[META_START + 4 : META_START + 6] == b"UL" and data[META_START + 16 : META_START + 18] == b"OB"
    with pytest.raises(NotPart10, match=message):
        read_file_meta(change(data))


def test_the_vr_tables_are_pydicoms():
    assert {vr.decode() for vr in LONG_VRS} == set(EXPLICIT_VR_LENGTH_32)
    assert {vr.decode() for vr in VRS} == {vr.value for vr in VR if " or " not in vr.value}
