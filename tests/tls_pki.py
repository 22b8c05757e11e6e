"""A throw-away PKI for the DICOM-over-TLS tests, made with the `openssl` command line.

`tls_pki` (session) -> `Pki` with PEM files in a temporary folder, `pki.file(name)` -> path:
    ca, server_cert/server_key (SAN IP:127.0.0.1 and DNS:localhost), client_cert/client_key,
    client_key_encrypted (password `PKI_PASSWORD`), wrong_host_cert/wrong_host_key (signed by the
    CA but named elsewhere.invalid), rogue_ca and rogue_cert/rogue_key (a second, untrusted CA).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

PKI_PASSWORD = "pki-test-password"


@dataclass(frozen=True)
class Pki:
    folder: Path

    def file(self, name: str) -> str:
        """The path of `<name>.pem`, e.g. file("ca"), file("server_cert"), file("client_key")."""
        path = self.folder / f"{name}.pem"
        assert path.is_file(), f"no {path.name} in the test PKI"
        return str(path)


def require_tool(name: str) -> str:
    from conftest import require_tool as require  # late: conftest imports this module

    return require(name)


def _openssl(openssl: str, *args: str) -> None:
    run = subprocess.run([openssl, *args], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, f"openssl {' '.join(args)} failed: {run.stderr}"


def _ca(openssl: str, folder: Path, name: str, subject: str) -> None:
    _openssl(
        openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", subject,
        "-keyout", str(folder / f"{name}_key.pem"), "-out", str(folder / f"{name}.pem"),
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )


def _leaf(openssl: str, folder: Path, name: str, ca: str, subject: str, san: str) -> None:
    key, csr, ext = folder / f"{name}_key.pem", folder / f"{name}.csr", folder / f"{name}.ext"
    ext.write_text(f"subjectAltName={san}\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n")
    _openssl(openssl, "req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", str(key), "-out", str(csr))
    _openssl(
        openssl, "x509", "-req", "-in", str(csr), "-CA", str(folder / f"{ca}.pem"), "-CAkey", str(folder / f"{ca}_key.pem"),
        "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(folder / f"{name}_cert.pem"),
    )


@pytest.fixture(scope="session")
def tls_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    openssl = require_tool("openssl")
    folder = tmp_path_factory.mktemp("pki")
    _ca(openssl, folder, "ca", "/CN=dicom-hub test CA")
    _ca(openssl, folder, "rogue_ca", "/CN=rogue CA")
    _leaf(openssl, folder, "server", "ca", "/CN=localhost", "IP:127.0.0.1,DNS:localhost")
    _leaf(openssl, folder, "client", "ca", "/CN=dicom-hub client", "DNS:client.invalid")
    _leaf(openssl, folder, "wrong_host", "ca", "/CN=elsewhere.invalid", "DNS:elsewhere.invalid")
    _leaf(openssl, folder, "rogue", "rogue_ca", "/CN=localhost", "IP:127.0.0.1,DNS:localhost")
    _openssl(
        openssl, "pkey", "-in", str(folder / "client_key.pem"), "-aes256", "-passout", f"pass:{PKI_PASSWORD}",
        "-out", str(folder / "client_key_encrypted.pem"),
    )
    return Pki(folder)
