"""DCMTK (OFFIS) as a backend: every op runs one or more of its command-line tools.

Verified against DCMTK 3.6.7 (Debian `dcmtk`). What DCMTK cannot do is declared, not
approximated: no JPEG 2000 in free DCMTK, no de-identification profile, no JSON reader
before 3.6.8. Network ops live in `network.py`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from dicom_hub.adapters.base import OpEntry, Unsupported, is_network_op, python_only, supports
from dicom_hub.adapters.dcmtk import anon as dcmtk_anon
from dicom_hub.adapters.dcmtk import network as dcmtk_network
from dicom_hub.adapters.registry import KNOWN_ADAPTERS
from dicom_hub.adapters.subprocess_adapter import SubprocessAdapter
from dicom_hub.adapters.toolkit import annex_e, dump_text, pixel_input, syntaxes
from dicom_hub.adapters.toolkit.dump_ops import DumpingAdapter, number_text
from dicom_hub.adapters.toolkit.image_check import check_image, image_format
from dicom_hub.adapters.toolkit.tag_edits import TagEdit, plan_edits
from dicom_hub.adapters.toolkit.tool_errors import failure
from dicom_hub.contract.conditions import refusal
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.files import atomic_output
from dicom_hub.contract.job import Job, Outcome

# dcmdump: numeric UIDs, long values in full, text as UTF-8, UN elements given their dictionary VR,
# bulk data (> 256 KB) not loaded.
DUMP_FLAGS = ("-Un", "+L", "+U8", "+uc", "-M", "+R", "256")

# transcode: encoder argv (after the tool name) per target UID.
_ENCODERS: dict[str, tuple[str, ...]] = {
    syntaxes.RLE: ("dcmcrle",),
    syntaxes.JPEG_BASELINE: ("dcmcjpeg", "+eb"),
    syntaxes.JPEG_LOSSLESS_SV1: ("dcmcjpeg", "+e1"),
    syntaxes.JPEGLS_LOSSLESS: ("dcmcjpls", "+el"),
    syntaxes.JPEGLS_NEAR: ("dcmcjpls", "+en"),
}
_NATIVE_FLAGS = {
    syntaxes.EXPLICIT_LE: "+te",
    syntaxes.IMPLICIT_LE: "+ti",
    syntaxes.DEFLATED_LE: "+td",
}
_IMAGE_FLAGS = {"png": "+on", "jpeg": "+oj", "bmp": "+ob", "tiff": "+ot"}


class DcmtkAdapter(DumpingAdapter):
    """DCMTK command-line tools, found on PATH or in DICOM_HUB_DCMTK_BIN_DIR."""

    name = "dcmtk"
    language = "cpp"
    toolkit = "DCMTK"
    install_hint = KNOWN_ADAPTERS["dcmtk"].hint
    executable = "dcmdump"
    version_pattern = r"v(\d+\.\d+\.\d+)"

    def declare_ops(self) -> dict[str, OpEntry]:
        peer, tls, network = dcmtk_network.PEER, dcmtk_network.TLS, self._network
        tls_note = "; TLS verifies the peer's certificate chain but not its host name"
        return {
            "dump": supports("max_depth", "max_value_length", "include_pixel_data", handler=self._dump, note="dcmdump's own text (numeric UIDs)"),
            "info": supports(handler=self._info, note="built from dcmdump output"),
            "to_json": supports(
                "bulk_data", "include_file_meta", "indent", handler=self._to_json,
                note="dcm2json converts text to UTF-8 and sets SpecificCharacterSet to ISO_IR 192",
            ),
            "from_json": Unsupported(
                "DCMTK 3.6.7 has no json2dcm (added in 3.6.8) and its xml2dcm reads only DCMTK's own XML, "
                "so there is no DCMTK route from the DICOM JSON Model to a file"
            ),
            "validate": supports(
                "strict", handler=self._validate,
                note="structural only: Part 10 header (dcmftest), full parse (dcmdump), required UIDs; no IOD/VR conformance",
            ),
            "modify_tags": supports("set", "delete", handler=self._modify_tags, note="dcmodify on a copy; tags must be in the DICOM dictionary (no 'vr' option)"),
            "split_multiframe": Unsupported("DCMTK writes frames only as images (dcmj2pnm +Fa), not as single-frame DICOM files"),
            "stats": supports(
                "modality", "frame", handler=self._stats,
                note="min and max only (dcmj2pnm -im); DCMTK computes no mean, median, std or percentiles",
            ),
            "histogram": Unsupported("DCMTK prints no pixel histogram"),
            "to_image": supports(
                "format", "frame", "window_center", "window_width", "normalize", "disable_modality_lut", "disable_voi_lut",
                "force_8bit", "force_16bit", "quality", handler=self._to_image,
                note="dcmj2pnm; default window: the file's first window or VOI LUT, else min-max; 16-bit only as PNG; "
                "normalize: true is refused (DCMTK has no median/percentile window)",
            ),
            "transcode": supports(
                "transfer_syntax", "quality", "near_lossless_error", "keep_sop_instance_uid", handler=self._transcode,
                note="native, deflated, RLE, JPEG baseline (8-bit) and lossless SV1, JPEG-LS (near-lossless: unsigned data "
                "only); compressed input is decompressed first; no JPEG 2000 or HTJ2K (neither encode nor decode)",
            ),
            "anonymize": supports(
                "key", "key_env", "key_file", handler=self._anonymize,
                note="Table E.1-1 (2024b) basic profile as dcmodify edits at every depth (X erased, Z emptied, D dummy values, "
                "U new UIDs, keyed as the Python engine's (the same key gives the same UIDs across files, runs and backends python, "
                "csharp, dcmtk; without a key, random); combined actions and unlisted attributes judged by the IOD, as the Python engine "
                "does), private elements erased, Patient Identity Removed set; the result is checked against the table and the IOD "
                "and refused if any identifying value survives; no profile options, patient prefix, "
                "burned-in override or mapping file",
            ),
            "echo": supports(*peer, *tls, handler=network, note="echoscu" + tls_note),
            "store": supports(*peer, *tls, "recursive", handler=network, note="storescu -nh: each file's own transfer syntax plus uncompressed; per-file status from its log" + tls_note),
            "find": supports(*peer, *tls, "level", "query", "model", "max_results", handler=network, note="findscu -X; status category only (no status code)" + tls_note),
            "move": supports(*peer, "destination", "level", "query", "model", handler=network, note="movescu; sub-operation counts from its log; no TLS in movescu"),
            "get": supports(*peer, "level", "query", "model", handler=network, note="getscu; files moved into <Study>/<Series>/<SOP>.dcm; no TLS in getscu"),
            "worklist": supports(
                *peer, *tls, "station_aet", "station_name", "modality", "date", "patient_id", "patient_name", "accession_number", "query", "max_results",
                handler=network, note="findscu -W -X" + tls_note,
            ),
            **python_only(self.name),
        }

    def _network(self, job: Job) -> Outcome:
        return dcmtk_network.run(self, job)

    # -- command lines (pure: golden tests call these) ---------------------------------------------
    def _build_cmd(self, job: Job, out: Path | None = None, *, file_window: str | None = None) -> list[str]:
        """The argv of the op's main step; `out` replaces job.output (a temporary path in practice).

        `file_window` tells `to_image` what VOI data the file has: "window", "lut" or None.
        """
        op, src = job.op, str(job.input) if job.inputs else ""
        target = str(out or job.output) if (out or job.output) else None
        if op in ("dump", "info"):
            return [self.tool("dcmdump"), *DUMP_FLAGS, src]
        if op == "to_json":
            argv = [self.tool("dcm2json"), "-fc"]
            if job.option("include_file_meta"):
                argv.append("+m")
            return [*argv, src, *([target] if target else [])]
        if op == "validate":
            return [self.tool("dcmftest"), src]
        if op == "stats":
            frame = job.option("frame")
            argv = [self.tool("dcmj2pnm"), "-v", "-im", "-o"]
            argv += ["+Fa"] if frame is None else ["+F", str(frame + 1)]
            if not job.option("modality", True):
                argv.append("-M")
            return [*argv, src]
        if op == "to_image":
            return [self.tool("dcmj2pnm"), *self._image_flags(job, file_window), src, str(target)]
        if op == "modify_tags":
            return [self.tool("dcmodify"), *edit_flags(plan_edits(job.option("set") or {}, job.option("delete") or [])), str(target)]
        if is_network_op(op):
            return dcmtk_network.build_cmd(self, job)
        raise HubError(ErrorCode.UNSUPPORTED_OP, self.unsupported_reason(op))

    def _image_flags(self, job: Job, file_window: str | None) -> list[str]:
        if job.option("normalize"):
            raise HubError(
                ErrorCode.UNSUPPORTED_OPTION,
                "dcmtk cannot normalize: DCMTK's automatic windows are min-max or histogram based, not the contract's median/percentile window",
                "give window_center and window_width, or use backend python",
            )
        fmt = image_format(job)
        if job.option("force_16bit"):
            if fmt != "png":
                raise HubError(ErrorCode.UNSUPPORTED_OPTION, f"dcmtk writes 16-bit images only as PNG, not {fmt}", "use format png")
            flags = ["+on2"]
        else:
            flags = [_IMAGE_FLAGS[fmt]]
        if fmt == "jpeg":
            flags += ["+Jq", str(job.option("quality"))]
        flags += ["+F", str(int(job.option("frame")) + 1)]
        if job.option("disable_modality_lut"):
            flags.append("-M")
        center, width = job.option("window_center"), job.option("window_width")
        if center is not None:  # the schema requires window_width with it, > 0
            flags += ["+Ww", number_text(center), number_text(width)]
        elif job.option("disable_voi_lut") or file_window is None:
            flags.append("+Wm")
        else:
            flags += ["+Wi", "1"] if file_window == "window" else ["+Wl", "1"]
        return flags

    def _transcode_cmds(self, job: Job, source_ts: str | None, out: Path, work: Path) -> list[list[str]]:
        """The chain for one transcode: decompress first when the input is compressed, then encode."""
        src = str(job.input)
        target = syntaxes.writable(job.option("transfer_syntax"))
        if target in syntaxes.J2K_FAMILY:
            raise HubError(ErrorCode.CODEC_UNAVAILABLE, f"DCMTK has no JPEG 2000 / HTJ2K encoder ({target})", "use backend gdcm (j2k, j2k_lossy) or python")
        if source_ts in syntaxes.J2K_FAMILY:
            raise HubError(ErrorCode.CODEC_UNAVAILABLE, f"DCMTK cannot decode JPEG 2000 input ({source_ts})", "use backend gdcm or python")
        if target not in _NATIVE_FLAGS and target not in _ENCODERS:
            raise HubError(ErrorCode.CODEC_UNAVAILABLE, f"DCMTK cannot write transfer syntax {target}", "use backend python or gdcm")
        self._check_codec_options(job, target)
        steps: list[list[str]] = []
        decoder = _decoder_for(source_ts)
        if decoder is not None:
            if target in (syntaxes.EXPLICIT_LE, syntaxes.IMPLICIT_LE):
                return [[self.tool(decoder), _NATIVE_FLAGS[target], src, str(out)]]
            plain = work / "decompressed.dcm"
            steps.append([self.tool(decoder), "+te", src, str(plain)])
            src = str(plain)
        if target in _NATIVE_FLAGS:
            steps.append([self.tool("dcmconv"), _NATIVE_FLAGS[target], src, str(out)])
            return steps
        tool, *flags = _ENCODERS[target]
        if target == syntaxes.JPEG_BASELINE:
            flags += ["+q", str(job.option("quality"))]
        if target == syntaxes.JPEGLS_NEAR:
            flags += ["+md", str(job.option("near_lossless_error"))]
        if target in syntaxes.LOSSY and job.option("keep_sop_instance_uid"):
            flags.append("+un")
        steps.append([self.tool(tool), *flags, src, str(out)])
        return steps

    @staticmethod
    def _check_codec_options(job: Job, target: str) -> None:
        """An option given for another codec is refused rather than silently ignored."""
        misplaced = {
            "quality": target != syntaxes.JPEG_BASELINE,
            "near_lossless_error": target != syntaxes.JPEGLS_NEAR,
        }
        for option, wrong in misplaced.items():
            if option in job.options and wrong:
                raise HubError(ErrorCode.UNSUPPORTED_OPTION, f"dcmtk: option {option!r} does not apply to transfer syntax {target}", f"remove {option!r}")

    # -- ops (dump and info: DumpingAdapter) ---------------------------------------------------------
    def _to_json(self, job: Job) -> Outcome:
        source = syntaxes.file_transfer_syntax(job.input)
        if source is not None and source not in syntaxes.NATIVE:
            raise refusal("element_unsupported", f"dcm2json cannot put encapsulated ({syntaxes.uid_name(source)}) Pixel Data into JSON", "use backend python, or decompress first (transcode to explicit)")
        if job.output is None:
            run = self._run_checked(job, self._build_cmd(job), "convert to JSON")
            dataset = _json_or_fail(self, run, run.stdout)
            return Outcome(metadata={"dataset": _shape_json(dataset, job)}, stderr=run.stderr)
        with atomic_output(job.output, job.overwrite) as tmp:
            run = self._run_checked(job, self._build_cmd(job, tmp), "convert to JSON")
            dataset = _json_or_fail(self, run, _utf8(run, tmp.read_bytes()))
            shaped = _shape_json(dataset, job)
            if shaped is not dataset or job.option("indent") is not None:
                tmp.write_text(json.dumps(shaped, indent=job.option("indent")), encoding="utf-8")
        return Outcome(metadata={"element_count": len(shaped)}, output_files=[str(job.output)], stderr=run.stderr)

    def _validate(self, job: Job) -> Outcome:
        header = self.run_cmd(self._build_cmd(job), timeout=self.timeout_for(job))
        dump = self.run_cmd([self.tool("dcmdump"), *DUMP_FLAGS, str(job.input)], timeout=self.timeout_for(job))
        errors, warnings = _log_lines(dump.stderr)
        if header.returncode != 0 or "no:" in header.stdout:
            errors.insert(0, "no Part 10 header (128-byte preamble + DICM) or unreadable file meta (dcmftest)")
        if dump.returncode == 0:
            lines = dump_text.parse_dump(dump.stdout)
            present = {line.tag for line in lines if line.depth == 0 and not line.is_empty}
            for tag, keyword in ((0x00080016, "SOPClassUID"), (0x00080018, "SOPInstanceUID")):
                if tag not in present:
                    errors.append(f"required element {keyword} is missing or empty")
            if 0x00020010 not in present:
                warnings.append("no Transfer Syntax UID in the file meta (not a Part 10 file)")
        strict = bool(job.option("strict"))
        valid = not errors and not (strict and warnings)
        metadata = {
            "valid": valid,
            "errors": errors,
            "warnings": warnings,
            "checks": ["part10_header", "parse", "required_uids"],
            "scope": "structural only (DCMTK dcmftest + dcmdump); no IOD or VR conformance check",
        }
        return Outcome(metadata=metadata, stdout=header.stdout, stderr=dump.stderr)

    @contextmanager
    def _renderable(self, job: Job) -> Iterator[Job]:
        """`job` with an input dcmj2pnm decodes: JPEG-LS is decompressed first (dcmj2pnm has only the
        JPEG and RLE codecs); JPEG 2000 is refused (DCMTK has no decoder for it)."""
        source = syntaxes.file_transfer_syntax(job.input)
        pixel_input.refuse_one_bit_encapsulated(pixel_input.read_pixel_header(job.input), "DCMTK")
        if source in syntaxes.J2K_FAMILY:
            raise refusal("codec_missing", f"DCMTK cannot decode {syntaxes.uid_name(source)} pixel data", "use backend python, gdcm or csharp")
        if source not in syntaxes.JPEGLS_FAMILY:
            yield job
            return
        with tempfile.TemporaryDirectory(prefix="dicom-hub-dcmtk-") as work:
            plain = Path(work) / "decompressed.dcm"
            self._run_checked(job, [self.tool("dcmdjpls"), str(job.input), str(plain)], "decompress JPEG-LS")
            yield replace(job, inputs=(plain,))

    def _stats(self, job: Job) -> Outcome:
        header = pixel_input.refuse_truncated_pixels(job.input, pixel_input.require_pixel_data(job.input))
        check_frame(job, image_header(job.input)[1])
        if job.option("modality", True):
            _check_rescale(job.input)  # dcmj2pnm answers min 0, max 0 for a NaN or huge slope
        if header.samples > 1 or header.photometric == "PALETTE COLOR":
            raise refusal("pixel_format_unsupported", f"dcmj2pnm reports no minimum/maximum for colour images ({header.photometric})", "use backend python or csharp")
        refuse_wide_ob(header)
        with self._renderable(job) as plain:
            run = self._run_checked(plain, self._build_cmd(plain), "measure the pixel data")
        values = _image_info(run.stderr)
        if "maximum pixel value" not in values:
            raise self.fail(run, "dcmj2pnm reports no minimum/maximum for this image", ErrorCode.BACKEND_ERROR, "use backend python")
        metadata = {
            "min": _as_number(values["minimum pixel value"]),
            "max": _as_number(values["maximum pixel value"]),
            "frames": values.get("number of frames", ""),
            "values": "modality" if job.option("modality", True) else "stored",
            "modality_lut_applied": bool(job.option("modality", True)),
            "samples_per_pixel": 1,
            "scope": "min and max only",
        }
        return Outcome(metadata=metadata, stderr=run.stderr)

    def _to_image(self, job: Job) -> Outcome:
        assert job.output is not None
        header = pixel_input.refuse_truncated_pixels(job.input, pixel_input.require_pixel_data(job.input))
        refuse_wide_ob(header)
        if header.segmented_palette:
            raise refusal("pixel_format_unsupported", "dcmj2pnm does not expand segmented palette colour lookup tables", "use backend python")
        file_window, frames = image_header(job.input)
        check_frame(job, frames)
        with atomic_output(job.output, job.overwrite) as tmp, self._renderable(job) as plain:
            argv = self._build_cmd(plain, tmp, file_window=file_window)
            run = self._run_checked(plain, argv, "render the image")
            info = check_image(tmp, image_format(job), sixteen_bit=bool(job.option("force_16bit")))
        return Outcome(metadata=info, output_files=[str(job.output)], stdout=run.stdout, stderr=run.stderr)

    def _transcode(self, job: Job) -> Outcome:
        assert job.output is not None
        source = syntaxes.file_transfer_syntax(job.input)
        target = syntaxes.writable(job.option("transfer_syntax"))
        pixel_input.refuse_one_bit_encapsulated(pixel_input.refuse_truncated_pixels(job.input), "DCMTK")
        if target == syntaxes.JPEG_BASELINE:
            syntaxes.check_baseline_input(job.input)  # dcmcjpeg +eb would narrow deeper data silently
        stderr: list[str] = []
        with tempfile.TemporaryDirectory(prefix="dicom-hub-dcmtk-") as work, atomic_output(job.output, job.overwrite) as tmp:
            for argv in self._transcode_cmds(job, source, tmp, Path(work)):
                run = self._run_checked(job, argv, f"transcode to {target}")
                stderr.append(run.stderr)
            syntaxes.check_written(tmp, target)
        metadata = {"transfer_syntax": target, "transfer_syntax_name": syntaxes.uid_name(target), "source_transfer_syntax": source}
        return Outcome(metadata=metadata, output_files=[str(job.output)], stderr="".join(stderr))

    def _modify_tags(self, job: Job) -> Outcome:
        assert job.output is not None
        with atomic_output(job.output, job.overwrite) as tmp:
            shutil.copyfile(job.input, tmp)  # dcmodify edits in place: only ever the copy
            run = self.run_cmd(self._build_cmd(job, tmp), timeout=self.timeout_for(job))
            if run.returncode != 0:
                code = ErrorCode.INVALID_REQUEST if "Unable to parse tag" in run.stderr else None
                if code:
                    raise self.fail(run, "dcmodify does not know a tag", code, "use DICOM keywords or (gggg,eeee)")
                raise failure(self, run, "modify the tags", job.input)
        edits = plan_edits(job.option("set") or {}, job.option("delete") or [])
        metadata = {"set": [e.key for e in edits if e.action == "set"], "deleted": [e.key for e in edits if e.action == "delete"]}
        return Outcome(metadata=metadata, output_files=[str(job.output)], stderr=run.stderr)


    def _anonymize(self, job: Job) -> Outcome:
        assert job.output is not None
        with atomic_output(job.output, job.overwrite) as tmp:
            run = dcmtk_anon.anonymize(self, job, tmp)
            report = annex_e.leak_check(job.input, tmp)
        return Outcome(metadata=report, output_files=[str(job.output)], stderr=run.stderr)


def edit_flags(edits: list[TagEdit]) -> list[str]:
    """dcmodify flags for a list of edits: -nb (no backup), -i to set/create, -e to erase."""
    flags = ["-nb"]
    if any(e.action == "delete" for e in edits):
        flags.append("-imt")  # erasing a missing tag is not an error in the contract
    for edit in edits:
        flags += ["-i", f"{edit.paren}={edit.value}"] if edit.action == "set" else ["-e", edit.paren]
    return flags


def refuse_wide_ob(header: pixel_input.PixelHeader) -> None:
    """DCMTK's image classes take OB Pixel Data only up to 16 bits allocated ('Unsupported element value')."""
    if header.pixel_vr == "OB" and header.bits_allocated > 16:
        raise refusal("pixel_format_unsupported", f"DCMTK renders no {header.bits_allocated}-bit Pixel Data stored as OB (it needs OW above 16 bits)", "use backend python")


