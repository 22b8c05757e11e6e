"""Discovery: which files of a messy tree are taken, from names and first bytes only."""

from __future__ import annotations

import pytest
from batch_trees import build_tree
from dicom_hub.python_backend.batch.discovery import find_dicom_files, looks_like_raw_dataset, scan


@pytest.fixture
def tree(tmp_path):
    return build_tree(tmp_path / "tree")


def test_takes_dicom_by_extension_and_magic_and_skips_clutter(tree):
    found = scan([tree.root])
    assert found.files == tree.taken
    assert set(tree.clutter) <= set(found.skipped)
    assert tree.raw in found.skipped
    assert not set(found.files) & set(found.skipped)


def test_order_is_sorted_and_stable(tree):
    first = find_dicom_files(tree.root)
    assert first == sorted(first, key=lambda p: p.parts)
    assert find_dicom_files([str(tree.root)]) == first


def test_symlink_loop_is_entered_once(tree):
    files = find_dicom_files(tree.root)
    assert not any("loop" in p.parts for p in files), "the looping link must not repeat files"
    assert len(files) == len(set(files))


def test_not_recursive_takes_only_the_top_folder(tree):
    files = find_dicom_files(tree.root, recursive=False)
    assert files == sorted(p for p in tree.taken if p.parent == tree.root)


def test_raw_data_sets_only_when_asked(tree):
    assert tree.raw not in find_dicom_files(tree.root)
    assert tree.raw in find_dicom_files(tree.root, include_raw=True)
    assert not set(tree.clutter) & set(find_dicom_files(tree.root, include_raw=True))


def test_files_named_explicitly_are_always_taken(tree):
    notes = tree.root / "notes.txt"
    assert find_dicom_files([notes, tree.root / "a"]) == sorted([notes, *[p for p in tree.taken if "a" in p.relative_to(tree.root).parts[:1]]], key=lambda p: p.parts)


def test_reads_only_the_first_bytes(tree, monkeypatch):
    import builtins

    reads = []
    real_open = builtins.open

    class Spy:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.f.close()

        def read(self, n=-1):
            reads.append(n)
            return self.f.read(n)

    monkeypatch.setattr(builtins, "open", lambda p, mode="r", *a, **k: Spy(real_open(p, mode, *a, **k)) if mode == "rb" else real_open(p, mode, *a, **k))
    scan([tree.root])
    assert reads and all(0 < n <= 132 for n in reads)


def test_raw_sniffing_rejects_random_bytes():
    assert not looks_like_raw_dataset(b"hello world, this is text")
    assert looks_like_raw_dataset(b"\x08\x00\x16\x00UI\x1a\x00" + b"1" * 26)
    assert not looks_like_raw_dataset(b"\x08\x00\x17\x00UI\x1a\x00")  # odd element number
