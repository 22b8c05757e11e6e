"""Where adapters are found: a static catalog of the built-in ones, plus third-party adapters
registered through the entry-point group `dicom_hub.adapters`.

Nothing is imported or probed until first use, so listing names costs nothing. An adapter's op
table is checked against the op catalog when it is loaded (as pluggy checks a plugin's hook
implementations when it is registered), not when a request first meets a mistake.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import import_module

from dicom_hub.adapters.base import Adapter, OpSupport, Unsupported
from dicom_hub.contract.errors import ErrorCode, HubError

ENTRY_POINT_GROUP = "dicom_hub.adapters"


@dataclass(frozen=True)
class KnownAdapter:
    path: str  # "module:Class"
    hint: str  # how to make it available


# Sorted by name (a test asserts it). The hint is what a user sees when the backend is missing.
# Loaded by name on first use: `python` is the Python backend's own adapter class, which this layer
# never imports (the import graph runs python_backend -> adapters, tests/test_import_graph.py).
KNOWN_ADAPTERS: dict[str, KnownAdapter] = {
    "csharp": KnownAdapter("dicom_hub.adapters.csharp.adapter:CSharpAdapter", "apt-get install mono-mcs mono-runtime libgdcm-cil, then bash scripts/install/40-csharp.sh (BUILD.md, 'The C# backend')"),
    "dcmtk": KnownAdapter("dicom_hub.adapters.dcmtk.adapter:DcmtkAdapter", "apt-get install dcmtk (or point DICOM_HUB_DCMTK_BIN_DIR at a folder holding dcmdump, dcmconv, ...)"),
    "dicom-rs": KnownAdapter("dicom_hub.adapters.dicom_rs.adapter:DicomRsAdapter", "bash scripts/install/30-dicom-rs.sh (cargo install dicom-dump dicom-toimage dicom-pixeldata … --version 0.10.1); see BUILD.md#dicom-rs"),
    "gdcm": KnownAdapter("dicom_hub.adapters.gdcm.adapter:GdcmAdapter", "apt-get install libgdcm-tools (or point DICOM_HUB_GDCM_BIN_DIR at a folder holding gdcmdump, gdcmconv, gdcmanon)"),
    "pixelmed": KnownAdapter("dicom_hub.adapters.pixelmed.adapter:PixelMedAdapter", "apt-get install pixelmed-apps libpixelmed-java libpixelmed-imageio-java default-jre-headless (see BUILD.md#pixelmed)"),
    "python": KnownAdapter("dicom_hub.python_backend.adapter:PythonAdapter", "pip install 'dicom-hub[all]' (pydicom, pynetdicom, numpy, pillow and the codec plugins)"),
}

# `backend: auto` tries these in order and takes the first available one that supports the op
# and every option given. In-process Python first: fastest, and the reference implementation.
PREFERENCE = ("python", "dcmtk", "gdcm", "dicom-rs", "pixelmed", "csharp")


@cache
def _entry_points() -> dict[str, str]:
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name not in KNOWN_ADAPTERS}


def _load(name: str, path: str) -> Adapter:
    module_name, _, class_name = path.partition(":")
    try:
        cls = getattr(import_module(module_name), class_name)
    except (ImportError, AttributeError) as err:
        raise HubError(ErrorCode.BACKEND_UNAVAILABLE, f"adapter {name!r} cannot be loaded from {path}: {err}", KNOWN_ADAPTERS.get(name, KnownAdapter("", "")).hint or None) from None
    adapter = cls()
    if not isinstance(adapter, Adapter):
        raise HubError(ErrorCode.INTERNAL_ERROR, f"{path} is not a dicom-hub Adapter")
    check_op_table(adapter, path)
    return adapter


class AdapterValidationError(HubError):
    """An adapter whose op table does not fit the op catalog; keeps `.adapter` and `.problems`."""

    def __init__(self, adapter: str, path: str, problems: list[str]) -> None:
        super().__init__(
            ErrorCode.INTERNAL_ERROR,
            f"adapter {adapter!r} ({path}) does not fit the op catalog: {'; '.join(problems)}",
            "its declare_ops() must give every op of contract/ops/*.json, as OpSupport with options from that op's schema "
            "or as Unsupported with the reason (adapters/base.py)",
        )
        self.adapter = adapter
        self.problems = problems


def check_op_table(adapter: Adapter, path: str = "") -> None:
    """Every catalog op declared once, as served or stubbed; no other op; options from the op's schema."""
    from dicom_hub.contract.catalog import load_catalog

    catalog = load_catalog()
    table = adapter.op_table
    problems = []
    missing = sorted(set(catalog) - set(table))
    if missing:
        problems.append(f"no entry for op(s) {', '.join(missing)}")
    unknown = sorted(set(table) - set(catalog))
    if unknown:
        problems.append(f"unknown op(s) {', '.join(unknown)}")
    for op, entry in sorted(table.items()):
        if isinstance(entry, OpSupport):
            extra = sorted(entry.options - catalog[op].option_names) if entry.options is not None and op in catalog else []
            if extra:
                problems.append(f"{op}: option(s) {', '.join(extra)} are not in the op's schema")
            if not callable(entry.handler):
                problems.append(f"{op}: the handler {entry.handler!r} is not callable")
        elif not isinstance(entry, Unsupported):
            problems.append(f"{op}: {entry!r} is neither OpSupport nor Unsupported")
        elif not entry.reason.strip():
            problems.append(f"{op}: a stub without a reason")
    if problems:
        raise AdapterValidationError(adapter.name, path or type(adapter).__name__, problems)


