"""The network peer of the conformance matrix: one `dicom-hub scp` per matrix run, started when
the first spec naming it runs and stopped (by process id) when the run ends.

The peer ("hub-scp") binds 127.0.0.1 on a free port, with a temporary folder holding a few of
pydicom's bundled instances (`PRELOADED`, copied in before start: the SCP indexes its folder at
start-up) and one C-MOVE destination, `MOVE_DESTINATION`: a second `dicom-hub scp` started with it.
The second peer ("hub-scp-tls") is the same SCP, preloaded alike, speaking DICOM over TLS only
(PS3.15 Annex B) with a server certificate from a throw-away CA made with openssl in its folder
(`tls_pki`); it has no C-MOVE destination, and `{peer.tls_ca_file}` is that CA's PEM file.
The third ("orthanc-web") is Orthanc with its DICOMweb plugin (`orthanc.start_orthanc_web`),
loaded with the same instances over C-STORE; `{peer.url}` is its DICOMweb root and
`{peer.auth_file}` a file with its random HTTP basic credentials.
A spec reaches a peer through placeholders in its option values (`substitute`, `contract/specs/README.md`).
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0
PEER_AET = "HUBSCP"
MOVE_DESTINATION = "HUBMOVEDEST"
# pydicom's bundled files the peer holds before any spec runs (specs query and retrieve them).
PRELOADED = ("CT_small.dcm", "MR_small.dcm")
# Per peer, the names a spec's option value may hold as "{peer.<name>}".
PLACEHOLDERS = {
    "hub-scp": ("host", "port", "aet", "move_destination"), "hub-scp-tls": ("host", "port", "aet", "tls_ca_file"),
    "orthanc-web": ("url", "auth_file"),
}
PEER_NAMES = tuple(PLACEHOLDERS)


class PeerError(RuntimeError):
    """A peer could not be started; the message has the command and the tail of its log."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def hub_scp_command(
    port: int, output: Path, aet: str, allow: Sequence[str] = (), host: str = HOST, move: Sequence[str] = (), extra: Sequence[str] = ()
) -> list[str]:
    """The argument list of a `dicom-hub scp` run by this Python interpreter."""
    args = [sys.executable, "-m", "dicom_hub.interface", "scp", "--port", str(port), "--output", str(output), f"--aet={aet}", "--host", host]
    for title in allow:
        args.append(f"--allow-aet={title}")  # "=": an AE title may begin with "-"
    for destination in move:
        args += ["--move-destination", destination]
    return [*args, *extra]


def scp_listening(log: Path) -> bool:
    return log.exists() and "listening on" in log.read_text(errors="replace")


