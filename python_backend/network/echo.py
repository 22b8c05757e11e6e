"""`echo`: C-ECHO (Verification) to check that a peer is there and talks DICOM."""

from __future__ import annotations

import time

from dicom_hub.contract.dicom.network.status import status_info
from dicom_hub.contract.job import Job, Outcome

from ._association import Peer, associate, dimse_failure

VERIFICATION = "1.2.840.10008.1.1"


def echo(job: Job) -> Outcome:
    from pynetdicom.presentation import build_context

    peer = Peer.from_job(job)
    start = time.perf_counter()
    with associate(peer, [build_context(VERIFICATION)]) as assoc:
        connected = time.perf_counter()
        status = assoc.send_c_echo()
        answered = time.perf_counter()
        implementation = assoc.acceptor.implementation_version_name
    info = status_info(status)
    if info["status"] != 0:
        raise dimse_failure(peer, "C-ECHO", status)
    return Outcome(
        metadata={
            **info,
            "peer": {"host": peer.host, "port": peer.port, "called_aet": peer.called_aet, "implementation_version_name": implementation},
            "round_trip_ms": round((answered - connected) * 1000, 3),
            "association_ms": round((connected - start) * 1000, 3),
        }
    )
