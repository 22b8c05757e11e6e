"""Query/Retrieve SCP behind `dicom-hub scp`: C-FIND, C-GET and C-MOVE over what it has stored.

The Patient Root and Study Root models, at PATIENT, STUDY, SERIES and IMAGE level. A query is
answered from the SQLite index (`index.py`): candidates are narrowed by the unique keys at and
above the query level, grouped into entities of that level (a patient, a study, a series or an
instance), and an entity matches when one of its instances matches every key (`matching.py`).
Each match returns the keys asked for, with the values of the first matching instance and the
counts of PS3.4 C.3 (Number of Study Related Instances, Modalities in Study, ...).

C-GET sends the matching instances back over the same association; C-MOVE to an AE configured as
`AET=host:port` (an unknown one is answered 0xA801). pynetdicom counts the sub-operations and
sends the pending and final responses.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .index import IndexedInstance, InstanceIndex
from .matching import dataset_matches, is_universal, values_of

if TYPE_CHECKING:
    from pydicom import Dataset

# C-FIND/C-GET/C-MOVE statuses we answer with (PS3.4 C.4).
PENDING = 0xFF00
CANCEL = 0xFE00
SUCCESS = 0x0000
IDENTIFIER_DOES_NOT_MATCH = 0xA900

LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")
# The unique key of each level, and the index column it is narrowed by.
UNIQUE_KEYS = {"PATIENT": "PatientID", "STUDY": "StudyInstanceUID", "SERIES": "SeriesInstanceUID", "IMAGE": "SOPInstanceUID"}
_ENTITY_COLUMNS = {"PATIENT": "patient_id", "STUDY": "study_uid", "SERIES": "series_uid", "IMAGE": "sop_instance_uid"}
_COLUMNS = {"PatientID": "patient_ids", "StudyInstanceUID": "study_uids", "SeriesInstanceUID": "series_uids", "SOPInstanceUID": "sop_uids"}
_TAGS = {"PatientID": 0x00100020, "StudyInstanceUID": 0x0020000D, "SeriesInstanceUID": 0x0020000E, "SOPInstanceUID": 0x00080018}
_NOT_MATCHED = frozenset({0x00080005, 0x00080052, 0x00080054, 0x00080056})  # charset, level, retrieve AE, availability
_DESTINATION = re.compile(r"^(?P<aet>(?! +$)[ -\[\]-~]{1,16})=(?P<host>[A-Za-z0-9._:-]{1,253}):(?P<port>[0-9]{1,5})$")


def sop_class_names() -> dict[str, str]:
    """The Query/Retrieve SOP classes served: UID -> model ('patient' or 'study')."""
    from pynetdicom import sop_class

    from .query import MODELS

    return {getattr(sop_class, name): model for (model, _service), name in MODELS.items()}


@dataclass(frozen=True)
class Destination:
    aet: str
    host: str
    port: int


def parse_destination(text: str) -> Destination:
    """`AET=host:port` (the form of `dicom-hub scp --move-destination`), else ValueError."""
    match = _DESTINATION.match(text)
    if match is None or not 1 <= int(match["port"]) <= 65535:
        raise ValueError(f"{text!r} is not AET=host:port (AE title of 1-16 characters, port 1-65535)")
    return Destination(match["aet"].strip(), match["host"], int(match["port"]))


class QueryRefused(ValueError):
    """The identifier cannot be answered: `status` is the C-FIND/GET/MOVE failure to send."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass
