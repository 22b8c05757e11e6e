"""The interface every backend implements, and how it declares what it can do.

An adapter declares its capabilities exactly: each op it serves with the options it honours,
and each op it cannot serve with the reason (a stub, as dicom-rs registers unsupported transfer
syntaxes). The dispatcher refuses anything outside the declaration, so nothing is silently ignored.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from functools import cached_property
from typing import ClassVar

from dicom_hub.contract.job import Job, Outcome


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run here; when not, why and how to install it."""

    ok: bool
    version: str | None = None
    reason: str | None = None
    hint: str | None = None


@dataclass(frozen=True)
class OpSupport:
    """How an adapter serves one op.

    `options`: the op options it honours (None: every option of the op).
    `note`: what a user should know, e.g. what a partial implementation keeps or leaves out.
    """

    options: frozenset[str] | None = None
    note: str = ""

    def honours(self, option: str) -> bool:
        return self.options is None or option in self.options


def supports(*options: str, note: str = "") -> OpSupport:
    """Shorthand for capability tables: `supports("frame", "format")`."""
    return OpSupport(frozenset(options), note)


ALL_OPTIONS = OpSupport()

# Op families only some backends serve, and why the others do not: one reason for every adapter
# (contract-native programs included) instead of a stub in each.
FAMILY_REASONS = {
    "dicomweb": "{name} has no DICOMweb (HTTP) client; backend python serves qido/wado/stow (pip install 'dicom-hub[dicomweb]')",
}


class Adapter(ABC):
    """A backend: something that turns a `Job` into an `Outcome` (or raises `HubError`)."""

    # Set by each class; a contract-native program's adapter sets its own per instance.
    name: str
    language: str
    toolkit: str
    install_hint: ClassVar[str] = ""
    # op -> reason, for ops of the catalog this backend cannot serve.
    unsupported: ClassVar[dict[str, str]] = {}

    @abstractmethod
    def probe(self) -> Availability:
        """Find out (once) whether the backend can run here."""

    @abstractmethod
    def capabilities(self) -> dict[str, OpSupport]:
        """Every op this backend serves, with the options it honours."""

    @abstractmethod
    def handle(self, job: Job) -> Outcome:
        """Run one validated job. Failures raise `HubError` with a contract error code."""

    @cached_property
    def availability(self) -> Availability:
        """The probe's answer; when the backend is missing, always with its install hint."""
        found = self.probe()
        if found.ok or found.hint:
            return found
        return replace(found, hint=self.install_hint)

    def available(self) -> bool:
        return self.availability.ok

    def version(self) -> str | None:
        return self.availability.version

    def support(self, op: str) -> OpSupport | None:
        return self.capabilities().get(op)

    def unsupported_reason(self, op: str) -> str:
        if op in self.unsupported:
            return self.unsupported[op]
        from dicom_hub.contract.catalog import load_catalog

        spec = load_catalog().get(op)
        reason = FAMILY_REASONS.get(spec.family) if spec is not None else None
        return reason.format(name=self.name) if reason else f"{self.name} does not implement {op!r}"
