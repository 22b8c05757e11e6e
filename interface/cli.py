"""`dicom-hub`: the argparse root. Subcommands live in `commands/`; each module declares its arguments
and keeps its heavy imports inside the command it runs. Only the command being run is imported and
given its arguments: the others are listed by name and one-line help (all the top-level help shows),
which spares every `dicom-hub run` the import and the parser of six commands it does not use."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from importlib import import_module

# name -> (module in commands/, one-line help).
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("run", "run contract requests (JSON on stdin, from a file, or from flags)"),
    "ops": ("ops", "list operations, or show one op's options schema and which backends serve it"),
    "backends": ("backends", "list backends: availability, version, install hints, ops"),
    "conformance": ("conformance", "run the conformance specs against backends and report the matrix"),
    "doctor": ("doctor", "print versions of Python, packages and backends for a bug report"),
    "samples": ("samples", "list the bundled sample files usable as input sample:<name>"),
    "scp": ("scp", "receive DICOM instances into a folder and answer C-ECHO, C-FIND, C-GET, C-MOVE on them until stopped"),
}

EPILOG = """examples:
  dicom-hub run --op info --input sample:CT_small.dcm
  echo '{"op": "to_json", "input": "scan.dcm", "output": "scan.json"}' | dicom-hub run
  dicom-hub run --stream < requests.ndjson > responses.ndjson
  dicom-hub ops transcode
  dicom-hub backends
"""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of `dicom-hub`, with the arguments of `command` (of every command when None)."""
    parser = argparse.ArgumentParser(
        prog="dicom-hub",
        description="One JSON contract for DICOM work, served by pydicom and by external toolkits.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="print tracebacks of internal errors on stderr")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        if command in (None, name):
            _command_module(module).add_arguments(cmd)
    return parser


def _command_named(argv: list[str]) -> str | None:
    """The command `argv` runs, known before parsing: the top-level options take no value, so the
    first word that is not an option names it. None when that word is no command, so that argparse
    (with every command declared) answers in its usual words."""
    word = next((arg for arg in argv if not arg.startswith("-")), None)
    return word if word in COMMANDS else None


def _command_module(module: str):
    return import_module(f"dicom_hub.interface.commands.{module}")


def main(argv: list[str] | None = None) -> int:
    command = _command_named(sys.argv[1:] if argv is None else argv)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if args.version:
        from importlib.metadata import version

        from dicom_hub.contract import CONTRACT_VERSION

        print(f"dicom-hub {version('dicom-hub')} (contract {CONTRACT_VERSION})")
        return 0
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    if args.debug:
        from dicom_hub.adapters import dispatch

        dispatch.DEBUG = True
    try:
        return _command_module(COMMANDS[args.command][0]).run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


def console() -> int:
    """The `dicom-hub` command: `main`, then the process ends. The collector is frozen first, so the
    interpreter's last full collection does not walk every table and module the command loaded
    (~50 ms of a one-shot `run`, a quarter of an empty batch); and when the interpreter's shutdown
    has nothing left to do but free that memory one object at a time (another ~7 ms after a
    batch's answer is written), the process ends without it (`_end_now`)."""
    code = main()
    gc.freeze()
    _end_now(code)
    return code


def _end_now(code: int) -> None:
    """End the process with `code` at once, once stdout and stderr are flushed, when nothing asked
    to run at exit: no `atexit` callback (long-lived backend programs, logging, temporary folders
    and `weakref.finalize` all register one) and no thread besides this one. Otherwise, or when a
    flush fails (a closed pipe), return: the usual shutdown does it all and reports as usual."""
    import atexit

    count = getattr(atexit, "_ncallbacks", None)  # CPython's; elsewhere the usual shutdown
    threading = sys.modules.get("threading")
    if count is None or count() or (threading is not None and threading.active_count() > 1):
        return
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        return
    os._exit(code)
