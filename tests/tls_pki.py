"""A throw-away PKI for the DICOM-over-TLS tests, made with the `openssl` command line.

`tls_pki` (session) -> `Pki` with PEM files in a temporary folder, `pki.file(name)` -> path:
    ca, server_cert/server_key (SAN IP:127.0.0.1 and DNS:localhost), client_cert/client_key,
    client_key_encrypted (password `PKI_PASSWORD`), wrong_host_cert/wrong_host_key (signed by the
    CA but named elsewhere.invalid), rogue_ca and rogue_cert/rogue_key (a second, untrusted CA).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from dicom_hub.adapters.conformance.tls_pki import SERVER_SAN, make_ca, make_leaf, run_openssl

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


@pytest.fixture(scope="session")
def tls_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    openssl = require_tool("openssl")
    folder = tmp_path_factory.mktemp("pki")
    make_ca(openssl, folder, "ca", "/CN=dicom-hub test CA")
    make_ca(openssl, folder, "rogue_ca", "/CN=rogue CA")
    make_leaf(openssl, folder, "server", "ca", "/CN=localhost", SERVER_SAN)
    make_leaf(openssl, folder, "client", "ca", "/CN=dicom-hub client", "DNS:client.invalid")
    make_leaf(openssl, folder, "wrong_host", "ca", "/CN=elsewhere.invalid", "DNS:elsewhere.invalid")
    make_leaf(openssl, folder, "rogue", "rogue_ca", "/CN=localhost", SERVER_SAN)
    run_openssl(
        openssl, "pkey", "-in", str(folder / "client_key.pem"), "-aes256", "-passout", f"pass:{PKI_PASSWORD}",
        "-out", str(folder / "client_key_encrypted.pem"),
    )
    return Pki(folder)
