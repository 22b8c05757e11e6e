"""DCMTK's network tools behind the network ops: echoscu, storescu, findscu (-S/-P/-W with -X),
movescu and getscu.

Queries are built exactly as the Python backend builds them (`build_query`, `worklist_query` and
`retrieve_query` of `dicom_hub.contract.dicom.network.query`), written to a query file, and sent by DCMTK; responses
that findscu extracts (-X) are read back into the DICOM JSON Model. Results are parsed from the
tools' verbose logs, since their exit codes say little more than "something failed".
"""

from __future__ import annotations

import math
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicom_hub.contract.dicom.network.query import query_model
from dicom_hub.contract.errors import ErrorCode
from dicom_hub.contract.files import atomic_output
from dicom_hub.contract.job import Job, Outcome

if TYPE_CHECKING:
    from dicom_hub.adapters.subprocess_adapter import SubprocessAdapter, ToolRun
    from pydicom import Dataset

PEER = ("host", "port", "called_aet", "calling_aet", "network_timeout", "dimse_timeout")
# echoscu, storescu and findscu speak TLS (+tls/+tla); movescu and getscu of DCMTK 3.6.7 do not. A key
# password could only be given on the command line (+pw), where other local users can read it: refused.
TLS = ("tls", "tls_ca_file", "tls_cert_file", "tls_key_file", "tls_verify")
SYSTEM_CA_DIR = "/etc/ssl/certs"  # OpenSSL's hashed CA folder (Debian): the trust store when no tls_ca_file is given

_TOOLS = {"echo": "echoscu", "store": "storescu", "find": "findscu", "worklist": "findscu", "move": "movescu", "get": "getscu"}
_DIMSE_STATUS = re.compile(r"DIMSE Status\s*:\s*0x(?P<code>[0-9a-fA-F]{4}): (?P<status>.+)$", re.M)
_RESPONSE = re.compile(r"Received (?:Final )?(?:C-)?(?:Find|Move|Get|Echo|Store) Response(?: \d+)? \((?P<status>[^)]*)\)", re.I)


def build_cmd(adapter: SubprocessAdapter, job: Job, query_file: Path | None = None, work: Path | None = None) -> list[str]:
    """The argv for one network op; `query_file` holds the identifier, `work` collects responses."""
    op = job.op
    # movescu reports sub-operation counts only in its debug log (DIMSE message dumps).
    argv = [adapter.tool(_TOOLS[op]), "-d" if op == "move" else "-v"]
    if op in ("find", "move", "get"):
        argv.append("-P" if query_model(job) == "patient" else "-S")
    elif op == "worklist":
        argv.append("-W")
    network = str(max(1, math.ceil(float(job.option("network_timeout")))))
    dimse = str(max(1, math.ceil(float(job.option("dimse_timeout")))))
    # DCMTK takes the word after -aet/-aec as its value even when it begins with '-'; it has no '--'
    # separator, so the host must never begin with '-' (the schema's host pattern sees to that).
    argv += ["-aet", job.option("calling_aet"), "-aec", job.option("called_aet"), "-to", network, "-ta", network, "-td", dimse]
    argv += tls_args(job)
    if op == "store":
        argv.append("-nh")
        if any(path.is_dir() for path in job.inputs):
            argv += ["+sd", *(["+r"] if job.option("recursive") else [])]
    if op in ("find", "worklist"):
        argv += ["-X", "-od", str(work)]
        if job.option("max_results"):
            argv += ["--cancel", str(job.option("max_results"))]
    if op == "move":
        argv += ["-aem", job.option("destination")]
    if op == "get":
        argv += ["-od", str(work)]
    argv += [job.option("host"), str(job.option("port"))]
    if op == "store":
        argv += [str(path) for path in job.inputs]
    elif op != "echo":
        argv.append(str(query_file))
    return argv


