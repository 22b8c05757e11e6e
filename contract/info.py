"""The `info` summary shape, shared by every backend (keys come from `info_fields.json`)."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any


@cache
def info_fields() -> dict[str, tuple[str, ...]]:
    """level -> keywords, in display order."""
    data = json.loads(files("dicom_hub.contract").joinpath("info_fields.json").read_text())
    return {level: tuple(keywords) for level, keywords in data.items() if not level.startswith("$")}


def arrange_info(values: dict[str, Any], file: dict[str, Any]) -> dict[str, Any]:
    """Group keyword -> value pairs (as `element_value` renders them) into the info levels.

    Missing and empty values are left out, so every backend reports the same keys for a file.
    """
    summary: dict[str, Any] = {
        level: {kw: values[kw] for kw in keywords if values.get(kw) not in (None, "", [])}
        for level, keywords in info_fields().items()
    }
    summary["file"] = file
    return summary
