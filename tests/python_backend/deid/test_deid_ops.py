"""`anonymize` end to end: UIDs and references, dates, pixels, markers, keys, mapping, refusals."""

from __future__ import annotations

import json
import os
import stat
from datetime import date
from pathlib import Path

import pydicom
import pytest
from conftest import expect_error, expect_ok, sample
from factories import ROOT, ct_slice, save
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

KEY = "ops-test-key-0123456789"


def anonymize(source: Path, out: Path, key: str | None = KEY, **options) -> dict:
    """Run the op; `key=None` leaves the key to key_file / key_env / a random one."""
    given = {"key": key, **options} if key is not None else options
    return expect_ok({"op": "anonymize", "input": str(source), "output": str(out), "options": given})


def referencing_pair(tmp_path: Path) -> tuple[Path, Path]:
    """Two slices of one study; the second references the first (Source Image, Referenced Image)."""
    study, series, frame = generate_uid(ROOT), generate_uid(ROOT), generate_uid(ROOT)
    first = ct_slice(study_uid=study, series_uid=series, instance=1, FrameOfReferenceUID=frame)
    second = ct_slice(study_uid=study, series_uid=series, instance=2, seed=1, FrameOfReferenceUID=frame)
    ref = Dataset()
    ref.ReferencedSOPClassUID = first.SOPClassUID
    ref.ReferencedSOPInstanceUID = first.SOPInstanceUID
    second.SourceImageSequence = Sequence([ref])
    deep = Dataset()
    deep.ReferencedSOPClassUID = first.SOPClassUID
    deep.ReferencedSOPInstanceUID = first.SOPInstanceUID
    outer = Dataset()
    outer.ReferencedSOPClassUID = first.SOPClassUID
    outer.ReferencedSOPInstanceUID = first.SOPInstanceUID
    outer.ReferencedImageSequence = Sequence([deep])
    second.ReferencedImageSequence = Sequence([outer])
    return save(first, tmp_path / "a.dcm"), save(second, tmp_path / "b.dcm")


def test_uids_are_replaced_consistently_and_references_follow(tmp_path: Path) -> None:
    a, b = referencing_pair(tmp_path)
    anonymize(a, tmp_path / "a_out.dcm")
    anonymize(b, tmp_path / "b_out.dcm")
    old_a, new_a, new_b = (
        pydicom.dcmread(a),
        pydicom.dcmread(tmp_path / "a_out.dcm"),
        pydicom.dcmread(tmp_path / "b_out.dcm"),
    )
    assert new_a.SOPInstanceUID != old_a.SOPInstanceUID and new_a.SOPInstanceUID.startswith("2.25.")
    assert new_a.file_meta.MediaStorageSOPInstanceUID == new_a.SOPInstanceUID
    assert new_a.StudyInstanceUID == new_b.StudyInstanceUID != old_a.StudyInstanceUID
    assert new_a.SeriesInstanceUID == new_b.SeriesInstanceUID
    assert new_a.FrameOfReferenceUID == new_b.FrameOfReferenceUID != old_a.FrameOfReferenceUID
    assert new_b.SourceImageSequence[0].ReferencedSOPInstanceUID == new_a.SOPInstanceUID
    outer = new_b.ReferencedImageSequence[0]
    assert outer.ReferencedSOPInstanceUID == new_a.SOPInstanceUID
    assert outer.ReferencedImageSequence[0].ReferencedSOPInstanceUID == new_a.SOPInstanceUID
    assert outer.ReferencedSOPClassUID == old_a.SOPClassUID  # standard UIDs stay
    for uid in (new_a.SOPInstanceUID, new_a.StudyInstanceUID, new_a.SeriesInstanceUID):
        assert len(uid) <= 64


def test_same_key_same_result_other_key_other_result(tmp_path: Path) -> None:
    a, _ = referencing_pair(tmp_path)
    anonymize(a, tmp_path / "1.dcm")
    anonymize(a, tmp_path / "2.dcm")
    anonymize(a, tmp_path / "3.dcm", key="another-key-0123456789")
    assert (tmp_path / "1.dcm").read_bytes() == (tmp_path / "2.dcm").read_bytes()
    one, three = pydicom.dcmread(tmp_path / "1.dcm"), pydicom.dcmread(tmp_path / "3.dcm")
    assert one.SOPInstanceUID != three.SOPInstanceUID and one.PatientID != three.PatientID


