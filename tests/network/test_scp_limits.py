"""`dicom-hub scp` under pressure: it stops within seconds while peers hold associations (even in
the middle of a transfer, leaving no partial file), and each limit holds and is logged truthfully:
maximum associations, idle sockets and idle associations, maximum instance size, maximum PDU."""

from __future__ import annotations

import signal
import socket
import threading
import time
from pathlib import Path

import pytest
from conftest import expect_error, expect_ok
from dicom_hub.python_backend.network.index import INDEX_NAME
from factories import ct_slice, save

pytestmark = pytest.mark.network

VERIFICATION = "1.2.840.10008.1.1"


def scp_options(scp, **extra) -> dict:
    return {"host": scp.host, "port": scp.port, "called_aet": scp.aet, **extra}


def open_association(scp, calling: str = "HOLDER", contexts=(VERIFICATION,), evt_handlers=(), **timeouts):
    from pynetdicom import AE

    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.network_timeout = ae.dimse_timeout = timeouts.get("timeout", 30)
    for uid in contexts:
        ae.add_requested_context(uid)
    return ae.associate(scp.host, scp.port, ae_title=scp.aet, evt_handlers=list(evt_handlers))


def wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_sigterm_stops_within_seconds_although_a_peer_keeps_echoing(hub_scp):
    assoc = open_association(hub_scp)
    assert assoc.is_established
    stop = threading.Event()

    def keep_echoing() -> None:  # a peer that keeps its association busy (and so never idle)
        while not stop.is_set() and assoc.is_established:
            assoc.send_c_echo()
            stop.wait(0.5)

    echoer = threading.Thread(target=keep_echoing)
    echoer.start()
    try:
        time.sleep(1)
        started = time.monotonic()
        hub_scp.proc.send_signal(signal.SIGTERM)
        assert hub_scp.proc.wait(10) == 0
        assert time.monotonic() - started < 8
        assert wait_for(lambda: assoc.is_aborted, 5), "the peer's association was not aborted"
    finally:
        stop.set()
        echoer.join(10)
    log = hub_scp.log_text()
    assert "HOLDER@127.0.0.1" in log and "aborted (server stopping)" in log
    assert log.splitlines()[-1].startswith("stopped:")


def test_sigterm_in_the_middle_of_a_transfer_leaves_no_partial_file(hub_scp_factory, tmp_path):
    # A 4 MB instance sent in 4 KB PDUs, 10 ms apart, takes ~10 s: stop the SCP while it is being received.
    from pynetdicom import evt

    scp = hub_scp_factory(extra=["--max-pdu", "4096"])
    big = ct_slice(rows=1024, cols=2048)
    assoc = open_association(scp, contexts=(big.SOPClassUID,), evt_handlers=[(evt.EVT_PDU_SENT, lambda event: time.sleep(0.01))])
    assert assoc.is_established
    sender = threading.Thread(target=lambda: assoc.send_c_store(big))
    sender.start()
    try:
        assert wait_for(lambda: any(p.is_file() and p.stat().st_size > 0 for p in scp.tmp.rglob("*")), 20), "the transfer did not start"
        scp.proc.send_signal(signal.SIGTERM)
        assert scp.proc.wait(10) == 0
        assert sender.is_alive() or assoc.is_aborted  # it was still sending when the SCP stopped
    finally:
        sender.join(30)
    assert _received(scp) == []  # neither the instance nor a *.part of it
    assert list(scp.tmp.rglob("*")) == []  # the streamed temporary file is gone too
    assert "aborted (server stopping)" in scp.log_text()


def test_the_association_beyond_the_limit_is_rejected_and_logged_as_such(hub_scp_factory):
    scp = hub_scp_factory(extra=["--max-associations", "2"])
    held = [open_association(scp, calling=f"HOLDER{i}") for i in range(2)]
    assert all(a.is_established for a in held)
    data = expect_error({"op": "echo", "options": scp_options(scp, calling_aet="THIRD")}, "network_error")
    assert "refused the association" in data["error"]["message"]
    assert "Local limit exceeded" in data["error"]["message"] or "local-limit-exceeded" in data["error"]["message"].lower()
    held.pop().release()
    assert wait_for(lambda: "HOLDER1@" in scp.log_text(), 5)
    assert expect_ok({"op": "echo", "options": scp_options(scp, calling_aet="FOURTH")})["metadata"]["status"] == 0
    held.pop().release()
    assert scp.stop() == 0
    log = scp.log_text()
    assert "THIRD@127.0.0.1" in log and "rejected (association limit reached: 2 open (--max-associations))" in log
    assert "allow-list" not in log


