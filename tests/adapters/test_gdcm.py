"""The GDCM adapter running the real GDCM tools on pydicom's bundled samples, compared with the
Python backend (info) and with pydicom's own decoding (pixels)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import expect_error, expect_ok, require_backend, sample
from pydicom import dcmread

pytestmark = pytest.mark.toolkit


@pytest.fixture(autouse=True)
def gdcm():
    return require_backend("gdcm")


def req(op: str, input: str = "sample:CT_small.dcm", output=None, **options) -> dict:
    request = {"op": op, "backend": "gdcm", "input": input, "options": options}
    if output is not None:
        request["output"] = str(output)
    return request


def test_version_is_parsed(gdcm):
    assert gdcm.version().startswith("3.")


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "SC_rgb_rle_2frame.dcm", "JPEG2000.dcm"])
def test_info_matches_the_python_backend(name):
    ours = expect_ok(req("info", f"sample:{name}"))["metadata"]
    reference = expect_ok({"op": "info", "input": f"sample:{name}", "backend": "python"})["metadata"]
    assert ours == reference


def test_dump():
    data = expect_ok(req("dump", max_depth=0))
    elements = data["metadata"]["elements"]
    assert all(e["depth"] == 0 for e in elements) and "7FE00010" not in [e["tag"] for e in elements]
    assert any(e["keyword"] == "PatientName" and e["value"] == "CompressedSamples^CT1 " for e in elements)
    assert "Patient's Name" in data["stdout"]


LOSSLESS = ["explicit", "implicit", "deflated", "rle", "jpeg_lossless", "jpegls", "j2k"]


@pytest.mark.parametrize("source", ["CT_small.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm"])
@pytest.mark.parametrize("target", LOSSLESS)
def test_lossless_transcode_is_pixel_exact(tmp_path, source, target):
    from dicom_hub.adapters.toolkit.syntaxes import writable as resolve

    out = tmp_path / "out.dcm"
    expect_ok(req("transcode", f"sample:{source}", output=out, transfer_syntax=target))
    written = dcmread(out)
    assert written.file_meta.TransferSyntaxUID == resolve(target)
    assert np.array_equal(written.pixel_array, dcmread(sample(source)).pixel_array)


@pytest.mark.parametrize(("options", "uid", "tolerance"), [
    ({"transfer_syntax": "j2k_lossy", "compression_ratio": 8}, "1.2.840.10008.1.2.4.91", 200),
    ({"transfer_syntax": "jpegls_near", "near_lossless_error": 3}, "1.2.840.10008.1.2.4.81", 3),
])  # fmt: skip
def test_lossy_transcode(tmp_path, options, uid, tolerance):
    out = tmp_path / "lossy.dcm"
    expect_ok(req("transcode", output=out, **options))
    written, source = dcmread(out), dcmread(sample("CT_small.dcm"))
    assert written.file_meta.TransferSyntaxUID == uid
    assert written.SOPInstanceUID != source.SOPInstanceUID
    assert written.LossyImageCompression == "01" and written.LossyImageCompressionMethod == {"1.2.840.10008.1.2.4.91": "ISO_15444_1"}.get(uid, "ISO_14495_1")
    diff = np.abs(written.pixel_array.astype(int) - source.pixel_array.astype(int))
    assert 0 < diff.max() <= tolerance or (diff.max() == 0 and uid.endswith(".81"))


def test_jpeg_baseline_on_16_bit_data_is_refused_not_written_as_extended(tmp_path):
    out = tmp_path / "j.dcm"
    data = expect_error(req("transcode", output=out, transfer_syntax="jpeg"), "unsupported_option")
    assert "8-bit" in data["error"]["message"] and not out.exists()


def test_colour_jpeg_is_refused_rather_than_mislabelled(tmp_path):
    out = tmp_path / "rgb.dcm"
    expect_error(req("transcode", "sample:examples_rgb_color.dcm", output=out, transfer_syntax="jpeg"), "codec_unavailable")
    assert not out.exists()


def test_modify_tags(tmp_path):
    out = tmp_path / "mod.dcm"
    before = sample("CT_small.dcm").read_bytes()
    expect_ok(req("modify_tags", output=out, set={"PatientName": "Doe^J", "SoftwareVersions": ["a", "b"], "PatientWeight": None}, delete=["StationName"]))
    ds = dcmread(out)
    assert str(ds.PatientName) == "Doe^J" and list(ds.SoftwareVersions) == ["a", "b"] and ds.PatientWeight is None
    assert "StationName" not in ds and sample("CT_small.dcm").read_bytes() == before


def test_anonymize_meets_the_basic_profile_or_fails(tmp_path):
    from dicom_hub.contract.dicom.deid.profile import load_table

    out = tmp_path / "anon.dcm"
    expect_ok(req("anonymize", output=out))
    source, result = dcmread(sample("CT_small.dcm")), dcmread(out)
    for tag, row in load_table().items():
        if row.basic != "K" and tag in source and not source[tag].is_empty and tag in result:
            assert result[tag].value != source[tag].value, row.keyword
    assert not any(elem.tag.is_private for elem in result.iterall())
    assert "EncryptedAttributesSequence" not in result and result.PatientIdentityRemoved == "YES"


def test_anonymize_refuses_files_it_cannot_reach_before_running(tmp_path):
    """Identity inside sequences (rtplan) or a D sequence to dummy (SR): gdcmanon --dumb cannot edit
    them, so the file is refused before any tool runs, naming what it would have to change."""
    out = tmp_path / "plan.dcm"
    data = expect_error(req("anonymize", "sample:rtplan.dcm", output=out), "unsupported_op")
    assert "BeamSequence > TreatmentMachineName" in data["error"]["message"] and not out.exists()
    assert data["stderr"] == ""  # nothing ran
    data = expect_error(req("anonymize", "sample:test-SR.dcm", output=out), "unsupported_op")
    assert "ContentSequence (dummy item)" in data["error"]["message"] and not out.exists()


def test_anonymize_refuses_burned_in_candidates(tmp_path):
    expect_error(req("anonymize", "sample:SC_rgb_rle.dcm", output=tmp_path / "sc.dcm"), "invalid_request")


def test_read_errors_are_mapped(tmp_path):
    bad = tmp_path / "text.dcm"
    bad.write_text("not DICOM at all\n" * 20)
    data = expect_error(req("transcode", str(bad), output=tmp_path / "o.dcm", transfer_syntax="explicit"), "not_dicom")
    assert data["stderr"] or data["stdout"]


@pytest.mark.parametrize("op", ["to_image", "to_json", "validate", "stats"])
def test_declared_unsupported_ops(tmp_path, op):
    output = {"to_image": tmp_path / "x.png", "to_json": tmp_path / "x.json"}.get(op)
    expect_error(req(op, output=output), "unsupported_op")


def test_network_ops_are_unsupported():
    expect_error({"op": "echo", "backend": "gdcm", "options": {"host": "127.0.0.1", "port": 104}}, "unsupported_op")
