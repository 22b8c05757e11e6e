"""Applying the profile to a pydicom Dataset, at every depth, without touching pixel data.

Elements the engine keeps are never decoded: pydicom writes a still-raw element back byte for
byte, so Pixel Data (native or encapsulated) leaves exactly as it came in. Only elements whose
value changes are converted.

Rules, in order, for each element of each data set and of each item of every sequence:
- private (odd group): removed, creators, orphans, private sequences and UN blobs alike, unless
  `retain_safe_private` is chosen and (creator, element) is on the safe list;
- group length (gggg,0000): removed (the writer recomputes what Part 10 needs);
- listed in Table E.1-1: the table's action under the chosen options (see `profile.py`), a combined
  action ('X/Z/D') settled by the attribute's type in the data set's IOD (see `iods.py`);
- not listed: kept when the IOD defines it at that place (the technical parameters a researcher
  needs), its sequence items processed with the same rules; removed otherwise, as are unknown
  public tags (see `rules.decide`).
The file meta is rebuilt from scratch (it describes the writer, and a Source AE title identifies).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dicom_hub.contract.dicom.deid import dummies, iods
from dicom_hub.contract.dicom.deid.dummies import BINARY_DUMMY, DUMMY_BY_VR
from dicom_hub.contract.dicom.deid.iods import IodAttributes, TagPath
from dicom_hub.contract.dicom.deid.profile import Profile
from dicom_hub.contract.dicom.deid.pseudonyms import Pseudonymizer
from dicom_hub.contract.dicom.deid.rules import BURNED_IN_SOP_CLASSES, decide, overlay_leftovers, public_vr
from dicom_hub.contract.errors import ErrorCode, HubError

from .dates import shift_da, shift_dt

if TYPE_CHECKING:
    from pydicom import Dataset

PATIENT_ID = 0x00100020
PATIENT_NAME = 0x00100010
BURNED_IN_ANNOTATION = 0x00280301
SOP_CLASS_UID = 0x00080016



@dataclass
class Result:
    """What the engine did to one data set (counts only: no original value is kept here)."""

    actions: Counter[str] = field(default_factory=Counter)
    date_offset_days: int | None = None

    def count(self, what: str) -> None:
        self.actions[what] += 1


@dataclass
class _Pass:
    """One data set on its way through the engine: its IOD, its date offset, what was done."""

    iod: IodAttributes
    offset: int | None
    result: Result


class Engine:
    """One profile and one key, applied to any number of data sets."""

    def __init__(self, profile: Profile, pseudonyms: Pseudonymizer, *, allow_burned_in: bool = False) -> None:
        self.profile = profile
        self.pseudonyms = pseudonyms
        self.allow_burned_in = allow_burned_in
        self._keep_safe_private = bool(profile.safe_private)

    # -- the whole data set ---------------------------------------------------------------------

    def anonymize(self, ds: Dataset) -> Result:
        """De-identify `ds` in place (data set, every sequence item, file meta) and mark it."""
        self.check_burned_in(ds)
        result = Result()
        patient_key = _patient_key(ds)
        offset = self.pseudonyms.date_offset_days(patient_key) if self.profile.shifts_dates else None
        result.date_offset_days = offset
        iod = iods.for_sop_class(str(ds[SOP_CLASS_UID].value or "") if SOP_CLASS_UID in ds else "")
        self._clean(ds, _Pass(iod, offset, result), (), clean_text=False)
        for tag in overlay_leftovers(map(int, ds.keys())):
            del ds[tag]
            result.count("removed")
        self._rebuild_file_meta(ds)
        self._mark(ds)
        return result

    def check_burned_in(self, ds: Dataset) -> None:
        """Refuse images that may carry burned-in text, unless the user said they checked."""
        if self.allow_burned_in:
            return
        flag = str(ds.get(BURNED_IN_ANNOTATION).value if BURNED_IN_ANNOTATION in ds else "").strip().upper()
        sop_class = str(ds[SOP_CLASS_UID].value).strip() if SOP_CLASS_UID in ds else ""
        reason = None
        if flag == "YES":
            reason = "Burned In Annotation (0028,0301) is YES"
        elif sop_class in BURNED_IN_SOP_CLASSES and flag != "NO":
            reason = f"{BURNED_IN_SOP_CLASSES[sop_class]} objects usually carry burned-in text"
        if reason:
            raise HubError(
                ErrorCode.INVALID_REQUEST,
                f"refusing to de-identify: {reason}; the pixels may show patient identity and are copied unchanged",
                "check or redact the pixels first, then set options.allow_burned_in to true",
            )

    # -- one level ------------------------------------------------------------------------------

    def _clean(self, ds: Dataset, run: _Pass, parent: TagPath, *, clean_text: bool) -> None:
        """One data set or item; `clean_text` inside a sequence the profile cleans (C), where free
        text the table does not list is replaced instead of copied."""
        from pydicom.dataelem import DataElement

        private_creators = self._safe_creators(ds) if self._keep_safe_private else None
        for key in list(ds.keys()):
            tag = int(key)
            group, element = tag >> 16, tag & 0xFFFF
            if group & 1:
                if private_creators is None or not self._keep_private(ds, tag, private_creators):
                    del ds[tag]
                    run.result.count("private_removed")
                continue
            if element == 0 or group == 0x0002:
                del ds[tag]
                continue
            action = decide(self.profile, run.iod, parent, tag)
            if action is None:
                vr = public_vr(tag)
                if vr == "SQ":
                    self._recurse(ds, tag, run, (*parent, tag), clean_text=clean_text)
                elif clean_text and vr in dummies.FREE_TEXT_VRS and not ds[tag].is_empty:
                    ds[tag] = DataElement(tag, vr, dummies.FREE_TEXT_DUMMY)
                    run.result.count("cleaned")
                continue
            self._apply(ds, tag, action, run, parent, clean_text)

    def _apply(self, ds: Dataset, tag: int, action: str, run: _Pass, parent: TagPath, clean_text: bool) -> None:
        from pydicom.dataelem import DataElement

        result = run.result
        if action == "X":
            del ds[tag]
            result.count("removed")
            return
        if action in "ZD" and public_vr(tag) == "SQ":  # also when stored as UN: replaced whole, never parsed
            ds[tag] = DataElement(tag, "SQ", [] if action == "Z" else [dummies.item_for(tag)])
            result.count("emptied" if action == "Z" else "dummied")
            return
        vr = ds.get_item(tag).VR or public_vr(tag) or ""
        if vr in ("SQ", "UN") or " or " in vr:
            vr = ds[tag].VR  # a sequence, a public element stored as UN, or an ambiguous VR
        if vr == "SQ":  # K, U: the items kept, processed by the same rules; C: their free text cleaned too
            self._recurse(ds, tag, run, (*parent, tag), clean_text=clean_text or action == "C")
            return
        if action == "K":
            return
        if tag in (PATIENT_ID, PATIENT_NAME) and action in "ZD":
            ds[tag].value = self._patient_pseudonym(ds, tag)
            result.count("pseudonymized")
        elif action == "U" or (action == "D" and vr == "UI"):
            self._replace_uids(ds[tag])
            result.count("uid_replaced")
        elif action in "ZD":
            # The old value is never decoded: the element is replaced whole.
            ds[tag] = DataElement(tag, vr, None if action == "Z" else DUMMY_BY_VR.get(vr, BINARY_DUMMY))
            result.count("emptied" if action == "Z" else "dummied")
        else:  # C: dates shift under retain_modified_dates; other values are emptied (no text scrubbing)
            elem = ds[tag]
            elem.value = None if elem.is_empty else self._clean_value(elem, vr, run.offset)
            result.count("cleaned")

    def _recurse(self, ds: Dataset, tag: int, run: _Pass, path: TagPath, *, clean_text: bool) -> None:
        elem = ds[tag]
        if elem.VR != "SQ":  # a sequence that arrived as UN and could not be parsed: not inspectable
            del ds[tag]
            run.result.count("unparsed_removed")
            return
        for item in elem.value:
            self._clean(item, run, path, clean_text=clean_text)

    # -- values ---------------------------------------------------------------------------------

    def _patient_pseudonym(self, ds: Dataset, tag: int) -> str:
        if tag == PATIENT_ID:
            return self.pseudonyms.patient_id(str(ds[PATIENT_ID].value or ""))
        return self.pseudonyms.patient_name(_patient_key(ds))

    def _replace_uids(self, elem: Any) -> None:
        value = elem.value
        if elem.VR != "UI":
            elem.value = None
        elif isinstance(value, str):
            elem.value = self.pseudonyms.uid(value)
        else:
            elem.value = [self.pseudonyms.uid(v) for v in value]

    def _clean_value(self, elem: Any, vr: str, offset: int | None) -> Any:
        if vr == "TM" and offset is not None:
            return elem.value  # whole-day offsets leave times of day as they are
        if vr in ("DA", "DT") and offset is not None:
            shift = shift_da if vr == "DA" else shift_dt
            raw = elem.value if isinstance(elem.value, str) else "\\".join(str(v) for v in elem.value)
            return shift(str(raw), offset)
        return None

    # -- private elements -----------------------------------------------------------------------

    def _safe_creators(self, ds: Dataset) -> dict[tuple[int, int], str]:
        """(group, block) -> creator name, for the private blocks of this level."""
        creators = {}
        for tag in ds.keys():  # noqa: SIM118 - iterating a Dataset converts its elements; keys() does not
            if tag.group & 1 and 0x10 <= tag.element <= 0xFF:
                value = ds[tag].value
                if isinstance(value, bytes):
                    value = value.decode("ascii", "replace")
                creators[(tag.group, tag.element)] = str(value).strip()
        return creators

    def _keep_private(self, ds: Dataset, tag: int, creators: dict[tuple[int, int], str]) -> bool:
        group, element = tag >> 16, tag & 0xFFFF
        if 0x10 <= element <= 0xFF:  # a creator stays only if one of its safe elements is present
            return any(
                (t >> 16) == group and (t & 0xFFFF) >> 8 == element and self._keep_private(ds, t, creators)
                for t in map(int, ds.keys())
                if (t & 0xFFFF) >= 0x1000
            )
        if element < 0x1000:
            return False  # orphan or reserved
        creator = creators.get((group, element >> 8))
        return self.profile.keeps_private(group, creator, element & 0xFF)

    # -- file meta and markers ------------------------------------------------------------------

    def _rebuild_file_meta(self, ds: Dataset) -> None:
        from pydicom.dataset import FileMetaDataset
        from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

        old = getattr(ds, "file_meta", None) or FileMetaDataset()
        syntax = old.get("TransferSyntaxUID")
        if syntax is None:
            implicit, little = ds.original_encoding
            syntax = (
                ImplicitVRLittleEndian
                if implicit
                else ExplicitVRLittleEndian
                if little
                else ExplicitVRBigEndian
            )
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.get("SOPClassUID") or old.get("MediaStorageSOPClassUID")
        sop_instance = ds.get("SOPInstanceUID")
        if not sop_instance and old.get("MediaStorageSOPInstanceUID"):
            sop_instance = old.MediaStorageSOPInstanceUID
            if self.profile.action(0x00020003) == "U":
                sop_instance = self.pseudonyms.uid(sop_instance)
        if not meta.MediaStorageSOPClassUID or not sop_instance:
            raise HubError(
                ErrorCode.DECODE_ERROR,
                "the file has no SOP Class UID or no SOP Instance UID (in the data set or the file meta), "
                "so no valid de-identified DICOM file can be written",
                "this is not a storable DICOM instance; check where the file came from",
            )
        meta.MediaStorageSOPInstanceUID = sop_instance
        meta.TransferSyntaxUID = syntax
        ds.file_meta = meta

    def _mark(self, ds: Dataset) -> None:
        from pydicom.dataset import Dataset as PydicomDataset

        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = self.profile.method_values()
        codes = []
        for value, meaning in self.profile.method_codes():
            item = PydicomDataset()
            item.CodeValue = value
            item.CodingSchemeDesignator = "DCM"
            item.CodeMeaning = meaning
            codes.append(item)
        ds.DeidentificationMethodCodeSequence = codes
        options = self.profile.options
        if "retain_full_dates" in options:
            ds.LongitudinalTemporalInformationModified = "UNMODIFIED"
        elif "retain_modified_dates" in options:
            ds.LongitudinalTemporalInformationModified = "MODIFIED"
        else:
            ds.LongitudinalTemporalInformationModified = "REMOVED"


def _patient_key(ds: Dataset) -> str:
    """Who this data set is about: the original Patient ID, else the name ('' when neither)."""
    for tag in (PATIENT_ID, PATIENT_NAME):
        if tag in ds and not ds[tag].is_empty:
            return str(ds[tag].value).strip()
    return ""
