"""echo, store, find (every level), move and get against a real Orthanc on 127.0.0.1.

Orthanc runs once per session, so each test stores its own synthetic study with its own
PatientID and queries only for that: tests do not see each other's data.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from conftest import backend_request, expect_error, expect_ok
from factories import series
from pydicom import dcmread

pytestmark = pytest.mark.network


def peer_options(peer, **extra) -> dict:
    return {"host": peer.host, "port": peer.port, "called_aet": peer.aet, **extra}


def json_value(result: dict, tag: str):
    values = result.get(tag, {}).get("Value") or [None]
    return values[0]


@pytest.fixture
def study(orthanc, tmp_path) -> list[Path]:
    """A 3-slice study with a PatientID no other test uses, written to disk (not yet in Orthanc)."""
    patient_id = f"NET{uuid.uuid4().hex[:10]}"
    return series(tmp_path / "study", count=3, PatientID=patient_id)


def uids(files: list[Path]) -> dict[str, object]:
    first = dcmread(files[0])
    return {
        "patient": first.PatientID,
        "study": first.StudyInstanceUID,
        "series": first.SeriesInstanceUID,
        "sops": sorted(dcmread(f).SOPInstanceUID for f in files),
    }


def test_echo_reports_status_and_round_trip(orthanc):
    data = expect_ok({"op": "echo", "options": peer_options(orthanc)})
    meta = data["metadata"]
    assert meta["status"] == 0 and meta["status_hex"] == "0x0000" and meta["category"] == "Success"
    assert meta["round_trip_ms"] > 0
    assert meta["peer"]["port"] == orthanc.port


def test_store_sends_every_file_in_one_association_and_orthanc_has_them(orthanc, study):
    data = expect_ok({"op": "store", "input": str(study[0].parent), "options": peer_options(orthanc)})
    meta = data["metadata"]
    assert (meta["total"], meta["completed"], meta["failed"]) == (3, 3, 0)
    assert sorted(f["sop_instance_uid"] for f in meta["files"]) == uids(study)["sops"]
    assert all(f["status"] == 0 and not f["decompressed"] for f in meta["files"])
    # Orthanc's own answer, asked with pynetdicom: the instances are there.
    found = expect_ok({"op": "find", "options": peer_options(orthanc, level="IMAGE", query={"SeriesInstanceUID": uids(study)["series"]})})
    assert sorted(json_value(r, "00080018") for r in found["metadata"]["results"]) == uids(study)["sops"]


def test_store_keeps_going_after_a_file_that_is_not_dicom(orthanc, study):
    junk = study[0].parent / "notes.txt"
    junk.write_text("not a DICOM file")
    data = expect_ok({"op": "store", "input": [str(junk), *map(str, study)], "options": peer_options(orthanc)})
    meta = data["metadata"]
    assert (meta["completed"], meta["failed"]) == (3, 1)
    bad = [f for f in meta["files"] if f["category"] != "Success"]
    assert bad[0]["file"] == str(junk) and bad[0]["reason"] == "not_dicom"


def test_store_of_only_non_dicom_files_fails(orthanc, tmp_path):
    junk = tmp_path / "a.dcm"
    junk.write_bytes(b"\0" * 300)
    expect_error({"op": "store", "input": str(junk), "options": peer_options(orthanc)}, "not_dicom")


@pytest.mark.parametrize(
    ("level", "key", "expected"),
    [
        ("PATIENT", "00100020", lambda u: [u["patient"]]),
        ("STUDY", "0020000D", lambda u: [u["study"]]),
        ("SERIES", "0020000E", lambda u: [u["series"]]),
        ("IMAGE", "00080018", lambda u: u["sops"]),
    ],
)
def test_find_at_every_level(orthanc, study, level, key, expected):
    orthanc.preload(study)
    ids = uids(study)
    data = expect_ok({"op": "find", "options": peer_options(orthanc, level=level, query={"PatientID": ids["patient"]})})
    results = data["metadata"]["results"]
    assert sorted(json_value(r, key) for r in results) == expected(ids)
    assert data["metadata"]["count"] == len(results)
    if level == "STUDY":  # usual return keys come back without being asked for
        assert json_value(results[0], "00080020") == "20240102"  # StudyDate written by the factory


def test_find_in_the_patient_root_model(orthanc, study):
    orthanc.preload(study)
    ids = uids(study)
    options = peer_options(orthanc, level="SERIES", model="patient", query={"PatientID": ids["patient"], "StudyInstanceUID": ids["study"]})
    results = expect_ok({"op": "find", "options": options})["metadata"]["results"]
    assert [json_value(r, "0020000E") for r in results] == [ids["series"]]
    # Every backend sends the same identifier (PatientID, a unique key of the patient root, is
    # asked for even when the query leaves it out), so each answer has the same keys and values.
    options["query"] = {"StudyInstanceUID": ids["study"]}
    results = expect_ok({"op": "find", "options": options})["metadata"]["results"]
    for backend in ("dcmtk", "dicom-rs"):
        theirs = expect_ok(backend_request(backend, "find", **options))["metadata"]["results"]
        assert [sorted(r) for r in theirs] == [sorted(r) for r in results], backend
        assert [json_value(r, "00100020") for r in theirs] == [json_value(r, "00100020") for r in results] == [ids["patient"]]


def test_find_with_wildcards_and_date_range(orthanc, study):
    orthanc.preload(study)
    ids = uids(study)
    query = {"PatientID": ids["patient"][:6] + "*", "StudyDate": "20240101-20240131", "PatientName": "Synth*"}
    data = expect_ok({"op": "find", "options": peer_options(orthanc, level="STUDY", query=query)})
    assert ids["study"] in [json_value(r, "0020000D") for r in data["metadata"]["results"]]
    outside = {**query, "StudyDate": "20250101-"}
    data = expect_ok({"op": "find", "options": peer_options(orthanc, level="STUDY", query=outside)})
    assert ids["study"] not in [json_value(r, "0020000D") for r in data["metadata"]["results"]]


def test_find_rejects_unknown_keys_before_connecting(orthanc):
    expect_error({"op": "find", "options": peer_options(orthanc, query={"NoSuchKeyword": "x"})}, "invalid_request")


def test_move_back_to_a_dicom_hub_scp(orthanc, study, hub_scp_factory):
    orthanc.preload(study)
    ids = uids(study)
    scp = hub_scp_factory(port=orthanc.destinations["HUBSCP"], aet="HUBSCP")
    options = peer_options(orthanc, destination="HUBSCP", level="STUDY", query={"StudyInstanceUID": ids["study"]})
    meta = expect_ok({"op": "move", "options": options})["metadata"]
    assert (meta["completed"], meta["failed"], meta["warning"]) == (3, 0, 0)
    received = sorted(scp.output.rglob("*.dcm"))
    assert sorted(p.stem for p in received) == ids["sops"]
    for path in received:
        assert path.parent == scp.output / ids["study"] / ids["series"]
    originals = {dcmread(f).SOPInstanceUID: dcmread(f) for f in study}
    for path in received:
        ds = dcmread(path)
        assert ds.PixelData == originals[ds.SOPInstanceUID].PixelData
    assert "3 stored" in scp.log_text()


def test_move_to_an_unknown_destination_is_a_network_error(orthanc, study):
    orthanc.preload(study)
    options = peer_options(orthanc, destination="NOWHERE", query={"StudyInstanceUID": uids(study)["study"]})
    data = expect_error({"op": "move", "options": options}, "network_error")
    # Orthanc 1.10 answers an unknown destination with 0xC000 (Unable to process), not 0xA801.
    assert "C-MOVE" in data["error"]["message"] and "failed with status 0x" in data["error"]["message"]


def test_get_into_the_output_folder(orthanc, study, tmp_path):
    orthanc.preload(study)
    ids = uids(study)
    out = tmp_path / "got"
    data = expect_ok({"op": "get", "output": str(out), "options": peer_options(orthanc, level="SERIES", query={"StudyInstanceUID": ids["study"], "SeriesInstanceUID": ids["series"]})})
    meta = data["metadata"]
    assert (meta["completed"], meta["failed"], meta["received"]) == (3, 0, 3)
    assert sorted(Path(p).stem for p in data["output_files"]) == ids["sops"]
    originals = {dcmread(f).SOPInstanceUID: dcmread(f) for f in study}
    for name in data["output_files"]:
        path = Path(name)
        assert path.parent == out / ids["study"] / ids["series"]
        ds = dcmread(path)
        assert ds.PixelData == originals[ds.SOPInstanceUID].PixelData
    assert not list(out.rglob("*.part"))


def test_get_of_an_unknown_study_reports_the_peer_status(orthanc, tmp_path):
    # Orthanc refuses a C-GET that matches nothing with 0xC000 ("Cannot locate resource").
    options = peer_options(orthanc, query={"StudyInstanceUID": "1.2.3.999999"})
    data = expect_error({"op": "get", "output": str(tmp_path / "none"), "options": options}, "network_error")
    assert "C-GET" in data["error"]["message"] and "status 0xC000" in data["error"]["message"]
    assert not list((tmp_path / "none").rglob("*.dcm"))


def test_get_never_replaces_files_without_overwrite(orthanc, study, tmp_path):
    orthanc.preload(study)
    ids = uids(study)
    out = tmp_path / "got"
    request = {"op": "get", "output": str(out), "options": peer_options(orthanc, query={"StudyInstanceUID": ids["study"]})}
    first = expect_ok(request)
    target = Path(first["output_files"][0])
    target.write_bytes(b"marker")
    expect_error(request, "output_exists")
    assert target.read_bytes() == b"marker"
    again = expect_ok({**request, "options": {**request["options"], "overwrite": True}})
    assert again["metadata"]["completed"] == 3 and dcmread(target).SOPInstanceUID == target.stem