def test_an_idle_socket_is_closed_after_the_acse_timeout(hub_scp_factory):
    scp = hub_scp_factory(extra=["--acse-timeout", "1", "--max-associations", "1"])
    with socket.create_connection((scp.host, scp.port), timeout=10) as idle:
        started = time.monotonic()
        assert idle.recv(1024) == b""  # the SCP closes a connection that never asks for an association
        assert time.monotonic() - started < 6
    # The slot is free again: a real peer gets in.
    assert expect_ok({"op": "echo", "options": scp_options(scp)})["metadata"]["status"] == 0
    assert scp.stop() == 0
    assert "closed, no association request within 1 s" in scp.log_text()


def test_a_silent_association_is_aborted_after_the_idle_timeout(hub_scp_factory):
    scp = hub_scp_factory(extra=["--idle-timeout", "1"])
    assoc = open_association(scp, calling="SILENT")
    assert assoc.is_established
    assert wait_for(lambda: assoc.is_aborted, 8), "the SCP did not abort the idle association"
    assert scp.stop() == 0
    assert "SILENT@127.0.0.1" in scp.log_text() and "aborted (idle for 1 s)" in scp.log_text()


def test_instances_over_the_size_limit_are_refused_with_a_failure_status(hub_scp_factory, tmp_path):
    scp = hub_scp_factory(extra=["--max-instance-size", "100K"])
    small = save(ct_slice(rows=64, cols=64), tmp_path / "in" / "small.dcm")  # ~9 KB
    big = save(ct_slice(rows=256, cols=256), tmp_path / "in" / "big.dcm")  # ~130 KB
    meta = expect_ok({"op": "store", "input": [str(small), str(big)], "options": scp_options(scp)})["metadata"]
    by_name = {f["file"].rsplit("/", 1)[-1]: f for f in meta["files"]}
    assert by_name["small.dcm"]["status"] == 0
    assert by_name["big.dcm"]["status"] == 0xA700 and by_name["big.dcm"]["category"] == "Failure"
    assert [p.name for p in scp.output.rglob("*.dcm")] == [f"{ct_uid(small)}.dcm"]
    assert scp.stop() == 0
    assert "larger than the limit of 102400 bytes" in scp.log_text()


def test_a_transfer_going_on_past_twice_the_size_limit_is_cut(hub_scp_factory, tmp_path):
    scp = hub_scp_factory(extra=["--max-instance-size", "100K"])
    huge = ct_slice(rows=1024, cols=1024)  # 2 MB: far past twice the limit
    assoc = open_association(scp, calling="FLOODER", contexts=(huge.SOPClassUID,))
    assert assoc.is_established
    status = assoc.send_c_store(huge)
    assert not status and wait_for(lambda: assoc.is_aborted, 5)  # no status: the association was aborted mid-transfer
    assert wait_for(lambda: "FLOODER@" in scp.log_text(), 5)
    assert list(scp.tmp.rglob("*.dcm")) == []  # the partial data set is gone at once, not at stop
    assert expect_ok({"op": "echo", "options": scp_options(scp)})["metadata"]["status"] == 0  # others carry on
    assert scp.stop() == 0
    log = scp.log_text()
    assert "FLOODER@127.0.0.1" in log and "twice the limit of 102400 bytes (--max-instance-size)" in log
    assert _received(scp) == []


def ct_uid(path) -> str:
    from pydicom import dcmread

    return str(dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def test_the_maximum_pdu_is_announced_and_larger_messages_are_fragmented(hub_scp_factory, tmp_path):
    scp = hub_scp_factory(extra=["--max-pdu", "8192"])
    instance = ct_slice(rows=128, cols=128)  # 32 KB of pixels: at least 4 PDUs
    assoc = open_association(scp, contexts=(instance.SOPClassUID,))
    assert assoc.is_established
    try:
        assert assoc.acceptor.maximum_length == 8192
        assert assoc.send_c_store(instance).Status == 0
    finally:
        assoc.release()
    from pydicom import dcmread

    received = dcmread(next(scp.output.rglob("*.dcm")))
    assert received.PixelData == instance.PixelData


def test_limit_values_are_checked_by_the_cli():
    import argparse

    from dicom_hub.interface.commands.scp import byte_size, pdu_size

    assert [byte_size(v) for v in ("0", "1500", "64K", "512m", "2G")] == [0, 1500, 64 * 1024, 512 * 1024**2, 2 * 1024**3]
    assert [pdu_size(v) for v in ("0", "4096", "131072")] == [0, 4096, 131072]
    for bad_size in ("", "-1", "1.5G", "12Q", "G"):
        with pytest.raises(argparse.ArgumentTypeError):
            byte_size(bad_size)
    for bad_pdu in ("100", "-1", "4294967296", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            pdu_size(bad_pdu)


def _received(scp) -> list[Path]:
    """What the SCP left in its output folder, its Query/Retrieve index aside."""
    return [p for p in scp.output.rglob("*") if not p.name.startswith(INDEX_NAME)]
