"""C-FIND, C-MOVE and C-GET identifiers: which keys each query sends, built the same way by every
backend (the Python backend sends them with pynetdicom; the toolkit adapters write them to the
query file their SCU tool reads).

The query is built from `options.query` (keyword or tag -> value) on top of the usual return
keys of the level, so a bare `{"level": "STUDY"}` already lists studies with their UIDs, dates and
descriptions.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.job import Job

if TYPE_CHECKING:
    from pydicom import Dataset

# Return keys asked for at each level (empty values = "send this back").
LEVEL_KEYS: dict[str, tuple[str, ...]] = {
    "PATIENT": ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "NumberOfPatientRelatedStudies"),
    "STUDY": ("PatientName", "PatientID", "StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber", "StudyID",
              "StudyDescription", "ModalitiesInStudy", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances"),
    "SERIES": ("StudyInstanceUID", "SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription", "NumberOfSeriesRelatedInstances"),
    "IMAGE": ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID", "InstanceNumber"),
}
# Unique keys of the levels above each level: a hierarchical query needs them present (universal match).
PARENT_KEYS: dict[str, tuple[str, ...]] = {
    "PATIENT": (),
    "STUDY": ("StudyInstanceUID",),
    "SERIES": ("StudyInstanceUID", "SeriesInstanceUID"),
    "IMAGE": ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"),
}
WORKLIST_KEYS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber", "ReferringPhysicianName",
                 "RequestedProcedureID", "RequestedProcedureDescription", "StudyInstanceUID")
STEP_KEYS = ("Modality", "ScheduledStationAETitle", "ScheduledStationName", "ScheduledProcedureStepStartDate",
             "ScheduledProcedureStepStartTime", "ScheduledPerformingPhysicianName", "ScheduledProcedureStepDescription",
             "ScheduledProcedureStepID")

_NUMBER_VRS = {"US": int, "SS": int, "UL": int, "SL": int, "UV": int, "SV": int, "IS": int, "FL": float, "FD": float, "DS": float}
_BINARY_NUMBER_VRS = frozenset({"US", "SS", "UL", "SL", "UV", "SV", "FL", "FD"})


def query_model(job: Job) -> str:
    """The information model of a query/retrieve job: `options.model`, else patient root at
    PATIENT level and study root otherwise."""
    return str(job.option("model") or ("patient" if job.option("level") == "PATIENT" else "study"))


def set_key(ds: Dataset, key: str, value: Any) -> None:
    """Add one query key; the VR comes from the data dictionary, a dict value becomes a one-item sequence."""
    from pydicom.datadict import dictionary_VR, tag_for_keyword
    from pydicom.dataset import Dataset as DS
    from pydicom.tag import Tag

    tag = tag_for_keyword(key) if not key.startswith("(") else Tag(int(key[1:5], 16), int(key[6:10], 16))
    try:
        vr = dictionary_VR(tag) if tag is not None else None
    except KeyError:
        vr = None
    if tag is None or vr is None:
        raise HubError(ErrorCode.INVALID_REQUEST, f"unknown query key {key!r}", "use a DICOM keyword (e.g. PatientName) or a public tag (0010,0010)")
    if vr == "SQ":
        item = ds[tag].value[0] if tag in ds and ds[tag].value else DS()
        for sub_key, sub_value in (value or {}).items():
            set_key(item, sub_key, sub_value)
        ds.add_new(tag, "SQ", [item])
        return
    if isinstance(value, dict):
        raise HubError(ErrorCode.INVALID_REQUEST, f"query key {key!r} is not a sequence; give it a text value", "only sequence keys take an object")
    ds.add_new(tag, vr, query_value(key, vr, value))


def query_value(key: str, vr: str, value: Any) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, list):
        return [str(v) for v in value]
    number = _NUMBER_VRS.get(vr)
    if number is not None:
        try:
            parsed = number(value)
        except (TypeError, ValueError):
            raise HubError(ErrorCode.INVALID_REQUEST, f"query key {key!r} ({vr}) needs a number, got {value!r}", "give a number") from None
        return parsed if vr in _BINARY_NUMBER_VRS else str(value)
    return str(value)


def build_query(level: str | None, keys: tuple[str, ...], query: dict[str, Any]) -> Dataset:
    from pydicom.dataset import Dataset as DS

    ds = DS()
    if level is not None:
        ds.QueryRetrieveLevel = level
    for key in keys:
        set_key(ds, key, None)
    for key, value in query.items():
        set_key(ds, key, value)
    return ds


def find_query(job: Job) -> Dataset:
    """The C-FIND identifier of a `find` job: the level's return keys, the unique keys above it
    (PatientID too in the patient root model), then the user's keys."""
    level = job.option("level")
    keys = LEVEL_KEYS[level] + PARENT_KEYS[level]
    if job.option("model") == "patient":
        keys += ("PatientID",)
    return build_query(level, keys, job.option("query") or {})


def worklist_query(job: Job) -> Dataset:
    """The MWL identifier: usual return keys plus the options' matching values in the step item."""
    step: dict[str, Any] = {key: None for key in STEP_KEYS}
    for option, key in (("station_aet", "ScheduledStationAETitle"), ("station_name", "ScheduledStationName"), ("modality", "Modality")):
        if job.option(option):
            step[key] = job.option(option)
    if job.option("date"):
        date = job.option("date")
        step["ScheduledProcedureStepStartDate"] = dt.date.today().strftime("%Y%m%d") if date == "today" else date
    top: dict[str, Any] = {}
    for option, key in (("patient_id", "PatientID"), ("patient_name", "PatientName"), ("accession_number", "AccessionNumber")):
        if job.option(option):
            top[key] = job.option(option)
    extra = dict(job.option("query") or {})
    step.update(extra.pop("ScheduledProcedureStepSequence", None) or {})
    return build_query(None, WORKLIST_KEYS, {**top, **extra, "ScheduledProcedureStepSequence": step})


def retrieve_query(job: Job) -> tuple[str, Dataset]:
    """The level and the C-MOVE/C-GET identifier: only the user's keys, which must identify something."""
    level = job.option("level")
    query = job.option("query") or {}
    if not query:
        raise HubError(ErrorCode.INVALID_REQUEST, "options.query is empty: a retrieve needs identifying keys", 'e.g. {"StudyInstanceUID": "1.2.3"}')
    return level, build_query(level, (), query)
