"""The SQLite index of what `dicom-hub scp` has stored, so it can answer C-FIND, C-GET and C-MOVE.

One row per SOP instance: its UIDs and modality, its file (relative to the store root), the file's
size and mtime (to notice files changed behind our back) and its header: the file's own bytes from
the end of the file meta to the Pixel Data, in the file's encoding (what queries match against;
pydicom reads it back lazily, which is ten times faster than DICOM JSON, and nothing is re-encoded
at indexing time). A deflated or very large header is re-encoded without its bulk data. The index lives beside the files (`<root>/.dicom-hub-index.sqlite`)
and is only a cache of them: `sync()` at start-up re-reads new or changed files and forgets
deleted ones, and a missing, foreign or corrupt index file is rebuilt from the files.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydicom import Dataset

INDEX_NAME = ".dicom-hub-index.sqlite"
SCHEMA_VERSION = 3
BULK_LIMIT = 1024  # binary values longer than this are left out of a re-encoded header
HEADER_LIMIT = 256 * 1024  # a longer header (big overlays, waveforms) is re-encoded without bulk data
_BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS instances (
    sop_instance_uid TEXT PRIMARY KEY,
    sop_class_uid TEXT NOT NULL,
    transfer_syntax TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    study_uid TEXT NOT NULL,
    series_uid TEXT NOT NULL,
    modality TEXT NOT NULL,
    implicit_vr INTEGER NOT NULL,
    little_endian INTEGER NOT NULL,
    path TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    header BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS by_study ON instances (study_uid);
CREATE INDEX IF NOT EXISTS by_series ON instances (series_uid);
CREATE INDEX IF NOT EXISTS by_patient ON instances (patient_id);
"""


@dataclass(frozen=True)
class IndexedInstance:
    """One stored instance as the index knows it; `header()` decodes its attributes on demand."""

    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax: str
    patient_id: str
    study_uid: str
    series_uid: str
    modality: str
    implicit_vr: bool
    little_endian: bool
    path: Path
    header_bytes: bytes

    def header(self) -> Dataset:
        from io import BytesIO

        from pydicom.filereader import read_dataset

        return read_dataset(BytesIO(self.header_bytes), is_implicit_VR=bool(self.implicit_vr), is_little_endian=bool(self.little_endian))


@dataclass(frozen=True)
class SyncReport:
    added: int
    removed: int
    unreadable: list[str]
    rebuilt: bool


def read_header(path: Path) -> tuple[Dataset, bytes, bool, bool]:
    """The file's data set up to its Pixel Data, its bytes as they are in the file, and their
    encoding (implicit VR?, little endian?)."""
    from pydicom import dcmread
    from pynetdicom.dsutils import split_dataset

    _, start = split_dataset(path)
    with path.open("rb") as fp:
        ds = dcmread(fp, stop_before_pixels=True)
        end = fp.tell()  # pydicom stops at the start of the Pixel Data element
        syntax = ds.file_meta.TransferSyntaxUID
        if syntax.is_deflated or end - start > HEADER_LIMIT or start >= end:
            return ds, slim_header(ds), False, True
        fp.seek(start)
        return ds, fp.read(end - start), syntax.is_implicit_VR, syntax.is_little_endian


