"""The bytes engine's one-pass walk against the pydicom engine, on the cases its shortcuts could
get wrong: a run of unchanged elements is copied as one slice of the input (so a long-VR header
whose reserved bytes are not zero must be framed again, not copied), steps are learnt from each
header and reused file after file (so a value the engine reads, between copied elements, must
never be copied from a learnt step), an input already de-identified has the marks replaced; and
the write path that goes with it (an unnamed file linked into place, or a named temporary file)
leaves nothing behind on failure.

Files: pydicom's bundled test files; the changes made here are byte patches of them."""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path
from typing import Any

import pytest
from dicom_hub.contract import files
from dicom_hub.contract.dicom.deid.profile import profile_for
from dicom_hub.contract.dicom.deid.pseudonyms import Pseudonymizer
from dicom_hub.contract.dicom.encoding import LONG_VRS
from dicom_hub.contract.errors import HubError
from dicom_hub.python_backend.deid.bytes_engine import anonymize_bytes
from dicom_hub.python_backend.deid.ops import Settings, _anonymize_dataset, _sample_file

KEY = b"walk-test-key-0123456789"
SETTINGS = Settings(key=KEY, profile_options=(), patient_prefix="ANON", allow_burned_in=False, overwrite=True, collect_mapping=True)


def _bundled(name: str) -> bytes:
    from pydicom.data import get_testdata_file

    return Path(get_testdata_file(name)).read_bytes()


def _both_engines(data: bytes, tmp_path: Path) -> tuple[bytes, bytes, dict[str, Any], dict[str, Any] | None]:
    """The bytes engine's output and mapping (it must take the file), and the pydicom engine's."""
    fast = anonymize_bytes(data, profile_for(()), Pseudonymizer(KEY, "ANON"), allow_burned_in=False)
    assert fast is not None, "the bytes engine declined the file: the test would compare nothing"
    source, target = tmp_path / "in.dcm", tmp_path / "oracle.dcm"
    source.write_bytes(data)
    target.unlink(missing_ok=True)
    oracle_mapping = _anonymize_dataset(source, target, SETTINGS, Pseudonymizer(KEY, "ANON"))
    return b"".join(bytes(piece) for piece in fast[0]), target.read_bytes(), fast[1], oracle_mapping


def _long_vr_headers(data: bytes) -> list[bytes]:
    """The header bytes (tag, VR, zero reserved bytes) of every long-VR element pydicom finds,
    items included, in an Explicit VR Little Endian file."""
    from io import BytesIO

    import pydicom

    ds = pydicom.dcmread(BytesIO(data))
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    return sorted({struct.pack("<HH", elem.tag.group, elem.tag.element) + elem.VR.encode() + b"\0\0" for elem in ds.iterall() if elem.VR.encode() in LONG_VRS})


@pytest.mark.parametrize("name", ["MR-SIEMENS-DICOM-WithOverlays.dcm", "CT_small.dcm", "MR_small.dcm"])
def test_long_vr_headers_with_reserved_bytes_set_are_framed_again(name: str, tmp_path: Path) -> None:
    """Reserved bytes are 0000H by PS3.5 7.1.2, and every writer sets them so: a copied header
    that kept other bytes would differ from the pydicom engine's output."""
    original = _bundled(name)
    unpatched = _both_engines(original, tmp_path)[0]  # first: the steps are learnt on zero bytes
    patched = bytearray(original)
    count = 0
    for header in _long_vr_headers(original):
        at = patched.find(header, 132)
        while at != -1:
            patched[at + 6 : at + 8] = b"\x5a\xa5"
            count += 1
            at = patched.find(header, at + 8)
    assert count >= 2, count  # Pixel Data and at least one more (sequences, private OB)
    fast, oracle, fast_mapping, oracle_mapping = _both_engines(bytes(patched), tmp_path)
    assert fast == oracle
    assert fast_mapping == oracle_mapping
    # ... and what the reserved bytes held is gone: the output is the unpatched file's.
    assert fast == unpatched


