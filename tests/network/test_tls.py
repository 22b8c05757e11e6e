"""DICOM over TLS (PS3.15 Annex B) between real peers on 127.0.0.1, with a throw-away CA (`tls_pki`):
our SCU against `dicom-hub scp --tls-*`, DCMTK's storescp +tls and Orthanc with DicomTlsEnabled;
DCMTK's SCUs against `dicom-hub scp`; and every way a certificate can be wrong, which must end
in a `network_error` that says so. Backends without TLS refuse the options."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
from conftest import expect_error, expect_ok, missing, require_backend, require_tool, run_request
from dicom_hub.adapters.registry import get_adapter
from factories import series
from peers import (
    HOST,
    WORKLIST_PLUGIN,
    free_port,
    orthanc_config,
    orthanc_executable,
    sample_worklist,
    start_peer_process,
    stop_process,
    write_worklist,
)
from pydicom import dcmread
from tls_pki import PKI_PASSWORD

pytestmark = pytest.mark.network


def tls_scp(hub_scp_factory, pki, cert: str = "server", ca: bool = False, extra=()):
    args = ["--tls-cert", pki.file(f"{cert}_cert"), "--tls-key", pki.file(f"{cert}_key"), *(["--tls-ca", pki.file("ca")] if ca else []), *extra]
    return hub_scp_factory(extra=args)


def echo(peer, backend: str = "python", **options) -> dict:
    return {"op": "echo", "backend": backend, "options": {"host": peer.host, "port": peer.port, "called_aet": peer.aet, "network_timeout": 10, **options}}


def test_python_echo_over_tls(hub_scp_factory, tls_pki):
    scp = tls_scp(hub_scp_factory, tls_pki)
    assert expect_ok(echo(scp, tls=True, tls_ca_file=tls_pki.file("ca")))["metadata"]["status"] == 0
    assert "over TLS" in scp.log_text()


def test_a_client_that_never_starts_the_handshake_does_not_block_others(hub_scp_factory, tls_pki):
    scp = tls_scp(hub_scp_factory, tls_pki)
    with socket.create_connection((scp.host, scp.port), timeout=30):
        assert expect_ok(echo(scp, tls=True, tls_ca_file=tls_pki.file("ca"), network_timeout=5))["metadata"]["status"] == 0


def test_python_store_over_tls_keeps_the_files_intact(hub_scp_factory, tls_pki, tmp_path):

    scp = tls_scp(hub_scp_factory, tls_pki)
    files = series(tmp_path / "in", count=2)
    meta = expect_ok({"op": "store", "input": str(tmp_path / "in"), "options": {**echo(scp)["options"], "tls": True, "tls_ca_file": tls_pki.file("ca")}})["metadata"]
    assert meta["completed"] == 2
    for f in files:
        original = dcmread(f)
        assert dcmread(next(scp.output.rglob(f"{original.SOPInstanceUID}.dcm"))).PixelData == original.PixelData


def test_a_server_certificate_from_an_untrusted_ca_is_a_network_error(hub_scp_factory, tls_pki):
    scp = tls_scp(hub_scp_factory, tls_pki, cert="rogue")
    message = expect_error(echo(scp, tls=True, tls_ca_file=tls_pki.file("ca")), "network_error")["error"]["message"]
    assert "failed the TLS handshake" in message and "certificate verify failed" in message
    # The same server is fine when its own CA is trusted: the refusal was about the certificate.
    assert expect_ok(echo(scp, tls=True, tls_ca_file=tls_pki.file("rogue_ca")))["metadata"]["status"] == 0


def test_a_certificate_for_another_host_name_is_a_network_error_unless_verification_is_off(hub_scp_factory, tls_pki):
    scp = tls_scp(hub_scp_factory, tls_pki, cert="wrong_host")
    message = expect_error(echo(scp, tls=True, tls_ca_file=tls_pki.file("ca")), "network_error")["error"]["message"]
    assert "failed the TLS handshake" in message and "127.0.0.1" in message and "mismatch" in message.lower()
    assert expect_ok(echo(scp, tls=True, tls_ca_file=tls_pki.file("ca"), tls_verify=False))["metadata"]["status"] == 0


def test_plain_tcp_to_a_tls_server_fails_quickly(hub_scp_factory, tls_pki):
    scp = tls_scp(hub_scp_factory, tls_pki)
    data = expect_error(echo(scp, network_timeout=5), "network_error")
    assert "HUBSCP@127.0.0.1" in data["error"]["message"]


def test_mutual_tls_requires_a_client_certificate_signed_by_the_trusted_ca(hub_scp_factory, tls_pki, monkeypatch):
    scp = tls_scp(hub_scp_factory, tls_pki, ca=True)
    trust = {"tls": True, "tls_ca_file": tls_pki.file("ca")}
    message = expect_error(echo(scp, **trust), "network_error")["error"]["message"]
    assert "HUBSCP@127.0.0.1" in message
    message = expect_error(echo(scp, **trust, tls_cert_file=tls_pki.file("rogue_cert"), tls_key_file=tls_pki.file("rogue_key")), "network_error")["error"]["message"]
    assert "HUBSCP@127.0.0.1" in message
    assert expect_ok(echo(scp, **trust, tls_cert_file=tls_pki.file("client_cert"), tls_key_file=tls_pki.file("client_key")))["metadata"]["status"] == 0
    # An encrypted key: its password comes from the environment variable named in the request.
    encrypted = {**trust, "tls_cert_file": tls_pki.file("client_cert"), "tls_key_file": tls_pki.file("client_key_encrypted")}
    expect_error(echo(scp, **encrypted), "invalid_request")
    monkeypatch.setenv("HUB_TEST_KEY_PASSWORD", PKI_PASSWORD)
    assert expect_ok(echo(scp, **encrypted, tls_key_password_env="HUB_TEST_KEY_PASSWORD"))["metadata"]["status"] == 0
    monkeypatch.setenv("HUB_TEST_KEY_PASSWORD", "wrong")
    assert "cannot load the certificate" in expect_error(echo(scp, **encrypted, tls_key_password_env="HUB_TEST_KEY_PASSWORD"), "invalid_request")["error"]["message"]


def test_tls_option_mistakes_are_refused_before_connecting(tls_pki, tmp_path):
    peer = {"host": "127.0.0.1", "port": 9, "called_aet": "NOBODY"}
    missing = expect_error({"op": "echo", "options": {**peer, "tls": True, "tls_ca_file": str(tmp_path / "none.pem")}}, "input_not_found")
    assert "none.pem" in missing["error"]["message"]
    assert "need tls: true" in expect_error({"op": "echo", "options": {**peer, "tls_ca_file": tls_pki.file("ca")}}, "invalid_request")["error"]["message"]
    half = {**peer, "tls": True, "tls_cert_file": tls_pki.file("client_cert")}
    assert "private key" in expect_error({"op": "echo", "options": half}, "invalid_request")["error"]["message"]
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    assert "cannot load CA certificates" in expect_error({"op": "echo", "options": {**peer, "tls": True, "tls_ca_file": str(not_pem)}}, "invalid_request")["error"]["message"]


# -- DCMTK ---------------------------------------------------------------------------------------

def client_tls(pki, **extra) -> dict:
    """Options of a client that trusts the test CA and shows the client certificate."""
    return {"tls": True, "tls_ca_file": pki.file("ca"), "tls_cert_file": pki.file("client_cert"), "tls_key_file": pki.file("client_key"), **extra}


def test_dcmtk_backend_echo_and_store_over_tls_to_dicom_hub_scp(hub_scp_factory, tls_pki, tmp_path):

    require_backend("dcmtk")
    scp = tls_scp(hub_scp_factory, tls_pki, ca=True)  # mutual TLS: DCMTK must show its certificate
    assert expect_ok(echo(scp, "dcmtk", **client_tls(tls_pki)))["metadata"]["status"] == 0
    files = series(tmp_path / "in", count=2)
    store = {"op": "store", "backend": "dcmtk", "input": str(tmp_path / "in"), "options": {**echo(scp)["options"], **client_tls(tls_pki)}}
    assert expect_ok(store)["metadata"]["completed"] == 2
    assert len(list(scp.output.rglob("*.dcm"))) == len(files)
    # Without our certificate the server refuses the handshake; DCMTK says so.
    anonymous = {"tls": True, "tls_ca_file": tls_pki.file("ca")}
    data = expect_error(echo(scp, "dcmtk", **anonymous), "network_error")
    assert "over TLS" in data["error"]["message"] and "tls_cert_file" in data["error"]["hint"]
    assert scp.stop() == 0
    assert "TLS handshake failed" in scp.log_text()


def test_dcmtk_backend_refuses_an_untrusted_server_certificate(hub_scp_factory, tls_pki):

    require_backend("dcmtk")
    scp = tls_scp(hub_scp_factory, tls_pki, cert="rogue")
    data = expect_error(echo(scp, "dcmtk", tls=True, tls_ca_file=tls_pki.file("ca")), "network_error")
    assert "certificate" in data["stderr"].lower() or "certificate" in data["error"]["message"].lower()
    assert expect_ok(echo(scp, "dcmtk", tls=True, tls_ca_file=tls_pki.file("ca"), tls_verify=False))["metadata"]["status"] == 0


def test_dcmtk_tools_talk_tls_to_dicom_hub_scp(hub_scp_factory, tls_pki, tmp_path):

    echoscu, storescu = require_tool("echoscu"), require_tool("storescu")
    scp = tls_scp(hub_scp_factory, tls_pki, ca=True)
    tls = ["+tls", tls_pki.file("client_key"), tls_pki.file("client_cert"), "-pw", "+cf", tls_pki.file("ca")]
    run = subprocess.run([echoscu, *tls, "-aet", "DCMTKTLS", "-aec", scp.aet, scp.host, str(scp.port)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    files = series(tmp_path / "in", count=2)
    run = subprocess.run([storescu, *tls, "-aet", "DCMTKTLS", "-aec", scp.aet, scp.host, str(scp.port), *map(str, files)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert scp.stop() == 0
    log = scp.log_text()
    assert "DCMTKTLS@127.0.0.1" in log and "1 echo" in log and "2 stored" in log


@pytest.fixture
def dcmtk_storescp_tls(tls_pki, tmp_path):
    """DCMTK's storescp +tls on a free loopback port, requiring client certificates from the test CA."""

    storescp = require_tool("storescp")
    port, received = free_port(), tmp_path / "storescp"
    received.mkdir()
    tls = ["+tls", tls_pki.file("server_key"), tls_pki.file("server_cert"), "-pw", "+cf", tls_pki.file("ca"), "-rc"]
    args = [storescp, "-v", *tls, "-aet", "DCMTKSCP", "-od", str(received), str(port)]
    options = {"host": HOST, "port": port, "called_aet": "DCMTKSCP", "network_timeout": 10}

    def ready() -> bool:
        data = run_request({"op": "echo", "options": {**options, **client_tls(tls_pki), "network_timeout": 2}})
        return data["ok"]

    proc = start_peer_process(args, tmp_path / "storescp.log", ready, "storescp +tls")
    try:
        yield options, received
    finally:
        stop_process(proc)


