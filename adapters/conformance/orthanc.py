"""Orthanc as a loopback peer (shared by the tests' fixtures and the conformance runner's
"orthanc-web" peer), plus the two pynetdicom calls that check and load any DIMSE peer.

`start_orthanc_web(exe, root)` runs Orthanc with HTTP and its DICOMweb plugin: Orthanc 1.10 cannot
bind its HTTP server to one address, so `RemoteAccessAllowed: false` makes it refuse every client
but the loopback ones, and a random password (HTTP basic) protects it meanwhile.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dicom_hub.adapters.conformance.peers import HOST, free_port, start_process

WORKLIST_PLUGIN = Path("/usr/share/orthanc/plugins/libModalityWorklists.so")
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")  # Debian package orthanc-dicomweb
ORTHANC_AET = "ORTHANC"


def c_echo_ok(host: str, port: int, aet: str, calling: str = "PEERCHECK") -> bool:
    """True when the peer accepts an association and answers C-ECHO with status 0."""
    from pynetdicom import AE

    ae = AE(ae_title=calling)
    ae.add_requested_context("1.2.840.10008.1.1")
    ae.acse_timeout = ae.network_timeout = ae.dimse_timeout = 2
    ae.connection_timeout = 2
    assoc = ae.associate(host, port, ae_title=aet)
    if not assoc.is_established:
        return False
    try:
        status = assoc.send_c_echo()
        return bool(status) and status.Status == 0
    finally:
        assoc.release()


def c_store_files(host: str, port: int, aet: str, paths: Iterable[Path], calling: str = "PRELOAD") -> list[int]:
    """C-STORE files over one association with pynetdicom; the status of each file."""
    from pydicom import dcmread
    from pynetdicom import AE

    datasets = [dcmread(p) for p in paths]
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.network_timeout = ae.dimse_timeout = 30
    for sop_class, syntax in sorted({(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID) for ds in datasets}):
        ae.add_requested_context(sop_class, [syntax])
    assoc = ae.associate(host, port, ae_title=aet)
    if not assoc.is_established:
        raise RuntimeError(f"preload: association with {aet}@{host}:{port} was not established")
    try:
        statuses = [getattr(assoc.send_c_store(ds), "Status", -1) for ds in datasets]
    finally:
        assoc.release()
    if any(s != 0 for s in statuses):
        raise RuntimeError(f"preload: C-STORE statuses {statuses}")
    return statuses


def orthanc_executable() -> str | None:
    """Debian installs Orthanc in /usr/sbin, which is not on every user's PATH."""
    return shutil.which("Orthanc") or shutil.which("Orthanc", path="/usr/sbin")


def orthanc_config(port: int, storage: Path, destinations: dict[str, int], worklist_dir: Path | None) -> dict:
    """The smallest Orthanc configuration of a loopback test peer: no HTTP server, no remote access,
    any called AE, every DIMSE service allowed, move destinations on 127.0.0.1."""
    config = {
        "Name": "dicom-hub-test",
        "StorageDirectory": str(storage / "db"),
        "IndexDirectory": str(storage / "db"),
        "HttpServerEnabled": False,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True,
        "DicomServerEnabled": True,
        "DicomAet": "ORTHANC",
        "DicomPort": port,
        "DicomCheckCalledAet": False,
        "DicomCheckModalityHost": False,
        "UnknownSopClassAccepted": True,
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": True,
        "DicomAlwaysAllowFind": True,
        "DicomAlwaysAllowFindWorklist": True,
        "DicomAlwaysAllowGet": True,
        "DicomAlwaysAllowMove": True,
        "DicomScpTimeout": 30,
        "DicomScuTimeout": 10,
        "DicomModalities": {ae.lower(): [ae, HOST, p] for ae, p in destinations.items()},
        "SaveJobs": False,
        "OverwriteInstances": True,
        "StorageCompression": False,
        "Plugins": [],
    }
    if worklist_dir is not None:
        config["Plugins"] = [str(WORKLIST_PLUGIN)]
        config["Worklists"] = {"Enable": True, "Database": str(worklist_dir)}
    return config


def http_ok(url: str, user: str, password: str) -> bool:
    """True when an authenticated GET of `url` answers 200."""
    import base64
    import urllib.request

    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}", "Accept": "application/dicom+json"})
    try:
        with urllib.request.urlopen(request, timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


@dataclass
class OrthancWeb:
    """A running Orthanc with DICOMweb: `url` is the DICOMweb root; `user`/`password` for HTTP basic."""

    port: int
    aet: str
    url: str
    user: str
    password: str
    log: Path
    proc: subprocess.Popen = field(repr=False)


def start_orthanc_web(exe: str, root: Path) -> OrthancWeb:
    """Orthanc with HTTP and the DICOMweb plugin, its database in `root`; PeerError if it does not start."""
    port, http_port = free_port(), free_port()
    user, password = "hub", secrets.token_urlsafe(16)
    config = orthanc_config(port, root, {}, None)
    config.update({
        "HttpServerEnabled": True,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {user: password},
        "Plugins": [str(DICOMWEB_PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False, "Host": HOST, "Ssl": False},
    })
    path = root / "orthanc.json"
    path.write_text(json.dumps(config, indent=2))
    log = root / "orthanc.log"
    url = f"http://{HOST}:{http_port}/dicom-web"

    def ready() -> bool:
        return c_echo_ok(HOST, port, ORTHANC_AET) and http_ok(f"{url}/studies", user, password)

    proc = start_process([exe, "--no-jobs", str(path)], log, ready, "Orthanc (DICOMweb)")
    return OrthancWeb(port, ORTHANC_AET, url, user, password, log, proc)
