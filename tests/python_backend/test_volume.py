"""volume and nifti: geometry from synthetic series of every orientation, checked against dcm2niix."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import expect_error, expect_ok, missing, require_tool
from factories import ROOT, ct_slice, multiframe, save
from pydicom import dcmread
from pydicom.uid import generate_uid

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
try:
    import nibabel
except ImportError:  # the `nifti` extra; CI installs it, so there this is a failure, not a skip
    nibabel = None


@pytest.fixture(autouse=True)
def _needs_nibabel():
    if nibabel is None:
        missing("python package nibabel (pip install 'dicom-hub[nifti]')")

AXIAL = (1, 0, 0, 0, 1, 0)
SAGITTAL = (0, 1, 0, 0, 0, -1)
CORONAL = (1, 0, 0, 0, 0, -1)


def oblique() -> tuple[float, ...]:
    """Axial tilted 20 degrees about x, then turned 10 degrees about z."""
    a, b = np.radians(20), np.radians(10)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    rz = np.array([[np.cos(b), -np.sin(b), 0], [np.sin(b), np.cos(b), 0], [0, 0, 1]])
    rot = rz @ rx
    return tuple(np.round(np.concatenate([rot[:, 0], rot[:, 1]]), 8))


def make_series(folder: Path, orientation=AXIAL, count=5, step=2.5, rows=6, cols=5, origin=(-10.0, 20.0, 30.0), **kwargs) -> list[Path]:
    """`count` slices `step` mm apart along the normal of `orientation`, one file each."""
    normal = np.cross(orientation[:3], orientation[3:])
    study, series_uid = generate_uid(ROOT), generate_uid(ROOT)
    paths = []
    for k in range(count):
        position = tuple(float(v) for v in np.asarray(origin) + k * step * normal)
        ds = ct_slice(rows=rows, cols=cols, position=position, orientation=orientation, instance=k + 1, study_uid=study, series_uid=series_uid, seed=k, **kwargs)
        paths.append(save(ds, folder / f"slice{k:03d}.dcm"))
    return paths


def run_dcm2niix(source: Path, out: Path) -> Path:
    """dcm2niix without its cropping, reorientation, merging or BIDS extras; the one .nii it writes."""
    tool = require_tool("dcm2niix")
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([tool, "-b", "n", "-z", "n", "-x", "i", "-m", "n", "-l", "o", "-p", "n", "-f", "ref", "-o", str(out), str(source)], check=True, capture_output=True, timeout=120)
    (result,) = out.glob("*.nii")
    return result


def assert_same_nifti(ours: Path, reference: Path) -> None:
    a, b = nibabel.load(ours), nibabel.load(reference)
    assert a.shape == b.shape
    assert np.abs(a.affine - b.affine).max() < 1e-3, f"\n{a.affine}\n!=\n{b.affine}"
    assert np.array_equal(a.get_fdata(), b.get_fdata())
    assert a.header["qform_code"] == 1 and a.header["sform_code"] == 1
    assert np.abs(a.get_qform() - b.affine).max() < 1e-3


@pytest.mark.parametrize("orientation", [AXIAL, SAGITTAL, CORONAL, oblique()], ids=["axial", "sagittal", "coronal", "oblique"])
def test_nifti_matches_dcm2niix(tmp_path, orientation):
    make_series(tmp_path / "series", orientation=orientation)
    data = expect_ok({"op": "nifti", "input": str(tmp_path / "series"), "output": str(tmp_path / "ours.nii")})
    assert_same_nifti(tmp_path / "ours.nii", run_dcm2niix(tmp_path / "series", tmp_path / "ref"))
    assert data["output_files"] == [str(tmp_path / "ours.nii"), str(tmp_path / "ours.json")]
    sidecar = json.loads((tmp_path / "ours.json").read_text())
    assert sidecar["acquisition"]["Modality"] == "CT" and sidecar["slice_count"] == 5


def test_shuffled_files_are_sorted_by_position_not_name_or_number(tmp_path):
    paths = make_series(tmp_path / "series", orientation=SAGITTAL, count=6)
    order = list(range(6))
    random.Random(3).shuffle(order)
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    for new_index, old_index in enumerate(order):
        ds = dcmread(paths[old_index])
        ds.InstanceNumber = 100 - old_index if old_index % 2 else old_index  # instance numbers that lie
        ds.save_as(shuffled / f"z{new_index}.dcm")
    expect_ok({"op": "volume", "input": str(tmp_path / "series"), "output": str(tmp_path / "a.npy")})
    expect_ok({"op": "volume", "input": str(shuffled), "output": str(tmp_path / "b.npy")})
    assert np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
    expect_ok({"op": "nifti", "input": str(shuffled), "output": str(tmp_path / "s.nii")})
    assert_same_nifti(tmp_path / "s.nii", run_dcm2niix(shuffled, tmp_path / "ref"))


def test_volume_values_affine_and_sidecar(tmp_path):
    orientation = oblique()
    paths = make_series(tmp_path / "series", orientation=orientation, count=4, step=3.0, rows=7, cols=5)
    data = expect_ok({"op": "volume", "input": str(tmp_path / "series"), "output": str(tmp_path / "v.npy")})
    volume = np.load(tmp_path / "v.npy")
    sidecar = json.loads((tmp_path / "v.json").read_text())
    assert sidecar == data["metadata"]
    assert volume.shape == (4, 7, 5) and volume.dtype == np.int16
    affine = np.array(sidecar["affine"])
    for k, path in enumerate(paths):
        ds = dcmread(path)
        assert np.array_equal(volume[k], ds.pixel_array.astype(np.int32) - 1024)
        # voxel (k, row 2, column 3) lies where the slice's own geometry puts it
        expected = np.array(ds.ImagePositionPatient, float) + 3 * 0.5 * np.array(orientation[:3]) + 2 * 0.5 * np.array(orientation[3:])
        assert np.allclose((affine @ [k, 2, 3, 1])[:3], expected, atol=1e-4)
    assert sidecar["spacing"] == [3.0, 0.5, 0.5]
    assert sidecar["slice_count"] == 4
    assert sidecar["sop_instance_uids"] == [dcmread(p).SOPInstanceUID for p in paths]
    assert sidecar["series_instance_uid"] == dcmread(paths[0]).SeriesInstanceUID
    assert sidecar["rescale"] == {"applied": True, "slopes": [1.0], "intercepts": [-1024.0], "units": None}
    assert np.allclose(sidecar["origin"], dcmread(paths[0]).ImagePositionPatient)


def test_dtype_follows_the_rescaled_range(tmp_path):
    make_series(tmp_path / "half", count=3, RescaleSlope=0.5, RescaleIntercept=0)
    expect_ok({"op": "volume", "input": str(tmp_path / "half"), "output": str(tmp_path / "half.npy")})
    assert np.load(tmp_path / "half.npy").dtype == np.float32
    make_series(tmp_path / "small", count=3, RescaleSlope=1, RescaleIntercept=0, rows=2, cols=2)
    expect_ok({"op": "volume", "input": str(tmp_path / "small"), "output": str(tmp_path / "small.npy")})
    assert np.load(tmp_path / "small.npy").dtype == np.uint8  # values 0..59 fit a byte
    make_series(tmp_path / "wide", count=3, rows=16, cols=16, RescaleSlope=200, RescaleIntercept=-20000)  # about -19000 .. 49800
    expect_ok({"op": "nifti", "input": str(tmp_path / "wide"), "output": str(tmp_path / "wide.nii")})
    assert nibabel.load(tmp_path / "wide.nii").get_data_dtype() == np.int32
    assert_same_nifti(tmp_path / "wide.nii", run_dcm2niix(tmp_path / "wide", tmp_path / "ref"))


def test_gap_needs_allow_uneven(tmp_path):
    paths = make_series(tmp_path / "series", count=6)
    paths[3].unlink()
    err = expect_error({"op": "volume", "input": str(tmp_path / "series"), "output": str(tmp_path / "v.npy")}, "invalid_request")
    assert "uneven slice spacing" in err["error"]["message"] and "slice002.dcm" in err["error"]["message"]
    assert "allow_uneven" in err["error"]["hint"]
    assert not (tmp_path / "v.npy").exists()
    data = expect_ok({"op": "volume", "input": str(tmp_path / "series"), "output": str(tmp_path / "v.npy"), "options": {"allow_uneven": True}})
    assert any("uneven" in w for w in data["metadata"]["warnings"])
    assert data["metadata"]["slice_count"] == 5


def test_duplicate_position(tmp_path):
    paths = make_series(tmp_path / "series", count=4)
    ds = dcmread(paths[1])
    ds.SOPInstanceUID = generate_uid(ROOT)
    ds.save_as(tmp_path / "series" / "copy.dcm")
    err = expect_error({"op": "volume", "input": str(tmp_path / "series"), "output": str(tmp_path / "v.npy")}, "invalid_request")
    assert "duplicate slice position" in err["error"]["message"] and "copy.dcm" in err["error"]["message"]


def test_mixed_series_are_listed_and_one_can_be_chosen(tmp_path):
    first = make_series(tmp_path / "mixed", count=3)
    second = make_series(tmp_path / "mixed" / "other", count=4, orientation=CORONAL)
    uid_a, uid_b = dcmread(first[0]).SeriesInstanceUID, dcmread(second[0]).SeriesInstanceUID
    err = expect_error({"op": "volume", "input": str(tmp_path / "mixed"), "output": str(tmp_path / "v.npy")}, "invalid_request")
    assert uid_a in err["error"]["message"] and uid_b in err["error"]["message"] and "series_uid" in err["error"]["hint"]
    data = expect_ok({"op": "volume", "input": str(tmp_path / "mixed"), "output": str(tmp_path / "v.npy"), "options": {"series_uid": uid_b}})
    assert data["metadata"]["slice_count"] == 4 and data["metadata"]["series_instance_uid"] == uid_b
    expect_error({"op": "volume", "input": str(tmp_path / "mixed"), "output": str(tmp_path / "w.npy"), "options": {"series_uid": "1.2.3"}}, "invalid_request")
    # a list of files is an input too
    data = expect_ok({"op": "volume", "input": [str(p) for p in first], "output": str(tmp_path / "f.npy")})
    assert data["metadata"]["series_instance_uid"] == uid_a


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"ImageOrientationPatient": [1, 0, 0, 0, 0.9, 0.43589]}, "inconsistent orientation"),
        ({"PixelSpacing": [0.6, 0.5]}, "inconsistent pixel spacing"),
        ({"Rows": 8}, "inconsistent matrix size"),
        ({"ImagePositionPatient": [-5.0, 20.0, 35.0]}, "off the slice normal"),
        ({"ImagePositionPatient": None}, "no usable ImagePositionPatient"),
    ],
)
def test_inconsistent_geometry(tmp_path, change, words):
    paths = make_series(tmp_path / "series", count=4)
    ds = dcmread(paths[2])
    for keyword, value in change.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    if "Rows" in change:
        ds.PixelData = np.zeros((8, 5), np.int16).tobytes()
    ds.save_as(paths[2])
    err = expect_error({"op": "volume", "input": str(tmp_path / "series"), "output": str(tmp_path / "v.npy")}, "invalid_request")
    assert words in err["error"]["message"] and "slice002.dcm" in err["error"]["message"]


def test_enhanced_multiframe_uses_functional_groups(tmp_path):
    ds = multiframe(frames=4, rows=8, cols=8)
    frames = [0, 2, 1, 3]  # frames stored out of spatial order
    for index, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        item.PlanePositionSequence[0].ImagePositionPatient = [0.0, 0.0, 1.5 * frames[index]]
    src = save(ds, tmp_path / "mf" / "mf.dcm")
    data = expect_ok({"op": "volume", "input": str(src.parent), "output": str(tmp_path / "v.npy")})
    volume = np.load(tmp_path / "v.npy")
    stored = [100 * (f + 1) - 1024 for f in range(4)]
    assert [int(volume[k, 0, 0]) for k in range(4)] == [stored[0], stored[2], stored[1], stored[3]]
    assert data["metadata"]["spacing"] == [1.5, 0.5, 0.5]
    assert data["metadata"]["source_frames"] == [0, 2, 1, 3]


def test_nifti_gz_equals_nii(tmp_path):
    make_series(tmp_path / "series", orientation=CORONAL)
    expect_ok({"op": "nifti", "input": str(tmp_path / "series"), "output": str(tmp_path / "a.nii")})
    expect_ok({"op": "nifti", "input": str(tmp_path / "series"), "output": str(tmp_path / "b.nii.gz"), "options": {"sidecar": False}})
    assert (tmp_path / "b.nii.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert not (tmp_path / "b.json").exists()
    a, b = nibabel.load(tmp_path / "a.nii"), nibabel.load(tmp_path / "b.nii.gz")
    assert np.array_equal(a.get_fdata(), b.get_fdata()) and np.array_equal(a.affine, b.affine)


def test_output_rules(tmp_path):
    make_series(tmp_path / "series", count=3)
    source = str(tmp_path / "series")
    expect_error({"op": "volume", "input": source, "output": str(tmp_path / "v.txt")}, "invalid_request")
    expect_error({"op": "nifti", "input": source, "output": str(tmp_path / "v.img")}, "invalid_request")
    (tmp_path / "v.json").write_text("keep")
    expect_error({"op": "volume", "input": source, "output": str(tmp_path / "v.npy")}, "output_exists")
    assert (tmp_path / "v.json").read_text() == "keep" and not (tmp_path / "v.npy").exists()
    expect_ok({"op": "volume", "input": source, "output": str(tmp_path / "v.npy"), "options": {"overwrite": True}})
    expect_error({"op": "volume", "input": str(tmp_path / "nowhere"), "output": str(tmp_path / "x.npy")}, "input_not_found")
    (tmp_path / "empty").mkdir()
    expect_error({"op": "volume", "input": str(tmp_path / "empty"), "output": str(tmp_path / "x.npy")}, "invalid_request")


def test_real_ct_series_matches_dcm2niix(tmp_path, shared_ct_series):
    expect_ok({"op": "nifti", "input": str(shared_ct_series), "output": str(tmp_path / "ct.nii.gz")})
    assert_same_nifti(tmp_path / "ct.nii.gz", run_dcm2niix(shared_ct_series, tmp_path / "ref"))
