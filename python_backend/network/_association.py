"""Opening an association with a peer, and turning every way it can fail into `network_error`.

pynetdicom reports refusals, unreachable hosts and timeouts through its log rather than through
exceptions, so the log records of the attempt are captured and become the error message (with
the peer's own result, source and reason for a rejection).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dicom_hub.contract.dicom.network.status import status_info
from dicom_hub.contract.dicom.network.tls import TlsSettings, is_tls_failure
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.job import Job

if TYPE_CHECKING:
    from pydicom import Dataset
    from pynetdicom.association import Association

MAX_CONTEXTS = 128  # PS3.8: presentation context IDs are odd numbers 1..255


@dataclass(frozen=True)
class Peer:
    """Where to connect and how long to wait: the connection options of every network op."""

    host: str
    port: int
    called_aet: str
    calling_aet: str
    network_timeout: float
    dimse_timeout: float
    deadline: float | None = None  # time.monotonic() value from options.timeout
    tls: TlsSettings | None = None  # DICOM over TLS when set

    @classmethod
    def from_job(cls, job: Job) -> Peer:
        total = job.option("timeout")
        deadline = time.monotonic() + float(total) if total else None
        network, dimse = float(job.option("network_timeout")), float(job.option("dimse_timeout"))
        if total:  # no single wait may outlast the whole op
            network, dimse = min(network, float(total)), min(dimse, float(total))
        return cls(
            job.option("host"), int(job.option("port")), job.option("called_aet"), job.option("calling_aet"), network, dimse, deadline, TlsSettings.from_job(job)
        )

    @property
    def address(self) -> str:
        return f"{self.called_aet}@{self.host}:{self.port}"

    @property
    def out_of_time(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def check_deadline(self, doing: str) -> None:
        """Raise `timeout` when options.timeout has run out (checked between DIMSE messages)."""
        if self.out_of_time:
            raise HubError(ErrorCode.TIMEOUT, f"{doing} with {self.address} did not finish within options.timeout", "raise options.timeout")

    def wait_error(self, message: str, hint: str) -> HubError:
        """A wait that failed: `timeout` when options.timeout ran out meanwhile, else `network_error`."""
        if self.out_of_time:
            return HubError(ErrorCode.TIMEOUT, f"{message} (options.timeout ran out)", "raise options.timeout")
        return HubError(ErrorCode.NETWORK_ERROR, message, hint)


class _LogCapture(logging.Handler):
    """Collect pynetdicom's warnings and errors during one association attempt."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextmanager
def captured_log() -> Iterator[_LogCapture]:
    logger = logging.getLogger("pynetdicom")
    handler = _LogCapture()
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def make_ae(peer: Peer) -> Any:
    from pynetdicom import AE

    ae = AE(ae_title=peer.calling_aet)
    ae.connection_timeout = peer.network_timeout
    ae.acse_timeout = peer.network_timeout
    ae.network_timeout = peer.network_timeout
    ae.dimse_timeout = peer.dimse_timeout
    return ae


def no_delay(event: Any) -> None:
    """EVT_CONN_OPEN handler: turn Nagle's algorithm off, as DCMTK does. pynetdicom leaves it on,
    and the last small segment of each message then waits for the peer's delayed ACK (~40 ms)."""
    import socket

    sock = getattr(event.assoc.dul.socket, "socket", None)
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@contextmanager
def associate(
    peer: Peer, contexts: Sequence[Any], *, ext_neg: Sequence[Any] | None = None, evt_handlers: Sequence[Any] | None = None
) -> Iterator[Association]:
    """An established association proposing `contexts`, released (or aborted on error) at the end."""
    if len(contexts) > MAX_CONTEXTS:
        raise HubError(ErrorCode.INVALID_REQUEST, f"{len(contexts)} presentation contexts needed, at most {MAX_CONTEXTS} fit in one association", "send fewer kinds of files at once")
    from pynetdicom import evt

    ae = make_ae(peer)
    handlers = [(evt.EVT_CONN_OPEN, no_delay), *(evt_handlers or [])]
    tls_args = (peer.tls.client_context(), peer.host) if peer.tls else None
    with captured_log() as log:
        try:
            assoc = ae.associate(
                peer.host, peer.port, contexts=list(contexts), ae_title=peer.called_aet, ext_neg=list(ext_neg or []), evt_handlers=handlers, tls_args=tls_args
            )
        except OSError as err:  # the host name does not resolve (raised before any connection)
            raise HubError(ErrorCode.NETWORK_ERROR, f"{peer.address} could not be reached: {peer.host!r}: {err.strerror or err}", "check the host name") from None
    if not assoc.is_established:
        error = association_error(peer, assoc, log.lines)
        assoc.kill()  # stop its thread now: a lingering one would disturb the next association
        raise error
    try:
        yield assoc
    except BaseException:
        assoc.abort()
        raise
    if assoc.is_established:
        assoc.release()


def association_error(peer: Peer, assoc: Association, log_lines: list[str]) -> HubError:
    """Why the association was not established, in the peer's and the OS's words."""
    detail = "; ".join(dict.fromkeys(line for line in log_lines if line and not line.startswith("Association request failed")))
    if assoc.is_rejected:
        what, hint = "refused the association", "check called_aet/calling_aet: the peer may only accept known AE titles"
    elif peer.tls is not None and is_tls_failure(detail):
        what, hint = "failed the TLS handshake", "check tls_ca_file (the CA that signed the peer's certificate), that the certificate names the host, and tls_cert_file/tls_key_file if the peer wants ours"
    elif "timeout" in detail.lower() or "timed out" in detail.lower():
        what, hint = "did not answer in time", "check that host and port are a DICOM service, or raise network_timeout"
    elif "TCP Initialisation Error" in detail:
        what, hint = "could not be reached", "check host and port, and that the peer is running"
    else:
        what, hint = "aborted the association request", "check the peer's log" + ("" if peer.tls else ", and whether it requires TLS (options.tls)")
    return peer.wait_error(f"{peer.address} {what}: {detail or 'no reason given'}", hint)


def dimse_failure(peer: Peer, service: str, status: Dataset | None) -> HubError:
    """A DIMSE request answered with a failure status, or not answered at all."""
    info = status_info(status, service)
    if info["status"] is None:
        return peer.wait_error(f"{service} to {peer.address}: no response within {peer.dimse_timeout:g} s (or the peer aborted)", "raise dimse_timeout, or check the peer's log")
    return HubError(ErrorCode.NETWORK_ERROR, f"{service} to {peer.address} failed with status {info['status_hex']} ({info['category']}): {info['text']}", "check the query keys and the peer's log")
