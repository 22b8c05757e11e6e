"""Inputs that used to kill the process from native code: a Rust codec's panic on one corrupt
RLE byte, and a header claiming terabytes of pixels that decoders believed and allocated."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import backend_request, expect_error, expect_ok, require_backend, sample
from dicom_hub.contract.errors import HubError
from dicom_hub.contract.pixel_size import LIMIT_ENV, PixelClaim, check_claim
from pydicom import dcmread

HUGE = 65535


@pytest.fixture
def panicking_rle(tmp_path: Path) -> Path:
    """pydicom's MR_small_RLE.dcm with byte 1544 set to 0x94: pylibjpeg-rle indexes past a segment and panics."""
    data = bytearray(sample("MR_small_RLE.dcm").read_bytes())
    data[1544] = 0x94
    (tmp_path / "in").mkdir()
    path = tmp_path / "in" / "rle_panic.dcm"
    path.write_bytes(bytes(data))
    return path


def huge_header(tmp_path: Path, name: str, frames: int = 1000) -> Path:
    """A bundled sample whose header claims 65535 x 65535 x `frames`, with its own small pixel data."""
    ds = dcmread(sample(name))
    ds.Rows, ds.Columns, ds.NumberOfFrames = HUGE, HUGE, frames
    path = tmp_path / f"huge_{name}"
    ds.save_as(path)
    return path


# -- the Rust panic --------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["stats", "histogram", "to_image", "transcode"])
def test_rle_codec_panic_is_a_decode_error(tmp_path, panicking_rle, op):
    output = {"to_image": tmp_path / "out.png", "transcode": tmp_path / "out.dcm"}.get(op)
    options = {"transfer_syntax": "explicit"} if op == "transcode" else {}
    data = expect_error(backend_request("python", op, str(panicking_rle), output, **options), "decode_error")
    assert "PanicException" in data["error"]["message"]
    assert not list(tmp_path.glob("out*"))


@pytest.mark.parametrize("workers", [1, 2])
def test_rle_codec_panic_fails_one_file_of_a_batch(tmp_path, panicking_rle, workers):
    good = panicking_rle.parent / "good.dcm"
    good.write_bytes(sample("MR_small_RLE.dcm").read_bytes())
    out = tmp_path / "out"
    data = expect_ok({"op": "batch_decompress", "input": str(panicking_rle.parent), "output": str(out), "options": {"workers": workers}})
    meta = data["metadata"]
    assert meta["files_processed"] == 1 and meta["files_failed"] == 1
    assert meta["errors"][0]["path"].endswith("rle_panic.dcm") and meta["errors"][0]["code"] == "decode_error"
    assert sorted(p.name for p in out.iterdir()) == ["good_decompressed.dcm"]


def test_rle_codec_panic_leaves_a_stream_session_running(panicking_rle):
    """The next request in the same `--stream` process is still answered."""
    requests = [
        {"id": 1, "op": "stats", "input": str(panicking_rle)},
        {"id": 2, "op": "stats", "input": "sample:CT_small.dcm"},
    ]
    run = subprocess.run(
        [sys.executable, "-m", "dicom_hub.interface", "run", "--stream"],
        input="".join(json.dumps(r) + "\n" for r in requests), capture_output=True, text=True, timeout=120,
    )
    assert run.returncode >= 0, f"killed by signal {-run.returncode}: {run.stderr[-1000:]}"
    answers = [json.loads(line) for line in run.stdout.splitlines()]
    assert [(a["id"], a["ok"], (a["error"] or {}).get("code")) for a in answers] == [(1, False, "decode_error"), (2, True, None)]


# -- the pixel-size guard ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm"])
@pytest.mark.parametrize("op", ["stats", "to_image", "transcode"])
def test_python_refuses_a_header_the_pixel_data_cannot_back(tmp_path, name, op):
    path = huge_header(tmp_path, name)
    output = {"to_image": tmp_path / "out.png", "transcode": tmp_path / "out.dcm"}.get(op)
    options = {"transfer_syntax": "explicit" if name != "CT_small.dcm" else "rle"} if op == "transcode" else {}
    data = expect_error(backend_request("python", op, str(path), output, **options), "decode_error")
    assert f"{HUGE} x {HUGE} x 1000 frame(s)" in data["error"]["message"]
    assert not list(tmp_path.glob("out*"))


TOOLKIT_PIXEL_OPS = [
    ("dcmtk", "to_image"), ("dcmtk", "stats"), ("dcmtk", "transcode"),
    ("gdcm", "transcode"),
    ("pixelmed", "to_image"), ("pixelmed", "transcode"),
    ("csharp", "to_image"), ("csharp", "stats"), ("csharp", "transcode"),
    ("dicom-rs", "to_image"), ("dicom-rs", "transcode"),
]  # fmt: skip


@pytest.mark.toolkit
@pytest.mark.parametrize(("backend", "op"), TOOLKIT_PIXEL_OPS)
@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_RLE.dcm"])
def test_toolkits_refuse_a_huge_header_before_starting_the_tool(tmp_path, backend, op, name):
    require_backend(backend)
    path = huge_header(tmp_path, name, frames=1)
    output = {"to_image": tmp_path / "out.png", "transcode": tmp_path / "out.dcm"}.get(op)
    options = {"transfer_syntax": "explicit" if name != "CT_small.dcm" else "rle"} if op == "transcode" else {}
    data = expect_error(backend_request(backend, op, str(path), output, **options), "decode_error")
    # The shared size check, or the truncated-pixels check that some adapters run first: both name the claim.
    assert re.search(rf"{HUGE} ?x ?{HUGE}", data["error"]["message"]), data["error"]["message"]
    assert data["backend"] == backend
    assert not list(tmp_path.glob("out*"))