class QueryRetrieveService:
    """Adds Query/Retrieve to a storage SCP's AE: `configure(ae)` before it starts, `handlers()`
    with its own, and `indexed(path)` after each stored instance."""

    root: Path
    aet: str
    destinations: Mapping[str, Destination] = field(default_factory=dict)
    log: Callable[[str], None] = print
    index: InstanceIndex = field(init=False)

    def __post_init__(self) -> None:
        self.index = InstanceIndex(self.root)
        report = self.index.sync()
        how = "rebuilt from the files" if report.rebuilt and report.added else "checked against the files"
        self.log(f"index {self.index.path}: {self.index.count()} instances ({how}: {report.added} added, {report.removed} removed)")
        for problem in report.unreadable[:10]:
            self.log(f"index: not indexed: {problem}")

    def configure(self, ae: Any) -> None:
        """Support the Q/R models, and the SCP role for storage so a C-GET peer can receive."""
        from pynetdicom import ALL_TRANSFER_SYNTAXES
        from pynetdicom.presentation import AllStoragePresentationContexts

        for uid in sop_class_names():
            ae.add_supported_context(uid)
        for cx in AllStoragePresentationContexts:
            ae.add_supported_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES, scu_role=True, scp_role=True)

    def handlers(self) -> list[tuple[Any, Callable[..., Any]]]:
        from pynetdicom import evt

        return [(evt.EVT_C_FIND, self.on_find), (evt.EVT_C_GET, self.on_get), (evt.EVT_C_MOVE, self.on_move)]

    def indexed(self, path: Path) -> None:
        """Index a file just stored. The file is kept either way (the C-STORE succeeded); one the
        index cannot read is logged and stays out of query results until it is fixed and re-sent."""
        try:
            self.index.add(path)
        except Exception as err:
            self.log(f"index: not indexed: {path.relative_to(self.root)}: {type(err).__name__}: {err}")

    def close(self) -> None:
        self.index.close()

    # C-FIND

    def on_find(self, event: Any) -> Iterator[tuple[int, Dataset | None]]:
        try:
            identifier = event.identifier
            level = query_level(identifier, sop_class_names()[str(event.request.AffectedSOPClassUID)])
        except QueryRefused as err:
            self._log(event, "C-FIND", str(err))
            yield err.status, None
            return
        found = 0
        for entity in self.entities(identifier, level):
            if event.is_cancelled:
                self._log(event, f"C-FIND {level}", f"{found} matches, cancelled")
                yield CANCEL, None
                return
            found += 1
            yield PENDING, self.answer(identifier, level, entity)
        self._log(event, f"C-FIND {level}", f"{found} matches")
        yield SUCCESS, None

    def entities(self, identifier: Dataset, level: str) -> Iterator[Dataset]:
        """For each matching entity of the level, its first instance's header plus the entity's
        counts. Keys are matched against that one header: in a hierarchical query every key is
        at the query level or above, so all instances of the entity share its values."""
        groups: dict[str, list[IndexedInstance]] = {}
        column = _ENTITY_COLUMNS[level]
        for instance in self.index.candidates(**narrowing(identifier, LEVELS[: LEVELS.index(level) + 1])):
            groups.setdefault(getattr(instance, column), []).append(instance)
        for instances in groups.values():
            header = with_counts(instances[0].header(), instances, level)
            if dataset_matches(identifier, header, _NOT_MATCHED):
                yield header

    def answer(self, identifier: Dataset, level: str, entity: Dataset) -> Dataset:
        """The keys asked for, with the entity's values (empty when it has none)."""
        from pydicom import Dataset as DS

        out = DS()
        if "SpecificCharacterSet" in entity:
            out.SpecificCharacterSet = entity.SpecificCharacterSet
        for key in identifier:
            if key.tag in (0x00080005, 0x00080052):
                continue
            if key.tag == 0x00080054:  # Retrieve AE Title: where to C-MOVE/C-GET it from
                out.RetrieveAETitle = self.aet
            elif key.tag == 0x00080056:
                out.InstanceAvailability = "ONLINE"
            elif key.VR == "SQ":
                out.add_new(key.tag, "SQ", returned_items(key, entity.get(key.tag)))
            elif key.tag in entity:
                out.add(entity[key.tag])
            else:
                out.add_new(key.tag, key.VR, None)
        out.QueryRetrieveLevel = level
        for _ in out.iterall():  # decode every element, items too: the index keeps them in the
            pass  # file's encoding, and a raw one would be sent in that encoding whatever was negotiated
        return out

    # C-GET and C-MOVE

    def matching_instances(self, event: Any) -> list[IndexedInstance]:
        identifier = event.identifier
        level = query_level(identifier, sop_class_names()[str(event.request.AffectedSOPClassUID)])
        keys = LEVELS[: LEVELS.index(level) + 1]
        if all(is_universal_or_absent(identifier, UNIQUE_KEYS[k]) for k in keys):
            raise QueryRefused(IDENTIFIER_DOES_NOT_MATCH, f"a {level} retrieve needs a value for {UNIQUE_KEYS[level]} (or a key above it)")
        narrowed = narrowing(identifier, keys)
        instances = list(self.index.candidates(**narrowed))
        narrowed_tags = {_TAGS[k] for k in UNIQUE_KEYS.values() if _COLUMNS[k] in narrowed}
        other_keys = [e for e in identifier if e.tag not in _NOT_MATCHED and e.tag not in narrowed_tags and not is_universal(e)]
        if not other_keys:  # the index lookup was the whole match: no header to decode
            return instances
        return [i for i in instances if dataset_matches(identifier, i.header(), _NOT_MATCHED | narrowed_tags)]

    def on_get(self, event: Any) -> Iterator[Any]:
        try:
            instances = self.matching_instances(event)
        except QueryRefused as err:
            self._log(event, "C-GET", str(err))
            yield 1  # pynetdicom takes a failure status only after the number of sub-operations
            yield err.status, None
            return
        self._log(event, "C-GET", f"{len(instances)} instances to send")
        yield len(instances)
        accepted = {(cx.abstract_syntax, cx.transfer_syntax[0]) for cx in event.assoc.accepted_contexts}
        for instance in instances:
            if event.is_cancelled:
                yield CANCEL, None
                return
            yield PENDING, dataset_to_send(instance, accepted)

    def on_move(self, event: Any) -> Iterator[Any]:
        destination = self.destinations.get(str(event.move_destination).strip())
        if destination is None:
            self._log(event, "C-MOVE", f"unknown destination {str(event.move_destination).strip()!r} (0xA801)")
            yield None, None
            return
        try:
            instances = self.matching_instances(event)
        except QueryRefused as err:
            self._log(event, "C-MOVE", str(err))
            yield destination.host, destination.port
            yield 1  # as in on_get
            yield err.status, None
            return
        yield destination.host, destination.port, {"contexts": move_contexts(instances)}
        self._log(event, "C-MOVE", f"{len(instances)} instances to {destination.aet}@{destination.host}:{destination.port}")
        yield len(instances)
        accepted = destination_contexts(event.assoc.ae, destination)
        for instance in instances:
            if event.is_cancelled:
                yield CANCEL, None
                return
            yield PENDING, dataset_to_send(instance, accepted)

    def _log(self, event: Any, service: str, what: str) -> None:
        requestor = event.assoc.requestor
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.log(f"{now} {service} from {requestor.ae_title}@{requestor.address}:{requestor.port}: {what}")


