"""Loading conformance specs: JSON files in `contract/specs/`, checked against their own schema."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from fnmatch import fnmatch
from importlib.resources import files
from pathlib import Path
from typing import Any

from dicom_hub.adapters.conformance.peers import placeholder_problems
from dicom_hub.contract.schema_check import first_problem, published_check

# Checks that only say "it ran" (or didn't): a spec made of these alone cannot catch a wrong answer.
SHALLOW_CHECKS = frozenset({"ok"})


@dataclass(frozen=True)
class Spec:
    id: str
    request: dict[str, Any]
    expect: tuple[dict[str, Any], ...]
    output: dict[str, Any] | None = None
    description: str = ""
    peer: str | None = None
    source: Path | None = field(default=None, compare=False)

    @property
    def op(self) -> str:
        return self.request["op"]

    @property
    def options(self) -> dict[str, Any]:
        return self.request.get("options", {})

    @property
    def references(self) -> set[str]:
        """Backends whose output this spec compares against."""
        return {e["reference"] for e in self.expect if "reference" in e}


def specs_dir() -> Path:
    return Path(str(files("dicom_hub.contract").joinpath("specs")))


def spec_problems(data: Any) -> list[str]:
    """Why a spec document is not acceptable (empty when it is)."""
    problem = first_problem(published_check("spec"), data, "spec")
    if problem is not None:
        return [str(problem)]
    problems = placeholder_problems(data["request"].get("options", {}), data.get("peer"))
    kinds = {e["check"] for e in data["expect"]}
    if kinds <= SHALLOW_CHECKS:
        problems.append("spec cannot fail on a wrong answer: add a check of the result (metadata, image, tags, ...)")
    return problems


def load_specs(pattern: str = "*", extra_dirs: tuple[Path, ...] = ()) -> list[Spec]:
    """Every spec (shipped, plus any in `extra_dirs`) whose id matches the glob `pattern`,
    sorted by id; an invalid spec raises."""
    specs = []
    paths = sorted(specs_dir().glob("*.json")) + [p for d in extra_dirs for p in sorted(Path(d).glob("*.json"))]
    for path in paths:
        documents = json.loads(path.read_text())
        for data in documents if isinstance(documents, list) else [documents]:
            problems = spec_problems(data)
            if problems:
                raise ValueError(f"{path.name}: spec {data.get('id', '?')}: {'; '.join(problems)}")
            if fnmatch(data["id"], pattern):
                specs.append(
                    Spec(
                        id=data["id"],
                        request=data["request"],
                        expect=tuple(data["expect"]),
                        output=data.get("output"),
                        description=data.get("description", ""),
                        peer=data.get("peer"),
                        source=path,
                    )
                )
    ids = [s.id for s in specs]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise ValueError(f"duplicate spec ids: {', '.join(sorted(duplicates))}")
    return sorted(specs, key=lambda s: s.id)