def test_values_the_engine_reads_are_read_in_every_file_after_steps_are_learnt(tmp_path: Path) -> None:
    """Steps learnt on one file serve the next ones, but the Patient ID (the pseudonyms' key) and
    the SOP Instance UID (the file meta's) sit between copied elements and are read anew."""
    original = _bundled("CT_small.dcm")
    old_instance = b"1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"
    variant = original.replace(b"1CT1", b"2CT2").replace(old_instance, old_instance[:-1] + b"9")
    assert variant != original and len(variant) == len(original)
    first = _both_engines(original, tmp_path)
    second = _both_engines(variant, tmp_path)  # the same process: the steps learnt on `original`
    assert first[0] == first[1] and second[0] == second[1]
    assert first[2] == first[3] and second[2] == second[3]
    assert list(first[2]["patients"]) == ["1CT1"] and list(second[2]["patients"]) == ["2CT2"]
    assert first[2]["patients"]["1CT1"]["patient_id"] != second[2]["patients"]["2CT2"]["patient_id"]
    assert Pseudonymizer(KEY).uid(old_instance.decode()).encode() in first[0]
    assert Pseudonymizer(KEY).uid(old_instance[:-1].decode() + "9").encode() in second[0]


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR-SIEMENS-DICOM-WithOverlays.dcm", "rtplan.dcm"])
def test_an_already_de_identified_file_has_its_marks_replaced_as_pydicom_does(name: str, tmp_path: Path) -> None:
    """The marks (Patient Identity Removed, the method and its code sequence, Longitudinal
    Temporal Information Modified) are in the input: each comes out once, as the pydicom engine
    writes it."""
    once = _both_engines(_bundled(name), tmp_path)[0]
    twice, oracle, _, _ = _both_engines(once, tmp_path)
    assert twice == oracle
    assert twice.count(b"\x12\x00\x62\x00") == 1  # (0012,0062), whichever the VR encoding


@pytest.mark.parametrize("unnamed", [True, False], ids=["unnamed-file", "named-temporary"])
def test_write_file_atomically_leaves_nothing_behind_either_way(unnamed: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The unnamed file (O_TMPFILE, linked into place) and the named temporary file it falls back
    to: the output appears whole, never replaces a file, and a write that fails half-way leaves
    no file of any name."""
    monkeypatch.setattr(files, "_unnamed_files", unnamed)
    target = tmp_path / "out" / "a.dcm"
    files.write_file_atomically(target, [b"head", memoryview(b"0123456789" * 1000)[3:], b"tail"])
    assert target.read_bytes() == b"head" + (b"0123456789" * 1000)[3:] + b"tail"
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    with pytest.raises(HubError) as caught:
        files.write_file_atomically(target, [b"other"])
    assert caught.value.code.value == "output_exists"
    assert target.read_bytes().startswith(b"head")

    class NoBuffer:
        """Has a length but no bytes: writing it fails after the first piece is written."""

        def __len__(self) -> int:
            return 4

    with pytest.raises(TypeError):
        files.write_file_atomically(target.with_name("b.dcm"), [b"first piece", NoBuffer()])
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.dcm"]


def test_the_warm_up_file_is_a_visible_regular_file_found_without_a_walk(tmp_path: Path) -> None:
    """`_sample_file` (read before the workers fork) skips hidden files and anything but regular
    files (a FIFO would block a read), goes down the folders, and finds nothing in an empty tree."""
    (tmp_path / ".hidden.dcm").write_bytes(b"x")
    os.mkfifo(tmp_path / "fifo.dcm")
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "slice.dcm").write_bytes(_bundled("CT_small.dcm"))
    assert _sample_file((tmp_path,)) == tmp_path / "a" / "b" / "slice.dcm"
    assert _sample_file((tmp_path / "a" / "b" / "slice.dcm",)) == tmp_path / "a" / "b" / "slice.dcm"
    (tmp_path / "empty" / "deeper").mkdir(parents=True)
    assert _sample_file((tmp_path / "empty",)) is None
    assert _sample_file((tmp_path / "missing",)) is None


def test_an_unnamed_file_the_system_will_not_link_is_written_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """linkat of /proc/self/fd/N refused (a kernel or policy that forbids it): the output is
    written the named way, still whole and alone, and later outputs go that way at once."""
    import errno

    real_link = os.link
    refused: list[str] = []

    def link(src: Any, dst: Any, **kwargs: Any) -> None:
        if str(src).startswith("/proc/self/fd/"):
            refused.append(str(dst))
            raise PermissionError(errno.EPERM, os.strerror(errno.EPERM), str(src))
        real_link(src, dst, **kwargs)

    monkeypatch.setattr(files, "_unnamed_files", True)
    monkeypatch.setattr(files.os, "link", link)
    files.write_file_atomically(tmp_path / "a.dcm", [b"first"])
    files.write_file_atomically(tmp_path / "b.dcm", [b"second"])
    assert refused == [str(tmp_path / "a.dcm")]  # the second went the named way at once
    assert (tmp_path / "a.dcm").read_bytes() == b"first" and (tmp_path / "b.dcm").read_bytes() == b"second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.dcm", "b.dcm"]
