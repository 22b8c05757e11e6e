"""PS3.15 Annex E for the command-line toolkits: what the basic profile does to each element of
a file (Table E.1-1, 2024b, from `dicom_hub.contract.dicom.deid`, as the Python engine), the burned-in
refusal, and the leak check that decides whether a toolkit's result may be called de-identified.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicom_hub.contract.errors import ErrorCode, HubError

if TYPE_CHECKING:
    from pydicom import Dataset

ENCRYPTED_ATTRIBUTES = 0x04000500
BURNED_IN_ANNOTATION = 0x00280301
PIXEL_DATA = 0x7FE00010
# Bulk binary VRs: not converted while checking that a header reads (their values stay deferred).
_BULK_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})


@dataclass(frozen=True)
class Edit:
    """One basic-profile action on one element: `path` is DCMTK's (gggg,eeee)[i].(gggg,eeee) form."""

    action: str  # X remove, Z empty, D dummy, U new UID, I insert (an element of a dummy item)
    path: str
    value: str = ""
    sequence: bool = False  # Z on a sequence: keep it, with no items; I of a sequence: an empty one


def read_header(path: Path) -> Dataset:
    """The file's whole data set for planning, large values deferred (not read): the plan must see
    what follows the pixels too, e.g. Digital Signatures Sequence (FFFA,FFFA), which the profile
    removes. A corrupt one is `decode_error` (pydicom raises anything from OSError to
    BytesLengthException, here or when `plan` reads a value)."""
    from pydicom import dcmread

    try:
        ds = dcmread(path, defer_size=1024, force=True)
        for elem in ds.iterall():  # convert every raw value now, so a corrupt one fails here
            if elem.VR not in _BULK_VRS:
                _ = elem.value
    except Exception as err:
        raise HubError(ErrorCode.DECODE_ERROR, f"cannot read {path.name} to plan its de-identification: {type(err).__name__}: {err}", "the file is corrupt or truncated") from None
    return ds


def plan(ds: Dataset, new_uid: Callable[[str], str] | None = None) -> list[Edit]:
    """Every X, Z, D and U action the basic profile takes on `ds`, at every depth, decided exactly as
    the Python engine decides (`deid.rules.decide`: the table, and what the IOD needs). Elements
    inside a removed sequence need nothing; one original UID always gets the same new UID: from
    `new_uid` (the keyed pseudonyms, the same across files and runs) or, without it, a random one. A
    sequence whose action is D is removed and inserted again holding only its dummy item
    (`deid.dummies`), so nothing of its original items survives."""
    from dicom_hub.contract.dicom.deid import dummies, iods, rules
    from dicom_hub.contract.dicom.deid.dummies import DUMMY_BY_VR
    from dicom_hub.contract.dicom.deid.profile import profile_for
    from dicom_hub.contract.dicom.deid.rules import decide, overlay_leftovers
    from pydicom.uid import generate_uid

    profile, edits = profile_for(), []
    new_uids: dict[str, str] = {}  # one replacement per original UID
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
            if action == "D" and (elem.VR == "SQ" or rules.public_vr(tag) == "SQ"):
                edits.append(Edit("X", path))
                edits.extend(_dummy_item(path, dummies.elements_for(tag)))
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
                olds = [elem.value] if isinstance(elem.value, str) else list(elem.value)
                news = [new_uid(str(old)) if new_uid else new_uids.setdefault(str(old), generate_uid()) for old in olds]
                edits.append(Edit("U", path, "\\".join(news)))

    walk(ds, "", ())
    removed = {edit.path for edit in edits if edit.action == "X"}
    kept = [tag for tag in map(int, ds.keys()) if _paren(tag) not in removed]
    return edits + [Edit("X", _paren(tag)) for tag in overlay_leftovers(kept)]


def _dummy_item(path: str, elements: Any) -> list[Edit]:
    """Insertions building the dummy item of the sequence at `path` (DCMTK path syntax, item 0;
    OB bytes as DCMTK's backslash-separated hex)."""
    edits = []
    for element in elements:
        where = path + "".join(f"[0].{_paren(tag)}" for tag in element.path)
        value = element.value
        if element.vr in ("OB", "OW", "UN"):
            value = "\\".join(value[i : i + 2] for i in range(0, len(value), 2))
        edits.append(Edit("I", where, value, sequence=element.vr == "SQ"))
    return edits


def refuse_unreachable(ds: Dataset, edits: list[Edit], backend: str, why: str) -> None:
    """For toolkits that edit top-level elements only: `unsupported_op`, before anything runs, when
    the plan changes anything inside a sequence (a D sequence's dummy item included). UIDs are
    left to the toolkit's own profile, which replaces them at every depth (the leak check verifies)."""
    nested = sorted({_names(edit) for edit in edits if "[" in edit.path and edit.action != "U"})
    if nested:
        shown = ", ".join(nested[:8]) + (f" and {len(nested) - 8} more" if len(nested) > 8 else "")
        raise HubError(
            ErrorCode.UNSUPPORTED_OP,
            f"{backend} cannot de-identify this file: the profile changes {len(nested)} attribute(s) inside sequences "
            f"({shown}) and {why}",
            "use backend python (or dcmtk, csharp), which apply the profile at every depth",
        )


