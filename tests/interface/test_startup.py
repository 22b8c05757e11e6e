"""What `dicom-hub run` does before its first file: only the command being run is built, the
help reads as before, and a batch op on an empty folder loads neither the IOD tables nor the
other commands, nor the `info` fast lane's reader."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import pytest
from dicom_hub.interface import cli


def _help(parser: argparse.ArgumentParser, command: str | None) -> str:
    if command is None:
        return parser.format_help()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command].format_help()


@pytest.mark.parametrize("command", [None, *cli.COMMANDS])
def test_the_help_of_a_lone_command_reads_as_with_every_command_built(command, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    full = cli.build_parser()
    assert _help(cli.build_parser(command), command) == _help(full, command)
    assert _help(cli.build_parser(command), None) == _help(full, None), "the top-level help lists every command"
    for name, (_, help_text) in cli.COMMANDS.items():
        assert name in _help(full, None) and help_text.split()[0] in _help(full, None)


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["run", "--op", "info"], "run"),
        (["--debug", "run", "x.json"], "run"),
        (["--version"], None),
        (["-h", "ops"], "ops"),
        (["nope", "run"], None),  # argparse refuses "nope" with every command listed
        ([], None),
    ],
)
def test_the_command_is_known_before_parsing(argv, command):
    assert cli._command_named(argv) == command


@pytest.mark.parametrize(
    "argv",
    [["bogus"], ["-h", "run"], ["run", "--jobs", "0"], ["run", "--bogus"], ["scp", "--help"], ["--help"], []],
)
def test_errors_and_help_read_as_with_every_command_built(argv, monkeypatch, capsys):
    """main() against a parser with every command's arguments, for argv that end in help or a refusal."""
    monkeypatch.setenv("COLUMNS", "100")

    def answer(build) -> tuple[object, str, str]:
        monkeypatch.setattr(cli, "build_parser", build)
        try:
            code: object = cli.main(argv)
        except SystemExit as exit_:
            code = exit_.code
        out, err = capsys.readouterr()
        return code, out, err

    built = cli.build_parser
    lone = answer(built)
    full = answer(lambda command=None: built(None))
    assert lone == full
    assert lone[0] != 0 or lone[1]


def test_a_batch_run_on_an_empty_folder_loads_only_what_it_needs(tmp_path):
    (tmp_path / "in").mkdir()
    code = f"""
import io, json, sys
from dicom_hub.interface.cli import main
from dicom_hub.contract.dicom.deid import iods
from dicom_hub.contract import catalog, schema_check
buffer = io.BytesIO()
sys.stdout = wrapper = io.TextIOWrapper(buffer)  # the response is written to sys.stdout.buffer
code = main(["run", "--op", "batch_anonymize", "--input", {str(tmp_path / "in")!r}, "--output", {str(tmp_path / "out")!r},
             "--options", '{{"key": "k123456789abcdefgh", "progress": false}}', "--backend", "python"])
sys.stdout.flush()
sys.stdout = sys.__stdout__
response = json.loads(buffer.getvalue())
print(json.dumps({{"code": code, "ok": response["ok"], "processed": response["metadata"]["files_processed"],
    "tables_loaded": iods._table.cache_info().currsize + iods._index.cache_info().currsize,
    "checks": [schema_check.published_check.cache_info().currsize, catalog._options_check.cache_info().currsize],
    "modules": sorted(m for m in sys.modules if m.startswith("dicom_hub.interface.commands.") or m == "dicom_hub.python_backend.fast_info")}}))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.splitlines()[-1])
    assert seen["code"] == 0 and seen["ok"] and seen["processed"] == 0
    assert seen["tables_loaded"] == 0, "the IOD tables are loaded for a file to de-identify, or before a fork"
    assert seen["checks"] == [2, 1], "the request's, the response's and this op's options' checks, no other"
    assert seen["modules"] == ["dicom_hub.interface.commands.fast_lane", "dicom_hub.interface.commands.run"]


def test_the_iod_index_is_loaded_before_a_fork_so_workers_share_it():
    """A child process checks: after warm_up nothing is loaded; the first fork loads the tables'
    index in the parent first (what batch workers then inherit)."""
    code = """
import os
from dicom_hub.contract.dicom.deid import iods
iods.warm_up()
iods.warm_up()  # once is enough: the hook is registered once
before = iods._index.cache_info().currsize
pid = os.fork()
if pid == 0:
    os._exit(0 if iods._index.cache_info().currsize == 1 else 3)
_, status = os.waitpid(pid, 0)
print(before, iods._index.cache_info().currsize, os.waitstatus_to_exitcode(status))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env={**os.environ})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "1", "0"]


def test_no_top_level_option_takes_a_value():
    """`_command_named` takes the first word that is not an option for the command: true only while
    every top-level option is a flag (an option with a value, e.g. `--log run`, would be misread)."""
    options = [a for a in cli.build_parser()._actions if a.option_strings]
    assert options and all(a.nargs == 0 for a in options), [(a.option_strings, a.nargs) for a in options]


def _ending(monkeypatch, callbacks: int, threads: int) -> list[int]:
    import atexit
    import threading

    ended: list[int] = []
    monkeypatch.setattr(atexit, "_ncallbacks", lambda: callbacks)
    monkeypatch.setattr(threading, "active_count", lambda: threads)
    monkeypatch.setattr(cli.os, "_exit", ended.append)
    cli._end_now(3)
    return ended


def test_the_process_ends_at_once_only_when_nothing_waits_for_the_exit(monkeypatch):
    assert _ending(monkeypatch, callbacks=0, threads=1) == [3]
    assert _ending(monkeypatch, callbacks=1, threads=1) == [], "an atexit callback runs as usual"
    assert _ending(monkeypatch, callbacks=0, threads=2) == [], "a thread is waited for as usual"


def test_a_stream_that_cannot_be_flushed_leaves_the_usual_shutdown(monkeypatch):
    class Closed:
        def flush(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", Closed())
    assert _ending(monkeypatch, callbacks=0, threads=1) == []


@pytest.mark.parametrize("atexit_code", ["", "import atexit; atexit.register(lambda: print('at exit', flush=True))"])
def test_the_command_s_answer_and_exit_code_are_whole_either_way(tmp_path, atexit_code):
    """The real command, through a pipe: the response is all there and the code is the op's, with
    the early end (nothing registered) and the usual shutdown (an atexit callback that must run)."""
    script = f"import sys\n{atexit_code}\nfrom dicom_hub.interface.cli import console\nsys.argv = ['dicom-hub', 'run', '--op', 'nope']\nsys.exit(console())\n"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    lines = result.stdout.splitlines()
    assert result.returncode == 2, result.stderr
    assert json.loads(lines[0])["error"]["code"] == "unknown_op"
    assert lines[1:] == (["at exit"] if atexit_code else [])
