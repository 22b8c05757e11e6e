"""The compiled schema checks kept in the user's cache judge exactly as a fresh fastjsonschema
compile does (same verdict, same words), and a cache that is missing, corrupt, shared or
unwritable never changes an answer."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dicom_hub.contract import schema_check
from dicom_hub.contract.catalog import load_catalog
from dicom_hub.contract.schema_check import CACHE_ENV, compile_check, compile_fresh, first_problem

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "contract" / "examples"


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(folder))
    return folder


def _entries(cache_dir: Path) -> list[Path]:
    return sorted((cache_dir / "schema-checks").glob("*.bin"))


def _published(name: str) -> dict:
    return json.loads((ROOT / "contract" / "schemas" / f"{name}.schema.json").read_text())


def _documents(kind: str) -> list:
    """The examples of `kind`, valid and invalid, and each valid one with every field broken in turn."""
    examples = json.loads((EXAMPLES / f"{kind}s.json").read_text())
    documents = examples["valid"] + examples["invalid"]
    for example in examples["valid"]:
        for key in example:
            for wrong in ("", -1, None, [], {"x": 1}, "\ud800"):
                documents.append({**example, key: wrong})
        documents.append({**example, "surprise": 1})
        documents.append({k: v for k, v in example.items() if k != "op"})
    return documents


def _verdicts(check, documents: list, name: str) -> list[str | None]:
    return [None if (p := first_problem(check, copy.deepcopy(d), name)) is None else str(p) for d in documents]


@pytest.mark.parametrize("kind", ["request", "response"])
def test_cached_message_checks_judge_like_a_fresh_compile(kind, cache_dir):
    documents = _documents(kind)
    expected = _verdicts(compile_fresh(_published(kind)), documents, kind)
    assert any(v is None for v in expected) and any(v is not None for v in expected), "both verdicts are exercised"
    written = _verdicts(compile_check(_published(kind)), documents, kind)  # compiled, then kept
    assert len(_entries(cache_dir)) == 1
    read_back = _verdicts(compile_check(_published(kind)), documents, kind)  # from the cache
    assert written == expected
    assert read_back == expected


def _option_documents(schema: dict) -> list[dict]:
    """Every option of the schema set to values of each JSON type, plus an unknown option."""
    documents: list[dict] = [{}, {"no_such_option": 1}]
    for name in schema.get("properties", {}):
        for value in (True, 0, -5, 1.5, 10**9, "", "x" * 300, "tcp://h:1", [], ["retain_uids", "retain_uids"], {}, None):
            documents.append({name: value})
    return documents


def test_cached_option_checks_of_every_op_judge_like_a_fresh_compile(cache_dir):
    catalog = load_catalog()
    for name, spec in catalog.items():
        documents = _option_documents(spec.options_schema)
        expected = _verdicts(compile_fresh(spec.options_schema), documents, "options")
        compile_check(spec.options_schema)  # writes the entry
        assert _verdicts(compile_check(spec.options_schema), documents, "options") == expected, name
    assert len(_entries(cache_dir)) == len({json.dumps(s.options_schema, sort_keys=True) for s in catalog.values()})


def test_a_cached_entry_is_used_without_compiling(cache_dir, monkeypatch):
    compile_check(_published("request"))

    def no_compile(*args):
        raise AssertionError("compiled again although the cache holds the check")

    monkeypatch.setattr(schema_check, "_compiled", no_compile)
    check = compile_check(_published("request"))
    assert str(first_problem(check, {"op": ""}, "request")) == "op: must be longer than or equal to 1 characters"


def test_another_schema_gets_its_own_entry(cache_dir):
    first = compile_check({"type": "object", "properties": {"a": {"type": "integer"}}})
    second = compile_check({"type": "object", "properties": {"a": {"type": "string"}}})
    assert len(_entries(cache_dir)) == 2
    assert first_problem(first, {"a": 1}, "d") is None and str(first_problem(first, {"a": "1"}, "d")) == "a: must be integer"
    assert first_problem(second, {"a": "1"}, "d") is None and str(first_problem(second, {"a": 1}, "d")) == "a: must be string"


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: b"",
        lambda data: data[: len(data) // 2],  # cut short
        lambda data: data[:-1] + bytes([data[-1] ^ 1]),  # one bit flipped in the code
        lambda data: b"garbage" + data,  # not our header
        lambda data: data[:-40] + bytes(40),  # the tail zeroed
    ],
    ids=["empty", "truncated", "bit-flip", "bad-header", "zeroed-tail"],
)
def test_a_damaged_entry_is_compiled_again_and_replaced(cache_dir, damage):
    schema = _published("response")
    compile_check(schema)
    (entry,) = _entries(cache_dir)
    good = entry.read_bytes()
    entry.write_bytes(damage(good))
    check = compile_check(schema)
    example = json.loads((EXAMPLES / "responses.json").read_text())["valid"][0]
    assert first_problem(check, example, "response") is None
    assert str(first_problem(check, {**example, "duration_ms": -1}, "response")) == "duration_ms: must be bigger than or equal to 0"
    assert entry.read_bytes() == good  # rewritten whole


def test_an_unwritable_cache_only_costs_the_compile(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(CACHE_ENV, str(blocker / "cache"))
    check = compile_check(_published("request"))
    assert str(first_problem(check, {"op": 3}, "request")) == "op: must be string"
    assert list(tmp_path.iterdir()) == [blocker], "no temporary file left behind"


def test_the_cache_is_in_the_users_cache_folder_never_the_checkout(tmp_path, monkeypatch):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    compile_check({"type": "integer", "minimum": 3})
    assert len(list((tmp_path / ".cache" / "dicom-hub" / "schema-checks").glob("*.bin"))) == 1
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    compile_check({"type": "integer", "minimum": 4})
    assert len(list((tmp_path / "xdg" / "dicom-hub" / "schema-checks").glob("*.bin"))) == 1
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # not absolute: no cache, and nothing written here
    compile_check({"type": "integer", "minimum": 5})
    assert not Path("relative").exists()


def test_processes_filling_one_cache_at_once_all_answer_right(cache_dir):
    """Several `dicom-hub run` processes start on an empty cache together: each writes its entries
    through a temporary file and a rename, and every one answers from a whole check."""
    code = (
        "import json, sys; from dicom_hub.contract.messages import Request; from dicom_hub.contract.errors import HubError\n"
        "try:\n    Request.from_data({'op': 'info', 'backend': ''})\nexcept HubError as err:\n    print(err.message)\n"
    )
    env = {**os.environ, CACHE_ENV: str(cache_dir)}
    processes = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(6)]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert [out.strip() for out, _ in outputs] == ["backend: must be longer than or equal to 1 characters"] * 6, outputs
    assert len(_entries(cache_dir)) == 1
    assert not [p for p in (cache_dir / "schema-checks").iterdir() if p.suffix == ".tmp"]
    assert schema_check._read_entry(_entries(cache_dir)[0]) is not None


def test_an_entry_others_could_have_written_is_not_run(cache_dir, monkeypatch):
    """Entries are code: one in a folder (or a file) that another user may write is compiled anew."""
    schema = _published("request")
    compile_check(schema)
    (entry,) = _entries(cache_dir)
    compiled = []
    real = schema_check._compiled
    monkeypatch.setattr(schema_check, "_compiled", lambda *args: compiled.append(1) or real(*args))
    for path, mode in ((entry.parent, 0o777), (entry, 0o666)):
        original = path.stat().st_mode & 0o777
        path.chmod(mode)
        check = compile_check(schema)
        path.chmod(original)
        assert str(first_problem(check, {"op": 3}, "request")) == "op: must be string"
    assert len(compiled) == 2
    compile_check(schema)
    assert len(compiled) == 2, "the user's own entry is read again"
