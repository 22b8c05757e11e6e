"""Golden argument lists of the PixelMed adapter, one per op and option (no JVM needed).

The real runs are in test_pixelmed.py; these pin down exactly what reaches each command line.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dicom_hub.adapters.pixelmed.adapter import PixelMedAdapter, error_lines, parse_dump
from dicom_hub.contract.catalog import get_op
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.job import Job

IN = Path("/data/in.dcm")
TMP = Path("/scratch/out")
CP = "/usr/share/java/pixelmed.jar:/usr/share/java/pixelmed_imageio.jar"
JAVA = ["java", "-Djava.awt.headless=true"]


@pytest.fixture
def adapter(monkeypatch) -> PixelMedAdapter:
    monkeypatch.delenv("DICOM_HUB_PIXELMED_JAR_DIR", raising=False)
    pm = PixelMedAdapter()
    monkeypatch.setattr(pm, "tool", lambda name: name)
    return pm


def job(op: str, output: Path | None = None, inputs: tuple[Path, ...] = (IN,), **options) -> Job:
    spec = get_op(op)
    spec.validate_options(options)
    return Job(op=op, inputs=inputs if spec.input != "none" else (), output=output, options=options, defaults=spec.defaults)


def main(name: str, *args: str) -> list[str]:
    return [*JAVA, "-cp", CP, f"com.pixelmed.{name}", *args]


def test_dump(adapter):
    assert adapter._build_cmd(job("dump")) == main("dicom.AttributeList", str(IN))


def test_to_json_and_info(adapter):
    expected = main("dicom.JSONRepresentationOfDicomObjectFactory", "toJSON", str(IN), str(TMP))
    assert adapter._build_cmd(job("to_json", bulk_data="omit"), TMP) == expected
    assert adapter._build_cmd(job("info"), TMP) == expected


def test_from_json(adapter):
    argv = adapter._build_cmd(job("from_json", Path("/data/o.dcm"), inputs=(Path("/data/in.json"),)), TMP)
    assert argv == main("dicom.JSONRepresentationOfDicomObjectFactory", "toDICOM", "/data/in.json", str(TMP))


@pytest.mark.parametrize(
    ("options", "tail"),
    [
        ({}, ["png", "0", "0", "0", "0", "90", "none", "0", "0", "0", "0", "0", "0"]),
        ({"window_center": 40, "window_width": 400}, ["png", "40", "400", "0", "0", "90", "none", "0", "0", "0", "0", "0", "0"]),
        ({"window_center": -600.5, "window_width": 1500}, ["png", "-600.5", "1500", "0", "0", "90", "none", "0", "0", "0", "0", "0", "0"]),
        ({"frame": 2}, ["png", "0", "0", "0", "0", "90", "none", "0", "0", "0", "0", "2", "2"]),
        ({"format": "jpeg", "quality": 70}, ["jpeg", "0", "0", "0", "0", "70", "none", "0", "0", "0", "0", "0", "0"]),
    ],
)
def test_to_image_turns_annotations_off(adapter, options, tail):
    argv = adapter._build_cmd(job("to_image", Path("/data/o.png"), **options), TMP)
    assert argv == main("display.ConsumerFormatImageMaker", str(IN), str(TMP), *tail)


@pytest.mark.parametrize(
    ("syntax", "args"),
    [
        ("explicit", ["dicom.AttributeList", str(IN), "ExplicitVRLittleEndian", str(TMP)]),
        ("implicit", ["dicom.AttributeList", str(IN), "ImplicitVRLittleEndian", str(TMP)]),
        ("deflated", ["dicom.AttributeList", str(IN), "DeflatedExplicitVRLittleEndian", str(TMP)]),
        ("rle", ["apps.CompressDicomFiles", str(IN), str(TMP), "rle"]),
    ],
)
def test_transcode(adapter, syntax, args):
    assert adapter._build_cmd(job("transcode", Path("/data/o.dcm"), transfer_syntax=syntax), TMP) == main(*args)


@pytest.mark.parametrize("syntax", ["jpeg", "jpeg_lossless", "jpegls", "j2k", "htj2k"])
def test_transcode_refuses_encoders_the_jar_lacks(adapter, syntax):
    with pytest.raises(HubError) as err:
        adapter._build_cmd(job("transcode", Path("/data/o.dcm"), transfer_syntax=syntax), TMP)
    assert err.value.code is ErrorCode.UNSUPPORTED_OPTION


def test_decompress_step(adapter):
    assert adapter._cmd_decompress(IN, TMP) == main("apps.DecompressDicomFiles", str(IN), str(TMP))


def test_anonymize_uses_an_empty_redaction_file(adapter):
    argv = adapter._build_cmd(job("anonymize", Path("/data/o.dcm")), TMP, control=Path("/scratch/none.txt"))
    assert argv == main("apps.DeidentifyAndRedact", str(IN), str(TMP), "/scratch/none.txt")


def test_validate_lifts_the_xpath_limits(adapter):
    argv = adapter._build_cmd(job("validate"))
    assert argv == [*JAVA, "-Djdk.xml.xpathExprOpLimit=0", "-Djdk.xml.xpathExprGrpLimit=0", "-Djdk.xml.xpathTotalOpLimit=0",
                    "-cp", CP, "com.pixelmed.validate.DicomInstanceValidator", str(IN)]


PEER = {"host": "127.0.0.1", "port": 11112, "called_aet": "PEER", "calling_aet": "ME"}


def test_echo_passes_called_before_calling_and_nonsecure(adapter):
    assert adapter._build_cmd(job("echo", **PEER)) == main("network.VerificationSOPClassSCU", "127.0.0.1", "11112", "PEER", "ME", "NONSECURE")


def test_store_reads_file_names_from_stdin(adapter):
    assert adapter._build_cmd(job("store", **PEER)) == main("network.StorageSOPClassSCU", "127.0.0.1", "11112", "PEER", "ME", "-", "0")


@pytest.mark.parametrize(
    ("level", "query", "uids"),
    [
        ("STUDY", {"StudyInstanceUID": "1.2"}, ["1.2"]),
        ("SERIES", {"StudyInstanceUID": "1.2", "SeriesInstanceUID": "1.2.3"}, ["1.2", "1.2.3"]),
        ("IMAGE", {"StudyInstanceUID": "1.2", "SeriesInstanceUID": "1.2.3", "SOPInstanceUID": "1.2.3.4"}, ["1.2", "1.2.3", "1.2.3.4"]),
    ],
)
def test_move(adapter, level, query, uids):
    argv = adapter._build_cmd(job("move", destination="DEST", level=level, query=query, **PEER))
    assert argv == main("network.MoveSOPClassSCU", "127.0.0.1", "11112", "PEER", "ME", "DEST", level, *uids)


@pytest.mark.parametrize(
    "options",
    [
        {"level": "STUDY", "query": {"PatientID": "P"}},
        {"level": "STUDY", "query": {"StudyInstanceUID": "1.2", "PatientName": "X*"}},
        {"level": "PATIENT", "query": {"PatientID": "P"}},
        {"level": "STUDY", "model": "patient", "query": {"StudyInstanceUID": "1.2"}},
    ],
)
def test_move_keys_it_cannot_send_are_unsupported(adapter, options):
    with pytest.raises(HubError) as err:
        adapter._build_cmd(job("move", destination="DEST", **options, **PEER))
    assert err.value.code is ErrorCode.UNSUPPORTED_OPTION


def test_capabilities_match_the_catalog(adapter):
    for op, support in adapter.capabilities().items():
        assert support.options is not None, op
        assert support.options <= get_op(op).option_names, op
    assert not set(adapter.capabilities()) & set(adapter.unsupported)


def test_error_lines_pick_severe_records_and_exceptions():
    stderr = (
        "Nov 21, 2026 10:57:36 PM com.pixelmed.slf4j.Logger info\nINFO: fine\n"
        "Nov 21, 2026 10:57:36 PM com.pixelmed.slf4j.Logger error\nSEVERE: \n"
        "com.pixelmed.dicom.DicomException: bad thing\n\tat com.pixelmed.X(X.java:1)\n"
    )
    assert error_lines(stderr) == ["com.pixelmed.dicom.DicomException: bad thing"]
    assert error_lines("Nov 21, 2026 10:57:36 PM com.pixelmed.slf4j.Logger info\nINFO: Dumping ...\n") == []


def test_parse_dump_tracks_sequence_depth():
    stderr = (
        "Nov 21, 2026 10:59:18 PM com.pixelmed.slf4j.Logger info\nINFO: Dumping ...\n"
        "(0x0010,0x0010) PatientName VR=<PN> VL=<0x4> <A^B >\n"
        "(0x300a,0x0010) DoseReferenceSequence VR=<SQ> VL=<0xffffffff>\n%seq\n%item [starts at 0x382]\n"
        "(0x300a,0x0012) DoseReferenceNumber VR=<IS> VL=<0x2> <1 >\n%enditem\n%endseq\n"
        "(0x0043,0x1029) VR=<OB> VL=<0x814> []\n"
        "(0x7fe0,0x0010) PixelData VR=<OW> VL=<0x8000> []\n"
    )
    text, elements = parse_dump(stderr, include_pixel_data=False)
    assert [(e["tag"], e["depth"], e["keyword"]) for e in elements] == [
        ("00100010", 0, "PatientName"), ("300A0010", 0, "DoseReferenceSequence"), ("300A0012", 1, "DoseReferenceNumber"), ("00431029", 0, "")]
    assert "INFO" not in text and "PatientName" in text
    assert parse_dump(stderr, include_pixel_data=True)[1][-1]["tag"] == "7FE00010"


def test_unavailable_names_the_missing_jar_and_the_packages(monkeypatch, tmp_path):
    monkeypatch.setenv("DICOM_HUB_PIXELMED_JAR_DIR", str(tmp_path))
    availability = PixelMedAdapter().probe()
    assert not availability.ok
    assert "pixelmed.jar" in availability.reason
    assert "libpixelmed-java" in availability.hint
