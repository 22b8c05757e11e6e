"""`split_multiframe`: one single-frame file per frame, the frame's functional groups carried over.

Frames are cut from the stored pixel data, never decoded: a native frame is a byte (or bit)
range, an encapsulated frame keeps its compressed bytes under the same transfer syntax.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, cast

from dicom_hub.contract.dicom.part10 import read_dataset, write_dataset
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.files import check_writable
from dicom_hub.contract.job import Job, Outcome

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np
    from pydicom import Dataset

# Elements that describe the whole multi-frame object and lose their meaning in one frame.
_WHOLE_OBJECT_TAGS = (0x7FE00001, 0x7FE00002)  # Extended Offset Table (+ Lengths)
_GRID_FRAME_OFFSET_VECTOR = 0x3004000C


def split_multiframe(job: Job) -> Outcome:
    ds = read_dataset(job.input)
    if "PixelData" not in ds:
        raise HubError(ErrorCode.INVALID_REQUEST, f"{job.input.name} has no Pixel Data to split", "give a multi-frame image")
    count = _frame_count(ds)
    wanted = job.option("frames")
    frames = sorted(wanted) if wanted else list(range(count))
    outside = [f for f in frames if f >= count]
    if outside:
        raise HubError(
            ErrorCode.INVALID_REQUEST,
            f"frame {outside[0]} is out of range: {job.input.name} has {count} frame(s), valid frames are 0..{count - 1}",
            "frames are zero-based",
        )
    targets = {f: job.output_path / f"frame_{f + 1:05d}.dcm" for f in frames}
    for path in targets.values():
        check_writable(path, job.overwrite)
    template = _template(ds)
    new_uids = bool(job.option("new_uids"))
    written = []
    for index, data in _frames(ds, count, set(frames)):
        single = _single_frame(template, ds, index, data, new_uids)
        written.append(str(write_dataset(single, targets[index], overwrite=job.overwrite)))
    return Outcome(metadata={"number_of_frames": count, "frames_written": len(written), "frames": frames}, output_files=written)


def _frame_count(ds: Dataset) -> int:
    try:
        return max(int(ds.get("NumberOfFrames") or 1), 1)
    except (TypeError, ValueError):
        raise HubError(ErrorCode.DECODE_ERROR, f"Number of Frames {ds.get('NumberOfFrames')!r} is not a number", "fix (0028,0008)") from None


def _template(ds: Dataset) -> Dataset:
    """The data set without its pixel data and per-frame groups (copied once, not per frame)."""
    from pydicom import Dataset

    shell = Dataset()
    for elem in ds:
        if elem.tag not in (0x7FE00010, 0x52009230, *_WHOLE_OBJECT_TAGS):
            shell.add(elem)
    template = copy.deepcopy(shell)
    template.file_meta = copy.deepcopy(ds.file_meta)
    return template


def _frames(ds: Dataset, count: int, wanted: set[int]) -> Iterator[tuple[int, bytes]]:
    """(index, stored bytes of that frame) for the wanted frames, in order."""
    ts = ds.file_meta.TransferSyntaxUID
    if ts.is_encapsulated:
        yield from _encapsulated_frames(ds, count, wanted)
        return
    if ds.BitsAllocated == 1:
        yield from _bit_frames(ds, count, wanted)
        return
    from pydicom.pixels.utils import get_expected_length

    size = get_expected_length(ds, unit="bytes") // count  # YBR_FULL_422 subsampling included
    data = ds.PixelData
    if len(data) < size * count:
        raise HubError(ErrorCode.DECODE_ERROR, f"pixel data holds {len(data)} bytes, {count} frames need {size * count}", "the file is damaged; `validate` reports it")
    for index in sorted(wanted):
        yield index, bytes(data[index * size : (index + 1) * size])


def _bit_frames(ds: Dataset, count: int, wanted: set[int]) -> Iterator[tuple[int, bytes]]:
    """1-bit frames need not start on a byte boundary: unpack, cut, pack again."""
    from pydicom.pixels.utils import pack_bits, unpack_bits

    per_frame = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1))
    bits = cast("np.ndarray", unpack_bits(ds.PixelData))  # as_array=True (the default); pydicom annotates a union
    for index in sorted(wanted):
        yield index, pack_bits(bits[index * per_frame : (index + 1) * per_frame])


def _encapsulated_frames(ds: Dataset, count: int, wanted: set[int]) -> Iterator[tuple[int, bytes]]:
    from pydicom.encaps import encapsulate, generate_frames

    extended = None
    if "ExtendedOffsetTable" in ds and "ExtendedOffsetTableLengths" in ds:
        extended = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
    try:
        for index, frame in enumerate(generate_frames(ds.PixelData, number_of_frames=count, extended_offsets=extended)):
            if index >= count:
                break
            if index in wanted:
                yield index, encapsulate([frame])
    except (ValueError, TypeError) as err:
        raise HubError(ErrorCode.DECODE_ERROR, f"cannot separate the compressed frames: {err}", "the encapsulated pixel data is damaged") from None


def _single_frame(template: Dataset, source: Dataset, index: int, data: bytes, new_uids: bool) -> Dataset:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    from pydicom.uid import generate_uid

    single = copy.deepcopy(template)
    single.NumberOfFrames = 1
    per_frame = source.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None and index < len(per_frame):
        single.PerFrameFunctionalGroupsSequence = Sequence([copy.deepcopy(per_frame[index])])
    _pick_frame_vector(single, source, index)
    if new_uids:
        reference = Dataset()
        reference.ReferencedSOPClassUID = source.SOPClassUID
        reference.ReferencedSOPInstanceUID = source.SOPInstanceUID
        reference.ReferencedFrameNumber = index + 1
        single.SourceImageSequence = Sequence([*single.get("SourceImageSequence", []), reference])
        single.SOPInstanceUID = generate_uid()
        single.file_meta.MediaStorageSOPInstanceUID = single.SOPInstanceUID
    single.PixelData = data
    single["PixelData"].VR = source["PixelData"].VR
    return single


def _pick_frame_vector(single: Dataset, source: Dataset, index: int) -> None:
    """Frame Increment Pointer targets keep only this frame's value.

    Grid Frame Offset Vector (RT Dose) needs two values or none, so for it the frame's offset
    moves Image Position (Patient) along the normal instead, and the vector goes.
    """
    if "FrameIncrementPointer" not in source:
        return
    elem = source["FrameIncrementPointer"]
    kept = []
    for tag in elem.value if elem.VM > 1 else [elem.value]:
        if tag == _GRID_FRAME_OFFSET_VECTOR and tag in source and "ImagePositionPatient" in source:
            _move_to_frame(single, source, index)
            continue
        kept.append(tag)
        if tag in source and source[tag].VM > 1 and index < source[tag].VM:
            single[tag].value = source[tag].value[index]
    if kept:
        single.FrameIncrementPointer = kept if len(kept) > 1 else kept[0]
    else:
        del single.FrameIncrementPointer


def _move_to_frame(single: Dataset, source: Dataset, index: int) -> None:
    import numpy as np

    offsets = [float(v) for v in source.GridFrameOffsetVector]
    orientation = np.array([float(v) for v in source.ImageOrientationPatient])
    normal = np.cross(orientation[:3], orientation[3:])
    # Relative offsets start at 0; absolute ones start at the first frame's own coordinate.
    position = np.array([float(v) for v in source.ImagePositionPatient]) + (offsets[index] - offsets[0]) * normal
    single.ImagePositionPatient = [float(f"{v:.6f}") for v in position]
    del single.GridFrameOffsetVector
