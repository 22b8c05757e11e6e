"""One decision per element: what the profile does to a public attribute at one place in a data set.

Shared by the engine and by the plan the command-line toolkits execute (`adapters/toolkit/annex_e.py`),
so every backend removes, empties, dummies and replaces the same elements.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache, lru_cache

from .iods import IodAttributes, TagPath
from .profile import Profile


@cache
def public_vr(tag: int) -> str | None:
    """The dictionary VR of a public tag (repeating groups included), None when unknown."""
    from ..pydicom_tables import entry  # pydicom's dictionary, without importing pydicom (start-up)

    found = entry(tag)
    return None if found is None else found[0]


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
