"""The dicom-rs backend run for real on pydicom's samples, checked against pydicom and the
Python backend; network ops against the Orthanc test peer."""

from __future__ import annotations

import uuid
from functools import partial

import numpy as np
import pytest
from conftest import backend_request, expect_error, expect_ok, require_backend, sample
from factories import series
from PIL import Image
from pydicom import dcmread

BACKEND = "dicom-rs"


@pytest.fixture(autouse=True)
def _backend():
    require_backend(BACKEND)


rs = partial(backend_request, BACKEND)


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "JPEG2000.dcm"])
def test_info_equals_the_python_backend(name):
    ours = expect_ok(rs("info", f"sample:{name}"))
    reference = expect_ok({"op": "info", "input": f"sample:{name}", "backend": "python"})
    assert ours["backend"] == BACKEND
    assert ours["metadata"] == reference["metadata"]


def test_to_json_matches_pydicom():
    data = expect_ok(rs("to_json", "sample:rtplan.dcm"))
    document = data["metadata"]["dataset"]
    reference = dcmread(sample("rtplan.dcm")).to_json_dict()
    assert set(document) == set(reference)
    assert not any(tag.startswith("0002") for tag in document)
    for tag, entry in reference.items():
        assert document[tag]["vr"] == entry["vr"], tag
        if entry["vr"] in ("PN", "UI", "CS", "LO", "SH", "DA", "TM"):
            assert document[tag].get("Value") == entry.get("Value"), tag


def test_to_json_bulk_omit_and_file_meta(tmp_path):
    out = tmp_path / "ct.json"
    data = expect_ok(rs("to_json", "sample:CT_small.dcm", out, bulk_data="omit", include_file_meta=True, indent=2))
    import json

    document = json.loads(out.read_text())
    assert "7FE00010" not in document and "7FE00010" in data["metadata"]["omitted"]
    assert document["00020010"]["Value"] == ["1.2.840.10008.1.2.1"]
    assert out.read_text().startswith("{\n  ")


def test_to_json_refuses_inline_when_it_drops_compressed_pixels():
    data = expect_error(rs("to_json", "sample:JPEG2000.dcm"), "unsupported_option")
    assert "encapsulated" in data["error"]["message"]
    omitted = expect_ok(rs("to_json", "sample:JPEG2000.dcm", bulk_data="omit"))
    assert "7FE00010" not in omitted["metadata"]["dataset"]


def test_dump_lists_the_elements_pydicom_reads(tmp_path):
    data = expect_ok(rs("dump", "sample:rtplan.dcm"))
    ds = dcmread(sample("rtplan.dcm"))
    top = [e["tag"] for e in data["metadata"]["elements"] if e["depth"] == 0]
    assert top == [f"{int(e.tag):08X}" for e in ds]
    nested = [e for e in data["metadata"]["elements"] if e["depth"] == 2]
    assert any(e["keyword"] == "ReferencedBeamNumber" for e in nested)
    assert "DoseReferenceSequence" in data["stdout"]
    out = tmp_path / "dump.txt"
    expect_ok(rs("dump", "sample:rtplan.dcm", out))
    assert out.read_text() == data["stdout"]


def windowed(ds, frame: np.ndarray) -> np.ndarray:
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    values = apply_voi_lut(apply_modality_lut(frame, ds), ds).astype(float)
    low, high = values.min(), values.max()
    return (values - low) / (high - low) * 255


def test_to_image_8bit_applies_the_files_window(tmp_path):
    out = tmp_path / "mr.png"
    data = expect_ok(rs("to_image", "sample:MR_small.dcm", out))
    assert data["metadata"]["format"] == "png" and data["metadata"]["mode"] == "L"
    ds = dcmread(sample("MR_small.dcm"))
    image = np.asarray(Image.open(out)).astype(float)
    assert image.shape == ds.pixel_array.shape
    assert np.corrcoef(image.ravel(), windowed(ds, ds.pixel_array).ravel())[0, 1] > 0.99


def test_to_image_16bit_and_formats(tmp_path):
    out16 = tmp_path / "ct16.png"
    expect_ok(rs("to_image", "sample:CT_small.dcm", out16, force_16bit=True))
    assert Image.open(out16).mode.startswith("I")
    for fmt, name in (("jpeg", "ct.jpg"), ("bmp", "ct.bmp"), ("tiff", "ct.tif")):
        data = expect_ok(rs("to_image", "sample:CT_small.dcm", tmp_path / name, format=fmt))
        assert Image.open(tmp_path / name).format.lower() == fmt
        assert data["metadata"]["format"] == fmt


def test_to_image_frame_selects_the_frame(tmp_path):
    out = tmp_path / "f1.png"
    expect_ok(rs("to_image", "sample:SC_rgb_rle_2frame.dcm", out, frame=1))
    frames = dcmread(sample("SC_rgb_rle_2frame.dcm")).pixel_array
    image = np.asarray(Image.open(out))
    assert np.array_equal(image, frames[1]) and not np.array_equal(image, frames[0])


