"""Verify the DICOM files an op wrote before its answer says ok.

Every backend's output goes through the same checks; the dispatcher calls `verify_outcome`
after the backend returns; `batch_decompress` calls `verify_file` per file.

- `structure` (always): the file parses completely (every element, every sequence item); its
  transfer syntax is the one asked for; native Pixel Data is as long as Rows x Columns x
  Samples x Bits Allocated x Frames says (1-bit packed, odd lengths padded), encapsulated
  Pixel Data is a Basic Offset Table item and at least one fragment per frame, item tags right;
  the file meta names the data set's SOP Instance UID. Lossless ops also keep the SOP Instance
  UID and every element they were not asked to change. Pixel Data is never decoded.
- `pixels` (option `verify: "pixels"`): lossless conversions also decode input and output and
  compare every pixel value. Decoding both images costs far more than the op's own check, so
  this level is asked for, not the default.

A failed check is `backend_error` naming the reason, and the files the op wrote are removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.job import Job, Outcome
from dicom_hub.contract.transfer_syntaxes import LOSSY_UIDS

if TYPE_CHECKING:
    from pydicom import Dataset

LEVELS = ("structure", "pixels")
DEFAULT_LEVEL = "structure"

_PIXEL_DATA = 0x7FE00010
_NUMBER_OF_FRAMES = 0x00280008
_TRAILING_PADDING = 0xFFFCFFFC
_ITEM, _SEQUENCE_DELIMITER = 0xFFFEE000, 0xFFFEE0DD
_BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})

# What re-encoding the pixels may change (PS3.5 8.2: colour is stored decoded as RGB, colour by
# plane or by pixel, a 1-bit image as 8-bit samples), and the offset tables of the new encoding.
_ENCODING_TAGS = (
    "PixelData",
    "PhotometricInterpretation",
    "PlanarConfiguration",
    "BitsAllocated",
    "ExtendedOffsetTable",
    "ExtendedOffsetTableLengths",
    "EncapsulatedPixelDataValueTotalLength",
    "DerivationDescription",  # DCMTK describes the compression it applied
)
# A decompressed lossy source may have its Lossy Image Compression recorded (PS3.3 C.7.6.1.1.5).
_LOSSY_HISTORY_TAGS = ("LossyImageCompression", "LossyImageCompressionRatio", "LossyImageCompressionMethod")
# Lossy JPEG holds no palette: a PALETTE COLOR image goes in as RGB.
_PALETTE_TAGS = (
    "SamplesPerPixel",
    "RedPaletteColorLookupTableDescriptor",
    "GreenPaletteColorLookupTableDescriptor",
    "BluePaletteColorLookupTableDescriptor",
    "RedPaletteColorLookupTableData",
    "GreenPaletteColorLookupTableData",
    "BluePaletteColorLookupTableData",
    "SegmentedRedPaletteColorLookupTableData",
    "SegmentedGreenPaletteColorLookupTableData",
    "SegmentedBluePaletteColorLookupTableData",
    "PaletteColorLookupTableUID",
)
# What lossy compression records and may change besides (PS3.3 C.7.6.1.1.5, C.12.1.1.2 derivation).
_LOSSY_TAGS = (
    "SOPInstanceUID",
    "LossyImageCompression",
    "LossyImageCompressionRatio",
    "LossyImageCompressionMethod",
    "ImageType",
    "DerivationDescription",
    "DerivationCodeSequence",
    "SourceImageSequence",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "SmallestImagePixelValue",
    "LargestImagePixelValue",
)


@dataclass(frozen=True)
class Expectation:
    """What an op promises about a file it wrote, compared with its input."""

    transfer_syntax: str | None = None  # the UID the file must carry; None: any
    same_syntax: bool = False  # the input's transfer syntax
    keep_uid: bool = False  # the input's SOP Instance UID
    may_change: frozenset[int] | None = None  # tags the op may change; None: elements are not compared
    lossless_pixels: bool = False  # decoded pixel values equal the input's (level `pixels`)
    source: Path | None = field(default=None, compare=False)


def verify_outcome(job: Job, outcome: Outcome, backend: str, level: str = DEFAULT_LEVEL) -> None:
    """Check every DICOM file `outcome` lists; on the first failure remove them all and raise."""
    expectation = expectation_for(job)
    if expectation is None:
        return
    written = [Path(p) for p in outcome.output_files if Path(p).is_file()]
    source = _read_source(expectation.source)
    for path in written:
        problem = file_problem(path, expectation, source, level)
        if problem:
            _remove(written)
            raise HubError(
                ErrorCode.BACKEND_ERROR,
                f"{backend} wrote {path.name} for {job.op!r} but it fails verification: {problem}; the output was removed",
                f"this is a {backend} defect; try another backend (`dicom-hub ops {job.op}`) and report it",
            )


def verify_file(path: Path, *, source: Path | None = None, transfer_syntax: str | None = None, lossless: bool = False, level: str = DEFAULT_LEVEL) -> str | None:
    """The reason `path` is not a sound DICOM file, else None; for batch ops, file by file.

    With `source`, the file must keep its SOP Instance UID and every element except the pixel
    encoding (a decompressed or re-encoded copy); `lossless` with level `pixels` compares pixels.
    Nothing is removed: the caller decides what a failure means for its batch.
    """
    expectation = Expectation(
        transfer_syntax=transfer_syntax,
        keep_uid=source is not None,
        may_change=_tags(_ENCODING_TAGS) if source is not None else None,
        lossless_pixels=lossless and source is not None,
        source=source,
    )
    return file_problem(path, expectation, _read_source(source), level)


def expectation_for(job: Job) -> Expectation | None:
    """What the op promises about its output, or None for ops that write no DICOM file."""
    if job.op == "transcode":
        from dicom_hub.contract.transfer_syntaxes import resolve_written

        target = resolve_written(str(job.option("transfer_syntax")))  # the catalog refused any other target
        keep_uid = not target.lossy or bool(job.option("keep_sop_instance_uid"))
        changes = _ENCODING_TAGS + (_LOSSY_TAGS + _PALETTE_TAGS if target.lossy else ())
        if keep_uid:
            changes = tuple(name for name in changes if name != "SOPInstanceUID")
        return Expectation(target.uid, keep_uid=keep_uid, may_change=_tags(changes), lossless_pixels=not target.lossy, source=job.input)
    if job.op == "modify_tags":
        from dicom_hub.contract.dicom.tags import parse_tag

        named = {int(parse_tag(name)) for name in [*(job.option("set") or {}), *(job.option("delete") or [])]}
        keep_uid = 0x00080018 not in named
        may_change = frozenset(named | _tags(("SpecificCharacterSet",)))
        pixels_kept = not any(tag >> 16 in (0x0028, 0x7FE0) for tag in named)  # no image attribute was edited
        return Expectation(same_syntax=True, keep_uid=keep_uid, may_change=may_change, lossless_pixels=pixels_kept, source=job.input)
    if job.op == "anonymize":
        return Expectation(same_syntax=True, lossless_pixels=True, source=job.input)
    if job.op in ("from_json", "split_multiframe"):
        return Expectation()
    return None


def file_problem(path: Path, expectation: Expectation, source: Dataset | None, level: str = DEFAULT_LEVEL) -> str | None:
    """The first check `path` fails, in words, or None."""
    try:
        ds = _read(path)
    except HubError as err:
        return err.message
    syntax = _syntax(ds)
    if expectation.transfer_syntax and syntax != expectation.transfer_syntax:
        return f"its transfer syntax is {syntax} ({_uid_name(syntax)}), not the requested {expectation.transfer_syntax} ({_uid_name(expectation.transfer_syntax)})"
    # A defect the input already had is carried over, not made: only a sound input holds its
    # output to the strict rules (and an op with no DICOM input, such as from_json, to the lenient ones).
    strict = source is not None and pixel_data_problem(source) is None
    problem = pixel_data_problem(ds, strict=strict)
    if source is not None and not problem and _identity_problem(source) is None:
        problem = _identity_problem(ds)
    if problem or source is None:
        return problem
    if expectation.same_syntax and syntax != _syntax(source):
        return f"its transfer syntax is {syntax}, the input's is {_syntax(source)}, and the op does not change it"
    if expectation.keep_uid and ds.get("SOPInstanceUID") != source.get("SOPInstanceUID"):
        return f"SOP Instance UID {ds.get('SOPInstanceUID')} differs from the input's {source.get('SOPInstanceUID')}, which this op keeps"
    if expectation.may_change is not None:
        may_change = expectation.may_change
        if _syntax(source) in LOSSY_UIDS and syntax != _syntax(source):  # its pixel values were approximations already
            may_change |= _tags(_LOSSY_HISTORY_TAGS)
        elif "LossyImageCompression" not in source and ds.get("LossyImageCompression") == "00":
            may_change |= _tags(("LossyImageCompression",))  # "never lossy compressed", now said
        changed = changed_elements(source, ds, may_change)
        if changed:
            more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
            return f"elements the op was not asked to change differ from the input: {'; '.join(changed[:3])}{more}"
    if level == "pixels" and expectation.lossless_pixels:
        return pixel_value_problem(source, ds)
    return None


def _read_source(path: Path | None) -> Dataset | None:
    """The op's input to compare with; one pydicom cannot read (a backend may read more) leaves
    only the checks that need no input."""
    if path is None:
        return None
    try:
        return _read(path)
    except HubError:
        return None


def _read(path: Path) -> Dataset:
    """A complete parse of the structure: every element's tag and length, every sequence item,
    at every depth. Values are compared as the bytes read and converted only when those differ
    (converting every value would cost more than most ops); large values stay on disk, unread."""
    from dicom_hub.contract.dicom.part10 import read_dataset

    ds = read_dataset(path, defer_size=_DEFER_BYTES, parse_all=False)
    try:
        _parse_items(ds)
    except Exception as err:  # pydicom raises many types on corrupt items
        raise HubError(ErrorCode.DECODE_ERROR, f"a sequence of {path.name} does not parse: {type(err).__name__}: {err}", "the file is corrupt") from None
    return ds


def _parse_items(ds: Dataset) -> None:
    """Parse every sequence into its items, recursively (pydicom leaves defined-length ones as bytes)."""
    from pydicom.datadict import dictionary_VR

    for tag in list(ds.keys()):
        raw = ds.get_item(tag, keep_deferred=True)
        vr = raw.VR
        if vr is None or vr == "UN":
            try:
                vr = dictionary_VR(tag)
            except KeyError:
                vr = "SQ" if _length(raw) == 0xFFFFFFFF and tag != _PIXEL_DATA else vr
        if vr == "SQ":
            for item in ds[tag].value:
                _parse_items(item)


_DEFER_BYTES = 1 << 16  # Pixel Data and other bulk values are checked by length, not read


def _syntax(ds: Dataset) -> str:
    from dicom_hub.contract.dicom.pixels.decode import transfer_syntax

    return str(transfer_syntax(ds))


def _identity_problem(ds: Dataset) -> str | None:
    meta = getattr(ds, "file_meta", None)
    if meta is None or "SOPInstanceUID" not in ds:
        return None
    if meta.get("MediaStorageSOPInstanceUID") != ds.SOPInstanceUID:
        return f"File Meta names SOP Instance {meta.get('MediaStorageSOPInstanceUID')} but the data set is {ds.SOPInstanceUID}"
    return None


# -- Pixel Data structure ------------------------------------------------------------------------


def pixel_data_problem(ds: Dataset, strict: bool = True) -> str | None:
    """Native: the length the image attributes call for. Encapsulated: well-formed items.

    Too few bytes, or broken items, can never be decoded. `strict` also refuses excess bytes
    and Pixel Data without the attributes that size it, which readers tolerate.
    An empty Pixel Data (a value left out, e.g. a bulk data URI) has nothing to check.
    """
    from pydicom.uid import UID

    raw = ds.get_item(_PIXEL_DATA, keep_deferred=True)
    length = (_length(raw) if _deferred(raw) else len(ds.PixelData or b"")) if raw is not None else 0
    if not length:
        return None
    syntax = UID(_syntax(ds))
    if not syntax.is_transfer_syntax:
        return f"it declares transfer syntax {str(syntax)[:80]!r}, which DICOM does not define, so its Pixel Data cannot be read"
    if syntax.is_encapsulated:
        return fragments_problem(ds.PixelData, _frames(ds))
    try:
        from pydicom.pixels.utils import get_expected_length

        expected = get_expected_length(ds, unit="bytes")
        if not isinstance(expected, int):
            raise TypeError(f"they give {expected!r}")
    except (AttributeError, KeyError, TypeError, ValueError) as err:
        return f"Pixel Data is present but the image attributes that size it are not: {err}" if strict else None
    if length < expected or strict and length > expected + expected % 2:
        return f"Pixel Data holds {length} bytes but Rows x Columns x Samples x Bits Allocated x Frames call for {expected}"
    return None


def fragments_problem(value: bytes, frames: int) -> str | None:
    """Encapsulated Pixel Data (PS3.5 A.4): items only, a Basic Offset Table first, >= 1 fragment a frame."""
    import struct

    offsets, fragments, position = None, 0, 0
    while position < len(value):
        if position + 8 > len(value):
            return f"encapsulated Pixel Data ends inside an item header at byte {position}"
        tag_group, tag_element, length = struct.unpack_from("<HHL", value, position)
        tag = tag_group << 16 | tag_element
        if tag == _SEQUENCE_DELIMITER:
            break
        if tag != _ITEM:
            return f"encapsulated Pixel Data has tag ({tag_group:04X},{tag_element:04X}) at byte {position} where an item (FFFE,E000) belongs"
        if length == 0xFFFFFFFF or position + 8 + length > len(value):
            return f"an encapsulated Pixel Data item at byte {position} declares {length} bytes but {len(value) - position - 8} remain"
        if offsets is None:
            offsets = struct.unpack_from(f"<{length // 4}L", value, position + 8) if length % 4 == 0 else None
            if offsets is None:
                return f"the Basic Offset Table is {length} bytes, not a multiple of 4"
        else:
            fragments += 1
        position += 8 + length
    if offsets is None:
        return "encapsulated Pixel Data has no Basic Offset Table item"
    if fragments < frames:
        return f"encapsulated Pixel Data has {fragments} fragment(s) for {frames} frame(s)"
    if offsets and (len(offsets) != frames or offsets[0] != 0 or list(offsets) != sorted(offsets)):
        return f"the Basic Offset Table lists {len(offsets)} offset(s) for {frames} frame(s) (must start at 0 and increase)"
    return None


def _frames(ds: Dataset) -> int:
    try:
        return max(int(ds.get("NumberOfFrames") or 1), 1)
    except (TypeError, ValueError):
        return 1


# -- Elements and pixel values -------------------------------------------------------------------


def changed_elements(before: Dataset, after: Dataset, may_change: frozenset[int]) -> list[str]:
    """Elements added, removed or changed between two data sets, except those in `may_change`.

    Group lengths and trailing padding are encoding details, not content. Binary values read in
    different byte orders, and values too large to read (deferred), are compared by length.
    """
    swapped = before.original_encoding[1] != after.original_encoding[1]
    old, new = dict(before.items()), dict(after.items())  # raw elements, nothing converted
    changes = []
    for tag in sorted(old.keys() ^ new.keys() | {t for t, elem in old.items() if t in new and not _same_bytes(elem, new[t], swapped)}):
        if int(tag) in may_change or tag.element == 0 or tag == _TRAILING_PADDING:
            continue
        if tag == _NUMBER_OF_FRAMES and _frames(before) == _frames(after):
            continue  # absent means one frame
        if tag not in new:
            changes.append(f"{_tag_name(tag)} was removed")
        elif tag not in old:
            changes.append(f"{_tag_name(tag)} was added")
        elif not _same_value(before, after, tag, swapped):
            changes.append(f"{_tag_name(tag)} changed")
    return changes


def _same_bytes(first: Any, second: Any, swapped: bool) -> bool:
    """The same bytes in the same byte order: the same value, nothing to convert."""
    return not swapped and isinstance(first.value, bytes) and first.value == second.value


def _same_value(before: Dataset, after: Dataset, tag: Any, swapped: bool) -> bool:
    first, second = before.get_item(tag, keep_deferred=True), after.get_item(tag, keep_deferred=True)
    if _deferred(first) or _deferred(second):
        return _length(first) == _length(second)
    first, second = before[tag], after[tag]
    if first.VR != second.VR and (tag.is_private or "UN" in (first.VR, second.VR)):
        return True  # a private element written as Implicit VR loses its VR: its value reads differently
    if first.VR == "SQ" and second.VR == "SQ":
        items = list(zip(first.value, second.value, strict=False))
        return len(first.value) == len(second.value) and not any(changed_elements(a, b, frozenset()) for a, b in items)
    if swapped and first.VR in _BINARY_VRS:
        return len(first.value or b"") == len(second.value or b"")
    if first.VR == second.VR == "DS":
        return _same_decimals(first.value, second.value)
    return bool(first.value == second.value)


def _same_decimals(first: Any, second: Any) -> bool:
    """Decimal strings written another way ("0.661468" and ".661467999999999") are the same
    number to the precision a double holds; a toolkit's formatting is not a change."""
    import math

    firsts, seconds = _listed(first), _listed(second)
    if len(firsts) != len(seconds):
        return False
    try:
        return all(a == b or math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-12) for a, b in zip(firsts, seconds, strict=True))
    except (TypeError, ValueError):
        return bool(first == second)