def slim_header(ds: Dataset) -> bytes:
    """The data set without bulk data (pixel data, long binary values), as Explicit VR Little Endian."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    slim = ds.copy()
    for element in list(slim):
        value = element.value
        if element.tag == 0x7FE00010 or (element.VR in _BINARY_VRS and value is not None and len(value) > BULK_LIMIT):
            del slim[element.tag]
    for _ in slim.iterall():  # decode every element (items too), so all are written in the new encoding
        pass
    slim.set_original_encoding(False, True, slim.original_character_set)
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_dataset(buffer, slim)
    return buffer.getvalue()


class InstanceIndex:
    """The index of one store root. Thread-safe: association threads add and query concurrently."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / INDEX_NAME
        self._lock = threading.Lock()
        self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        """Open (or create) the index; a file that is not our index of this version is rebuilt."""
        try:
            db = self._connect()
            version = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if version is None or int(version[0]) != SCHEMA_VERSION:
                raise sqlite3.DatabaseError(f"schema version {version and version[0]}")
            return db
        except sqlite3.DatabaseError:
            for suffix in ("", "-wal", "-shm"):
                Path(str(self.path) + suffix).unlink(missing_ok=True)
            db = self._connect()
            db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            db.commit()
            return db

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # a cache of the files: durable enough, and no fsync per instance
        db.executescript(_SCHEMA)
        return db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # Writing.

    def add(self, path: Path) -> None:
        """Index the file at `path` (inside root); the same SOP Instance UID replaces its old row,
        and its old file when that was elsewhere (the instance came back with other study/series UIDs)."""
        ds, header, implicit_vr, little_endian = read_header(path)
        stat = path.stat()
        relative = str(path.relative_to(self.root))
        sop = str(ds.SOPInstanceUID)
        row = (sop, str(ds.get("SOPClassUID", "")), str(ds.file_meta.get("TransferSyntaxUID", "")), str(ds.get("PatientID", "")),
               str(ds.get("StudyInstanceUID", "")), str(ds.get("SeriesInstanceUID", "")), str(ds.get("Modality", "")),
               implicit_vr, little_endian, relative, stat.st_size, stat.st_mtime_ns, header)
        with self._lock, self._db:
            old = self._db.execute("SELECT path FROM instances WHERE sop_instance_uid = ?", (sop,)).fetchone()
            self._db.execute("DELETE FROM instances WHERE sop_instance_uid = ? OR path = ?", (sop, relative))
            self._db.execute("INSERT INTO instances VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", row)
        if old is not None and old[0] != relative:
            (self.root / old[0]).unlink(missing_ok=True)

    def sync(self) -> SyncReport:
        """Bring the index in line with the files under root: (re)index new and changed files,
        forget missing ones. Called at start-up, so a store edited while stopped is seen right."""
        with self._lock:
            known = {path: (size, mtime) for path, size, mtime in self._db.execute("SELECT path, size, mtime_ns FROM instances")}
        rebuilt = not known
        on_disk: dict[str, Path] = {}
        for file in self.root.glob("*/*/*.dcm"):
            on_disk[str(file.relative_to(self.root))] = file
        removed = [p for p in known if p not in on_disk]
        with self._lock, self._db:
            self._db.executemany("DELETE FROM instances WHERE path = ?", [(p,) for p in removed])
        added, unreadable = 0, []
        for relative, file in sorted(on_disk.items(), key=lambda item: item[1].stat().st_mtime_ns):
            stat = file.stat()
            if known.get(relative) == (stat.st_size, stat.st_mtime_ns):
                continue
            try:
                self.add(file)
                added += 1
            except Exception as err:  # a foreign or damaged file in the store: report it, keep going
                unreadable.append(f"{relative}: {type(err).__name__}: {err}")
        return SyncReport(added, len(removed), unreadable, rebuilt)

    # Reading.

    def candidates(self, patient_ids: list[str] | None = None, study_uids: list[str] | None = None,
                   series_uids: list[str] | None = None, sop_uids: list[str] | None = None) -> Iterator[IndexedInstance]:
        """Instances narrowed by exact key values (None: no condition), in a stable order."""
        where, args = [], []
        for column, values in (("patient_id", patient_ids), ("study_uid", study_uids), ("series_uid", series_uids), ("sop_instance_uid", sop_uids)):
            if values is not None:
                where.append(f"{column} IN ({','.join('?' * len(values))})")
                args.extend(values)
        sql = "SELECT sop_instance_uid, sop_class_uid, transfer_syntax, patient_id, study_uid, series_uid, modality, implicit_vr, little_endian, path, header FROM instances"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY patient_id, study_uid, series_uid, path"
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        for sop, sop_class, syntax, patient, study, series, modality, implicit, little, path, header in rows:
            yield IndexedInstance(sop, sop_class, syntax, patient, study, series, modality, implicit, little, self.root / path, header)

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM instances").fetchone()[0])