def image_header(path: Path) -> tuple[str | None, int]:
    """What VOI data the file has for its default rendering ("window", "lut" or None), and its
    number of frames (DCMTK clamps or fails on a frame past the end; the contract says invalid_request)."""
    from dicom_hub.contract.pixel_size import number_of_frames
    from pydicom import dcmread

    try:
        ds = dcmread(path, stop_before_pixels=True, specific_tags=["WindowCenter", "WindowWidth", "VOILUTSequence", "NumberOfFrames"])
        frames_value = ds.get("NumberOfFrames")
        window = ds.get("WindowCenter") is not None and ds.get("WindowWidth") is not None
        lut = bool(ds.get("VOILUTSequence"))
    except Exception:  # a value pydicom cannot convert (unknown VR...): DCMTK decides
        return None, 1
    frames = number_of_frames(frames_value, path.name)
    if window:
        return "window", frames
    return ("lut" if lut else None), frames


def _check_rescale(path: Path) -> None:
    from dicom_hub.contract.dicom.rescale import check_rescale
    from pydicom import dcmread

    try:
        ds = dcmread(path, stop_before_pixels=True, specific_tags=["RescaleSlope", "RescaleIntercept", "BitsStored", "ModalityLUTSequence"])
    except Exception:
        return  # dcmj2pnm reports unreadable files itself
    check_rescale(ds)