def test_our_store_over_tls_to_dcmtk_storescp(dcmtk_storescp_tls, tls_pki, tmp_path):

    options, received = dcmtk_storescp_tls
    files = series(tmp_path / "in", count=2)
    meta = expect_ok({"op": "store", "input": [str(f) for f in files], "options": {**options, **client_tls(tls_pki)}})["metadata"]
    assert meta["completed"] == 2
    uids = sorted(str(dcmread(f).SOPInstanceUID) for f in files)
    assert sorted(str(dcmread(p).SOPInstanceUID) for p in received.iterdir()) == uids
    require_backend("dcmtk")
    assert expect_ok({"op": "store", "backend": "dcmtk", "input": str(files[0]), "options": {**options, **client_tls(tls_pki)}})["metadata"]["completed"] == 1
    # storescp wants a client certificate: without one, or with a rogue one, the handshake fails.
    data = expect_error({"op": "echo", "options": {**options, "tls": True, "tls_ca_file": tls_pki.file("ca")}}, "network_error")
    assert "DCMTKSCP@127.0.0.1" in data["error"]["message"]
    rogue = client_tls(tls_pki, tls_cert_file=tls_pki.file("rogue_cert"), tls_key_file=tls_pki.file("rogue_key"))
    assert "TLS" in expect_error({"op": "echo", "options": {**options, **rogue}}, "network_error")["error"]["message"]


