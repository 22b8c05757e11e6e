"""Reading dicom-rs text dumps (`dicom-dump`, and the command/match dumps of its SCU tools).

Line format: `(gggg,eeee) Keyword  VR (VM, N bytes): value`, sequences as `SQ (N Items)`, items
indented. Text values are quoted, several values sit in `[…]`, binary numbers are bare, and dates
and times are printed readably (`2004-01-19`, `07:27:31`), so they are turned back into DICOM form.
"""

from __future__ import annotations

import json
import re
from typing import Any

_LINE = re.compile(
    r"^(?P<indent> *)\((?P<group>[0-9A-F]{4}),(?P<elem>[0-9A-F]{4})\) (?P<name>.+?)\s+(?P<vr>[A-Z]{2}) \((?P<size>[^)]*)\)(?:: (?P<value>.*))?$"
)
_NUMBER_VRS = {"US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"}
INDENT = 6  # spaces per nesting level of an item's elements


def parse_dump(text: str) -> list[dict[str, Any]]:
    """Element lines (items and delimiters skipped): tag, vr, keyword, depth, value text."""
    elements = []
    for line in text.splitlines():
        match = _LINE.match(line)
        if match is None or match["group"] == "FFFE":
            continue
        name = match["name"].strip()
        elements.append({
            "tag": match["group"] + match["elem"],
            "vr": match["vr"],
            "keyword": "" if name.startswith("«") else name,
            "depth": len(match["indent"]) // INDENT,
            "value": (match["value"] or "").strip(),
        })
    return elements


def values(vr: str, text: str) -> list[Any]:
    """The values of one printed element, in DICOM JSON Model form."""
    text = text.strip()
    if not text or text.startswith("(no value") or text.startswith("(empty"):
        return []
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1]
        try:
            items = json.loads(f"[{inner}]")
        except ValueError:
            items = [part.strip() for part in inner.split(",")]
    else:
        try:
            items = [json.loads(text)] if text.startswith('"') else [text]
        except ValueError:
            items = [text.strip('"')]
    return [_one(vr, item) for item in items]


def _one(vr: str, item: Any) -> Any:
    if vr in _NUMBER_VRS:
        try:
            return int(item)
        except (TypeError, ValueError):
            return float(item)
    text = str(item)
    if vr == "DA":
        return text.replace("-", "")
    if vr == "TM":
        return text.replace(":", "")
    if vr == "DT":
        return re.sub(r"[-: ]", "", text)
    if vr == "PN":
        return {"Alphabetic": text}
    return text


_ITEM = re.compile(r"^(?P<indent> *)\(FFFE,E000\)")


def to_json_model(text: str) -> dict[str, Any]:
    """One dumped data set as a DICOM JSON Model object (items nested under their sequences).

    An item line sits 4 spaces deeper than its sequence; the item's elements 6 spaces deeper.
    """
    stack: list[dict[str, Any]] = [{}]  # stack[d]: the object that elements at depth d go into
    sequences: dict[int, dict[str, Any]] = {}  # depth -> the last sequence entry seen there
    for line in text.splitlines():
        item = _ITEM.match(line)
        if item is not None:
            depth = (len(item["indent"]) - 4) // INDENT
            sequence = sequences.get(depth)
            if sequence is not None:
                new_item: dict[str, Any] = {}
                sequence["Value"].append(new_item)
                del stack[depth + 1 :]
                stack.append(new_item)
            continue
        match = _LINE.match(line)
        if match is None or match["group"] == "FFFE":
            continue
        depth = len(match["indent"]) // INDENT
        if depth >= len(stack):
            continue  # an element outside any item we know of
        entry: dict[str, Any] = {"vr": match["vr"]}
        if match["vr"] == "SQ":
            entry["Value"] = []
            sequences[depth] = entry
        else:
            parsed = values(match["vr"], match["value"] or "")
            if parsed:
                entry["Value"] = parsed
        stack[depth][match["group"] + match["elem"]] = entry
    return stack[0]


def command_sets(text: str) -> list[dict[str, str]]:
    """DIMSE command dumps (group 0000) as tag -> value text, one dict per command."""
    commands: list[dict[str, str]] = []
    for element in parse_dump(text):
        if not element["tag"].startswith("0000"):
            continue
        if element["tag"] == "00000000" or not commands:
            commands.append({})
        commands[-1][element["tag"]] = element["value"]
    return commands
