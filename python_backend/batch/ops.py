"""`batch_list`, `batch_validate`, `batch_decompress`, `batch_convert`: one per-file function each,
run over a tree by `runner.run_batch`.

Single-file ops are reused, not re-implemented: `batch_validate` and `batch_convert` call the
`validate` and `to_image` op functions once per file through `call_op`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dicom_hub.contract.dicom.part10 import read_dataset, write_dataset
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.job import Job, Outcome

from .runner import run_batch

# Options the runner reads; everything else of a batch op goes to the per-file op.
BATCH_OPTIONS = frozenset({"recursive", "include_raw", "workers", "progress", "suffix", "preserve_tree", "timeout", "executor", "scheduler"})


@dataclass(frozen=True)
class OpCall:
    """A single-file op to run per file, with the options the user gave (picklable)."""

    op: str
    options: dict[str, Any] = field(default_factory=dict)


def call_op(source: Path, target: Path | None, call: OpCall) -> dict[str, Any]:
    """Run the single-file op `call.op` on `source` (writing `target`); return its metadata."""
    from dicom_hub.contract.catalog import get_op
    from dicom_hub.python_backend import op_function

    spec = get_op(call.op)
    job = Job(op=call.op, inputs=(source,), output=target, options=dict(call.options), defaults=spec.defaults)
    return op_function(call.op)(job).metadata


def require_op(op: str) -> None:
    """Fail the whole batch up front when the per-file op is not available here."""
    from dicom_hub.python_backend import op_function

    try:
        op_function(op)
    except (KeyError, ImportError, AttributeError) as err:
        raise HubError(ErrorCode.UNSUPPORTED_OP, f"the python backend has no {op!r} op to run per file ({type(err).__name__}: {err})", "update dicom-hub") from None


def per_file_options(job: Job) -> dict[str, Any]:
    """The options the user gave that belong to the per-file op, not to the batch."""
    return {k: v for k, v in job.options.items() if k not in BATCH_OPTIONS}


# -- batch_list ---------------------------------------------------------------------------------

_LIST_FIELDS = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "Modality")


def list_one(source: Path, _target: Path | None, _context: Any) -> dict[str, Any]:
    ds = read_dataset(source, stop_before_pixels=True)
    row: dict[str, Any] = {"size_bytes": source.stat().st_size}
    for keyword in _LIST_FIELDS:
        value = ds.get(keyword)
        row[keyword] = None if value in (None, "") else str(value)
    meta = getattr(ds, "file_meta", None)
    ts = meta.get("TransferSyntaxUID") if meta is not None else None
    row["transfer_syntax"] = str(ts) if ts else None
    return row


def batch_list(job: Job) -> Outcome:
    outcome = run_batch(job, list_one, writes_output=False)
    results = outcome.metadata.get("results", [])
    outcome.metadata.update(
        patients=len({r["PatientID"] for r in results if r["PatientID"]}),
        studies=len({r["StudyInstanceUID"] for r in results if r["StudyInstanceUID"]}),
        series=len({r["SeriesInstanceUID"] for r in results if r["SeriesInstanceUID"]}),
    )
    outcome.stdout = "".join(f"{r['path']}\n" for r in results)
    return outcome


# -- batch_validate -----------------------------------------------------------------------------


def batch_validate(job: Job) -> Outcome:
    require_op("validate")
    outcome = run_batch(job, call_op, context=OpCall("validate", per_file_options(job)), writes_output=False)
    results = outcome.metadata.get("results", [])
    outcome.metadata["files_valid"] = sum(1 for r in results if r.get("valid") is True)
    outcome.metadata["files_invalid"] = sum(1 for r in results if r.get("valid") is False)
    return outcome


# -- batch_decompress ---------------------------------------------------------------------------


def decompress_one(source: Path, target: Path | None, overwrite: bool) -> None:
    """Decode the pixel data with pydicom's plugins and write Explicit VR Little Endian, as the
    op promises (implicit VR and deflated inputs too), then check the written file as the
    dispatcher checks a single `transcode`: a file that fails is removed and becomes this file's
    `backend_error`.

    The same decoding as `transcode` (`pixels.transcode.to_native_little_endian`): the SOP
    Instance UID is kept, so the same input always gives the same bytes — which a rerun after an
    interruption and a Dask worker's retry rely on to recognise a finished output.
    """
    from dicom_hub.adapters.verify import verify_file
    from dicom_hub.contract.dicom.pixels.decode import known_transfer_syntax
    from pydicom.uid import ExplicitVRLittleEndian

    from ..pixels.transcode import to_native_little_endian

    assert target is not None
    ds = read_dataset(source)
    to_native_little_endian(ds, source.name, known_transfer_syntax(ds, source.name))
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    write_dataset(ds, target, overwrite=overwrite)
    problem = verify_file(target, source=source, transfer_syntax=ExplicitVRLittleEndian)
    if problem:
        target.unlink(missing_ok=True)
        raise HubError(
            ErrorCode.BACKEND_ERROR,
            f"the decompressed copy of {source.name} fails verification: {problem}; it was removed",
            "this is a defect of the python backend's decoder for this file; report it with the file, or decompress it with another backend (`dicom-hub ops transcode`)",
        )


def batch_decompress(job: Job) -> Outcome:
    return run_batch(job, decompress_one, context=job.overwrite)


# -- batch_convert ------------------------------------------------------------------------------


def batch_convert(job: Job) -> Outcome:
    require_op("to_image")
    image_format = job.option("format")
    options = per_file_options(job) | {"format": image_format}
    extension = ".png" if image_format == "png" else ".jpg"
    outcome = run_batch(job, call_op, context=OpCall("to_image", options), extension=extension)
    outcome.metadata.pop("results", None)  # to_image's per-file details: output_files says enough
    return outcome
