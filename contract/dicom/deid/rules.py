"""One decision per element: what the profile does to a public attribute at one place in a data set.

Shared by the Python engine (`python_backend/deid/engine.py`) and by the plan the command-line
toolkits execute (`adapters/toolkit/annex_e.py`), so every backend removes, empties, dummies and
replaces the same elements, and refuses the same burned-in pixels.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache, lru_cache

from .iods import IodAttributes, TagPath
from .profile import Profile

# SOP classes whose pixels (or document) usually carry burned-in identifying text.
BURNED_IN_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.7": "Secondary Capture",
    "1.2.840.10008.5.1.4.1.1.7.1": "Multi-frame Single Bit Secondary Capture",
    "1.2.840.10008.5.1.4.1.1.7.2": "Multi-frame Grayscale Byte Secondary Capture",
    "1.2.840.10008.5.1.4.1.1.7.3": "Multi-frame Grayscale Word Secondary Capture",
    "1.2.840.10008.5.1.4.1.1.7.4": "Multi-frame True Color Secondary Capture",
    "1.2.840.10008.5.1.4.1.1.6.1": "Ultrasound",
    "1.2.840.10008.5.1.4.1.1.6.2": "Enhanced Ultrasound Volume",
    "1.2.840.10008.5.1.4.1.1.3.1": "Ultrasound Multi-frame",
    "1.2.840.10008.5.1.4.1.1.104.1": "Encapsulated PDF",
    "1.2.840.10008.5.1.4.1.1.104.2": "Encapsulated CDA",
}


@cache
def public_vr(tag: int) -> str | None:
    """The dictionary VR of a public tag (repeating groups included), None when unknown."""
    from ..pydicom_tables import dictionary_vr  # pydicom's dictionary, without importing pydicom (start-up)

    return dictionary_vr(tag)


@lru_cache(maxsize=1 << 16)  # the same few hundred (profile, IOD, place) questions, file after file
def decide(profile: Profile, iod: IodAttributes, parent: TagPath, tag: int) -> str | None:
    """The action ('X', 'Z', 'D', 'K', 'C', 'U') for public `tag` in a data set at `parent` (the tags
    of the sequences above it), or None to keep an attribute Table E.1-1 does not list and the IOD
    defines there (a sequence's items are then processed by the same rules).

    Listed attributes take the table's action, combined actions settled by the IOD's type. Unlisted
    ones are removed unless the IOD defines them (PS3.15 E.1.1: not needed by the IOD, not kept),
    and so are public tags no dictionary knows; where the IOD tables do not describe a sequence's
    contents (deep SR trees), unlisted dictionary attributes are kept and cleaned recursively.
    """
    path = (*parent, tag)
    action = profile.action(tag, iod.requirement(path))
    if action is not None:
        return action
    if public_vr(tag) is None or (iod.describes(parent) and not iod.defines(path)):
        return "X"
    return None


def overlay_leftovers(tags: Iterable[int]) -> list[int]:
    """The elements of overlay groups (60xx) left without Overlay Data (60xx,3000), e.g. after the
    profile removed it: they describe an overlay that is gone, and Overlay Data is Type 1 in the
    Overlay Plane module, so the whole group goes and the result stays a valid instance."""
    tags = list(tags)
    with_data = {tag >> 16 for tag in tags if tag >> 24 == 0x60 and tag & 0xFFFF == 0x3000}
    return [tag for tag in tags if tag >> 24 == 0x60 and tag >> 16 not in with_data]
