"""The file system at the contract's edge, on every backend: inputs that are not regular files,
outputs that cannot be written, outputs that are not regular files, aliases of the input, and
the mode of what is written.

The unwritable outputs use real file systems: a read-only tmpfs and a full tmpfs mounted for the
test (the suite runs as root, for whom permission bits do not stop a write; the tests are skipped,
saying so, where `mount` is not allowed), and a parent that is a regular file.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import backend_request, expect_error, expect_ok, require_backend, run_request, sample

FILE_BACKENDS = ["python", "dcmtk", "gdcm", "dicom-rs", "pixelmed", "csharp"]
# One op per backend that writes a file through that backend's own writing code.
WRITERS = {
    "python": ("transcode", {"transfer_syntax": "1.2.840.10008.1.2"}),
    "dcmtk": ("transcode", {"transfer_syntax": "1.2.840.10008.1.2"}),
    "gdcm": ("transcode", {"transfer_syntax": "1.2.840.10008.1.2"}),
    "dicom-rs": ("transcode", {"transfer_syntax": "1.2.840.10008.1.2"}),
    "pixelmed": ("transcode", {"transfer_syntax": "1.2.840.10008.1.2"}),
    "csharp": ("transcode", {"transfer_syntax": "1.2.840.10008.1.2"}),
}
GUARD = {"timeout": 60}  # without the fix a FIFO would hang: fail with `timeout` instead


def _mount_tmpfs(where: Path, options: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    run = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, text=True)
    if run.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({run.stderr.strip()}): read-only and full file systems untested")


def _fill(path: Path) -> None:
    """Write zeros until the file system says it is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:  # ENOSPC: the file system is full
        pass
    finally:
        os.close(fd)


@pytest.fixture(scope="module")
def mounts(tmp_path_factory):
    """A read-only file system and a full one (a 64 KiB tmpfs filled up)."""
    base = tmp_path_factory.mktemp("mounts")
    readonly, full = base / "ro", base / "full"
    _mount_tmpfs(readonly, "ro,size=1m")
    try:
        _mount_tmpfs(full, "size=64k")
    except BaseException:
        subprocess.run(["umount", "-l", str(readonly)], capture_output=True)
        raise
    try:
        _fill(full / "filler")
        yield {"readonly": readonly, "full": full}
    finally:
        for where in (readonly, full):
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


# -- inputs -----------------------------------------------------------------------------------
def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.dcm"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("backend", FILE_BACKENDS)
def test_a_fifo_input_is_refused_at_once(backend, tmp_path):
    require_backend(backend)
    data = expect_error(backend_request(backend, "info", str(_fifo(tmp_path)), **GUARD), "invalid_request")
    assert "FIFO" in data["error"]["message"] and data["duration_ms"] < 5000


def test_devices_and_sockets_are_not_inputs(tmp_path):
    expect_error({"op": "info", "input": "/dev/zero", "options": GUARD}, "invalid_request")
    expect_error({"op": "stats", "input": "/dev/urandom", "options": GUARD}, "invalid_request")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "sock.dcm"))
    try:
        data = expect_error({"op": "info", "input": str(tmp_path / "sock.dcm")}, "invalid_request")
        assert "socket" in data["error"]["message"]
    finally:
        server.close()
    # ops that take paths (files or folders) refuse them too; a folder stays a valid input
    expect_error({"op": "batch_list", "input": [str(sample("CT_small.dcm")), str(_fifo(tmp_path))], "options": GUARD}, "invalid_request")
    assert expect_ok({"op": "batch_list", "input": str(tmp_path)})["ok"]


# -- outputs that cannot be written -------------------------------------------------------------
def _unwritable(kind: str, mounts: dict[str, Path], tmp_path: Path) -> tuple[Path, str]:
    """An output path that cannot be written, and the OS reason the answer must give."""
    if kind == "read-only":
        return mounts["readonly"] / "out.dcm", "Read-only file system"
    if kind == "full":
        return mounts["full"] / "out.dcm", "No space left on device"
    parent = tmp_path / "a-file"
    parent.write_text("not a folder")
    return parent / "out.dcm", "Not a directory"


@pytest.mark.parametrize("kind", ["read-only", "full", "parent-is-a-file"])
@pytest.mark.parametrize("backend", FILE_BACKENDS)
def test_unwritable_output_is_output_error_with_the_reason(backend, kind, mounts, tmp_path):
    require_backend(backend)
    out, reason = _unwritable(kind, mounts, tmp_path)
    op, options = WRITERS[backend]
    data = expect_error(backend_request(backend, op, "sample:CT_small.dcm", out, **options), "output_error")
    message = data["error"]["message"]
    if backend != "csharp" or kind == "full":  # Mono words EROFS/ENOTDIR its own way ("Access ... denied", "already exists")
        assert reason in message, message
    leftovers = [p.name for p in out.parent.iterdir() if p.name != "filler"] if out.parent.is_dir() else []
    assert leftovers == [], f"{backend} left {leftovers}"


@pytest.mark.parametrize("op", ["to_json", "dump", "to_image", "extract_metadata"])
def test_python_text_and_image_writers_give_output_error_too(op, mounts):
    out = mounts["readonly"] / f"out.{'csv' if op == 'extract_metadata' else 'png' if op == 'to_image' else 'txt'}"
    source = str(sample("CT_small.dcm")) if op != "extract_metadata" else str(sample("CT_small.dcm"))
    data = expect_error({"op": op, "input": source, "output": str(out), "backend": "python"}, "output_error")
    assert "Read-only file system" in data["error"]["message"]


