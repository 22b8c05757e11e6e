"""split_multiframe: one file per frame, pixels and compressed bytes unchanged, functional groups carried."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import expect_error, expect_ok, sample
from factories import ct_slice, multiframe, save
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.sequence import Sequence
from pydicom.uid import RLELossless

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def split(src, out, **options):
    return expect_ok({"op": "split_multiframe", "input": str(src), "output": str(out), "options": options})


def enhanced(frames: int = 4) -> Dataset:
    ds = multiframe(frames=frames)
    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = [0.5, 0.5]
    measures.SliceThickness = 1.0
    shared.PixelMeasuresSequence = Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    return ds


def test_every_frame_becomes_a_file(tmp_path):
    source = enhanced(4)
    src = save(source, tmp_path / "mf.dcm")
    data = split(src, tmp_path / "out")
    names = [p.rsplit("/", 1)[1] for p in data["output_files"]]
    assert names == ["frame_00001.dcm", "frame_00002.dcm", "frame_00003.dcm", "frame_00004.dcm"]
    assert data["metadata"]["number_of_frames"] == 4
    uids = set()
    for index, path in enumerate(data["output_files"]):
        ds = dcmread(path)
        assert ds.NumberOfFrames == 1
        assert (ds.pixel_array == 100 * (index + 1)).all()
        assert len(ds.PerFrameFunctionalGroupsSequence) == 1
        assert ds.PerFrameFunctionalGroupsSequence[0].PlanePositionSequence[0].ImagePositionPatient == [0, 0, index]
        assert ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing == [0.5, 0.5]
        ref = ds.SourceImageSequence[-1]
        assert ref.ReferencedSOPInstanceUID == source.SOPInstanceUID and ref.ReferencedFrameNumber == index + 1
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID != source.SOPInstanceUID
        uids.add(ds.SOPInstanceUID)
    assert len(uids) == 4


def test_selected_frames_and_kept_uids(tmp_path):
    source = enhanced(4)
    src = save(source, tmp_path / "mf.dcm")
    data = split(src, tmp_path / "out", frames=[3, 1], new_uids=False)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["frame_00002.dcm", "frame_00004.dcm"]
    ds = dcmread(tmp_path / "out" / "frame_00004.dcm")
    assert (ds.pixel_array == 400).all()
    assert ds.SOPInstanceUID == source.SOPInstanceUID and "SourceImageSequence" not in ds
    assert data["metadata"]["frames"] == [1, 3]


def test_frame_out_of_range_names_the_range(tmp_path):
    src = save(enhanced(4), tmp_path / "mf.dcm")
    err = expect_error({"op": "split_multiframe", "input": str(src), "output": str(tmp_path / "out"), "options": {"frames": [0, 4]}}, "invalid_request")
    assert "0..3" in err["error"]["message"]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_compressed_frames_are_copied_not_reencoded(tmp_path):
    source = enhanced(3)
    source.compress(RLELossless)
    src = save(source, tmp_path / "rle.dcm")
    original_frames = list(generate_frames(dcmread(src).PixelData, number_of_frames=3))
    data = split(src, tmp_path / "out")
    for index, path in enumerate(data["output_files"]):
        ds = dcmread(path)
        assert ds.file_meta.TransferSyntaxUID == RLELossless
        (frame,) = generate_frames(ds.PixelData, number_of_frames=1)
        assert frame == original_frames[index]
        assert (ds.pixel_array == 100 * (index + 1)).all()


@pytest.mark.parametrize("name", ["rtdose.dcm", "rtdose_rle.dcm", "SC_rgb_rle_2frame.dcm", "examples_ybr_color.dcm"])
def test_bundled_multiframe_samples(tmp_path, name):
    source = dcmread(sample(name))
    data = split(sample(name), tmp_path / "out", frames=[0, 1])
    full = source.pixel_array
    for index, path in enumerate(data["output_files"]):
        ds = dcmread(path)
        assert np.array_equal(ds.pixel_array, full[index])
        if "GridFrameOffsetVector" in source:  # the frame's offset moves its position along the normal
            offset = float(source.GridFrameOffsetVector[index]) - float(source.GridFrameOffsetVector[0])
            normal = np.cross(np.array(source.ImageOrientationPatient[:3], float), np.array(source.ImageOrientationPatient[3:], float))
            expected = np.array(source.ImagePositionPatient, float) + offset * normal
            assert np.allclose([float(v) for v in ds.ImagePositionPatient], expected, atol=1e-5)
            assert "GridFrameOffsetVector" not in ds and "FrameIncrementPointer" not in ds
            vm_errors = [e for e in expect_ok({"op": "validate", "input": path})["metadata"]["errors"] if e["check"] == "vm"]
            assert vm_errors == []


def test_one_bit_frames_off_byte_boundaries(tmp_path):
    ds = ct_slice(rows=3, cols=3)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 1, 1, 0, 0
    del ds.RescaleIntercept, ds.RescaleSlope
    frames = np.array([np.eye(3), 1 - np.eye(3), np.ones((3, 3))], dtype=np.uint8)
    from pydicom.pixels.utils import pack_bits

    ds.PixelData = pack_bits(frames.ravel())
    ds.NumberOfFrames = 3
    src = save(ds, tmp_path / "bits.dcm")
    data = split(src, tmp_path / "out")
    for index, path in enumerate(data["output_files"]):
        assert np.array_equal(dcmread(path).pixel_array, frames[index])


def test_existing_frame_files_need_overwrite(tmp_path):
    src = save(enhanced(2), tmp_path / "mf.dcm")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "frame_00002.dcm").write_bytes(b"keep")
    expect_error({"op": "split_multiframe", "input": str(src), "output": str(tmp_path / "out")}, "output_exists")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["frame_00002.dcm"]  # nothing half-written
    split(src, tmp_path / "out", overwrite=True)
    assert (dcmread(tmp_path / "out" / "frame_00002.dcm").pixel_array == 200).all()


def test_bad_inputs(tmp_path):
    out = str(tmp_path / "out")
    no_pixels = ct_slice()
    del no_pixels.PixelData
    expect_error({"op": "split_multiframe", "input": str(save(no_pixels, tmp_path / "np.dcm")), "output": out}, "invalid_request")
    (tmp_path / "text.dcm").write_text("not dicom\n" * 20)
    expect_error({"op": "split_multiframe", "input": str(tmp_path / "text.dcm"), "output": out}, "not_dicom")
    expect_error({"op": "split_multiframe", "input": "sample:MR_truncated.dcm", "output": out}, "decode_error")
    expect_error({"op": "split_multiframe", "input": str(tmp_path / "missing.dcm"), "output": out}, "input_not_found")
    src = save(enhanced(2), tmp_path / "mf.dcm")
    expect_error({"op": "split_multiframe", "input": str(src), "output": str(src)}, "invalid_request")
    expect_error({"op": "split_multiframe", "input": str(src)}, "invalid_request")
    assert not (tmp_path / "out").exists()
