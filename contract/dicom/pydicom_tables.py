"""pydicom's data dictionary, UID dictionary and version, without importing pydicom.

Why: `import pydicom` costs ~0.3-0.45 s (its package imports numpy, requests and every pixel
plugin), more than a whole stream of `info` requests answered from the bytes (`fast_info.py`) or a
batch of files de-identified by the bytes engine. The dictionaries are plain modules of literals
(`pydicom/_dicom_dict.py`, `pydicom/_uid_dict.py`) that import nothing, so they are run on their own
from pydicom's folder (a few ms, from their cached bytecode). The data stays pydicom's: the same
tables answer on both paths. When pydicom is already imported, its loaded modules are used.
"""

from __future__ import annotations

import sys
from functools import cache
from importlib.util import find_spec, module_from_spec, spec_from_file_location
from pathlib import Path
from types import ModuleType
from typing import Any

Entry = tuple[str, str, str, str, str]  # (VR, VM, name, retired, keyword), as in pydicom

# `pydicom.uid.PYDICOM_IMPLEMENTATION_UID`, which pydicom writes as Implementation Class UID.
IMPLEMENTATION_UID = "1.2.826.0.1.3680043.8.498.1"


class TablesUnavailable(ImportError):
    """pydicom is not installed (or its tables are not where pydicom 3 keeps them)."""


@cache
def _pydicom_dir() -> Path:
    spec = find_spec("pydicom")  # finds the package without running its __init__
    if spec is None or spec.origin is None:
        raise TablesUnavailable("pydicom is not installed")
    return Path(spec.origin).parent


@cache
def _table_module(name: str) -> ModuleType:
    """`pydicom.<name>` as loaded by pydicom, or run alone from its file."""
    loaded = sys.modules.get(f"pydicom.{name}")
    if loaded is not None:
        return loaded
    path = _pydicom_dir() / f"{name}.py"
    spec = spec_from_file_location(f"dicom_hub._pydicom_tables.{name}", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise TablesUnavailable(f"pydicom has no {path.name}")
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def pydicom_version() -> str:
    """`pydicom.__version__` (which pydicom itself reads from its distribution's metadata)."""
    loaded = sys.modules.get("pydicom")
    if loaded is not None:
        return str(loaded.__version__)
    # The METADATA beside the package: what importlib.metadata finds, without scanning sys.path.
    found = list(_pydicom_dir().parent.glob("pydicom-*.dist-info/METADATA"))
    if len(found) == 1:
        for line in found[0].read_text(encoding="utf-8").splitlines():
            if line.startswith("Version:"):
                return line.split(":", 1)[1].strip()
    from importlib.metadata import version

    return version("pydicom")


def dictionary() -> dict[int, Entry]:
    """tag -> (VR, VM, name, retired, keyword): pydicom's `DicomDictionary`."""
    table: Any = _table_module("_dicom_dict").DicomDictionary
    return table


def repeaters() -> dict[str, Entry]:
    """The repeating-group entries by mask ('60xx0010'): pydicom's `RepeatersDictionary`."""
    table: Any = _table_module("_dicom_dict").RepeatersDictionary
    return table


@cache
def _masks() -> tuple[tuple[str, int, int], ...]:
    """(mask, bits that must match, which bits count), in pydicom's order (`datadict.masks`)."""
    return tuple(
        (mask, int(mask.replace("x", "0"), 16), int("".join("F0"[c == "x"] for c in mask), 16)) for mask in repeaters()
    )


def entry(tag: int) -> Entry | None:
    """`pydicom.datadict.get_entry(tag)`, None where it raises KeyError."""
    found = dictionary().get(tag)
    if found is None and not (tag >> 16) & 1:
        mask = next((m for m, bits, care in _masks() if (tag ^ bits) & care == 0), None)
        if mask is not None:
            found = repeaters()[mask]
    return found


@cache
def tags_by_keyword() -> dict[str, int]:
    """Keyword -> tag, repeating groups under their first group (OverlayRows -> 0x60000010)."""
    by_keyword = {value[4]: int(mask.replace("x", "0"), 16) for mask, value in repeaters().items()}
    by_keyword.update({value[4]: tag for tag, value in dictionary().items()})
    return by_keyword


@cache
def uid_dictionary() -> dict[str, tuple[str, str, str, str, str]]:
    """UID -> (name, type, info, retired, keyword): pydicom's `UID_dictionary`."""
    table: Any = _table_module("_uid_dict").UID_dictionary
    return table


def uid_name(uid: str) -> str:
    """The UID's name, or the UID itself when the dictionary has none (as `pydicom.uid.UID.name`)."""
    found = uid_dictionary().get(uid)
    return found[0] if found else uid


# -- pydicom.datadict's lookups -------------------------------------------------------------------


def keyword_for_tag(tag: int) -> str:
    """The keyword of a standard element ('' when the dictionary has none): `datadict.keyword_for_tag`."""
    found = entry(tag)
    return found[4] if found is not None else ""


def dictionary_vr(tag: int) -> str | None:
    """The VR of a standard element as the dictionary gives it ('US or SS', ...); None when unknown
    (pydicom's `dictionary_VR` raises KeyError). Answered as `entry(tag)[0]`, from the VRs alone
    (`_vrs`): what the de-identification needs, without running the whole dictionary module."""
    vrs, repeating = _vrs()
    found = vrs.get(tag)
    if found is None and not (tag >> 16) & 1:
        found = next((vr for bits, care, vr in repeating if (tag ^ bits) & care == 0), None)
    return found


@cache
def _vrs() -> tuple[dict[int, str], tuple[tuple[int, int, str], ...]]:
    """The dictionary's VRs by tag, and the repeating groups' as (bits, care, VR) in `_masks`
    order: derived from pydicom's `_dicom_dict.py` once per version of it (`contract.derived`),
    a twelfth of what `dictionary()` loads. pydicom's loaded dictionary when pydicom is imported."""
    if "pydicom._dicom_dict" in sys.modules:
        return _vrs_of_dictionary()
    from ..derived import derived

    return derived("pydicom-vrs", 1, [_pydicom_dir() / "_dicom_dict.py"], _vrs_of_dictionary)


def _vrs_of_dictionary() -> tuple[dict[int, str], tuple[tuple[int, int, str], ...]]:
    masks = tuple((bits, care, repeaters()[mask][0]) for mask, bits, care in _masks())
    return {tag: value[0] for tag, value in dictionary().items()}, masks


@cache
def _standard_keywords() -> dict[str, int]:
    return {value[4]: tag for tag, value in dictionary().items()}


def tag_for_keyword(keyword: str) -> int | None:
    """The tag of a standard keyword (None when unknown): `datadict.tag_for_keyword`, which, unlike
    `tags_by_keyword`, knows no repeating-group keywords."""
    return _standard_keywords().get(keyword)


def private_dictionary_vr(tag: int, creator: str) -> str | None:
    """The VR of a private element under `creator` (`datadict.private_dictionary_VR`); None when
    the private dictionary does not know it."""
    table: Any = _table_module("_private_dict").private_dictionaries
    known = table.get(creator)
    if known is None:
        return None
    group, element = f"{tag >> 16:04X}", f"{tag & 0xFFFF:04X}"
    for key in (group + element, f"{group}xx{element[-2:]}", f"{group[:2]}xxxx{element[-2:]}"):
        if key in known:
            return str(known[key][0])
    return None

