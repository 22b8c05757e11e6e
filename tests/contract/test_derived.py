"""Derived tables kept between runs (`contract/derived.py`): an entry is read back only for the
very sources it was made from, never from someone else's folder or when broken, and what the
de-identification reads through it (PS3.15 rows, pydicom's VRs, the IOD attributes) is what it
would parse from the sources themselves."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from dicom_hub.contract import derived as derived_module
from dicom_hub.contract.derived import CACHE_ENV, derived
from dicom_hub.contract.dicom import pydicom_tables
from dicom_hub.contract.dicom.deid import iods, profile


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(folder))
    return folder


def _counting(value):
    calls = []

    def build():
        calls.append(1)
        return value() if callable(value) else value

    return build, calls


def test_an_entry_is_built_once_then_read_back(cache_dir, tmp_path):
    source = tmp_path / "table.tsv"
    source.write_text("a\t1\n")
    build, calls = _counting({"rows": (1, 2), "tags": frozenset({(8, 16)})})
    first = derived("test table", 1, [source], build)
    again = derived("test table", 1, [source], build)
    assert first == again == {"rows": (1, 2), "tags": frozenset({(8, 16)})}
    assert len(calls) == 1, "the second run reads the entry"
    assert len(list((cache_dir / "derived").iterdir())) == 1


def test_a_changed_source_is_parsed_again(cache_dir, tmp_path):
    source = tmp_path / "table.tsv"
    source.write_text("a\t1\n")

    def parse():
        return source.read_text()

    assert derived("test table", 1, [source], parse) == "a\t1\n"
    source.write_text("a\t2\n")  # same size, another modification time
    assert derived("test table", 1, [source], parse) == "a\t2\n"
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    build, calls = _counting(parse)
    derived("test table", 1, [source], build)
    assert calls, "a source touched since the entry was made is read again"
    assert len(list((cache_dir / "derived").iterdir())) == 1, "the stale entries are gone"


def test_the_name_and_version_keep_entries_apart(cache_dir, tmp_path):
    source = tmp_path / "table.tsv"
    source.write_text("x")
    assert derived("one", 1, [source], lambda: 1) == 1
    assert derived("two", 1, [source], lambda: 2) == 2
    assert derived("one", 2, [source], lambda: 3) == 3, "a new format version builds again"
    assert derived("two", 1, [source], lambda: 5) == 2, "a version of one name leaves the others' entries"


def test_a_broken_or_foreign_entry_is_not_read(cache_dir, tmp_path):
    source = tmp_path / "table.tsv"
    source.write_text("x")
    derived("t", 1, [source], lambda: "kept")
    (entry,) = (cache_dir / "derived").iterdir()
    data = entry.read_bytes()
    entry.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one bit flipped: the hash no longer matches
    assert derived("t", 1, [source], lambda: "rebuilt") == "rebuilt"
    assert derived("t", 1, [source], lambda: "unused") == "rebuilt", "the rebuilt entry replaced the broken one"
    os.chmod(entry.parent, 0o777)  # a folder anyone may write to: its entries are not trusted
    try:
        assert derived("t", 1, [source], lambda: "not from there") == "not from there"
    finally:
        os.chmod(entry.parent, 0o700)


def test_without_a_writable_cache_the_value_is_still_built(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(CACHE_ENV, str(blocker / "cache"))
    source = tmp_path / "table.tsv"
    source.write_text("x")
    build, calls = _counting("value")
    assert derived("t", 1, [source], build) == derived("t", 1, [source], build) == "value"
    assert len(calls) == 2
    assert derived("t", 1, [tmp_path / "missing.tsv"], lambda: "no key") == "no key"


def test_a_value_marshal_cannot_keep_costs_only_the_cache(cache_dir, tmp_path):
    source = tmp_path / "table.tsv"
    source.write_text("x")
    value = object()
    assert derived("t", 1, [source], lambda: value) is value
    assert not (cache_dir / "derived").exists() or not list((cache_dir / "derived").iterdir())


def test_the_profile_rows_follow_an_edited_table(cache_dir, tmp_path, monkeypatch):
    """The rows come from the one table file: edit it (a copy) and the next read says so."""
    data = tmp_path / "data"
    shutil.copytree(profile.data_dir(), data)
    monkeypatch.setattr(profile, "data_dir", lambda: data)
    table = data / profile.TABLE_NAME
    rows = dict((text, row) for text, row in profile._rows(profile.TABLE_NAME))
    assert rows == dict((text, profile.Row(*values)) for text, *values in profile._parse_rows(profile.TABLE_NAME))
    assert rows["(0010,0010)"].basic == "Z"
    assert dict(profile._rows(profile.TABLE_NAME)) == rows, "read back from the cache, the same rows"
    lines = table.read_text(encoding="utf-8").splitlines(keepends=True)
    edited = [line.replace("\tZ\t", "\tX\t", 1) if line.startswith("(0010,0010)") else line for line in lines]
    assert edited != lines
    table.write_text("".join(edited), encoding="utf-8")
    assert dict(profile._rows(profile.TABLE_NAME))["(0010,0010)"].basic == "X"


def test_the_vrs_are_the_dictionary_s(cache_dir, monkeypatch):
    """`dictionary_vr` (from the derived VRs) answers as pydicom's dictionary entry, for every tag
    it knows, repeating groups, private and unknown tags, with a cold and a warm cache."""
    monkeypatch.delitem(sys.modules, "pydicom._dicom_dict", raising=False)  # pydicom imported: its own dictionary
    tags = [*pydicom_tables.dictionary(), 0x60000010, 0x60223000, 0x50003000, 0x50FE0005, 0x00091010, 0x60010010, 0x12345678, 0x7FE00010]
    for _ in range(2):
        pydicom_tables._vrs.cache_clear()
        for tag in tags:
            found = pydicom_tables.entry(tag)
            assert pydicom_tables.dictionary_vr(tag) == (None if found is None else found[0]), hex(tag)
    assert list((cache_dir / "derived").iterdir())
    pydicom_tables._vrs.cache_clear()


def test_the_iod_attributes_are_the_table_s(cache_dir):
    """Each SOP class's attributes, read back from the cache, are what the table builds."""
    table = iods._table()
    for _ in range(2):  # built and kept, then read back
        iods._index.cache_clear()
        iods._for_iod.cache_clear()
        iods.any_iod.cache_clear()
        for uid in ("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.88.33", "1.2.3.4.not.a.sop.class"):
            got = iods.for_sop_class(uid)
            iod = table.sop_classes.get(uid, "")
            modules = table.iods.get(iod)
            complete = bool(modules) and all(table.modules.get(m) for m in modules)
            expected = iods._build(iod, modules) if complete else iods._build(iods.ANY_IOD, list(table.modules))
            assert (got.name, got.types, got.described) == (expected.name, expected.types, expected.described), uid
            assert got is iods.for_sop_class(uid), "one instance per IOD and process"


