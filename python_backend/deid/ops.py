"""The ops `anonymize` (one file) and `batch_anonymize` (a tree, on every core).

Both go through `anonymize_file`, a module-level function of (source, target, settings), so the
batch runner can send it to worker processes. Replacement values depend only on the key and the
original values (see `pseudonyms.py`), never on which worker or which run saw a file first; that is
what makes two half-batches with the same key equal one full batch.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from dicom_hub.contract.dicom.deid import iods
from dicom_hub.contract.dicom.deid.keys import resolve_key
from dicom_hub.contract.dicom.deid.profile import EDITION, profile_for
from dicom_hub.contract.dicom.deid.pseudonyms import Pseudonymizer
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.files import write_file_atomically
from dicom_hub.contract.job import Job, Outcome

from .bytes_engine import anonymize_bytes
from .mapping import check_mapping, write_mapping
from .reading import read_file_bytes


@dataclass(frozen=True)
class Settings:
    """Everything a worker needs to anonymize one file (picklable, hashable)."""

    key: bytes
    profile_options: tuple[str, ...]
    patient_prefix: str
    allow_burned_in: bool
    overwrite: bool
    collect_mapping: bool


def settings_from(job: Job) -> tuple[Settings, str]:
    """The job's engine settings and where its key came from."""
    options = tuple(job.option("profile_options") or ())
    if "retain_full_dates" in options and "retain_modified_dates" in options:
        raise HubError(
            ErrorCode.INVALID_REQUEST,
            "profile options retain_full_dates and retain_modified_dates contradict each other",
            "choose one: full dates keep the real dates, modified dates shift them per patient",
        )
    if job.option("mapping_file") is not None:
        check_mapping(Path(job.option("mapping_file")))
    key, source = resolve_key(job)
    settings = Settings(
        key=key,
        profile_options=options,
        patient_prefix=job.option("patient_prefix"),
        allow_burned_in=bool(job.option("allow_burned_in")),
        overwrite=job.overwrite,
        collect_mapping=job.option("mapping_file") is not None,
    )
    return settings, source


def anonymize_file(source: Path, target: Path | None, settings: Settings) -> dict[str, Any] | None:
    """De-identify `source` into `target`; return this file's mapping entries when asked."""
    if target is None:
        raise HubError(ErrorCode.INVALID_REQUEST, "anonymize needs an output path", "set 'output'")
    pseudonyms = _run_pseudonymizer(settings)
    profile = profile_for(settings.profile_options)
    done = anonymize_bytes(read_file_bytes(source), profile, pseudonyms, settings.allow_burned_in)
    if done is not None:  # the common case, from the bytes; the same bytes the pydicom engine writes
        chunks, mapping = done
        write_file_atomically(target, chunks, settings.overwrite)
        return mapping if settings.collect_mapping else None
    return _anonymize_dataset(source, target, settings, Pseudonymizer(settings.key, settings.patient_prefix))


def _run_pseudonymizer(settings: Settings) -> Pseudonymizer:
    """One pseudonymizer per run and process, so each UID's HMAC is computed once (a series
    shares its study, series and frame of reference UIDs); a fresh one per file when the mapping
    report is asked for, since each file returns its own UIDs."""
    if settings.collect_mapping:
        return Pseudonymizer(settings.key, settings.patient_prefix)
    pseudonyms = _shared_pseudonymizer(settings)
    if len(pseudonyms.uids) > _MAX_REMEMBERED:  # memory stays flat over any number of files
        pseudonyms.forget()
    return pseudonyms


_MAX_REMEMBERED = 50_000


@lru_cache(maxsize=2)  # a long-lived process (--stream) keeps no more keys than that
def _shared_pseudonymizer(settings: Settings) -> Pseudonymizer:
    return Pseudonymizer(settings.key, settings.patient_prefix)


def _anonymize_dataset(source: Path, target: Path, settings: Settings, pseudonyms: Pseudonymizer) -> dict[str, Any] | None:
    """`anonymize_file` through a pydicom data set: every case, every error."""
    from .engine import Engine
    from .reading import read_for_anonymize
    from .writer import save

    engine = Engine(profile_for(settings.profile_options), pseudonyms, allow_burned_in=settings.allow_burned_in)
    ds = read_for_anonymize(source)
    original_patient = _original_patient(ds)
    try:
        result = engine.anonymize(ds)
    except HubError:
        raise
    except Exception as err:  # a value pydicom cannot parse, deep inside a sequence
        raise HubError(
            ErrorCode.DECODE_ERROR,
            f"cannot de-identify {source.name}: {type(err).__name__}: {err}",
            "the file is corrupt or not valid DICOM",
        ) from None
    save(ds, target, settings.overwrite)
    if not settings.collect_mapping:
        return None
    return {
        "patients": {
            original_patient: {
                "patient_id": str(ds.get("PatientID", "")),
                "patient_name": str(ds.get("PatientName", "")),
                "date_offset_days": result.date_offset_days,
            }
        },
        "uids": pseudonyms.uids,
    }


