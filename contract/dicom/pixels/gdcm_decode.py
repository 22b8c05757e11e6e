"""The python-gdcm decoder plugin, run in a child process.

GDCM is the last decoder we try (see `decode.plugin_order`): the input already defeated every
other plugin, so it is likely corrupt, and GDCM's C++ code aborts the interpreter on some corrupt
input (an uncaught gdcm::Exception, std::bad_alloc). In a child, an abort costs this one attempt,
not the `--stream` session or the batch worker. The other plugins run in-process, as before.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from pydicom import Dataset

PLUGIN = "gdcm"
_TIMEOUT = 300


def decode_in_child(ds: Dataset, *, index: int | None, as_rgb: bool) -> np.ndarray:
    """`pixel_array(ds, index, as_rgb, decoding_plugin="gdcm")`, computed by a child process.

    Raises RuntimeError (one more failed plugin for the caller) when the child fails or dies.
    """
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="dicom-hub-gdcm-") as folder:
        src, dst = Path(folder) / "in.dcm", Path(folder) / "out.npy"
        ds.save_as(src, enforce_file_format=False)
        argv = [sys.executable, "-m", __name__, str(src), str(dst), "all" if index is None else str(index), "rgb" if as_rgb else "raw"]
        try:
            run = subprocess.run(argv, capture_output=True, text=True, timeout=_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"python-gdcm did not finish within {_TIMEOUT} s") from None
        if run.returncode != 0 or not dst.exists():
            raise RuntimeError(f"python-gdcm {_exit_text(run.returncode)}: {run.stderr.strip()[-300:]}")
        return np.load(dst, allow_pickle=False)


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"failed (exit {code})"


def _decode(src: str, dst: str, index: str, colour: str) -> int:
    """The child's work: decode with the gdcm plugin only, save the array as .npy."""
    import numpy as np
    from pydicom import dcmread
    from pydicom.pixels import pixel_array

    ds = dcmread(src)
    arr = pixel_array(ds, index=None if index == "all" else int(index), as_rgb=colour == "rgb", decoding_plugin=PLUGIN)
    np.save(dst, arr, allow_pickle=False)
    return 0


if __name__ == "__main__":
    sys.exit(_decode(*sys.argv[1:5]))
