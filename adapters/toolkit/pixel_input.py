"""What a toolkit adapter checks in the input's header before handing its pixels to a tool.

Some toolkits answer such inputs wrongly rather than failing (GDCM zero-fills truncated Pixel Data),
others fail without saying why. The header, read with pydicom without loading the pixels, tells
which condition of `contract/input-conditions.json` applies, so every backend refuses it with the
same code.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from dicom_hub.adapters.toolkit import syntaxes
from dicom_hub.contract.conditions import refusal
from dicom_hub.contract.pixel_size import PixelClaim, is_subsampled, native_shortfall, stored_bytes


@dataclass(frozen=True)
class PixelHeader:
    """The image pixel attributes of a file, and where its Pixel Data lies."""

    transfer_syntax: str | None
    has_pixel_data: bool
    pixel_vr: str | None  # as stored (explicit VR) or the dictionary's (implicit)
    float_pixel_data: bool
    rows: int
    columns: int
    samples: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    frames: int
    photometric: str
    declared_length: int | None  # None: undefined length (encapsulated)
    value_offset: int | None
    file_size: int
    has_modality_lut_sequence: bool
    segmented_palette: bool
    enhanced: bool

    @property
    def native(self) -> bool:
        return self.transfer_syntax is None or self.transfer_syntax in syntaxes.NATIVE

    def native_claim(self) -> PixelClaim:
        """What the image attributes call for, against the native Pixel Data the file holds."""
        stored = stored_bytes(self.declared_length or 0, self.value_offset, self.file_size, self.transfer_syntax == syntaxes.DEFLATED_LE)
        return PixelClaim(self.rows, self.columns, self.frames, self.samples, self.bits_allocated, stored, encapsulated=False, subsampled=is_subsampled(self.photometric))

    @property
    def expected_length(self) -> int:
        """Bytes of native Pixel Data the image attributes call for (bit-packed for 1-bit data)."""
        return self.native_claim().total_bytes


def read_pixel_header(path: Path) -> PixelHeader:
    """The header of `path` (a damaged or non-DICOM file is refused with its code)."""
    from pydicom import dcmread
    from pydicom.tag import BaseTag

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = dcmread(path, defer_size=1024, force=True)
        except Exception as err:  # pydicom's read errors have no common base class
            raise refusal(_read_condition(path), f"cannot read the header of {path.name}: {err}", "the file is damaged, truncated or not DICOM") from None
    cut = next((str(w.message) for w in caught if "End of file reached" in str(w.message)), None)
    if cut is not None:  # pydicom drops an undefined-length element the file ends inside (encapsulated Pixel Data)
        raise refusal("truncated_pixel_data", f"{path.name} ends inside an element: {cut.split(' in file ')[0]}", "the file is truncated; it cannot be decoded faithfully")
    meta = getattr(ds, "file_meta", None)
    ts = str(meta.TransferSyntaxUID) if meta is not None and "TransferSyntaxUID" in meta else None
    raw = ds._dict.get(BaseTag(0x7FE00010))
    length = getattr(raw, "length", None)
    undefined = length in (None, 0xFFFFFFFF)
    try:
        return PixelHeader(
            transfer_syntax=ts,
            has_pixel_data=raw is not None,
            pixel_vr=getattr(raw, "VR", None),
            float_pixel_data=0x7FE00008 in ds or 0x7FE00009 in ds,
            rows=int(ds.get("Rows") or 0),
            columns=int(ds.get("Columns") or 0),
            samples=int(ds.get("SamplesPerPixel") or 1),
            bits_allocated=int(ds.get("BitsAllocated") or 0),
            bits_stored=int(ds.get("BitsStored") or ds.get("BitsAllocated") or 0),
            signed=bool(ds.get("PixelRepresentation") or 0),
            frames=max(int(ds.get("NumberOfFrames") or 1), 1),
            photometric=str(ds.get("PhotometricInterpretation") or "").strip(),
            declared_length=None if undefined else length,
            value_offset=getattr(raw, "value_tell", None),
            file_size=os.path.getsize(path),
            has_modality_lut_sequence="ModalityLUTSequence" in ds,
            segmented_palette=0x00281221 in ds,
            enhanced="SharedFunctionalGroupsSequence" in ds or "PerFrameFunctionalGroupsSequence" in ds,
        )
    except Exception as err:  # TypeError/ValueError, or pydicom's BytesLengthException on a value of the wrong length
        raise refusal("corrupt", f"{path.name} has an unreadable image pixel attribute: {err}", "fix the Image Pixel module") from None


def _read_condition(path: Path) -> str:
    code = syntaxes.read_failure_code(path).value
    return {"input_not_found": "input_missing", "not_dicom": "not_dicom"}.get(code, "corrupt")


def require_pixel_data(path: Path, header: PixelHeader | None = None) -> PixelHeader:
    """Refuse a pixel op on a file without (7FE0,0010) Pixel Data (`no_pixel_data`)."""
    header = header or read_pixel_header(path)
    if not header.has_pixel_data:
        kind = "only Float Pixel Data" if header.float_pixel_data else "no Pixel Data element"
        raise refusal("no_pixel_data", f"{path.name} has {kind}: there are no pixels to process", "pass an image (a file with (7FE0,0010) Pixel Data)")
    return header


def refuse_truncated_pixels(path: Path, header: PixelHeader | None = None) -> PixelHeader:
    """Refuse native Pixel Data shorter than the image attributes say (`truncated_pixel_data`):
    a tool that zero-fills the gap would answer ok with made-up pixels. No Pixel Data passes."""
    header = header or read_pixel_header(path)
    if not header.has_pixel_data or not header.native or header.declared_length is None:
        return header
    shortfall = native_shortfall(header.native_claim(), path.name)
    if shortfall is not None:
        raise refusal("truncated_pixel_data", shortfall, "the file is truncated or its image attributes are wrong; it cannot be decoded faithfully")
    return header


def refuse_one_bit_encapsulated(header: PixelHeader, toolkit: str) -> None:
    """1-bit compressed Pixel Data (e.g. RLE): the toolkits here have no decoder for it (DCMTK and
    dicom-rs say so, GDCM aborts, PixelMed writes no pixels)."""
    if header.has_pixel_data and header.bits_allocated == 1 and not header.native:
        raise refusal(
            "pixel_format_unsupported",
            f"{toolkit} decodes no 1-bit {syntaxes.uid_name(header.transfer_syntax)} pixel data",
            "its 8- and 16-bit decoders do not take 1-bit data; try backend python",
        )
