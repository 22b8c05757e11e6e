"""GDCM as a backend: gdcmdump, gdcmconv and gdcmanon.

Verified against GDCM 3.0.21 (Debian `libgdcm-tools`). GDCM is the only toolkit on this
machine that encodes JPEG 2000. Its network tool (gdcmscu) aborts in this version, and
gdcmimg writes no real PNG, so those ops are declared unsupported with the reason.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from dicom_hub.adapters.base import OpEntry, Unsupported, python_only, supports
from dicom_hub.adapters.gdcm import anon as gdcm_anon
from dicom_hub.adapters.registry import KNOWN_ADAPTERS
from dicom_hub.adapters.toolkit import annex_e, dump_text, pixel_input, syntaxes
from dicom_hub.adapters.toolkit.dump_ops import DumpingAdapter, number_text
from dicom_hub.adapters.toolkit.tag_edits import TagEdit, plan_edits
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.files import atomic_output
from dicom_hub.contract.job import Job, Outcome

_GDCMSCU = "gdcmscu 3.0.21 aborts (SIGABRT, 'ProtocolStream as nullptr is invalid') after every association; --get/--worklist fail"

# transcode: gdcmconv flags per target UID ("-w" is added first for compressed input).
_FLAGS: dict[str, tuple[str, ...]] = {
    syntaxes.EXPLICIT_LE: ("-X",),
    syntaxes.IMPLICIT_LE: ("-M",),
    syntaxes.DEFLATED_LE: ("-d",),
    syntaxes.RLE: ("-R",),
    syntaxes.JPEG_BASELINE: ("-J", "-Y"),
    syntaxes.JPEG_LOSSLESS_SV1: ("-J",),
    syntaxes.JPEGLS_LOSSLESS: ("-L",),
    syntaxes.JPEGLS_NEAR: ("-L", "-Y"),
    syntaxes.J2K_LOSSLESS: ("-K",),
    syntaxes.J2K_LOSSY: ("-K", "-Y"),
}
_NATIVE_OUTPUT = (syntaxes.EXPLICIT_LE, syntaxes.IMPLICIT_LE, syntaxes.DEFLATED_LE)


class GdcmAdapter(DumpingAdapter):
    """GDCM command-line tools, found on PATH or in DICOM_HUB_GDCM_BIN_DIR."""

    name = "gdcm"
    language = "cpp"
    toolkit = "GDCM"
    install_hint = KNOWN_ADAPTERS["gdcm"].hint
    executable = "gdcmdump"
    version_pattern = r"gdcm (\d+\.\d+\.\d+)"

    def declare_ops(self) -> dict[str, OpEntry]:
        return {
            "dump": supports("max_depth", "max_value_length", "include_pixel_data", handler=self._dump, note="gdcmdump's own text (binary values shortened by GDCM)"),
            "info": supports(handler=self._info, note="built from gdcmdump output"),
            "to_json": Unsupported("GDCM writes only PS3.19 XML (gdcmxml), not the DICOM JSON Model"),
            "from_json": Unsupported("GDCM reads only PS3.19 XML (gdcmxml), not the DICOM JSON Model"),
            "validate": Unsupported("GDCM has no validator (gdcminfo only reports whether the file reads)"),
            "modify_tags": supports("set", "delete", handler=self._modify_tags, note="gdcmanon --dumb; tags must be in the DICOM dictionary (no 'vr' option)"),
            "split_multiframe": Unsupported("gdcmtar -U handles only Enhanced IODs (RT Dose and SC fail with 'MediaStorage is not handled')"),
            "to_image": Unsupported(
                "gdcmimg 3.0.21 writes only PNM with raw stored values (no window or LUT, truncated output for signed "
                "16-bit), and silently writes DICOM for .png/.jpg names"
            ),
            "stats": Unsupported("GDCM prints no pixel statistics"),
            "histogram": Unsupported("GDCM prints no pixel histogram"),
            "transcode": supports(
                "transfer_syntax", "quality", "near_lossless_error", "compression_ratio", "keep_sop_instance_uid", handler=self._transcode,
                note="gdcmconv: native, deflated, RLE, JPEG (8-bit grey only), JPEG-LS and JPEG 2000 (lossless and lossy; the only "
                "J2K encoder here); no HTJ2K; lossy output always gets a new SOP Instance UID (keep_sop_instance_uid: true is refused)",
            ),
            "anonymize": supports(
                handler=self._anonymize,
                note="gdcmanon -e (GDCM's E.1 basic profile) with a per-run throw-away certificate, private tags removed, "
                "the X/Z/D actions GDCM misses (Table E.1-1 2024b and what the IOD does not need, as the Python engine decides) "
                "applied to top-level elements, the Encrypted Attributes Sequence removed; the result is checked against the table "
                "and the IOD and refused if any identifying value survives "
                "(e.g. inside sequences); no profile options, keys, patient prefix, burned-in override or mapping file",
            ),
            **dict.fromkeys(("echo", "store", "find", "move", "get", "worklist"), Unsupported(_GDCMSCU)),
            **python_only(self.name),
        }

    # -- command lines (pure: golden tests call these) ---------------------------------------------
    def _build_cmd(self, job: Job, out: Path | None = None) -> list[str]:
        """The argv of the op's main step; `out` replaces job.output (a temporary path in practice)."""
        src = str(job.input)
        target = str(out or job.output)
        if job.op in ("dump", "info"):
            return [self.tool("gdcmdump"), src]
        if job.op == "modify_tags":
            edits = plan_edits(job.option("set") or {}, job.option("delete") or [])
            return [self.tool("gdcmanon"), *dumb_flags(edits), "-i", src, "-o", target]
        raise HubError(ErrorCode.UNSUPPORTED_OP, self.unsupported_reason(job.op))

    def _transcode_cmds(self, job: Job, source_ts: str | None, out: Path, work: Path) -> list[list[str]]:
        """gdcmconv once; deflating compressed input takes a decompression (-w) first, as
        gdcmconv -w -d writes plain Explicit VR Little Endian."""
        flags = self._transcode_flags(job, source_ts)
        gdcmconv, src = self.tool("gdcmconv"), str(job.input)
        method = syntaxes.lossy_method(syntaxes.writable(job.option("transfer_syntax")))
        encoded = work / "encoded.dcm" if method else out
        if flags == ["-w", "-d"]:
            raw = work / "decompressed.dcm"
            steps = [[gdcmconv, "-w", src, str(raw)], [gdcmconv, "-d", str(raw), str(encoded)]]
        else:
            steps = [[gdcmconv, *flags, src, str(encoded)]]
        if method:
            # gdcmconv marks lossy output (0028,2110/2112) but leaves out the method (0028,2114).
            steps.append([self.tool("gdcmanon"), "--dumb", "--replace", f"28,2114={method}", "-i", str(encoded), "-o", str(out)])
        return steps

    def _transcode_flags(self, job: Job, source_ts: str | None) -> list[str]:
        target = syntaxes.writable(job.option("transfer_syntax"))
        if target not in _FLAGS:
            raise HubError(ErrorCode.CODEC_UNAVAILABLE, f"gdcmconv cannot write transfer syntax {target}", "use backend python (HTJ2K)")
        lossy = target in syntaxes.LOSSY
        if job.option("keep_sop_instance_uid") and lossy:
            raise HubError(ErrorCode.UNSUPPORTED_OPTION, "gdcmconv always gives lossy output a new SOP Instance UID", "use backend dcmtk or python to keep it")
        _refuse_misplaced(job, target)
        # gdcmconv rewrites the byte order only while decoding: -w also for big endian input.
        decode_first = source_ts not in syntaxes.NATIVE or source_ts == syntaxes.EXPLICIT_BE
        flags = ["-w"] if decode_first and target in _NATIVE_OUTPUT else []
        flags += _FLAGS[target]
        if target == syntaxes.JPEG_BASELINE:
            flags += ["-q", str(job.option("quality"))]  # the catalog's defaults, not GDCM's
        if target == syntaxes.JPEGLS_NEAR:
            flags += ["-e", str(job.option("near_lossless_error"))]
        if target == syntaxes.J2K_LOSSY:
            flags += ["-r", number_text(job.option("compression_ratio"))]
        return flags

    # -- ops (dump and info: DumpingAdapter) ---------------------------------------------------------
    def _complete(self, job: Job, lines: list[dump_text.DumpLine]) -> list[dump_text.DumpLine]:
        """gdcmdump cuts long values; its -d mode prints them in full (but without VRs for implicit data)."""
        if not any(line.depth == 0 and dump_text.is_cut(line) for line in lines):
            return lines
        full = self._run_checked(job, [self.tool("gdcmdump"), "-d", str(job.input)], "read the file")
        return dump_text.with_full_values(lines, dump_text.parse_tab_dump(full.stdout))

    def _transcode(self, job: Job) -> Outcome:
        assert job.output is not None
        source = syntaxes.file_transfer_syntax(job.input)
        target = syntaxes.writable(job.option("transfer_syntax"))
        header = pixel_input.refuse_truncated_pixels(job.input)  # gdcmconv zero-fills the missing bytes
        pixel_input.refuse_one_bit_encapsulated(header, "GDCM")  # gdcmconv aborts on them
        if target == syntaxes.JPEG_BASELINE:
            syntaxes.check_baseline_input(job.input)  # gdcmconv would write JPEG extended instead
        if target == syntaxes.JPEG_BASELINE and _samples_per_pixel(job.input) > 1:
            raise HubError(
                ErrorCode.CODEC_UNAVAILABLE,
                "GDCM 3.0.21 writes colour JPEG labelled RGB whose data other decoders read as YCbCr (colours change)",
                "use backend dcmtk or python for lossy JPEG of colour images",
            )
        with tempfile.TemporaryDirectory(prefix="dicom-hub-gdcm-") as work, atomic_output(job.output, job.overwrite) as tmp:
            runs = [self._run_checked(job, argv, f"transcode to {target}") for argv in self._transcode_cmds(job, source, tmp, Path(work))]
            syntaxes.check_written(tmp, target)
        metadata = {"transfer_syntax": target, "transfer_syntax_name": syntaxes.uid_name(target), "source_transfer_syntax": source}
        return Outcome(metadata=metadata, output_files=[str(job.output)], stdout="".join(r.stdout for r in runs), stderr="".join(r.stderr for r in runs))

    def _modify_tags(self, job: Job) -> Outcome:
        assert job.output is not None
        with atomic_output(job.output, job.overwrite) as tmp:
            run = self._run_checked(job, self._build_cmd(job, tmp), "modify the tags")
        edits = plan_edits(job.option("set") or {}, job.option("delete") or [])
        metadata = {"set": [e.key for e in edits if e.action == "set"], "deleted": [e.key for e in edits if e.action == "delete"]}
        return Outcome(metadata=metadata, output_files=[str(job.output)], stdout=run.stdout, stderr=run.stderr)

    def _anonymize(self, job: Job) -> Outcome:
        assert job.output is not None
        with tempfile.TemporaryDirectory(prefix="dicom-hub-gdcm-") as work, atomic_output(job.output, job.overwrite) as tmp:
            runs = gdcm_anon.anonymize(self, job, tmp, Path(work))
            report = annex_e.leak_check(job.input, tmp)
        return Outcome(metadata=report, output_files=[str(job.output)], stdout="".join(r.stdout for r in runs), stderr="".join(r.stderr for r in runs))


