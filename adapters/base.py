"""The interface every backend implements, and how it declares what it can do.

Each adapter declares its ops as data: one table with an entry for every op of the catalog, either
`OpSupport` (the options it honours, the handler that runs the op, a note) or `Unsupported` (a stub
with the reason, as dicom-rs registers unsupported transfer syntaxes). The registry checks the table
against the catalog when it loads the adapter; the dispatcher refuses anything outside it, so
nothing is silently ignored; `dicom-hub ops` and the README's backend matrix are read from it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import ClassVar

from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.job import Job, Outcome

Handler = Callable[[Job], Outcome]


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
    `handler`: the function or bound method that runs the op (named in the table, never looked up by name).
    `note`: what a user should know, e.g. what a partial implementation keeps or leaves out.
    """

    options: frozenset[str] | None
    handler: Handler = field(compare=False, repr=False)
    note: str = ""

    def honours(self, option: str) -> bool:
        return self.options is None or option in self.options


@dataclass(frozen=True)
class Unsupported:
    """A stub: an op of the catalog the adapter does not serve, and why."""

    reason: str


OpEntry = OpSupport | Unsupported


def supports(*options: str, handler: Handler, note: str = "") -> OpSupport:
    """Shorthand for op tables: `supports("frame", "format", handler=self._to_image)`."""
    return OpSupport(frozenset(options), handler, note)


# Op families only some backends serve, and why the others do not: one reason for every adapter
# (contract-native programs included) instead of a text in each.
FAMILY_REASONS = {
    "dicomweb": "{name} has no DICOMweb (HTTP) client; backend python serves qido/wado/stow (pip install 'dicom-hub[dicomweb]')",
}
# Ops that only backend python serves: the batch executors and the volume builders are its own code,
# and no toolkit here has a DICOMweb client. Every other built-in adapter stubs them with `python_only`.
PYTHON_ONLY_OPS = (
    "batch_list", "batch_validate", "batch_decompress", "batch_convert", "organize", "extract_metadata", "batch_anonymize",
    "volume", "nifti",
    "qido", "wado", "stow",
)


def default_reason(name: str, op: str) -> str:
    """Why backend `name` does not serve `op`, when it says nothing more specific."""
    from dicom_hub.contract.catalog import load_catalog

    spec = load_catalog().get(op)
    reason = FAMILY_REASONS.get(spec.family) if spec is not None else None
    return reason.format(name=name) if reason else f"{name} does not implement {op!r}"


def is_network_op(op: str) -> bool:
    """Whether `op` talks to a DICOM peer (the catalog's network family)."""
    from dicom_hub.contract.catalog import load_catalog

    return load_catalog()[op].family == "network"


def python_only(name: str) -> dict[str, Unsupported]:
    """The stubs of `PYTHON_ONLY_OPS` for backend `name`."""
    return {op: Unsupported(default_reason(name, op)) for op in PYTHON_ONLY_OPS}


class Adapter(ABC):
    """A backend: something that turns a `Job` into an `Outcome` (or raises `HubError`)."""

    # Set by each class; a contract-native program's adapter sets its own per instance.
    name: str
    language: str
    toolkit: str
    install_hint: ClassVar[str] = ""

    @abstractmethod
    def probe(self) -> Availability:
        """Find out (once) whether the backend can run here."""

    @abstractmethod
    def declare_ops(self) -> dict[str, OpEntry]:
        """The op table: every op of the catalog, as `OpSupport` (served) or `Unsupported` (a stub).

        The registry checks it when it loads the adapter (`registry.check_op_table`)."""

    @cached_property
    def op_table(self) -> dict[str, OpEntry]:
        """`declare_ops()`, built once per adapter."""
        return self.declare_ops()

    def handle(self, job: Job) -> Outcome:
        """Run one validated job through its handler. Failures raise `HubError` with a contract error code."""
        return self.handler(job.op)(job)

    def handler(self, op: str) -> Handler:
        """The handler the table names for `op`; a stub's reason as `unsupported_op`."""
        entry = self.op_table.get(op)
        if not isinstance(entry, OpSupport):
            raise HubError(ErrorCode.UNSUPPORTED_OP, self.unsupported_reason(op))
        return entry.handler

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

    def capabilities(self) -> dict[str, OpSupport]:
        """Every op this backend serves, with the options it honours."""
        return {op: entry for op, entry in self.op_table.items() if isinstance(entry, OpSupport)}

    @property
    def unsupported(self) -> dict[str, str]:
        """op -> reason, for the ops of the catalog this backend does not serve."""
        return {op: entry.reason for op, entry in self.op_table.items() if isinstance(entry, Unsupported)}

    def support(self, op: str) -> OpSupport | None:
        entry = self.op_table.get(op)
        return entry if isinstance(entry, OpSupport) else None

    def unsupported_reason(self, op: str) -> str:
        entry = self.op_table.get(op)
        return entry.reason if isinstance(entry, Unsupported) else default_reason(self.name, op)
