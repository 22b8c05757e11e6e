"""qido, wado and stow against a real Orthanc with its DICOMweb plugin on 127.0.0.1: QIDO-RS and
C-FIND on the same data agree, WADO-RS brings back what was stored, STOW-RS stores what C-FIND
then finds, and authentication failures are network_error with the HTTP status.

The data are pydicom's bundled test files, loaded over DICOM (pynetdicom) before the web ops run.
"""

from __future__ import annotations

import pytest
from conftest import backend_request, expect_error, expect_ok, sample
from peers import c_store_files
from pydicom import dcmread

pytestmark = pytest.mark.network

LOADED = ("CT_small.dcm", "MR_small.dcm", "rtdose.dcm", "SC_rgb_rle.dcm")
SECRET_ENV = "DICOM_HUB_TEST_WEB_CREDENTIALS"
# Keys whose values must agree between C-FIND and QIDO-RS, per level (DICOM JSON tags).
COMPARED = {
    "STUDY": ("0020000D", "00100020", "00100010", "00080020", "00080030", "00080050", "00201208", "00201206", "00080061"),
    "SERIES": ("0020000D", "0020000E", "00080060", "00200011", "00201209"),
    "IMAGE": ("0020000D", "0020000E", "00080018", "00080016", "00200013"),
}


@pytest.fixture(scope="module")
def web(orthanc_web):
    c_store_files(orthanc_web.host, orthanc_web.port, orthanc_web.aet, [sample(n) for n in LOADED])
    return orthanc_web


@pytest.fixture
def credentials(web, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, f"{web.user}:{web.password}")
    return {"url": web.url, "auth": "basic", "auth_env": SECRET_ENV}


def dimse(web, **extra) -> dict:
    return {"host": web.host, "port": web.port, "called_aet": web.aet, **extra}


def by_key(results: list[dict], key: str) -> dict[str, dict]:
    return {r[key]["Value"][0]: r for r in results}


def values(result: dict, tags: tuple[str, ...]) -> dict[str, object]:
    """The compared values of one result; numbers as text (IS is a string in C-FIND, a number in QIDO)."""
    out = {}
    for tag in tags:
        found = result.get(tag, {}).get("Value")
        out[tag] = sorted(str(v) if not isinstance(v, dict) else str(v.get("Alphabetic")) for v in found) if found else None
    return out


@pytest.mark.parametrize(
    ("level", "query"),
    [
        ("STUDY", {}),
        ("STUDY", {"PatientName": "CompressedSamples*"}),
        ("STUDY", {"StudyDate": "20040101-20041231"}),
        ("SERIES", {"Modality": "MR"}),
        ("IMAGE", {"PatientID": "id11111"}),
    ],
)
def test_qido_and_c_find_agree_on_the_same_data(web, credentials, level, query):
    found = expect_ok({"op": "find", "options": dimse(web, level=level, query=query)})["metadata"]["results"]
    searched = expect_ok({"op": "qido", "options": {**credentials, "level": level, "query": query}})["metadata"]["results"]
    unique = COMPARED[level][2 if level == "IMAGE" else 1 if level == "SERIES" else 0]
    dimse_rows, web_rows = by_key(found, unique), by_key(searched, unique)
    assert sorted(web_rows) == sorted(dimse_rows) and dimse_rows
    for uid, row in dimse_rows.items():
        assert values(web_rows[uid], COMPARED[level]) == values(row, COMPARED[level]), uid


def test_qido_uid_list_and_limit(web, credentials):
    ct, mr = (dcmread(sample(n), stop_before_pixels=True) for n in ("CT_small.dcm", "MR_small.dcm"))
    meta = expect_ok({"op": "qido", "options": {**credentials, "query": {"StudyInstanceUID": [ct.StudyInstanceUID, mr.StudyInstanceUID]}}})["metadata"]
    assert sorted(by_key(meta["results"], "0020000D")) == sorted([ct.StudyInstanceUID, mr.StudyInstanceUID])
    assert expect_ok({"op": "qido", "options": {**credentials, "max_results": 1}})["metadata"]["count"] == 1