def stop_process(proc: subprocess.Popen, grace: float = 10.0) -> int:
    """SIGTERM the process by pid, then SIGKILL it if it does not exit within `grace` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def start_process(args: Sequence[str], log: Path, ready: Callable[[], bool], what: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start a server (stdout+stderr to `log`) and poll `ready()` until it is true; PeerError with
    the log's tail when it exits or is not ready in time (it is stopped then)."""
    with log.open("wb") as sink:
        proc = subprocess.Popen(list(args), stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if ready():
            return proc
        time.sleep(0.2)
    stop_process(proc, grace=2)
    tail = log.read_text(errors="replace")[-3000:]
    raise PeerError(f"{what} did not start (exit code {proc.returncode}); command {list(args)}; log tail:\n{tail}")


def start_hub_scp(root: Path, aet: str, move: Sequence[str] = (), port: int | None = None, extra: Sequence[str] = ()) -> tuple[subprocess.Popen, int]:
    """A `dicom-hub scp` storing into `root/received`, logging to `root/scp.log`; (process, port)."""
    port = port or free_port()
    tmp = root / "tmp"  # its TMPDIR: received data sets are streamed there before being stored
    tmp.mkdir(parents=True, exist_ok=True)
    log = root / "scp.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(tmp)}
    proc = start_process(hub_scp_command(port, root / "received", aet, move=move, extra=extra), log, lambda: scp_listening(log), f"dicom-hub scp {aet}", env)
    return proc, port


def preload(folder: Path, names: Sequence[str] = PRELOADED) -> None:
    """Copy pydicom's bundled files into an SCP's folder, laid out as it stores them."""
    from dicom_hub.contract.files import resolve_sample
    from pydicom import dcmread

    for name in names:
        source = resolve_sample(name)
        ds = dcmread(source, stop_before_pixels=True)
        target = folder / str(ds.StudyInstanceUID) / str(ds.SeriesInstanceUID) / f"{ds.SOPInstanceUID}.dcm"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


@dataclass
class HubScpPeer:
    """The running peer: where to reach it, and the processes to stop."""

    name: str
    host: str
    port: int
    aet: str
    root: Path
    procs: list[subprocess.Popen] = field(default_factory=list, repr=False)
    move_destination: str | None = None
    tls_ca_file: str | None = None
    url: str | None = None
    auth_file: str | None = None

    @property
    def values(self) -> dict[str, Any]:
        """What the placeholders `{peer.<name>}` stand for."""
        return {name: getattr(self, name) for name in PLACEHOLDERS[self.name]}

    def stop(self) -> None:
        for proc in self.procs:
            stop_process(proc)


def start_hub_scp_peer(root: Path) -> HubScpPeer:
    """The preloaded SCP and its C-MOVE destination (started first, so the peer can name its port)."""
    procs: list[subprocess.Popen] = []
    try:
        destination, destination_port = start_hub_scp(root / "move-destination", MOVE_DESTINATION)
        procs.append(destination)
        preload(root / "peer" / "received")
        peer, port = start_hub_scp(root / "peer", PEER_AET, move=[f"{MOVE_DESTINATION}={HOST}:{destination_port}"])
        procs.append(peer)
    except BaseException:
        for proc in procs:
            stop_process(proc)
        raise
    return HubScpPeer("hub-scp", HOST, port, PEER_AET, root, procs, move_destination=MOVE_DESTINATION)


def start_hub_scp_tls_peer(root: Path) -> HubScpPeer:
    """The preloaded SCP over TLS only, its certificate signed by a CA made for this run."""
    from dicom_hub.adapters.conformance.tls_pki import PkiError, make_server_pki

    try:
        ca, cert, key = make_server_pki(root / "pki")
    except PkiError as err:
        raise PeerError(f"hub-scp-tls: {err}") from err
    preload(root / "peer" / "received")
    proc, port = start_hub_scp(root / "peer", PEER_AET, extra=["--tls-cert", str(cert), "--tls-key", str(key)])
    return HubScpPeer("hub-scp-tls", HOST, port, PEER_AET, root, [proc], tls_ca_file=str(ca))


def start_orthanc_web_peer(root: Path) -> HubScpPeer:
    """Orthanc with DICOMweb, loaded with `PRELOADED` over C-STORE; its credentials in a file."""
    from dicom_hub.adapters.conformance.orthanc import (
        DICOMWEB_PLUGIN,
        c_store_files,
        orthanc_executable,
        start_orthanc_web,
    )
    from dicom_hub.contract.files import resolve_sample

    exe = orthanc_executable()
    if exe is None or not DICOMWEB_PLUGIN.exists():
        raise PeerError(f"orthanc-web needs Orthanc and its DICOMweb plugin {DICOMWEB_PLUGIN} (apt-get install orthanc orthanc-dicomweb)")
    web = start_orthanc_web(exe, root)
    try:
        c_store_files(HOST, web.port, web.aet, [Path(resolve_sample(name)) for name in PRELOADED])
    except (RuntimeError, OSError) as err:
        stop_process(web.proc)
        raise PeerError(f"orthanc-web: {err}; log {web.log}") from err
    credentials = root / "credentials"
    credentials.touch(mode=0o600)
    credentials.write_text(f"{web.user}:{web.password}\n")
    return HubScpPeer("orthanc-web", HOST, web.port, web.aet, root, [web.proc], url=web.url, auth_file=str(credentials))


def starter(name: str) -> Callable[[Path], HubScpPeer]:
    """The function that starts the peer `name` (looked up when called, so tests can wrap it)."""
    return {"hub-scp": start_hub_scp_peer, "hub-scp-tls": start_hub_scp_tls_peer, "orthanc-web": start_orthanc_web_peer}[name]


class Peers:
    """The peers of one matrix run: each started once, on first use, from any thread; `close()`
    stops them all (a peer that failed to start is not retried: every cell gets its error)."""

    def __init__(self, workdir: Path | None = None) -> None:
        self._workdir = workdir
        self._lock = threading.Lock()
        self._started: dict[str, HubScpPeer | PeerError] = {}
        self._tmp: tempfile.TemporaryDirectory | None = None

    def get(self, name: str) -> HubScpPeer:
        if name not in PEER_NAMES:
            raise PeerError(f"unknown peer {name!r}; known: {', '.join(PEER_NAMES)}")
        with self._lock:
            if name not in self._started:
                if not self._started:
                    atexit.register(self.close)  # a runner nobody closes must not leave servers behind
                try:
                    self._started[name] = starter(name)(self._root(name))
                except (PeerError, OSError) as err:
                    self._started[name] = err if isinstance(err, PeerError) else PeerError(f"{name}: {err}")
            found = self._started[name]
        if isinstance(found, PeerError):
            raise found
        return found

    def _root(self, name: str) -> Path:
        # A short private folder: the SCP's paths and its log stay out of the cells' output folders.
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="dicom-hub-peers-", dir=self._workdir)
        root = Path(self._tmp.name) / name
        root.mkdir()
        return root

    def close(self) -> None:
        with self._lock:
            for peer in self._started.values():
                if isinstance(peer, HubScpPeer):
                    peer.stop()
            self._started.clear()
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None
        atexit.unregister(self.close)


def placeholder(value: Any) -> str | None:
    """The name in a "{peer.<name>}" option value, else None."""
    if isinstance(value, str) and value.startswith("{peer.") and value.endswith("}"):
        return value[len("{peer.") : -1]
    return None


def placeholder_problems(options: dict[str, Any], peer: str | None) -> list[str]:
    """Why a spec's placeholders cannot be filled in (checked when specs are loaded)."""
    used = {key: placeholder(value) for key, value in options.items() if placeholder(value) is not None}
    if used and peer is None:
        return [f"options {', '.join(sorted(used))} use {{peer.*}} placeholders but the spec names no peer"]
    if used and peer not in PLACEHOLDERS:
        return [f"unknown peer {peer!r}; known: {', '.join(PEER_NAMES)}"]
    names = PLACEHOLDERS[peer] if peer is not None else ()
    known = ", ".join("{peer." + n + "}" for n in names)
    return [f"option {key}: unknown placeholder {{peer.{name}}} for peer {peer}; known: {known}" for key, name in sorted(used.items()) if name not in names]


def substitute(options: dict[str, Any], peer: HubScpPeer) -> dict[str, Any]:
    """Options with each value that is exactly "{peer.<name>}" replaced by the peer's value
    (`port` stays an integer)."""
    values = peer.values
    return {key: values[name] if (name := placeholder(value)) is not None else value for key, value in options.items()}