def tls_args(job: Job) -> list[str]:
    """DCMTK's TLS flags for the job's TLS options (checked by `TlsSettings`, as for every backend)."""
    from dicom_hub.contract.dicom.network.tls import TlsSettings

    settings = TlsSettings.from_job(job)
    if settings is None:
        return []
    if settings.cert_file and settings.key_file:
        argv = ["+tls", str(settings.key_file), str(settings.cert_file), "-pw"]  # -pw: an unencrypted key, never a prompt
    else:
        argv = ["+tla"]  # TLS without a certificate of our own
    argv += ["+cf", str(settings.ca_file)] if settings.ca_file else ["+cd", SYSTEM_CA_DIR]
    argv.append("-rc" if settings.verify else "-ic")
    return argv


def query_dataset(job: Job) -> Dataset:
    """The identifier, built by the shared query builders (one definition of the keys)."""
    from dicom_hub.contract.dicom.network import query

    if job.op == "worklist":
        return query.worklist_query(job)
    if job.op in ("move", "get"):
        return query.retrieve_query(job)[1]
    return query.find_query(job)


def run(adapter: SubprocessAdapter, job: Job) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="dicom-hub-dcmtk-net-") as tmp:
        work = Path(tmp)
        query_file = None
        if job.op != "echo" and job.op != "store":
            query_file = work / "query.dcm"
            _write_query(query_dataset(job), query_file)
        responses = work / "responses"
        responses.mkdir()
        run_ = adapter.run_cmd(build_cmd(adapter, job, query_file, responses), timeout=adapter.timeout_for(job))
        return _interpret(adapter, job, run_, responses)


def _write_query(ds: Dataset, path: Path) -> None:
    from pydicom import dcmwrite

    dcmwrite(path, ds, implicit_vr=True, little_endian=True)


def _interpret(adapter: SubprocessAdapter, job: Job, run: ToolRun, responses: Path) -> Outcome:
    log = run.stderr + run.stdout
    # -v logs say "Received ... Response (Success)"; -d logs give "DIMSE Status : 0x0000: Success: ..." instead.
    coded = [(int(m["code"], 16), m["status"].strip()) for m in _DIMSE_STATUS.finditer(log)]
    statuses = [status for _, status in coded] or [m["status"] for m in _RESPONSE.finditer(log)]
    final = statuses[-1] if statuses else None
    peer = f"{job.option('called_aet')}@{job.option('host')}:{job.option('port')}"
    if job.op == "store":
        return _store_outcome(adapter, job, run, peer)
    if run.returncode != 0 or final is None or not final.startswith(("Success", "Cancel", "Pending", "Warning")):
        what, hint = _failure(job, log)
        raise adapter.fail(run, f"{Path(run.args[0]).name} to {peer} failed" + (f" ({final})" if final else "") + what, ErrorCode.NETWORK_ERROR, hint)
    base: dict[str, Any] = {"category": final.split(":")[0].split()[0], "text": final}
    if coded:
        base = {"status": coded[-1][0], "status_hex": f"0x{coded[-1][0]:04X}", **base}
    if job.op == "echo":
        return Outcome(metadata={**base, "status": 0, "peer": {"host": job.option("host"), "port": job.option("port"), "called_aet": job.option("called_aet")}}, stderr=run.stderr)
    if job.op in ("find", "worklist"):
        # findscu --cancel sends C-CANCEL after n responses; ones already in flight are dropped here.
        results = [_json(path) for path in sorted(responses.glob("rsp*.dcm"))[: job.option("max_results")]]
        metadata = {"count": len(results), "results": results, **base}
        if job.op == "find":
            metadata = {"level": job.option("level"), **metadata}
        return Outcome(metadata=metadata, stderr=run.stderr)
    counts = _counts(log)
    metadata = {"level": job.option("level"), **counts, **base}
    if job.op == "move":
        return Outcome(metadata={**metadata, "destination": job.option("destination")}, stderr=run.stderr)
    files, refused = _place_received(job, responses)
    if refused and not files:
        raise adapter.fail(run, f"getscu from {peer}: no instance kept, {len(refused)} refused ({refused[0]['reason']})", ErrorCode.NETWORK_ERROR, "the peer holds damaged data: ask its administrator")
    if refused:  # getscu answered success for them; we did not keep them (as the python backend's C-STORE refusal)
        metadata.update(completed=max(0, metadata["completed"] - len(refused)), failed=metadata["failed"] + len(refused))
    metadata = {**metadata, "received": len(files), "refused": refused}
    stderr = run.stderr + "".join(f"refused {r['sop_instance_uid']}: {r['reason']}\n" for r in refused)
    return Outcome(metadata=metadata, output_files=[str(p) for p in files], stderr=stderr)


