"""Our decoded pixels (transcode to explicit VR) against DCMTK's own decompressors on the same files,
and against GDCM for JPEG 2000 (which DCMTK cannot decode)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import sample
from pixels_support import pixels, run_tool, transcode

pytestmark = pytest.mark.toolkit

# sample, DCMTK decompressor, largest allowed difference (0 = lossless, so exact).
CASES = [
    ("MR_small_RLE.dcm", "dcmdrle", 0),
    ("rtdose_rle.dcm", "dcmdrle", 0),
    ("SC_rgb_rle.dcm", "dcmdrle", 0),
    ("SC_rgb_rle_16bit_2frame.dcm", "dcmdrle", 0),
    ("SC_rgb_rle_32bit_2frame.dcm", "dcmdrle", 0),
    ("MR_small_jpeg_ls_lossless.dcm", "dcmdjpls", 0),
    ("JPEGLSNearLossless_08.dcm", "dcmdjpls", 0),  # the same codestream decodes identically
    ("JPEGLSNearLossless_16.dcm", "dcmdjpls", 0),
    ("SC_rgb_jls_lossy_sample.dcm", "dcmdjpls", 0),
    ("SC_rgb_jpeg_gdcm.dcm", "dcmdjpeg", 0),  # JPEG lossless SV1
    ("JPGExtended.dcm", "dcmdjpeg", 1),  # lossy 12-bit: IDCT rounding may differ by one
    ("SC_rgb_jpeg_dcmtk.dcm", "dcmdjpeg", 0),  # baseline YBR_FULL, converted to RGB by both
    ("SC_rgb_dcmtk_+eb+cy+np.dcm", "dcmdjpeg", 0),  # baseline YBR_FULL_422
    ("examples_ybr_color.dcm", "dcmdjpeg", 0),  # baseline YBR_FULL_422, 30 frames
    ("JPEG2000.dcm", "gdcmconv", 0),
    ("MR_small_jp2klossless.dcm", "gdcmconv", 0),
    ("GDCMJ2K_TextGBR.dcm", "gdcmconv", 0),  # YBR_RCT
    ("examples_jpeg2k.dcm", "gdcmconv", 0),
]


@pytest.mark.parametrize(("name", "tool", "tolerance"), CASES, ids=[c[0] for c in CASES])
def test_decoded_pixels_agree_with_dcmtk(tmp_path, name, tool, tolerance):
    ours, _ = transcode(tmp_path, f"sample:{name}", "explicit", name="ours.dcm")
    reference = tmp_path / "dcmtk.dcm"
    if tool == "gdcmconv":
        run_tool(tool, "-w", sample(name), reference)
    else:
        run_tool(tool, sample(name), reference)
    a, b = pixels(ours).astype(np.int64), pixels(reference).astype(np.int64)
    assert a.shape == b.shape
    assert np.abs(a - b).max() <= tolerance