def check_frame(job: Job, frames: int) -> None:
    frame = job.option("frame")
    if frame is not None and frame >= frames:
        raise HubError(ErrorCode.INVALID_REQUEST, f"frame {frame} does not exist: the file has {frames} frame(s)", f"frames are numbered 0 to {frames - 1}")


def _decoder_for(source_ts: str | None) -> str | None:
    if source_ts in syntaxes.JPEG_FAMILY:
        return "dcmdjpeg"
    if source_ts in syntaxes.JPEGLS_FAMILY:
        return "dcmdjpls"
    if source_ts == syntaxes.RLE:
        return "dcmdrle"
    return None


def _image_info(stderr: str) -> dict[str, str]:
    """The `I:   key : value` lines of `dcmj2pnm -v -im`."""
    values = {}
    for line in stderr.splitlines():
        if line.startswith("I:") and ":" in line[2:]:
            key, _, value = line[2:].partition(":")
            values[key.strip()] = value.strip()
    return values


def _as_number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def _log_lines(stderr: str) -> tuple[list[str], list[str]]:
    errors = [line[2:].strip() for line in stderr.splitlines() if line.startswith(("E:", "F:"))]
    warnings = [line[2:].strip() for line in stderr.splitlines() if line.startswith("W:")]
    return errors, warnings


def _utf8(run: Any, data: bytes) -> str:
    """dcm2json's output as text; bytes that are not UTF-8 come from a value its character set does not allow."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise HubError(
            ErrorCode.DECODE_ERROR,
            f"dcm2json wrote bytes that are not UTF-8 ({err.reason} at byte {err.start}): a value holds bytes its character set does not allow",
            "the file is corrupt, or its Specific Character Set (0008,0005) is wrong",
            stderr=run.stderr,
        ) from None


def _json_or_fail(adapter: SubprocessAdapter, run: Any, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as err:
        raise adapter.fail(run, f"dcm2json wrote invalid JSON: {err}") from None


def _shape_json(dataset: Any, job: Job) -> Any:
    """Apply bulk_data=omit (drop InlineBinary/BulkDataURI values) to dcm2json's output."""
    if job.option("bulk_data") == "omit":
        return _without_bulk(dataset)
    return dataset


def _without_bulk(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: _without_bulk(value)
            for key, value in node.items()
            if not (isinstance(value, dict) and ("InlineBinary" in value or "BulkDataURI" in value))
        }
    if isinstance(node, list):
        return [_without_bulk(item) for item in node]
    return node
