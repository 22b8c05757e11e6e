"""A throw-away PKI for DICOM over TLS, made with the `openssl` command line: the conformance
runner's "hub-scp-tls" peer and the TLS tests (`tests/tls_pki.py`) both make theirs here.

`make_ca` writes `<name>.pem` and `<name>_key.pem` (a self-signed CA); `make_leaf` writes
`<name>_cert.pem` and `<name>_key.pem` signed by a CA of the same folder. The keys are not
encrypted and the certificates expire in two days: they live only as long as a test run.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

DAYS = "2"
SERVER_SAN = "IP:127.0.0.1,DNS:localhost"


class PkiError(RuntimeError):
    """openssl is missing or one of its commands failed; the message has its stderr."""


def openssl_path() -> str:
    found = shutil.which("openssl")
    if found is None:
        raise PkiError("no `openssl` on PATH: install the openssl package to make test certificates")
    return found


def run_openssl(openssl: str, *args: str) -> None:
    run = subprocess.run([openssl, *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    if run.returncode != 0:
        raise PkiError(f"openssl {' '.join(args)} failed: {run.stderr}")


def make_ca(openssl: str, folder: Path, name: str, subject: str) -> None:
    run_openssl(
        openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", DAYS, "-subj", subject,
        "-keyout", str(folder / f"{name}_key.pem"), "-out", str(folder / f"{name}.pem"),
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )


def make_leaf(openssl: str, folder: Path, name: str, ca: str, subject: str, san: str) -> None:
    key, csr, ext = folder / f"{name}_key.pem", folder / f"{name}.csr", folder / f"{name}.ext"
    ext.write_text(f"subjectAltName={san}\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n")
    run_openssl(openssl, "req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", str(key), "-out", str(csr))
    run_openssl(
        openssl, "x509", "-req", "-in", str(csr), "-CA", str(folder / f"{ca}.pem"), "-CAkey", str(folder / f"{ca}_key.pem"),
        "-CAcreateserial", "-days", DAYS, "-extfile", str(ext), "-out", str(folder / f"{name}_cert.pem"),
    )


def make_server_pki(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1/localhost signed by it: (ca, cert, key)."""
    openssl = openssl_path()
    folder.mkdir(parents=True, exist_ok=True)
    make_ca(openssl, folder, "ca", "/CN=dicom-hub throw-away CA")
    make_leaf(openssl, folder, "server", "ca", "/CN=localhost", SERVER_SAN)
    return folder / "ca.pem", folder / "server_cert.pem", folder / "server_key.pem"
