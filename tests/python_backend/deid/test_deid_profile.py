"""The profile is the table: every row loads, every cell is a known action, options substitute."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from deid_corpus import table_rows, tag_of
from dicom_hub.contract.dicom.deid.profile import OPTIONS, Profile, load_safe_private, load_table, resolve
from dicom_hub.contract.dicom.deid.pseudonyms import Pseudonymizer
from dicom_hub.python_backend.deid.dates import shift_da, shift_dt

CATALOG = Path(__file__).resolve().parents[3] / "contract" / "ops" / "deid.json"


def test_every_row_of_the_table_is_loaded_and_interpretable() -> None:
    rows = table_rows()
    table = load_table()
    assert len(rows) == len(table) == 617
    basic = Profile()
    for row in rows:
        assert basic.action(tag_of(row["tag"])) in set("XZDKCU")


def test_catalog_options_are_the_table_columns() -> None:
    catalog = json.loads(CATALOG.read_text())
    header = [
        line
        for line in (CATALOG.parents[2] / "contract" / "data" / "ps3.15-annex-e-2024b.tsv")
        .read_text()
        .splitlines()
        if not line.startswith("#")
    ][0]
    assert set(OPTIONS) == set(header.split("\t")[4:])
    for op in ("anonymize", "batch_anonymize"):
        assert set(catalog[op]["options"]["properties"]["profile_options"]["items"]["enum"]) == set(OPTIONS)


@pytest.mark.parametrize(
    ("cell", "action"), [("X", "X"), ("X/Z", "X"), ("Z/D", "Z"), ("X/Z/D", "X"), ("X/Z/U*", "U"), ("K", "K")]
)
def test_combined_actions_resolve_to_the_most_protective(cell: str, action: str) -> None:
    assert resolve(cell) == action


def test_options_substitute_their_column() -> None:
    study_date, serial, sop_uid = 0x00080020, 0x00181000, 0x00080018
    assert Profile().action(study_date) == "Z"
    assert Profile({"retain_full_dates"}).action(study_date) == "K"
    assert Profile({"retain_modified_dates"}).action(study_date) == "C"
    assert Profile().action(serial) == "X" and Profile({"retain_device_identity"}).action(serial) == "K"
    assert Profile().action(sop_uid) == "U" and Profile({"retain_uids"}).action(sop_uid) == "K"
    assert Profile().action(0x00280010) is None  # Rows: not in the table
    with pytest.raises(ValueError):
        Profile({"keep_everything"})


def test_repeating_group_rows_match_every_group() -> None:
    basic, graphics = Profile(), Profile({"clean_graphics"})
    for overlay_group in (0x6000, 0x6002, 0x601E):
        assert basic.action(overlay_group << 16 | 0x3000) == "X"  # Overlay Data
        assert basic.action(overlay_group << 16 | 0x4000) == "X"  # Overlay Comments
        assert graphics.action(overlay_group << 16 | 0x3000) == "C"
        assert basic.action(overlay_group << 16 | 0x0010) is None  # Overlay Rows: not listed
    assert basic.action(0x50023000) == "X"  # Curve Data


def test_safe_private_list_loads() -> None:
    assert (0x0019, "SIEMENS MR HEADER", 0x0C) in load_safe_private()


def test_pseudonyms_are_keyed_uids_are_valid() -> None:
    one, other = Pseudonymizer(b"k" * 20), Pseudonymizer(b"q" * 20)
    uid = one.uid("1.2.3.4.5")
    assert uid == Pseudonymizer(b"k" * 20).uid("1.2.3.4.5") != other.uid("1.2.3.4.5")
    assert uid.startswith("2.25.") and len(uid) <= 64 and not uid[5:].startswith("0")
    assert one.uid("1.2.840.10008.1.2.1") == "1.2.840.10008.1.2.1"
    assert one.patient_id("MRN1") != other.patient_id("MRN1")
    assert -3650 <= one.date_offset_days("MRN1") <= -365


def test_date_shifting_keeps_precision_and_refuses_garbage() -> None:
    assert shift_da("20240301", -1) == "20240229"
    assert shift_da("2024.03.01", -1) == "20240229"
    assert shift_da("20240301\\20240302", -1) == "20240229\\20240301"
    assert shift_dt("20240301120000.5+0100", -1) == "20240229120000.5+0100"
    assert shift_dt("2024", -400) == "2022"
    assert shift_da("notadate", -1) is None and shift_dt("2024xx", -1) is None


def test_every_sequence_the_table_may_dummy_has_a_dummy_item() -> None:
    """A D sequence without a dummy item would be refused at run time: the data must cover them all."""
    from dicom_hub.contract.dicom.deid import dummies
    from pydicom.datadict import dictionary_VR

    may_dummy = {
        tag_of(row["tag"])
        for row in table_rows()
        if "x" not in row["tag"].lower()
        and dictionary_VR(tag_of(row["tag"])) == "SQ"
        and any("D" in (row[column] or "").split("/") for column in ("basic_action", *OPTIONS))
    }
    assert may_dummy and may_dummy <= set(dummies.load())
    for tag in may_dummy:
        item = dummies.item_for(tag)
        assert len(item) > 0, f"({tag >> 16:04X},{tag & 0xFFFF:04X}) needs a non-empty dummy item"
