"""pydicom's data dictionary and UID dictionary, loaded without importing pydicom.

Why: `import pydicom` costs ~0.45 s (its package imports numpy and every pixel plugin), more
than a whole stream of `info` requests answered by the bytes-level reader (`fast_info.py`).
The dictionaries are plain modules of literals (`pydicom/_dicom_dict.py`, `pydicom/_uid_dict.py`)
that import nothing, so they are run on their own from pydicom's folder (a few ms, from their
cached bytecode). The data stays pydicom's: the same tables answer on both paths. When pydicom
is already imported, its loaded modules are used.
"""

from __future__ import annotations

import sys
from functools import cache
from importlib.util import find_spec, module_from_spec, spec_from_file_location
from pathlib import Path
from types import ModuleType
from typing import Any


class TablesUnavailable(Exception):
    """pydicom is not installed (or its tables are not where pydicom 3 keeps them)."""


@cache
def _pydicom_dir() -> Path:
    spec = find_spec("pydicom")  # finds the package without running its __init__
    if spec is None or spec.origin is None:
        raise TablesUnavailable("pydicom is not installed")
    return Path(spec.origin).parent


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
def dicom_dictionary() -> dict[int, tuple[str, str, str, str, str]]:
    """tag -> (VR, VM, name, retired, keyword): pydicom's `DicomDictionary`."""
    table: Any = _table_module("_dicom_dict").DicomDictionary
    return table


@cache
def uid_dictionary() -> dict[str, tuple[str, str, str, str, str]]:
    """UID -> (name, type, info, retired, keyword): pydicom's `UID_dictionary`."""
    table: Any = _table_module("_uid_dict").UID_dictionary
    return table


def uid_name(uid: str) -> str:
    """The UID's name, or the UID itself when the dictionary has none (as `pydicom.uid.UID.name`)."""
    entry = uid_dictionary().get(uid)
    return entry[0] if entry else uid
