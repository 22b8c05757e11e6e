"""The transfer syntaxes `transcode` writes, by alias and by UID, and what each one implies."""

from __future__ import annotations

from dataclasses import dataclass

from dicom_hub.contract.errors import ErrorCode, HubError


@dataclass(frozen=True)
class Target:
    """A transfer syntax to write. `method` is its Lossy Image Compression Method code (PS3.3 C.7.6.1.1.5)."""

    alias: str
    uid: str
    compressed: bool = False
    lossy: bool = False
    method: str | None = None
    via_gdcm: bool = False  # pydicom 3 has no encoder for it: python-gdcm encodes the frames


TARGETS: tuple[Target, ...] = (
    Target("explicit", "1.2.840.10008.1.2.1"),
    Target("implicit", "1.2.840.10008.1.2"),
    Target("deflated", "1.2.840.10008.1.2.1.99"),
    Target("big_endian", "1.2.840.10008.1.2.2"),
    Target("rle", "1.2.840.10008.1.2.5", compressed=True),
    Target("jpeg", "1.2.840.10008.1.2.4.50", compressed=True, lossy=True, method="ISO_10918_1", via_gdcm=True),
    Target("jpeg_lossless", "1.2.840.10008.1.2.4.70", compressed=True, via_gdcm=True),
    Target("jpegls", "1.2.840.10008.1.2.4.80", compressed=True),
    Target("jpegls_near", "1.2.840.10008.1.2.4.81", compressed=True, lossy=True, method="ISO_14495_1"),
    Target("j2k", "1.2.840.10008.1.2.4.90", compressed=True),
    Target("j2k_lossy", "1.2.840.10008.1.2.4.91", compressed=True, lossy=True, method="ISO_15444_1"),
    Target("htj2k_lossless", "1.2.840.10008.1.2.4.201", compressed=True),
    Target("htj2k", "1.2.840.10008.1.2.4.203", compressed=True, lossy=True, method="ISO_15444_15"),
)
BY_NAME = {t.alias: t for t in TARGETS} | {t.uid: t for t in TARGETS}
WRITE_REFUSED = {"big_endian": "Explicit VR Big Endian was retired from DICOM in 2004; dicom-hub reads it but does not write it"}
# Option -> the targets it applies to (anything else given with it is a mistake, not a no-op).
TARGET_OPTIONS = {"quality": ("jpeg",), "near_lossless_error": ("jpegls_near",), "compression_ratio": ("j2k_lossy", "htj2k")}


def resolve_target(name: str) -> Target:
    """A target by alias or UID; unknown names list the choices."""
    key = name.strip()
    target = BY_NAME.get(key) or BY_NAME.get(key.lower())
    if target is None:
        choices = "choose one of: " + ", ".join(t.alias for t in TARGETS if t.alias not in WRITE_REFUSED) + " (or their UIDs)"
        raise HubError(ErrorCode.INVALID_REQUEST, f"{_describe(key)} is not a transfer syntax dicom-hub writes", choices)
    if target.alias in WRITE_REFUSED:
        raise HubError(ErrorCode.INVALID_REQUEST, WRITE_REFUSED[target.alias], "write explicit (1.2.840.10008.1.2.1) instead")
    return target


def _describe(key: str) -> str:
    if key.replace(".", "").isdigit():
        from pydicom.uid import UID_dictionary

        if key in UID_dictionary:
            return f"{key} ({UID_dictionary[key][0]})"
    return repr(key)


def check_target_options(target: Target, given: dict) -> None:
    for option, aliases in TARGET_OPTIONS.items():
        if option in given and target.alias not in aliases:
            raise HubError(ErrorCode.INVALID_REQUEST, f"option {option!r} applies to {', '.join(aliases)} only, not to {target.alias}", f"drop {option} or choose {aliases[0]}")