def test_without_key_every_call_gets_a_random_key(tmp_path: Path) -> None:
    a, _ = referencing_pair(tmp_path)
    first = anonymize(a, tmp_path / "1.dcm", key=None)
    anonymize(a, tmp_path / "2.dcm", key=None)
    assert first["metadata"]["key_source"] == "random"
    assert (
        pydicom.dcmread(tmp_path / "1.dcm").StudyInstanceUID
        != pydicom.dcmread(tmp_path / "2.dcm").StudyInstanceUID
    )


def test_key_file_is_written_then_reused(tmp_path: Path) -> None:
    a, _ = referencing_pair(tmp_path)
    key_file = tmp_path / "secret" / "deid.key"
    first = anonymize(a, tmp_path / "1.dcm", key=None, key_file=str(key_file))
    assert first["metadata"]["key_source"] == "random, saved"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key_file.read_text().strip()) >= 32
    second = anonymize(a, tmp_path / "2.dcm", key=None, key_file=str(key_file))
    assert second["metadata"]["key_source"] == "key_file"
    assert (tmp_path / "1.dcm").read_bytes() == (tmp_path / "2.dcm").read_bytes()


def test_key_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, _ = referencing_pair(tmp_path)
    monkeypatch.setenv("DEID_TEST_KEY", KEY)
    anonymize(a, tmp_path / "env.dcm", key=None, key_env="DEID_TEST_KEY")
    anonymize(a, tmp_path / "opt.dcm")
    assert (tmp_path / "env.dcm").read_bytes() == (tmp_path / "opt.dcm").read_bytes()


def test_patient_pseudonyms_are_keyed_and_prefixed(tmp_path: Path) -> None:
    a, b = referencing_pair(tmp_path)
    anonymize(a, tmp_path / "a_out.dcm", patient_prefix="STUDY7_")
    anonymize(b, tmp_path / "b_out.dcm", patient_prefix="STUDY7_")
    new_a, new_b = pydicom.dcmread(tmp_path / "a_out.dcm"), pydicom.dcmread(tmp_path / "b_out.dcm")
    assert new_a.PatientID.startswith("STUDY7_") and new_a.PatientID == new_b.PatientID
    assert "SYN001" not in new_a.PatientID and "Synthetic" not in str(new_a.PatientName)
    assert new_a.PatientName == new_b.PatientName
    import hashlib

    assert (
        hashlib.sha256(b"SYN001").hexdigest()[:16].upper() not in new_a.PatientID.upper()
    )  # not an unkeyed hash


def test_modified_dates_keep_intervals(tmp_path: Path) -> None:
    one = ct_slice(
        StudyDate="20240102",
        SeriesDate="20240105",
        ContentDate="20240110",
        AcquisitionDateTime="20240105123000.5",
        StudyTime="101010",
    )
    two = ct_slice(StudyDate="20240301", seed=3)  # same patient, another study
    other = ct_slice(PatientID="SOMEONE-ELSE", StudyDate="20240102", seed=4)
    paths = [save(ds, tmp_path / f"{i}.dcm") for i, ds in enumerate((one, two, other))]
    outs = [tmp_path / f"{i}_out.dcm" for i in range(3)]
    for src, out in zip(paths, outs, strict=True):
        anonymize(src, out, profile_options=["retain_modified_dates"])
    new_one, new_two, new_other = (pydicom.dcmread(p) for p in outs)

    def day(text: str) -> date:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))

    offset = day(new_one.StudyDate) - day("20240102")
    assert offset.days < 0
    assert day(new_one.SeriesDate) - day(new_one.StudyDate) == day("20240105") - day("20240102")
    assert day(new_one.ContentDate) - day(new_one.StudyDate) == day("20240110") - day("20240102")
    assert day(new_two.StudyDate) - day(new_one.StudyDate) == day("20240301") - day("20240102")
    assert new_one.AcquisitionDateTime == day("20240105").__add__(offset).strftime("%Y%m%d") + "123000.5"
    assert new_one.StudyTime == "101010"  # whole-day offsets leave times alone
    assert new_other.StudyDate != new_one.StudyDate  # another patient, another offset
    assert new_one.LongitudinalTemporalInformationModified == "MODIFIED"


def test_basic_profile_removes_dates(tmp_path: Path) -> None:
    src = save(ct_slice(SeriesDate="20240105", AcquisitionDateTime="20240105123000"), tmp_path / "in.dcm")
    anonymize(src, tmp_path / "out.dcm")
    ds = pydicom.dcmread(tmp_path / "out.dcm")
    assert ds.StudyDate == "" and "SeriesDate" not in ds and "AcquisitionDateTime" not in ds
    assert ds.PatientBirthDate == ""
    assert ds.LongitudinalTemporalInformationModified == "REMOVED"


