"""The conformance report's difference images: absolute scale, maximum printed, nothing stretched."""

from __future__ import annotations

import base64
import io

import numpy as np
from conftest import backend_request, expect_ok
from dicom_hub.adapters.conformance.report import _difference_thumbnail
from PIL import Image


def _decoded(uri: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))


def test_a_one_level_difference_stays_dark_and_is_not_lost_when_shrunk(tmp_path):
    reference = tmp_path / "python.png"
    expect_ok(backend_request("python", "to_image", "sample:CT_small.dcm", reference))
    pixels = np.asarray(Image.open(reference)).copy()
    pixels[37, 91] = pixels[37, 91] + 1 if pixels[37, 91] < 255 else 254
    other = tmp_path / "other.png"
    Image.fromarray(pixels).save(other)
    uri, largest, full = _difference_thumbnail(other, reference, size=64)
    thumb = _decoded(uri)
    assert (largest, full) == (1, 255)
    assert thumb.max() == 1  # one level of 255, not white
    assert thumb.shape[0] <= 64 and thumb.shape[1] <= 64


def test_sixteen_bit_differences_use_the_sixteen_bit_range(tmp_path):
    reference = tmp_path / "python16.png"
    expect_ok(backend_request("python", "to_image", "sample:CT_small.dcm", reference, force_16bit=True))
    pixels = np.asarray(Image.open(reference)).astype(np.uint16)
    changed = pixels.copy()
    changed[10:20, 10:20] = np.where(changed[10:20, 10:20] > 32767, changed[10:20, 10:20] - 32768, changed[10:20, 10:20] + 32768)
    other = tmp_path / "other16.png"
    Image.fromarray(changed).save(other)
    uri, largest, full = _difference_thumbnail(other, reference)
    assert (largest, full) == (32768, 65535)
    assert _decoded(uri).max() == 128  # half the range: mid grey
