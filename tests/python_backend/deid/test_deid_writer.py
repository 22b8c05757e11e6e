"""The fast writer frames raw elements itself: what it writes must read back exactly as what
pydicom's own writer produces from the same de-identified data set."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from conftest import sample
from deid_corpus import Planted, write_leak_file
from dicom_hub.contract.dicom.deid.profile import Profile
from dicom_hub.contract.dicom.deid.pseudonyms import Pseudonymizer
from dicom_hub.python_backend.deid.engine import Engine
from dicom_hub.python_backend.deid.writer import encode


def both_ways(path: Path, options: frozenset[str]) -> tuple[pydicom.Dataset, pydicom.Dataset, bytes | None]:
    ds = pydicom.dcmread(path)
    Engine(Profile(options), Pseudonymizer(b"writer-test-key-0123"), allow_burned_in=True).anonymize(ds)
    ours = encode(ds)
    theirs = io.BytesIO()
    ds.save_as(theirs)
    theirs.seek(0)
    return pydicom.dcmread(io.BytesIO(ours)) if ours else ds, pydicom.dcmread(theirs), ours


@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
@pytest.mark.parametrize(
    "options",
    [frozenset(), frozenset({"retain_modified_dates", "retain_safe_private"})],
    ids=["basic", "dates"],
)
def test_fast_writer_matches_pydicom_on_the_leak_corpus(
    tmp_path: Path, implicit: bool, options: frozenset[str]
) -> None:
    source = write_leak_file(tmp_path / "in.dcm", Planted(), implicit=implicit)
    ours, theirs, data = both_ways(source, options)
    assert data is not None and data[128:132] == b"DICM"
    assert ours == theirs and ours.PixelData == theirs.PixelData
    assert ours.file_meta.MediaStorageSOPInstanceUID == theirs.SOPInstanceUID


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm", "rtplan.dcm"])
def test_fast_writer_matches_pydicom_on_samples(name: str) -> None:
    ours, theirs, data = both_ways(sample(name), frozenset())
    assert data is not None
    assert ours == theirs and ours.get("PixelData") == theirs.get("PixelData")


def test_big_endian_and_deflated_fall_back_to_pydicom() -> None:
    for name in ("MR_small_bigendian.dcm", "image_dfl.dcm"):
        ds = pydicom.dcmread(sample(name))
        Engine(Profile(), Pseudonymizer(b"writer-test-key-0123"), allow_burned_in=True).anonymize(ds)
        assert encode(ds) is None