def test_wado_retrieves_what_was_stored(web, credentials, tmp_path):
    ct = dcmread(sample("CT_small.dcm"))
    meta = expect_ok({"op": "wado", "output": str(tmp_path / "study"), "options": {**credentials, "query": {"StudyInstanceUID": ct.StudyInstanceUID}}})
    files = meta["output_files"]
    assert len(files) == 1 and files[0].endswith(f"{ct.StudyInstanceUID}/{ct.SeriesInstanceUID}/{ct.SOPInstanceUID}.dcm")
    got = dcmread(files[0])
    assert got.PixelData == ct.PixelData and got.PatientName == ct.PatientName
    # One instance; again into the same folder: refused unless overwrite.
    rle = dcmread(sample("SC_rgb_rle.dcm"))
    query = {"StudyInstanceUID": rle.StudyInstanceUID, "SeriesInstanceUID": rle.SeriesInstanceUID, "SOPInstanceUID": rle.SOPInstanceUID}
    request = {"op": "wado", "output": str(tmp_path / "one"), "options": {**credentials, "level": "IMAGE", "query": query}}
    got = dcmread(expect_ok(request)["output_files"][0])
    assert (got.pixel_array == rle.pixel_array).all()
    expect_error(request, "output_exists")
    request["options"]["overwrite"] = True
    expect_ok(request)
    # An unknown study is the server's 404.
    data = expect_error({"op": "wado", "output": str(tmp_path / "none"), "options": {**credentials, "query": {"StudyInstanceUID": "1.2.3.4.5.6"}}}, "network_error")
    assert "HTTP 404" in data["error"]["message"]


def test_wado_keeps_only_sound_instances(web, credentials, tmp_path):
    # A study of two instances on the server, one damaged (Rows doubled: its Pixel Data is too
    # short for the image). The sound one is written, the other refused with the reason; asked
    # for alone, nothing is written and the answer is decode_error.
    from pydicom.uid import generate_uid

    study = generate_uid()
    files = []
    for name, damaged in (("sound.dcm", False), ("damaged.dcm", True)):
        ds = dcmread(sample("CT_small.dcm"))
        ds.StudyInstanceUID, ds.SOPInstanceUID = study, generate_uid()
        if damaged:
            ds.Rows *= 2
        ds.save_as(tmp_path / name)
        files.append(ds)
    c_store_files(web.host, web.port, web.aet, [tmp_path / "sound.dcm", tmp_path / "damaged.dcm"])
    sound, damaged = files
    data = expect_ok({"op": "wado", "output": str(tmp_path / "study"), "options": {**credentials, "query": {"StudyInstanceUID": study}}})
    meta = data["metadata"]
    assert (meta["received"], meta["completed"], meta["failed"]) == (2, 1, 1)
    assert [r["sop_instance_uid"] for r in meta["refused"]] == [damaged.SOPInstanceUID]
    assert "Pixel Data holds" in meta["refused"][0]["reason"]
    assert [dcmread(f).SOPInstanceUID for f in data["output_files"]] == [sound.SOPInstanceUID]
    assert [p.name for p in (tmp_path / "study").rglob("*") if p.is_file()] == [f"{sound.SOPInstanceUID}.dcm"]
    query = {"StudyInstanceUID": study, "SeriesInstanceUID": damaged.SeriesInstanceUID, "SOPInstanceUID": damaged.SOPInstanceUID}
    error = expect_error({"op": "wado", "output": str(tmp_path / "one"), "options": {**credentials, "level": "IMAGE", "query": query}}, "decode_error")
    assert "Pixel Data holds" in error["error"]["message"]
    assert not [p for p in (tmp_path / "one").rglob("*") if p.is_file()]


def test_wado_needs_the_uids_of_its_level(web, credentials, tmp_path):
    data = expect_error({"op": "wado", "output": str(tmp_path / "x"), "options": {**credentials, "level": "SERIES", "query": {"StudyInstanceUID": "1.2"}}}, "invalid_request")
    assert "SeriesInstanceUID" in data["error"]["message"]


