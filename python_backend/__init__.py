"""The native backend: every op implemented with pydicom and friends, run in-process.

`OPS` maps an op name to `module:function`; the module is imported on first use only, so
`dicom-hub run` pays for numpy or pynetdicom only when an op needs them.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

from dicom_hub.contract.job import Job, Outcome

OPS: dict[str, str] = {
    "dump": "metadata:dump",
    "from_json": "json_model:from_json",
    "info": "metadata:info",
    "modify_tags": "tags:modify_tags",
    "split_multiframe": "multiframe:split_multiframe",
    "to_json": "json_model:to_json",
    "validate": "validate:validate",
}


def op_function(op: str) -> Callable[[Job], Outcome]:
    module_name, func_name = OPS[op].split(":")
    module = import_module(f"{__name__}.{module_name}")
    return getattr(module, func_name)


def run_op(job: Job) -> Outcome:
    return op_function(job.op)(job)
