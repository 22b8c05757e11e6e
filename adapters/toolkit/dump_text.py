"""Reading the text dumps of DCMTK (`dcmdump`) and GDCM (`gdcmdump`) back into elements.

Both print one element per line as `(gggg,eeee) VR value  # length, VM name`, two spaces of
indent per nesting step (items one step in, their elements two). String values sit in
brackets; binary numbers are printed bare and separated by backslashes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

_LINE = re.compile(r"^(?P<indent> *)\((?P<group>[0-9a-fA-F]{4}),(?P<elem>[0-9a-fA-F]{4})\) (?P<vr>\S\S)(?: (?P<rest>.*))?$")
_TRAILER = re.compile(r"^\s*(?P<length>\d+|u/l|\?),\s*(?P<vm>\S+)(?:\s+(?P<name>.*))?$")
_IMPLICIT_VR = re.compile(r"^\((?P<vr>[A-Z]{2})\)\s*(?P<rest>.*)$")
_EMPTY = ("(no value available)", "(no value)")

BINARY_NUMBER_VRS = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"})
BINARY_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN"})
# Text VRs whose backslash is a character, not a value separator.
SINGLE_TEXT_VRS = frozenset({"LT", "ST", "UT", "UR"})
DELIMITERS = frozenset({0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD})
PIXEL_DATA = 0x7FE00010


@dataclass(slots=True)  # not frozen: thousands per request, and frozen init costs
class DumpLine:
    """One element line of a dump: where it sits and what it says."""

    tag: int
    vr: str
    depth: int
    raw_value: str  # the value text as printed (brackets included)
    length: str
    name: str
    line: str

    @property
    def tag_hex(self) -> str:
        return f"{self.tag:08X}"

    @property
    def is_delimiter(self) -> bool:
        return self.tag in DELIMITERS

    @property
    def is_empty(self) -> bool:
        return self.raw_value in _EMPTY or self.raw_value in ("", "[]")

    @property
    def text(self) -> str:
        """The value without brackets (strings) or as printed (everything else)."""
        value = self.raw_value
        if self.is_empty:
            return ""
        if value.startswith("[") and value.endswith("]"):
            return value[1:-1]
        return value


def parse_dump(text: str) -> list[DumpLine]:
    """Every element line of a dump (comments, blank lines and item lines without data skipped)."""
    lines: list[DumpLine] = []
    for line in text.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        tag = int(match["group"] + match["elem"], 16)
        rest = match["rest"] or ""
        # The trailer "# length, VM name" follows the last '#' (names hold none; values may).
        head, _, tail = rest.rpartition("#")
        trailer = _TRAILER.match(tail) if head else None
        value, length, name = (head, trailer["length"], trailer["name"] or "") if trailer else (rest.strip(), "", "")
        vr = match["vr"]
        implicit = _IMPLICIT_VR.match(value)
        if vr in ("??", "UN") and implicit:  # gdcmdump on Implicit VR data: "?? (DA) [20030903]"
            vr, value = implicit["vr"], implicit["rest"]
        indent = len(match["indent"])
        depth = (indent - 2) // 4 + 1 if tag in DELIMITERS else indent // 4
        lines.append(DumpLine(tag, vr, depth, value.strip(), length, name.strip(), line))
    return lines


_TAB_LINE = re.compile(r"^\((?P<group>[0-9a-fA-F]{4}),(?P<elem>[0-9a-fA-F]{4})\)\t(?P<vr>\S+)\t(?P<length>\d+)\t(?P<value>.*)$")


def is_cut(line: DumpLine) -> bool:
    """Whether a string value was printed shorter than stored (gdcmdump cuts long values)."""
    return line.raw_value.startswith("[") and line.length.isdigit() and len(line.text) < int(line.length) - 1


def parse_tab_dump(text: str) -> dict[int, str]:
    """Top-level values of `gdcmdump -d` (tab-separated, printed in full): tag -> value text."""
    values = {}
    for line in text.splitlines():
        match = _TAB_LINE.match(line)
        if match:
            values[int(match["group"] + match["elem"], 16)] = match["value"]
    return values


def with_full_values(lines: list[DumpLine], full: dict[int, str]) -> list[DumpLine]:
    """Replace cut top-level string values by their full text."""
    from dataclasses import replace

    return [replace(line, raw_value=f"[{full[line.tag]}]") if line.depth == 0 and line.tag in full and is_cut(line) else line for line in lines]


def element_value(line: DumpLine) -> Any:
    """The value the way `python_backend._values.element_value` renders it: stored strings
    without padding, binary numbers as numbers, several values as a list, empty as None."""
    if line.is_empty:
        return None
    text = line.text
    if line.vr in BINARY_NUMBER_VRS:
        numbers = [_number(part, line.vr) for part in text.split("\\")]
        return numbers if len(numbers) > 1 else numbers[0]
    if line.vr in SINGLE_TEXT_VRS:
        return text.strip()
    parts = [part.strip() for part in text.split("\\")]
    return parts if len(parts) > 1 else parts[0]


def _number(text: str, vr: str) -> int | float:
    return float(text) if vr in ("FL", "FD") else int(text)


@cache
def keyword_tags(keywords: tuple[str, ...]) -> dict[int, str]:
    """tag -> keyword for a set of standard keywords (pydicom's dictionary)."""
    from pydicom.datadict import tag_for_keyword

    return {tag: kw for kw in keywords if (tag := tag_for_keyword(kw)) is not None}


def top_level_values(lines: list[DumpLine], keywords: tuple[str, ...]) -> dict[str, Any]:
    """keyword -> value for the top-level data set elements among `keywords` (file meta excluded)."""
    wanted = keyword_tags(keywords)
    values: dict[str, Any] = {}
    for line in lines:
        if line.depth == 0 and line.tag in wanted and line.tag >> 16 != 0x0002:
            values[wanted[line.tag]] = element_value(line)
    return values


def meta_value(lines: list[DumpLine], tag: int) -> str | None:
    """A file meta (group 0002) string value, e.g. the Transfer Syntax UID."""
    for line in lines:
        if line.tag == tag and line.depth == 0:
            return line.text.strip() or None
    return None


def shown_value(line: DumpLine, max_len: int) -> str:
    """The value as a dump shows it: binary data by size, long text cut with '...'."""
    if line.vr == "SQ":
        return line.raw_value
    if line.tag == PIXEL_DATA or line.vr in BINARY_VRS:
        return f"<{line.vr} binary, {line.length} bytes>"
    text = line.text
    return text if len(text) <= max_len else text[: max_len - 3] + "..."


def cut_line(line: DumpLine, max_len: int) -> str:
    """The tool's own line, with a value longer than `max_len` cut and ending in '...'."""
    value = line.raw_value
    if len(value) <= max_len:
        return line.line
    return line.line.replace(value, value[: max_len - 3] + "...", 1)


def select_lines(lines: list[DumpLine], max_depth: int | None, with_pixels: bool) -> list[DumpLine]:
    """The lines a dump request asks for: not deeper than `max_depth`, Pixel Data only if asked."""
    kept: list[DumpLine] = []
    skip_below: int | None = None  # depth of an element whose content is being left out
    for line in lines:
        if skip_below is not None:
            if line.depth > skip_below or (line.is_delimiter and line.depth >= skip_below):
                continue
            skip_below = None
        if line.tag == PIXEL_DATA and not with_pixels:
            skip_below = line.depth
            continue
        if max_depth is not None and line.depth > max_depth:
            continue
        kept.append(line)
    return kept


def elements_metadata(lines: list[DumpLine], max_len: int) -> list[dict[str, Any]]:
    """The `dump` op's structured elements (same shape as the Python backend's)."""
    elements = []
    for index, line in enumerate(lines):
        if line.is_delimiter:
            continue
        value = f"<sequence of {_item_count(lines, index)} item(s)>" if line.vr == "SQ" else shown_value(line, max_len)
        elements.append({"tag": line.tag_hex, "vr": line.vr, "keyword": _keyword(line), "depth": line.depth, "value": value})
    return elements


def _item_count(lines: list[DumpLine], index: int) -> int:
    """Items of the sequence at `index`: item lines one level deeper, up to the next element at its level."""
    depth, count = lines[index].depth, 0
    for line in lines[index + 1 :]:
        if line.tag == 0xFFFEE000 and line.depth == depth + 1:
            count += 1
        elif line.depth <= depth and not line.is_delimiter:
            break
    return count


def _keyword(line: DumpLine) -> str:
    """The standard keyword: dcmdump prints it (no pydicom import needed); private tags have none."""
    if (line.tag >> 16) % 2:
        return ""
    if line.name.isidentifier():
        return line.name
    return _keyword_for(line.tag)


@cache
def _keyword_for(tag: int) -> str:
    from pydicom.datadict import keyword_for_tag

    return keyword_for_tag(tag) or ""
