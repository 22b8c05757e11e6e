"""Shifting DA and DT values by a whole number of days (Retain Modified Dates option).

Every date of a patient moves by the same offset, so intervals between any two dates and times
are preserved exactly; times of day are left alone. A value that cannot be parsed is not kept
(the caller empties it): an unshiftable date is still a real date.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

_DA = re.compile(r"^(\d{4})(\d{2})?(\d{2})?$")
_DT = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(.*)$")


def _shift(year: str, month: str | None, day: str | None, days: int) -> str | None:
    """Shift a possibly partial date; the result keeps the input's precision."""
    try:
        moved = date(int(year), int(month or 1), int(day or 1)) + timedelta(days=days)
    except (ValueError, OverflowError):
        return None
    text = f"{moved.year:04d}{moved.month:02d}{moved.day:02d}"
    return text[: 4 + (2 if month else 0) + (2 if day else 0)]


def shift_da(value: str, days: int) -> str | None:
    """'20070803' -> shifted; legacy 'YYYY.MM.DD' accepted; multiple values (a\\b) each shifted."""
    out = []
    for part in value.split("\\"):
        part = part.strip().replace(".", "")
        if not part:
            out.append("")
            continue
        match = _DA.match(part)
        shifted = match and _shift(match[1], match[2], match[3], days)
        if not shifted:
            return None
        out.append(shifted)
    return "\\".join(out)


def shift_dt(value: str, days: int) -> str | None:
    """'YYYYMMDDHHMMSS.FFFFFF&ZZXX' (any precision) -> the date part shifted, the rest kept."""
    out = []
    for part in value.split("\\"):
        part = part.strip()
        if not part:
            out.append("")
            continue
        match = _DT.match(part)
        if not match or (match[4] and not match[3]) or not re.fullmatch(r"[\d.+\-]*", match[4]):
            return None
        shifted = _shift(match[1], match[2], match[3], days)
        if not shifted:
            return None
        out.append(shifted + match[4])
    return "\\".join(out)