@pytest.mark.parametrize(
    "name",
    ["CT_small.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm"],
)
def test_pixel_data_is_copied_byte_for_byte(tmp_path: Path, name: str) -> None:
    out = tmp_path / "out.dcm"
    anonymize(sample(name), out, allow_burned_in=True)
    before, after = pydicom.dcmread(sample(name)), pydicom.dcmread(out)
    assert after.PixelData == before.PixelData
    assert after.file_meta.TransferSyntaxUID == before.file_meta.TransferSyntaxUID
    assert after.Rows == before.Rows and after.BitsStored == before.BitsStored


def test_markers_name_profile_and_options(tmp_path: Path) -> None:
    a, _ = referencing_pair(tmp_path)
    result = anonymize(
        a, tmp_path / "out.dcm", profile_options=["retain_device_identity", "clean_descriptors"]
    )
    ds = pydicom.dcmread(tmp_path / "out.dcm")
    assert ds.PatientIdentityRemoved == "YES"
    codes = {(item.CodeValue, item.CodingSchemeDesignator) for item in ds.DeidentificationMethodCodeSequence}
    assert codes == {("113100", "DCM"), ("113109", "DCM"), ("113105", "DCM")}
    assert "retain_device_identity" in ds.DeidentificationMethod
    assert all(len(v) <= 64 for v in ds.DeidentificationMethod)
    assert result["metadata"]["profile_options"] == ["retain_device_identity", "clean_descriptors"]


def test_retain_options_keep_what_they_name(tmp_path: Path) -> None:
    src = save(
        ct_slice(
            DeviceSerialNumber="SN-42",
            InstitutionName="General Hospital",
            PatientSex="F",
            PatientAge="042Y",
            StudyDate="20240102",
        ),
        tmp_path / "in.dcm",
    )
    anonymize(src, tmp_path / "basic.dcm")
    options = [
        "retain_device_identity",
        "retain_institution_identity",
        "retain_patient_characteristics",
        "retain_full_dates",
        "retain_uids",
    ]
    anonymize(src, tmp_path / "kept.dcm", profile_options=options)
    basic, kept, original = (
        pydicom.dcmread(tmp_path / "basic.dcm"),
        pydicom.dcmread(tmp_path / "kept.dcm"),
        pydicom.dcmread(src),
    )
    assert "DeviceSerialNumber" not in basic and "InstitutionName" not in basic and "PatientAge" not in basic
    assert kept.DeviceSerialNumber == "SN-42" and kept.InstitutionName == "General Hospital"
    assert kept.PatientSex == "F" and kept.PatientAge == "042Y" and kept.StudyDate == "20240102"
    assert kept.SOPInstanceUID == original.SOPInstanceUID and basic.SOPInstanceUID != original.SOPInstanceUID
    assert kept.PatientID != original.PatientID  # identity is never an option


def test_safe_private_keeps_only_the_safe_list(tmp_path: Path) -> None:
    ds = ct_slice()
    block = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    block.add_new(0x0C, "IS", 1000)  # B_value: on the safe list
    block.add_new(0x20, "LO", "NOT-SAFE-VALUE")
    other = ds.private_block(0x0029, "SIEMENS CSA HEADER", create=True)
    other.add_new(0x10, "OB", b"PATIENT-IN-CSA")
    src = save(ds, tmp_path / "in.dcm")
    anonymize(src, tmp_path / "plain.dcm")
    anonymize(src, tmp_path / "safe.dcm", profile_options=["retain_safe_private"])
    plain, safe = pydicom.dcmread(tmp_path / "plain.dcm"), pydicom.dcmread(tmp_path / "safe.dcm")
    assert not [e for e in plain if e.tag.is_private]
    kept = {e.tag: e for e in safe if e.tag.is_private}
    assert set(kept) == {0x00190010, 0x0019100C}
    assert safe.private_block(0x0019, "SIEMENS MR HEADER")[0x0C].value in (1000, "1000", b"1000")
    assert b"NOT-SAFE-VALUE" not in (tmp_path / "safe.dcm").read_bytes()
    assert b"PATIENT-IN-CSA" not in (tmp_path / "safe.dcm").read_bytes()