# -- Orthanc (DicomTlsEnabled, Orthanc >= 1.9) -----------------------------------------------------


@pytest.fixture(scope="module")
def orthanc_tls(tls_pki, tmp_path_factory):
    """A second Orthanc that speaks only DICOM over TLS and requires client certificates from the test CA."""

    exe = orthanc_executable() or require_tool("Orthanc")
    root = tmp_path_factory.mktemp("orthanc-tls")
    port = free_port()
    worklists = root / "worklists" if WORKLIST_PLUGIN.exists() else None
    config = orthanc_config(port, root, {}, worklists)
    config.update({
        "DicomTlsEnabled": True,
        "DicomTlsCertificate": tls_pki.file("server_cert"),
        "DicomTlsPrivateKey": tls_pki.file("server_key"),
        "DicomTlsTrustedCertificates": tls_pki.file("ca"),
        "DicomTlsRemoteCertificateRequired": True,
    })
    if worklists is not None:
        write_worklist(worklists, sample_worklist())
    (root / "orthanc.json").write_text(json.dumps(config, indent=2))
    options = {"host": HOST, "port": port, "called_aet": "ORTHANC", "network_timeout": 10}

    def ready() -> bool:
        return run_request({"op": "echo", "options": {**options, **client_tls(tls_pki), "network_timeout": 2}})["ok"]

    proc = start_peer_process([exe, "--no-jobs", str(root / "orthanc.json")], root / "orthanc.log", ready, "Orthanc with DICOM TLS")
    try:
        yield options, worklists is not None
    finally:
        stop_process(proc)


