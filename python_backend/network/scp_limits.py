"""The limits of `dicom-hub scp`, in a module of their own so the CLI can show defaults without
importing the network stack."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScpLimits:
    """What one peer (or many) may cost the SCP. Defaults suit a workstation-sized receiver."""

    max_associations: int = 32  # concurrent associations; the next one is rejected (local limit exceeded)
    max_pdu: int = 65536  # largest PDU we accept (our Maximum Length Received); 0 = no limit
    max_instance_bytes: int = 2 * 1024**3  # larger instances are refused with 0xA700 (Out of Resources)
    acse_timeout: float = 30.0  # seconds a new connection may wait before sending its association request
    idle_timeout: float = 60.0  # seconds an association may stay silent before it is aborted
    dimse_timeout: float = 60.0  # seconds to wait for the rest of a DIMSE message
