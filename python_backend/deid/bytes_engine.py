"""De-identification straight from a file's bytes: the common case, without pydicom.

Why: building a pydicom Dataset and writing it back costs ~2.5 ms a file, and `import pydicom`
~0.3 s of every run; `gdcmanon` does a file in well under a millisecond. This engine takes the
same decisions as `engine.Engine` (both ask `rules.decide`, with the same IOD, pseudonyms and
dummies) and returns the very bytes `writer.encode` writes for the pydicom data set: unchanged
elements copied, sequences rewritten item by item with undefined lengths, elements sorted, the
file meta rebuilt, the de-identification marks added. It does so in one walk over the elements
(`_Run.walk`, which takes them in the order the file holds them: strictly ascending, or it gives
up): each element's step is learnt once per run from its header, a run of consecutive unchanged
elements is copied as one slice of the input, and only the values it must read are looked at.

It covers the common case only: a Part 10 file in Implicit or Explicit VR Little Endian
(encapsulated syntaxes included), plain ASCII values wherever the engine reads a value (SOP
Class/Instance UID, Patient ID, Burned In Annotation, Specific Character Set, the UIDs it
replaces), and no option that needs more (safe private attributes, modified dates). On anything
else — or anything odd: a truncated value, an unknown VR, a sequence stored as UN, a D action on
a sequence, a file that would be refused — it gives up (None) and the pydicom engine runs, which
also produces every error; the tests compare both engines' bytes, file by file.
"""

from __future__ import annotations

import re
from functools import cache
from struct import Struct
from struct import error as struct_error
from typing import Any

from dicom_hub.contract.dicom.deid import iods
from dicom_hub.contract.dicom.deid.dummies import BINARY_DUMMY, DUMMY_BY_VR
from dicom_hub.contract.dicom.deid.profile import Profile
from dicom_hub.contract.dicom.deid.pseudonyms import Pseudonymizer
from dicom_hub.contract.dicom.deid.rules import BURNED_IN_SOP_CLASSES, decide, overlay_leftovers, public_vr
from dicom_hub.contract.dicom.encoding import (
    EXPLICIT_VR_LE,
    IMPLICIT_VR_LE,
    ITEM,
    LONG_VRS,
    SEQUENCE_END,
    TRANSFER_SYNTAX_UID,
    UNDEFINED_LENGTH,
    VRS,
    NotPart10,
    read_file_meta,
)
from dicom_hub.contract.dicom.pydicom_tables import IMPLEMENTATION_UID, pydicom_version

from .writer import file_meta_bytes

