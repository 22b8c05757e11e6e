"""DICOM over TLS (PS3.15 Annex B): the TLS options of the network ops and of `dicom-hub scp`, checked
once and turned into `ssl.SSLContext`s for pynetdicom (the DCMTK adapter reads the same settings).

Certificates and keys are named by file path; a key password only comes from an environment
variable named in the options, never from the request itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dicom_hub.contract.errors import ErrorCode, HubError

if TYPE_CHECKING:
    import ssl

    from dicom_hub.contract.job import Job

_TLS_FILES = ("tls_ca_file", "tls_cert_file", "tls_key_file", "tls_key_password_env")  # meaningless without tls
# Words in OpenSSL/ssl errors that mean "the certificates did not check out" (rather than "no route").
_CERTIFICATE_WORDS = ("CERTIFICATE", "certificate", "SSL", "TLS", "handshake", "hostname", "self-signed", "self signed")


@dataclass(frozen=True)
class TlsSettings:
    """Where our certificate/key and the trusted CAs are, and whether to verify the peer."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    key_password_env: str | None = None
    verify: bool = True

    @classmethod
    def from_job(cls, job: Job) -> TlsSettings | None:
        """The job's TLS settings, or None when `tls` is off (TLS options without `tls` are an error)."""
        given = [name for name in _TLS_FILES if job.option(name) is not None]
        if not job.option("tls"):
            if given:
                raise HubError(ErrorCode.INVALID_REQUEST, f"option(s) {', '.join(given)} need tls: true", "set options.tls to true, or remove the TLS options")
            return None
        return cls.checked(
            job.option("tls_ca_file"), job.option("tls_cert_file"), job.option("tls_key_file"), job.option("tls_key_password_env"), bool(job.option("tls_verify"))
        )

    @classmethod
    def checked(cls, ca: str | None, cert: str | None, key: str | None, password_env: str | None = None, verify: bool = True) -> TlsSettings:
        """Settings whose files exist (as absolute paths, so none can look like a command-line option)."""
        if (cert is None) != (key is None):
            raise HubError(ErrorCode.INVALID_REQUEST, "a TLS certificate needs its private key and the other way round", "give both tls_cert_file and tls_key_file")
        if password_env is not None and key is None:
            raise HubError(ErrorCode.INVALID_REQUEST, "a key password is only used with a private key", "give tls_key_file, or drop tls_key_password_env")
        if password_env is not None and password_env not in os.environ:
            raise HubError(ErrorCode.INVALID_REQUEST, f"environment variable {password_env} (tls_key_password_env) is not set", f"export {password_env} with the key's password")
        return cls(_existing(ca, "CA certificate"), _existing(cert, "certificate"), _existing(key, "private key"), password_env, verify)

    @property
    def key_password(self) -> str | None:
        return os.environ.get(self.key_password_env) if self.key_password_env else None

    def client_context(self) -> ssl.SSLContext:
        """For an SCU: verify the server (chain and host name) unless `verify` is off; offer our certificate if any."""
        import ssl

        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2  # BCP 195, as DCMTK's default profile
        self._load(context, self.ca_file, "tls_ca_file")
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        self._load_own(context)
        return context

    def server_context(self) -> ssl.SSLContext:
        """For an SCP: present our certificate; with a CA file, require client certificates signed by it."""
        import ssl

        if self.cert_file is None:
            raise HubError(ErrorCode.INVALID_REQUEST, "a TLS server needs a certificate and its private key", "give --tls-cert and --tls-key")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._load_own(context)
        if self.ca_file is not None:
            self._load(context, self.ca_file, "--tls-ca")
            context.verify_mode = ssl.CERT_REQUIRED if self.verify else ssl.CERT_OPTIONAL
        return context

    def _load(self, context: ssl.SSLContext, ca_file: Path | None, name: str) -> None:
        import ssl

        if ca_file is None:
            return
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (ssl.SSLError, OSError, ValueError) as err:
            raise HubError(ErrorCode.INVALID_REQUEST, f"cannot load CA certificates from {ca_file} ({name}): {err}", "give a PEM file of CA certificates") from None

    def _load_own(self, context: ssl.SSLContext) -> None:
        import ssl

        if self.cert_file is None or self.key_file is None:
            return
        try:
            context.load_cert_chain(str(self.cert_file), str(self.key_file), password=self.key_password)
        except (ssl.SSLError, OSError, ValueError) as err:
            raise HubError(
                ErrorCode.INVALID_REQUEST,
                f"cannot load the certificate {self.cert_file} with key {self.key_file}: {err}",
                "give a PEM certificate and its matching key (an encrypted key needs tls_key_password_env)",
            ) from None


def _existing(path: str | None, what: str) -> Path | None:
    if path is None:
        return None
    resolved = Path(path).expanduser().absolute()
    if not resolved.is_file():
        raise HubError(ErrorCode.INPUT_NOT_FOUND, f"TLS {what} file not found: {resolved}", "check the path (it is read on this machine)")
    return resolved


def is_tls_failure(detail: str) -> bool:
    """Whether a connection failure's text is about TLS (certificates, handshake) rather than reachability."""
    return any(word in detail for word in _CERTIFICATE_WORDS)