def refuse_private(ds: Dataset, backend: str, why: str) -> None:
    """For toolkits that keep private attributes of their own choosing (the basic profile removes every
    private element): `unsupported_op`, before anything runs, when the file holds any, at any depth."""
    found = sorted({_tag(int(elem.tag)) for elem in ds.iterall() if elem.tag.is_private})
    if found:
        raise HubError(
            ErrorCode.UNSUPPORTED_OP,
            f"{backend} cannot de-identify this file: it holds {len(found)} private attribute(s) ({', '.join(found[:6])}"
            f"{' ...' if len(found) > 6 else ''}) and {why}, while the basic profile removes every private attribute",
            "use backend python, dcmtk or csharp, which remove them",
        )


def _names(edit: Edit) -> str:
    """'(0040,a730)[0].(0040,a160)' -> 'ContentSequence > TextValue' (the outer sequence and the
    element), 'ContentSequence (dummy item)' for an insertion."""
    from pydicom.datadict import keyword_for_tag

    tags = [int(part.strip("().").replace(",", ""), 16) for part in edit.path.replace("]", "[").split("[")[::2]]
    outer, inner = (keyword_for_tag(tag) or _tag(tag) for tag in (tags[0], tags[-1]))
    return f"{outer} (dummy item)" if edit.action == "I" else f"{outer} > {inner}"


def refuse_burned_in(ds: Dataset) -> None:
    """Like the Python backend: no de-identification of pixels that may show identity."""
    from dicom_hub.contract.dicom.deid.rules import BURNED_IN_SOP_CLASSES

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
    from dicom_hub.contract.dicom.deid.profile import find_row, load_table
    from pydicom import dcmread

    table = load_table()
    watched = {tag for tag, row in table.items() if row.basic != "K"}
    try:  # pydicom raises anything (AttributeError on an unresolvable VR...) on a corrupt value
        before_ds, after_ds = dcmread(original, force=True), dcmread(result, force=True)
        # the repeating-group rows (overlay, curve data: 50xx, 60xx) of the elements actually present
        repeating = {int(e.tag) for e in before_ds.iterall() if int(e.tag) >> 24 in (0x50, 0x60)}
        watched |= {tag for tag in repeating if (row := find_row(tag)) is not None and row.basic != "K"}
        before = _values(before_ds, watched)
        leaks = sorted(
            {f"{_keyword(tag)} {_tag(tag)}" for tag, value in _values(after_ds, watched, pairs=True) if value in before.get(tag, set())}
        )
        leaks += _outside_iod(before_ds, after_ds)
        leaks += _dummy_sequences(after_ds)
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
    from dicom_hub.contract.dicom.deid import iods
    from dicom_hub.contract.dicom.deid.profile import profile_for
    from dicom_hub.contract.dicom.deid.rules import decide

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


def _dummy_sequences(after: Dataset) -> list[str]:
    """Sequences the table may dummy (D among their actions) that hold anything but the one dummy
    item (`deid.dummies`): their original items, cleaned or not, keep what the table does not list."""
    from dicom_hub.contract.dicom.deid import dummies
    from dicom_hub.contract.dicom.deid.profile import load_table

    table = load_table()
    found: set[str] = set()
    for elem in after.iterall():
        tag = int(elem.tag)
        row = table.get(tag)
        if elem.VR != "SQ" or not elem.value or row is None or "D" not in row.basic.split("/"):
            continue
        if len(elem.value) != 1 or not _leaves(elem.value[0]) <= _leaves(dummies.item_for(tag)):
            found.add(f"{row.keyword} {_tag(tag)} (holds more than its dummy item)")
    return sorted(found)


def _leaves(item: Dataset, path: tuple[int, ...] = ()) -> set[tuple[tuple[int, ...], str]]:
    """(tag path, value text) for every non-sequence element of `item`, at every depth."""
    leaves = set()
    for elem in item:
        where = (*path, int(elem.tag))
        if elem.VR == "SQ":
            for child in elem.value or []:
                leaves |= _leaves(child, where)
        else:
            value = elem.value
            text = value.hex() if isinstance(value, bytes) else "\\".join(map(str, value)) if elem.VM > 1 else str(value)
            leaves.add((where, text.strip()))
    return leaves


def _keyword(tag: int) -> str:
    """The keyword of a watched tag (each has a Table E.1-1 row)."""
    from dicom_hub.contract.dicom.deid.profile import find_row

    row = find_row(tag)
    assert row is not None, f"{_tag(tag)} has no Table E.1-1 row"
    return row.keyword


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
