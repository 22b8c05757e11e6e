"""A Storage SCP (plus Verification and Query/Retrieve, see qr_scp.py): receive instances into
`<root>/<Study>/<Series>/<SOP>.dcm`.

Used by `dicom-hub scp`. It binds 127.0.0.1 unless told otherwise, refuses calling AE titles not
in the allow-list (when one is given), writes each instance atomically exactly as received, and
logs one line per association (peer, counts, how it ended) through `log`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._association import no_delay
from .storage import RejectedInstance, check_root, save_received

VERIFICATION = "1.2.840.10008.1.1"


@dataclass
class AssociationStats:
    peer: str
    stored: int = 0
    refused: int = 0
    echoes: int = 0
    first_refusal: str = ""


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
    stored_total: int = 0
    _stats: dict[int, AssociationStats] = field(default_factory=dict, repr=False)
    _server: Any = field(default=None, repr=False)
    _qr: Any = field(default=None, repr=False)  # QueryRetrieveService (qr_scp.py)

    def start(self) -> None:
        from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, evt
        from pynetdicom.presentation import AllStoragePresentationContexts

        self.root = check_root(self.root)
        ae = AE(ae_title=self.aet)
        for cx in AllStoragePresentationContexts:
            ae.add_supported_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(VERIFICATION, ALL_TRANSFER_SYNTAXES)
        if self.allow:
            ae.require_calling_aet = list(self.allow)
        # --- Query/Retrieve (qr_scp.py): index what is stored, answer C-FIND/C-GET/C-MOVE ---
        from .qr_scp import QueryRetrieveService, parse_destination

        destinations = {d.aet: d for d in map(parse_destination, self.move_destinations)}
        self._qr = QueryRetrieveService(self.root, self.aet, destinations, self.log)
        self._qr.configure(ae)
        # --- end Query/Retrieve ---
        handlers = [
            (evt.EVT_CONN_OPEN, no_delay),
            (evt.EVT_ESTABLISHED, self._on_established),
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_RELEASED, self._on_end, ["released"]),
            (evt.EVT_ABORTED, self._on_end, ["aborted"]),
            (evt.EVT_REJECTED, self._on_rejected),
            *self._qr.handlers(),
        ]
        self._server = ae.start_server((self.host, self.port), block=False, evt_handlers=handlers)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        if self._qr is not None:
            self._qr.close()
            self._qr = None

    # Event handlers (run in each association's thread).

    def _on_established(self, event: Any) -> None:
        self._stats[id(event.assoc)] = AssociationStats(_peer(event.assoc))

    def _on_store(self, event: Any) -> int:
        stats = self._stats.setdefault(id(event.assoc), AssociationStats(_peer(event.assoc)))
        try:
            stored = save_received(event, self.root, self.overwrite)
            self._qr.indexed(stored.path)  # Query/Retrieve: the index follows every stored file
        except RejectedInstance as err:
            stats.refused += 1
            stats.first_refusal = stats.first_refusal or str(err)
            return err.status
        stats.stored += 1
        self.stored_total += 1
        return 0x0000

    def _on_echo(self, event: Any) -> int:
        self._stats.setdefault(id(event.assoc), AssociationStats(_peer(event.assoc))).echoes += 1
        return 0x0000

    def _on_end(self, event: Any, how: str) -> None:
        stats = self._stats.pop(id(event.assoc), None)
        if stats is None:
            return
        refusals = f" (first: {stats.first_refusal})" if stats.refused else ""
        self.log(f"{_now()} association {stats.peer}: {stats.stored} stored, {stats.refused} refused{refusals}, {stats.echoes} echo; {how}")

    def _on_rejected(self, event: Any) -> None:
        self.log(f"{_now()} association {_peer(event.assoc)}: rejected (calling AE title not in the allow-list)")


def _peer(assoc: Any) -> str:
    requestor = assoc.requestor
    return f"{requestor.ae_title}@{requestor.address}:{requestor.port}"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
