"""The PixelMed backend run for real (about 20 JVM starts), checked against pydicom and the Python
backend; failures that PixelMed itself reports with exit code 0 must come back as errors."""

from __future__ import annotations

import json
import uuid
from functools import partial

import numpy as np
import pytest
from conftest import backend_request, expect_error, expect_ok, require_backend, sample
from factories import save, series
from PIL import Image
from pydicom import dcmread

BACKEND = "pixelmed"


@pytest.fixture(autouse=True)
def _backend():
    require_backend(BACKEND)


pm = partial(backend_request, BACKEND)


def test_availability_names_the_jar_release():
    from dicom_hub.adapters.registry import get_adapter

    assert get_adapter(BACKEND).version().startswith("2022")


def test_info_equals_the_python_backend():
    ours = expect_ok(pm("info", "sample:CT_small.dcm"))
    reference = expect_ok({"op": "info", "input": "sample:CT_small.dcm", "backend": "python"})
    assert ours["backend"] == BACKEND
    assert ours["metadata"] == reference["metadata"]


def test_to_json_then_from_json_rebuilds_the_file(tmp_path):
    document = tmp_path / "ct.json"
    data = expect_ok(pm("to_json", "sample:CT_small.dcm", document))
    content = json.loads(document.read_text())
    reference = dcmread(sample("CT_small.dcm")).to_json_dict()
    assert set(content) == set(reference) and data["metadata"]["element_count"] == len(reference)
    assert all(tag == tag.upper() for tag in content)
    rebuilt = tmp_path / "ct.dcm"
    expect_ok(pm("from_json", str(document), rebuilt))
    original, copy = dcmread(sample("CT_small.dcm")), dcmread(rebuilt)
    assert copy.SOPInstanceUID == original.SOPInstanceUID and copy.PatientName == original.PatientName
    assert np.array_equal(copy.pixel_array, original.pixel_array)


def test_dump_elements_follow_the_file():
    data = expect_ok(pm("dump", "sample:rtplan.dcm"))
    ds = dcmread(sample("rtplan.dcm"))
    top = [e["tag"] for e in data["metadata"]["elements"] if e["depth"] == 0 and not e["tag"].startswith("0002")]
    assert top == [f"{int(e.tag):08X}" for e in ds]
    assert any(e["depth"] == 2 and e["keyword"] == "ReferencedBeamNumber" for e in data["metadata"]["elements"])
    assert "SEVERE" not in data["stdout"] and "INFO:" not in data["stdout"]
    assert "(300a,00b0) BeamSequence" in data["stdout"]


def test_to_image_applies_the_manual_window_without_annotations(tmp_path):
    out = tmp_path / "ct.png"
    data = expect_ok(pm("to_image", "sample:CT_small.dcm", out, window_center=40, window_width=400))
    assert data["metadata"]["mode"] == "L"  # annotations would make it RGB
    ds = dcmread(sample("CT_small.dcm"))
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    expected = np.clip((hu - (40 - 200)) / 400 * 255, 0, 255)
    image = np.asarray(Image.open(out)).astype(float)
    assert np.abs(image - expected).max() <= 2


def test_to_image_frame_selects_the_frame(tmp_path):
    out = tmp_path / "f1.png"
    expect_ok(pm("to_image", "sample:SC_rgb_rle_2frame.dcm", out, frame=1))
    frames = dcmread(sample("SC_rgb_rle_2frame.dcm")).pixel_array
    image = np.asarray(Image.open(out))
    assert np.array_equal(image, frames[1]) and not np.array_equal(image, frames[0])