def test_the_ceiling_is_configurable(tmp_path, monkeypatch):
    request = backend_request("python", "stats", "sample:CT_small.dcm")
    expect_ok(request)
    monkeypatch.setenv(LIMIT_ENV, "10000")  # CT_small holds 128 x 128 x 16 bits = 32768 bytes
    data = expect_error(request, "decode_error")
    assert "32768 bytes, above the limit of 10000 bytes" in data["error"]["message"]
    assert LIMIT_ENV in data["error"]["hint"]


@pytest.mark.toolkit
def test_the_ceiling_applies_to_toolkits(tmp_path, monkeypatch):
    require_backend("dcmtk")
    monkeypatch.setenv(LIMIT_ENV, "10000")
    data = expect_error(backend_request("dcmtk", "to_image", "sample:CT_small.dcm", tmp_path / "out.png"), "decode_error")
    assert "above the limit of 10000 bytes" in data["error"]["message"]


def test_a_single_frame_counts_against_the_ceiling_not_the_whole_image(monkeypatch):
    # SC_rgb_rle_2frame.dcm: 2 frames of 100 x 100 x 3 samples x 8 bits = 30000 bytes each.
    monkeypatch.setenv(LIMIT_ENV, "40000")
    expect_ok(backend_request("python", "stats", "sample:SC_rgb_rle_2frame.dcm", frame=1))
    expect_error(backend_request("python", "stats", "sample:SC_rgb_rle_2frame.dcm"), "decode_error")


def test_an_invalid_ceiling_is_named(monkeypatch):
    monkeypatch.setenv(LIMIT_ENV, "lots")
    data = expect_error(backend_request("python", "stats", "sample:CT_small.dcm"), "invalid_request")
    assert LIMIT_ENV in data["error"]["message"]


@pytest.mark.parametrize(
    ("claim", "refused"),
    [
        # 1-bit frames are packed end to end: 3 x 3 x 2 frames = 18 bits = 3 bytes, not 2 x 2.
        (PixelClaim(3, 3, 2, 1, 1, stored_bytes=3, encapsulated=False), False),
        (PixelClaim(3, 3, 2, 1, 1, stored_bytes=2, encapsulated=False), True),
        # native YBR_FULL_422 stores two bytes per pixel.
        (PixelClaim(4, 4, 1, 3, 8, stored_bytes=32, encapsulated=False, subsampled=True), False),
        (PixelClaim(4, 4, 1, 3, 8, stored_bytes=32, encapsulated=False), True),
        # compressed: small claims always pass, large ones need data behind them.
        (PixelClaim(512, 512, 1, 1, 16, stored_bytes=10, encapsulated=True), False),
        (PixelClaim(8192, 8192, 1, 1, 16, stored_bytes=10_000, encapsulated=True), True),
        (PixelClaim(8192, 8192, 1, 1, 16, stored_bytes=100_000, encapsulated=True), False),
    ],
)
def test_claims(claim, refused):
    if refused:
        with pytest.raises(HubError) as caught:
            check_claim(claim, "x.dcm")
        assert caught.value.code.value == "decode_error"
    else:
        check_claim(claim, "x.dcm")


# -- python-gdcm, the last decoder, runs in a child ------------------------------------------------


def test_the_gdcm_decoder_runs_in_a_child_process(monkeypatch):
    """A decode that falls through to python-gdcm runs it in a child process (where an abort
    costs one attempt, not the process), and gets the same pixels as pydicom in-process."""
    import subprocess as real_subprocess

    import numpy as np
    from dicom_hub.contract.dicom.pixels import decode as decoding
    from dicom_hub.contract.dicom.pixels import gdcm_decode

    children: list[list[str]] = []
    original_run = real_subprocess.run

    def recording_run(argv, **kwargs):
        children.append(argv)
        return original_run(argv, **kwargs)

    ds = dcmread(sample("MR_small_jp2klossless.dcm"))
    expected = ds.pixel_array.copy()
    monkeypatch.setattr(gdcm_decode.subprocess, "run", recording_run)
    monkeypatch.setattr(decoding, "plugin_order", lambda available, uid="": ["gdcm"])
    assert np.array_equal(decoding.decode(ds, "x.dcm"), expected)
    assert np.array_equal(decoding.decode(ds, "x.dcm", index=0), expected)
    assert [argv[1:3] for argv in children] == [["-m", "dicom_hub.contract.dicom.pixels.gdcm_decode"]] * 2


def test_a_failing_gdcm_child_is_one_failed_decoder(tmp_path, monkeypatch):
    from dicom_hub.contract.dicom.pixels import decode as decoding

    data = bytearray(sample("MR_small_jp2klossless.dcm").read_bytes())
    start = data.index(b"\xff\x4f\xff\x51")  # the JPEG 2000 codestream's SOC and SIZ markers
    data[start : start + 40] = bytes(40)
    path = tmp_path / "broken.dcm"
    path.write_bytes(bytes(data))
    monkeypatch.setattr(decoding, "plugin_order", lambda available, uid="": ["gdcm"])
    with pytest.raises(HubError) as caught:
        decoding.decode(dcmread(path), "broken.dcm")
    assert caught.value.code.value == "decode_error"
    assert "gdcm: RuntimeError: python-gdcm" in caught.value.message