@cache
def get_adapter(name: str) -> Adapter:
    """The adapter registered under `name` (built-in or entry point)."""
    if name in KNOWN_ADAPTERS:
        return _load(name, KNOWN_ADAPTERS[name].path)
    extra = _entry_points()
    if name in extra:
        return _load(name, extra[name])
    from .contract_cli import configured_backends

    configured = configured_backends()
    if name in configured:
        return configured[name]
    raise HubError(
        ErrorCode.INVALID_REQUEST,
        f"unknown backend {name!r}",
        f"known backends: {', '.join(adapter_names())}; language aliases: {', '.join(sorted(language_aliases()))}; or auto",
    )


def adapter_names() -> list[str]:
    """Every registered backend name: built-in, entry points, then contract-native programs."""
    from .contract_cli import configured_backends

    names = [n for n in PREFERENCE if n in KNOWN_ADAPTERS]
    names += sorted(set(KNOWN_ADAPTERS) - set(names))
    names += sorted(_entry_points())
    names += sorted(set(configured_backends()) - set(names))
    return names


def all_adapters() -> list[Adapter]:
    adapters = []
    for name in adapter_names():
        try:
            adapters.append(get_adapter(name))
        except HubError:
            continue
    return adapters


def language_aliases() -> dict[str, tuple[str, ...]]:
    """Language alias -> built-in adapter names of that language, in preference order."""
    return {
        "python": ("python",),
        "cpp": ("dcmtk", "gdcm"),
        "rust": ("dicom-rs",),
        "java": ("pixelmed",),
        "csharp": ("csharp",),
    }


def candidates(backend: str) -> tuple[Iterator[str], bool]:
    """The adapter names a request's `backend` may mean (lazily: third-party and configured
    backends are looked up only when no built-in one served), and whether the choice is automatic."""
    if backend == "auto":
        return _auto_order(), True
    aliases = language_aliases()
    if backend in aliases:
        return (n for n in aliases[backend] if n in KNOWN_ADAPTERS), True
    return iter([backend]), False


def _auto_order() -> Iterator[str]:
    builtin = [n for n in PREFERENCE if n in KNOWN_ADAPTERS]
    yield from builtin
    yield from (n for n in adapter_names() if n not in builtin)
