"""A Storage SCP (plus Verification and Query/Retrieve, see qr_scp.py): receive instances into
`<root>/<Study>/<Series>/<SOP>.dcm`.

Used by `dicom-hub scp`. It binds 127.0.0.1 unless told otherwise, refuses calling AE titles not
in the allow-list (when one is given), enforces the limits of `ScpLimits`, writes each instance
atomically exactly as received, and logs one line per association (peer, counts, how it ended)
or per refusal (with the true reason) through `log`.

Received data sets are streamed to a private temporary folder (pynetdicom's chunked receive),
never held whole in memory: an instance over the size limit is refused with 0xA700 once
received, and a transfer still going on past twice the limit is cut (A-ABORT) so that one peer
cannot fill the disk. `stop()` aborts open associations and removes that folder.

Extending: `build_ae()` makes the AE with its presentation contexts and `event_handlers()` lists
the (event, handler) pairs; a subclass or a caller can add services (e.g. Query/Retrieve) to both.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicom_hub.contract.dicom.network.storage import OUT_OF_RESOURCES, RejectedInstance, check_root

from ._association import no_delay
from .scp_limits import ScpLimits
from .storage import save_received

if TYPE_CHECKING:
    import ssl

VERIFICATION = "1.2.840.10008.1.1"
STOP_GRACE_S = 5.0  # how long stop() waits for aborted associations' threads


# (result source, diagnostic) of an A-ASSOCIATE-RJ -> why, in words (PS3.8 section 9.3.4).
_REJECT_REASONS: dict[tuple[int | None, int | None], str] = {
    (1, 1): "no reason given",
    (1, 2): "application context name not supported",
    (1, 3): "calling AE title not in the allow-list",
    (1, 7): "called AE title not recognised",
    (2, 1): "user identity refused",
    (2, 2): "protocol version not supported",
    (3, 1): "temporary congestion",
}


@dataclass
class AssociationStats:
    peer: str
    stored: int = 0
    refused: int = 0
    echoes: int = 0
    first_refusal: str = ""
    cut: str = ""  # why we aborted the association, if we did


@dataclass
class StorageSCP:
    """Receive C-STORE and C-ECHO requests until `stop()`; `start()` returns once listening."""

    root: Path
    port: int
    host: str = "127.0.0.1"
    aet: str = "DICOM-HUB"
    allow: Sequence[str] = ()
    log: Callable[[str], None] = print
    overwrite: bool = True  # a re-sent instance (same SOP Instance UID) replaces the earlier copy
    move_destinations: Sequence[str] = ()  # "AET=host:port" C-MOVE destinations of the Q/R service
    limits: ScpLimits = field(default_factory=ScpLimits)
    ssl_context: ssl.SSLContext | None = None  # DICOM over TLS (see tls.py); None = plain TCP
    stored_total: int = 0
    _stats: dict[int, AssociationStats] = field(default_factory=dict, repr=False)
    _server: Any = field(default=None, repr=False)
    _qr: Any = field(default=None, repr=False)  # QueryRetrieveService (qr_scp.py)
    _incoming: Path | None = field(default=None, repr=False)
    _stopping: bool = field(default=False, repr=False)
    _opened: dict[int, float] = field(default_factory=dict, repr=False)  # connection -> time.monotonic() at open
    _restore: tuple[bool, str | None] = field(default=(False, None), repr=False)  # pynetdicom/tempfile settings before start()
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def start(self) -> None:
        from pynetdicom import _config

        self.root = check_root(self.root)
        # Received data sets go to temporary files (not memory); keep them in a folder of our own
        # so that an aborted transfer leaves nothing behind once stop() removes it.
        self._restore = (_config.STORE_RECV_CHUNKED_DATASET, tempfile.tempdir)
        _config.STORE_RECV_CHUNKED_DATASET = True
        self._incoming = Path(tempfile.mkdtemp(prefix="dicom-hub-scp-"))
        tempfile.tempdir = str(self._incoming)
        ae = self.build_ae()
        self._server = ae.start_server((self.host, self.port), block=False, evt_handlers=self.event_handlers(), ssl_context=self.ssl_context)
        if self.ssl_context is not None:
            self._server.get_request = _accept_with_deferred_handshake(self._server)

    def build_ae(self) -> Any:
        """The AE: our title, limits, timeouts and presentation contexts (Storage + Verification)."""
        from pynetdicom import AE, ALL_TRANSFER_SYNTAXES
        from pynetdicom.presentation import AllStoragePresentationContexts

        ae = AE(ae_title=self.aet)
        for cx in AllStoragePresentationContexts:
            assert cx.abstract_syntax is not None, "pynetdicom's storage contexts each name a SOP class"
            ae.add_supported_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(VERIFICATION, ALL_TRANSFER_SYNTAXES)
        if self.allow:
            ae.require_calling_aet = list(self.allow)
        ae.maximum_associations = self.limits.max_associations
        ae.maximum_pdu_size = self.limits.max_pdu
        ae.acse_timeout = self.limits.acse_timeout
        ae.network_timeout = self.limits.idle_timeout
        ae.dimse_timeout = self.limits.dimse_timeout
        # --- Query/Retrieve (qr_scp.py): index what is stored, answer C-FIND/C-GET/C-MOVE ---
        from .qr_scp import QueryRetrieveService, parse_destination

        destinations = {d.aet: d for d in map(parse_destination, self.move_destinations)}
        self._qr = QueryRetrieveService(self.root, self.aet, destinations, self.log)
        self._qr.configure(ae)
        # --- end Query/Retrieve ---
        return ae

    def event_handlers(self) -> list[tuple[Any, ...]]:
        """(event, handler[, args]) pairs bound to every association."""
        from pynetdicom import evt

        return [
            (evt.EVT_CONN_OPEN, no_delay),
            (evt.EVT_CONN_OPEN, self._on_conn_open),
            (evt.EVT_CONN_CLOSE, self._on_conn_close),
            (evt.EVT_ESTABLISHED, self._on_established),
            (evt.EVT_DATA_RECV, self._on_data),
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_RELEASED, self._on_end, ["released"]),
            (evt.EVT_ABORTED, self._on_end, ["aborted"]),
            (evt.EVT_REJECTED, self._on_rejected),
            *self._qr.handlers(),
        ]

    def stop(self) -> int:
        """Stop listening, end every open association (A-ABORT, or closing a connection that has
        none yet), and wait a few seconds for their threads. Returns how many are still running:
        a thread blocked in the network that a closed socket did not wake (the caller may exit anyway)."""
        if self._server is None:
            return 0
        self._stopping = True
        server, self._server = self._server, None
        associations = list(server.active_associations)
        server.shutdown()  # no new connections from here on
        # Ending an association can block (a peer stalled mid-handshake): do it in helper threads.
        enders = [threading.Thread(target=_end_association, args=(assoc,), daemon=True) for assoc in associations]
        for ender in enders:
            ender.start()
        deadline = time.monotonic() + STOP_GRACE_S
        for thread in [*enders, *associations]:
            thread.join(max(0.0, deadline - time.monotonic()))
        lingering = sum(assoc.is_alive() for assoc in associations)
        if self._qr is not None:
            self._qr.close()
            self._qr = None
        if self._incoming is not None:
            from pynetdicom import _config

            _config.STORE_RECV_CHUNKED_DATASET, tempfile.tempdir = self._restore
            shutil.rmtree(self._incoming, ignore_errors=True)
            self._incoming = None
        return lingering

    # Event handlers (run in each association's thread).

    def _on_established(self, event: Any) -> None:
        self._stats[id(event.assoc)] = AssociationStats(_peer(event.assoc))

    def _on_store(self, event: Any) -> int:
        stats = self._stats.setdefault(id(event.assoc), AssociationStats(_peer(event.assoc)))
        try:
            self._check_size(event)
            stored = save_received(event, self.root, self.overwrite)
            self._qr.indexed(stored.path)  # Query/Retrieve: the index follows every stored file
        except RejectedInstance as err:
            stats.refused += 1
            stats.first_refusal = stats.first_refusal or str(err)
            return err.status
        with self._lock:
            stats.stored += 1
            self.stored_total += 1
        return 0x0000

    def _on_data(self, event: Any) -> None:
        """Cut a transfer that goes on past twice the instance size limit, so that a peer cannot fill
        the disk with one endless instance (smaller excesses are refused with a status once received)."""
        limit = self.limits.max_instance_bytes
        receiving = getattr(event.assoc.dimse.message, "_data_set_file", None)
        if not limit or receiving is None or receiving.closed or receiving.tell() <= 2 * limit:
            return
        stats = self._stats.get(id(event.assoc))
        if stats is not None and not stats.cut:
            stats.cut = f"instance still arriving after {receiving.tell()} bytes, twice the limit of {limit} bytes (--max-instance-size)"
            event.assoc.abort(block=False)

    def _check_size(self, event: Any) -> None:
        size = _received_size(event)
        limit = self.limits.max_instance_bytes
        if limit and size > limit:
            raise RejectedInstance(OUT_OF_RESOURCES, f"instance of {size} bytes is larger than the limit of {limit} bytes (--max-instance-size)")

    def _on_echo(self, event: Any) -> int:
        self._stats.setdefault(id(event.assoc), AssociationStats(_peer(event.assoc))).echoes += 1
        return 0x0000

    def _on_end(self, event: Any, how: str) -> None:
        stats = self._stats.pop(id(event.assoc), None)
        if stats is None:
            return
        if stats.cut:
            how = f"aborted ({stats.cut})"
            _remove_partial(event.assoc)
        elif how == "aborted" and self._stopping:
            how = "aborted (server stopping)"
        elif how == "aborted" and event.assoc.dul.idle_timer_expired():
            how = f"aborted (idle for {self.limits.idle_timeout:g} s)"
        refusals = f" (first: {stats.first_refusal})" if stats.refused else ""
        self.log(f"{_now()} association {stats.peer}: {stats.stored} stored, {stats.refused} refused{refusals}, {stats.echoes} echo; {how}")

    def _on_rejected(self, event: Any) -> None:
        self.log(f"{_now()} association {_peer(event.assoc)}: rejected ({self._reject_reason(event.assoc)})")

    def _reject_reason(self, assoc: Any) -> str:
        answer = assoc.acceptor.primitive
        key = (getattr(answer, "result_source", None), getattr(answer, "diagnostic", None))
        if key == (3, 2):
            return f"association limit reached: {self.limits.max_associations} open (--max-associations)"
        return _REJECT_REASONS.get(key, f"result source {key[0]}, diagnostic {key[1]}")

    def _on_conn_open(self, event: Any) -> None:
        self._opened[id(event.assoc)] = time.monotonic()

    def _on_conn_close(self, event: Any) -> None:
        """Log connections that ended without an association request (the others log their association)."""
        opened = self._opened.pop(id(event.assoc), time.monotonic())
        if event.assoc.requestor.primitive is not None or self._stopping:
            return
        if time.monotonic() - opened >= self.limits.acse_timeout - 0.5:
            why = f"no association request within {self.limits.acse_timeout:g} s (--acse-timeout)"
        elif self.ssl_context is not None:
            why = "dropped before an association request (TLS handshake failed, e.g. an untrusted or missing certificate, or plain TCP)"
        else:
            why = "dropped by the peer before an association request"
        address = event.assoc.requestor
        self.log(f"{_now()} connection {address.address}:{address.port}: closed, {why}")


def _remove_partial(assoc: Any) -> None:
    """Delete the temporary file of a data set whose transfer was cut (pynetdicom leaves it)."""
    path = getattr(assoc.dimse.message, "_data_set_path", None)
    if path:
        with contextlib.suppress(OSError):
            Path(path).unlink()


def _end_association(assoc: Any) -> None:
    """A-ABORT an established association; close the connection of one still being set up first,
    so that a read blocked on it returns and the association's thread can end."""
    import socket

    if assoc.is_established:
        assoc.abort()
        return
    sock = getattr(assoc.dul.socket, "socket", None)
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed
            sock.shutdown(socket.SHUT_RDWR)
    assoc.dul.to_user_queue.put(None)  # wakes a thread waiting for the association request ("timed out")
    assoc.kill()


def _accept_with_deferred_handshake(server: Any) -> Callable[[], tuple[Any, Any]]:
    """pynetdicom does the TLS handshake in its accept loop, so one client that connects and says
    nothing blocks every other client. Accept at once instead, and let the handshake happen on
    the association's first read, in its own thread."""

    def get_request() -> tuple[Any, Any]:
        sock, address = server.socket.accept()
        sock.settimeout(server.ae.network_timeout)  # a stalled handshake ends after the idle timeout
        return server.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    return get_request


def _received_size(event: Any) -> int:
    """Bytes of the received data set: on disk (chunked receive) or in memory."""
    try:
        return event.dataset_path.stat().st_size
    except (AttributeError, TypeError, OSError):
        return len(event.request.DataSet.getvalue())


def _peer(assoc: Any) -> str:
    requestor = assoc.requestor
    return f"{requestor.ae_title}@{requestor.address}:{requestor.port}"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
