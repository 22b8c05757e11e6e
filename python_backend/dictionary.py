"""pydicom's data dictionaries, read without importing pydicom.

Why: `import pydicom` runs its package `__init__`, which loads numpy and every pixel-data plugin
(~0.3-0.45 s on the project's machine), while the bytes-level header readers need only the
dictionary: keyword and VR by tag. The dictionaries are plain Python files in pydicom's package
(`_dicom_dict.py`, `_private_dict.py`); this module executes just those files, found through
importlib (never copied into this repository), or takes pydicom's own modules when pydicom is
already imported. The lookups follow pydicom's rules (`pydicom.datadict.get_entry`, repeating
groups such as 60xx included, and `get_private_entry`), and the tests compare them with pydicom's
answers tag by tag.
"""

from __future__ import annotations

import sys
from functools import cache
from types import ModuleType
from typing import Any

UNKNOWN_VR = "UN"


def keyword_for_tag(tag: int) -> str:
    """The keyword of a standard element ('' when the dictionary has none), as pydicom's
    `keyword_for_tag`."""
    entry = _entry(tag)
    return entry[4] if entry is not None else ""


def dictionary_vr(tag: int) -> str | None:
    """The VR of a standard element as the dictionary gives it ('US or SS', ...); None when
    unknown (pydicom's `dictionary_VR` raises KeyError)."""
    entry = _entry(tag)
    return entry[0] if entry is not None else None


def private_dictionary_vr(tag: int, creator: str) -> str | None:
    """The VR of a private element under `creator`, as pydicom's `private_dictionary_VR`; None
    when the private dictionary does not know it."""
    known = _private_dictionaries().get(creator)
    if known is None:
        return None
    group, element = f"{tag >> 16:04X}", f"{tag & 0xFFFF:04X}"
    for key in (group + element, f"{group}xx{element[-2:]}", f"{group[:2]}xxxx{element[-2:]}"):
        if key in known:
            return known[key][0]
    return None


def tag_for_keyword(keyword: str) -> int | None:
    """The tag of a standard keyword (None when unknown), as pydicom's `tag_for_keyword`."""
    return _keywords().get(keyword)


def load() -> None:
    """Read the standard dictionary now (a parent does this once before forking its workers)."""
    _standard()


# -- the tables ----------------------------------------------------------------------------------


def _entry(tag: int) -> tuple[str, str, str, str, str] | None:
    standard, repeaters, masks = _standard()
    entry = standard.get(tag)
    if entry is not None or tag >> 16 & 1:
        return entry
    for mask, (fixed, care) in masks:
        if (tag ^ fixed) & care == 0:
            return repeaters[mask]
    return None


@cache
def _standard() -> tuple[dict[int, Any], dict[str, Any], list[tuple[str, tuple[int, int]]]]:
    """The standard dictionary, the repeating-group one, and the repeaters' bit masks in the
    dictionary's order (the first match wins, as in pydicom's `mask_match`)."""
    module = _pydicom_file("_dicom_dict")
    repeaters = module.RepeatersDictionary
    masks = [(mask, (int(mask.replace("x", "0"), 16), int("".join("F0"[c == "x"] for c in mask), 16))) for mask in repeaters]
    return module.DicomDictionary, repeaters, masks


@cache
def _keywords() -> dict[str, int]:
    standard = _standard()[0]
    return {entry[4]: tag for tag, entry in standard.items()}


@cache
def _private_dictionaries() -> dict[str, dict[str, tuple[str, str, str, str]]]:
    return _pydicom_file("_private_dict").private_dictionaries


def _pydicom_file(name: str) -> ModuleType:
    """pydicom's module `name`: the imported one, else its file executed on its own."""
    imported = sys.modules.get(f"pydicom.{name}")
    if imported is not None:
        return imported
    from importlib.util import find_spec, module_from_spec, spec_from_file_location

    package = find_spec("pydicom")
    if package is None or not package.submodule_search_locations:
        raise ImportError("pydicom is not installed (pip install pydicom)")
    location = list(package.submodule_search_locations)[0]
    spec = spec_from_file_location(f"dicom_hub.python_backend._pydicom{name}", f"{location}/{name}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"pydicom's {name}.py was not found in {location}")
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