def query_level(identifier: Dataset, model: str) -> str:
    level = str(identifier.get("QueryRetrieveLevel", "")).strip().upper()
    if level not in LEVELS:
        raise QueryRefused(IDENTIFIER_DOES_NOT_MATCH, f"Query/Retrieve Level {level!r} is not one of {', '.join(LEVELS)}")
    if model == "study" and level == "PATIENT":
        raise QueryRefused(IDENTIFIER_DOES_NOT_MATCH, "the Study Root model has no PATIENT level")
    return level


def is_universal_or_absent(identifier: Dataset, keyword: str) -> bool:
    element = identifier.get(keyword)
    return element is None or is_universal(identifier[keyword])


def narrowing(identifier: Dataset, levels: tuple[str, ...]) -> dict[str, list[str]]:
    """Exact values of the unique keys of `levels` (no wildcard), to narrow the index lookup."""
    found: dict[str, list[str]] = {}
    for level in levels:
        keyword = UNIQUE_KEYS[level]
        if is_universal_or_absent(identifier, keyword):
            continue
        values = [str(v).strip() for v in values_of(identifier[keyword])]
        if not any("*" in v or "?" in v for v in values) or keyword != "PatientID":
            found[_COLUMNS[keyword]] = values
    return found


def with_counts(header: Dataset, instances: list[IndexedInstance], level: str) -> Dataset:
    """The header plus the entity's computed attributes (PS3.4 C.3), for matching and answers."""
    if level == "IMAGE":
        return header
    series = {i.series_uid for i in instances}
    if level == "PATIENT":
        header.NumberOfPatientRelatedStudies = len({i.study_uid for i in instances})
        header.NumberOfPatientRelatedSeries = len(series)
        header.NumberOfPatientRelatedInstances = len(instances)
    elif level == "STUDY":
        header.NumberOfStudyRelatedSeries = len(series)
        header.NumberOfStudyRelatedInstances = len(instances)
        header.ModalitiesInStudy = sorted({i.modality for i in instances if i.modality})
        header.SOPClassesInStudy = sorted({i.sop_class_uid for i in instances if i.sop_class_uid})
    else:
        header.NumberOfSeriesRelatedInstances = len(instances)
    return header


