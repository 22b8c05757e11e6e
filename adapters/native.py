"""The Python backend (pydicom, pynetdicom, numpy, pillow), run in-process; with
`options.timeout`, in a worker process that is killed when time is up (`time_limit.py`), except
the network ops, which keep that time themselves."""

from __future__ import annotations

import sys
from functools import cache

from dicom_hub.adapters.base import ALL_OPTIONS, Adapter, Availability, OpSupport
from dicom_hub.adapters.registry import KNOWN_ADAPTERS
from dicom_hub.contract.job import Job, Outcome
from dicom_hub.python_backend import OPS, run_op


class PythonAdapter(Adapter):
    name = "python"
    language = "python"
    toolkit = "pydicom"
    install_hint = KNOWN_ADAPTERS["python"].hint

    def probe(self) -> Availability:
        # Found, not imported: `import pydicom` loads numpy and every pixel plugin (~0.4 s), which
        # requests served from the bytes (extract_metadata's header reader) never need. The
        # version is looked up only when asked for (`version`).
        from importlib.util import find_spec

        if find_spec("pydicom") is None:
            return Availability(False, reason="pydicom is not installed", hint=self.install_hint)
        return Availability(True)

    @cache  # noqa: B019 - one adapter instance per process
    def version(self) -> str | None:
        if not self.available():
            return None
        from pydicom import __version__ as pydicom_version

        return f"pydicom {pydicom_version}; python {sys.version.split()[0]}"

    @cache  # noqa: B019 - one adapter instance per process
    def capabilities(self) -> dict[str, OpSupport]:
        return dict.fromkeys(OPS, ALL_OPTIONS)

    def handle(self, job: Job) -> Outcome:
        if "timeout" in job.options and not _keeps_time_itself(job.op):
            from dicom_hub.adapters.time_limit import run_with_time_limit

            return run_with_time_limit(job, float(job.options["timeout"]))
        return run_op(job)


def _keeps_time_itself(op: str) -> bool:
    """Network ops cap every wait by options.timeout and check it between DIMSE messages
    (python_backend/network/_association.py): no worker process needed."""
    from dicom_hub.contract.catalog import load_catalog

    return load_catalog()[op].family == "network"
