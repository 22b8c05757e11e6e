"""One code for one situation: the error code of each input condition (`input-conditions.json`).

Adapters refuse with `refusal("no_pixel_data", ...)` instead of picking a code themselves, so a
condition gets the same code on every backend.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from dicom_hub.contract.errors import ErrorCode, HubError

TABLE = Path(__file__).with_name("input-conditions.json")


@cache
def conditions() -> dict[str, dict[str, str]]:
    """condition -> {code, when}, as the contract publishes it."""
    return json.loads(TABLE.read_text(encoding="utf-8"))["conditions"]


def code_for(condition: str) -> ErrorCode:
    return ErrorCode(conditions()[condition]["code"])


def refusal(condition: str, message: str, hint: str | None = None) -> HubError:
    """The HubError of `condition`: the table's code with this message and hint."""
    return HubError(code_for(condition), message, hint)