def test_mapping_file_relinks_and_merges(tmp_path: Path) -> None:
    a, b = referencing_pair(tmp_path)
    mapping = tmp_path / "map.json"
    anonymize(a, tmp_path / "a_out.dcm", mapping_file=str(mapping))
    anonymize(b, tmp_path / "b_out.dcm", mapping_file=str(mapping))
    report = json.loads(mapping.read_text())
    old_a, old_b, new_b = pydicom.dcmread(a), pydicom.dcmread(b), pydicom.dcmread(tmp_path / "b_out.dcm")
    assert report["uids"][old_a.SOPInstanceUID] == pydicom.dcmread(tmp_path / "a_out.dcm").SOPInstanceUID
    assert report["uids"][old_b.SOPInstanceUID] == new_b.SOPInstanceUID
    assert report["patients"]["SYN001"]["patient_id"] == new_b.PatientID


def test_no_mapping_file_unless_asked(tmp_path: Path) -> None:
    a, _ = referencing_pair(tmp_path)
    anonymize(a, tmp_path / "out" / "a.dcm")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.dcm"]


@pytest.mark.parametrize(
    ("elements", "what"),
    [
        ({"BurnedInAnnotation": "YES"}, "Burned In Annotation"),
        ({"SOPClassUID": "1.2.840.10008.5.1.4.1.1.7"}, "Secondary Capture"),
        ({"SOPClassUID": "1.2.840.10008.5.1.4.1.1.6.1"}, "Ultrasound"),
    ],
)
def test_burned_in_annotation_is_refused_unless_allowed(tmp_path: Path, elements: dict, what: str) -> None:
    ds = ct_slice(**elements)
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    src = save(ds, tmp_path / "in.dcm")
    out = tmp_path / "out.dcm"
    error = expect_error(
        {"op": "anonymize", "input": str(src), "output": str(out), "options": {"key": KEY}}, "invalid_request"
    )
    assert what in error["error"]["message"] and "allow_burned_in" in error["error"]["hint"]
    assert not out.exists()
    anonymize(src, out, allow_burned_in=True)
    assert pydicom.dcmread(out).PixelData == ds.PixelData


def test_bad_inputs_and_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, _ = referencing_pair(tmp_path)
    text = tmp_path / "notes.dcm"
    text.write_text("not a dicom file at all\n" * 20)
    out = tmp_path / "out.dcm"
    expect_error(
        {"op": "anonymize", "input": str(text), "output": str(out), "options": {"key": KEY}}, "not_dicom"
    )
    expect_error(
        {"op": "anonymize", "input": str(tmp_path / "missing.dcm"), "output": str(out)}, "input_not_found"
    )
    expect_error(
        {"op": "anonymize", "input": str(a), "output": str(out), "options": {"key": "short"}},
        "invalid_request",
    )
    expect_error(
        {"op": "anonymize", "input": str(a), "output": str(out), "options": {"key": KEY, "key_env": "X"}},
        "invalid_request",
    )
    monkeypatch.delenv("DEID_UNSET_KEY", raising=False)
    expect_error(
        {"op": "anonymize", "input": str(a), "output": str(out), "options": {"key_env": "DEID_UNSET_KEY"}},
        "invalid_request",
    )
    expect_error(
        {
            "op": "anonymize",
            "input": str(a),
            "output": str(out),
            "options": {"profile_options": ["retain_full_dates", "retain_modified_dates"]},
        },
        "invalid_request",
    )
    expect_error(
        {
            "op": "anonymize",
            "input": str(a),
            "output": str(out),
            "options": {"profile_options": ["retain_everything"]},
        },
        "invalid_request",
    )
    assert not out.exists()
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(a.read_bytes()[:-300])
    expect_error(
        {"op": "anonymize", "input": str(truncated), "output": str(out), "options": {"key": KEY}},
        "decode_error",
    )
    assert not out.exists()
    anonymize(a, out)
    before = out.read_bytes()
    expect_error(
        {"op": "anonymize", "input": str(a), "output": str(out), "options": {"key": "other-key-0123456789"}},
        "output_exists",
    )
    assert out.read_bytes() == before
    foreign = tmp_path / "foreign.json"
    foreign.write_text("[1, 2, 3]")
    expect_error(
        {
            "op": "anonymize",
            "input": str(a),
            "output": str(tmp_path / "o2.dcm"),
            "options": {"key": KEY, "mapping_file": str(foreign)},
        },
        "output_exists",
    )
    assert foreign.read_text() == "[1, 2, 3]"
    assert os.access(a, os.R_OK) and pydicom.dcmread(a).PatientID == "SYN001"  # the input is untouched
