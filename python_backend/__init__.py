"""The native backend: every op implemented with pydicom and friends, run in-process.

`OPS` maps an op name to `module:function`; the module is imported on first use only, so
`dicom-hub run` pays for numpy or pynetdicom only when an op needs them. `adapter.py` is this
backend's adapter class; what the standard says (Annex E, query keys, status meanings, pixel
decoding...) comes from `dicom_hub.contract.dicom`, shared with the toolkit adapters.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

from dicom_hub.contract.job import Job, Outcome

OPS: dict[str, str] = {
    "anonymize": "deid.ops:anonymize",
    "batch_anonymize": "deid.ops:batch_anonymize",
    "batch_convert": "batch.ops:batch_convert",
    "batch_decompress": "batch.ops:batch_decompress",
    "batch_list": "batch.ops:batch_list",
    "batch_validate": "batch.ops:batch_validate",
    "dump": "metadata:dump",
    "echo": "network.echo:echo",
    "extract_metadata": "batch.extract:extract_metadata",
    "find": "network.query:find",
    "from_json": "json_model:from_json",
    "get": "network.retrieve:get",
    "histogram": "pixels.stats:histogram",
    "info": "metadata:info",
    "modify_tags": "tags:modify_tags",
    "move": "network.retrieve:move",
    "nifti": "nifti:nifti",
    "organize": "batch.organize:organize",
    "qido": "network.web_ops:qido",
    "split_multiframe": "multiframe:split_multiframe",
    "stats": "pixels.stats:stats",
    "store": "network.store:store",
    "stow": "network.web_ops:stow",
    "to_image": "pixels.to_image:to_image",
    "to_json": "json_model:to_json",
    "transcode": "pixels.transcode:transcode",
    "validate": "validate:validate",
    "volume": "volume:volume",
    "wado": "network.web_ops:wado",
    "worklist": "network.query:worklist",
}


def op_function(op: str) -> Callable[[Job], Outcome]:
    module_name, func_name = OPS[op].split(":")
    module = import_module(f"{__name__}.{module_name}")
    return getattr(module, func_name)


def run_op(job: Job) -> Outcome:
    return op_function(job.op)(job)