def _samples_per_pixel(path: Path) -> int:
    from pydicom import dcmread

    try:
        return int(dcmread(path, stop_before_pixels=True, specific_tags=["SamplesPerPixel"]).get("SamplesPerPixel", 1))
    except Exception:
        return 1


def dumb_flags(edits: list[TagEdit]) -> list[str]:
    """gdcmanon --dumb flags: --replace creates or sets, --empty for empty values, --remove deletes."""
    flags = ["--dumb"]
    for edit in edits:
        if edit.action == "delete":
            flags += ["--remove", edit.short_hex]
        elif edit.value == "":
            flags += ["--empty", edit.short_hex]
        else:
            flags += ["--replace", f"{edit.short_hex}={edit.value}"]
    return flags


def _refuse_misplaced(job: Job, target: str) -> None:
    """An option given for another codec is refused rather than silently ignored."""
    applies = {
        "quality": target == syntaxes.JPEG_BASELINE,
        "near_lossless_error": target == syntaxes.JPEGLS_NEAR,
        "compression_ratio": target == syntaxes.J2K_LOSSY,
    }
    for option, ok in applies.items():
        if option in job.options and not ok:
            raise HubError(ErrorCode.UNSUPPORTED_OPTION, f"gdcm: option {option!r} does not apply to transfer syntax {target}", f"remove {option!r}")


