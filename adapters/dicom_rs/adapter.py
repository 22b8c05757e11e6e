"""The dicom-rs backend: the Rust toolkit's command-line tools (`dicom-dump`, `dicom-toimage`,
`dicom-transcode`, `dicom-echoscu`/`storescu`/`findscu`/`movescu`), built by
`scripts/install/30-dicom-rs.sh` with `cargo install` (pinned 0.10.1).

What the tools cannot do is declared, not emulated: `dicom-toimage` has no manual window or
JPEG quality, `dicom-transcode` writes no RLE, JPEG lossless or JPEG 2000 and keeps the SOP
Instance UID after lossy compression. The tools exit with 256 - |code| on errors and print the
cause on stderr; the stderr text decides the contract error code.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from dicom_hub.adapters.base import Availability, OpEntry, Unsupported, is_network_op, python_only, supports
from dicom_hub.adapters.dicom_rs.dump import parse_dump
from dicom_hub.adapters.dicom_rs.network import CONNECTION, RsNetworkOps
from dicom_hub.adapters.registry import KNOWN_ADAPTERS
from dicom_hub.adapters.subprocess_adapter import SubprocessAdapter, ToolRun
from dicom_hub.adapters.toolkit import pixel_input, syntaxes
from dicom_hub.adapters.toolkit.dicom_json import info_outcome, json_outcome, load_document, resolve_un
from dicom_hub.adapters.toolkit.image_check import check_image, image_format
from dicom_hub.adapters.toolkit.tool_output import ErrorRule, pixel_module, text_outcome, tool_error
from dicom_hub.adapters.toolkit.wide_tty import run_wide
from dicom_hub.contract.conditions import refusal
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.files import atomic_output
from dicom_hub.contract.job import Job, Outcome

PIXEL_DATA = "7FE0,0010"
TOOLS = ("dicom-dump", "dicom-toimage", "dicom-transcode", "dicom-echoscu", "dicom-storescu", "dicom-findscu", "dicom-movescu")
CARGO_BIN = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo")) / "bin"

# What dicom-transcode 0.10.1 writes (built with charls; JPEG XL and RLE/J2K encoders absent).
TRANSCODE_FLAGS: dict[str, list[str]] = {
    syntaxes.EXPLICIT_LE: ["--expl-vr-le"],
    syntaxes.IMPLICIT_LE: ["--impl-vr-le"],
    syntaxes.DEFLATED_LE: ["--ts", syntaxes.DEFLATED_LE],
    syntaxes.JPEG_BASELINE: ["--jpeg-baseline"],
    syntaxes.JPEGLS_LOSSLESS: ["--jpeg-ls-lossless"],
}
# Not offered: jpegls_near (`--jpeg-ls` derives NEAR from --quality and bit depth, so
# near_lossless_error cannot be honoured; by default it writes NEAR=0) and JPEG XL (not built).
# Lossy targets: dicom-transcode keeps the SOP Instance UID, so they need keep_sop_instance_uid.
KEEPS_UID_WHEN_LOSSY = frozenset({syntaxes.JPEG_BASELINE})

FORMAT_EXTENSION = {"png": ".png", "jpeg": ".jpg", "bmp": ".bmp", "tiff": ".tiff"}

ERROR_RULES = (
    ErrorRule(r"Could not open file", ErrorCode.INPUT_NOT_FOUND, "check the path"),
    ErrorRule(r"magic code check failed|Could not read from file", ErrorCode.NOT_DICOM, "dicom-rs reads Part 10 files (128-byte preamble + DICM) only"),
    ErrorRule(r"Unsupported target transfer syntax", ErrorCode.UNSUPPORTED_OPTION, "dicom-rs cannot write this transfer syntax; try backend gdcm or dcmtk"),
    ErrorRule(r"out of bounds", ErrorCode.INVALID_REQUEST, "frames are numbered from 0; `info` shows NumberOfFrames"),
    ErrorRule(r"Unsupported TransferSyntax|unsupported JPEG feature|Unsupported .*(photometric|bit)", ErrorCode.CODEC_UNAVAILABLE, "this dicom-rs build cannot decode the input's pixel data; try backend python"),
    ErrorRule(r"Could not (parse|read)|failed to fill whole buffer|decode pixel data", ErrorCode.DECODE_ERROR, "the file is corrupt or truncated"),
    ErrorRule(r"refused|could not (connect|establish)|association (rejected|aborted)|no presentation contexts accepted|timed out|Connection reset", ErrorCode.NETWORK_ERROR, "check host, port and AE titles; is the peer running?"),
)



class DicomRsAdapter(RsNetworkOps, SubprocessAdapter):
    name = "dicom-rs"
    language = "rust"
    toolkit = "dicom-rs"
    executable = "dicom-dump"
    install_hint = KNOWN_ADAPTERS["dicom-rs"].hint

    def tool(self, name: str) -> str:
        """Binaries on PATH (or the override folder), else where `cargo install` puts them."""
        try:
            return super().tool(name)
        except HubError:
            found = shutil.which(name, path=str(CARGO_BIN))
            if found and not os.environ.get(f"{self.env_prefix}_BIN_DIR"):
                return found
            raise

    def probe(self) -> Availability:
        """dicom-dump's version, once every tool the adapter drives is found."""
        missing = []
        for binary in TOOLS:
            try:
                self.tool(binary)
            except HubError:
                missing.append(binary)
        if missing:
            where = os.environ.get(f"{self.env_prefix}_BIN_DIR") or f"on PATH or in {CARGO_BIN}"
            return Availability(False, reason=f"{', '.join(missing)} not found ({where})", hint=self.install_hint)
        return super().probe()

    def declare_ops(self) -> dict[str, OpEntry]:
        network = self.handle_network
        return {
            "dump": supports(handler=self._dump, note="dicom-dump text; Pixel Data and what follows it are not read (--until 7FE0,0010); file meta shown as a header"),
            "to_json": supports(
                "bulk_data", "include_file_meta", "indent", handler=self._to_json,
                note="dicom-dump --format json; encapsulated Pixel Data is never written, so bulk_data inline fails for compressed files",
            ),
            "from_json": Unsupported("dicom-rs has no JSON -> DICOM tool (dicom-json is a library only)"),
            "info": supports(handler=self._info, note="derived from dicom-dump --format json"),
            "validate": Unsupported("dicom-rs has no validator"),
            "modify_tags": Unsupported("dicom-rs has no tool that edits elements"),
            "split_multiframe": Unsupported("dicom-rs has no tool that splits multi-frame objects"),
            "anonymize": Unsupported("dicom-rs has no de-identification tool"),
            "to_image": supports(
                "format", "frame", "force_8bit", "force_16bit", "disable_voi_lut", "disable_modality_lut", handler=self._write_file,
                note="dicom-toimage: the file's first VOI LUT/window, else min-max; no manual window, no JPEG quality, no palette colour; disable_modality_lut needs disable_voi_lut (the tool skips both)",
            ),
            "stats": Unsupported("dicom-rs has no pixel statistics tool"),
            "histogram": Unsupported("dicom-rs has no histogram tool"),
            "transcode": supports(
                "transfer_syntax", "quality", "keep_sop_instance_uid", handler=self._write_file,
                note="writes explicit, implicit, deflated, jpeg (8-bit unsigned input only) and jpegls (greyscale only: its colour JPEG-LS decodes wrongly elsewhere); JPEG baseline keeps the SOP Instance UID, so it needs keep_sop_instance_uid: true",
            ),
            "echo": supports(*CONNECTION, "dimse_timeout", handler=network, note="dicom-echoscu; no TLS (the tools are built without it)"),
            "store": supports(*CONNECTION, "dimse_timeout", "recursive", handler=network, note="dicom-storescu (transcodes when the peer refuses the file's syntax)"),
            "find": supports(
                *CONNECTION, "dimse_timeout", "level", "query", "model", handler=network,
                note="dicom-findscu with the shared query identifier (contract/dicom/network/query.py); DS/IS values come back as text; no max_results",
            ),
            "move": supports(
                "host", "port", "called_aet", "calling_aet", "destination", "level", "query", "model", handler=network,
                note="dicom-movescu to a third AE (it has no timeout flags)",
            ),
            "get": Unsupported("dicom-rs has no C-GET tool"),
            "worklist": supports(
                *CONNECTION, "dimse_timeout", "station_aet", "station_name", "modality", "date", "patient_id", "patient_name", "accession_number", "query",
                handler=network, note="dicom-findscu -W with the Python backend's worklist identifier",
            ),
            **python_only(self.name),
        }

    # -- command lines -----------------------------------------------------------------------
    def _build_cmd(self, job: Job, target: Path | None = None) -> list[str]:
        """The argument list for `job`; `target` is where the tool writes (a temp file beside the output)."""
        if is_network_op(job.op):
            return self.network_cmd(job, target)
        commands = {
            "dump": self._cmd_dump,
            "to_json": self._cmd_to_json,
            "info": self._cmd_info,
            "to_image": self._cmd_to_image,
            "transcode": self._cmd_transcode,
        }
        if job.op not in commands:
            raise HubError(ErrorCode.UNSUPPORTED_OP, self.unsupported_reason(job.op))
        return commands[job.op](job, target)

    def _cmd_dump(self, job: Job, target: Path | None) -> list[str]:
        return [self.tool("dicom-dump"), "--no-limit", "--color", "never", "--until", PIXEL_DATA, str(job.input)]

    def _cmd_to_json(self, job: Job, target: Path | None) -> list[str]:
        return [self.tool("dicom-dump"), "--format", "json", str(job.input)]

    def _cmd_info(self, job: Job, target: Path | None) -> list[str]:
        return [self.tool("dicom-dump"), "--format", "json", "--until", PIXEL_DATA, str(job.input)]

    def _cmd_to_image(self, job: Job, target: Path | None) -> list[str]:
        args = [self.tool("dicom-toimage"), "--frame", str(job.option("frame"))]
        args.append("--16bit" if job.option("force_16bit") else "--8bit")
        if job.option("disable_modality_lut"):
            args.append("--no-modality-lut")
        if job.option("disable_voi_lut"):
            args.append("--no-voi-lut")
        out = target or job.output_path.with_suffix(FORMAT_EXTENSION[image_format(job)])
        return [*args, "-o", str(out), str(job.input)]

    def _cmd_transcode(self, job: Job, target: Path | None) -> list[str]:
        uid = syntaxes.resolve(str(job.option("transfer_syntax")))
        flags = TRANSCODE_FLAGS.get(uid)
        if flags is None:
            writable = ", ".join(sorted(TRANSCODE_FLAGS))
            raise HubError(ErrorCode.UNSUPPORTED_OPTION, f"dicom-rs cannot write transfer syntax {uid}", f"it writes {writable}; try backend gdcm or dcmtk")
        args = [self.tool("dicom-transcode"), *flags]
        if uid == syntaxes.JPEG_BASELINE:
            args += ["--quality", str(job.option("quality"))]
        return [*args, "-o", str(target or job.output), str(job.input)]

    # -- running -----------------------------------------------------------------------------
    def handle(self, job: Job) -> Outcome:
        if not is_network_op(job.op):
            check_options(job)
        return super().handle(job)  # the input check, then the op's handler

    def _dump(self, job: Job) -> Outcome:
        run = self.run(job, self._build_cmd(job))
        return text_outcome(job, run.stdout, parse_dump(run.stdout), run.stderr)

    def _info(self, job: Job) -> Outcome:
        run = self.run(job, self._build_cmd(job))
        document = load_document(run.stdout, "dicom-dump")
        little = syntaxes.file_transfer_syntax(job.input) != syntaxes.EXPLICIT_BE
        return info_outcome(job.input, resolve_un(document, little_endian=little), stderr=run.stderr)

    def _to_json(self, job: Job) -> Outcome:
        run = self.run(job, self._build_cmd(job))
        document = load_document(run.stdout, "dicom-dump")
        if "Encapsulated pixel data not supported" in run.stderr and job.option("bulk_data") == "inline":
            raise HubError(
                ErrorCode.UNSUPPORTED_OPTION,
                "dicom-rs leaves encapsulated (compressed) Pixel Data out of its JSON, so bulk_data: inline cannot be honoured",
                "ask for bulk_data: omit, or use backend python",
                stderr=run.stderr,
            )
        return json_outcome(job, document, stderr=run.stderr)

    def run(self, job: Job, args: list[str], *, wide: bool = False) -> ToolRun:
        """Run a tool; a non-zero exit becomes the contract error its stderr names.

        `wide`: stdout on a wide pty, for tools that cut dumped values to the terminal width.
        """
        if wide:
            run = run_wide(args, self.timeout_for(job))
        else:
            run = self.run_cmd(args, timeout=self.timeout_for(job), env={"NO_COLOR": "1"})
        if run.returncode != 0:
            raise tool_error(run, f"{Path(args[0]).name} failed (exit code {run.returncode})", ERROR_RULES)
        return run

    def _write_file(self, job: Job) -> Outcome:
        """to_image / transcode: the tool writes a temp file beside the output, checked before it is renamed."""
        metadata: dict[str, Any] = {}
        with atomic_output(job.output_path, job.overwrite) as tmp:
            suffix = FORMAT_EXTENSION[image_format(job)] if job.op == "to_image" else ".dcm"
            written = tmp.with_name(tmp.name + suffix)  # dicom-toimage picks the format from the extension
            try:
                run = self.run(job, self._build_cmd(job, written))
                if not written.is_file() or written.stat().st_size == 0:
                    raise tool_error(run, f"{Path(run.args[0]).name} exited 0 but wrote nothing", ERROR_RULES)
                if job.op == "to_image":
                    metadata = check_image(written, image_format(job), sixteen_bit=bool(job.option("force_16bit")))
                else:
                    uid = syntaxes.resolve(str(job.option("transfer_syntax")))
                    syntaxes.check_written(written, uid)
                    metadata = {"transfer_syntax": uid, "transfer_syntax_name": syntaxes.uid_name(uid)}
                os.replace(written, tmp)
            finally:
                written.unlink(missing_ok=True)
        return Outcome(metadata=metadata, output_files=[str(job.output)], stdout=run.stdout, stderr=run.stderr)


