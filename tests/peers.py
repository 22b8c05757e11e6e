"""Real DICOM peers for the network tests: Orthanc, DCMTK's wlmscpfs and `dicom-hub scp`.

Every peer listens on a free TCP port chosen at start and is reached only through 127.0.0.1.
Orthanc 1.10.1 and DCMTK 3.6.7 have no bind-address setting (they listen on every interface),
so the peers are throw-away test servers: they run with
temporary storage, accept any calling AE, serve only synthetic data, and are stopped by their
process id at the end. Orthanc's HTTP server is disabled. `dicom-hub scp` binds 127.0.0.1.

Fixtures (tests/conftest.py imports them, so every test can ask for them by name):

`orthanc` (session) -> `OrthancPeer`
    host, port, aet ("ORTHANC"): where to send C-ECHO/STORE/FIND/MOVE/GET requests.
    destinations: {AE: port} of the C-MOVE destinations Orthanc knows, all on 127.0.0.1:
        "HUBSCP" (for a `dicom-hub scp`), "MOVESCU" (DCMTK `movescu +P`), "RSMOVESCU"
        (dicom-rs `dicom-movescu -p`), "SPARE". Start your receiver on
        `orthanc.destinations[AE]` with that AE title before asking Orthanc to move there.
    worklist_dir: the ModalityWorklists plugin's folder (`*.wl` files), or None when the
        plugin is not packaged.
    preload(paths) -> list[int]: C-STORE the files with pynetdicom (not with dicom-hub code), one
        association; returns the status of each file and raises if any is not 0x0000.
    log: the Orthanc log file (its tail is printed when Orthanc fails to start).

`wlmscpfs` (session) -> `WorklistPeer`
    host, port, aet ("WLMSCP"), folder, items: the DICOM worklist items served (pydicom
    Datasets; 3 items: CT on station CT01 today, MR on MR01 today, CT on CT01 tomorrow; dates
    in `WORKLIST_DATES`).

`orthanc_web` (session) -> `OrthancWebPeer`: another Orthanc, with the DICOMweb plugin and HTTP on
    a free port (answering loopback clients only; Orthanc 1.10 cannot bind HTTP to one address):
    `url` (the DICOMweb root), `user`, `password` (HTTP basic, random per session), plus the
    DICOM fields above (no C-MOVE destinations, no worklists).

Helpers: `free_port()` (a free loopback port), `c_echo_ok(host, port, aet)`, `c_store_files(...)`,
`start_peer_process(args, log, ready, what)` / `stop_process(proc)` (start any server and wait until
`ready()`; stop it by pid), `worklist_item(...)`, `sample_worklist()`, `write_worklist(folder, items)`
(`*.wl` files for wlmscpfs or Orthanc's `worklist_dir`), `orthanc_config(...)` (used by the benchmark).

`hub_scp_factory` (function) -> `start(port=None, aet="HUBSCP", allow=(), output=None,
    host="127.0.0.1", move=(), extra=()) -> HubScp` runs `dicom-hub scp` (plus the arguments `extra`,
    e.g. limits or TLS options) as a subprocess and waits until it listens; `move` are its C-MOVE
    destinations ("AET=host:port"); every SCP started is stopped (SIGTERM, by pid) at the end of the
    test. It answers C-FIND/C-GET/C-MOVE on what it stored, so it is a Query/Retrieve peer as well
    as a receiver.
    HubScp: host, port, aet, output (Path), log (Path, its stderr), proc, tmp (its TMPDIR),
    stop() -> exit code, log_text().
`hub_scp` (function) -> a HubScp on a free port with AE "HUBSCP" and a temporary output folder.
`silent_peer` (function) -> the port of a TCP listener on 127.0.0.1 that accepts and never answers.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from dicom_hub.adapters.conformance.orthanc import (  # noqa: F401 - shared with the conformance runner's peer
    DICOMWEB_PLUGIN,
    WORKLIST_PLUGIN,
    c_echo_ok,
    c_store_files,
    http_ok,
    orthanc_config,
    orthanc_executable,
    start_orthanc_web,
)
from dicom_hub.adapters.conformance.peers import (  # noqa: F401 - shared with the conformance runner's peer
    HOST,
    PeerError,
    free_port,
    hub_scp_command,
    scp_listening,
    start_process,
    stop_process,
)

__all__ = ["hub_scp", "hub_scp_factory", "orthanc", "orthanc_web", "wlmscpfs"]

MOVE_DESTINATIONS = ("HUBSCP", "MOVESCU", "RSMOVESCU", "SPARE")
_TODAY = dt.date.today()
WORKLIST_DATES = {"today": _TODAY.strftime("%Y%m%d"), "tomorrow": (_TODAY + dt.timedelta(days=1)).strftime("%Y%m%d")}


def require_tool(name: str) -> str:
    """conftest's rule (skip locally, fail in CI), imported late: conftest imports this module."""
    from conftest import require_tool as require

    return require(name)


