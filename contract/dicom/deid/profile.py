"""PS3.15 Annex E as data: Table E.1-1 (and the safe private list) read from `contract/data/`.

The repeating-group rows (Curve Data, Overlay Data, Overlay Comments) live in a second file of the
same shape. The engine never names a tag: it asks `Profile.action(tag)` which action the table gives that
attribute under the chosen options, and `Profile.keeps_private(...)` whether a private element is
on the safe list. Combined actions ('X/Z', 'Z/D', 'X/Z/D', ...) resolve by what the IOD requires of
the attribute (type 3: X, type 2: Z, type 1: D; see `iods.py`), and to their first, most protective
choice when the IOD does not say; 'X/Z/U*' sequences (Referenced Image, Source Image) are kept with
every UID inside replaced, so references stay valid.

The files are parsed once per version of them and the parsed rows kept between runs
(`contract/derived.py`): the tables stay the one source, the cache only spares each run the parse.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import import_module
from pathlib import Path

from ...derived import derived

EDITION = "2024b"
TABLE_NAME = f"ps3.15-annex-e-{EDITION}.tsv"
REPEATING_NAME = f"ps3.15-annex-e-{EDITION}-repeating.tsv"
SAFE_PRIVATE_NAME = f"ps3.15-safe-private-{EDITION}.tsv"

# The option columns of Table E.1-1, in table order (also the catalog's `profile_options` enum).
OPTIONS = (
    "retain_safe_private",
    "retain_uids",
    "retain_device_identity",
    "retain_institution_identity",
    "retain_patient_characteristics",
    "retain_full_dates",
    "retain_modified_dates",
    "clean_descriptors",
    "clean_structured_content",
    "clean_graphics",
)

# PS3.16 CID 7050 "De-identification Method": the profile and each option (scheme DCM).
BASIC_PROFILE_CODE = ("113100", "Basic Application Confidentiality Profile")
OPTION_CODES = {
    "clean_graphics": ("113103", "Clean Graphics Option"),
    "clean_structured_content": ("113104", "Clean Structured Content Option"),
    "clean_descriptors": ("113105", "Clean Descriptors Option"),
    "retain_full_dates": ("113106", "Retain Longitudinal Temporal Information Full Dates Option"),
    "retain_modified_dates": ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    "retain_patient_characteristics": ("113108", "Retain Patient Characteristics Option"),
    "retain_device_identity": ("113109", "Retain Device Identity Option"),
    "retain_uids": ("113110", "Retain UIDs Option"),
    "retain_safe_private": ("113111", "Retain Safe Private Option"),
    "retain_institution_identity": ("113112", "Retain Institution Identity Option"),
}

ACTIONS = frozenset("XZDKCU")


@dataclass(frozen=True)
class Row:
    """One attribute of Table E.1-1: its basic action and the action each option substitutes."""

    tag: int
    keyword: str
    basic: str
    by_option: dict[str, str]


def data_dir() -> Path:
    contract_init = import_module("dicom_hub.contract").__file__
    assert contract_init is not None, "dicom_hub.contract is a regular package (it has an __init__.py)"
    return Path(contract_init).parent / "data"


def _data_lines(path: Path) -> list[str]:
    return [
        line for line in path.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")
    ]


def _parse_tag(text: str) -> int:
    """'(0008,0018)' -> 0x00080018."""
    group, element = text.strip("()").split(",")
    return int(group, 16) << 16 | int(element, 16)


def _rows(name: str) -> list[tuple[str, Row]]:
    """(tag text, row) for each record of a table file; the tag is parsed with 'x' read as 0."""
    parsed = derived(f"annex-e-{name}", 1, [data_dir() / name], lambda: _parse_rows(name))
    return [(text, Row(tag, keyword, basic, by_option)) for text, tag, keyword, basic, by_option in parsed]


def _parse_rows(name: str) -> list[tuple[str, int, str, str, dict[str, str]]]:
    """The records of a table file as plain values (what `derived` keeps between runs)."""
    import csv  # only when the table changed since the last run parsed it

    rows = []
    for record in csv.DictReader(_data_lines(data_dir() / name), delimiter="\t"):
        by_option = {option: record[option].strip() for option in OPTIONS if record.get(option, "").strip()}
        text = record["tag"]
        tag = _parse_tag(text.replace("x", "0").replace("X", "0"))
        rows.append((text, tag, record["keyword"], record["basic_action"].strip(), by_option))
    return rows


@cache
def load_table() -> dict[int, Row]:
    """Table E.1-1 by tag (the rows with a single tag)."""
    return {row.tag: row for _, row in _rows(TABLE_NAME)}


@cache
def load_repeating() -> tuple[tuple[int, int, Row], ...]:
    """The repeating-group rows as (mask, value, row): a tag matches when tag & mask == value."""
    found = []
    for text, row in _rows(REPEATING_NAME):
        digits = text.strip("()").replace(",", "")
        mask = int("".join("0" if c in "xX" else "F" for c in digits), 16)
        found.append((mask, row.tag & mask, row))
    return tuple(found)


def find_row(tag: int) -> Row | None:
    """The table row for `tag`: its own row, else a repeating-group row that matches it."""
    row = load_table().get(tag)
    if row is None:
        row = next((r for mask, value, r in load_repeating() if tag & mask == value), None)
    return row


@cache
def load_safe_private() -> frozenset[tuple[int, str, int]]:
    """The safe private list as (group, creator, element low byte)."""
    import csv

    safe = set()
    for record in csv.DictReader(_data_lines(data_dir() / SAFE_PRIVATE_NAME), delimiter="\t"):
        safe.add((int(record["group"], 16), record["creator"].strip(), int(record["element"], 16)))
    return frozenset(safe)


# For each IOD requirement, the combined-action choices in order of preference.
_PREFERENCE = {"1": "DZX", "2": "ZDX", "3": "XZD"}


def resolve(action: str, requirement: str | None = None) -> str:
    """A table cell -> one action letter: 'X/Z/U*' -> 'U'; 'X/Z/D' -> 'X', 'Z' or 'D' when the IOD
    makes the attribute optional, type 2 or type 1 (`requirement` '3', '2', '1'), else 'X'."""
    if action.endswith("U*"):
        return "U"
    choices = action.split("/")
    if not set(choices) <= ACTIONS:
        raise ValueError(f"unknown Annex E action {action!r}")
    if len(choices) == 1 or requirement is None:
        return choices[0]
    return next(choice for choice in _PREFERENCE[requirement] if choice in choices)


class Profile:
    """The basic profile plus a set of options, answering per tag (answers cached per process)."""

    def __init__(self, options: frozenset[str] | set[str] | tuple[str, ...] = frozenset()) -> None:
        unknown = set(options) - set(OPTIONS)
        if unknown:
            raise ValueError(f"unknown profile options: {sorted(unknown)}")
        self.options = tuple(name for name in OPTIONS if name in options)
        self._actions: dict[tuple[int, str | None], str | None] = {}
        self.safe_private = load_safe_private() if "retain_safe_private" in self.options else frozenset()

    def action(self, tag: int, requirement: str | None = None) -> str | None:
        """The action for a public tag, or None when Table E.1-1 does not list it; `requirement`
        is the attribute's type in the IOD ('1', '2', '3'), which settles combined actions."""
        try:
            return self._actions[tag, requirement]
        except KeyError:
            pass
        row = find_row(tag)
        result = None
        if row is not None:
            cell = row.basic
            # Options that keep data are applied before those that clean, so 'clean' wins a conflict.
            for name in sorted(self.options, key=lambda n: n.startswith("clean")):
                cell = row.by_option.get(name, cell)
            result = resolve(cell, requirement)
        self._actions[tag, requirement] = result
        return result

    def keeps_private(self, group: int, creator: str | None, element_byte: int) -> bool:
        return creator is not None and (group, creator.strip(), element_byte) in self.safe_private

    @property
    def shifts_dates(self) -> bool:
        return "retain_modified_dates" in self.options and "retain_full_dates" not in self.options

    def method_codes(self) -> list[tuple[str, str]]:
        """CID 7050 codes for what was applied: the basic profile, then each option."""
        return [BASIC_PROFILE_CODE, *(OPTION_CODES[name] for name in self.options)]

    def method_values(self) -> list[str]:
        """De-identification Method (LO, VM 1-n): the profile, then one value per option."""
        return [f"dicom-hub PS3.15 E.1-1 {EDITION} basic profile", *self.options]


@cache
def profile_for(options: tuple[str, ...] = ()) -> Profile:
    """One profile per option set and process, so per-tag answers (and `rules.decide`) are computed once."""
    return Profile(frozenset(options))
