"""How every external program is started: a private working folder and an environment that
keeps the tool's side files (Mono crash reports, core-dump style leftovers) out of the user's
folder. Subprocess adapters and contract-native programs share this, so no tool writes into
whatever folder dicom-hub happened to be run from.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from functools import cache
from pathlib import Path

# Mono writes mono_crash.*.json into the working folder when a program crashes; the crash is
# still reported on stderr (which the adapter keeps), the file is not written.
_QUIET_TOOL_ENV = {"MONO_CRASH_NOFILE": "1"}


@cache
def private_cwd() -> Path:
    """A folder of this process's own, removed at exit, where child processes run."""
    folder = Path(tempfile.mkdtemp(prefix="dicom-hub-cwd-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process: ours, with the tools' side files switched off."""
    return {**os.environ, **_QUIET_TOOL_ENV, **(extra or {})}
