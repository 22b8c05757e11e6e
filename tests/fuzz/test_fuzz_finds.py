"""The fuzz suite's finds, one request each, so each fix stays covered whatever the seed."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import backend_request, require_backend, run_request
from fuzz_cases import bad_number_of_frames, bad_vr, bundled_data, odd_length, unknown_syntax


def flipped(name: str, changes: dict[int, int]) -> bytes:
    data = bytearray(bundled_data(name))
    for pos, value in changes.items():
        data[pos] = value
    return bytes(data)


FINDS = [
    # (what, file bytes, backend, op, options, codes accepted)
    ("unknown transfer syntax", unknown_syntax(bundled_data("MR_small_RLE.dcm"))[0], "python", "stats", {}, {"decode_error"}),
    ("multi-valued transfer syntax", flipped("MR_small_RLE.dcm", {250: 0xCF, 644: 0x07, 999: 0x31}), "python", "transcode", {"transfer_syntax": "j2k"}, {"decode_error"}),
    ("anonymized copy unreadable", flipped("liver_1frame.dcm", {90: 0x45, 2493: 0xBF, 1971: 0xAA, 23988: 0x1C}), "python", "anonymize", {}, {"decode_error"}),
    ("Number of Frames '1A'", bad_number_of_frames(bundled_data("MR_small_RLE.dcm"))[0], "dicom-rs", "to_image", {}, {"decode_error"}),
    ("Number of Frames '1A'", bad_number_of_frames(bundled_data("CT_small.dcm"))[0], "dcmtk", "to_image", {}, {"decode_error"}),
    ("Number of Frames '1A'", bad_number_of_frames(bundled_data("CT_small.dcm"))[0], "pixelmed", "to_image", {}, {"decode_error"}),
    ("odd-length US read for planning", odd_length(bundled_data("MR_small_RLE.dcm"))[0], "gdcm", "anonymize", {}, {"decode_error"}),
    ("unresolvable Pixel Data VR in the leak check", flipped("nested_priv_SQ.dcm", {256: 0x6A, 185: 0xC2}), "dcmtk", "anonymize", {}, {"decode_error"}),
    ("unknown VR in the window read before dcmj2pnm", bad_vr(bundled_data("MR_small.dcm"), 0x00281050, b"D\xe5")[0], "dcmtk", "to_image", {}, None),
    ("truncated header read before pixelmed", bundled_data("JPEG2000.dcm")[:1139], "pixelmed", "to_image", {}, None),
    ("unknown VR in the file meta", flipped("SC_rgb_jpeg_gdcm.dcm", {149: 0x86, 1637: 0x81}), "python", "validate", {}, {"decode_error"}),
    ("SOP Class UID with another VR", bad_vr(bundled_data("MR_small.dcm"), 0x00080016, b"LO")[0], "python", "info", {}, None),
    ("unknown VR while checking completeness", bad_vr(bundled_data("MR_small.dcm"), 0x00080090, b"P<")[0], "python", "anonymize", {}, {"decode_error"}),
    ("cut deflate stream", bundled_data("image_dfl.dcm")[:851], "gdcm", "info", {}, {"decode_error"}),
]  # fmt: skip
OUTPUT = {"to_image": ".png", "transcode": ".dcm", "anonymize": ".dcm"}


@pytest.mark.toolkit
@pytest.mark.parametrize(("what", "data", "backend", "op", "options", "codes"), FINDS, ids=[f"{f[2]}-{f[3]}-{f[0]}" for f in FINDS])
def test_fuzz_find(tmp_path: Path, what, data, backend, op, options, codes):
    require_backend(backend)
    path = tmp_path / "case.dcm"
    path.write_bytes(data)
    output = tmp_path / f"out{OUTPUT[op]}" if op in OUTPUT else None
    response = run_request(backend_request(backend, op, str(path), output, **options))
    error = response["error"] or {}
    assert error.get("code") != "internal_error", f"{what}: {error}"
    if codes is not None:
        assert not response["ok"] and error["code"] in codes, f"{what}: {response['error']}"
    if not response["ok"] and output is not None:
        assert not output.exists(), f"{what}: failed but left {output.name}"
