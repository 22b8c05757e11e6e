"""`anonymize` through DCMTK: the PS3.15 Annex E basic profile (Table E.1-1, 2024b) expressed as
one dcmodify run on a copy, then checked by `annex_e.leak_check` before anything is called
de-identified.

DCMTK has no profile of its own, so the plan (which element gets X, Z, D or a new UID, at every
depth, decided by the Python engine's rules) comes from `annex_e.plan`; dcmodify only executes it. Private elements go with -ep.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from dicom_hub.adapters.toolkit import annex_e
from dicom_hub.adapters.toolkit.tool_errors import check
from dicom_hub.contract.job import Job

if TYPE_CHECKING:
    from dicom_hub.adapters.subprocess_adapter import SubprocessAdapter, ToolRun

# What the result says about itself (PS3.3 C.7.1.1: Patient Identity Removed, De-identification Method (Code Sequence)).
MARKS = (
    "(0012,0062)=YES",
    "(0012,0063)=Basic Application Confidentiality Profile (dcmodify)",  # LO: at most 64
    "(0012,0064)[0].(0008,0100)=113100",
    "(0012,0064)[0].(0008,0102)=DCM",
    "(0012,0064)[0].(0008,0104)=Basic Application Confidentiality Profile",
)


def edit_flags(edits: list[annex_e.Edit]) -> list[str]:
    """dcmodify flags for a plan: -e to erase, -m to set (empty, dummy or new UID); a sequence is
    emptied by erasing it and inserting it again without items (dcmodify runs flags in order)."""
    flags: list[str] = []
    for edit in edits:
        if edit.action == "X":
            flags += ["-e", edit.path]
        elif edit.action == "I":  # an element of a dummy item (an empty sequence has no value)
            flags += ["-i", edit.path if edit.sequence else f"{edit.path}={edit.value}"]
        elif edit.sequence:
            flags += ["-e", edit.path, "-i", edit.path]
        else:
            flags += ["-m", f"{edit.path}={edit.value}"]
    return flags


def command(adapter: SubprocessAdapter, edits: list[annex_e.Edit], target: Path) -> list[str]:
    """One dcmodify run on `target` (a copy of the input): the plan, private elements, trailing
    padding (in case a reader stopped before it), then the marks."""
    marks = [arg for mark in MARKS for arg in ("-i", mark)]
    return [adapter.tool("dcmodify"), "-nb", "-imt", *edit_flags(edits), "-ep", "-e", "(fffc,fffc)", *marks, str(target)]


def anonymize(adapter: SubprocessAdapter, job: Job, target: Path) -> ToolRun:
    from dicom_hub.contract.dicom.deid.keys import resolve_key
    from dicom_hub.contract.dicom.deid.pseudonyms import Pseudonymizer

    # The whole data set (large values deferred, not read): the plan must see what follows the
    # pixels too, e.g. Digital Signatures Sequence (FFFA,FFFA), which the profile removes.
    ds = annex_e.read_header(job.input)
    annex_e.refuse_burned_in(ds)
    key, _ = resolve_key(job)
    edits = annex_e.plan(ds, Pseudonymizer(key).uid)
    shutil.copyfile(job.input, target)  # dcmodify edits in place: only ever the copy
    run = adapter.run_cmd(command(adapter, edits, target), timeout=adapter.timeout_for(job))
    return check(adapter, run, "de-identify the file", job.input)
