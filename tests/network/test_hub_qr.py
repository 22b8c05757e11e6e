"""`dicom-hub scp` as a Query/Retrieve SCP: C-FIND at every level with the PS3.4 C.2.2.2 matching
rules, C-GET and C-MOVE, asked by dicom-hub's own ops, by DCMTK (findscu/getscu/movescu, through
the dcmtk backend and directly) and by dicom-rs (dicom-findscu/dicom-movescu); the index stays
right when an instance comes twice and across restarts.

The data are pydicom's bundled test files (four patients, four studies); every expected value is
read from those files, none is written down here.
"""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest
from conftest import backend_request, expect_error, expect_ok, require_backend, require_tool, sample
from peers import c_store_files, free_port
from pydicom import dcmread

pytestmark = pytest.mark.network

FILES = ("CT_small.dcm", "MR_small.dcm", "rtdose.dcm", "SC_rgb_rle.dcm")


def paths() -> list[Path]:
    return [sample(name) for name in FILES]


def headers() -> list:
    return [dcmread(p, stop_before_pixels=True) for p in paths()]


def opts(scp, **extra) -> dict:
    return {"host": scp.host, "port": scp.port, "called_aet": scp.aet, **extra}


def tag_values(results: list[dict], tag: str) -> list:
    return sorted(str(r[tag]["Value"][0]) for r in results if r.get(tag, {}).get("Value"))


@pytest.fixture
def loaded(hub_scp_factory):
    """A dicom-hub scp holding the four sample files (sent with pynetdicom, not with our store)."""
    scp = hub_scp_factory(aet="HUBQR")
    c_store_files(scp.host, scp.port, scp.aet, paths())
    return scp


def find(scp, level: str, query: dict, backend: str = "python", **extra) -> list[dict]:
    request = {"op": "find", "backend": backend, "options": opts(scp, level=level, query=query, **extra)}
    return expect_ok(request)["metadata"]["results"]


