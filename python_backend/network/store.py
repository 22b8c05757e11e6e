"""`store`: C-STORE many files over one association.

Only each file's meta header (group 0002) is read first, to learn its SOP class and transfer syntax.
The association proposes every (SOP class, transfer syntax) pair found, plus an uncompressed
fallback context per SOP class. Files whose own syntax was accepted are sent as they are on disk
(pynetdicom streams the encoded bytes, no decode); the others are decompressed with pydicom's
pixel plugins and sent uncompressed. A file the peer refuses is recorded and the rest go on.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence, Set
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dicom_hub.contract.dicom.network.status import status_info
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.job import Job, Outcome

from ._association import MAX_CONTEXTS, Peer, associate

UNCOMPRESSED = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")  # Explicit VR LE, Implicit VR LE


@dataclass
class FileToSend:
    path: Path
    sop_class: str = ""
    sop_instance: str = ""
    transfer_syntax: str = ""
    result: dict[str, Any] | None = None  # set once the file is done (sent or failed)


def collect_files(inputs: tuple[Path, ...], recursive: bool) -> list[Path]:
    """Input files, and the files of input folders (sorted, hidden files skipped)."""
    files: list[Path] = []
    for item in inputs:
        if item.is_dir():
            found = item.rglob("*") if recursive else item.glob("*")
            files.extend(sorted(p for p in found if p.is_file() and not p.name.startswith(".")))
        else:
            files.append(item)
    if not files:
        raise HubError(ErrorCode.INPUT_NOT_FOUND, "no files to send in " + ", ".join(map(str, inputs)), "set options.recursive to true to include subfolders")
    return files


def scan(path: Path) -> FileToSend:
    """SOP class, instance and transfer syntax from the file meta (group 0002 only), or a per-file failure."""
    from pydicom.filereader import read_file_meta_info

    item = FileToSend(path)
    try:
        meta = read_file_meta_info(path)
        item.sop_class, item.sop_instance = str(meta.MediaStorageSOPClassUID), str(meta.MediaStorageSOPInstanceUID)
        item.transfer_syntax = str(meta.TransferSyntaxUID)
    except Exception as err:
        reason = f"{type(err).__name__}: {err}" if not isinstance(err, AttributeError) else f"file meta lacks {err.name or err}"
        item.result = failure(path, "not_dicom", f"not a DICOM Part 10 file with SOP class, instance and transfer syntax in its meta ({reason})")
    return item


def failure(path: Path, reason: str, message: str) -> dict[str, Any]:
    return {"file": str(path), "status": None, "status_hex": None, "category": "Failure", "reason": reason, "text": message}


def context_batches(items: list[FileToSend]) -> list[list[FileToSend]]:
    """Group files so that each association needs at most MAX_CONTEXTS presentation contexts."""
    batches: list[list[FileToSend]] = []
    contexts: set[tuple[str, Sequence[str]]] = set()  # (SOP class, its transfer syntax or UNCOMPRESSED)
    for item in items:
        wanted = {(item.sop_class, item.transfer_syntax), (item.sop_class, UNCOMPRESSED)}
        if batches and len(contexts | wanted) <= MAX_CONTEXTS:
            contexts |= wanted
            batches[-1].append(item)
        else:
            contexts = set(wanted)
            batches.append([item])
    return batches


def build_contexts(items: list[FileToSend]) -> list[Any]:
    from pynetdicom.presentation import build_context

    pairs = dict.fromkeys((i.sop_class, i.transfer_syntax) for i in items)
    contexts = [build_context(sop, [ts]) for sop, ts in pairs if ts not in UNCOMPRESSED]
    contexts += [build_context(sop, list(UNCOMPRESSED)) for sop in dict.fromkeys(i.sop_class for i in items)]
    return contexts


def send_batch(peer: Peer, items: list[FileToSend]) -> None:
    with associate(peer, build_contexts(items)) as assoc:
        accepted = {(cx.abstract_syntax, cx.transfer_syntax[0]) for cx in assoc.accepted_contexts}
        for item in items:
            peer.check_deadline("C-STORE")
            item.result = send_one(assoc, item, accepted)
            if not assoc.is_established:
                break
    for item in items:
        if item.result is None:
            item.result = failure(item.path, "aborted", "not sent: the association ended before this file")


def send_one(assoc: Any, item: FileToSend, accepted: Set[tuple[str | None, str]]) -> dict[str, Any]:
    """Send one file as it is, or decompressed when only an uncompressed context was accepted."""
    decompressed = False
    if (item.sop_class, item.transfer_syntax) in accepted:
        payload: Any = item.path
        sent_syntax = item.transfer_syntax
    else:
        sent_syntax = next((ts for ts in UNCOMPRESSED if (item.sop_class, ts) in accepted), "")
        if not sent_syntax:
            return failure(item.path, "refused", f"the peer accepted no presentation context for SOP class {item.sop_class}")
        try:
            payload = uncompressed_copy(item.path, sent_syntax)
        except BaseException as err:  # a Rust codec's panic is a BaseException (see is_codec_failure)
            from dicom_hub.contract.dicom.pixels.decode import is_codec_failure

            if not is_codec_failure(err):
                raise
            return failure(item.path, "codec", f"the peer refused transfer syntax {item.transfer_syntax} and decompressing failed: {type(err).__name__}: {err}")
        decompressed = item.transfer_syntax not in UNCOMPRESSED  # else only re-encoded (Explicit <-> Implicit VR)
    try:
        status = assoc.send_c_store(payload)
    except (AttributeError, ValueError, OSError) as err:
        return failure(item.path, "unreadable", f"cannot send: {type(err).__name__}: {err}")
    info = status_info(status, "C-STORE")
    return {"file": str(item.path), "sop_instance_uid": item.sop_instance, "transfer_syntax": sent_syntax, "decompressed": decompressed, **info}


def uncompressed_copy(path: Path, syntax: str) -> Any:
    """The file's data set in an uncompressed transfer syntax (pydicom decodes the pixels), e.g.
    Explicit VR data for a peer that accepted only Implicit VR."""
    from dicom_hub.python_backend.pixels.transcode import to_native_little_endian
    from pydicom import dcmread
    from pydicom.uid import UID

    ds = dcmread(path)
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        # The same instance, decompressed: the SOP Instance UID the response reports stays.
        to_native_little_endian(ds, path.name, ds.file_meta.TransferSyntaxUID)
    for _ in ds.iterall():  # decode every element, sequence items too: a raw one would be written
        pass  # back in the file's encoding, e.g. Explicit VR items inside an Implicit VR data set
    target = UID(syntax)
    ds.file_meta.TransferSyntaxUID = target
    # pynetdicom encodes by the data set's own encoding and refuses a mismatch with the context's.
    ds.set_original_encoding(target.is_implicit_VR, target.is_little_endian, ds.original_character_set)
    return ds


@contextmanager
def raw_file_sending() -> Iterator[None]:
    """Make pynetdicom stream files given by path as they are on disk instead of decoding and
    re-encoding them (its default): faster, and the bytes the peer gets are the file's own."""
    from pynetdicom import _config

    previous = _config.STORE_SEND_CHUNKED_DATASET
    _config.STORE_SEND_CHUNKED_DATASET = True
    try:
        yield
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = previous


