"""Synthetic DICOM data built in the tests: single slices, series, multi-frame, nested sequences,
uncommon VRs. Deterministic, small, and written as real Part 10 files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

ROOT = "1.2.826.0.1.3680043.10.1234."  # test UIDs only


def file_meta(sop_class: str, sop_instance: str, ts: str = ExplicitVRLittleEndian) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = ts
    return meta


def ct_slice(
    rows: int = 16,
    cols: int = 16,
    position: tuple[float, float, float] = (0.0, 0.0, 0.0),
    orientation: tuple[float, ...] = (1, 0, 0, 0, 1, 0),
    spacing: tuple[float, float] = (0.5, 0.5),
    instance: int = 1,
    study_uid: str | None = None,
    series_uid: str | None = None,
    seed: int = 0,
    **elements,
) -> Dataset:
    """A small, valid CT image with a deterministic signed 16-bit ramp plus noise."""
    rng = np.random.default_rng(seed)
    ds = Dataset()
    sop_uid = generate_uid(ROOT)
    ds.file_meta = file_meta(CTImageStorage, sop_uid)
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = study_uid or generate_uid(ROOT)
    ds.SeriesInstanceUID = series_uid or generate_uid(ROOT)
    ds.FrameOfReferenceUID = generate_uid(ROOT)
    ds.PatientName = "Synthetic^Patient"
    ds.PatientID = "SYN001"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyDate = "20240102"
    ds.StudyTime = "101010"
    ds.Modality = "CT"
    ds.SeriesNumber = 1
    ds.InstanceNumber = instance
    ds.ImagePositionPatient = list(position)
    ds.ImageOrientationPatient = list(orientation)
    ds.PixelSpacing = list(spacing)
    ds.SliceThickness = 1.0
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.WindowCenter = 40
    ds.WindowWidth = 400
    ramp = np.add.outer(np.arange(rows), np.arange(cols)).astype(np.int16) * 10
    pixels = (ramp + rng.integers(0, 50, size=(rows, cols))).astype(np.int16)
    ds.PixelData = pixels.tobytes()
    for key, value in elements.items():
        setattr(ds, key, value)
    return ds


def save(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def series(folder: Path, count: int = 5, step: float = 2.0, **kwargs) -> list[Path]:
    """A series of `count` axial slices `step` mm apart, one file each."""
    study, series_uid = generate_uid(ROOT), generate_uid(ROOT)
    return [
        save(ct_slice(position=(0.0, 0.0, i * step), instance=i + 1, study_uid=study, series_uid=series_uid, seed=i, **kwargs), folder / f"slice{i:03d}.dcm")
        for i in range(count)
    ]


def multiframe(frames: int = 4, rows: int = 8, cols: int = 8) -> Dataset:
    """An enhanced-style multi-frame greyscale image with per-frame functional groups."""
    ds = ct_slice(rows=rows, cols=cols)
    ds.NumberOfFrames = frames
    cube = np.stack([np.full((rows, cols), 100 * (f + 1), dtype=np.int16) for f in range(frames)])
    ds.PixelData = cube.tobytes()
    groups = []
    for f in range(frames):
        item = Dataset()
        pos = Dataset()
        pos.ImagePositionPatient = [0.0, 0.0, float(f)]
        item.PlanePositionSequence = Sequence([pos])
        groups.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(groups)
    return ds


def with_nested_sequences(ds: Dataset, depth: int = 3) -> Dataset:
    """Add a ReferencedImageSequence with items nested `depth` levels deep."""
    inner = Dataset()
    inner.ReferencedSOPClassUID = CTImageStorage
    inner.ReferencedSOPInstanceUID = generate_uid(ROOT)
    item = inner
    for _ in range(depth - 1):
        outer = Dataset()
        outer.ReferencedSOPClassUID = CTImageStorage
        outer.ReferencedSOPInstanceUID = generate_uid(ROOT)
        outer.ReferencedImageSequence = Sequence([item])
        item = outer
    ds.ReferencedImageSequence = Sequence([item])
    return ds


def with_uncommon_vrs(ds: Dataset) -> Dataset:
    """Elements of VRs that trip converters: AT, FD multi-value, OF-free UN, UR, UC, SV, private LO."""
    ds.add_new(0x00200022, "IS", 1)  # deprecated IS element
    ds.FrameIncrementPointer = 0x00181063  # AT
    ds.add_new(0x00189219, "FD", [0.5, 1.25])  # Tag Angle Second Axis (FD)
    ds.add_new(0x00080120, "UR", "http://example.org/code")  # Code Value URN (UR)
    ds.add_new(0x00400031, "UT", "free text " * 3)
    block = ds.private_block(0x0011, "DICOMHUB TEST", create=True)
    block.add_new(0x10, "LO", "private value")
    return ds
