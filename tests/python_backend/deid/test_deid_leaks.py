"""No marker survives: every table attribute, nested and kept sequences, private data in every
shape (Explicit and Implicit VR), the file meta — searched in element values and in raw bytes."""

from __future__ import annotations

import re
from pathlib import Path

import pydicom
import pytest
from conftest import expect_ok
from deid_corpus import Planted, write_leak_file

KEY = "leak-test-key-0123456789"
UID_PATTERN = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")

# Option sets that keep no original value (the retain_* options keep some by design; tested elsewhere).
CLEANING_OPTION_SETS = [
    [],
    ["clean_descriptors", "clean_structured_content", "clean_graphics"],
    ["retain_safe_private"],
]


def all_elements(ds: pydicom.Dataset):
    """Every element of the data set, every sequence item at any depth, and the file meta."""
    yield from getattr(ds, "file_meta", pydicom.Dataset()).iterall()
    yield from ds.iterall()


def element_texts(elem) -> list[str]:
    value = elem.value
    if value is None or elem.VR == "SQ":
        return []
    if isinstance(value, bytes):
        return [value.decode("latin-1")]
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        return [str(v) for v in value]
    return [str(value)]


def assert_no_leak(path: Path, planted: Planted, kept: set[str] = frozenset()) -> pydicom.Dataset:
    """No marker in the bytes or in any value of `path`, except the `kept` ones (kept by design)."""
    raw = path.read_bytes()
    markers = (planted.texts | planted.uids) - kept
    leaked = sorted(m for m in markers if m.encode() in raw)
    assert not leaked, f"{len(leaked)} markers survive in the bytes of {path.name}, e.g. {leaked[:5]}"
    ds = pydicom.dcmread(path)
    for elem in all_elements(ds):
        assert elem.tag.group % 2 == 0, f"private element {elem.tag} survived"
        for text in element_texts(elem):
            text = text.strip()
            assert text not in planted.values, f"{elem.tag} {elem.keyword} keeps the planted value {text!r}"
            assert not any(m in text for m in markers), (
                f"{elem.tag} {elem.keyword} keeps a marker: {text!r}"
            )
    return ds


@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
@pytest.mark.parametrize("profile_options", CLEANING_OPTION_SETS, ids=["basic", "clean_all", "safe_private"])
def test_no_marker_survives(tmp_path: Path, implicit: bool, profile_options: list[str]) -> None:
    planted = Planted()
    source = write_leak_file(tmp_path / "in.dcm", planted, implicit=implicit)
    # The corpus really carries the markers (a test that plants nothing proves nothing).
    assert sum(m.encode() in source.read_bytes() for m in planted.texts) == len(planted.texts)
    assert len(planted.texts) > 500 and len(planted.uids) > 100 and len(planted.values) > 300
    out = tmp_path / "out.dcm"
    expect_ok(
        {
            "op": "anonymize",
            "input": str(source),
            "output": str(out),
            "options": {"key": KEY, "profile_options": profile_options},
        }
    )
    ds = assert_no_leak(out, planted, planted.kept_by_design(profile_options))
    assert ds.PatientIdentityRemoved == "YES"
    for elem in all_elements(ds):
        if elem.VR == "UI":
            for uid in element_texts(elem):
                assert len(uid) <= 64 and UID_PATTERN.match(uid), f"{elem.tag} holds an invalid UID {uid!r}"


def test_implicit_private_arrives_as_un_and_is_removed(tmp_path: Path) -> None:
    planted = Planted()
    source = write_leak_file(tmp_path / "in.dcm", planted, implicit=True)
    original = pydicom.dcmread(source)
    private = [e for e in original.iterall() if e.tag.is_private]
    assert private and any(e.VR == "UN" for e in private), "the corpus must contain private data read as UN"
    out = tmp_path / "out.dcm"
    expect_ok({"op": "anonymize", "input": str(source), "output": str(out), "options": {"key": KEY}})
    assert_no_leak(out, planted)


def test_kept_sequences_keep_their_structure(tmp_path: Path) -> None:
    """Referenced Image Sequence (X/Z/U*) and an unlisted public sequence stay, cleaned inside."""
    planted = Planted()
    source = write_leak_file(tmp_path / "in.dcm", planted)
    out = tmp_path / "out.dcm"
    expect_ok({"op": "anonymize", "input": str(source), "output": str(out), "options": {"key": KEY}})
    ds = pydicom.dcmread(out)
    assert len(ds.ReferencedImageSequence) == 1 and len(ds.SourceImageSequence) == 1
    kept = ds.DerivationCodeSequence[0]
    assert kept.CodeValue == "KEPT"
    assert str(kept.PatientName).startswith("ANON^")
    assert kept.StudyInstanceUID.startswith("2.25.")


def test_public_sequences_stored_as_un_are_still_cleaned(tmp_path: Path) -> None:
    """A non-aware writer may store a known sequence as UN (Explicit VR): its items still get the profile."""
    from factories import ct_slice
    from pydicom.dataelem import RawDataElement
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset
    from pydicom.tag import Tag

    item = pydicom.Dataset()
    item.PatientName = "LEAKUNSEQ"
    item.ReferencedSOPInstanceUID = "1.2.826.0.1.3680043.10.1234.555.1"
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, True
    write_dataset(buffer, item)
    body = b"\xfe\xff\x00\xe0" + len(buffer.getvalue()).to_bytes(4, "little") + buffer.getvalue()
    ds = ct_slice()
    for tag in (
        0x00081140,
        0x00089215,
    ):  # Referenced Image Sequence (U*), Derivation Code Sequence (not listed)
        ds._dict[Tag(tag)] = RawDataElement(Tag(tag), "UN", len(body), body, 0, False, True)
    source = tmp_path / "un.dcm"
    ds.save_as(source, enforce_file_format=True)
    assert b"LEAKUNSEQ" in source.read_bytes()
    out = tmp_path / "out.dcm"
    expect_ok({"op": "anonymize", "input": str(source), "output": str(out), "options": {"key": KEY}})
    data = out.read_bytes()
    assert b"LEAKUNSEQ" not in data and b"1.2.826.0.1.3680043.10.1234.555.1" not in data
