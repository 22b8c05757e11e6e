"""Running a tool with stdout on a very wide pseudo-terminal.

dicom-rs SCUs (`dicom-findscu`) print their matches with dicom-dump's formatter, which cuts
values to the terminal width, or to 120 columns when stdout is not a terminal; the tools have no
flag to turn that off. A pty 65535 columns wide makes them print every value whole. Colours are
turned off with NO_COLOR and any escape sequence left is stripped.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time

from dicom_hub.adapters.child_process import child_env, private_cwd
from dicom_hub.adapters.subprocess_adapter import ToolRun, _kill_group
from dicom_hub.contract.errors import ErrorCode, HubError

COLUMNS = 65535
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def run_wide(args: list[str], timeout: float) -> ToolRun:
    """Like `SubprocessAdapter.run_cmd`, but stdout is a wide pty (stderr stays a pipe)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, COLUMNS, 0, 0))
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.OPOST  # no "\n" -> "\r\n" translation
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    start = time.perf_counter()
    try:
        proc = subprocess.Popen(args, stdout=slave, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True, cwd=private_cwd(), env=child_env({"NO_COLOR": "1"}))
    except OSError as err:
        os.close(master)
        os.close(slave)
        raise HubError(ErrorCode.BACKEND_UNAVAILABLE, f"cannot start {args[0]}: {err.strerror}") from None
    os.close(slave)
    assert proc.stderr is not None  # stderr=PIPE
    out, err_chunks = bytearray(), bytearray()
    streams = {master: out, proc.stderr.fileno(): err_chunks}
    deadline = start + timeout
    try:
        while streams:
            left = deadline - time.perf_counter()
            if left <= 0:
                _kill_group(proc)
                proc.wait()
                raise HubError(ErrorCode.TIMEOUT, f"{os.path.basename(args[0])} did not finish within {timeout:g} s", "raise options.timeout",
                               stdout=_text(out), stderr=_text(err_chunks), returncode=proc.returncode)
            ready, _, _ = select.select(list(streams), [], [], min(left, 1.0))
            for fd in ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # the pty reports EIO once the child has closed it
                    chunk = b""
                if chunk:
                    streams[fd] += chunk
                else:
                    del streams[fd]
        proc.wait(max(0.1, deadline - time.perf_counter()))
    finally:
        os.close(master)
        proc.stderr.close()
    return ToolRun(args, proc.returncode, _text(out), _text(err_chunks), time.perf_counter() - start)


def _text(data: bytes | bytearray) -> str:
    return _ANSI.sub("", data.decode("utf-8", errors="replace"))
