"""PS3.15 Annex E for the command-line toolkits: what the basic profile does to each element of
a file (Table E.1-1, 2024b, read through the Python backend's `deid.profile`), the burned-in
refusal, and the leak check that decides whether a toolkit's result may be called de-identified.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicom_hub.contract.errors import ErrorCode, HubError

if TYPE_CHECKING:
    from pydicom import Dataset

ENCRYPTED_ATTRIBUTES = 0x04000500
BURNED_IN_ANNOTATION = 0x00280301
PIXEL_DATA = 0x7FE00010


@dataclass(frozen=True)
class Edit:
    """One basic-profile action on one element: `path` is DCMTK's (gggg,eeee)[i].(gggg,eeee) form."""

    action: str  # X remove, Z empty, D dummy, U new UID
    path: str
    value: str = ""
    sequence: bool = False  # Z on a sequence: keep it, with no items


def read_header(path: Path) -> Dataset:
    """The file's data set without pixels, for planning; a corrupt one is `decode_error` (pydicom
    raises anything from OSError to BytesLengthException, here or when `plan` reads a value)."""
    from pydicom import dcmread

    try:
        ds = dcmread(path, stop_before_pixels=True, force=True)
        for elem in ds.iterall():
            _ = elem.value  # convert every raw value now, so a corrupt one fails here
    except Exception as err:
        raise HubError(ErrorCode.DECODE_ERROR, f"cannot read {path.name} to plan its de-identification: {type(err).__name__}: {err}", "the file is corrupt or truncated") from None
    return ds


def plan(ds: Dataset) -> list[Edit]:
    """Every X, Z, D and U action the basic profile takes on `ds`, at every depth, decided exactly as
    the Python engine decides (`deid.rules.decide`: the table, and what the IOD needs). Elements
    inside a removed sequence need nothing; one original UID always gets the same new UID."""
    from dicom_hub.python_backend.deid import iods
    from dicom_hub.python_backend.deid.engine import DUMMY_BY_VR
    from dicom_hub.python_backend.deid.profile import profile_for
    from dicom_hub.python_backend.deid.rules import decide, overlay_leftovers
    from pydicom.uid import generate_uid

    profile, edits, new_uids = profile_for(), [], {}
    iod = iods.for_sop_class(str(ds.get("SOPClassUID", "")))

    def walk(dataset: Dataset, prefix: str, parent: tuple[int, ...]) -> None:
        for elem in dataset:
            tag = int(elem.tag)
            if elem.tag.is_private or tag >> 16 == 0x0002 or tag & 0xFFFF == 0:
                continue  # private elements go as a whole; file meta follows the data set
            path = prefix + _paren(tag)
            action = decide(profile, iod, parent, tag)
            dummy = DUMMY_BY_VR.get(elem.VR)
            if action == "X" or (action == "D" and dummy is None and elem.VR != "SQ"):
                edits.append(Edit("X", path))
                continue
            if elem.VR == "SQ" and action == "Z":
                edits.append(Edit("Z", path, sequence=True))
                continue
            if elem.VR == "SQ":  # kept, cleaned, dummied or UIDs replaced: its items by the same rules
                for index, item in enumerate(elem.value or []):
                    walk(item, f"{path}[{index}].", (*parent, tag))
                continue
            if action == "Z" and not elem.is_empty:
                edits.append(Edit("Z", path))
            elif action == "D":
                edits.append(Edit("D", path, str(dummy)))
            elif action == "U" and not elem.is_empty:
                old = str(elem.value)
                edits.append(Edit("U", path, new_uids.setdefault(old, generate_uid())))

    walk(ds, "", ())
    removed = {edit.path for edit in edits if edit.action == "X"}
    kept = [tag for tag in map(int, ds.keys()) if _paren(tag) not in removed]
    return edits + [Edit("X", _paren(tag)) for tag in overlay_leftovers(kept)]


def refuse_burned_in(ds: Dataset) -> None:
    """Like the Python backend: no de-identification of pixels that may show identity."""
    from dicom_hub.python_backend.deid.engine import BURNED_IN_SOP_CLASSES

    flag = str(ds[BURNED_IN_ANNOTATION].value).strip().upper() if BURNED_IN_ANNOTATION in ds else ""
    sop_class = str(ds.get("SOPClassUID", "")).strip()
    if flag == "YES" or (sop_class in BURNED_IN_SOP_CLASSES and flag != "NO"):
        raise HubError(
            ErrorCode.INVALID_REQUEST,
            "refusing to de-identify: the pixels may carry burned-in identity and this toolkit copies them unchanged",
            "this backend does not honour allow_burned_in; check the pixels and use backend python with allow_burned_in",
        )