_TLS_TROUBLE = re.compile(r"^.*(?:TLS|SSL|certificate|Association Request Failed).*$", re.M | re.I)


def _failure(job: Job, log: str) -> tuple[str, str]:
    """What to add to a failure message, and the hint: over TLS, the tool's TLS/association lines
    (a server that rejects our certificate only shows up as an aborted association request)."""
    if not job.option("tls"):
        return "", "check host, port, AE titles and the peer's log"
    lines = "; ".join(dict.fromkeys(m.strip() for m in _TLS_TROUBLE.findall(log)))
    return (
        f" over TLS: {lines or 'no TLS detail in the log'}",
        "check tls_ca_file (the CA of the peer's certificate), tls_cert_file/tls_key_file if the peer requires client certificates, and the peer's log",
    )


def _json(path: Path) -> dict[str, Any]:
    from pydicom import dcmread

    return dcmread(path, force=True).to_json_dict()


_COUNT = re.compile(r"(?P<name>Completed|Failed|Warning|Remaining) Suboperations\s*:\s*(?P<n>\d+|none)", re.I)


def _counts(log: str) -> dict[str, int]:
    """The last reported sub-operation counts (movescu/getscu -v log)."""
    counts = {"completed": 0, "failed": 0, "warning": 0, "remaining": 0}
    for match in _COUNT.finditer(log):
        counts[match["name"].lower()] = 0 if match["n"] == "none" else int(match["n"])
    return counts


def _place_received(job: Job, received: Path) -> tuple[list[Path], list[dict[str, str]]]:
    """getscu names files <Modality>.<SOPInstanceUID>; the contract wants <Study>/<Series>/<SOP>.dcm.
    getscu keeps whatever it is sent; an instance that is not sound is refused here instead, as
    the python backend refuses it (`verify_file`), and listed with the reason."""
    from dicom_hub.adapters.verify import verify_file
    from dicom_hub.contract.dicom.network.storage import UNSOUND, check_root, instance_path
    from pydicom import dcmread

    assert job.output is not None
    root = check_root(job.output)
    placed, refused = [], []
    for path in sorted(p for p in received.iterdir() if p.is_file()):
        ds = dcmread(path, stop_before_pixels=True, specific_tags=["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"])
        problem = verify_file(path)
        if problem:
            refused.append({"sop_instance_uid": str(ds.get("SOPInstanceUID", ""))[:80], "reason": f"{UNSOUND}: {problem}"})
            continue
        target = instance_path(root, ds.get("StudyInstanceUID"), ds.get("SeriesInstanceUID"), ds.get("SOPInstanceUID"))
        with atomic_output(target, job.overwrite) as tmp:
            shutil.copyfile(path, tmp)
        placed.append(target)
    return placed, refused


_SENDING = re.compile(r"Sending file: (?P<path>.+)$")


def _store_outcome(adapter: SubprocessAdapter, job: Job, run: ToolRun, peer: str) -> Outcome:
    """Per-file status from storescu's log; the op fails only when no file was stored."""
    files: list[dict[str, Any]] = []
    for line in (run.stderr + run.stdout).splitlines():
        sending = _SENDING.search(line)
        if sending:
            files.append({"path": sending["path"].strip(), "status": "not sent"})
            continue
        response = _RESPONSE.search(line)
        if response and files and files[-1]["status"] == "not sent":
            files[-1]["status"] = response["status"]
    stored = [f for f in files if f["status"].startswith(("Success", "Warning"))]
    if not stored:
        what, hint = _failure(job, run.stderr + run.stdout)
        raise adapter.fail(run, f"storescu stored nothing at {peer}{what}", ErrorCode.NETWORK_ERROR, hint + " and that the files are DICOM")
    metadata = {"total": len(files), "completed": len(stored), "failed": len(files) - len(stored), "files": files}
    return Outcome(metadata=metadata, stderr=run.stderr, returncode=run.returncode)
