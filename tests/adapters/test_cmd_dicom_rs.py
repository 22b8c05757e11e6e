"""Golden argument lists of the dicom-rs adapter, one per op and option (no binary needed).

The real runs are in test_dicom_rs.py; these pin down exactly what reaches each command line.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dicom_hub.adapters.dicom_rs.adapter import DicomRsAdapter
from dicom_hub.contract.catalog import get_op
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.job import Job

IN = Path("/data/in.dcm")
OUT_DCM = Path("/data/out.dcm")
TMP = Path("/data/.out.tmp")


@pytest.fixture
def adapter(monkeypatch) -> DicomRsAdapter:
    rs = DicomRsAdapter()
    monkeypatch.setattr(rs, "tool", lambda name: name)  # argv shows the bare tool name
    return rs


def job(op: str, output: Path | None = None, inputs: tuple[Path, ...] = (IN,), **options) -> Job:
    spec = get_op(op)
    spec.validate_options(options)
    return Job(op=op, inputs=inputs if spec.input != "none" else (), output=output, options=options, defaults=spec.defaults)


def test_dump_stops_before_pixel_data(adapter):
    assert adapter._build_cmd(job("dump")) == ["dicom-dump", "--no-limit", "--color", "never", "--until", "7FE0,0010", str(IN)]


def test_to_json_reads_the_whole_file(adapter):
    assert adapter._build_cmd(job("to_json", bulk_data="omit", include_file_meta=True, indent=2)) == ["dicom-dump", "--format", "json", str(IN)]


def test_info_stops_before_pixel_data(adapter):
    assert adapter._build_cmd(job("info")) == ["dicom-dump", "--format", "json", "--until", "7FE0,0010", str(IN)]


@pytest.mark.parametrize(
    ("options", "flags"),
    [
        ({}, ["--frame", "0", "--8bit"]),
        ({"frame": 3}, ["--frame", "3", "--8bit"]),
        ({"force_8bit": True}, ["--frame", "0", "--8bit"]),
        ({"force_16bit": True}, ["--frame", "0", "--16bit"]),
        ({"disable_voi_lut": True}, ["--frame", "0", "--8bit", "--no-voi-lut"]),
        ({"disable_voi_lut": True, "disable_modality_lut": True}, ["--frame", "0", "--8bit", "--no-modality-lut", "--no-voi-lut"]),
        ({"format": "jpeg"}, ["--frame", "0", "--8bit"]),
    ],
)
def test_to_image(adapter, options, flags):
    argv = adapter._build_cmd(job("to_image", Path("/data/out.png"), **options), TMP)
    assert argv == ["dicom-toimage", *flags, "-o", str(TMP), str(IN)]


def test_to_image_without_target_names_the_format_extension(adapter):
    argv = adapter._build_cmd(job("to_image", Path("/data/out.img"), format="tiff"))
    assert argv[-3:] == ["-o", "/data/out.tiff", str(IN)]


@pytest.mark.parametrize(
    ("syntax", "flags"),
    [
        ("explicit", ["--expl-vr-le"]),
        ("implicit", ["--impl-vr-le"]),
        ("deflated", ["--ts", "1.2.840.10008.1.2.1.99"]),
        ("jpegls", ["--jpeg-ls-lossless"]),
        ("1.2.840.10008.1.2.4.80", ["--jpeg-ls-lossless"]),
    ],
)
def test_transcode_targets(adapter, syntax, flags):
    argv = adapter._build_cmd(job("transcode", OUT_DCM, transfer_syntax=syntax), TMP)
    assert argv == ["dicom-transcode", *flags, "-o", str(TMP), str(IN)]


def test_transcode_jpeg_quality(adapter):
    argv = adapter._build_cmd(job("transcode", OUT_DCM, transfer_syntax="jpeg", quality=75, keep_sop_instance_uid=True), TMP)
    assert argv == ["dicom-transcode", "--jpeg-baseline", "--quality", "75", "-o", str(TMP), str(IN)]


@pytest.mark.parametrize("syntax", ["rle", "jpeg_lossless", "jpegls_near", "j2k", "j2k_lossy", "htj2k", "1.2.840.10008.1.2.4.201"])
def test_transcode_targets_it_cannot_write_are_unsupported_options(adapter, syntax):
    with pytest.raises(HubError) as err:
        adapter._build_cmd(job("transcode", OUT_DCM, transfer_syntax=syntax), TMP)
    assert err.value.code is ErrorCode.UNSUPPORTED_OPTION


PEER = {"host": "127.0.0.1", "port": 11112, "called_aet": "PEER", "calling_aet": "ME"}
CONNECT = ["--calling-ae-title=ME", "--called-ae-title=PEER", "--connect-timeout=30"]


def test_echo(adapter):
    assert adapter._build_cmd(job("echo", **PEER)) == ["dicom-echoscu", "-v", *CONNECT, "--read-timeout=60", "--", "127.0.0.1:11112"]


def test_echo_timeouts_round_up(adapter):
    argv = adapter._build_cmd(job("echo", network_timeout=2.5, dimse_timeout=9, **PEER))
    assert "--connect-timeout=3" in argv and "--read-timeout=9" in argv


def test_store_sends_every_file(adapter):
    files = (Path("/data/a.dcm"), Path("/data/b.dcm"))
    argv = adapter._build_cmd(job("store", inputs=files, **PEER))
    assert argv == ["dicom-storescu", "-v", *CONNECT, "--read-timeout=60", "--", "127.0.0.1:11112", "/data/a.dcm", "/data/b.dcm"]


@pytest.mark.parametrize(("options", "model"), [({}, "-S"), ({"level": "PATIENT"}, "-P"), ({"model": "patient", "level": "STUDY"}, "-P")])
def test_find_passes_the_query_file(adapter, options, model):
    argv = adapter._build_cmd(job("find", **PEER, **options), Path("/tmp/q.dcm"))
    assert argv == ["dicom-findscu", "-v", model, *CONNECT, "--read-timeout=60", "--", "127.0.0.1:11112", "/tmp/q.dcm"]


def test_worklist_uses_the_mwl_model(adapter):
    argv = adapter._build_cmd(job("worklist", modality="CT", **PEER), Path("/tmp/q.dcm"))
    assert argv[:3] == ["dicom-findscu", "-v", "-W"]
    assert argv[-1] == "/tmp/q.dcm"


def test_move_names_the_destination(adapter):
    argv = adapter._build_cmd(job("move", destination="DEST", query={"StudyInstanceUID": "1.2.3"}, **PEER), Path("/tmp/q.dcm"))
    assert argv == ["dicom-movescu", "-v", "-S", "--calling-ae-title=ME", "--called-ae-title=PEER", "--move-destination=DEST", "--", "127.0.0.1:11112", "/tmp/q.dcm"]


def test_values_can_never_be_read_as_options(adapter):
    # AE titles may begin with '-': they travel glued to their flag; positionals come after "--".
    argv = adapter._build_cmd(job("echo", **{**PEER, "calling_aet": "-X", "called_aet": "--help"}))
    assert argv == ["dicom-echoscu", "-v", "--calling-ae-title=-X", "--called-ae-title=--help", "--connect-timeout=30", "--read-timeout=60", "--", "127.0.0.1:11112"]
    move = adapter._build_cmd(job("move", destination="-D", query={"StudyInstanceUID": "1.2.3"}, **PEER), Path("/tmp/q.dcm"))
    assert "--move-destination=-D" in move and move[-3] == "--"


def test_find_identifier_is_the_python_backends(adapter):
    from dicom_hub.adapters.dicom_rs.network import query_identifier

    level, query = query_identifier(job("find", level="SERIES", query={"PatientID": "P1"}, **PEER))
    assert level == "SERIES"
    assert query.QueryRetrieveLevel == "SERIES" and query.PatientID == "P1"
    assert "SeriesInstanceUID" in query


def test_capabilities_match_the_catalog(adapter):
    for op, support in adapter.capabilities().items():
        assert support.options is not None, op
        assert support.options <= get_op(op).option_names, op
    assert not set(adapter.capabilities()) & set(adapter.unsupported)


def test_unavailable_names_the_missing_tools_and_the_install_step(monkeypatch, tmp_path):
    monkeypatch.setenv("DICOM_HUB_DICOM_RS_BIN_DIR", str(tmp_path))
    availability = DicomRsAdapter().probe()
    assert not availability.ok
    assert "dicom-transcode" in availability.reason and str(tmp_path) in availability.reason
    assert "30-dicom-rs.sh" in availability.hint
