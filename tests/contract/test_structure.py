"""The byte walk that refuses, before a toolkit starts, files that make toolkits crawl or loop."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from conftest import backend_request, expect_error, require_backend, sample
from dicom_hub.contract.errors import HubError
from dicom_hub.contract.structure import check_file, nesting_depth
from pydicom.data import get_testdata_file


def deep(data: bytes, depth: int) -> bytes:
    opening = struct.pack("<HH2sHI", 0xFFFA, 0xFFFA, b"SQ", 0, 0xFFFFFFFF) + struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    closing = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    return data + opening * depth + closing * depth


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_RLE.dcm", "test-SR.dcm", "waveform_ecg.dcm", "image_dfl.dcm", "MR_small_implicit.dcm", "MR_truncated.dcm"])
def test_real_files_pass(name):
    check_file(sample(name))


def test_depth_counts_sequences_and_items_after_encapsulated_pixels():
    data = sample("MR_small_RLE.dcm").read_bytes()
    assert nesting_depth(deep(data, 30), 10**6) == 60


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda data: deep(data, 3000), "nests sequences more than 100 levels deep"),
        (lambda data: data[:-6000], None),  # cut short: the tools report it themselves
    ],
)
def test_deep_nesting_is_refused_plain_truncation_is_left_to_the_tools(tmp_path, make, message):
    path = tmp_path / "case.dcm"
    path.write_bytes(make(sample("CT_small.dcm").read_bytes()))
    if message is None:
        check_file(path)
        return
    with pytest.raises(HubError) as caught:
        check_file(path)
    assert caught.value.code.value == "decode_error" and message in caught.value.message


def test_a_length_beyond_the_file_and_a_cut_deflate_stream_are_refused(tmp_path):
    data = bytearray(sample("MR_small_RLE.dcm").read_bytes())
    data[data.index(b"\xe0\x7f\x10\x00OB") + 8 : data.index(b"\xe0\x7f\x10\x00OB") + 12] = struct.pack("<I", 0xFFFFFFF0)
    long = tmp_path / "long.dcm"
    long.write_bytes(bytes(data))
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(Path(get_testdata_file("image_dfl.dcm")).read_bytes()[:851])
    for path, message in ((long, "declares 4294967280 bytes"), (cut, "deflated data set ends before")):
        with pytest.raises(HubError) as caught:
            check_file(path)
        assert message in caught.value.message


@pytest.mark.toolkit
@pytest.mark.parametrize(("backend", "op"), [("gdcm", "info"), ("csharp", "dump"), ("dcmtk", "info")])
def test_toolkits_answer_quickly_on_a_cut_deflate_stream(tmp_path, backend, op):
    """gdcmdump and GDCM's C# binding loop forever on it; every toolkit now gets decode_error up front."""
    require_backend(backend)
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(Path(get_testdata_file("image_dfl.dcm")).read_bytes()[:851])
    data = expect_error({**backend_request(backend, op, str(cut)), "options": {"timeout": 20}}, "decode_error")
    assert "deflated data set ends before" in data["error"]["message"]


def test_cut_short_names_where_a_header_stops(tmp_path):
    from dicom_hub.contract.structure import cut_short

    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    assert cut_short(Path(get_testdata_file("CT_small.dcm"))) is None
    assert cut_short(Path(get_testdata_file("MR_truncated.dcm"))) is None  # cut inside Pixel Data: the header is whole
    for size in (700, 1000, 1500):  # past the file meta group (a cut inside it is not Part 10 at all)
        cut = tmp_path / f"cut{size}.dcm"
        cut.write_bytes(data[:size])
        assert cut_short(cut) is not None, size