def test_store_then_find_over_tls_with_orthanc(orthanc_tls, tls_pki, tmp_path):

    options, _ = orthanc_tls
    files = series(tmp_path / "in", count=2, PatientID="TLSFIND01")
    tls = {**options, **client_tls(tls_pki)}
    assert expect_ok({"op": "store", "input": [str(f) for f in files], "options": tls})["metadata"]["completed"] == 2
    found = expect_ok({"op": "find", "options": {**tls, "level": "SERIES", "query": {"PatientID": "TLSFIND01"}}})["metadata"]
    assert found["count"] == 1 and found["results"][0]["00100020"]["Value"] == ["TLSFIND01"]
    require_backend("dcmtk")
    found = expect_ok({"op": "find", "backend": "dcmtk", "options": {**tls, "level": "IMAGE", "query": {"PatientID": "TLSFIND01"}}})["metadata"]
    assert found["count"] == 2
    # Plain TCP is not served, and a client without a certificate is refused.
    expect_error({"op": "echo", "options": {**options, "network_timeout": 5}}, "network_error")
    expect_error({"op": "echo", "options": {**options, "tls": True, "tls_ca_file": tls_pki.file("ca")}}, "network_error")


def test_get_over_tls_with_orthanc(orthanc_tls, tls_pki, tmp_path):
    options, _ = orthanc_tls
    files = series(tmp_path / "in", count=2, PatientID="TLSGET01")
    tls = {**options, **client_tls(tls_pki)}
    assert expect_ok({"op": "store", "input": [str(f) for f in files], "options": tls})["metadata"]["completed"] == 2
    study = str(dcmread(files[0]).StudyInstanceUID)
    meta = expect_ok({"op": "get", "output": str(tmp_path / "got"), "options": {**tls, "query": {"StudyInstanceUID": study}}})["metadata"]
    assert meta["completed"] == 2
    got = sorted(str(dcmread(p).SOPInstanceUID) for p in (tmp_path / "got").rglob("*.dcm"))
    assert got == sorted(str(dcmread(f).SOPInstanceUID) for f in files)


