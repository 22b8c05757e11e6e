"""The PixelMed backend: David Clunie's Java toolkit, run as `java -cp … com.pixelmed.<Class>`.

PixelMed's command-line mains exit 0 even when they fail (missing file, corrupt file, refused
connection). So every op here knows which file or which stdout line it expects, and a run counts
as successful only when that output exists and stderr carries no `SEVERE:` record or Java
exception. Installed from Debian (`pixelmed-apps`, `libpixelmed-java`, `libpixelmed-imageio-java`).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from dicom_hub.adapters.base import Availability, OpEntry, Unsupported, is_network_op, python_only, supports
from dicom_hub.adapters.pixelmed.host import PixelMedHostRuns
from dicom_hub.adapters.pixelmed.network import CONNECTION, PixelMedNetworkOps
from dicom_hub.adapters.registry import KNOWN_ADAPTERS
from dicom_hub.adapters.subprocess_adapter import SubprocessAdapter, ToolRun
from dicom_hub.adapters.toolkit import annex_e, pixel_input, syntaxes
from dicom_hub.adapters.toolkit.dicom_json import info_outcome, json_outcome, load_document
from dicom_hub.adapters.toolkit.dump_ops import number_text
from dicom_hub.adapters.toolkit.image_check import check_image, image_format
from dicom_hub.adapters.toolkit.tool_output import (
    ErrorRule,
    check_frame,
    classify,
    pixel_module,
    text_outcome,
)
from dicom_hub.contract.conditions import code_for, refusal
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.files import atomic_output
from dicom_hub.contract.job import Job, Outcome

JAR_DIR = Path("/usr/share/java")
TRAILING_PADDING = 0xFFFCFFFC  # Data Set Trailing Padding
JARS = ("pixelmed.jar", "pixelmed_imageio.jar")
HEADLESS = "-Djava.awt.headless=true"
# JDK 17 caps XPath expression sizes below what the validator's compiled rules need: without these
# limits lifted DicomInstanceValidator fails with "accumulated '10,001' operators".
XPATH_LIMITS = ("-Djdk.xml.xpathExprOpLimit=0", "-Djdk.xml.xpathExprGrpLimit=0", "-Djdk.xml.xpathTotalOpLimit=0")

# AttributeList writes these natively; CompressDicomFiles writes RLE (the jar has no other encoder).
NATIVE_NAMES = {
    syntaxes.EXPLICIT_LE: "ExplicitVRLittleEndian",
    syntaxes.IMPLICIT_LE: "ImplicitVRLittleEndian",
    syntaxes.DEFLATED_LE: "DeflatedExplicitVRLittleEndian",
}
WRITABLE = frozenset({*NATIVE_NAMES, syntaxes.RLE})
# Input PixelMed decodes with pixelmed_imageio (apps.DecompressDicomFiles): RLE, JPEG
# baseline/extended/lossless; not JPEG-LS or JPEG 2000.
DECODABLE = frozenset({*syntaxes.NATIVE, syntaxes.RLE, syntaxes.JPEG_BASELINE, syntaxes.JPEG_LOSSLESS, syntaxes.JPEG_LOSSLESS_SV1})
# SOP classes the Debian jar's compiled validation rules know (any other: "IOD (SOP Class) unrecognized").
VALIDATED_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.2.1": "Enhanced CT Image Storage",
    "1.2.840.10008.5.1.4.1.1.2.2": "Legacy Converted Enhanced CT Image Storage",
    "1.2.840.10008.5.1.4.1.1.4.1": "Enhanced MR Image Storage",
    "1.2.840.10008.5.1.4.1.1.4.2": "MR Spectroscopy Storage",
    "1.2.840.10008.5.1.4.1.1.4.4": "Legacy Converted Enhanced MR Image Storage",
    "1.2.840.10008.5.1.4.1.1.66": "Raw Data Storage",
    "1.2.840.10008.5.1.4.1.1.66.4": "Segmentation Storage",
}
IMAGE_FORMATS = {"png": "png", "jpeg": "jpeg"}

ERROR_RULES = (
    ErrorRule(r"FileNotFoundException", ErrorCode.INPUT_NOT_FOUND, "check the path"),
    ErrorRule(r"Not a DICOM file", ErrorCode.NOT_DICOM, "the input is not a DICOM file"),
    ErrorRule(r"No reader for|Cannot find (reader|writer)|unsupported (compression|transfer syntax)", ErrorCode.CODEC_UNAVAILABLE, "PixelMed decodes only native, RLE and JPEG (not JPEG-LS or JPEG 2000) pixel data; try backend python"),
    ErrorRule(r"JsonParsingException|JsonException", ErrorCode.DECODE_ERROR, "the input is not a valid DICOM JSON document"),
    ErrorRule(r"Unsupported image encoding", code_for("pixel_format_unsupported"), "PixelMed's image maker does not render this pixel format (e.g. 32-bit RGB); try backend python"),
    ErrorRule(r"wrong value type for attribute \(0x7fe0,0x0010\)", ErrorCode.BACKEND_ERROR, "PixelMed cannot put compressed Pixel Data into JSON; use backend python, or dicom-rs with bulk_data: omit"),
    ErrorRule(r"read failed|EOFException|Could not instantiate an attribute|premature end", ErrorCode.DECODE_ERROR, "the file is corrupt or truncated"),
    ErrorRule(r"Connection refused|ConnectException|UnknownHostException|SocketTimeoutException|Association rejected|AReleaseException|Association aborted", ErrorCode.NETWORK_ERROR, "check host, port and AE titles; is the peer running?"),
)
_ERROR_LINE = re.compile(r"^(SEVERE:|Exception in thread|\S+(Exception|Error)\b)", re.MULTILINE)
_LOG_HEADER = re.compile(r"^\w{3} \d{1,2}, \d{4} .* com\.pixelmed\.\S+ \w+$")
_DUMP_LINE = re.compile(r"^\(0x(?P<group>[0-9a-f]{4}),0x(?P<elem>[0-9a-f]{4})\) (?:(?P<name>\w+) )?VR=<(?P<vr>..)> VL=<[^>]*>(?: (?P<value>.*))?$")


class PixelMedAdapter(PixelMedHostRuns, PixelMedNetworkOps, SubprocessAdapter):
    name = "pixelmed"
    language = "java"
    toolkit = "PixelMed"
    executable = "java"
    version_args = ("-version",)
    install_hint = KNOWN_ADAPTERS["pixelmed"].hint

    # -- availability ------------------------------------------------------------------------
    @property
    def jar_dir(self) -> Path:
        return Path(os.environ.get(f"{self.env_prefix}_JAR_DIR", JAR_DIR))

    def classpath(self) -> str:
        return os.pathsep.join(str(self.jar_dir / jar) for jar in JARS)

    def probe(self) -> Availability:
        missing = [jar for jar in JARS if not (self.jar_dir / jar).is_file()]
        if missing:
            return Availability(False, reason=f"{', '.join(missing)} not found in {self.jar_dir}", hint=self.install_hint)
        java = super().probe()
        if not java.ok:
            return java
        return Availability(True, version=f"{self.jar_version()}; java {java.version}")

    def jar_version(self) -> str:
        """The release date in the jar's file name (Debian links pixelmed.jar -> pixelmed-20220618.jar)."""
        match = re.search(r"(\d{8})", os.path.realpath(self.jar_dir / JARS[0]))
        return match.group(1) if match else "unknown"

    def declare_ops(self) -> dict[str, OpEntry]:
        network = self.handle_network
        return {
            "dump": supports("include_pixel_data", handler=self._run_dump, note="dicom.AttributeList dump (binary values shown as [] with their length)"),
            "to_json": supports(
                "bulk_data", "include_file_meta", "indent", handler=self._run_to_json,
                note="JSONRepresentationOfDicomObjectFactory toJSON; fails on encapsulated (compressed) Pixel Data",
            ),
            "from_json": supports(handler=self._run_from_json, note="JSONRepresentationOfDicomObjectFactory toDICOM; always writes Explicit VR Little Endian"),
            "info": supports(handler=self._run_info, note="derived from the toJSON output"),
            "validate": supports(
                handler=self._run_validate,
                note=f"validate.DicomInstanceValidator; only these SOP classes: {', '.join(VALIDATED_SOP_CLASSES.values())}",
            ),
            "modify_tags": Unsupported("PixelMed edits elements only through DeidentifyAndRedact's keyword/value pairs"),
            "split_multiframe": Unsupported("PixelMed has no command-line tool that splits multi-frame objects"),
            "to_image": supports(
                "format", "frame", "window_center", "window_width", "quality", "force_8bit", handler=self._run_to_image,
                note="display.ConsumerFormatImageMaker, annotations off; 8-bit png or jpeg only; without a manual window the file's window is used",
            ),
            "stats": Unsupported("PixelMed has no pixel statistics tool"),
            "histogram": Unsupported("PixelMed has no histogram tool"),
            "transcode": supports(
                "transfer_syntax", handler=self._run_transcode,
                note="writes explicit, implicit, deflated (dicom.AttributeList) and rle (apps.CompressDicomFiles); compressed input is decompressed first (RLE and JPEG only)",
            ),
            "anonymize": supports(
                handler=self._run_anonymize,
                note="apps.DeidentifyAndRedact, then the basic profile's top-level X/Z/D actions (Table E.1-1 2024b and what the IOD does "
                "not need) as its keyword-value replacements (X and Z emptied, D dummy values); refused before running (unsupported_op) "
                "when the profile must change something inside a sequence or the file holds private attributes (the tool keeps those "
                "on its own safe list); the output is checked against the table and the IOD at every depth and refused (backend_error) if any "
                "identifying value survives; no profile options, keys, patient prefix, burned-in override or mapping file",
            ),
            "echo": supports(*CONNECTION, handler=network, note="network.VerificationSOPClassSCU"),
            "store": supports(
                *CONNECTION, "recursive", handler=network,
                note="network.StorageSOPClassSCU (file list on stdin); PixelMed prints no per-file status, success means no error was logged",
            ),
            "move": supports(
                *CONNECTION, "destination", "level", "query", handler=network,
                note="network.MoveSOPClassSCU, study root; the query may hold only the UIDs down to the level; no sub-operation counts",
            ),
            "find": Unsupported("PixelMed's FindSOPClassSCU main runs a fixed built-in query and ignores its arguments"),
            "get": Unsupported("PixelMed's GetSOPClassSCU proposes every storage class, so association set-up fails"),
            "worklist": Unsupported("PixelMed has no worklist SCU main"),
            **python_only(self.name),
        }

    # -- command lines -----------------------------------------------------------------------
    def java(self, main_class: str, *args: str, jvm_flags: tuple[str, ...] = ()) -> list[str]:
        """`java [flags] -cp JARS com.pixelmed.<main_class> args…`."""
        return [self.tool("java"), HEADLESS, *jvm_flags, "-cp", self.classpath(), f"com.pixelmed.{main_class}", *args]

    def _build_cmd(self, job: Job, target: Path | None = None, **extra: Any) -> list[str]:
        """The argument list for `job`; `target` is the temp file or folder the tool writes to."""
        if is_network_op(job.op):
            return self.network_cmd(job, target)
        commands = {
            "dump": self._cmd_dump,
            "to_json": self._cmd_to_json,
            "info": self._cmd_to_json,
            "from_json": self._cmd_from_json,
            "to_image": self._cmd_to_image,
            "transcode": self._cmd_transcode,
            "anonymize": self._cmd_anonymize,
            "validate": self._cmd_validate,
        }
        if job.op not in commands:
            raise HubError(ErrorCode.UNSUPPORTED_OP, self.unsupported_reason(job.op))
        return commands[job.op](job, target, **extra)

    def _cmd_dump(self, job: Job, target: Path | None) -> list[str]:
        return self.java("dicom.AttributeList", str(job.input))

    def _cmd_to_json(self, job: Job, target: Path | None) -> list[str]:
        return self.java("dicom.JSONRepresentationOfDicomObjectFactory", "toJSON", str(job.input), str(target))

    def _cmd_from_json(self, job: Job, target: Path | None) -> list[str]:
        return self.java("dicom.JSONRepresentationOfDicomObjectFactory", "toDICOM", str(job.input), str(target))

    def _cmd_to_image(self, job: Job, target: Path | None) -> list[str]:
        fmt = image_format(job)
        center, width = job.option("window_center"), job.option("window_width")
        window = [number_text(center), number_text(width)] if center is not None else ["0", "0"]  # 0 0: the file's window
        frame = str(job.option("frame"))
        quality = str(job.option("quality"))
        # IN OUT format C W width height quality annotations, then 4 unused (0) and first/last frame.
        return self.java("display.ConsumerFormatImageMaker", str(job.input), str(target), fmt, *window, "0", "0", quality, "none", "0", "0", "0", "0", frame, frame)

    def _cmd_transcode(self, job: Job, target: Path | None, source: Path | None = None) -> list[str]:
        uid = syntaxes.resolve(str(job.option("transfer_syntax")))
        source = source or job.input
        if uid == syntaxes.RLE:
            return self.java("apps.CompressDicomFiles", str(source), str(target), "rle")
        if uid not in NATIVE_NAMES:
            raise HubError(ErrorCode.UNSUPPORTED_OPTION, f"PixelMed cannot write transfer syntax {uid}", f"it writes {', '.join(sorted(WRITABLE))}; try backend gdcm or dcmtk")
        return self.java("dicom.AttributeList", str(source), NATIVE_NAMES[uid], str(target))

    def _cmd_decompress(self, source: Path, folder: Path) -> list[str]:
        return self.java("apps.DecompressDicomFiles", str(source), str(folder))

    def _cmd_anonymize(
        self, job: Job, target: Path | None, control: Path | None = None, replacements: tuple[str, ...] = ()
    ) -> list[str]:
        # IN OUTDIR REDACTIONCONTROLFILE (an empty file: redact nothing) [keyword value]*: the values
        # the tool then sets (`deid_replacements`: the basic profile where DeidentifyAndRedact keeps).
        return self.java("apps.DeidentifyAndRedact", str(job.input), str(target), str(control), *replacements)

    def _cmd_validate(self, job: Job, target: Path | None) -> list[str]:
        return self.java("validate.DicomInstanceValidator", str(job.input), jvm_flags=XPATH_LIMITS)

    # -- running -----------------------------------------------------------------------------
    def run(self, job: Job, args: list[str], expected: Path | None = None) -> ToolRun:
        """Run a PixelMed main; fail on stderr error records, or when `expected` was not written."""
        run = self.run_cmd(args, timeout=self.timeout_for(job))
        errors = error_lines(run.stderr)
        if run.returncode != 0 or errors:
            raise self.failure(job, run, errors)
        if expected is not None and not (expected.exists() and (expected.is_dir() or expected.stat().st_size > 0)):
            raise self.failure(job, run, [f"{args[-1] if args else 'the tool'} exited 0 but wrote no output"])
        return run

    def failure(self, job: Job, run: ToolRun, errors: list[str]) -> HubError:
        """The contract error for a failed run: from stderr when it says why, else from the input file."""
        code, hint = classify(run.stderr + "\n" + run.stdout, ERROR_RULES, default=ErrorCode.BACKEND_ERROR)
        if code is ErrorCode.BACKEND_ERROR and not error_lines(run.stderr) and job.inputs and not is_network_op(job.op):
            code = syntaxes.read_failure_code(job.input)  # a silent failure: judge the input itself
            hint = "PixelMed printed no error; the input is not readable DICOM"
        detail = "; ".join(errors[:3]) or run.tail()
        main = next((a for a in run.args if a.startswith("com.pixelmed.")), "PixelMed")
        return HubError(code, f"{main} failed: {detail}", hint or "see stderr", stdout=run.stdout, stderr=run.stderr, returncode=run.returncode)

    def _run_dump(self, job: Job) -> Outcome:
        run = self.run(job, self._build_cmd(job))
        text, elements = parse_dump(run.stderr, include_pixel_data=bool(job.option("include_pixel_data")))
        if not elements:
            raise self.failure(job, run, ["dicom.AttributeList printed no elements"])
        return text_outcome(job, text, elements, run.stderr)

    def _json_document(self, job: Job) -> tuple[dict[str, Any], ToolRun]:
        with scratch_dir() as folder:
            target = folder / "dataset.json"
            run = self.run(job, self._build_cmd(job, target), expected=target)
            text = target.read_text(encoding="utf-8")
        try:
            return load_document(text, "PixelMed toJSON"), run
        except HubError:
            raise self.failure(job, run, [f"toJSON wrote no data set ({text[:20]!r})"]) from None

    def _run_to_json(self, job: Job) -> Outcome:
        source = syntaxes.file_transfer_syntax(job.input)
        if source is not None and source not in syntaxes.NATIVE:
            raise refusal("element_unsupported", f"PixelMed's toJSON cannot put encapsulated ({syntaxes.uid_name(source)}) Pixel Data into JSON", "use backend python, or dicom-rs with bulk_data: omit")
        document, run = self._json_document(job)
        return json_outcome(job, document, stderr=run.stderr)

    def _run_info(self, job: Job) -> Outcome:
        if syntaxes.file_transfer_syntax(job.input) in syntaxes.NATIVE:
            document, run = self._json_document(job)
            return info_outcome(job.input, document, stderr=run.stderr)
        # toJSON fails on encapsulated Pixel Data; the header is read from the dump instead.
        run = self.run(job, self._cmd_dump(job, None))
        _, elements = parse_dump(run.stderr, include_pixel_data=False)
        if not elements:
            raise self.failure(job, run, ["dicom.AttributeList printed no elements"])
        return info_outcome(job.input, dump_document(elements), stderr=run.stderr)

    def _run_from_json(self, job: Job) -> Outcome:
        with atomic_output(job.output_path, job.overwrite) as tmp:
            run = self.run(job, self._build_cmd(job, tmp), expected=tmp)
            ts = syntaxes.file_transfer_syntax(tmp)
            if ts is None:
                raise self.failure(job, run, ["toDICOM wrote no readable Part 10 file"])
        return Outcome(metadata={"transfer_syntax": ts}, output_files=[str(job.output)], stderr=run.stderr)

    def _run_to_image(self, job: Job) -> Outcome:
        fmt = image_format(job)
        if fmt not in IMAGE_FORMATS:
            raise HubError(ErrorCode.UNSUPPORTED_OPTION, f"PixelMed writes png or jpeg, not {fmt} (its bmp/tiff writers fail on the quality setting)", "ask for png or jpeg")
        header = pixel_input.refuse_truncated_pixels(job.input, pixel_input.require_pixel_data(job.input))
        pixel_input.refuse_one_bit_encapsulated(header, "PixelMed")
        pixels = pixel_module(job.input)
        check_decodable(pixels["TransferSyntaxUID"])
        check_frame(job, pixels["NumberOfFrames"])
        with atomic_output(job.output_path, job.overwrite) as tmp, scratch_dir() as folder:
            target = folder / f"image.{'jpg' if fmt == 'jpeg' else fmt}"
            run = self.run(job, self._build_cmd(job, target), expected=target)
            metadata = check_image(target, fmt)
            shutil.move(str(target), tmp)
        return Outcome(metadata=metadata, output_files=[str(job.output)], stderr=run.stderr)

    def _run_transcode(self, job: Job) -> Outcome:
        uid = syntaxes.resolve(str(job.option("transfer_syntax")))
        if uid not in WRITABLE:
            raise HubError(ErrorCode.UNSUPPORTED_OPTION, f"PixelMed cannot write transfer syntax {uid}", f"it writes {', '.join(sorted(WRITABLE))}; try backend gdcm or dcmtk")
        source_ts = syntaxes.file_transfer_syntax(job.input)
        header = pixel_input.refuse_truncated_pixels(job.input)
        if header.has_pixel_data and header.bits_allocated == 1 and not header.native and uid != syntaxes.RLE:
            raise refusal("pixel_format_unsupported", "PixelMed's DecompressDicomFiles writes 1-bit compressed images without their Pixel Data", "use backend python or dcmtk")
        stderr = ""
        with atomic_output(job.output_path, job.overwrite) as tmp, scratch_dir() as folder:
            source = job.input
            if source_ts is not None and source_ts not in syntaxes.NATIVE and uid != syntaxes.RLE:
                # AttributeList does not decompress (it would label encapsulated pixels as native): DecompressDicomFiles first.
                check_decodable(source_ts)
                (folder / "plain").mkdir()
                stderr += self.run(job, self._cmd_decompress(job.input, folder / "plain")).stderr
                source = single_file(folder / "plain", job, "DecompressDicomFiles")
            out_dir = folder / "out"
            out_dir.mkdir()
            target = out_dir if uid == syntaxes.RLE else out_dir / "out.dcm"
            run = self.run(job, self._build_cmd(job, target, source=source), expected=target)
            written = single_file(out_dir, job, "CompressDicomFiles") if uid == syntaxes.RLE else target
            syntaxes.check_written(written, uid)
            check_pixels_kept(header, written)
            shutil.move(str(written), tmp)
        return Outcome(metadata={"transfer_syntax": uid, "transfer_syntax_name": syntaxes.uid_name(uid)}, output_files=[str(job.output)], stderr=stderr + run.stderr)

    def _run_anonymize(self, job: Job) -> Outcome:
        ds = annex_e.read_header(job.input)
        annex_e.refuse_burned_in(ds)
        annex_e.refuse_private(ds, "pixelmed", "DeidentifyAndRedact keeps those on its own safe list, which no option turns off")
        plan = annex_e.plan(ds)
        annex_e.refuse_unreachable(ds, plan, "pixelmed", "DeidentifyAndRedact sets top-level attributes only")
        self._refuse_unsettable(plan)
        with atomic_output(job.output_path, job.overwrite) as tmp, scratch_dir() as folder:
            control = folder / "redaction.txt"
            control.write_text("")
            out_dir = folder / "out"
            out_dir.mkdir()
            cmd = self._build_cmd(job, out_dir, control=control, replacements=deid_replacements(plan))
            run = self.run(job, cmd)
            written = single_file(out_dir, job, "DeidentifyAndRedact")
            try:
                report = annex_e.leak_check(job.input, written)
            except HubError as leak:
                raise HubError(
                    ErrorCode.BACKEND_ERROR,
                    f"PixelMed DeidentifyAndRedact: {leak.message}; output discarded",
                    leak.hint,
                    stderr=run.stderr,
                ) from None
            shutil.move(str(written), tmp)
        return Outcome(metadata={**report, "tool": "PixelMed DeidentifyAndRedact"}, output_files=[str(job.output)], stderr=run.stderr)

    def _refuse_unsettable(self, plan: list[annex_e.Edit]) -> None:
        """Files where the profile changes a top-level attribute DeidentifyAndRedact can neither set nor
        removes itself are refused first: a keyword its dictionary lacks (the tool fails), or binary
        data (O*, UN, overlay and curve data included: it keeps them)."""
        from dicom_hub.contract.dicom.deid.rules import public_vr
        from pydicom.datadict import keyword_for_tag

        known = jar_keywords(self.jar_dir / JARS[0])
        # Data Set Trailing Padding is never written back by PixelMed (it reads it, then drops it), so
        # the profile's X for it needs no setting; the leak check still looks at the result.
        tags = [t for e in plan if "[" not in e.path and e.action in "XZD" and (t := int(e.path.strip("()").replace(",", ""), 16)) != TRAILING_PADDING]
        binary = sorted({keyword_for_tag(t) for t in tags if public_vr(t) != "SQ" and not _settable(public_vr(t))})
        unknown = sorted({keyword_for_tag(t) for t in tags if _settable(public_vr(t)) and keyword_for_tag(t) not in known} - {""})
        if binary:
            raise HubError(
                ErrorCode.UNSUPPORTED_OP,
                f"pixelmed cannot de-identify this file: the profile changes {len(binary)} binary attribute(s) "
                f"({', '.join(binary[:6])}{' ...' if len(binary) > 6 else ''}) that DeidentifyAndRedact keeps and cannot set",
                "use backend python, dcmtk or csharp",
            )
        if unknown:
            raise HubError(
                ErrorCode.UNSUPPORTED_OP,
                f"pixelmed cannot de-identify this file: the profile changes {len(unknown)} attribute(s) newer than PixelMed's "
                f"dictionary ({', '.join(unknown[:6])}{' ...' if len(unknown) > 6 else ''}), which DeidentifyAndRedact cannot set",
                "use backend python, dcmtk or csharp",
            )

    def _run_validate(self, job: Job) -> Outcome:
        sop_class = sop_class_of(job.input)
        if sop_class not in VALIDATED_SOP_CLASSES:
            raise HubError(
                ErrorCode.UNSUPPORTED_OP,
                f"PixelMed's validator has no rules for SOP class {sop_class} ({syntaxes.uid_name(sop_class) if sop_class else 'none'})",
                f"it validates only {', '.join(VALIDATED_SOP_CLASSES.values())}; use backend python or dciodvfy",
            )
        run = self.run(job, self._build_cmd(job))
        lines = run.stdout.splitlines()
        if not lines or not lines[0].startswith("Found "):
            raise self.failure(job, run, [f"unexpected validator output: {(lines or [''])[0][:80]!r}"])
        errors = [line.removeprefix("Error: ") for line in lines if line.startswith("Error:")]
        warnings = [line.removeprefix("Warning: ") for line in lines if line.startswith("Warning:")]
        strict = bool(job.option("strict"))
        metadata = {
            "valid": not errors and not (strict and warnings),
            "iod": lines[0].removeprefix("Found ").removesuffix(" IOD"),
            "errors": errors,
            "warnings": warnings,
        }
        return Outcome(metadata=metadata, stdout=run.stdout, stderr=run.stderr)


