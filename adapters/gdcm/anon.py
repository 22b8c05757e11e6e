"""`anonymize` through GDCM, and the check that decides whether its result may be called anonymous.

gdcmanon -e applies GDCM's PS3.15 E.1 basic profile, but it needs a certificate, keeps private
tags, and stores the originals encrypted in the Encrypted Attributes Sequence. So each run
makes a throw-away certificate (its key is deleted with the work folder), then removes private
tags (gdcmconv) and that sequence (gdcmanon --dumb). The result is then compared with the input
against Table E.1-1 (2024b): if any identifying value survives, the op fails and nothing is
written, so `ok` is never reported for a leaking file.
"""

from __future__ import annotations

import shutil
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from dicom_hub.adapters.toolkit import annex_e
from dicom_hub.adapters.toolkit.tool_errors import check
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.job import Job

if TYPE_CHECKING:
    from collections.abc import Set

    from dicom_hub.adapters.subprocess_adapter import SubprocessAdapter, ToolRun
    from pydicom import Dataset

def commands(adapter: SubprocessAdapter, job: Job, out: Path, work: Path, profile_flags: list[str]) -> list[list[str]]:
    """The chain: certificate, gdcmanon -e, private tags out, then one gdcmanon --dumb pass with the
    Table E.1-1 actions GDCM's older table misses (`profile_flags`), the Encrypted Attributes
    Sequence, Digital Signatures and Data Set Trailing Padding (the last two after the pixels, so
    not in `profile_flags`) removed."""
    key, cert = work / "key.pem", work / "cert.pem"
    anon, public = work / "anon.dcm", work / "no-private.dcm"
    return [
        [_openssl(adapter), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=dicom-hub throw-away", "-keyout", str(key), "-out", str(cert)],
        [adapter.tool("gdcmanon"), "-e", "-c", str(cert), "-i", str(job.input), "-o", str(anon)],
        [adapter.tool("gdcmconv"), "--remove-private-tags", str(anon), str(public)],
        [adapter.tool("gdcmanon"), "--dumb", *profile_flags, "--remove", "400,500", "--remove", "fffa,fffa", "--remove", "fffc,fffc",
         "-i", str(public), "-o", str(out)],
    ]


@cache
def gdcm_dictionary() -> frozenset[tuple[int, int]]:
    """(group, element) of the public attributes GDCM's dictionary knows, from the Part6.xml that GDCM
    installs (an empty set without it: then every emptied or dummied attribute is removed instead)."""
    import re

    found: set[tuple[int, int]] = set()
    for xml in sorted(Path("/usr/share").glob("gdcm-*/XML/Part6.xml")):
        text = xml.read_text(encoding="utf-8", errors="replace")
        found |= {(int(g, 16), int(e, 16)) for g, e in re.findall(r'group="([0-9A-Fa-f]{4})" element="([0-9A-Fa-f]{4})"', text)}
    return frozenset(found)


def _openssl(adapter: SubprocessAdapter) -> str:
    """openssl makes the certificate gdcmanon insists on (it is a system tool, not part of GDCM)."""
    found = shutil.which("openssl")
    if not found:
        raise HubError(ErrorCode.BACKEND_UNAVAILABLE, "gdcm anonymize needs openssl to make its throw-away certificate", "apt-get install openssl")
    return found


def anonymize(adapter: SubprocessAdapter, job: Job, out: Path, work: Path) -> list[ToolRun]:
    ds = annex_e.read_header(job.input)
    annex_e.refuse_burned_in(ds)
    annex_e.refuse_unreachable(ds, annex_e.plan(ds), "gdcm", "gdcmanon --dumb edits top-level elements only")
    runs = []
    chain = commands(adapter, job, out, work, [])
    for argv in chain[:-1]:  # certificate, gdcmanon -e, private tags out
        runs.append(check(adapter, adapter.run_cmd(argv, timeout=adapter.timeout_for(job)), "de-identify the file", job.input))
    # UIDs GDCM's older table does not know are still the originals: the last pass replaces them too.
    from pydicom import dcmread

    public = dcmread(work / "no-private.dcm", stop_before_pixels=True, force=True)
    kept = {int(elem.tag) for elem in ds if elem.VR == "UI" and elem.tag in public and public[elem.tag].value == elem.value}
    last = commands(adapter, job, out, work, profile_flags(ds, kept))[-1]
    runs.append(check(adapter, adapter.run_cmd(last, timeout=adapter.timeout_for(job)), "de-identify the file", job.input))
    return runs


def profile_flags(ds: Dataset, unreplaced_uids: Set[int] = frozenset()) -> list[str]:
    """gdcmanon --dumb flags applying the basic profile's X, Z and D actions (`annex_e.plan`) to the
    top-level elements of `ds` (GDCM 3.0.21's own table keeps dates, times and several descriptions).
    U is left to gdcmanon -e, which replaces UIDs consistently, except the top-level `unreplaced_uids`
    its table does not know (replaced here, one new UID per original); nested elements are not reachable
    in --dumb mode (`anonymize` refuses files where the profile needs them). An attribute newer than
    GDCM's dictionary cannot be emptied or replaced (gdcmanon exits 1): it is removed."""
    flags: list[str] = []
    known = gdcm_dictionary()
    for edit in annex_e.plan(ds):
        if "[" in edit.path:
            continue
        group, element = edit.path.strip("()").split(",")
        where = f"{int(group, 16):x},{int(element, 16):x}"
        # Unknown to GDCM's dictionary, or a directory (0004) attribute, which --dumb cannot set either.
        unknown = (int(group, 16), int(element, 16)) not in known or int(group, 16) == 0x0004
        if edit.action == "U":
            if (int(group, 16) << 16 | int(element, 16)) in unreplaced_uids:
                flags += ["--remove", where] if unknown else ["--replace", f"{where}={edit.value}"]
            continue
        if edit.action == "X" or edit.sequence or unknown:  # gdcmanon --empty on a sequence exits 1: it goes whole
            flags += ["--remove", where]
        elif edit.action == "Z":
            flags += ["--empty", where]
        else:
            flags += ["--replace", f"{where}={edit.value}"]
    return flags
