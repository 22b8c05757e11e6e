"""The transfer syntaxes `transcode` writes, as the Python backend encodes them.

What each syntax is (alias, UID, lossy, Lossy Image Compression Method, written or read only) lives
in `contract/transfer_syntaxes.py`; this module adds only what is particular to this backend:
which targets python-gdcm encodes because pydicom has no encoder for them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.transfer_syntaxes import WRITTEN, TransferSyntax, resolve_written

# pydicom 3 has no encoder for these: python-gdcm encodes the frames.
_VIA_GDCM = frozenset({"jpeg", "jpeg_lossless"})


@dataclass(frozen=True)
class Target(TransferSyntax):
    """A written transfer syntax, with how this backend encodes it."""

    via_gdcm: bool = False


TARGETS: tuple[Target, ...] = tuple(Target(**asdict(ts), via_gdcm=ts.alias in _VIA_GDCM) for ts in WRITTEN)
BY_NAME = {t.alias: t for t in TARGETS} | {t.uid: t for t in TARGETS}
# Option -> the targets it applies to (anything else given with it is a mistake, not a no-op).
TARGET_OPTIONS = {"quality": ("jpeg",), "near_lossless_error": ("jpegls_near",), "compression_ratio": ("j2k_lossy", "htj2k")}


def resolve_target(name: str) -> Target:
    """A target by alias or UID, by the contract's one resolver (same refusals as every backend)."""
    return BY_NAME[resolve_written(name).alias]


def check_target_options(target: Target, given: dict) -> None:
    for option, aliases in TARGET_OPTIONS.items():
        if option in given and target.alias not in aliases:
            raise HubError(ErrorCode.INVALID_REQUEST, f"option {option!r} applies to {', '.join(aliases)} only, not to {target.alias}", f"drop {option} or choose {aliases[0]}")
