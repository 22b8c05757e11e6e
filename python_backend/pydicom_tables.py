"""pydicom's data dictionary and version, without importing pydicom.

`import pydicom` costs ~0.3 s here (its config pulls in the pixel handlers, numpy and requests);
the de-identification fast path and the backend probe need only the dictionary and the version,
so `_dicom_dict.py` is loaded from pydicom's folder by itself (its cached bytecode included),
answering as `pydicom.datadict` does, and the version is read from the installed metadata.
"""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

Entry = tuple[str, str, str, str, str]  # (VR, VM, name, retired, keyword), as in pydicom


def _package_folder() -> Path:
    spec = importlib.util.find_spec("pydicom")  # finds the package without running its __init__
    if spec is None or spec.origin is None:
        raise ImportError("pydicom is not installed")
    return Path(spec.origin).parent


@cache
def pydicom_version() -> str:
    """`pydicom.__version__` (which pydicom itself reads from its distribution's metadata)."""
    loaded = sys.modules.get("pydicom")
    if loaded is not None:
        return str(loaded.__version__)
    # The METADATA beside the package: what importlib.metadata finds, without scanning sys.path.
    found = list(_package_folder().parent.glob("pydicom-*.dist-info/METADATA"))
    if len(found) == 1:
        for line in found[0].read_text(encoding="utf-8").splitlines():
            if line.startswith("Version:"):
                return line.split(":", 1)[1].strip()
    from importlib.metadata import version

    return version("pydicom")


@cache
def _module() -> ModuleType:
    loaded = sys.modules.get("pydicom._dicom_dict")
    if loaded is not None:
        return loaded
    path = _package_folder() / "_dicom_dict.py"
    module_spec = importlib.util.spec_from_file_location("pydicom._dicom_dict", path)
    assert module_spec is not None and module_spec.loader is not None, f"cannot load {path}"
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def dictionary() -> dict[int, Entry]:
    return _module().DicomDictionary


def repeaters() -> dict[str, Entry]:
    """The repeating-group entries by mask ('60xx0010')."""
    return _module().RepeatersDictionary


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


# `pydicom.uid.PYDICOM_IMPLEMENTATION_UID`, which pydicom writes as Implementation Class UID.
IMPLEMENTATION_UID = "1.2.826.0.1.3680043.8.498.1"
