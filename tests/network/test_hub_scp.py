"""`dicom-hub scp` as a receiver: DCMTK's storescu/echoscu and our `store`/`echo` send to it;
crafted data sets with path tricks in their UIDs stay inside the output folder; the AE allow-list
refuses strangers; SIGTERM ends it cleanly."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import expect_error, expect_ok, require_tool, sample
from factories import ct_slice, series
from pydicom import dcmread

pytestmark = pytest.mark.network


def scp_options(scp, **extra) -> dict:
    return {"host": scp.host, "port": scp.port, "called_aet": scp.aet, **extra}


def test_dcmtk_storescu_sends_a_series(hub_scp, tmp_path):
    storescu = require_tool("storescu")
    files = series(tmp_path / "in", count=3)
    run = subprocess.run([storescu, "-aet", "DCMTKSCU", "-aec", hub_scp.aet, hub_scp.host, str(hub_scp.port), *map(str, files)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    first = dcmread(files[0])
    for f in files:
        original = dcmread(f)
        received = hub_scp.output / first.StudyInstanceUID / first.SeriesInstanceUID / f"{original.SOPInstanceUID}.dcm"
        assert dcmread(received).PixelData == original.PixelData
    assert hub_scp.stop() == 0
    lines = [line for line in hub_scp.log_text().splitlines() if " association " in line]
    assert len(lines) == 1 and "DCMTKSCU@127.0.0.1" in lines[0] and "3 stored" in lines[0] and "released" in lines[0]


def test_dcmtk_echoscu_and_our_echo_are_answered(hub_scp):
    echoscu = require_tool("echoscu")
    run = subprocess.run([echoscu, "-aec", hub_scp.aet, hub_scp.host, str(hub_scp.port)], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    assert expect_ok({"op": "echo", "options": scp_options(hub_scp)})["metadata"]["status"] == 0
    hub_scp.proc.send_signal(signal.SIGINT)  # Ctrl-C ends it as cleanly as SIGTERM
    assert hub_scp.proc.wait(15) == 0
    lines = hub_scp.log_text().splitlines()
    assert sum(" association " in line and "1 echo; released" in line for line in lines) == 2
    assert lines[-1].startswith("stopped:")


def test_store_of_explicit_vr_files_to_a_peer_that_picks_implicit_vr(hub_scp, tmp_path):
    # dicom-hub scp (pynetdicom) accepts Implicit VR first when both are proposed: the file must be
    # re-encoded for the accepted context, with the same elements and pixels.
    files = series(tmp_path / "in", count=2)
    assert str(dcmread(files[0]).file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.1"
    meta = expect_ok({"op": "store", "input": str(tmp_path / "in"), "options": scp_options(hub_scp)})["metadata"]
    assert [f["status"] for f in meta["files"]] == [0, 0]
    assert [(f["transfer_syntax"], f["decompressed"]) for f in meta["files"]] == [("1.2.840.10008.1.2", False)] * 2
    for f in files:
        original = dcmread(f)
        received = dcmread(next(hub_scp.output.rglob(f"{original.SOPInstanceUID}.dcm")))
        assert received.PixelData == original.PixelData and received.PatientName == original.PatientName


def test_store_of_compressed_files_keeps_their_transfer_syntax(hub_scp):
    rle = sample("MR_small_RLE.dcm")
    meta = expect_ok({"op": "store", "input": str(rle), "options": scp_options(hub_scp)})["metadata"]
    assert meta["files"][0]["decompressed"] is False
    received = next(hub_scp.output.rglob("*.dcm"))
    assert dcmread(received).file_meta.TransferSyntaxUID == dcmread(rle).file_meta.TransferSyntaxUID


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
def test_malicious_uids_never_leave_the_output_folder(hub_scp, tmp_path):
    from pynetdicom import AE

    bad_sop = ct_slice(SOPInstanceUID="../../x")
    bad_study = ct_slice(StudyInstanceUID="../../escaped-study")
    bad_series = ct_slice(SeriesInstanceUID="1.2/../../../escaped")
    good = ct_slice()
    start = time.time() - 0.05  # file times come from a coarser clock
    ae = AE("ATTACKER")
    ae.add_requested_context(good.SOPClassUID, [good.file_meta.TransferSyntaxUID])
    assoc = ae.associate(hub_scp.host, hub_scp.port, ae_title=hub_scp.aet)
    assert assoc.is_established
    statuses = [assoc.send_c_store(ds).Status for ds in (bad_sop, bad_study, bad_series, good)]
    assoc.release()
    assert statuses == [0xC000, 0xC000, 0xC000, 0x0000]
    # Anywhere under pytest's base folder (where other tests keep files of their own, older ones).
    base = hub_scp.output.parent.parent
    assert [p for p in base.rglob("*escaped*") if p.lstat().st_mtime >= start] == []
    assert [p for p in base.rglob("x.dcm") if p.lstat().st_mtime >= start] == []
    assert [p.stem for p in hub_scp.output.rglob("*.dcm")] == [good.SOPInstanceUID]
    assert not list(hub_scp.output.rglob("*.part"))
    assert hub_scp.stop() == 0
    assert "3 refused" in hub_scp.log_text() and "is not a valid UID" in hub_scp.log_text()


def test_an_unsound_instance_is_refused_not_stored(hub_scp, tmp_path):
    # Sent as raw bytes (pynetdicom's chunked send, as `store` does): a file cut inside its Pixel
    # Data, and one whose Pixel Data is shorter than its Rows call for. Both used to be stored
    # with success (only their UIDs were read); no reader could use them.
    from pynetdicom import AE, _config

    good = ct_slice()
    whole = tmp_path / "whole.dcm"
    good.save_as(whole, enforce_file_format=True)
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(whole.read_bytes()[:-100])
    short = ct_slice()
    short.Rows *= 2
    short_file = tmp_path / "short.dcm"
    short.save_as(short_file, enforce_file_format=True)
    ae = AE("SENDER")
    ae.add_requested_context(good.SOPClassUID, [good.file_meta.TransferSyntaxUID])
    previous, _config.STORE_SEND_CHUNKED_DATASET = _config.STORE_SEND_CHUNKED_DATASET, True
    try:
        assoc = ae.associate(hub_scp.host, hub_scp.port, ae_title=hub_scp.aet)
        assert assoc.is_established
        statuses = [assoc.send_c_store(path).Status for path in (cut, short_file, whole)]
        assoc.release()
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = previous
    assert statuses == [0xC000, 0xC000, 0x0000]
    stored = list(hub_scp.output.rglob("*.dcm"))
    assert [p.stem for p in stored] == [good.SOPInstanceUID]
    assert dcmread(stored[0]).PixelData == good.PixelData
    assert not [p for p in hub_scp.output.rglob("*") if p.is_file() and p.suffix != ".dcm" and not p.name.startswith(".dicom-hub-index")]
    assert hub_scp.stop() == 0
    log = hub_scp.log_text()
    assert "2 refused" in log
    assert "declares 512 bytes but only 412 remain" in log  # the first reason is logged


def test_allow_list_refuses_other_calling_ae_titles(hub_scp_factory):
    scp = hub_scp_factory(allow=["FRIEND"])
    data = expect_error({"op": "echo", "options": scp_options(scp, calling_aet="STRANGER")}, "network_error")
    assert "refused the association" in data["error"]["message"]
    assert "Calling AE title not recognised" in data["error"]["message"]
    assert expect_ok({"op": "echo", "options": scp_options(scp, calling_aet="FRIEND")})["metadata"]["status"] == 0
    assert scp.stop() == 0
    assert "STRANGER@127.0.0.1" in scp.log_text() and "rejected" in scp.log_text()


def test_scp_refuses_a_busy_port(hub_scp, tmp_path):
    run = subprocess.run(
        [*_scp_argv(hub_scp.port, tmp_path / "out")], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 1
    assert f"cannot listen on 127.0.0.1:{hub_scp.port}" in run.stderr


def _scp_argv(port: int, output: Path) -> list[str]:
    import sys

    return [sys.executable, "-m", "dicom_hub.interface", "scp", "--port", str(port), "--output", str(output)]


def test_scp_listens_on_loopback_only(hub_scp):
    # /proc/net/tcp lists listening sockets (state 0A) as hex ADDRESS:PORT, address in host byte order.
    listening = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A":
            address, port = fields[1].split(":")
            listening.add((address, int(port, 16)))
    assert ("0100007F", hub_scp.port) in listening
    assert ("00000000", hub_scp.port) not in listening