def test_to_image_refusals(tmp_path):
    expect_error(rs("to_image", "sample:CT_small.dcm", tmp_path / "a.png", window_center=40, window_width=400), "unsupported_option")
    expect_error(rs("to_image", "sample:CT_small.dcm", tmp_path / "b.png", disable_modality_lut=True), "unsupported_option")
    expect_error(rs("to_image", "sample:CT_small.dcm", tmp_path / "c.jpg", force_16bit=True), "unsupported_option")
    expect_error(rs("to_image", "sample:SC_rgb_rle_2frame.dcm", tmp_path / "d.png", frame=5), "invalid_request")
    expect_error(rs("to_image", "sample:JPGExtended.dcm", tmp_path / "e.png"), "codec_unavailable")
    expect_error(rs("to_image", "sample:examples_palette.dcm", tmp_path / "f.png"), "unsupported_op")  # a known limit (contract/input-conditions.json)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("source", "target", "uid"),
    [
        ("CT_small.dcm", "explicit", "1.2.840.10008.1.2.1"),
        ("CT_small.dcm", "implicit", "1.2.840.10008.1.2"),
        ("CT_small.dcm", "deflated", "1.2.840.10008.1.2.1.99"),
        ("CT_small.dcm", "jpegls", "1.2.840.10008.1.2.4.80"),
        ("MR_small_RLE.dcm", "explicit", "1.2.840.10008.1.2.1"),
        ("MR_small_jp2klossless.dcm", "explicit", "1.2.840.10008.1.2.1"),
        ("MR_small_jpeg_ls_lossless.dcm", "implicit", "1.2.840.10008.1.2"),
    ],
)
def test_transcode_lossless_keeps_the_pixels(tmp_path, source, target, uid):
    out = tmp_path / "out.dcm"
    data = expect_ok(rs("transcode", f"sample:{source}", out, transfer_syntax=target))
    assert data["metadata"]["transfer_syntax"] == uid
    written, original = dcmread(out), dcmread(sample(source))
    assert written.file_meta.TransferSyntaxUID == uid
    assert np.array_equal(written.pixel_array, original.pixel_array)


def test_transcode_lossy_jpeg_needs_keep_sop_instance_uid(tmp_path):
    out = tmp_path / "rgb.dcm"
    expect_error(rs("transcode", "sample:SC_rgb_small_odd.dcm", out, transfer_syntax="jpeg"), "unsupported_option")
    assert not out.exists()
    expect_ok(rs("transcode", "sample:SC_rgb_small_odd.dcm", out, transfer_syntax="jpeg", keep_sop_instance_uid=True, quality=90))
    written, original = dcmread(out), dcmread(sample("SC_rgb_small_odd.dcm"))
    assert written.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50"
    assert written.SOPInstanceUID == original.SOPInstanceUID
    assert written.LossyImageCompression == "01"
    assert np.abs(written.pixel_array.astype(int) - original.pixel_array.astype(int)).mean() < 8  # lossy, but the same picture
    # 16-bit data would be narrowed by bit-shifting: refused before the tool runs
    expect_error(rs("transcode", "sample:MR_small.dcm", tmp_path / "mr.dcm", transfer_syntax="jpeg", keep_sop_instance_uid=True), "unsupported_option")


def test_transcode_refuses_what_it_cannot_write(tmp_path):
    expect_error(rs("transcode", "sample:CT_small.dcm", tmp_path / "x.dcm", transfer_syntax="rle"), "unsupported_option")
    expect_error(rs("transcode", "sample:CT_small.dcm", tmp_path / "y.dcm", transfer_syntax="j2k"), "unsupported_option")
    expect_error(rs("transcode", "sample:CT_small.dcm", tmp_path / "z.dcm", transfer_syntax="jpegls_near"), "unsupported_option")
    # its colour JPEG-LS is read with wrong colours by pydicom and GDCM, so it is refused
    data = expect_error(rs("transcode", "sample:SC_rgb_small_odd.dcm", tmp_path / "c.dcm", transfer_syntax="jpegls"), "unsupported_option")
    assert "colour" in data["error"]["message"]
    assert not list(tmp_path.iterdir())


def test_read_errors_have_their_codes(tmp_path):
    text = tmp_path / "notes.dcm"
    text.write_text("not dicom at all " * 20)
    expect_error(rs("info", str(text)), "not_dicom")
    expect_error(rs("to_json", "sample:MR_truncated.dcm"), "decode_error")
    expect_error(rs("transcode", str(text), tmp_path / "o.dcm", transfer_syntax="explicit"), "not_dicom")


def test_ops_it_lacks_are_unsupported(tmp_path):
    data = expect_error({"op": "anonymize", "input": "sample:CT_small.dcm", "output": str(tmp_path / "a.dcm"), "backend": BACKEND}, "unsupported_op")
    assert "de-identification" in data["error"]["message"]
    expect_error({"op": "from_json", "input": "sample:CT_small.dcm", "output": str(tmp_path / "b.dcm"), "backend": "rust"}, "unsupported_op")


# -- network ------------------------------------------------------------------------------------
def peer(orthanc, **extra) -> dict:
    return {"host": orthanc.host, "port": orthanc.port, "called_aet": orthanc.aet, **extra}