def test_find_matching_rules_at_every_level(loaded):
    ds = {h.Modality: h for h in headers()}
    studies = find(loaded, "STUDY", {})
    assert tag_values(studies, "0020000D") == sorted(h.StudyInstanceUID for h in headers())
    # PN: wildcard, case-insensitive; the counts and ModalitiesInStudy are computed.
    mr = find(loaded, "STUDY", {"PatientName": "compressedsamples^m*"})
    assert tag_values(mr, "0020000D") == [ds["MR"].StudyInstanceUID]
    assert mr[0]["00080061"]["Value"] == ["MR"] and mr[0]["00201208"]["Value"] == [1]
    assert find(loaded, "STUDY", {"PatientName": "CompressedSamples^?R1"})[0]["00100020"]["Value"] == [ds["MR"].PatientID]
    # Date ranges, closed and open; a single date.
    dates = sorted(h.StudyDate for h in headers())
    assert tag_values(find(loaded, "STUDY", {"StudyDate": f"{dates[1]}-{dates[2]}"}), "00080020") == dates[1:3]
    assert tag_values(find(loaded, "STUDY", {"StudyDate": f"-{dates[0]}"}), "00080020") == dates[:1]
    assert tag_values(find(loaded, "STUDY", {"StudyDate": f"{dates[3]}-"}), "00080020") == dates[3:]
    assert tag_values(find(loaded, "STUDY", {"StudyDate": dates[2]}), "00080020") == [dates[2]]
    # Time range: a partial upper bound covers its whole hour.
    ct_hour = ds["CT"].StudyTime[:2]
    hits = find(loaded, "STUDY", {"StudyTime": f"{ct_hour}-{ct_hour}"})
    assert ds["CT"].StudyInstanceUID in tag_values(hits, "0020000D")
    # List of UID matching.
    pair = [ds["CT"].StudyInstanceUID, ds["RTDOSE"].StudyInstanceUID]
    assert tag_values(find(loaded, "STUDY", {"StudyInstanceUID": "\\".join(pair)}), "0020000D") == sorted(pair)
    # SERIES and IMAGE levels, study root; return keys asked for come back (empty when unknown).
    series = find(loaded, "SERIES", {"StudyInstanceUID": ds["CT"].StudyInstanceUID, "Modality": "CT", "BodyPartExamined": ""})
    assert tag_values(series, "0020000E") == [ds["CT"].SeriesInstanceUID] and series[0]["00201209"]["Value"] == [1]
    assert "00180015" in series[0]
    assert find(loaded, "SERIES", {"Modality": "XA"}) == []
    images = find(loaded, "IMAGE", {"SOPClassUID": ds["RTDOSE"].SOPClassUID})
    assert tag_values(images, "00080018") == [ds["RTDOSE"].SOPInstanceUID]
    # Patient root: PATIENT level with its counts, then IMAGE under one patient.
    patients = find(loaded, "PATIENT", {"PatientID": ds["OT"].PatientID, "NumberOfPatientRelatedInstances": ""})
    assert len(patients) == 1 and patients[0]["00201200"]["Value"] == [1] and patients[0]["00201204"]["Value"] == [1]
    assert tag_values(find(loaded, "PATIENT", {}), "00100020") == sorted(h.PatientID for h in headers())
    under = find(loaded, "IMAGE", {"PatientID": ds["MR"].PatientID}, model="patient")
    assert tag_values(under, "00080018") == [ds["MR"].SOPInstanceUID]
    # Sequence matching: the RT dose's referenced plan.
    plan = ds["RTDOSE"].ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID
    hits = find(loaded, "IMAGE", {"ReferencedRTPlanSequence": {"ReferencedSOPInstanceUID": plan}})
    assert tag_values(hits, "00080018") == [ds["RTDOSE"].SOPInstanceUID]
    assert hits[0]["300C0002"]["Value"][0]["00081155"]["Value"] == [plan]
    assert find(loaded, "IMAGE", {"ReferencedRTPlanSequence": {"ReferencedSOPInstanceUID": "1.2.3"}}) == []
    # An empty sequence key returns the whole items, whatever the file's encoding and the answer's.
    hits = find(loaded, "IMAGE", {"SOPInstanceUID": ds["CT"].SOPInstanceUID, "OtherPatientIDsSequence": {}})
    items = hits[0]["00101002"]["Value"]
    assert [i["00100020"]["Value"] for i in items] == [[item.PatientID] for item in ds["CT"].OtherPatientIDsSequence]
    hits = find(loaded, "IMAGE", {"SOPInstanceUID": ds["RTDOSE"].SOPInstanceUID, "ReferencedRTPlanSequence": {}})
    item = hits[0]["300C0002"]["Value"][0]
    assert (item["00081150"]["Value"], item["00081155"]["Value"]) == ([ds["RTDOSE"].ReferencedRTPlanSequence[0].ReferencedSOPClassUID], [plan])


def test_study_root_has_no_patient_level(loaded):
    data = expect_error({"op": "find", "options": opts(loaded, level="STUDY", model="study", query={"QueryRetrieveLevel": "PATIENT"})}, "network_error")
    assert "0xA900" in data["error"]["message"]


def test_dcmtk_and_dicom_rs_find_agree_with_ours(loaded):
    require_backend("dcmtk")
    ours = find(loaded, "SERIES", {"Modality": "M*"})
    dcmtk = find(loaded, "SERIES", {"Modality": "M*"}, backend="dcmtk")
    assert tag_values(dcmtk, "0020000E") == tag_values(ours, "0020000E") == [h.SeriesInstanceUID for h in headers() if h.Modality == "MR"]
    ours = find(loaded, "STUDY", {"StudyDate": "20000101-20201231"})
    assert len(ours) == 4
    assert tag_values(find(loaded, "STUDY", {"StudyDate": "20000101-20201231"}, backend="dcmtk"), "0020000D") == tag_values(ours, "0020000D")
    require_backend("dicom-rs")
    rust = find(loaded, "STUDY", {"StudyDate": "20000101-20201231"}, backend="dicom-rs")
    assert tag_values(rust, "0020000D") == tag_values(ours, "0020000D")


