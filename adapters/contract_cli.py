"""Contract-native programs as backends (filled in by the contract-native CLI work).

A program that reads a request on stdin and writes a response on stdout can be registered
without code; until that lands, none are configured.
"""

from __future__ import annotations

from .base import Adapter


def configured_backends() -> dict[str, Adapter]:
    return {}
