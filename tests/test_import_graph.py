"""The import graph runs one way: interface -> adapters -> contract, python_backend -> contract.

Read from the source (every `import` statement, at any depth of a module, lazy ones included), so a
new import against the direction fails here before it makes a cycle:
- `contract/` imports none of `adapters`, `python_backend`, `interface`;
- its DICOM knowledge (`contract/dicom/`) imports only the standard library, pydicom and the rest of
  `contract` (numpy only lazily, inside a function or for type checking: it is what pydicom's
  decoders return);
- `adapters/` never imports `python_backend` (the registry loads the Python adapter by name) nor
  `interface`; `python_backend/` never imports `interface`.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "dicom_hub"
LAYERS = ("contract", "adapters", "python_backend", "interface")
# layer -> the layers it must never import
FORBIDDEN = {
    "contract": ("adapters", "python_backend", "interface"),
    "adapters": ("python_backend", "interface"),
    "python_backend": ("interface",),
}
KNOWLEDGE = "dicom_hub.contract.dicom"
KNOWLEDGE_MAY_IMPORT = ("pydicom", "dicom_hub.contract")
KNOWLEDGE_MAY_IMPORT_LAZILY = ("numpy",)


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    target: str  # the imported module, dotted and absolute
    line: int
    lazy: bool  # inside a function, or under `if TYPE_CHECKING:`

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.target}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE, *parts])


def source_files() -> list[Path]:
    return sorted(path for layer in LAYERS for path in (ROOT / layer).rglob("*.py"))


class _Collector(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool) -> None:
        self.module, self.is_package = module, is_package
        self.found: list[Import] = []
        self._depth = 0

    def _absolute(self, node: ast.ImportFrom) -> str:
        if node.level == 0:
            return node.module or ""
        base = self.module.split(".")
        base = base if self.is_package else base[:-1]
        base = base[: len(base) - (node.level - 1)]
        return ".".join(base + ([node.module] if node.module else []))

    def _lazy_block(self, node: ast.AST) -> None:
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = _lazy_block

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
            self._lazy_block(node)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found += [Import(self.module, alias.name, node.lineno, self._depth > 0) for alias in node.names]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = self._absolute(node)
        # `from package import module` imports the module too: record both spellings
        self.found.append(Import(self.module, base, node.lineno, self._depth > 0))
        self.found += [Import(self.module, f"{base}.{alias.name}", node.lineno, self._depth > 0) for alias in node.names]


def imports_of(path: Path) -> list[Import]:
    collector = _Collector(module_name(path), path.name == "__init__.py")
    collector.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    return collector.found


@pytest.fixture(scope="module")
def all_imports() -> list[Import]:
    return [found for path in source_files() for found in imports_of(path)]


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_the_collector_sees_relative_lazy_and_type_checking_imports():
    """The checks below can fail: the collector resolves what they look for."""
    found = {(i.target, i.lazy) for i in imports_of(ROOT / "python_backend" / "network" / "query.py")}
    assert ("dicom_hub.python_backend.network._association.Peer", False) in found  # `from ._association import Peer`
    assert ("pynetdicom.presentation", True) in found  # inside run_find
    assert ("pydicom", True) in found  # under TYPE_CHECKING


@pytest.mark.parametrize("layer", FORBIDDEN)
def test_layers_import_one_way(all_imports, layer):
    package = f"{PACKAGE}.{layer}"
    banned = [f"{PACKAGE}.{name}" for name in FORBIDDEN[layer]]
    wrong = [str(i) for i in all_imports if _within(i.module, package) and any(_within(i.target, b) for b in banned)]
    assert not wrong, f"{layer} must not import {', '.join(FORBIDDEN[layer])}:\n" + "\n".join(wrong)


def test_dicom_knowledge_depends_on_pydicom_and_the_contract_only(all_imports):
    stdlib = sys.stdlib_module_names | {"__future__"}
    wrong = []
    for found in all_imports:
        if not _within(found.module, KNOWLEDGE):
            continue
        top = found.target.split(".")[0]
        allowed = top in stdlib or any(_within(found.target, name) for name in KNOWLEDGE_MAY_IMPORT)
        allowed = allowed or (found.lazy and top in KNOWLEDGE_MAY_IMPORT_LAZILY)
        if not allowed:
            wrong.append(str(found))
    assert not wrong, "contract/dicom imports beyond the standard library, pydicom and contract:\n" + "\n".join(wrong)


def test_the_python_adapter_is_loaded_by_name():
    """The registry names the Python backend's adapter class as a string, never an import."""
    from dicom_hub.adapters.registry import KNOWN_ADAPTERS, get_adapter

    assert KNOWN_ADAPTERS["python"].path == "dicom_hub.python_backend.adapter:PythonAdapter"
    assert type(get_adapter("python")).__module__ == "dicom_hub.python_backend.adapter"