def test_get_sends_back_what_was_stored_to_us_dcmtk_and_getscu(loaded, tmp_path):
    ds = {h.Modality: h for h in headers()}
    ct = ds["CT"]
    meta = expect_ok({"op": "get", "output": str(tmp_path / "ours"), "options": opts(loaded, level="STUDY", query={"StudyInstanceUID": ct.StudyInstanceUID})})["metadata"]
    assert (meta["completed"], meta["failed"], meta["received"]) == (1, 0, 1)
    got = dcmread(next((tmp_path / "ours").rglob("*.dcm")))
    assert got.SOPInstanceUID == ct.SOPInstanceUID and got.PixelData == dcmread(sample("CT_small.dcm")).PixelData
    # DCMTK getscu accepts only uncompressed syntaxes: the RLE instance comes back decoded, same UID.
    getscu = require_tool("getscu")
    rle = dcmread(sample("SC_rgb_rle.dcm"))
    out = tmp_path / "getscu"
    out.mkdir()
    run = subprocess.run([getscu, "-S", "-aec", loaded.aet, "-od", str(out), "-k", "QueryRetrieveLevel=SERIES",
                          "-k", f"SeriesInstanceUID={rle.SeriesInstanceUID}", loaded.host, str(loaded.port)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    received = [dcmread(p) for p in out.iterdir()]
    assert [r.SOPInstanceUID for r in received] == [rle.SOPInstanceUID]
    assert not received[0].file_meta.TransferSyntaxUID.is_compressed
    assert (received[0].pixel_array == rle.pixel_array).all()
    # The dcmtk backend's get: the whole patient of the RT dose, patient root.
    dose = ds["RTDOSE"]
    meta = expect_ok(backend_request("dcmtk", "get", output=str(tmp_path / "dcmtk"), **opts(loaded, level="PATIENT", query={"PatientID": dose.PatientID})))["metadata"]
    assert meta["completed"] == 1
    assert [dcmread(p).SOPInstanceUID for p in (tmp_path / "dcmtk").rglob("*") if p.is_file()] == [dose.SOPInstanceUID]


def test_get_refuses_an_instance_that_is_not_sound(loaded, tmp_path):
    # The archive holds a second CT instance of the study whose stored file was damaged (its Rows
    # doubled: Pixel Data too short for the image). `get` keeps the sound one and refuses the other
    # (C-STORE "cannot understand"), listing it; nothing of it is written.
    from pydicom.uid import generate_uid

    ct = dcmread(sample("CT_small.dcm"))
    ct.SOPInstanceUID = generate_uid()
    extra = tmp_path / "extra.dcm"
    ct.save_as(extra)
    c_store_files(loaded.host, loaded.port, loaded.aet, [extra])
    stored = next(loaded.output.rglob(f"{ct.SOPInstanceUID}.dcm"))
    damaged = dcmread(stored)
    damaged.Rows *= 2
    damaged.save_as(stored)
    data = expect_ok({"op": "get", "output": str(tmp_path / "got"), "options": opts(loaded, level="STUDY", query={"StudyInstanceUID": ct.StudyInstanceUID})})
    meta = data["metadata"]
    assert (meta["completed"], meta["failed"], meta["received"]) == (1, 1, 1)
    assert [r["sop_instance_uid"] for r in meta["refused"]] == [ct.SOPInstanceUID]
    assert "Pixel Data holds" in meta["refused"][0]["reason"]
    assert [dcmread(p).SOPInstanceUID for p in data["output_files"]] == [dcmread(sample("CT_small.dcm")).SOPInstanceUID]
    assert sorted(p.name for p in (tmp_path / "got").rglob("*") if p.is_file()) == [Path(data["output_files"][0]).name]
    # DCMTK's getscu keeps whatever it is sent: the dcmtk backend refuses it the same way.
    dcmtk = expect_ok(backend_request("dcmtk", "get", output=str(tmp_path / "dcmtk"), **opts(loaded, level="STUDY", query={"StudyInstanceUID": ct.StudyInstanceUID})))
    assert {k: dcmtk["metadata"][k] for k in ("completed", "failed", "received")} == {"completed": 1, "failed": 1, "received": 1}
    assert dcmtk["metadata"]["refused"] == meta["refused"]
    assert [dcmread(p).SOPInstanceUID for p in dcmtk["output_files"]] == [dcmread(sample("CT_small.dcm")).SOPInstanceUID]
    # Only the damaged instance asked for: nothing kept, the same code from both backends.
    query = {"StudyInstanceUID": ct.StudyInstanceUID, "SeriesInstanceUID": ct.SeriesInstanceUID, "SOPInstanceUID": ct.SOPInstanceUID}
    ours = expect_error({"op": "get", "output": str(tmp_path / "alone"), "options": opts(loaded, level="IMAGE", query=query)}, "network_error")
    theirs = expect_error(backend_request("dcmtk", "get", output=str(tmp_path / "alone-dcmtk"), **opts(loaded, level="IMAGE", query=query)), "network_error")
    assert all("Pixel Data holds" in data["error"]["message"] for data in (ours, theirs))
    assert not [p for p in tmp_path.glob("alone*/**/*") if p.is_file()]


def test_move_to_a_configured_destination_and_refuse_an_unknown_one(hub_scp_factory, tmp_path):
    receiver = hub_scp_factory(aet="RECEIVER")
    scp = hub_scp_factory(aet="HUBQR", move=[f"RECEIVER={receiver.host}:{receiver.port}", f"MOVESCU=127.0.0.1:{free_port()}"])
    c_store_files(scp.host, scp.port, scp.aet, paths())
    ds = {h.Modality: h for h in headers()}
    meta = expect_ok({"op": "move", "options": opts(scp, level="STUDY", destination="RECEIVER", query={"StudyInstanceUID": ds["MR"].StudyInstanceUID})})["metadata"]
    assert (meta["completed"], meta["failed"], meta["warning"], meta["status"]) == (1, 0, 0, 0)
    assert [p.stem for p in receiver.output.rglob("*.dcm")] == [ds["MR"].SOPInstanceUID]
    data = expect_error({"op": "move", "options": opts(scp, level="STUDY", destination="NOWHERE", query={"StudyInstanceUID": ds["MR"].StudyInstanceUID})}, "network_error")
    assert "0xA801" in data["error"]["message"]
    # DCMTK movescu through the dcmtk backend: the RLE study; the receiver keeps it compressed.
    meta = expect_ok(backend_request("dcmtk", "move", **opts(scp, level="STUDY", destination="RECEIVER", query={"StudyInstanceUID": ds["OT"].StudyInstanceUID})))["metadata"]
    assert meta["completed"] == 1
    moved = dcmread(next(receiver.output.rglob(f"{ds['OT'].SOPInstanceUID}.dcm")))
    assert moved.file_meta.TransferSyntaxUID == dcmread(sample("SC_rgb_rle.dcm")).file_meta.TransferSyntaxUID
    # dicom-rs's dicom-movescu, patient root.
    require_backend("dicom-rs")
    meta = expect_ok(backend_request("dicom-rs", "move", **opts(scp, level="PATIENT", model="patient", destination="RECEIVER", query={"PatientID": ds["CT"].PatientID})))["metadata"]
    assert sorted(p.stem for p in receiver.output.rglob("*.dcm")) == sorted(ds[m].SOPInstanceUID for m in ("MR", "OT", "CT"))
    assert "C-MOVE" in scp.log_text() and "unknown destination 'NOWHERE'" in scp.log_text()


def test_a_retrieve_without_a_unique_key_is_refused(loaded, tmp_path):
    data = expect_error({"op": "get", "output": str(tmp_path / "x"), "options": opts(loaded, level="SERIES", query={"Modality": "CT"})}, "network_error")
    assert "0xA900" in data["error"]["message"]


def test_index_is_right_after_duplicates_restarts_and_damage(hub_scp_factory, tmp_path):
    store = tmp_path / "store"
    scp = hub_scp_factory(output=store)
    c_store_files(scp.host, scp.port, scp.aet, paths())
    c_store_files(scp.host, scp.port, scp.aet, [sample("MR_small.dcm"), sample("MR_small_RLE.dcm")])  # same SOP Instance UID
    studies = find(scp, "STUDY", {})
    assert len(studies) == 4 and sum(s["00201208"]["Value"][0] for s in studies) == 4
    assert len(list(store.rglob("*.dcm"))) == 4
    assert scp.stop() == 0
    # A restart answers the same from the kept index.
    again = hub_scp_factory(output=store)
    assert find(again, "STUDY", {}) == studies
    assert "4 instances" in again.log_text()
    assert again.stop() == 0
    # A file removed and a corrupt index file while stopped: rebuilt from the files.
    ct = dcmread(sample("CT_small.dcm"))
    next(store.rglob(f"{ct.SOPInstanceUID}.dcm")).unlink()
    index = store / ".dicom-hub-index.sqlite"
    for extra in store.glob(".dicom-hub-index.sqlite-*"):
        extra.unlink()
    index.write_bytes(b"not a database")
    third = hub_scp_factory(output=store)
    assert tag_values(find(third, "STUDY", {}), "0020000D") == sorted(h.StudyInstanceUID for h in headers() if h.Modality != "CT")
    assert "3 instances" in third.log_text()
    with sqlite3.connect(index) as db:
        assert db.execute("SELECT COUNT(*) FROM instances").fetchone()[0] == 3


def test_store_re_encodes_sequence_items_for_an_implicit_vr_peer(hub_scp):
    # CT_small is Explicit VR with a sequence; dicom-hub scp accepts Implicit VR first, so `store`
    # re-encodes. DCMTK must read the received file (its items were once left in Explicit VR).
    dcmdump = require_tool("dcmdump")
    ct = dcmread(sample("CT_small.dcm"))
    expect_ok({"op": "store", "input": str(sample("CT_small.dcm")), "options": opts(hub_scp)})
    received = next(hub_scp.output.rglob(f"{ct.SOPInstanceUID}.dcm"))
    run = subprocess.run([dcmdump, str(received)], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0 and "E:" not in run.stderr, run.stderr
    assert "OtherPatientIDsSequence" in run.stdout


AGREEMENT_QUERIES = (
    ("STUDY", {"PatientName": "*SAMPLES^?R1"}),
    ("STUDY", {"StudyDate": "20030101-20041231", "ModalitiesInStudy": ""}),
    ("SERIES", {"Modality": "RTDOSE"}),
    ("SERIES", {"SeriesNumber": ""}),
    ("IMAGE", {"StudyTime": "07-19"}),
)


def test_our_answers_agree_with_orthanc_on_the_same_data(loaded, orthanc):
    """Orthanc is the reference: the same files, the same C-FIND, the same matches and values."""
    orthanc.preload(paths())
    studies = {h.StudyInstanceUID for h in headers()}
    for level, query in AGREEMENT_QUERIES:
        ours = expect_ok({"op": "find", "options": opts(loaded, level=level, query=query)})["metadata"]["results"]
        theirs = expect_ok({"op": "find", "options": opts(orthanc, level=level, query=query)})["metadata"]["results"]
        theirs = [r for r in theirs if r["0020000D"]["Value"][0] in studies]  # Orthanc also holds other tests' data
        key = {"STUDY": "0020000D", "SERIES": "0020000E", "IMAGE": "00080018"}[level]
        assert sorted(r[key]["Value"][0] for r in ours) == sorted(r[key]["Value"][0] for r in theirs) and ours, (level, query)
        compared = [tag for tag in theirs[0] if tag not in ("00080005", "00080054", "00080056")]
        for mine in ours:
            other = next(r for r in theirs if r[key] == mine[key])
            assert {t: _plain(mine.get(t)) for t in compared} == {t: _plain(other.get(t)) for t in compared}, (level, query, mine[key])


def _plain(element: dict | None) -> list[str]:
    """An element's values as text (IS/DS numbers and PN objects compare as strings)."""
    values = (element or {}).get("Value") or []
    return [str(v.get("Alphabetic")) if isinstance(v, dict) else str(v) for v in values]


def test_storage_still_works_when_the_sender_negotiates_roles(hub_scp):
    # The storage contexts also accept the SCP role (for C-GET); a sender that proposes the SCU
    # role explicitly must still be able to C-STORE.
    from pynetdicom import AE
    from pynetdicom.presentation import build_role

    ct = dcmread(sample("CT_small.dcm"))
    ae = AE("ROLES")
    ae.add_requested_context(ct.SOPClassUID, [ct.file_meta.TransferSyntaxUID])
    assoc = ae.associate(hub_scp.host, hub_scp.port, ae_title=hub_scp.aet, ext_neg=[build_role(ct.SOPClassUID, scu_role=True)])
    assert assoc.is_established
    status = assoc.send_c_store(ct).Status
    assoc.release()
    assert status == 0 and [p.stem for p in hub_scp.output.rglob("*.dcm")] == [ct.SOPInstanceUID]
