"""DICOM over TLS (PS3.15 Annex B) between real peers on 127.0.0.1, with a throw-away CA (`tls_pki`):
our SCU against `dicom-hub scp --tls-*`, DCMTK's storescp +tls and Orthanc with DicomTlsEnabled;
DCMTK's SCUs against `dicom-hub scp`; and every way a certificate can be wrong, which must end
in a `network_error` that says so. Backends without TLS refuse the options."""

from __future__ import annotations

import pytest
from conftest import expect_error, expect_ok

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
    import socket

    scp = tls_scp(hub_scp_factory, tls_pki)
    with socket.create_connection((scp.host, scp.port), timeout=30):
        assert expect_ok(echo(scp, tls=True, tls_ca_file=tls_pki.file("ca"), network_timeout=5))["metadata"]["status"] == 0


def test_python_store_over_tls_keeps_the_files_intact(hub_scp_factory, tls_pki, tmp_path):
    from factories import series
    from pydicom import dcmread

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
    from tls_pki import PKI_PASSWORD

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
