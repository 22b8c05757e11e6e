"""The C# backend: a contract-native program over GDCM's C# bindings, run with Mono.

The program's source is `adapters/csharp/*.cs`; `scripts/install/40-csharp.sh` compiles it with
`mcs` into a folder outside the repository. `DICOM_HUB_CSHARP_BIN` points the backend at another
contract-native C# program instead (e.g. one built on fo-dicom with the .NET SDK; see BUILD.md).

What the built program serves is declared here, so it is known while the program is missing; a test
checks the table against the program's own `--capabilities` when it is built. Another program given
by DICOM_HUB_CSHARP_BIN serves what it reports.
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

from dicom_hub.adapters.base import OpEntry, Unsupported, python_only, supports
from dicom_hub.adapters.contract_cli import ContractCliAdapter
from dicom_hub.adapters.registry import KNOWN_ADAPTERS
from dicom_hub.adapters.toolkit import pixel_input
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.job import Job, Outcome

PROGRAM = "DicomHubGdcm.exe"
# Ops that decode the input's pixels: GDCM zero-fills truncated native Pixel Data, so the header is checked first.
PIXEL_OPS = frozenset({"transcode", "stats", "histogram", "to_image"})


def build_dir() -> Path:
    """Where 40-csharp.sh puts the program (same rule as the script)."""
    if os.environ.get("DICOM_HUB_CSHARP_BUILD"):
        return Path(os.environ["DICOM_HUB_CSHARP_BUILD"]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "dicom-hub" / "csharp"


class CSharpAdapter(ContractCliAdapter):
    name = "csharp"
    language = "csharp"
    toolkit = "GDCM via C#"
    install_hint = KNOWN_ADAPTERS["csharp"].hint

    def __init__(self) -> None:
        super().__init__(origin="built-in")

    def knows_ops_without_running(self) -> bool:
        return not os.environ.get(f"{self.env_prefix}_BIN")

    def declare_ops(self) -> dict[str, OpEntry]:
        """What DicomHubGdcm.exe serves (its `Ops` and `Unsupported` tables, DicomHubGdcm.cs)."""
        if not self.knows_ops_without_running():
            return super().declare_ops()
        ask = self.ask_program
        return {
            "info": supports(handler=ask),
            "dump": supports("max_depth", "max_value_length", "include_pixel_data", handler=ask),
            "to_json": supports("bulk_data", "include_file_meta", "indent", handler=ask),
            "modify_tags": supports("set", "delete", "vr", handler=ask),
            "anonymize": supports(
                "profile_options", "key", "key_env", "patient_prefix", "allow_burned_in", handler=ask,
                note="basic profile with retain_uids/device/institution/patient_characteristics/full_dates and clean_* options; "
                "retain_modified_dates (date shifting) and retain_safe_private are refused; key_file and mapping_file not supported (key, key_env are)",
            ),
            "transcode": supports(
                "transfer_syntax", "quality", "near_lossless_error", "compression_ratio", "keep_sop_instance_uid", handler=ask,
                note="GDCM codecs: explicit, implicit, deflated, rle, jpeg, jpeg_lossless, jpegls, jpegls_near, j2k, j2k_lossy; no HTJ2K",
            ),
            "histogram": supports("bins", "range", "modality", "frame", handler=ask),
            "stats": supports("modality", "frame", handler=ask, note="modality LUT = Rescale Slope/Intercept (a Modality LUT Sequence is not applied)"),
            "to_image": supports(
                "format", "frame", "window_center", "window_width", "normalize", "disable_modality_lut", "disable_voi_lut", "force_8bit", "force_16bit",
                handler=ask,
                note="PNG only (format must be png); linear window; no VOI LUT Sequence or palette colour",
            ),
            "from_json": Unsupported("GDCM's C# bindings expose no JSON decoder usable without C++ streams"),
            "validate": Unsupported("not implemented in the C# backend"),
            "split_multiframe": Unsupported("not implemented in the C# backend"),
            **{op: Unsupported(f"csharp does not implement {op!r}") for op in ("echo", "store", "find", "move", "get", "worklist")},
            **python_only(self.name),
        }

    def command(self) -> list[str]:
        """`mono DicomHubGdcm.exe`, or the command in DICOM_HUB_CSHARP_BIN (a `.exe` runs under mono)."""
        override = os.environ.get(f"{self.env_prefix}_BIN")
        argv = shlex.split(override) if override else [str(build_dir() / PROGRAM)]
        if not argv:
            raise HubError(ErrorCode.BACKEND_UNAVAILABLE, f"{self.env_prefix}_BIN is empty", self.install_hint)
        if argv[0].endswith(".exe"):
            if not Path(argv[0]).is_file():
                where = f"{self.env_prefix}_BIN={override}" if override else "scripts/install/40-csharp.sh has not built it"
                raise HubError(ErrorCode.BACKEND_UNAVAILABLE, f"csharp: {argv[0]} not found ({where})", self.install_hint)
            mono = shutil.which("mono")
            if mono is None:
                raise HubError(ErrorCode.BACKEND_UNAVAILABLE, "csharp: mono not found on PATH", self.install_hint)
            return [mono, *argv]
        exe = shutil.which(argv[0])
        if exe is None:
            raise HubError(ErrorCode.BACKEND_UNAVAILABLE, f"csharp: {self.env_prefix}_BIN={override}: {argv[0]} is not an executable", self.install_hint)
        return [exe, *argv[1:]]

    def handle(self, job: Job) -> Outcome:
        if job.op in PIXEL_OPS and len(job.inputs) == 1 and job.input.is_file():
            header = pixel_input.refuse_truncated_pixels(job.input)
            pixel_input.refuse_one_bit_encapsulated(header, "csharp (GDCM)")  # GDCM aborts on them
        return super().handle(job)