@pytest.fixture
def study(tmp_path):
    return series(tmp_path / "study", count=2, PatientID=f"RS{uuid.uuid4().hex[:10]}")


@pytest.mark.network
def test_echo(orthanc):
    data = expect_ok(rs("echo", **peer(orthanc)))
    assert data["metadata"]["status"] == 0 and data["metadata"]["category"] == "Success"


@pytest.mark.network
def test_echo_refused_is_a_network_error():
    from peers import free_port

    data = expect_error(rs("echo", host="127.0.0.1", port=free_port(), network_timeout=3), "network_error")
    assert "refused" in data["error"]["message"].lower()


@pytest.mark.network
def test_store_find_and_move(orthanc, study, tmp_path, hub_scp_factory):
    notes = tmp_path / "study" / "readme.dcm"
    notes.write_text("not DICOM")
    stored = expect_ok({"op": "store", "backend": BACKEND, "input": str(tmp_path / "study"), "options": peer(orthanc)})
    meta = stored["metadata"]
    assert (meta["total"], meta["completed"], meta["failed"]) == (3, 2, 1)
    ds = dcmread(study[0])

    # find (Study Root, STUDY level) sees exactly what was stored
    found = expect_ok(rs("find", **peer(orthanc, level="STUDY", query={"PatientID": ds.PatientID})))
    assert found["metadata"]["count"] == 1
    result = found["metadata"]["results"][0]
    assert result["0020000D"]["Value"] == [ds.StudyInstanceUID]
    assert result["00100020"]["Value"] == [ds.PatientID]
    images = expect_ok(rs("find", **peer(orthanc, level="IMAGE", query={"StudyInstanceUID": ds.StudyInstanceUID, "SeriesInstanceUID": ds.SeriesInstanceUID})))
    assert sorted(r["00080018"]["Value"][0] for r in images["metadata"]["results"]) == sorted(dcmread(f).SOPInstanceUID for f in study)

    # move to a dicom-hub SCP
    scp = hub_scp_factory(port=orthanc.destinations["HUBSCP"], aet="HUBSCP")
    moved = expect_ok(rs("move", **peer(orthanc, destination="HUBSCP", query={"StudyInstanceUID": ds.StudyInstanceUID})))
    assert (moved["metadata"]["completed"], moved["metadata"]["failed"]) == (2, 0)
    received = sorted(p.stem for p in scp.output.rglob("*.dcm"))
    assert received == sorted(dcmread(f).SOPInstanceUID for f in study)


@pytest.mark.network
def test_move_to_unknown_destination_fails(orthanc, study):
    orthanc.preload(study)
    expect_error(rs("move", **peer(orthanc, destination="NOWHERE", query={"StudyInstanceUID": dcmread(study[0]).StudyInstanceUID})), "network_error")


@pytest.mark.network
def test_worklist(wlmscpfs):
    data = expect_ok(rs("worklist", host=wlmscpfs.host, port=wlmscpfs.port, called_aet=wlmscpfs.aet, modality="MR"))
    assert data["metadata"]["count"] == 1
    item = data["metadata"]["results"][0]
    assert item["00100020"]["Value"] == ["WL002"]
    step = item["00400100"]["Value"][0]
    assert step["00080060"]["Value"] == ["MR"]


@pytest.fixture
def rs_receiver(orthanc, tmp_path):
    """dicom-storescp (dicom-rs's own receiver) as Orthanc's move destination SPARE."""
    from dicom_hub.adapters.registry import get_adapter
    from peers import HOST, c_echo_ok, start_peer_process, stop_process

    exe = get_adapter(BACKEND).tool("dicom-storescp")
    port, out = orthanc.destinations["SPARE"], tmp_path / "received"
    out.mkdir()
    args = [exe, "-p", str(port), "-o", str(out), "--calling-ae-title", "SPARE", "--promiscuous"]
    proc = start_peer_process(args, tmp_path / "storescp.log", lambda: c_echo_ok(HOST, port, "SPARE"), "dicom-storescp")
    try:
        yield port, out
    finally:
        stop_process(proc)


@pytest.mark.network
def test_rs_receiver_gets_a_store_and_a_move(orthanc, study, rs_receiver):
    port, out = rs_receiver
    expect_ok({"op": "store", "backend": BACKEND, "input": str(study[0]), "options": {"host": "127.0.0.1", "port": port, "called_aet": "SPARE"}})
    orthanc.preload(study)
    ds = dcmread(study[0])
    moved = expect_ok(rs("move", **peer(orthanc, destination="SPARE", query={"StudyInstanceUID": ds.StudyInstanceUID})))
    assert moved["metadata"]["completed"] == 2
    received = {dcmread(p).SOPInstanceUID: dcmread(p) for p in out.rglob("*") if p.is_file()}
    assert sorted(received) == sorted(dcmread(f).SOPInstanceUID for f in study)
    for path in study:
        original = dcmread(path)
        assert received[original.SOPInstanceUID].PixelData == original.PixelData
