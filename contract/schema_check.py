"""Checking a JSON document against one of the contract's schemas, and saying what is wrong.

Every schema check at run time goes through here: requests and responses (`messages.py`), op
options (`catalog.py`) and conformance specs. fastjsonschema compiles a schema to Python, after
which a check costs microseconds; jsonschema would add more start-up time than the rest of
`dicom-hub run` together. `tests/contract` checks that both give the same verdicts.

Compiling costs more than the check (~15 ms for request, response and one op's options, a third of
a `batch_anonymize` start-up), and every process did it again. So the compiled check (the bytecode of
fastjsonschema's generated code) is kept in the user's cache folder (`CACHE_ENV`, else
$XDG_CACHE_HOME/dicom-hub, else ~/.cache/dicom-hub; never the checkout), one file per schema, named by
the hash of everything the code depends on: the schema, the compile options, fastjsonschema's and
Python's versions. An entry is written to a temporary file and renamed, carries the hash of its
bytes, and one that does not read back whole is compiled again; a cache folder that cannot be written
only costs the compile. The check run is the same code either way.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import os
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import CodeType
from typing import Any, NamedTuple

Check = Callable[[Any], Any]
SCHEMA_DIR = Path(__file__).with_name("schemas")  # the published schemas (as catalog.py finds ops/)


class SchemaProblem(NamedTuple):
    """The first rule a document breaks: where (a dotted path, e.g. `input.1`; the document's
    own name when the document itself is wrong) and why (e.g. `must be string`)."""

    where: str
    why: str

    def __str__(self) -> str:
        return f"{self.where}: {self.why}"


CACHE_ENV = "DICOM_HUB_CACHE_DIR"  # where compiled checks are kept (a folder of their own)
_ENTRY_MAGIC = b"dicom-hub schema check 1\n"


def compile_check(schema: dict[str, Any]) -> Check:
    """The compiled check of `schema` (it raises on the first rule broken, see `first_problem`):
    from the cache when an entry for this very schema is there, else compiled and kept."""
    import fastjsonschema

    definition = _as_draft7(schema)
    key = _cache_key(definition, fastjsonschema.VERSION)
    entry = _cache_file(key)
    compiled = _read_entry(entry) if entry is not None else None
    if compiled is None:
        compiled = _compiled(definition, key)
        if entry is not None:
            _write_entry(entry, compiled)
    name, code = compiled
    namespace: dict[str, Any] = {"__name__": f"dicom_hub.schema_check_{key[:16]}"}
    exec(code, namespace)
    return namespace[name]


def compile_fresh(schema: dict[str, Any]) -> Check:
    """`schema` compiled by fastjsonschema itself, past the cache (the tests' reference)."""
    import fastjsonschema

    # use_default=False: a check must not fill defaults into the document it checks.
    return fastjsonschema.compile(_as_draft7(schema), use_default=False)


@cache
def published_check(name: str) -> Check:
    """The compiled check of `schemas/<name>.schema.json`."""
    return compile_check(json.loads(SCHEMA_DIR.joinpath(f"{name}.schema.json").read_text()))


def first_problem(check: Check, data: Any, name: str) -> SchemaProblem | None:
    """The first rule `data` (called `name` in the answer) breaks, or None when it keeps them all."""
    from fastjsonschema import JsonSchemaValueException

    try:
        check(data)
    except JsonSchemaValueException as err:
        # fastjsonschema names the document `data` in err.path and at the start of err.message.
        where = ".".join(str(p) for p in err.path[1:]) or name
        return SchemaProblem(where, err.message.removeprefix(err.name or "").strip())
    return None


def _compiled(definition: dict[str, Any], key: str) -> tuple[str, CodeType]:
    """fastjsonschema's generated module for `definition` (as `compile_fresh` runs it), compiled,
    and the name of its entry function."""
    import fastjsonschema
    from fastjsonschema.ref_resolver import RefResolver

    source = fastjsonschema.compile_to_code(definition, use_default=False)
    name = RefResolver.from_schema(definition, handlers={}, store={}).get_scope_name()
    return name, compile(source, f"<schema check {key[:16]}>", "exec")


def _cache_key(definition: dict[str, Any], generator_version: str) -> str:
    """The hash of everything the compiled check depends on."""
    text = json.dumps(
        {"schema": definition, "use_default": False, "fastjsonschema": generator_version, "python": sys.version},
        sort_keys=True,
        ensure_ascii=True,
    )
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _cache_file(key: str) -> Path | None:
    """Where the entry for `key` belongs; None when there is no home to find a cache folder in."""
    folder = os.environ.get(CACHE_ENV)
    if not folder:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        if not os.path.isabs(base):  # no home (expanduser left "~"), or a relative XDG path: no cache
            return None
        folder = os.path.join(base, "dicom-hub")
    return Path(folder, "schema-checks", f"{key}.bin")


def _read_entry(path: Path) -> tuple[str, CodeType] | None:
    """The compiled check kept at `path`; None when there is none or it is not whole."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    head = len(_ENTRY_MAGIC)
    payload = data[head + 32 :]
    if data[:head] != _ENTRY_MAGIC or data[head : head + 32] != hashlib.sha256(payload).digest():
        return None
    try:
        name, code = marshal.loads(payload)
    except (ValueError, EOFError, TypeError):
        return None
    return (name, code) if isinstance(name, str) and isinstance(code, CodeType) else None


def _write_entry(path: Path, compiled: tuple[str, CodeType]) -> None:
    """Keep a compiled check: written whole to a temporary file, then renamed over `path`, so a
    concurrent reader sees the old entry, the new one or none. A failure costs only the cache."""
    import tempfile  # only on a cache miss
    from contextlib import suppress

    payload = marshal.dumps(compiled)
    temp = None
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(handle, "wb") as out:
            out.write(_ENTRY_MAGIC + hashlib.sha256(payload).digest() + payload)
        os.replace(temp, path)
    except OSError:
        if temp is not None:
            with suppress(OSError):
                os.unlink(temp)


def _as_draft7(schema: dict[str, Any]) -> dict[str, Any]:
    """fastjsonschema speaks draft 7, which spells 2020-12's dependentRequired/dependentSchemas as
    `dependencies`; every other keyword the contract's schemas use means the same in both."""
    schema = dict(schema)
    dependencies = {**schema.pop("dependentRequired", {}), **schema.pop("dependentSchemas", {})}
    if dependencies:
        schema["dependencies"] = dependencies
    return schema
