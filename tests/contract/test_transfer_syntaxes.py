"""The one transfer-syntax table (contract/transfer_syntaxes.py): what it says, who reads it, and the
same refusal of the same `transcode` target from every backend."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from conftest import expect_error
from dicom_hub.adapters.registry import KNOWN_ADAPTERS
from dicom_hub.adapters.toolkit import syntaxes
from dicom_hub.contract import transfer_syntaxes as table
from dicom_hub.contract.errors import HubError
from dicom_hub.python_backend.pixels.syntaxes import TARGETS, resolve_target

ROOT = Path(__file__).resolve().parents[2]


def test_rows_are_unique_and_named_as_pydicom_names_them():
    from pydicom.uid import UID

    assert len({ts.alias for ts in table.TABLE}) == len({ts.uid for ts in table.TABLE}) == len(table.TABLE)
    for ts in table.TABLE:
        uid = UID(ts.uid)
        assert uid.is_transfer_syntax and uid.name == ts.name, ts
        assert uid.is_compressed == ts.compressed, ts
        assert (ts.method is not None) == ts.lossy, f"{ts.alias}: a lossy syntax records its method, a lossless one none"


def test_the_schema_enum_is_the_written_rows():
    options = json.loads((ROOT / "contract" / "ops" / "pixels.json").read_text())["transcode"]["options"]
    prop = options["properties"]["transfer_syntax"]
    assert prop["enum"] == table.written_names()
    for ts in table.WRITTEN:
        assert re.search(rf"\b{ts.alias}\b", prop["description"]), f"{ts.alias} missing from the description"
    assert "big_endian" not in prop["enum"] and table.uid("big_endian") not in prop["enum"]


def test_j2k_constants_say_which_is_lossy():
    assert table.uid("j2k") == syntaxes.J2K_LOSSLESS and not table.BY_UID[syntaxes.J2K_LOSSLESS].lossy
    assert table.uid("j2k_lossy") == syntaxes.J2K_LOSSY and table.BY_UID[syntaxes.J2K_LOSSY].lossy
    assert not hasattr(syntaxes, "J2K"), "J2K named the lossy UID while the alias j2k is lossless"


def test_python_targets_are_the_written_rows():
    assert [t.alias for t in TARGETS] == [ts.alias for ts in table.WRITTEN]
    assert {t.alias for t in TARGETS if t.via_gdcm} == {"jpeg", "jpeg_lossless"}
    assert resolve_target("1.2.840.10008.1.2.4.91").method == "ISO_15444_1"


def test_adapters_do_not_reach_into_the_python_backend_for_syntaxes():
    tree = ast.parse((ROOT / "adapters" / "toolkit" / "syntaxes.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any(name and name.startswith("dicom_hub.python_backend") for name in imported), imported


def test_the_csharp_alias_table_matches():
    """The C# program keeps its own alias map (it is contract-native); it must be the table's."""
    source = (ROOT / "adapters" / "csharp" / "Pixels.cs").read_text()
    block = source[source.index("Dictionary<string, string> Aliases"):]
    block = block[: block.index("};")]
    assert dict(re.findall(r'\{ "(\w+)", "([\d.]+)" \}', block)) == {ts.alias: ts.uid for ts in table.WRITTEN}


REFUSED = [
    ("big_endian", "retired"),
    ("1.2.840.10008.1.2.2", "retired"),
    ("1.2.840.10008.1.2.4.51", "read only"),
    ("mpeg2", "'mpeg2'"),
    ("JPEG", "'JPEG'"),
    ("1.2.3.4", "'1.2.3.4'"),
]


@pytest.mark.parametrize(("name", "words"), REFUSED)
def test_resolvers_refuse_alike(name, words):
    """The toolkit adapters' resolver and the Python backend's are the contract's one resolver."""
    errors = []
    for resolve in (table.resolve_written, syntaxes.writable, syntaxes.resolve, resolve_target):
        with pytest.raises(HubError) as caught:
            resolve(name)
        errors.append((caught.value.code.value, caught.value.message, caught.value.hint))
    assert len(set(errors)) == 1 and errors[0][0] == "invalid_request" and words in errors[0][1], errors


@pytest.mark.parametrize(("name", "words"), REFUSED[::2])
@pytest.mark.parametrize("backend", sorted(KNOWN_ADAPTERS))
def test_every_backend_gives_the_same_refusal(tmp_path, backend, name, words):
    out = tmp_path / "x.dcm"
    data = expect_error({"op": "transcode", "backend": backend, "input": "sample:CT_small.dcm", "output": str(out), "options": {"transfer_syntax": name}}, "invalid_request")
    assert words in data["error"]["message"], data["error"]
    assert data["error"]["message"] == _resolver_message(name)
    assert not out.exists()


def _resolver_message(name: str) -> str:
    try:
        table.resolve_written(name)
    except HubError as err:
        return err.message
    raise AssertionError(f"{name} resolved")
