"""The Python backend as an adapter (pydicom, pynetdicom, numpy, pillow), run in-process; with
`options.timeout`, in a worker process that is killed when time is up (`adapters/time_limit.py`),
except the network ops, which keep that time themselves.

The registry loads this class by name (`KNOWN_ADAPTERS["python"]`, like an entry point): the
adapter layer never imports the Python backend, which is one adapter's implementation among others."""

from __future__ import annotations

import sys

from dicom_hub.adapters.base import Adapter, Availability, OpEntry, OpSupport, is_network_op
from dicom_hub.adapters.registry import KNOWN_ADAPTERS
from dicom_hub.contract.job import Job, Outcome

from . import OPS, run_op


class PythonAdapter(Adapter):
    name = "python"
    language = "python"
    toolkit = "pydicom"
    install_hint = KNOWN_ADAPTERS["python"].hint

    def probe(self) -> Availability:
        # Without importing pydicom (~0.3 s, which an op that does not need it should not pay),
        # and without scanning every installed distribution: see `pydicom_tables.pydicom_version`.
        from dicom_hub.contract.dicom.pydicom_tables import pydicom_version

        try:
            version = pydicom_version()
        except ImportError:
            return Availability(False, reason="pydicom is not installed", hint=self.install_hint)
        return Availability(True, f"pydicom {version}; python {sys.version.split()[0]}")

    def declare_ops(self) -> dict[str, OpEntry]:
        """Every op with every option: the Python backend's own table (`python_backend.OPS`) names the
        function of each, imported on first use so that start-up stays lean."""
        return {op: OpSupport(None, self._run) for op in OPS}

    def _run(self, job: Job) -> Outcome:
        if "timeout" in job.options and not _keeps_time_itself(job.op):
            from dicom_hub.adapters.time_limit import run_with_time_limit

            return run_with_time_limit(job, float(job.options["timeout"]))
        return run_op(job)


def _keeps_time_itself(op: str) -> bool:
    """Network ops cap every wait by options.timeout and check it between DIMSE messages
    (python_backend/network/_association.py): no worker process needed."""
    return is_network_op(op)