def test_worklist_over_tls_with_orthanc(orthanc_tls, tls_pki):

    options, has_worklists = orthanc_tls
    if not has_worklists:
        missing("Orthanc's ModalityWorklists plugin")
    tls = {**options, **client_tls(tls_pki)}
    python = expect_ok({"op": "worklist", "options": {**tls, "modality": "CT"}})["metadata"]
    assert python["count"] == 2
    require_backend("dcmtk")
    dcmtk = expect_ok({"op": "worklist", "backend": "dcmtk", "options": {**tls, "modality": "CT"}})["metadata"]
    assert dcmtk["count"] == 2


# -- Backends without TLS refuse the options -------------------------------------------------------


@pytest.mark.parametrize(
    ("backend", "op"), [("dicom-rs", "echo"), ("dicom-rs", "store"), ("pixelmed", "echo"), ("pixelmed", "store"), ("dcmtk", "move"), ("dcmtk", "get")]
)
def test_backends_without_tls_refuse_the_tls_options(backend, op, tls_pki, tmp_path):

    options = {"host": "127.0.0.1", "port": 9, "tls": True, "tls_ca_file": tls_pki.file("ca")}
    request = {"op": op, "backend": backend, "options": options}
    if op == "store":
        request["input"] = "sample:CT_small.dcm"
    if op in ("move", "get"):
        options.update(query={"StudyInstanceUID": "1.2.3"}, **({"destination": "X"} if op == "move" else {}))
    if op == "get":
        request["output"] = str(tmp_path / "out")
    assert not get_adapter(backend).capabilities()[op].honours("tls")
    message = expect_error(request, "unsupported_option")["error"]["message"]
    assert "tls" in message


def test_dcmtk_refuses_a_key_password(tls_pki, monkeypatch):
    monkeypatch.setenv("HUB_TEST_KEY_PASSWORD", "x")
    options = {"host": "127.0.0.1", "port": 9, **client_tls(tls_pki), "tls_key_password_env": "HUB_TEST_KEY_PASSWORD"}
    assert "tls_key_password_env" in expect_error({"op": "echo", "backend": "dcmtk", "options": options}, "unsupported_option")["error"]["message"]


def test_scp_with_a_missing_or_half_tls_setup_does_not_start(tls_pki, tmp_path):
    base = [sys.executable, "-m", "dicom_hub.interface", "scp", "--port", str(free_port()), "--output", str(tmp_path / "out")]
    missing_key = subprocess.run([*base, "--tls-cert", tls_pki.file("server_cert"), "--tls-key", str(tmp_path / "nokey.pem")], capture_output=True, text=True, timeout=60)
    assert missing_key.returncode == 1 and "nokey.pem" in missing_key.stderr and "not found" in missing_key.stderr
    half = subprocess.run([*base, "--tls-cert", tls_pki.file("server_cert")], capture_output=True, text=True, timeout=60)
    assert half.returncode == 1 and "--tls-key" in half.stderr
    mismatched = subprocess.run([*base, "--tls-cert", tls_pki.file("server_cert"), "--tls-key", tls_pki.file("client_key")], capture_output=True, text=True, timeout=60)
    assert mismatched.returncode == 1 and "cannot load the certificate" in mismatched.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_sigterm_stops_a_tls_scp_while_a_client_stalls_in_the_handshake(hub_scp_factory, tls_pki):
    import time

    scp = tls_scp(hub_scp_factory, tls_pki)
    with socket.create_connection((scp.host, scp.port), timeout=30) as stalled:
        stalled.sendall(b"\x16\x03\x01")  # the start of a ClientHello, and then nothing
        time.sleep(0.5)
        started = time.monotonic()
        assert scp.stop() == 0
        assert time.monotonic() - started < 8
    assert "did not end" not in scp.log_text()  # the stalled connection's thread ended too