# Little-endian syntaxes whose data set is Explicit VR LE (encapsulated pixel data).
_ENCAPSULATED = frozenset(
    {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203", "1.2.840.10008.1.2.5"}
)
_VR_NAMES = {vr: vr.decode() for vr in VRS}
_LONG_VR16 = frozenset(int.from_bytes(vr, "little") for vr in LONG_VRS)
_TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"})
# Character sets in which ASCII text is encoded as ASCII (what the engine writes is ASCII).
_CHARSETS = frozenset({"", "ISO_IR 6", "ISO_IR 100", "ISO_IR 101", "ISO_IR 109", "ISO_IR 110", "ISO_IR 144", "ISO_IR 148", "ISO_IR 192"})

_PRINTABLE = re.compile(rb"[\x20-\x7e]*")
_UNSPACED = re.compile(rb"[\x21-\x7e]*")
_HEADER = Struct("<HHL")
_TAG = Struct("<HH")
_LENGTH2, _LENGTH4 = Struct("<H"), Struct("<L")
_EXPLICIT = Struct("<HH2sH")
_EXPLICIT16 = Struct("<HHHH")  # the VR as a number (a cheap dictionary key)
_ITEM_START = _HEADER.pack(0xFFFE, 0xE000, UNDEFINED_LENGTH)
_ITEM_CLOSE = _HEADER.pack(0xFFFE, 0xE00D, 0)
_SEQ_CLOSE = _HEADER.pack(0xFFFE, 0xE0DD, 0)
PIXEL_DATA = 0x7FE00010
SOP_CLASS_UID, SOP_INSTANCE_UID = 0x00080016, 0x00080018
SPECIFIC_CHARACTER_SET = 0x00080005
PATIENT_NAME, PATIENT_ID = 0x00100010, 0x00100020
BURNED_IN_ANNOTATION = 0x00280301
MARK_TAGS = (0x00120062, 0x00120063, 0x00120064, 0x00280303)
# The top-level elements whose values (or presence) the engine reads.
_READ_TAGS = frozenset({SOP_CLASS_UID, SOP_INSTANCE_UID, SPECIFIC_CHARACTER_SET, PATIENT_NAME, PATIENT_ID, BURNED_IN_ANNOTATION})


# What to do with an element (`_Run.plan`).
_DROP, _RAW, _RAW_UNDEFINED, _SEQUENCE, _CONSTANT, _TEXT_EMPTIED, _UIDS, _PATIENT, _CHARSET, _GIVE_UP = range(10)


# Pieces from this size on (pixel data) are written from the input's buffer, not copied; smaller
# ones are joined with the pieces around them (a copy costs less than writing them apart).
_LARGE = 1 << 16


class _GiveUp(Exception):
    """Not a case this engine handles: the pydicom engine takes the file."""


def anonymize_bytes(data: bytes | memoryview, profile: Profile, pseudonyms: Pseudonymizer, allow_burned_in: bool) -> tuple[list[Any], dict[str, Any]] | None:
    """The de-identified file's bytes (in pieces, to write in order; large values are views of
    `data`) and what the mapping report needs, or None (use pydicom)."""
    if profile.safe_private or profile.shifts_dates:
        return None
    try:
        return _Run(profile, pseudonyms).file(data, allow_burned_in)
    except _GiveUp:
        return None
    except (struct_error, ValueError, IndexError, OverflowError):  # bytes no reader expects: pydicom says what is wrong
        return None


class _Run:
    def __init__(self, profile: Profile, pseudonyms: Pseudonymizer) -> None:
        self.profile, self.pseudonyms = profile, pseudonyms
        self.implicit = False
        self.iod: iods.IodAttributes | None = None
        self.plans: dict[tuple[Any, ...], tuple[int, Any]] = {}
        self.fasts: dict[tuple[int, ...], dict[int, Any]] = {}
        self.marks: list[tuple[int, list[Any]]] = []
        self.top: dict[int, tuple[str | None, Any]] = {}  # the top-level elements the engine reads (_READ_TAGS)
        self.patient_slots: list[tuple[int, int, str | None]] = []  # (where in the output, tag, VR) of a pseudonym to frame
        self.overlays: list[tuple[int, int, int]] = []  # (tag, first piece, end) of each overlay element written

    # -- the file ------------------------------------------------------------------------------

    def file(self, data: bytes | memoryview, allow_burned_in: bool) -> tuple[list[Any], dict[str, Any]]:
        view = memoryview(data)
        try:
            meta = read_file_meta(view)
        except NotPart10:
            raise _GiveUp from None
        syntax = _canonical(meta.elements[TRANSFER_SYNTAX_UID][1], b"\0")  # as the writer will copy it
        if syntax is None:
            raise _GiveUp
        pos = meta.data_set_start
        if syntax == IMPLICIT_VR_LE:
            self.implicit = True
            if bytes(view[pos + 4 : pos + 6]) in VRS:  # pydicom would read it as explicit VR
                raise _GiveUp
        elif syntax != EXPLICIT_VR_LE and syntax not in _ENCAPSULATED:
            raise _GiveUp
        sop_class = self.read_text({SOP_CLASS_UID: self.sop_class_element(view, pos)}, SOP_CLASS_UID, "UI")
        self.iod = iods.for_sop_class(sop_class)  # what every step depends on: known before the first
        self.plans = _plans(self.profile, self.iod, self.implicit)
        self.fasts = _fast_steps(self.profile, self.iod, self.implicit)
        self.marks = _marks(self.profile, self.implicit)
        body: list[Any] = []
        self.walk(view, pos, len(view), (), False, body)
        top = self.top
        sop_instance = self.read_text(top, SOP_INSTANCE_UID, "UI")
        if not sop_instance or self.read_text(top, SPECIFIC_CHARACTER_SET, "CS", "") not in _CHARSETS:
            raise _GiveUp
        if not allow_burned_in:
            flag = self.read_text(top, BURNED_IN_ANNOTATION, "CS", "").upper()
            if flag == "YES" or (sop_class in BURNED_IN_SOP_CLASSES and flag != "NO"):
                raise _GiveUp  # refused: the pydicom engine says why
        for tag in (SOP_CLASS_UID, SPECIFIC_CHARACTER_SET):  # read again by the writer and the file meta
            if tag in top and decide(self.profile, self.iod, (), tag) not in (None, "K"):
                raise _GiveUp
        original_patient = self.read_text(top, PATIENT_ID, "LO")
        if not original_patient:
            raise _GiveUp  # the patient's key would come from the name: left to pydicom
        new_id = self.pseudonyms.patient_id(original_patient)
        new_name = self.pseudonyms.patient_name(original_patient)
        if not (new_id.isascii() and new_name.isascii()) or "\\" in new_id + new_name:
            raise _GiveUp
        patient = {PATIENT_ID: _padded(new_id, b" "), PATIENT_NAME: _padded(new_name, b" ")}
        for at, tag, vr in self.patient_slots:  # the pseudonyms, now that the Patient ID is read
            framed: list[Any] = []
            self.frame(tag, vr, patient[tag], framed)
            body[at] = b"".join(framed)
        if self.overlays:
            gone = set(overlay_leftovers(tag for tag, _, _ in self.overlays))
            for tag, first, stop in self.overlays:
                if tag in gone:
                    body[first:stop] = [b""] * (stop - first)
        new_instance = self._final_instance(sop_instance)
        head = b"\0" * 128 + b"DICM" + file_meta_bytes(sop_class, new_instance, syntax, IMPLEMENTATION_UID, pydicom_version())
        mapping = {
            "patients": {original_patient: {"patient_id": self._final_patient(top, PATIENT_ID, new_id), "patient_name": self._final_patient(top, PATIENT_NAME, new_name), "date_offset_days": None}},
            "uids": self.pseudonyms.uids,
        }
        return _assembled(head, body), mapping

    def read_text(self, top: dict[int, Any], tag: int, vr: str, missing: str | None = None) -> str:
        """A top-level value the engine reads (so pydicom converts it): canonical ASCII only."""
        found = top.get(tag)
        if found is None:
            if missing is None:
                raise _GiveUp
            return missing
        stored, value = found
        if stored not in (None, vr) or isinstance(value, list):
            raise _GiveUp
        text = _canonical(bytes(value), b"\0" if vr == "UI" else b" ")
        if text is None or "\\" in text:
            raise _GiveUp
        return text

    def _final_instance(self, original: str) -> str:
        action = decide(self.profile, self._iod(), (), SOP_INSTANCE_UID)
        if action == "U" or action == "D":
            return self.pseudonyms.uid(original)
        if action in (None, "K"):
            return original
        raise _GiveUp  # no SOP Instance UID left in the data set: pydicom takes the file meta's

    def _final_patient(self, top: dict[int, Any], tag: int, pseudonym: str) -> str:
        if tag not in top:
            return ""
        if decide(self.profile, self._iod(), (), tag) in ("Z", "D"):
            return pseudonym
        raise _GiveUp  # a patient identifier kept or removed by an option: left to pydicom

    def _iod(self) -> iods.IodAttributes:
        assert self.iod is not None
        return self.iod

    # -- parsing -------------------------------------------------------------------------------

    def skip(self, data: memoryview, pos: int, end: int, in_item: bool) -> int:
        """Where the elements from `pos` to `end` (or to the item delimiter when `in_item`) end,
        checked as `walk` reads them (for a sequence that is not walked: dropped, emptied or
        declining the file, it still declines what the walk would)."""
        last = -1
        implicit = self.implicit
        header, explicit, long_length = _HEADER.unpack_from, _EXPLICIT.unpack_from, _LENGTH4.unpack_from
        while pos < end:
            if pos + 8 > end:
                raise _GiveUp
            if implicit:
                group, number, length = header(data, pos)
                if group == 0xFFFE:  # only an item's delimiter may end a list of elements
                    if number == 0xE00D and in_item and length == 0:
                        return pos + 8
                    raise _GiveUp
                vr = None
                pos += 8
            else:
                group, number, vr_bytes, length = explicit(data, pos)
                if group == 0xFFFE:  # (no VR: the 4-byte length sits where the VR would be)
                    if number == 0xE00D and in_item and vr_bytes == b"\0\0" and length == 0:
                        return pos + 8
                    raise _GiveUp
                vr = _VR_NAMES.get(vr_bytes)
                if vr is None:
                    raise _GiveUp
                if vr_bytes in LONG_VRS:
                    if pos + 12 > end:
                        raise _GiveUp
                    (length,) = long_length(data, pos + 8)
                    pos += 12
                else:
                    pos += 8
            tag = group << 16 | number
            if tag <= last:
                raise _GiveUp  # out of order or repeated: pydicom's data set would differ
            last = tag
            if length == UNDEFINED_LENGTH or vr == "SQ" or (vr is None and not group & 1 and public_vr(tag) == "SQ"):
                pos = self.value_at(data, tag, vr, length, pos, end)[1]
                continue
            if pos + length > end:
                raise _GiveUp  # truncated
            pos += length
        if in_item:
            raise _GiveUp  # no item delimiter
        return pos

    def value_at(self, data: memoryview, tag: int, vr: str | None, length: int, pos: int, end: int) -> tuple[Any, int]:
        """The value at `pos` of an element whose header was read, and where the next one starts:
        a view of the bytes, undefined-length pixel data (a tuple of a view), or for a sequence an
        empty list (its items checked by `skip_items`, not kept: a sequence whose items are
        cleaned is walked instead)."""
        sequence = vr == "SQ" or (vr is None and not tag & 0x10000 and public_vr(tag) == "SQ")
        if length == UNDEFINED_LENGTH:
            if sequence:
                return [], self.skip_items(data, pos, end, None)
            if tag == PIXEL_DATA and vr in ("OB", "OW"):
                stop = _fragments_end(data, pos, end)
                return (data[pos:stop],), stop + 8  # a tuple: undefined length
            raise _GiveUp
        if pos + length > end:
            raise _GiveUp  # truncated
        if sequence:
            return [], self.skip_items(data, pos, pos + length, pos + length)
        return data[pos : pos + length], pos + length

    def header(self, data: memoryview, pos: int) -> tuple[int, str | None, int, int]:
        """Tag, stored VR (None: implicit), length and value offset of the top-level element at
        `pos` (a delimiter there ends nothing: not a case for this engine)."""
        if self.implicit:
            group, number, length = _HEADER.unpack_from(data, pos)
            vr, pos = None, pos + 8
        else:
            group, number, vr_bytes, length = _EXPLICIT.unpack_from(data, pos)
            vr = _VR_NAMES.get(vr_bytes)
            if vr is None or group == 0xFFFE:
                raise _GiveUp
            if vr_bytes in LONG_VRS:
                (length,) = _LENGTH4.unpack_from(data, pos + 8)
                pos += 12
            else:
                pos += 8
        if group == 0xFFFE:
            raise _GiveUp
        return group << 16 | number, vr, length, pos

    def sop_class_element(self, data: memoryview, pos: int) -> tuple[str | None, Any]:
        """The SOP Class UID's stored VR and value, which say the IOD every step depends on; found
        before the data set is cleaned (it comes early: only (0008,0000-0015) before it)."""
        end = len(data)
        while pos < end:
            tag, vr, length, pos = self.header(data, pos)
            if tag > SOP_CLASS_UID:
                break
            value, pos = self.value_at(data, tag, vr, length, pos, end)
            if tag == SOP_CLASS_UID:
                return vr, value
        raise _GiveUp  # no SOP Class UID: left to pydicom

    def skip_items(self, data: memoryview, pos: int, end: int, defined_end: int | None) -> int:
        """Where a sequence's items end, checked as `sequence_walk` reads them."""
        while True:
            if defined_end is not None and pos == defined_end:
                return pos
            if pos + 8 > end:
                raise _GiveUp
            group, number, length = _HEADER.unpack_from(data, pos)
            tag = group << 16 | number
            pos += 8
            if tag == SEQUENCE_END and defined_end is None and length == 0:
                return pos
            if tag != ITEM:
                raise _GiveUp
            if length == UNDEFINED_LENGTH:
                pos = self.skip(data, pos, end, in_item=True)
            else:
                if pos + length > end:
                    raise _GiveUp
                self.skip(data, pos, pos + length, in_item=False)
                pos += length

    # -- cleaning (as Engine._clean / _apply, without clean_text) ------------------------------

    def walk(self, data: memoryview, pos: int, end: int, parent: tuple[int, ...], in_item: bool, out: list[Any]) -> int:
        """The elements from `pos` to `end` (or to the item delimiter when `in_item`: the top level
        when `parent` is empty) parsed and cleaned in one pass, as output pieces; returns where
        the walk ended (after the item delimiter).

        Each element's step is looked up by its header (`_fast_steps`): a run of consecutive
        elements copied as they are is written as one slice of the input (framed again, each
        header would be the same bytes: implicit VR, or explicit VR with zero reserved bytes);
        an element dropped or replaced by a constant takes no parsing; the rest (values the
        engine reads, sequences, UIDs, pseudonyms, overlays, anything odd) goes through `slow`.
        At the top level the marks are written in tag order as the walk passes them.
        """
        append = out.append
        fast = self.fasts.get(parent)
        if fast is None:
            fast = self.fasts[parent] = {}
        marks = () if parent else self.marks
        next_mark, marked = marks[0][0] if marks else _NO_TAG, 0
        implicit = self.implicit
        head, explicit, long_length, long_vrs = _HEADER.unpack_from, _EXPLICIT16.unpack_from, _LENGTH4.unpack_from, _LONG_VR16
        run = pos  # where the elements copied as they are, not written yet, start
        last = -1
        # A header cut by `end` needs no check of its own: its element then ends past `end`,
        # which declines the file (below, or in `slow`), as any element running past it.
        while pos < end:
            start = pos
            if implicit:
                group, number, length = head(data, pos)
                tag = key = group << 16 | number
                pos += 8
                if length == UNDEFINED_LENGTH:
                    key |= _UNDEFINED_KEY
            else:
                group, number, vr, length = explicit(data, pos)
                tag = group << 16 | number
                key = vr << 32 | tag  # (the tag in the low bits, which the dictionary's hash uses)
                if vr in long_vrs:
                    if length:  # reserved bytes not zero: framed again, not copied as they are
                        key = -1
                    (length,) = long_length(data, pos + 8)
                    pos += 12
                    if length == UNDEFINED_LENGTH:
                        key |= _UNDEFINED_KEY  # (-1 stays -1)
                else:
                    pos += 8
            if tag <= last:
                raise _GiveUp  # out of order or repeated: pydicom's data set would differ
            last = tag
            if tag >= next_mark:  # the marks before this element (one with a mark's tag is replaced)
                if run < start:
                    append(data[run:start])
                run = start
                while tag >= next_mark:
                    out += marks[marked][1]
                    marked += 1
                    next_mark = marks[marked][0] if marked < len(marks) else _NO_TAG
            step = fast.get(key)  # (none for key -1; an undefined length's key: none but `_Items`)
            if step is _COPY:
                pos += length
                continue
            if step.__class__ is _Read:  # a value the engine reads (top level)
                if pos + length > end:
                    raise _GiveUp  # truncated
                value = data[pos : pos + length]
                self.top[tag] = (step.vr, value)
                pos += length
                if step.kind == _RAW:
                    continue  # copied with its neighbours
                if run < start:
                    append(data[run:start])
                if step.kind == _PATIENT:
                    self.patient_slots.append((len(out), tag, step.vr))
                    append(b"")  # framed once the Patient ID is read
                else:
                    self.uids(tag, value, out)
                run = pos
                continue
            if run < start:
                append(data[run:start])
            if step.__class__ is bytes:
                if step:
                    append(step)
                pos += length
            elif step is _PSEUDONYMS:
                if pos + length > end:
                    raise _GiveUp  # truncated
                self.uids(tag, data[pos : pos + length], out)
                pos += length
            elif step.__class__ is _Items:  # a sequence whose items are cleaned
                pos = self.sequence_at(data, tag, pos, length, end, step.path, out)
            elif group == 0xFFFE:  # only an item's delimiter may end a list of elements
                if in_item and number == 0xE00D and head(data, start)[2] == 0:
                    return start + 8
                raise _GiveUp
            else:
                pos = self.slow(data, start, end, parent, key, fast, out)
            run = pos
        if pos > end or in_item:
            raise _GiveUp  # truncated, or no item delimiter
        if run < end:
            append(data[run:end])
        for _, chunks in marks[marked:]:
            out += chunks
        return end

    def sequence_at(self, data: memoryview, tag: int, pos: int, length: int, end: int, path: tuple[int, ...], out: list[Any]) -> int:
        """The sequence whose value (of `length`) starts at `pos`, its items cleaned; returns
        where it ends."""
        if length == UNDEFINED_LENGTH:
            return self.sequence_walk(data, tag, pos, end, None, path, out)
        if pos + length > end:
            raise _GiveUp  # truncated
        return self.sequence_walk(data, tag, pos, pos + length, pos + length, path, out)

    def sequence_walk(self, data: memoryview, tag: int, pos: int, end: int, defined_end: int | None, path: tuple[int, ...], out: list[Any]) -> int:
        """A sequence's items cleaned and written with undefined lengths (as `items` parses them);
        returns where the sequence ends."""
        out.append(_HEADER.pack(tag >> 16, tag & 0xFFFF, UNDEFINED_LENGTH) if self.implicit else _EXPLICIT.pack(tag >> 16, tag & 0xFFFF, b"SQ", 0) + b"\xff\xff\xff\xff")
        while True:
            if defined_end is not None and pos == defined_end:
                break
            if pos + 8 > end:
                raise _GiveUp
            group, number, length = _HEADER.unpack_from(data, pos)
            item = group << 16 | number
            pos += 8
            if item == SEQUENCE_END and defined_end is None and length == 0:
                break
            if item != ITEM:
                raise _GiveUp
            out.append(_ITEM_START)
            if length == UNDEFINED_LENGTH:
                pos = self.walk(data, pos, end, path, True, out)
            else:
                if pos + length > end:
                    raise _GiveUp
                pos = self.walk(data, pos, pos + length, path, False, out)
            out.append(_ITEM_CLOSE)
        out.append(_SEQ_CLOSE)
        return pos

    def slow(self, data: memoryview, pos: int, end: int, parent: tuple[int, ...], key: int, fast: dict[int, Any], out: list[Any]) -> int:
        """The element at `pos` parsed and cleaned by its planned step (`element`), its step
        remembered in `fast` when the header alone decides it; at the top level, noting what
        the engine reads, where the pseudonyms go and which overlay elements are written.
        Returns where the next element starts."""
        tag, vr, length, pos = self.header(data, pos)
        top = not parent
        first = len(out)
        if top and tag in MARK_TAGS:
            out = []  # cleaned as any element (it may decline the file), then replaced by the mark
        if vr == "SQ" or (vr is None and not tag & 0x10000 and public_vr(tag) == "SQ"):
            step = self.step(parent, tag, vr, list)
            if step[0] == _SEQUENCE:
                if top and tag in _READ_TAGS:
                    self.top[tag] = (vr, [])  # a sequence: no value the engine can read
                pos = self.sequence_at(data, tag, pos, length, end, step[1], out)
                if top and tag >> 24 == 0x60 and len(out) > first:
                    self.overlays.append((tag, first, len(out)))
                elif key != -1 and key not in fast and not (top and (tag in _READ_TAGS or tag in MARK_TAGS)):
                    fast[key] = _Items(step[1])
                return pos
        value, pos = self.value_at(data, tag, vr, length, pos, end)
        step = self.step(parent, tag, vr, type(value))
        if key >= 0 and key not in fast and type(value) is memoryview:
            fast[key] = _fast_step(tag, vr, step, top)
        if not top:
            self.element(tag, vr, value, parent, out)
            return pos
        if tag in _READ_TAGS:
            self.top[tag] = (vr, value)
        if step[0] == _PATIENT:
            self.patient_slots.append((len(out), tag, step[1]))
            out.append(b"")  # framed once the Patient ID is read
            return pos
        self.element(tag, vr, value, (), out)
        if tag >> 24 == 0x60 and len(out) > first:
            self.overlays.append((tag, first, len(out)))
        return pos

    def step(self, parent: tuple[int, ...], tag: int, vr: str | None, shape: type) -> tuple[int, Any]:
        """The step planned for such an element (planned at its first sight in the run)."""
        key = (parent, tag, vr, shape)
        step = self.plans.get(key)
        if step is None:
            step = self.plans[key] = self.plan(tag, vr, shape, parent)
        return step

    def element(self, tag: int, vr: str | None, value: Any, parent: tuple[int, ...], out: list[Any]) -> None:
        """One element, by the step planned for its (place, tag, stored VR, kind of value)."""
        kind, payload = self.step(parent, tag, vr, type(value))
        if kind == _RAW:
            prefix, length = payload
            out.append(prefix + length.pack(len(value)))
            out.append(value)
        elif kind == _DROP:
            return
        elif kind == _CONSTANT:
            out.append(payload)
        elif kind == _UIDS:
            self.uids(tag, value, out)
        elif kind == _RAW_UNDEFINED:
            out.append(payload)
            out.append(value[0])
            out.append(_SEQ_CLOSE)
        elif kind == _TEXT_EMPTIED:
            if not bytes(value).isascii():
                raise _GiveUp  # pydicom converts the value first, which may fail
            out.append(payload)
        elif kind == _CHARSET:
            if _canonical(bytes(value), b" ") is None:
                raise _GiveUp  # the writer reads an item's character set (pydicom converts it)
            self.frame(tag, vr, value, out)
        else:
            raise _GiveUp

    def uids(self, tag: int, value: Any, out: list[Any]) -> None:
        """A UI element with each UID replaced by its pseudonym."""
        text = _canonical(bytes(value), b"\0")
        if text is None:
            raise _GiveUp
        new = _padded("\\".join(map(self.pseudonyms.uid, text.split("\\"))), b"\0")
        out.append(_HEADER.pack(tag >> 16, tag & 0xFFFF, len(new)) if self.implicit else _EXPLICIT.pack(tag >> 16, tag & 0xFFFF, b"UI", len(new)))
        out.append(new)

    def plan(self, tag: int, vr: str | None, shape: type, parent: tuple[int, ...]) -> tuple[int, Any]:
        """What `Engine._clean` / `_apply` do to such an element (as far as the value does not
        matter); `_GIVE_UP` where the pydicom engine must take the file."""
        group = tag >> 16
        if group & 1 or not tag & 0xFFFF or group == 0x0002:
            return _DROP, None  # private, group length, file meta in the data set: removed
        action = decide(self.profile, self._iod(), parent, tag)
        is_sequence = shape is list
        if tag == SPECIFIC_CHARACTER_SET and parent:
            return (_CHARSET, None) if action in (None, "K") and shape is memoryview else (_GIVE_UP, None)
        if action is None:
            if public_vr(tag) == "SQ":
                # stored as UN: pydicom parses (or drops) it
                return (_SEQUENCE, (*parent, tag)) if is_sequence else (_GIVE_UP, None)
            return (_GIVE_UP, None) if is_sequence else self.plan_raw(tag, vr, shape)
        if action == "X":
            return _DROP, None
        if action in "ZD" and public_vr(tag) == "SQ":
            if action == "D":
                return _GIVE_UP, None  # a dummy item (dummies.item_for): left to pydicom
            out: list[Any] = []
            self.sequence_walk(memoryview(b""), tag, 0, 0, 0, (), out)  # no items
            return _CONSTANT, b"".join(out)
        stored = vr or public_vr(tag) or ""
        if stored in ("SQ", "UN") or " or " in stored or not stored:
            if not is_sequence:
                return _GIVE_UP, None  # pydicom settles the VR by converting the element
            stored = "SQ"
        elif is_sequence:
            return _GIVE_UP, None
        if stored == "SQ":
            # C: free text cleaned inside, left to pydicom; K, U: the items cleaned as usual
            return (_GIVE_UP, None) if action == "C" else (_SEQUENCE, (*parent, tag))
        if action == "K":
            return self.plan_raw(tag, vr, shape)
        if shape is tuple:
            return _GIVE_UP, None  # undefined-length pixel data changed
        if tag in (PATIENT_ID, PATIENT_NAME) and action in "ZD":
            # in an item, a pseudonym from the item's own patient: left to pydicom
            return (_GIVE_UP, None) if parent else (_PATIENT, stored)
        if (action == "U" or action == "D") and stored == "UI":
            return _UIDS, None
        if action == "C" and stored not in _TEXT_VRS:
            return _GIVE_UP, None  # pydicom converts the value first, which may fail
        value = _dummy(stored) if action == "D" else b""  # Z, C, U of a non-UID: emptied
        if value is None:
            return _GIVE_UP, None
        out = []
        self.frame(tag, stored, value, out)
        return (_TEXT_EMPTIED if action == "C" else _CONSTANT), b"".join(out)

    def plan_raw(self, tag: int, vr: str | None, shape: type) -> tuple[int, Any]:
        """An element copied as it came (framed again: tag, VR, length)."""
        group, element = tag >> 16, tag & 0xFFFF
        if shape is tuple:  # undefined-length pixel data, as pydicom writes it back
            return _RAW_UNDEFINED, _EXPLICIT.pack(group, element, vr.encode(), 0) + b"\xff\xff\xff\xff"  # type: ignore[union-attr]
        if self.implicit:
            return _RAW, (_TAG.pack(group, element), _LENGTH4)
        vr_bytes = vr.encode()  # type: ignore[union-attr]
        if vr_bytes in LONG_VRS:
            return _RAW, (_EXPLICIT.pack(group, element, vr_bytes, 0), _LENGTH4)
        return _RAW, (_TAG.pack(group, element) + vr_bytes, _LENGTH2)

    def frame(self, tag: int, vr: str | None, value: Any, out: list[Any]) -> None:
        """Tag, (VR,) length and value (as `writer._frame`)."""
        length = len(value)
        if self.implicit:
            out.append(_HEADER.pack(tag >> 16, tag & 0xFFFF, length))
            out.append(value)
            return
        vr_bytes = vr.encode()  # type: ignore[union-attr]
        if vr_bytes in LONG_VRS:
            out.append(_EXPLICIT.pack(tag >> 16, tag & 0xFFFF, vr_bytes, 0) + length.to_bytes(4, "little"))
        else:
            if length > 0xFFFF:
                raise _GiveUp
            out.append(_EXPLICIT.pack(tag >> 16, tag & 0xFFFF, vr_bytes, length))
        out.append(value)


@cache
def _plans(profile: Profile, iod: iods.IodAttributes, implicit: bool) -> dict[tuple[Any, ...], tuple[int, Any]]:
    """The steps planned so far for one profile, IOD and encoding: shared by every file of a run."""
    return {}


def _assembled(head: bytes, pieces: list[Any]) -> list[Any]:
    """The output as few buffers: the small pieces joined (a copy costs less than writing them
    apart), each large one (pixel data) left a view of the input, written without a copy."""
    if max(map(len, pieces), default=0) < _LARGE:
        pieces.insert(0, head)
        return [b"".join(pieces)]
    out: list[Any] = []
    small: list[Any] = [head]
    for piece in pieces:
        if len(piece) < _LARGE:
            small.append(piece)
        else:
            out += (b"".join(small), piece)
            small = []
    out.append(b"".join(small))
    return out


# A header's step in `_Run.walk`: copy the element as it is, a bytes object (what to write in its
# place: b"" drops it), replace its UIDs (`_Run.uids`), or look at the value (`_Run.slow`).
_COPY, _PSEUDONYMS, _LOOK = object(), object(), object()
_NO_TAG = 1 << 32  # after every tag
_UNDEFINED_KEY = 1 << 48  # in a key: the element's length is undefined


class _Read:
    """A header's step in `_Run.walk`: a top-level value the engine reads (`_Run.top`), then
    copied with its neighbours (`_RAW`), a pseudonym's place (`_PATIENT`) or its UIDs replaced
    (`_UIDS`)."""

    __slots__ = ("vr", "kind")

    def __init__(self, vr: str | None, kind: int) -> None:
        self.vr, self.kind = vr, kind


class _Items:
    """A header's step in `_Run.walk`: a sequence whose items are cleaned (`_Run.sequence_at`)."""

    __slots__ = ("path",)

    def __init__(self, path: tuple[int, ...]) -> None:
        self.path = path  # the tags of the sequences down to its items, as `decide` takes them


@cache
def _fast_steps(profile: Profile, iod: iods.IodAttributes, implicit: bool) -> dict[tuple[int, ...], dict[int, Any]]:
    """By place (the tags of the sequences above, as `decide` takes it): the steps the header
    alone decides, by tag (implicit VR) or tag and VR (explicit: `VR as a little-endian
    number << 32 | tag`), `_UNDEFINED_KEY` added for an undefined length, learnt from the
    first element of each kind: shared by every file of a run."""
    return {}


def _fast_step(tag: int, vr: str | None, step: tuple[int, Any], top: bool) -> Any:
    """What `_Run.walk` may do with an element from its header, given its planned step (for a
    value of defined length that is no sequence)."""
    kind, payload = step
    if top and tag in _READ_TAGS:
        if kind == _PATIENT:
            return _Read(payload, kind)  # (framed with the VR the plan settled)
        return _Read(vr, kind) if kind in (_RAW, _UIDS) else _LOOK
    if top and tag in MARK_TAGS:
        return _LOOK
    if kind == _DROP:
        return b""
    if top and tag >> 24 == 0x60:  # an overlay's elements are listed (its group may go as a whole)
        return _LOOK
    if kind == _RAW:
        return _COPY
    if kind == _CONSTANT:
        return payload
    if kind == _UIDS:
        return _PSEUDONYMS
    return _LOOK


def _fragments_end(data: memoryview, pos: int, end: int) -> int:
    """Where the Sequence Delimiter after encapsulated fragments starts (items walked one by one)."""
    while pos + 8 <= end:
        group, number, length = _HEADER.unpack_from(data, pos)
        tag = group << 16 | number
        if tag == SEQUENCE_END and length == 0:
            return pos
        if tag != ITEM or length == UNDEFINED_LENGTH or pos + 8 + length > end:
            break
        pos += 8 + length
    raise _GiveUp


def _canonical(raw: bytes, pad: bytes) -> str | None:
    """The text of `raw` when pydicom's conversion and `writer` would give back exactly `raw`:
    printable ASCII, at most one padding byte, no spaces around any value; else None."""
    text = raw[:-1] if raw.endswith(pad) and len(raw) % 2 == 0 and raw else raw
    if len(text) + (len(text) % 2) != len(raw):
        return None
    if _UNSPACED.fullmatch(text):  # the common case (UIDs, codes): no space to look at
        return text.decode("ascii")
    if text.endswith((b" ", b"\0")) or not _PRINTABLE.fullmatch(text):
        return None
    decoded = text.decode("ascii")
    if any(part != part.strip() for part in decoded.split("\\")):
        return None
    return decoded


def _padded(text: str, pad: bytes) -> bytes:
    data = text.encode("ascii")
    return data + pad if len(data) % 2 else data


_NUMBER_FORMATS = {"US": "<H", "SS": "<h", "UL": "<L", "SL": "<l", "UV": "<Q", "SV": "<q", "FL": "<f", "FD": "<d", "AT": "<L"}


@cache
def _dummy(vr: str) -> bytes | None:
    """The value `writer` writes for `DUMMY_BY_VR[vr]` (tests compare with pydicom's encoding)."""
    value = DUMMY_BY_VR.get(vr, BINARY_DUMMY)
    if vr in _NUMBER_FORMATS:
        return Struct(_NUMBER_FORMATS[vr]).pack(value)
    if isinstance(value, str):
        return _padded(value, b" ")
    if vr in ("OB", "OW"):
        return bytes(value)
    return None


@cache
def _marks(profile: Profile, implicit: bool) -> list[tuple[int, list[Any]]]:
    """The elements `Engine._mark` adds, encoded once per profile and syntax."""
    run = _Run(profile, Pseudonymizer(b""))
    run.implicit = implicit

    def text(tag: int, vr: str, value: str) -> tuple[int, list[Any]]:
        out: list[Any] = []
        run.frame(tag, vr, _padded(value, b" "), out)
        return tag, out

    options = profile.options
    temporal = "UNMODIFIED" if "retain_full_dates" in options else "MODIFIED" if "retain_modified_dates" in options else "REMOVED"
    codes: list[Any] = []
    for value, meaning in profile.method_codes():
        codes.append(_ITEM_START)
        for tag, vr, item_value in ((0x00080100, "SH", value), (0x00080102, "SH", "DCM"), (0x00080104, "LO", meaning)):
            codes += text(tag, vr, item_value)[1]
        codes.append(_ITEM_CLOSE)
    header = _HEADER.pack(0x0012, 0x0064, UNDEFINED_LENGTH) if implicit else _EXPLICIT.pack(0x0012, 0x0064, b"SQ", 0) + b"\xff\xff\xff\xff"
    return [
        text(0x00120062, "CS", "YES"),
        text(0x00120063, "LO", "\\".join(profile.method_values())),
        (0x00120064, [header, *codes, _SEQ_CLOSE]),
        text(0x00280303, "CS", temporal),
    ]
