"""Keyed pseudonyms: every replacement value is HMAC-SHA-256(key, kind + original).

Pure functions of (key, original), so the same original gets the same replacement in every file,
batch, worker process and run that uses the same key, and nobody without the key can rebuild the
mapping from a dictionary of MRNs or UIDs (an unkeyed hash could be reversed that way).
"""

from __future__ import annotations

import hashlib
import hmac

UID_ROOT = "2.25."
# Offsets are whole days (times of day stay as they are), between 1 and 10 years into the past.
MIN_OFFSET_DAYS = 365
OFFSET_SPAN_DAYS = 3286
# Standard UIDs (transfer syntaxes, SOP classes, well-known instances) identify nobody.
STANDARD_UID_ROOT = "1.2.840.10008."


class Pseudonymizer:
    """Replacement values under one key, remembered for the mapping report."""

    def __init__(self, key: bytes, patient_prefix: str = "ANON") -> None:
        self._key = key
        self.prefix = patient_prefix
        self.uids: dict[str, str] = {}
        self.patient_ids: dict[str, str] = {}
        self._patient_names: dict[str, str] = {}

    def _digest(self, kind: str, original: str) -> bytes:
        return hmac.new(self._key, f"{kind}\0{original}".encode(), hashlib.sha256).digest()

    def uid(self, original: str) -> str:
        """`2.25.<decimal of 128 keyed bits>` (at most 44 characters); standard UIDs unchanged."""
        original = original.strip().rstrip("\0")
        if not original or original.startswith(STANDARD_UID_ROOT):
            return original
        new = self.uids.get(original)
        if new is None:
            new = UID_ROOT + str(int.from_bytes(self._digest("uid", original)[:16], "big"))
            self.uids[original] = new
        return new

    def patient_id(self, original: str) -> str:
        original = original.strip()
        new = self.patient_ids.get(original)
        if new is None:
            new = self.prefix + self._digest("patient-id", original)[:8].hex().upper()
            self.patient_ids[original] = new
        return new

    def patient_name(self, patient_key: str) -> str:
        """A dummy name, the same for every file of a patient: `<prefix>^<8 hex>`."""
        name = self._patient_names.get(patient_key)
        if name is None:
            family = self.prefix or "ANON"
            name = self._patient_names[patient_key] = f"{family}^{self._digest('patient-name', patient_key)[:4].hex().upper()}"
        return name

    def forget(self) -> None:
        """Drop every value remembered (a long run's memory stays flat; the values do not change)."""
        self.uids.clear()
        self.patient_ids.clear()
        self._patient_names.clear()

    def date_offset_days(self, patient_key: str) -> int:
        """The per-patient shift applied under retain_modified_dates (negative: into the past)."""
        number = int.from_bytes(self._digest("date-offset", patient_key)[:4], "big")
        return -(MIN_OFFSET_DAYS + number % OFFSET_SPAN_DAYS)