def returned_items(key: Any, stored: Any) -> list[Dataset]:
    """Sequence matching's answer: the stored items that match the key's item, reduced to the keys
    it asks for (all of an item when the key's item is empty)."""
    from pydicom import Dataset as DS

    if stored is None or stored.VR != "SQ":
        return []
    wanted = key.value[0] if key.value else DS()
    items = []
    for item in stored.value:
        if not dataset_matches(wanted, item):
            continue
        if len(wanted) == 0:
            items.append(item)
            continue
        reduced = DS()
        for sub in wanted:
            if sub.tag in item:
                reduced.add(item[sub.tag])
            else:
                reduced.add_new(sub.tag, sub.VR, None)
        items.append(reduced)
    return items


def dataset_to_send(instance: IndexedInstance, accepted: set[tuple[str, str]] | None) -> Any:
    """The stored file as a data set; decompressed when the peer accepted only an uncompressed
    context for its SOP class (`accepted` None: not known, send it as stored). A file that cannot
    be read is yielded as its error text, which pynetdicom counts as a failed sub-operation."""
    from pydicom import dcmread

    from .store import UNCOMPRESSED, uncompressed_copy

    try:
        if accepted is not None and (instance.sop_class_uid, instance.transfer_syntax) not in accepted:
            fallback = next((ts for ts in UNCOMPRESSED if (instance.sop_class_uid, ts) in accepted), None)
            if fallback is not None:
                return uncompressed_copy(instance.path, fallback)
        return dcmread(instance.path)
    except Exception as err:
        return f"cannot read {instance.path}: {type(err).__name__}: {err}"


def destination_contexts(ae: Any, destination: Destination) -> set[tuple[str, str]] | None:
    """The contexts the C-MOVE destination accepted. pynetdicom opens that association itself
    and does not hand it to the handler, so it is found among the AE's active associations
    (every one to that destination was proposed the same way); None when none is found."""
    accepted: set[tuple[str, str]] = set()
    for assoc in ae.active_associations:
        acceptor = assoc.acceptor
        if assoc.is_requestor and assoc.is_established and (acceptor.address, acceptor.port) == (destination.host, destination.port):
            accepted |= {(cx.abstract_syntax, cx.transfer_syntax[0]) for cx in assoc.accepted_contexts}
    return accepted or None


def move_contexts(instances: list[IndexedInstance]) -> list[Any]:
    """The presentation contexts to propose to a C-MOVE destination: each (SOP class, transfer
    syntax) found, plus an uncompressed fallback per SOP class (as `store` does)."""
    from .store import FileToSend, build_contexts

    items = [FileToSend(i.path, i.sop_class_uid, i.sop_instance_uid, i.transfer_syntax) for i in instances]
    return build_contexts(items) if items else []