def check_pixels_kept(source: pixel_input.PixelHeader, written: Path) -> None:
    """PixelMed exits 0 even when it drops or shortens the Pixel Data: refuse such an output."""
    if not source.has_pixel_data:
        return
    out = pixel_input.read_pixel_header(written)
    if not out.has_pixel_data or (out.native and out.declared_length is not None and out.declared_length < out.expected_length):
        raise refusal("toolkit_failure", "PixelMed wrote the file without (all of) its Pixel Data; output discarded", "use backend python or dcmtk")


def check_decodable(ts: str | None) -> None:
    """Refuse pixel data PixelMed's Debian jars cannot decode (no JPEG-LS, JPEG 2000, 12-bit JPEG)."""
    if ts is not None and ts not in DECODABLE:
        raise HubError(ErrorCode.CODEC_UNAVAILABLE, f"PixelMed cannot decode {syntaxes.uid_name(ts)} pixel data", "try backend python or gdcm")


def error_lines(stderr: str) -> list[str]:
    """`SEVERE:` records and Java exception lines (PixelMed's only sign of failure)."""
    found = []
    for match in _ERROR_LINE.finditer(stderr):
        line = stderr[match.start() : stderr.find("\n", match.start()) if "\n" in stderr[match.start() :] else None].strip()
        if line == "SEVERE:":  # the message, if any, is on the next line
            rest = stderr[match.end() :].lstrip("\n").split("\n", 1)[0].strip()
            if not rest or _ERROR_LINE.match(rest):
                continue
            line = f"SEVERE: {rest}"
        found.append(line)
    return found


