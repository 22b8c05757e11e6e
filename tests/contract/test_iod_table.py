"""The PS3.3 IOD table (`contract/data/ps3.3-iods-*.bin.gz`, read by `deid/iods.py`) gives the same
answers as the keyword-based table it replaced, and loads without pydicom.

Until 2026-12 the table stored 'Seq>Keyword' paths that every process resolved to tags with pydicom's
dictionary (~45 ms before a batch forked, ~20 ms per worker and IOD); it now stores the tags, resolved
when the table is made. `write_tsv` (the C# backend's copy of the table) lists every module row with
its resolved path, so its bytes pin the old table's content: the digest below is the old code's
output (commit a93c802, `ps3.3-iods-highdicom-0.28.2.json.gz`, pydicom 3.0.2). The test then derives
each IOD from those rows the way the old code did and compares with what `iods` answers now.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
from dicom_hub.contract.dicom.deid import iods
from dicom_hub.contract.dicom.pydicom_tables import tags_by_keyword
from pydicom.datadict import keyword_for_tag
from pydicom.uid import CTImageStorage

# sha256 of write_tsv's output before the change (the keyword-based table, resolved by pydicom 3.0.2).
KEYWORD_TABLE_TSV_SHA256 = "9a3133dcb7c61c35e134c1e2cfe74ac120d6940e75f1d9826867c13efb401d0e"
STRENGTH = {"1": 0, "1C": 1, "2": 2, "2C": 3, "3": 4}  # the old code's order of the types


@pytest.fixture(scope="module")
def tsv_lines(tmp_path_factory: pytest.TempPathFactory) -> list[list[str]]:
    path = tmp_path_factory.mktemp("iods") / "iods.tsv"
    iods.write_tsv(str(path))
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == KEYWORD_TABLE_TSV_SHA256, "write_tsv no longer gives the old bytes"
    return [line.split("\t") for line in data.decode("ascii").splitlines()]


def test_write_tsv_gives_the_same_bytes_as_the_keyword_table(tsv_lines: list[list[str]]) -> None:
    kinds = {line[0] for line in tsv_lines}
    assert kinds == {"S", "I", "M"} and sum(line[0] == "M" for line in tsv_lines) > 90_000


def _old_build(name: str, modules: list[str], rows: dict[str, list[tuple[str, iods.TagPath]]]) -> tuple[dict, frozenset]:
    """`iods._build` before the change: the strongest type per path, and every proper prefix."""
    types: dict[iods.TagPath, str] = {}
    for module in modules:
        for kind, path in rows.get(module, ()):
            known = types.get(path)
            if known is None or STRENGTH[kind] < STRENGTH[known]:
                types[path] = kind
    return types, frozenset(path[:depth] for path in types for depth in range(len(path)))


def test_every_iod_answers_as_the_keyword_table_did(tsv_lines: list[list[str]]) -> None:
    sop_classes = {line[1]: line[2] for line in tsv_lines if line[0] == "S"}
    iod_modules = {line[1]: line[2].split() for line in tsv_lines if line[0] == "I"}
    rows: dict[str, list[tuple[str, iods.TagPath]]] = {}
    for line in tsv_lines:
        if line[0] == "M":
            rows.setdefault(line[1], []).append((line[2], tuple(int(tag, 16) for tag in line[3].split(">"))))
    any_types, any_described = _old_build(iods.ANY_IOD, list(rows), rows)
    new_any = iods.any_iod()
    assert (new_any.name, new_any.types, new_any.described) == (iods.ANY_IOD, any_types, any_described)

    partial = 0
    for iod, modules in iod_modules.items():
        complete = modules and all(rows.get(module) for module in modules)  # the old `_for_iod`
        expected = (iod, *_old_build(iod, modules, rows)) if complete else (iods.ANY_IOD, any_types, any_described)
        partial += not complete
        for uid in [uid for uid, named in sop_classes.items() if named == iod] or [None]:
            found = iods._for_iod(iod) if uid is None else iods.for_sop_class(uid)
            assert (found.name, found.types, found.described) == expected, (iod, uid)
            assert list(found.types) == list(expected[1]), "same order too"
    assert 0 < partial < len(iod_modules) // 2  # both branches were compared
    assert iods.for_sop_class(CTImageStorage).name == "ct-image"
    assert iods.for_sop_class("1.2.3.4.unknown").name == iods.ANY_IOD


def test_every_tag_of_the_table_is_the_one_pydicom_gives_its_keyword() -> None:
    """The tags were resolved by pydicom when the table was made; the installed pydicom agrees."""
    table = iods._table()
    tags = set(table.tags[1:])
    assert len(tags) > 4000
    by_keyword = tags_by_keyword()
    for tag in tags:
        keyword = keyword_for_tag(tag)
        assert keyword and by_keyword[keyword] == tag, hex(tag)
    assert all(table.parents[node] < node for node in range(1, len(table.parents))), "parents come first"


def test_the_table_loads_without_pydicom() -> None:
    code = f"""
import sys
from dicom_hub.contract.dicom.deid import iods
assert iods.for_sop_class({str(CTImageStorage)!r}).name == "ct-image"
print(sorted(m for m in sys.modules if "pydicom" in m))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]"]

