"""The DCMTK adapter's network ops (echoscu, storescu, findscu, movescu, getscu) against the
same real peers as the Python backend: Orthanc and DCMTK's wlmscpfs on 127.0.0.1 (fixtures `orthanc`,
`wlmscpfs` from tests/peers.py, imported by tests/conftest.py)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from conftest import expect_error, expect_ok, require_backend
from factories import series
from peers import free_port
from pydicom import dcmread

pytestmark = [pytest.mark.network, pytest.mark.toolkit]


@pytest.fixture(autouse=True)
def dcmtk():
    return require_backend("dcmtk")


def net(op: str, peer, output: Path | None = None, input=None, **options) -> dict:
    request = {"op": op, "backend": "dcmtk", "options": {"host": peer.host, "port": peer.port, "called_aet": peer.aet, **options}}
    if output is not None:
        request["output"] = str(output)
    if input is not None:
        request["input"] = input
    return request


@pytest.fixture
def study(orthanc, tmp_path) -> list[Path]:
    """A 3-slice study with its own PatientID, written to disk (not yet in Orthanc)."""
    return series(tmp_path / "study", count=3, PatientID=f"DCMTK{uuid.uuid4().hex[:10]}")


@pytest.fixture
def stored(orthanc, study) -> list[Path]:
    assert orthanc.preload(study) == [0, 0, 0]
    return study


def test_echo(orthanc):
    meta = expect_ok(net("echo", orthanc))["metadata"]
    assert meta["status"] == 0 and meta["category"] == "Success"


def test_echo_to_a_closed_port_is_a_network_error(orthanc):
    data = expect_error({"op": "echo", "backend": "dcmtk", "options": {"host": "127.0.0.1", "port": free_port(), "network_timeout": 3}}, "network_error")
    assert "refused" in data["stderr"].lower() or "refused" in data["error"]["message"].lower()


def test_store_a_folder_then_find_it(orthanc, study):
    meta = expect_ok(net("store", orthanc, input=str(study[0].parent)))["metadata"]
    assert (meta["total"], meta["completed"], meta["failed"]) == (3, 3, 0)
    assert sorted(f["path"] for f in meta["files"]) == sorted(str(p) for p in study)
    first = dcmread(study[0])
    found = expect_ok(net("find", orthanc, level="SERIES", query={"PatientID": first.PatientID}))["metadata"]
    assert found["count"] == 1
    assert found["results"][0]["0020000E"]["Value"] == [first.SeriesInstanceUID]


def test_find_images_with_a_limit(orthanc, stored):
    first = dcmread(stored[0])
    meta = expect_ok(net("find", orthanc, level="IMAGE", query={"StudyInstanceUID": first.StudyInstanceUID}))["metadata"]
    assert sorted(r["00080018"]["Value"][0] for r in meta["results"]) == sorted(dcmread(p).SOPInstanceUID for p in stored)
    limited = expect_ok(net("find", orthanc, level="IMAGE", max_results=1, query={"StudyInstanceUID": first.StudyInstanceUID}))["metadata"]
    assert limited["count"] == 1


def test_find_at_patient_level_uses_patient_root(orthanc, stored):
    patient = dcmread(stored[0]).PatientID
    meta = expect_ok(net("find", orthanc, level="PATIENT", query={"PatientID": patient}))["metadata"]
    assert [r["00100020"]["Value"] for r in meta["results"]] == [[patient]]


def test_get_writes_the_contract_layout(orthanc, stored, tmp_path):
    first = dcmread(stored[0])
    out = tmp_path / "got"
    data = expect_ok(net("get", orthanc, output=out, query={"StudyInstanceUID": first.StudyInstanceUID}))
    assert data["metadata"]["received"] == 3
    expected = sorted(str(out / first.StudyInstanceUID / first.SeriesInstanceUID / f"{dcmread(p).SOPInstanceUID}.dcm") for p in stored)
    assert sorted(data["output_files"]) == expected
    assert all(dcmread(p).PatientID == first.PatientID for p in data["output_files"])


def test_move_to_a_known_destination(orthanc, stored, tmp_path):
    from pynetdicom import AE, evt
    from pynetdicom.presentation import AllStoragePresentationContexts

    received = []

    def on_store(event):
        received.append(event.dataset.SOPInstanceUID)
        return 0x0000

    ae = AE(ae_title="SPARE")
    ae.supported_contexts = AllStoragePresentationContexts
    server = ae.start_server(("127.0.0.1", orthanc.destinations["SPARE"]), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        first = dcmread(stored[0])
        meta = expect_ok(net("move", orthanc, destination="SPARE", query={"StudyInstanceUID": first.StudyInstanceUID}))["metadata"]
    finally:
        server.shutdown()
    assert sorted(received) == sorted(dcmread(p).SOPInstanceUID for p in stored)
    assert meta["destination"] == "SPARE" and meta["completed"] == 3 and meta["failed"] == 0


def test_move_to_an_unknown_destination_fails(orthanc, stored):
    first = dcmread(stored[0])
    expect_error(net("move", orthanc, destination="NOBODY", query={"StudyInstanceUID": first.StudyInstanceUID}), "network_error")


def test_worklist_by_modality_and_date(wlmscpfs):
    from peers import WORKLIST_DATES

    meta = expect_ok(net("worklist", wlmscpfs, modality="CT", date="today"))["metadata"]
    assert [r["00100020"]["Value"] for r in meta["results"]] == [["WL001"]]
    every = expect_ok(net("worklist", wlmscpfs))["metadata"]
    assert every["count"] == 3
    ranged = expect_ok(net("worklist", wlmscpfs, modality="CT", date=f"{WORKLIST_DATES['today']}-{WORKLIST_DATES['tomorrow']}"))["metadata"]
    assert sorted(r["00100020"]["Value"][0] for r in ranged["results"]) == ["WL001", "WL003"]
