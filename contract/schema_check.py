"""Checking a JSON document against one of the contract's schemas, and saying what is wrong.

Every schema check at run time goes through here: requests and responses (`messages.py`), op
options (`catalog.py`) and conformance specs. fastjsonschema compiles a schema to Python once (a
few ms), after which a check costs microseconds; jsonschema would add more start-up time than the
rest of `dicom-hub run` together. `tests/contract` checks that both give the same verdicts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib.resources import files
from typing import Any, NamedTuple

Check = Callable[[Any], Any]


class SchemaProblem(NamedTuple):
    """The first rule a document breaks: where (a dotted path, e.g. `input.1`; the document's
    own name when the document itself is wrong) and why (e.g. `must be string`)."""

    where: str
    why: str

    def __str__(self) -> str:
        return f"{self.where}: {self.why}"


def compile_check(schema: dict[str, Any]) -> Check:
    """The compiled check of `schema` (it raises on the first rule broken, see `first_problem`)."""
    import fastjsonschema

    # use_default=False: a check must not fill defaults into the document it checks.
    return fastjsonschema.compile(_as_draft7(schema), use_default=False)


@cache
def published_check(name: str) -> Check:
    """The compiled check of `schemas/<name>.schema.json`."""
    return compile_check(json.loads(files("dicom_hub.contract").joinpath("schemas", f"{name}.schema.json").read_text()))


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


def _as_draft7(schema: dict[str, Any]) -> dict[str, Any]:
    """fastjsonschema speaks draft 7, which spells 2020-12's dependentRequired/dependentSchemas as
    `dependencies`; every other keyword the contract's schemas use means the same in both."""
    schema = dict(schema)
    dependencies = {**schema.pop("dependentRequired", {}), **schema.pop("dependentSchemas", {})}
    if dependencies:
        schema["dependencies"] = dependencies
    return schema
