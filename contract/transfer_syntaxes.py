"""Every transfer syntax dicom-hub names: the one table of aliases, UIDs and what each implies.

A row says whether the pixel data is encapsulated (its codec family), whether the encoding is
lossy and which Lossy Image Compression Method it records (PS3.3 C.7.6.1.1.5), and whether
dicom-hub writes it (a `transcode` target) or only reads it. Backends key their own facts (the
tool flag or encoder that writes a syntax) by these aliases; `resolve_written` is the one resolver
of a `transcode` target, so the same request gets the same answer from every backend. The
`transfer_syntax` enum of `contract/ops/pixels.json` is `written_names()` (a test holds them equal).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ErrorCode, HubError


@dataclass(frozen=True)
class TransferSyntax:
    """One transfer syntax. `name` is its PS3.6 name (as pydicom spells it)."""

    alias: str
    uid: str
    name: str
    codec: str | None = None  # codec family of the encapsulated frames (rle, jpeg, jpegls, j2k); None: native
    lossy: bool = False
    method: str | None = None  # Lossy Image Compression Method (0028,2114) that lossy output records
    written: bool = True  # a `transcode` target; False: read (decoded) only

    @property
    def compressed(self) -> bool:
        """Whether the pixel data is encapsulated (compressed frames)."""
        return self.codec is not None


_TS = TransferSyntax  # short, for the table
TABLE: tuple[TransferSyntax, ...] = (
    _TS("explicit", "1.2.840.10008.1.2.1", "Explicit VR Little Endian"),
    _TS("implicit", "1.2.840.10008.1.2", "Implicit VR Little Endian"),
    _TS("deflated", "1.2.840.10008.1.2.1.99", "Deflated Explicit VR Little Endian"),
    _TS("big_endian", "1.2.840.10008.1.2.2", "Explicit VR Big Endian", written=False),
    _TS("rle", "1.2.840.10008.1.2.5", "RLE Lossless", "rle"),
    _TS("jpeg", "1.2.840.10008.1.2.4.50", "JPEG Baseline (Process 1)", "jpeg", lossy=True, method="ISO_10918_1"),
    _TS("jpeg_extended", "1.2.840.10008.1.2.4.51", "JPEG Extended (Process 2 and 4)", "jpeg", lossy=True, method="ISO_10918_1", written=False),
    _TS("jpeg_lossless_p14", "1.2.840.10008.1.2.4.57", "JPEG Lossless, Non-Hierarchical (Process 14)", "jpeg", written=False),
    _TS("jpeg_lossless", "1.2.840.10008.1.2.4.70", "JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])", "jpeg"),
    _TS("jpegls", "1.2.840.10008.1.2.4.80", "JPEG-LS Lossless Image Compression", "jpegls"),
    _TS("jpegls_near", "1.2.840.10008.1.2.4.81", "JPEG-LS Lossy (Near-Lossless) Image Compression", "jpegls", lossy=True, method="ISO_14495_1"),
    _TS("j2k", "1.2.840.10008.1.2.4.90", "JPEG 2000 Image Compression (Lossless Only)", "j2k"),
    _TS("j2k_lossy", "1.2.840.10008.1.2.4.91", "JPEG 2000 Image Compression", "j2k", lossy=True, method="ISO_15444_1"),
    _TS("htj2k_lossless", "1.2.840.10008.1.2.4.201", "High-Throughput JPEG 2000 Image Compression (Lossless Only)", "j2k"),
    _TS("htj2k_lossless_rpcl", "1.2.840.10008.1.2.4.202", "High-Throughput JPEG 2000 with RPCL Options Image Compression (Lossless Only)", "j2k", written=False),
    _TS("htj2k", "1.2.840.10008.1.2.4.203", "High-Throughput JPEG 2000 Image Compression", "j2k", lossy=True, method="ISO_15444_15"),
)

BY_ALIAS: dict[str, TransferSyntax] = {ts.alias: ts for ts in TABLE}
BY_UID: dict[str, TransferSyntax] = {ts.uid: ts for ts in TABLE}
WRITTEN: tuple[TransferSyntax, ...] = tuple(ts for ts in TABLE if ts.written)
LOSSY_UIDS = frozenset(ts.uid for ts in TABLE if ts.lossy)
NATIVE_UIDS = frozenset(ts.uid for ts in TABLE if not ts.compressed)

# Why a read-only syntax is not written, when there is more to say than "read only".
_READ_ONLY_REASONS = {"big_endian": "Explicit VR Big Endian was retired from DICOM in 2004; dicom-hub reads it but does not write it"}


def uid(alias: str) -> str:
    """The UID of a table alias (a KeyError for a name that is not one: a typo in our own code)."""
    return BY_ALIAS[alias].uid


def written_names() -> list[str]:
    """What a `transcode` target may be: every written alias, then every written UID."""
    return [ts.alias for ts in WRITTEN] + [ts.uid for ts in WRITTEN]


def resolve_written(name: str) -> TransferSyntax:
    """A `transcode` target by alias or UID; anything else is `invalid_request` saying why."""
    ts = BY_ALIAS.get(name) or BY_UID.get(name)
    if ts is None:
        choices = "choose one of: " + ", ".join(t.alias for t in WRITTEN) + " (or their UIDs)"
        raise HubError(ErrorCode.INVALID_REQUEST, f"{_describe(name)} is not a transfer syntax dicom-hub writes", choices)
    if not ts.written:
        reason = _READ_ONLY_REASONS.get(ts.alias, f"{ts.name} ({ts.uid}) is read only: dicom-hub decodes it but does not write it")
        instead = "j2k_lossy" if ts.lossy else "explicit"
        raise HubError(ErrorCode.INVALID_REQUEST, reason, f"write {instead} ({uid(instead)}) instead")
    return ts


def _describe(name: str) -> str:
    """A name as the user wrote it, with pydicom's name when it is a UID pydicom knows."""
    if name.replace(".", "").isdigit():
        from pydicom.uid import UID_dictionary

        if name in UID_dictionary:
            return f"{name} ({UID_dictionary[name][0]})"
    return repr(name)