def check_options(job: Job) -> None:
    """Option values and inputs the tools cannot handle (option names are checked by the dispatcher)."""
    if job.op == "to_image":
        header = pixel_input.refuse_truncated_pixels(job.input, pixel_input.require_pixel_data(job.input))
        pixel_input.refuse_one_bit_encapsulated(header, "dicom-rs")
        if header.bits_allocated not in (1, 8, 16):
            raise refusal("pixel_format_unsupported", f"dicom-toimage 0.10.1 renders 1, 8 or 16 bits allocated, not {header.bits_allocated}", "use backend python")
        if pixel_module(job.input).get("PhotometricInterpretation") == "PALETTE COLOR":
            raise refusal("pixel_format_unsupported", "dicom-toimage 0.10.1 does not apply the palette of PALETTE COLOR images (it writes grey levels)", "use backend python or dcmtk")
        if job.option("disable_modality_lut") and not job.option("disable_voi_lut"):
            raise HubError(
                ErrorCode.UNSUPPORTED_OPTION,
                "dicom-toimage cannot skip the modality LUT and still apply the VOI LUT (--no-modality-lut implies --no-voi-lut)",
                "add disable_voi_lut: true, or use backend python or dcmtk",
            )
        if job.option("force_16bit") and image_format(job) not in ("png", "tiff"):
            raise HubError(ErrorCode.UNSUPPORTED_OPTION, f"16-bit output needs png or tiff, not {image_format(job)}", "write a .png or .tiff")
    if job.op == "transcode":
        header = pixel_input.refuse_truncated_pixels(job.input)  # dicom-transcode decodes a cut JPEG 2000 stream into made-up pixels
        pixel_input.refuse_one_bit_encapsulated(header, "dicom-rs")
        uid = syntaxes.resolve(str(job.option("transfer_syntax")))
        if uid in KEEPS_UID_WHEN_LOSSY and not job.option("keep_sop_instance_uid"):
            raise HubError(
                ErrorCode.UNSUPPORTED_OPTION,
                f"dicom-transcode keeps the SOP Instance UID when it writes lossy {uid}; the contract gives a new one unless keep_sop_instance_uid is true",
                "set keep_sop_instance_uid: true, or use backend python, dcmtk or gdcm",
            )
        if uid == syntaxes.JPEG_BASELINE:
            syntaxes.check_baseline_input(job.input)  # dicom-transcode would narrow deeper data by bit-shifting
        if uid == syntaxes.JPEGLS_LOSSLESS and (pixel_module(job.input).get("SamplesPerPixel") or 1) > 1:
            raise HubError(
                ErrorCode.UNSUPPORTED_OPTION,
                "dicom-transcode 0.10.1 writes colour JPEG-LS that other decoders (pydicom, GDCM) read with wrong colours",
                "use backend python, dcmtk or gdcm for colour JPEG-LS",
            )
        if "quality" in job.options and uid != syntaxes.JPEG_BASELINE:
            raise HubError(ErrorCode.UNSUPPORTED_OPTION, "dicom-rs maps quality only for JPEG baseline", "drop quality for this target")