def test_to_image_refusals_need_no_jvm(tmp_path):
    expect_error(pm("to_image", "sample:CT_small.dcm", tmp_path / "ct.bmp"), "unsupported_option")
    expect_error(pm("to_image", "sample:CT_small.dcm", tmp_path / "ct.png", force_16bit=True), "unsupported_option")
    expect_error(pm("to_image", "sample:SC_rgb_rle_2frame.dcm", tmp_path / "f.png", frame=2), "invalid_request")
    expect_error(pm("to_image", "sample:JPEG2000.dcm", tmp_path / "j.png"), "codec_unavailable")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("source", "target", "uid", "reference"),
    [
        ("MR_small_RLE.dcm", "implicit", "1.2.840.10008.1.2", "MR_small.dcm"),
        ("MR_small_bigendian.dcm", "explicit", "1.2.840.10008.1.2.1", "MR_small_bigendian.dcm"),
        ("MR_small.dcm", "rle", "1.2.840.10008.1.2.5", "MR_small.dcm"),
    ],
    ids=["rle-input-to-implicit", "big-endian-input", "to-rle"],
)
def test_transcode_keeps_pixels(tmp_path, source, target, uid, reference):
    out = tmp_path / "out.dcm"
    expect_ok(pm("transcode", f"sample:{source}", out, transfer_syntax=target))
    written = dcmread(out)
    assert written.file_meta.TransferSyntaxUID == uid
    assert np.array_equal(written.pixel_array, dcmread(sample(reference)).pixel_array)


def test_transcode_refusals_need_no_jvm(tmp_path):
    expect_error(pm("transcode", "sample:CT_small.dcm", tmp_path / "a.dcm", transfer_syntax="jpegls"), "unsupported_option")
    expect_error(pm("transcode", "sample:JPEG2000.dcm", tmp_path / "b.dcm", transfer_syntax="explicit"), "codec_unavailable")
    expect_error(pm("transcode", "sample:JPGExtended.dcm", tmp_path / "c.dcm", transfer_syntax="explicit"), "codec_unavailable")


def test_anonymize_refuses_what_it_cannot_reach_before_running(tmp_path):
    """Private attributes (kept by the tool's own safe list) and nested identity are refused first,
    naming what would survive; nothing runs and nothing is written."""
    out = tmp_path / "anon.dcm"
    data = expect_error(pm("anonymize", "sample:CT_small.dcm", out), "unsupported_op")
    assert "private attribute" in data["error"]["message"] and "(0009,0010)" in data["error"]["message"]
    data = expect_error(pm("anonymize", "sample:test-SR.dcm", out), "unsupported_op")
    assert "ContentSequence (dummy item)" in data["error"]["message"]
    assert not out.exists() and data["stderr"] == ""


def test_anonymize_applies_the_profile_where_the_tool_keeps_values(tmp_path):
    """MR_small: dates, institution, station and descriptors (kept by DeidentifyAndRedact alone) go
    through its keyword-value replacements; the leak check passes."""
    from dicom_hub.adapters.toolkit.annex_e import leak_check

    out = tmp_path / "anon.dcm"
    expect_ok(pm("anonymize", "sample:MR_small.dcm", out))
    source, result = dcmread(sample("MR_small.dcm")), dcmread(out)
    for keyword in ("StudyDate", "InstitutionName", "StationName", "DeviceSerialNumber"):
        assert keyword in source and str(result.get(keyword, "")) != str(source[keyword].value), keyword
    assert leak_check(sample("MR_small.dcm"), out)["private_tags_removed"]


