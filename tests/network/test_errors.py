"""Every way a peer can fail us is `network_error` (or `timeout`) with the reason in the message:
a closed port, an unknown host, a silent peer, a slow DIMSE answer, a refused association.
Also the store fallback: a peer that accepts only uncompressed transfer syntaxes (DCMTK storescp)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from conftest import expect_error, expect_ok, require_tool, sample
from peers import (
    HOST,
    c_echo_ok,
    free_port,
    sample_worklist,
    start_peer_process,
    stop_process,
    write_worklist,
)

pytestmark = pytest.mark.network


def options(port: int, **extra) -> dict:
    return {"host": HOST, "port": port, "called_aet": "ANY-SCP", **extra}


def test_closed_port():
    data = expect_error({"op": "echo", "options": options(free_port(), network_timeout=5)}, "network_error")
    assert "could not be reached" in data["error"]["message"] and "Connection refused" in data["error"]["message"]


def test_unknown_host():
    # The reserved .invalid domain never resolves (RFC 6761); no connection is attempted.
    data = expect_error({"op": "echo", "options": {"host": "no-such-host.invalid", "port": 104, "network_timeout": 5}}, "network_error")
    assert "could not be reached" in data["error"]["message"] and "no-such-host.invalid" in data["error"]["message"]


def test_silent_peer_times_out(silent_peer):
    start = time.monotonic()
    data = expect_error({"op": "echo", "options": options(silent_peer, network_timeout=1)}, "network_error")
    assert "did not answer in time" in data["error"]["message"]
    assert time.monotonic() - start < 10


def test_overall_timeout_caps_every_wait(silent_peer):
    start = time.monotonic()
    data = expect_error({"op": "find", "options": options(silent_peer, timeout=1)}, "timeout")
    assert "did not answer in time" in data["error"]["message"]
    assert time.monotonic() - start < 10  # network_timeout alone (30 s) would still be waiting


@pytest.fixture
def slow_worklist(tmp_path):
    """wlmscpfs that waits 3 s before answering each C-FIND."""
    exe = require_tool("wlmscpfs")
    write_worklist(tmp_path / "SLOW", sample_worklist())
    port = free_port()
    args = [exe, "-s", "-dhl", "--sleep-before", "3", "-dfp", str(tmp_path), str(port)]
    proc = start_peer_process(args, tmp_path / "log", lambda: c_echo_ok(HOST, port, "SLOW"), "wlmscpfs")
    yield port
    stop_process(proc)


def test_slow_dimse_answer_is_a_network_error(slow_worklist):
    data = expect_error({"op": "worklist", "options": options(slow_worklist, called_aet="SLOW", dimse_timeout=1)}, "network_error")
    assert "no response within 1 s" in data["error"]["message"]


def test_refused_association_is_a_network_error(tmp_path):
    exe = require_tool("wlmscpfs")
    write_worklist(tmp_path / "REFUSER", sample_worklist())
    port = free_port()
    args = [exe, "-s", "-dhl", "--refuse", "-dfp", str(tmp_path), str(port)]
    with_log = tmp_path / "log"
    proc = start_peer_process(args, with_log, lambda: _listening(port), "wlmscpfs --refuse")
    try:
        data = expect_error({"op": "worklist", "options": options(port, called_aet="REFUSER")}, "network_error")
    finally:
        stop_process(proc)
    # The single-process wlmscpfs closes the socket right after its A-ASSOCIATE-RJ, and pynetdicom
    # sometimes handles the close before the PDU: then it can only say the request was aborted.
    # (The peer's own reason is asserted against dicom-hub scp in test_hub_scp.py.)
    message = data["error"]["message"]
    assert "REFUSER@127.0.0.1" in message
    assert ("refused the association" in message and "Rejected" in message) or "aborted the association request" in message


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((HOST, port)) == 0


@pytest.fixture
def dcmtk_storescp(tmp_path):
    """DCMTK storescp with its defaults: it accepts uncompressed transfer syntaxes only."""
    exe = require_tool("storescp")
    out = tmp_path / "storescp"
    out.mkdir()
    port = free_port()
    proc = start_peer_process([exe, "-aet", "STORESCP", "-od", str(out), "-fe", ".dcm", str(port)], tmp_path / "log",
                              lambda: c_echo_ok(HOST, port, "STORESCP"), "storescp")
    yield port, out
    stop_process(proc)


def test_store_falls_back_to_uncompressed_when_the_peer_refuses_the_file_syntax(dcmtk_storescp):
    from pydicom import dcmread
    from pydicom.data import get_testdata_file

    port, out = dcmtk_storescp
    # Two instances (RLE from pydicom, JPEG 2000 from pydicom-data), each with its uncompressed original.
    originals = {sample("MR_small_RLE.dcm"): sample("MR_small.dcm"), Path(get_testdata_file("emri_small_jpeg_2k_lossless.dcm")): Path(get_testdata_file("emri_small.dcm"))}
    meta = expect_ok({"op": "store", "input": [str(p) for p in originals], "options": options(port, called_aet="STORESCP")})["metadata"]
    assert meta["completed"] == 2 and all(f["decompressed"] for f in meta["files"])
    received = {dcmread(path).SOPInstanceUID: dcmread(path) for path in out.glob("*.dcm")}
    # Decompressing is lossless: the peer gets each instance under the UID the response reports.
    assert sorted(received) == sorted(f["sop_instance_uid"] for f in meta["files"])
    for original in originals.values():
        reference = dcmread(original)
        ds = received[reference.SOPInstanceUID]
        assert not ds.file_meta.TransferSyntaxUID.is_compressed
        assert (ds.pixel_array == reference.pixel_array).all()