def _listed(value: Any) -> list[Any]:
    """An element value as a list of its values (none, one or several)."""
    if value is None or value == "":
        return []
    if isinstance(value, str | int | float):
        return [value]
    return list(value)


def _deferred(elem: Any) -> bool:
    from pydicom.dataelem import RawDataElement

    return isinstance(elem, RawDataElement) and elem.value is None and bool(elem.length)


def _length(elem: Any) -> int:
    from pydicom.dataelem import RawDataElement

    if isinstance(elem, RawDataElement):
        return int(elem.length)
    return len(elem.value or b"") if isinstance(elem.value, bytes) else -1


def pixel_value_problem(before: Dataset, after: Dataset) -> str | None:
    """Decode both images and compare every value (for conversions that keep the pixels).

    A lossy input (JPEG baseline/extended, JPEG-LS near-lossless, lossy JPEG 2000) decodes to
    values that conforming decoders may round differently by one (ISO/IEC 10918-2), so a
    decompressed copy made by another decoder may differ from pydicom's by that much, no more.
    Lossy colour is not compared: decoders also differ in chroma upsampling and YCbCr -> RGB.
    """
    import numpy as np
    from dicom_hub.contract.dicom.pixels.decode import decode

    lossy = _syntax(before) in LOSSY_UIDS
    if "PixelData" not in before or lossy and int(before.get("SamplesPerPixel") or 1) > 1:
        return None
    try:
        expected = decode(before, "input")
    except HubError:
        return None  # the op may read what pydicom cannot: nothing to compare with, not the output's fault
    try:
        actual = decode(after, "output")
    except HubError as err:
        return f"its pixels do not decode: {err.message}"
    if expected.shape != actual.shape:
        return f"the decoded image is {actual.shape}, the input's {expected.shape}"
    tolerance = 1 if lossy else 0
    difference = np.abs(expected.astype(np.float64) - actual.astype(np.float64))
    differing = int(np.count_nonzero(difference > tolerance))
    if differing:
        allowed = " by more than the 1 that decoders of its lossy input may round" if tolerance else ""
        return f"{differing} decoded pixel value(s) differ from the input's{allowed} (largest difference {difference.max():g}) in a conversion that keeps the pixels"
    return None


def _tags(keywords: tuple[str, ...]) -> frozenset[int]:
    from pydicom.tag import Tag

    return frozenset(int(Tag(name)) for name in keywords)  # Tag raises on an unknown keyword


def _tag_name(tag: Any) -> str:
    from pydicom.datadict import keyword_for_tag

    return keyword_for_tag(tag) or f"({tag.group:04X},{tag.element:04X})"


def _uid_name(uid: str) -> str:
    from pydicom.uid import UID

    return UID(uid).name


def _remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