def raw_data_file(tmp_path):
    """A Raw Data Storage instance (a SOP class PixelMed's validator knows) missing most attributes."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    uid = generate_uid()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.66"
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.66", uid
    ds.PatientName, ds.Modality = "Raw^Data", "OT"
    return save(ds, tmp_path / "raw.dcm")


def test_validate_known_sop_class(tmp_path):
    data = expect_ok(pm("validate", str(raw_data_file(tmp_path))))
    meta = data["metadata"]
    assert meta["iod"] == "RawData" and meta["valid"] is False
    assert any("StudyInstanceUID" in e and "Type 1" in e for e in meta["errors"])


def test_validate_other_sop_classes_is_unsupported():
    data = expect_error(pm("validate", "sample:CT_small.dcm"), "unsupported_op")
    assert "CT Image Storage" in data["error"]["message"]


# -- PixelMed exits 0 on failure: the adapter must still report the failure ----------------------
def test_missing_input_reaches_the_adapter_as_input_not_found(tmp_path):
    from dicom_hub.adapters.registry import get_adapter
    from dicom_hub.contract.catalog import get_op
    from dicom_hub.contract.errors import ErrorCode, HubError
    from dicom_hub.contract.job import Job

    expect_error(pm("info", str(tmp_path / "gone.dcm")), "input_not_found")  # the dispatcher's check
    job = Job(op="to_json", inputs=(tmp_path / "gone.dcm",), output=None, defaults=get_op("to_json").defaults)
    with pytest.raises(HubError) as err:  # and PixelMed's own answer when the file vanishes later
        get_adapter(BACKEND).handle(job)
    assert err.value.code is ErrorCode.INPUT_NOT_FOUND
    assert "FileNotFoundException" in err.value.stderr


def test_corrupt_inputs_fail(tmp_path):
    text = tmp_path / "notes.dcm"
    text.write_text("hello")
    expect_error(pm("to_json", str(text)), "not_dicom")
    data = expect_error(pm("info", "sample:MR_truncated.dcm"), "decode_error")
    assert "SEVERE" in data["stderr"]
    expect_error(pm("transcode", str(text), tmp_path / "o.dcm", transfer_syntax="rle"), "not_dicom")


# -- network ------------------------------------------------------------------------------------
def peer(orthanc, **extra) -> dict:
    return {"host": orthanc.host, "port": orthanc.port, "called_aet": orthanc.aet, **extra}


@pytest.mark.network
def test_echo(orthanc):
    assert expect_ok(pm("echo", **peer(orthanc)))["metadata"]["status"] == 0


@pytest.mark.network
def test_refused_connection_is_a_network_error():
    from peers import free_port

    data = expect_error(pm("echo", host="127.0.0.1", port=free_port()), "network_error")
    assert "Connection refused" in data["error"]["message"]


@pytest.mark.network
def test_store_then_move(orthanc, tmp_path, hub_scp_factory):
    from pydicom.dataset import Dataset
    from pynetdicom import AE
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

    files = series(tmp_path / "study", count=2, PatientID=f"PM{uuid.uuid4().hex[:10]}")
    (tmp_path / "study" / "junk.dcm").write_text("junk")
    stored = expect_ok({"op": "store", "backend": BACKEND, "input": str(tmp_path / "study"), "options": peer(orthanc)})
    assert (stored["metadata"]["completed"], stored["metadata"]["failed"]) == (2, 1)
    ds = dcmread(files[0])

    # PixelMed reports no per-file status: check with pynetdicom that Orthanc has both instances
    ae = AE("CHECK")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    query = Dataset()
    query.QueryRetrieveLevel = "IMAGE"
    query.StudyInstanceUID, query.SeriesInstanceUID, query.SOPInstanceUID = ds.StudyInstanceUID, ds.SeriesInstanceUID, ""
    assoc = ae.associate(orthanc.host, orthanc.port, ae_title=orthanc.aet)
    found = sorted(str(i.SOPInstanceUID) for s, i in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind) if i is not None)
    assoc.release()
    assert found == sorted(dcmread(f).SOPInstanceUID for f in files)

    scp = hub_scp_factory(port=orthanc.destinations["HUBSCP"], aet="HUBSCP")
    expect_ok(pm("move", **peer(orthanc, destination="HUBSCP", query={"StudyInstanceUID": ds.StudyInstanceUID})))
    assert sorted(p.stem for p in scp.output.rglob("*.dcm")) == found
    data = expect_error(pm("move", **peer(orthanc, destination="NOWHERE", query={"StudyInstanceUID": ds.StudyInstanceUID})), "network_error")
    assert "0xc000" in data["error"]["message"].lower()