def parse_dump(stderr: str, *, include_pixel_data: bool) -> tuple[str, list[dict[str, Any]]]:
    """AttributeList's dump (printed on stderr) without logging lines, and its elements.

    Nesting is marked by `%seq`/`%endseq` lines rather than indentation. Tags are rewritten from
    PixelMed's `(0x0010,0x0020)` to the usual `(0010,0020)`.
    """
    lines, elements, depth = [], [], 0
    for line in stderr.splitlines():
        if _LOG_HEADER.match(line) or line.startswith(("INFO:", "WARNING:", "FINE")):
            continue
        if line.startswith("%seq"):
            depth += 1
        elif line.startswith("%endseq"):
            depth = max(0, depth - 1)
        match = _DUMP_LINE.match(line)
        if match:
            tag = (match["group"] + match["elem"]).upper()
            if tag == "7FE00010" and not include_pixel_data:
                continue
            line = f"({match['group']},{match['elem']})" + line[line.index(")") + 1 :]  # (0x0010,0x0020) -> (0010,0020)
            elements.append({"tag": tag, "vr": match["vr"], "keyword": match["name"] or "", "depth": depth, "value": (match["value"] or "").strip()})
        lines.append(line)
    return "\n".join(lines) + "\n", elements


def dump_document(elements: list[dict[str, Any]]) -> dict[str, Any]:
    """The top-level elements of AttributeList's dump as a DICOM JSON Model document (what
    `info_outcome` reads): text `<a\\b>` split at backslashes, binary numbers `[0x1c,0x2]` as numbers."""
    document: dict[str, Any] = {}
    for element in elements:
        if element["depth"] != 0 or element["vr"] == "SQ":
            continue
        value, vr = element["value"], element["vr"]
        if value.startswith("[") and vr in _BINARY_NUMBERS:
            numbers = [part.strip() for part in value.strip("[]").split(",") if part.strip()]
            values: list[Any] = [int(n, 16) if n.lower().startswith("0x") else float(n) for n in numbers]
        elif value.startswith("<") and value.endswith(">"):
            values = [part.strip(" \x00") for part in value[1:-1].split("\\")]
            if vr == "PN":
                values = [{"Alphabetic": v} for v in values]
            if values == [""] or values == [{"Alphabetic": ""}]:
                values = []
        else:
            continue
        document[element["tag"]] = {"vr": vr, "Value": values}
    return document