def start_peer_process(
    args: Sequence[str], log: Path, ready: Callable[[], bool], what: str, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """Start a server (stdout+stderr to `log`), poll `ready()` until it is true, or fail with the log's tail."""
    try:
        return start_process(args, log, ready, what, env)
    except PeerError as err:
        pytest.fail(str(err))


@dataclass
class OrthancPeer:
    host: str
    port: int
    aet: str
    destinations: dict[str, int]
    worklist_dir: Path | None
    storage: Path
    log: Path
    proc: subprocess.Popen = field(repr=False)

    def preload(self, paths: Iterable[Path]) -> list[int]:
        return c_store_files(self.host, self.port, self.aet, paths)


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancPeer]:
    exe = orthanc_executable() or require_tool("Orthanc")
    root = tmp_path_factory.mktemp("orthanc")
    port = free_port()
    destinations = {ae: free_port() for ae in MOVE_DESTINATIONS}
    worklist_dir = root / "worklists" if WORKLIST_PLUGIN.exists() else None
    if worklist_dir is not None:
        worklist_dir.mkdir()
    config = root / "orthanc.json"
    config.write_text(json.dumps(orthanc_config(port, root, destinations, worklist_dir), indent=2))
    log = root / "orthanc.log"
    proc = start_peer_process([exe, "--no-jobs", str(config)], log, lambda: c_echo_ok(HOST, port, "ORTHANC"), "Orthanc")
    try:
        yield OrthancPeer(HOST, port, "ORTHANC", destinations, worklist_dir, root, log, proc)
    finally:
        stop_process(proc)


@dataclass
class OrthancWebPeer(OrthancPeer):
    """An Orthanc with its DICOMweb plugin: `url` is the DICOMweb root; HTTP basic authentication
    with `user`/`password` (random per session) is required."""

    url: str = ""
    user: str = ""
    password: str = ""


@pytest.fixture(scope="session")
def orthanc_web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancWebPeer]:
    """A second Orthanc, with HTTP and the DICOMweb plugin (`start_orthanc_web`, shared with the
    conformance runner's "orthanc-web" peer)."""
    exe = orthanc_executable() or require_tool("Orthanc")
    if not DICOMWEB_PLUGIN.exists():
        from conftest import missing

        missing(f"Orthanc's DICOMweb plugin {DICOMWEB_PLUGIN} (apt-get install orthanc-dicomweb)")
    root = tmp_path_factory.mktemp("orthanc-web")
    try:
        web = start_orthanc_web(exe, root)
    except PeerError as err:
        pytest.fail(str(err))
    try:
        yield OrthancWebPeer(HOST, web.port, web.aet, {}, None, root, web.log, web.proc, web.url, web.user, web.password)
    finally:
        stop_process(web.proc)


@dataclass
class WorklistPeer:
    host: str
    port: int
    aet: str
    folder: Path
    items: list = field(repr=False)
    log: Path
    proc: subprocess.Popen = field(repr=False)


