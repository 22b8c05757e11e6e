"""One test per profile option: it plants values the option keeps and values it must still remove,
and checks both against the basic profile (which keeps neither)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pydicom
import pytest
from conftest import expect_ok
from factories import ct_slice, save
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

KEY = "options-test-key-0123456789"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
GRAYSCALE_PRESENTATION_STATE = "1.2.840.10008.5.1.4.1.1.11.1"

# option -> (attributes it keeps as they are, attributes still removed or replaced under it)
RETAIN_CASES = {
    "retain_uids": (
        {"StudyInstanceUID": "1.2.826.0.1.3680043.10.1234.31.1", "SeriesInstanceUID": "1.2.826.0.1.3680043.10.1234.31.2"},
        {"PatientName": "KEEPOUT^UIDS", "OperatorsName": "OPERATOR^UIDS", "DeviceSerialNumber": "SN-UIDS-1"},
    ),
    "retain_device_identity": (
        {"DeviceSerialNumber": "SN-DEVICE-42", "StationName": "CT-STATION-7"},
        {"InstitutionName": "HOSPITAL-DEVICE", "OperatorsName": "OPERATOR^DEVICE", "StudyInstanceUID": "1.2.826.0.1.3680043.10.1234.32.1"},
    ),
    "retain_institution_identity": (
        {"InstitutionName": "GENERAL-HOSPITAL-9", "InstitutionalDepartmentName": "RADIOLOGY-9"},
        {"DeviceSerialNumber": "SN-INSTITUTION", "ReferringPhysicianName": "REFERRER^INST"},
    ),
    "retain_patient_characteristics": (
        {"PatientSex": "F", "PatientAge": "042Y", "PatientWeight": "61.5"},
        {"PatientBirthDate": "19820304", "PatientName": "KEEPOUT^CHAR", "PatientAddress": "1 CHARACTER STREET"},
    ),
    "retain_full_dates": (
        {"StudyDate": "20240102", "AcquisitionDateTime": "20240102101500"},
        {"PatientBirthDate": "19700506", "PatientName": "KEEPOUT^DATES", "OtherPatientIDs": "OTHER-ID-DATES"},
    ),
}


def anonymize(src: Path, out: Path, options: list[str]) -> pydicom.Dataset:
    expect_ok({"op": "anonymize", "input": str(src), "output": str(out), "options": {"key": KEY, "profile_options": options}})
    return pydicom.dcmread(out)


def assert_removed(path: Path, values: dict[str, str]) -> None:
    raw = path.read_bytes()
    for keyword, value in values.items():
        assert value.encode() not in raw, f"{keyword} {value!r} survives in {path.name}"


@pytest.mark.parametrize("option", sorted(RETAIN_CASES))
def test_retain_option_keeps_its_values_and_nothing_else(tmp_path: Path, option: str) -> None:
    keep, remove = RETAIN_CASES[option]
    src = save(ct_slice(**keep, **remove), tmp_path / "in.dcm")
    basic = anonymize(src, tmp_path / "basic.dcm", [])
    kept = anonymize(src, tmp_path / "kept.dcm", [option])
    for keyword, value in keep.items():
        assert str(kept[keyword].value) == value, f"{option} must keep {keyword}"
        assert str(basic.get(keyword, "")) != value, f"the basic profile must not keep {keyword}"
    assert_removed(tmp_path / "kept.dcm", remove)
    long_enough = {keyword: value for keyword, value in keep.items() if len(value) > 4}  # 'F' is in any file
    assert_removed(tmp_path / "basic.dcm", {**long_enough, **remove})


def test_retain_modified_dates_shifts_every_date_by_one_offset(tmp_path: Path) -> None:
    src = save(
        ct_slice(StudyDate="20240102", AcquisitionDateTime="20240110083000", PatientName="KEEPOUT^SHIFT"),
        tmp_path / "in.dcm",
    )
    out = anonymize(src, tmp_path / "out.dcm", ["retain_modified_dates"])
    study, acquisition = date.fromisoformat(out.StudyDate), date.fromisoformat(out.AcquisitionDateTime[:8])
    assert study != date(2024, 1, 2), "the date must move"
    assert (acquisition - study).days == 8, "the interval between dates is kept"
    assert out.AcquisitionDateTime[8:] == "083000", "the time of day is kept"
    assert out.LongitudinalTemporalInformationModified == "MODIFIED"
    assert_removed(tmp_path / "out.dcm", {"PatientName": "KEEPOUT^SHIFT", "StudyDate": "20240102"})


def test_clean_descriptors_keeps_the_attribute_but_not_its_text(tmp_path: Path) -> None:
    descriptors = {"StudyDescription": "CT OF JOHN DOE", "SeriesDescription": "DOE HEAD", "ImageComments": "CALL DOE"}
    src = save(ct_slice(**descriptors, ProtocolName="HEAD ROUTINE"), tmp_path / "in.dcm")
    basic = anonymize(src, tmp_path / "basic.dcm", [])
    cleaned = anonymize(src, tmp_path / "clean.dcm", ["clean_descriptors"])
    for keyword in descriptors:
        assert keyword in cleaned and keyword not in basic
    assert_removed(tmp_path / "clean.dcm", descriptors)


def code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def sr_report(tmp_path: Path) -> Path:
    """A Comprehensive SR: a finding's text, a measurement, an observer's name, codes throughout."""
    ds = ct_slice()
    del ds.PixelData
    ds.SOPClassUID = COMPREHENSIVE_SR
    ds.file_meta.MediaStorageSOPClassUID = COMPREHENSIVE_SR
    ds.Modality, ds.ValueType = "SR", "CONTAINER"
    ds.ConceptNameCodeSequence = Sequence([code("18748-4", "LN", "Diagnostic Imaging Report")])
    text = Dataset()
    text.RelationshipType, text.ValueType, text.TextValue = "CONTAINS", "TEXT", "JOHN DOE FELL AT HOME"
    text.ConceptNameCodeSequence = Sequence([code("121071", "DCM", "Finding")])
    number = Dataset()
    number.RelationshipType, number.ValueType = "CONTAINS", "NUM"
    number.ConceptNameCodeSequence = Sequence([code("410668003", "SCT", "Length")])
    measured = Dataset()
    measured.NumericValue = "42"
    measured.MeasurementUnitsCodeSequence = Sequence([code("mm", "UCUM", "millimeter")])
    number.MeasuredValueSequence = Sequence([measured])
    name = Dataset()
    name.RelationshipType, name.ValueType, name.PersonName = "HAS OBS CONTEXT", "PNAME", "OBSERVER^JANE"
    name.ConceptNameCodeSequence = Sequence([code("121008", "DCM", "Person Observer Name")])
    text.ContentSequence = Sequence([name])
    ds.ContentSequence = Sequence([text, number])
    return save(ds, tmp_path / "sr.dcm")


def test_clean_structured_content_keeps_the_structure_and_cleans_the_text(tmp_path: Path) -> None:
    src = sr_report(tmp_path)
    basic = anonymize(src, tmp_path / "basic.dcm", [])
    cleaned = anonymize(src, tmp_path / "clean.dcm", ["clean_structured_content"])
    # basic: Content Sequence is D, one dummy item holding nothing of the original
    assert len(basic.ContentSequence) == 1 and basic.ContentSequence[0].TextValue == "ANONYMIZED"
    assert_removed(tmp_path / "basic.dcm", {"text": "JOHN DOE", "code": "121071", "number": "410668003"})
    # the option: items, value types, codes and numbers stay; free text and names do not
    finding, length = cleaned.ContentSequence
    assert finding.ConceptNameCodeSequence[0].CodeValue == "121071" and finding.ValueType == "TEXT"
    assert length.MeasuredValueSequence[0].NumericValue == 42
    assert length.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeValue == "mm"
    assert finding.ContentSequence[0].ConceptNameCodeSequence[0].CodeValue == "121008"
    assert finding.TextValue and "DOE" not in finding.TextValue
    assert_removed(tmp_path / "clean.dcm", {"TextValue": "JOHN DOE", "PersonName": "OBSERVER^JANE"})


def presentation_state(tmp_path: Path) -> Path:
    """A grayscale presentation state: a polyline and a text object naming the patient."""
    ds = ct_slice()
    del ds.PixelData
    ds.SOPClassUID = GRAYSCALE_PRESENTATION_STATE
    ds.file_meta.MediaStorageSOPClassUID = GRAYSCALE_PRESENTATION_STATE
    ds.Modality = "PR"
    layer = Dataset()
    layer.GraphicLayer, layer.GraphicLayerOrder = "MEASURE", 1
    ds.GraphicLayerSequence = Sequence([layer])
    annotation = Dataset()
    annotation.GraphicLayer = "MEASURE"
    text = Dataset()
    text.UnformattedTextValue, text.BoundingBoxAnnotationUnits = "MRS DOE LEFT KNEE", "PIXEL"
    text.BoundingBoxTopLeftHandCorner, text.BoundingBoxBottomRightHandCorner = [1.0, 1.0], [9.0, 3.0]
    graphic = Dataset()
    graphic.GraphicAnnotationUnits, graphic.GraphicDimensions, graphic.NumberOfGraphicPoints = "PIXEL", 2, 2
    graphic.GraphicData, graphic.GraphicType = [1.5, 2.5, 7.5, 8.5], "POLYLINE"
    annotation.TextObjectSequence = Sequence([text])
    annotation.GraphicObjectSequence = Sequence([graphic])
    ds.GraphicAnnotationSequence = Sequence([annotation])
    return save(ds, tmp_path / "pr.dcm")


def test_clean_graphics_keeps_the_drawing_and_cleans_the_text(tmp_path: Path) -> None:
    src = presentation_state(tmp_path)
    basic = anonymize(src, tmp_path / "basic.dcm", [])
    cleaned = anonymize(src, tmp_path / "clean.dcm", ["clean_graphics"])
    assert len(basic.GraphicAnnotationSequence) == 1 and "GraphicObjectSequence" not in basic.GraphicAnnotationSequence[0]
    assert_removed(tmp_path / "basic.dcm", {"text": "MRS DOE"})
    annotation = cleaned.GraphicAnnotationSequence[0]
    assert annotation.GraphicLayer == "MEASURE"
    assert list(annotation.GraphicObjectSequence[0].GraphicData) == [1.5, 2.5, 7.5, 8.5]
    assert annotation.TextObjectSequence[0].UnformattedTextValue == "ANONYMIZED"
    assert_removed(tmp_path / "clean.dcm", {"UnformattedTextValue": "MRS DOE"})


def test_retain_safe_private_keeps_the_safe_list_only(tmp_path: Path) -> None:
    ds = ct_slice()
    block = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    block.add_new(0x0C, "IS", 1000)  # B_value: on the safe list
    block.add_new(0x20, "LO", "NOT-SAFE-VALUE")
    src = save(ds, tmp_path / "in.dcm")
    basic = anonymize(src, tmp_path / "basic.dcm", [])
    safe = anonymize(src, tmp_path / "safe.dcm", ["retain_safe_private"])
    assert not [e for e in basic if e.tag.is_private]
    assert safe.private_block(0x0019, "SIEMENS MR HEADER")[0x0C].value in (1000, "1000", b"1000")
    assert_removed(tmp_path / "safe.dcm", {"private": "NOT-SAFE-VALUE"})