_BINARY_NUMBERS = frozenset({"US", "UL", "SS", "SL", "UV", "SV", "FL", "FD", "AT"})


def sop_class_of(path: Path) -> str | None:
    from pydicom import dcmread

    try:
        ds = dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
    except Exception:
        raise HubError(syntaxes.read_failure_code(path), f"cannot read {path.name} as DICOM", "check the input") from None
    value = ds.get("SOPClassUID")
    return str(value) if value else None


@cache
def jar_keywords(jar: Path) -> frozenset[str]:
    """The keywords of PixelMed's data dictionary (com/pixelmed/dicom/elmdict.xml inside its jar)."""
    import zipfile

    with zipfile.ZipFile(jar) as archive:
        text = archive.read("com/pixelmed/dicom/elmdict.xml").decode("utf-8", "replace")
    return frozenset(re.findall(r"<Keyword>([A-Za-z0-9]+)</Keyword>", text))


def deid_replacements(plan: list[annex_e.Edit]) -> tuple[str, ...]:
    """DeidentifyAndRedact's trailing `keyword value` pairs for the top-level X, Z and D edits of the
    plan: a removed or emptied attribute is set empty (an empty value leaks nothing), or 0 for the
    numeric VRs the tool cannot leave empty; a dummied one gets its dummy (`_settable` VRs only). UIDs stay with the tool's
    own replacement, which keeps references consistent."""
    from dicom_hub.contract.dicom.deid.rules import public_vr
    from pydicom.datadict import keyword_for_tag

    pairs: list[str] = []
    for edit in plan:
        if "[" in edit.path or edit.action not in "XZD":
            continue
        tag = int(edit.path.strip("()").replace(",", ""), 16)
        keyword = keyword_for_tag(tag)
        if keyword and _settable(public_vr(tag)):
            empty = "0" if (public_vr(tag) or "")[:2] in _NUMERIC_VRS else ""
            pairs += [keyword, edit.value if edit.action == "D" and edit.value else empty]
    return tuple(pairs)


_NUMERIC_VRS = frozenset({"DS", "IS", "US", "SS", "UL", "SL", "FL", "FD", "AT", "UV", "SV"})


def _settable(vr: str | None) -> bool:
    """Whether DeidentifyAndRedact can set a value of `vr` from text: not sequences, not binary (O*, UN)
    data; those are left to the tool's own profile, and the leak check refuses what survives."""
    if not vr:
        return False
    return vr != "SQ" and vr != "UN" and not vr.startswith("O")


def single_file(folder: Path, job: Job, tool: str) -> Path:
    """The one file a PixelMed app wrote into `folder` (they name it after the SOP Instance UID)."""
    files = [p for p in folder.iterdir() if p.is_file()]
    if len(files) != 1:
        raise HubError(
            syntaxes.read_failure_code(job.input) if not files else ErrorCode.BACKEND_ERROR,
            f"PixelMed {tool} wrote {len(files)} files instead of one",
            "PixelMed reports no error for unreadable input; check the input file",
        )
    return files[0]


@contextmanager
def scratch_dir() -> Iterator[Path]:
    """A private temporary folder for the files PixelMed names itself."""
    with tempfile.TemporaryDirectory(prefix="dicom-hub-pixelmed-") as name:
        yield Path(name)