def anonymize(job: Job) -> Outcome:
    """The `anonymize` op: one file, the profile, markers, optional mapping report."""
    settings, key_source = settings_from(job)
    mapping = anonymize_file(job.input, job.output, settings)
    from pydicom import dcmread

    try:
        written = dcmread(
            job.output_path,
            stop_before_pixels=True,
            specific_tags=["PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"],
        )
    except Exception as err:  # corrupt input passed through (e.g. a broken sequence): no output, then
        job.output_path.unlink(missing_ok=True)
        raise HubError(ErrorCode.DECODE_ERROR, f"the de-identified copy of {job.input.name} cannot be read back ({type(err).__name__}: {err})", "the input is corrupt; repair or re-export it") from None
    metadata: dict[str, Any] = {
        **_describe(settings, key_source),
        "patient_id": str(written.get("PatientID", "")),
        "study_instance_uid": str(written.get("StudyInstanceUID", "")),
        "series_instance_uid": str(written.get("SeriesInstanceUID", "")),
        "sop_instance_uid": str(written.get("SOPInstanceUID", "")),
        # The IOD whose attributes were kept ("any IOD": a SOP class the PS3.3 tables do not describe).
        "iod": iods.for_sop_class(str(written.get("SOPClassUID", ""))).name,
    }
    if mapping is not None:
        try:
            metadata["mapping_file"] = str(write_mapping(Path(job.option("mapping_file")), [mapping]))
        except BaseException:
            job.output_path.unlink(missing_ok=True)  # no de-identified file without the report asked for
            raise
    return Outcome(metadata=metadata, output_files=[str(job.output)])


def batch_anonymize(job: Job) -> Outcome:
    """The `batch_anonymize` op: `anonymize_file` over a tree with the batch runner."""
    from ..batch.runner import run_batch, runs_in_parent

    settings, key_source = settings_from(job)
    _warm_up(settings, job.inputs)
    # Pure Python on one file's bytes (pydicom never decodes the pixels here): the parent may take
    # part of the files, with one worker fewer.
    outcome = run_batch(job, runs_in_parent(anonymize_file), context=settings, describe="anonymize")
    entries = outcome.metadata.pop("results", [])
    outcome.metadata.update(_describe(settings, key_source))
    if settings.collect_mapping and outcome.metadata["files_processed"]:
        outcome.metadata["mapping_file"] = str(
            write_mapping(Path(job.option("mapping_file")), entries)
        )
    return outcome


def _warm_up(settings: Settings, inputs: tuple[Path, ...] = ()) -> None:
    """Load the tables before the runner forks its workers, so they share them. pydicom is not
    imported here (~0.3 s): the bytes engine does without it, and a worker that meets a file it
    declines imports pydicom itself, on its own core. The bytes engine also runs once (nothing
    written) on a file of the batch, so what it learns on a run's first file (the IOD's
    attributes, each element's step: ~20 ms) is learnt once, not in every worker."""
    from dicom_hub.contract.dicom.deid.profile import load_repeating, load_table
    from dicom_hub.contract.dicom.pydicom_tables import pydicom_version
    from dicom_hub.contract.files import prepare_atomic_writes

    profile_for(settings.profile_options)
    load_table()  # the profile's rows, read at the first tag it is asked about
    load_repeating()
    iods.warm_up()
    pydicom_version()
    prepare_atomic_writes(settings.overwrite)
    sample = _sample_file(inputs)
    if sample is not None:
        pseudonyms = _shared_pseudonymizer(settings) if not settings.collect_mapping else Pseudonymizer(settings.key, settings.patient_prefix)
        # Only time is at stake: an error here meets the file again in its turn, where it is reported.
        with contextlib.suppress(Exception):
            anonymize_bytes(read_file_bytes(sample), profile_for(settings.profile_options), pseudonyms, settings.allow_burned_in)


_SAMPLE_MAX_SIZE = 1 << 24  # a larger file is not read just to warm up


def _sample_file(inputs: tuple[Path, ...]) -> Path | None:
    """A file of the batch, found fast (no sort, no full walk): the first regular file of the
    first folder that has one, going down the first subfolder of each; None if none is seen."""
    for root in inputs:
        folder = os.fspath(root)
        for _ in range(16):  # levels down
            below = None
            try:
                with os.scandir(folder) as entries:
                    for entry in entries:
                        if entry.name.startswith("."):
                            continue
                        if entry.is_file(follow_symlinks=False):
                            if entry.stat(follow_symlinks=False).st_size <= _SAMPLE_MAX_SIZE:
                                return Path(entry.path)
                        elif below is None and entry.is_dir(follow_symlinks=False):
                            below = entry.path
            except OSError:  # not a folder: a file given as input
                if os.path.isfile(folder) and os.path.getsize(folder) <= _SAMPLE_MAX_SIZE:
                    return Path(folder)
                break
            if below is None:
                break
            folder = below
    return None


def _describe(settings: Settings, key_source: str) -> dict[str, Any]:
    return {
        "profile": f"PS3.15 E.1-1 {EDITION} basic",
        "profile_options": list(profile_for(settings.profile_options).options),
        "key_source": key_source,
    }


def _original_patient(ds: Any) -> str:
    return str(ds.get("PatientID", "") or ds.get("PatientName", "") or "")