def test_a_batch_start_reads_no_table_file_once_the_cache_is_warm(cache_dir):
    """The second process parses neither the PS3.15 table nor pydicom's dictionary nor the IOD table."""
    code = """
import sys
from dicom_hub.contract.dicom.deid import iods, profile, rules
from dicom_hub.contract.dicom import pydicom_tables
profile.load_table(); profile.load_repeating()
rules.public_vr(0x00100010); iods.for_sop_class("1.2.840.10008.5.1.4.1.1.2")
print(pydicom_tables._table_module.cache_info().currsize, iods._table.cache_info().currsize, "csv" in sys.modules)
"""
    env = {**os.environ, CACHE_ENV: str(cache_dir)}
    cold = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=True)
    warm = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=True)
    assert cold.stdout.split() == ["1", "1", "True"]
    assert warm.stdout.split() == ["0", "0", "False"]


def test_entries_are_named_by_their_sources(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.write_text("x")
    two.write_text("x")
    assert derived_module._key("t", 1, [one]) != derived_module._key("t", 1, [two])
    assert derived_module._key("t", 1, [one]) == derived_module._key("t", 1, [one])


def test_an_entry_of_other_source_files_is_left_alone(cache_dir, tmp_path):
    """Two checkouts share the cache: each one's entries stay, whichever ran last."""
    one, two = tmp_path / "one.tsv", tmp_path / "two.tsv"
    one.write_text("1")
    two.write_text("2")
    derived("t", 1, [one], lambda: 1)
    derived("t", 1, [two], lambda: 2)
    assert derived("t", 1, [one], lambda: "again") == 1
    assert derived("t", 1, [two], lambda: "again") == 2
