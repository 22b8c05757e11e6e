"""`dump` and `info` built from a toolkit's text dump (see `dump_text`), the same way for
every adapter whose toolkit prints one (DCMTK's dcmdump, GDCM's gdcmdump)."""

from __future__ import annotations

from typing import Any

from dicom_hub.adapters.subprocess_adapter import SubprocessAdapter, ToolRun
from dicom_hub.adapters.toolkit import dump_text, syntaxes
from dicom_hub.adapters.toolkit.tool_errors import check
from dicom_hub.contract.files import atomic_output
from dicom_hub.contract.info import arrange_info, info_fields
from dicom_hub.contract.job import Job, Outcome


class DumpingAdapter(SubprocessAdapter):
    """A toolkit adapter whose `dump` and `info` come from its text dump (`_build_cmd` gives the
    dump command): its op table names `_dump` and `_info` as their handlers."""

    def _run_checked(self, job: Job, argv: list[str], what: str) -> ToolRun:
        return check(self, self.run_cmd(argv, timeout=self.timeout_for(job)), what, job.input if job.inputs else None)

    def _dump_lines(self, job: Job) -> tuple[ToolRun, list[dump_text.DumpLine]]:
        run = self._run_checked(job, self._build_cmd(job), "read the file")
        return run, dump_text.parse_dump(run.stdout)

    def _complete(self, job: Job, lines: list[dump_text.DumpLine]) -> list[dump_text.DumpLine]:
        """Hook for toolkits that cut long values in their dump."""
        return lines

    def _dump(self, job: Job) -> Outcome:
        run, lines = self._dump_lines(job)
        return dump_outcome(job, run, lines)

    def _info(self, job: Job) -> Outcome:
        run, lines = self._dump_lines(job)
        return info_outcome(job, run, self._complete(job, lines))


def dump_outcome(job: Job, run: ToolRun, lines: list[dump_text.DumpLine]) -> Outcome:
    """The `dump` op's outcome from a parsed text dump (shared by the dump-based adapters)."""
    max_len = int(job.option("max_value_length"))
    kept = dump_text.select_lines(lines, job.option("max_depth"), bool(job.option("include_pixel_data")))
    text = "".join(dump_text.cut_line(line, max_len) + "\n" for line in kept)
    elements = dump_text.elements_metadata(kept, max_len)
    metadata = {"elements": elements, "element_count": len(elements)}
    if job.output is None:
        return Outcome(metadata=metadata, stdout=text, stderr=run.stderr)
    with atomic_output(job.output, job.overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Outcome(metadata=metadata, output_files=[str(job.output)], stderr=run.stderr)


def info_outcome(job: Job, run: ToolRun, lines: list[dump_text.DumpLine]) -> Outcome:
    """The `info` summary from a parsed text dump (shared by the dump-based adapters)."""
    keywords = tuple(kw for level in info_fields().values() for kw in level)
    values: dict[str, Any] = dump_text.top_level_values(lines, keywords)
    ts = dump_text.meta_value(lines, 0x00020010)
    sop_class = values.get("SOPClassUID")
    file = {
        "path": str(job.input),
        "size_bytes": job.input.stat().st_size,
        "transfer_syntax": ts,
        "transfer_syntax_name": syntaxes.uid_name(ts),
        "sop_class_name": syntaxes.uid_name(sop_class) if isinstance(sop_class, str) else None,
    }
    return Outcome(metadata=arrange_info(values, file), stderr=run.stderr)


def number_text(value: float) -> str:
    """A number as a command-line argument: 40 rather than 40.0."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))