def leak_check(original: Path, result: Path) -> dict[str, Any]:
    """Compare every Table E.1-1 attribute (except K), every attribute the profile removes as not
    needed by the IOD, and every private element; raise on a leak."""
    from dicom_hub.python_backend.deid.profile import load_table
    from pydicom import dcmread

    table = load_table()
    watched = {tag for tag, row in table.items() if row.basic != "K"}
    try:  # pydicom raises anything (AttributeError on an unresolvable VR...) on a corrupt value
        before_ds, after_ds = dcmread(original, force=True), dcmread(result, force=True)
        before = _values(before_ds, watched)
        leaks = sorted(
            {f"{table[tag].keyword} {_tag(tag)}" for tag, value in _values(after_ds, watched, pairs=True) if value in before.get(tag, set())}
        )
        leaks += _outside_iod(before_ds, after_ds)
        private = sorted({_tag(int(elem.tag)) for elem in after_ds.iterall() if elem.tag.is_private})
    except Exception as err:
        raise HubError(ErrorCode.DECODE_ERROR, f"cannot read {original.name} to check the de-identified result for leaks: {type(err).__name__}: {err}", "the file is corrupt or truncated") from None
    if ENCRYPTED_ATTRIBUTES in after_ds:
        private.append("EncryptedAttributesSequence (0400,0500)")
    if leaks or private:
        found = leaks + private
        raise HubError(
            ErrorCode.BACKEND_ERROR,
            f"the toolkit left {len(found)} identifying value(s) that PS3.15 Annex E removes: {', '.join(found)}",
            "use backend python, whose engine follows Table E.1-1 (2024b) in full",
        )
    return {"profile": "PS3.15 E.1-1 basic (2024b)", "checked_attributes": len(watched), "private_tags_removed": True}


def _outside_iod(before: Dataset, after: Dataset) -> list[str]:
    """Attributes of the result that the profile removes as not needed by the IOD (`deid.rules`)
    and that still hold a value of the original."""
    from dicom_hub.python_backend.deid import iods
    from dicom_hub.python_backend.deid.profile import profile_for
    from dicom_hub.python_backend.deid.rules import decide

    profile, iod = profile_for(), iods.for_sop_class(str(after.get("SOPClassUID", "")))
    original = {
        (int(elem.tag), str(elem.value))
        for elem in before.iterall()
        if elem.VR != "SQ" and elem.tag != PIXEL_DATA and not elem.is_empty  # pixels: kept by every profile
    }
    found: set[str] = set()

    def walk(dataset: Dataset, parent: tuple[int, ...]) -> None:
        for elem in dataset:
            tag = int(elem.tag)
            if elem.tag.is_private or tag & 0xFFFF == 0 or profile.action(tag) is not None:
                continue  # private elements and table attributes have their own checks
            if decide(profile, iod, parent, tag) == "X" and (tag, str(elem.value)) in original:
                found.add(f"{elem.keyword or 'unknown'} {_tag(tag)} (not needed by the IOD)")
            elif elem.VR == "SQ":
                for item in elem.value or []:
                    walk(item, (*parent, tag))

    walk(after, ())
    return sorted(found)


def _values(ds: Dataset, watched: set[int], pairs: bool = False) -> Any:
    """tag -> set of non-empty values among `watched`, at every depth (or (tag, value) pairs)."""
    found: list[tuple[int, str]] = []
    for elem in ds.iterall():
        tag = int(elem.tag)
        if tag in watched and elem.VR != "SQ" and not elem.is_empty:
            found.append((tag, str(elem.value).strip()))
    if pairs:
        return found
    by_tag: dict[int, set[str]] = {}
    for tag, value in found:
        by_tag.setdefault(tag, set()).add(value)
    return by_tag


def _paren(tag: int) -> str:
    """DCMTK's path form of a tag: '(gggg,eeee)'."""
    return f"({tag >> 16:04x},{tag & 0xFFFF:04x})"


def _tag(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