def worklist_item(name: str, patient_id: str, modality: str, station: str, date: str, time_: str, description: str):
    """One Modality Worklist item (a pydicom Dataset) with the attributes wlmscpfs needs."""
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid

    step = Dataset()
    step.ScheduledStationAETitle = station
    step.ScheduledProcedureStepStartDate = date
    step.ScheduledProcedureStepStartTime = time_
    step.Modality = modality
    step.ScheduledPerformingPhysicianName = "Doctor^Test"
    step.ScheduledProcedureStepDescription = description
    step.ScheduledProcedureStepID = f"SPS{patient_id}"
    step.ScheduledStationName = station
    step.ScheduledProcedureStepLocation = "Room 1"
    step.PreMedication = ""
    step.RequestedContrastAgent = ""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.AccessionNumber = f"ACC{patient_id}"
    ds.ReferringPhysicianName = "Referrer^Test"
    ds.RequestedProcedureID = f"RP{patient_id}"
    ds.RequestedProcedureDescription = description
    ds.RequestedProcedurePriority = "ROUTINE"
    ds.StudyInstanceUID = generate_uid()
    ds.ScheduledProcedureStepSequence = [step]
    return ds


def write_worklist(folder: Path, items: Sequence) -> None:
    """Write items as `*.wl` Part 10 files (plus the `lockfile` wlmscpfs expects)."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lockfile").touch()
    for index, ds in enumerate(items):
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.31"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.StudyInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.save_as(folder / f"item{index}.wl", enforce_file_format=True)


def sample_worklist() -> list:
    return [
        worklist_item("Alpha^Ann", "WL001", "CT", "CT01", WORKLIST_DATES["today"], "090000", "CT head"),
        worklist_item("Beta^Bob", "WL002", "MR", "MR01", WORKLIST_DATES["today"], "100000", "MR knee"),
        worklist_item("Gamma^Gil", "WL003", "CT", "CT01", WORKLIST_DATES["tomorrow"], "110000", "CT chest"),
    ]


@pytest.fixture(scope="session")
def wlmscpfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorklistPeer]:
    exe = require_tool("wlmscpfs")
    root = tmp_path_factory.mktemp("wlmscpfs")
    aet = "WLMSCP"
    items = sample_worklist()
    write_worklist(root / aet, items)
    port = free_port()
    log = root / "wlmscpfs.log"
    args = [exe, "-s", "-dhl", "-dfp", str(root), "-ta", "10", "-td", "10", str(port)]
    proc = start_peer_process(args, log, lambda: c_echo_ok(HOST, port, aet), "wlmscpfs")
    try:
        yield WorklistPeer(HOST, port, aet, root, items, log, proc)
    finally:
        stop_process(proc)


@dataclass
class HubScp:
    host: str
    port: int
    aet: str
    output: Path
    log: Path
    proc: subprocess.Popen = field(repr=False)
    tmp: Path | None = None

    def stop(self) -> int:
        return stop_process(self.proc)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def hub_scp_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., HubScp]]:
    started: list[HubScp] = []

    def start(
        port: int | None = None, aet: str = "HUBSCP", allow: Sequence[str] = (), output: Path | None = None, host: str = HOST,
        move: Sequence[str] = (), extra: Sequence[str] = (),
    ) -> HubScp:
        root = tmp_path_factory.mktemp("hubscp")
        out = output if output is not None else root / "received"
        port = port or free_port()
        log = root / "scp.log"
        tmp = root / "tmp"  # its TMPDIR: received data sets are streamed there before being stored
        tmp.mkdir()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(tmp)}
        proc = start_peer_process(hub_scp_command(port, out, aet, allow, host, move, extra), log, lambda: scp_listening(log), "dicom-hub scp", env)
        scp = HubScp(host, port, aet, out, log, proc, tmp)
        started.append(scp)
        return scp

    yield start
    for scp in started:
        scp.stop()


@pytest.fixture
def hub_scp(hub_scp_factory: Callable[..., HubScp]) -> HubScp:
    return hub_scp_factory()


@pytest.fixture
def silent_peer():
    """A TCP listener on 127.0.0.1 that accepts connections and never says a word."""
    server = socket.socket()
    server.bind((HOST, 0))
    server.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def process_alive(pid: int) -> bool:
    """Whether `pid` still runs: a zombie (ended, its parent's wait missing) or a dead entry is not."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def children_of(pid: int) -> set[int]:
    """The direct children of `pid`, read from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry.name))
    return found