# -- outputs that are not regular files ------------------------------------------------------------
def test_overwrite_never_replaces_a_device_or_fifo(tmp_path):
    fifo = _fifo(tmp_path)
    data = expect_error({"op": "dump", "input": "sample:CT_small.dcm", "output": str(fifo), "options": {"overwrite": True, **GUARD}}, "invalid_request")
    assert "FIFO" in data["error"]["message"] and stat.S_ISFIFO(fifo.stat().st_mode)
    null = tmp_path / "null"
    try:
        os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a /dev/null of our own
    except PermissionError:
        pytest.skip("mknod is not allowed here: the character-device case is untested")
    expect_error({"op": "dump", "input": "sample:CT_small.dcm", "output": str(null), "options": {"overwrite": True}}, "invalid_request")
    assert stat.S_ISCHR(null.stat().st_mode)


def test_atomic_output_never_replaces_a_device_or_fifo_named_in_an_option(tmp_path):
    """Outputs named in options (a re-identification report) are never checked by the request
    rules; the writer itself refuses to replace a FIFO (or /dev/null) with a file."""
    fifo = _fifo(tmp_path)
    request = {"op": "anonymize", "input": "sample:CT_small.dcm", "output": str(tmp_path / "anon.dcm"), "options": {"mapping_file": str(fifo), "key": "k" * 32}}
    data = run_request(request)
    assert not data["ok"] and data["error"]["code"] == "invalid_request", data["error"]
    assert stat.S_ISFIFO(fifo.stat().st_mode)


# -- aliases of the input ---------------------------------------------------------------------------
def test_output_inside_the_input_folder_is_found_through_dotdot_and_symlinks(tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    (source / "ct.dcm").write_bytes(sample("CT_small.dcm").read_bytes())
    (tmp_path / "alias").symlink_to(source)
    for out in (tmp_path / "nowhere" / ".." / "in" / "out", tmp_path / "alias" / "out"):
        data = expect_error({"op": "batch_decompress", "input": str(source), "output": str(out)}, "invalid_request")
        assert "inside the input folder" in data["error"]["message"]
    assert sorted(p.name for p in source.iterdir()) == ["ct.dcm"]


def test_output_that_is_the_input_through_an_alias_is_refused(tmp_path):
    source = tmp_path / "ct.dcm"
    original = sample("CT_small.dcm").read_bytes()
    source.write_bytes(original)
    (tmp_path / "alias").symlink_to(tmp_path)
    for out in (tmp_path / "missing" / ".." / "ct.dcm", tmp_path / "alias" / "ct.dcm"):
        request = {"op": "modify_tags", "input": str(source), "output": str(out), "options": {"set": {"PatientName": "X"}, "overwrite": True}}
        data = expect_error(request, "invalid_request")
        assert "output is the input" in data["error"]["message"]
    assert source.read_bytes() == original and not (tmp_path / "missing").exists()


# -- the mode of new files ---------------------------------------------------------------------------
@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_outputs_honour_the_umask(umask, tmp_path):
    old = os.umask(umask)
    try:
        outputs = {
            "transcode": tmp_path / "ct.dcm",
            "to_json": tmp_path / "ct.json",
            "to_image": tmp_path / "ct.png",
            "extract_metadata": tmp_path / "table.csv",
        }
        for op, out in outputs.items():
            options = {"transfer_syntax": "1.2.840.10008.1.2"} if op == "transcode" else {}
            expect_ok({"op": op, "input": str(sample("CT_small.dcm")), "output": str(out), "options": options})
            assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask, (op, oct(out.stat().st_mode))
    finally:
        os.umask(old)


@pytest.mark.parametrize("backend", ["dcmtk", "csharp"])
def test_subprocess_outputs_honour_the_umask(backend, tmp_path):
    require_backend(backend)
    old = os.umask(0o022)
    try:
        out = tmp_path / "ct.dcm"
        expect_ok(backend_request(backend, "transcode", "sample:CT_small.dcm", out, transfer_syntax="1.2.840.10008.1.2"))
        assert stat.S_IMODE(out.stat().st_mode) == 0o644
    finally:
        os.umask(old)


def test_the_reidentification_report_stays_private(tmp_path):
    old = os.umask(0o022)
    try:
        mapping = tmp_path / "mapping.json"
        data = run_request({"op": "anonymize", "input": "sample:CT_small.dcm", "output": str(tmp_path / "anon.dcm"), "options": {"mapping_file": str(mapping), "key": "k" * 32}})
        if not data["ok"] and data["error"]["code"] == "invalid_request":
            pytest.skip(f"anonymize takes no mapping_file with these options: {data['error']['message']}")
        assert data["ok"], data["error"]
        assert stat.S_IMODE(mapping.stat().st_mode) == 0o600
        assert stat.S_IMODE((tmp_path / "anon.dcm").stat().st_mode) == 0o644
    finally:
        os.umask(old)


def test_a_file_system_refusal_escaping_a_backend_is_output_error(monkeypatch, tmp_path):
    """Backstop: an ENOSPC/EROFS raised outside the writing helpers is no `internal_error`."""
    import errno

    from dicom_hub.python_backend import metadata

    def full_disk(job):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(job.output))

    monkeypatch.setattr(metadata, "dump", full_disk)
    data = expect_error({"op": "dump", "input": "sample:CT_small.dcm", "output": str(tmp_path / "d.txt"), "backend": "python"}, "output_error")
    assert "No space left on device" in data["error"]["message"]