def test_stow_then_c_find_finds_it(web, credentials, tmp_path):
    names = ("examples_overlay.dcm", "693_J2KI.dcm")
    meta = expect_ok({"op": "stow", "input": [str(sample(n)) for n in names], "options": {**credentials, "batch_size": 1}})["metadata"]
    assert (meta["total"], meta["completed"], meta["failed"]) == (2, 2, 0)
    for name in names:
        ds = dcmread(sample(name), stop_before_pixels=True)
        found = expect_ok({"op": "find", "options": dimse(web, level="IMAGE", query={"SOPInstanceUID": ds.SOPInstanceUID})})["metadata"]["results"]
        assert [r["00080018"]["Value"][0] for r in found] == [ds.SOPInstanceUID]
    # A file that is not DICOM is reported, the rest still goes.
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not dicom")
    meta = expect_ok({"op": "stow", "input": [str(junk), str(sample(names[0]))], "options": credentials})["metadata"]
    assert [f["category"] for f in meta["files"]] == ["Failure", "Success"]


def test_authentication_failures_are_network_errors_with_the_status(web, monkeypatch, tmp_path):
    monkeypatch.setenv(SECRET_ENV, f"{web.user}:wrong-password")
    data = expect_error({"op": "qido", "options": {"url": web.url, "auth": "basic", "auth_env": SECRET_ENV}}, "network_error")
    assert "HTTP 401" in data["error"]["message"] and "credentials" in data["error"]["hint"]
    assert "wrong-password" not in str(data)
    data = expect_error({"op": "stow", "input": str(sample("CT_small.dcm")), "options": {"url": web.url}}, "network_error")
    assert "HTTP 401" in data["error"]["message"]
    # The same credentials from a file work; a missing variable is the request's fault.
    secret = tmp_path / "web.credentials"
    secret.write_text(f"{web.user}:{web.password}\n")
    assert expect_ok({"op": "qido", "options": {"url": web.url, "auth": "basic", "auth_file": str(secret)}})["metadata"]["count"] >= 4
    monkeypatch.delenv(SECRET_ENV)
    data = expect_error({"op": "qido", "options": {"url": web.url, "auth": "basic", "auth_env": SECRET_ENV}}, "invalid_request")
    assert SECRET_ENV in data["error"]["message"]
    expect_error({"op": "qido", "options": {"url": web.url, "auth": "basic"}}, "invalid_request")  # no source of credentials


def test_unreachable_server_and_other_backends(tmp_path):
    from peers import free_port

    data = expect_error({"op": "qido", "options": {"url": f"http://127.0.0.1:{free_port()}/dicom-web", "http_timeout": 5}}, "network_error")
    assert "could not be reached" in data["error"]["message"] and "refused" in data["error"]["message"].lower()
    data = expect_error(backend_request("dcmtk", "qido", url="http://127.0.0.1:1/dicom-web"), "unsupported_op")
    assert "no DICOMweb" in data["error"]["message"]


@pytest.fixture
def bearer_server():
    """A minimal QIDO-RS endpoint on 127.0.0.1 that answers one study only to `Bearer <token>`
    (Orthanc has no token authentication without an extra plugin)."""
    import json
    import secrets
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    token = secrets.token_urlsafe(16)
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server hook name
            seen.append(self.headers.get("Authorization", ""))
            if self.headers.get("Authorization") != f"Bearer {token}":
                body, status = b"token required", 401
            else:
                body, status = json.dumps([{"0020000D": {"vr": "UI", "Value": ["1.2.3"]}}]).encode(), 200
            self.send_response(status)
            self.send_header("Content-Type", "application/dicom+json" if status == 200 else "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/dicom-web", token, seen
    server.shutdown()
    server.server_close()


def test_bearer_token_from_a_file_or_the_environment(bearer_server, tmp_path, monkeypatch):
    url, token, seen = bearer_server
    secret = tmp_path / "token"
    secret.write_text(token + "\n")
    meta = expect_ok({"op": "qido", "options": {"url": url, "auth": "bearer", "auth_file": str(secret)}})["metadata"]
    assert meta["results"][0]["0020000D"]["Value"] == ["1.2.3"] and seen[-1] == f"Bearer {token}"
    monkeypatch.setenv(SECRET_ENV, "not-the-token")
    data = expect_error({"op": "qido", "options": {"url": url, "auth": "bearer", "auth_env": SECRET_ENV}}, "network_error")
    assert "HTTP 401" in data["error"]["message"] and "token required" in data["error"]["message"]