def store(job: Job) -> Outcome:
    peer = Peer.from_job(job)
    items = [scan(p) for p in collect_files(job.inputs, bool(job.option("recursive")))]
    sendable = [i for i in items if i.result is None]
    with raw_file_sending():
        for batch in context_batches(sendable):
            send_batch(peer, batch)
    return store_outcome([i.result for i in items if i.result is not None], f"on {peer.address}")


def store_outcome(results: list[dict[str, Any]], where: str) -> Outcome:
    """The answer of a store (DIMSE or STOW-RS) from its per-file results: counts, the files, and
    an error only when no file was stored (`not_dicom` when none was DICOM)."""
    counts = {cat: sum(r["category"] == cat for r in results) for cat in ("Success", "Warning")}
    failed = len(results) - counts["Success"] - counts["Warning"]
    metadata = {"total": len(results), "completed": counts["Success"], "warning": counts["Warning"], "failed": failed, "files": results}
    if failed == len(results):
        first = results[0]
        all_not_dicom = all(r.get("reason") == "not_dicom" for r in results)
        raise HubError(
            ErrorCode.NOT_DICOM if all_not_dicom else ErrorCode.NETWORK_ERROR,
            f"no file was stored {where}: {failed} failed; first: {Path(first['file']).name}: {first['text']}",
            "see the per-file reasons (run with fewer files to inspect them)",
        )
    stderr = "".join(f"{Path(r['file']).name}: {r['category']}: {r['text']}\n" for r in results if r["category"] != "Success")
    return Outcome(metadata=metadata, stderr=stderr)
