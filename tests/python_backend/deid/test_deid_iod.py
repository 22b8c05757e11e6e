"""What the IOD needs decides what survives: attributes Table E.1-1 does not list are kept only where
the IOD defines them, and combined actions ('X/Z/D') follow the attribute's type in the IOD."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from conftest import expect_ok
from dicom_hub.contract.dicom.deid import iods
from dicom_hub.contract.dicom.deid.profile import Profile, resolve
from factories import ct_slice, save
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, EnhancedCTImageStorage

KEY = "iod-test-key-0123456789"
PRIVATE_SOP_CLASS = "1.2.826.0.1.3680043.10.1234.999.1"


def anonymize(source: Path, out: Path, backend: str = "python") -> Dataset:
    options = {"key": KEY} if backend in ("python", "csharp") else {}  # DCMTK takes no key
    data = expect_ok({"op": "anonymize", "input": str(source), "output": str(out), "backend": backend, "options": options})
    if backend == "python":
        expected = {CTImageStorage: "ct-image", EnhancedCTImageStorage: "enhanced-ct-image"}
        assert data["metadata"]["iod"] == expected.get(pydicom.dcmread(source).SOPClassUID, iods.ANY_IOD)
    return pydicom.dcmread(out)


def tag(keyword: str) -> int:
    found = tag_for_keyword(keyword)
    assert found is not None, keyword
    return found


def unlisted(keyword: str) -> int:
    """The tag of an attribute Table E.1-1 does not list (checked, so the test means what it says)."""
    found = tag(keyword)
    assert Profile().action(found) is None, f"{keyword} is in Table E.1-1"
    return found


@pytest.mark.parametrize(
    ("cell", "requirement", "action"),
    [
        ("X/Z/D", "3", "X"), ("X/Z/D", "2", "Z"), ("X/Z/D", "1", "D"), ("X/Z/D", None, "X"),
        ("X/D", "2", "D"), ("X/D", "3", "X"), ("X/Z", "1", "Z"), ("Z/D", "1", "D"), ("Z/D", "3", "Z"),
        ("X/Z/U*", "3", "U"), ("K", "1", "K"), ("C", "3", "C"),
    ],
)
def test_combined_actions_follow_the_iod_type(cell: str, requirement: str | None, action: str) -> None:
    assert resolve(cell, requirement) == action


def test_iod_tables_know_the_common_iods() -> None:
    ct, enhanced = iods.for_sop_class(CTImageStorage), iods.for_sop_class(EnhancedCTImageStorage)
    assert (ct.name, enhanced.name) == ("ct-image", "enhanced-ct-image")
    assert ct.requirement((tag("Rows"),)) == "1" and ct.requirement((tag("SOPInstanceUID"),)) == "1"
    assert ct.requirement((tag("ContentDate"),)) == "2" and enhanced.requirement((tag("ContentDate"),)) == "1"
    assert not ct.defines((tag("EchoTime"),))
    # Inside a code sequence the IOD defines the code, not other attributes.
    derivation = tag("DerivationCodeSequence")
    assert ct.describes((derivation,)) and ct.defines((derivation, tag("CodeValue")))
    assert not ct.defines((derivation, tag("Manufacturer")))
    # Overlay groups 6000-60FE share one definition.
    assert ct.defines((0x60000010,)) and ct.defines((0x601E0010,))
    assert iods.for_sop_class(PRIVATE_SOP_CLASS).name == iods.ANY_IOD
    assert iods.any_iod().requirement((tag("ContentDate"),)) is None


def iod_probe(sop_class: str, marker: str, nested: bool = True) -> Dataset:
    """A CT-like image with unlisted attributes outside its IOD (top level and nested), unlisted
    technical ones inside it, and combined-action attributes whose outcome depends on the IOD."""
    ds = ct_slice(KVP=120, ConvolutionKernel="B30f", Manufacturer="ACME")
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.add_new(unlisted("EchoTime"), "DS", "98.76")  # an MR attribute, not in a CT
    ds.add_new(unlisted("TransducerData"), "LO", f"{marker}TOP")  # ultrasound only
    ds.add_new(unlisted("DataSetSubtype"), "LO", f"{marker}RETIRED")  # retired: in no IOD
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "113072", "DCM", "Multiplanar reformatting"
    if nested:
        code.add_new(unlisted("Manufacturer"), "LO", f"{marker}NESTED")  # not part of a code item
    ds.DerivationCodeSequence = Sequence([code])
    # Overlay groups: Overlay Data and Comments are table rows (X); without its data, the rest of the
    # overlay goes too (Overlay Data is Type 1).
    ds.add_new(0x60020010, "US", 16)
    ds.add_new(0x60020011, "US", 16)
    ds.add_new(0x60023000, "OW", f"{marker}OVERLAYDATA".encode().ljust(32, b"\0"))
    ds.add_new(0x60024000, "LT", f"{marker}OVERLAYCOMMENT")
    ds.ContentDate, ds.SeriesDate, ds.AcquisitionDate = "20240102", "20240102", "20240102"
    ds.DeviceSerialNumber = f"{marker}SERIAL"
    context = Dataset()
    context.add_new(tag("ValueType"), "CS", "TEXT")
    ds.AcquisitionContextSequence = Sequence([context])
    return ds


def test_ct_keeps_what_its_iod_needs_and_nothing_else(tmp_path: Path) -> None:
    source = save(iod_probe(CTImageStorage, "LEAKIOD"), tmp_path / "ct.dcm")
    out = anonymize(source, tmp_path / "out.dcm")
    for keyword in ("EchoTime", "TransducerData", "DataSetSubtype"):
        assert keyword not in out, f"{keyword}: not needed by the CT Image IOD, must be removed"
    assert "Manufacturer" not in out.DerivationCodeSequence[0]
    assert out.DerivationCodeSequence[0].CodeValue == "113072"
    assert b"LEAKIOD" not in (tmp_path / "out.dcm").read_bytes()
    original = pydicom.dcmread(source)
    for keyword in ("KVP", "ConvolutionKernel", "Manufacturer", "SliceThickness", "PixelSpacing", "RescaleIntercept", "WindowCenter", "Rows"):
        assert out[keyword].value == original[keyword].value, keyword
    assert out.PixelData == original.PixelData
    assert not [elem.tag for elem in out if elem.tag.group == 0x6002]
    # Combined actions under CT Image types: ContentDate Z/D (type 2) -> empty; X/D, X/Z, X/Z/D of type 3 -> removed.
    assert "ContentDate" in out and out.ContentDate == ""
    for keyword in ("SeriesDate", "AcquisitionDate", "DeviceSerialNumber", "AcquisitionContextSequence"):
        assert keyword not in out, keyword


def test_enhanced_ct_keeps_required_attributes_with_dummies(tmp_path: Path) -> None:
    source = save(iod_probe(EnhancedCTImageStorage, "LEAKENH"), tmp_path / "enhanced.dcm")
    out = anonymize(source, tmp_path / "out.dcm")
    # Type 1 in the Enhanced CT IOD: a dummy value, not the original; type 2: present and empty.
    assert out.ContentDate == "19000101"
    assert out.DeviceSerialNumber not in ("", "LEAKENHSERIAL")
    assert "AcquisitionContextSequence" in out and len(out.AcquisitionContextSequence) == 0
    assert "SeriesDate" not in out  # X/D, type 3
    assert b"LEAKENH" not in (tmp_path / "out.dcm").read_bytes()


def test_unknown_sop_class_is_judged_against_every_iod(tmp_path: Path) -> None:
    source = save(iod_probe(PRIVATE_SOP_CLASS, "LEAKANY"), tmp_path / "private.dcm")
    out = anonymize(source, tmp_path / "out.dcm")
    assert "DataSetSubtype" not in out  # no IOD defines it
    assert "Manufacturer" not in out.DerivationCodeSequence[0]
    # Some IOD defines these at the top level: kept (the tables cannot say this SOP class does not need them).
    assert out.KVP == 120 and out.SliceThickness == 1.0 and out.TransducerData == "LEAKANYTOP"
    # Without known types, combined actions take their most protective choice.
    assert out.ContentDate == "" and "SeriesDate" not in out and "DeviceSerialNumber" not in out
    written = (tmp_path / "out.dcm").read_bytes()
    assert b"LEAKANYRETIRED" not in written and b"LEAKANYNESTED" not in written and b"LEAKANYSERIAL" not in written


@pytest.mark.parametrize("sop_class", [CTImageStorage, EnhancedCTImageStorage, PRIVATE_SOP_CLASS], ids=["ct", "enhanced-ct", "unknown"])
@pytest.mark.parametrize("backend", ["dcmtk", "csharp"])
def test_toolkit_backends_remove_what_the_iod_does_not_need(tmp_path: Path, backend: str, sop_class: str) -> None:
    """DCMTK executes the engine's plan and the C# program has the same tables: their results keep,
    empty, dummy and remove the same attributes as the Python engine's."""
    from conftest import require_backend

    require_backend(backend)
    source = save(iod_probe(sop_class, "LEAKTK"), tmp_path / "in.dcm")
    python = anonymize(source, tmp_path / "python.dcm")
    other = anonymize(source, tmp_path / f"{backend}.dcm", backend=backend)
    assert b"LEAKTK" not in (tmp_path / f"{backend}.dcm").read_bytes() or sop_class == PRIVATE_SOP_CLASS
    given = {int(e.tag) for e in pydicom.dcmread(source)}
    assert given & {int(e.tag) for e in other} == given & {int(e.tag) for e in python}
    if "DerivationCodeSequence" in python:  # Enhanced CT keeps derivation in functional groups only
        assert "Manufacturer" not in other.DerivationCodeSequence[0]
    for keyword in ("ContentDate", "DeviceSerialNumber", "KVP"):  # Z/D and X/Z/D settled alike; kept as is
        assert (keyword in other) == (keyword in python) and (keyword not in python or other[keyword].value == python[keyword].value), keyword


def test_gdcm_removes_top_level_attributes_the_iod_does_not_need(tmp_path: Path) -> None:
    """gdcmanon --dumb reaches only the top level: there it executes the engine's plan; a file with a
    nested attribute the profile changes is refused before anything runs (unsupported_op)."""
    from conftest import expect_error, require_backend

    require_backend("gdcm")
    source = save(iod_probe(CTImageStorage, "LEAKGD", nested=False), tmp_path / "ct.dcm")
    out = anonymize(source, tmp_path / "gdcm.dcm", backend="gdcm")
    for keyword in ("EchoTime", "TransducerData", "DataSetSubtype"):
        assert keyword not in out, keyword
    assert out.KVP == 120 and out.ConvolutionKernel == "B30f"
    nested = save(iod_probe(CTImageStorage, "LEAKGD"), tmp_path / "nested.dcm")
    request = {"op": "anonymize", "input": str(nested), "output": str(tmp_path / "refused.dcm"), "backend": "gdcm"}
    error = expect_error(request, "unsupported_op")["error"]
    assert "DerivationCodeSequence > Manufacturer" in error["message"]
    assert not (tmp_path / "refused.dcm").exists()
