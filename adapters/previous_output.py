"""The file an `overwrite: true` request replaces survives a failed answer.

A backend writes its output to a temporary file and renames it over the old one; the dispatcher
verifies it only then, and removes it when it fails. Without a copy, a request that ends in an
error would have destroyed the user's previous file. So before a DICOM-writing op replaces an
existing file, the dispatcher keeps a copy beside it (`.<name>.<random>.previous`, same folder,
same permissions): put back when the request fails, removed when it succeeds. A process killed
in between leaves the copy behind, hidden, next to the output.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from dicom_hub.contract.job import Job


@contextmanager
def previous_output_kept(job: Job) -> Iterator[None]:
    """Within the block the job may replace its output file; an exception puts the old one back."""
    output = job.output
    if not job.overwrite or output is None or not output.is_file() or output.is_symlink():
        yield
        return
    import secrets
    import shutil

    kept = output.with_name(f".{output.name}.{secrets.token_hex(4)}.previous")
    try:
        shutil.copy2(output, kept)
    except OSError:  # no room for a copy: the request goes on as before, unprotected
        with suppress(OSError):
            kept.unlink()
        yield
        return
    try:
        yield
    except BaseException:
        with suppress(OSError):
            os.replace(kept, output)
        raise
    with suppress(OSError):
        kept.unlink()
