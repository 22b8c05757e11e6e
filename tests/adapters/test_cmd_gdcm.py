"""Golden argument lists of the GDCM adapter: every op and option, without running GDCM."""

from __future__ import annotations

from pathlib import Path

import pytest
from dicom_hub.adapters.gdcm import anon as gdcm_anon
from dicom_hub.adapters.gdcm.adapter import GdcmAdapter
from dicom_hub.adapters.toolkit import syntaxes
from dicom_hub.contract.catalog import get_op
from dicom_hub.contract.errors import HubError
from dicom_hub.contract.job import Job
from pydicom.dataset import Dataset

IN = Path("/data/in.dcm")
OUT = Path("/data/out.dcm")


@pytest.fixture
def gdcm(monkeypatch: pytest.MonkeyPatch) -> GdcmAdapter:
    monkeypatch.setattr(GdcmAdapter, "tool", lambda self, name: name)
    return GdcmAdapter()


def job(op: str, output: Path | None = OUT, **options) -> Job:
    return Job(op=op, inputs=(IN,), output=output, options=options, defaults=get_op(op).defaults)


def test_dump_and_info(gdcm):
    assert gdcm._build_cmd(job("dump", None)) == ["gdcmdump", str(IN)]
    assert gdcm._build_cmd(job("info", None)) == ["gdcmdump", str(IN)]


E = syntaxes.EXPLICIT_LE


@pytest.mark.parametrize(
    ("target", "source", "options", "flags"),
    [
        ("explicit", syntaxes.IMPLICIT_LE, {}, ["-X"]),
        ("implicit", E, {}, ["-M"]),
        ("deflated", E, {}, ["-d"]),
        ("rle", E, {}, ["-R"]),
        ("jpeg_lossless", E, {}, ["-J"]),
        ("jpegls", E, {}, ["-L"]),
        ("j2k", E, {}, ["-K"]),
        # compressed input to a native target: decompress (-w) first
        ("explicit", syntaxes.J2K_LOSSY, {}, ["-w", "-X"]),
        ("implicit", syntaxes.RLE, {}, ["-w", "-M"]),
        ("jpegls", syntaxes.J2K_LOSSLESS, {}, ["-L"]),
    ],
)
def test_transcode(gdcm, target, source, options, flags):
    cmds = gdcm._transcode_cmds(job("transcode", transfer_syntax=target, **options), source, OUT, Path("/w"))
    assert cmds == [["gdcmconv", *flags, str(IN), str(OUT)]]


@pytest.mark.parametrize(
    ("target", "options", "flags", "method"),
    [
        ("jpeg", {}, ["-J", "-Y", "-q", "90"], "ISO_10918_1"),
        ("jpeg", {"quality": 70}, ["-J", "-Y", "-q", "70"], "ISO_10918_1"),
        ("jpegls_near", {}, ["-L", "-Y", "-e", "2"], "ISO_14495_1"),
        ("jpegls_near", {"near_lossless_error": 4}, ["-L", "-Y", "-e", "4"], "ISO_14495_1"),
        ("j2k_lossy", {}, ["-K", "-Y", "-r", "10"], "ISO_15444_1"),
        ("j2k_lossy", {"compression_ratio": 12.5}, ["-K", "-Y", "-r", "12.5"], "ISO_15444_1"),
        ("j2k_lossy", {"compression_ratio": 10}, ["-K", "-Y", "-r", "10"], "ISO_15444_1"),
    ],
)
def test_lossy_transcode_marks_the_method(gdcm, target, options, flags, method):
    cmds = gdcm._transcode_cmds(job("transcode", transfer_syntax=target, **options), E, OUT, Path("/w"))
    assert cmds == [
        ["gdcmconv", *flags, str(IN), "/w/encoded.dcm"],
        ["gdcmanon", "--dumb", "--replace", f"28,2114={method}", "-i", "/w/encoded.dcm", "-o", str(OUT)],
    ]


def test_deflating_compressed_input_decompresses_first(gdcm):
    cmds = gdcm._transcode_cmds(job("transcode", transfer_syntax="deflated"), syntaxes.JPEGLS_LOSSLESS, OUT, Path("/w"))
    assert cmds == [["gdcmconv", "-w", str(IN), "/w/decompressed.dcm"], ["gdcmconv", "-d", "/w/decompressed.dcm", str(OUT)]]


@pytest.mark.parametrize(
    ("target", "options", "code"),
    [
        ("htj2k", {}, "codec_unavailable"),
        (syntaxes.EXPLICIT_BE, {}, "invalid_request"),
        ("jpeg", {"keep_sop_instance_uid": True}, "unsupported_option"),
        ("j2k_lossy", {"quality": 50}, "unsupported_option"),
        ("rle", {"near_lossless_error": 2}, "unsupported_option"),
        ("j2k", {"compression_ratio": 5}, "unsupported_option"),
    ],
)
def test_transcode_refusals(gdcm, target, options, code):
    with pytest.raises(HubError) as err:
        gdcm._transcode_cmds(job("transcode", transfer_syntax=target, **options), E, OUT, Path("/w"))
    assert err.value.code.value == code


def test_keeping_the_uid_is_fine_for_lossless_targets(gdcm):
    assert gdcm._transcode_cmds(job("transcode", transfer_syntax="rle", keep_sop_instance_uid=True), E, OUT, Path("/w"))[0][1] == "-R"


def test_modify_tags_uses_dumb_mode_on_input_and_output(gdcm):
    argv = gdcm._build_cmd(job("modify_tags", set={"PatientName": "A^B", "(0018,1020)": ["x", "y"], "PatientWeight": None}, delete=["StationName"]))
    assert argv == [
        "gdcmanon", "--dumb",
        "--replace", "10,10=A^B", "--replace", "18,1020=x\\y", "--empty", "10,1030", "--remove", "8,1010",
        "-i", str(IN), "-o", str(OUT),
    ]  # fmt: skip


def test_anonymize_chain(gdcm, tmp_path, monkeypatch):
    monkeypatch.setattr(gdcm_anon.shutil, "which", lambda name: f"/usr/bin/{name}")
    ds = Dataset()
    ds.PatientName = "Doe^John"  # Z
    ds.StudyDate = "20200101"  # Z
    ds.InstitutionName = "Hospital"  # X
    ds.Modality = "CT"  # K
    ds.ContentCreatorName = "Smith"  # Z
    ds.SeriesDescription = "head"  # X
    flags = gdcm_anon.profile_flags(ds)
    assert flags == ["--empty", "8,20", "--remove", "8,80", "--remove", "8,103e", "--empty", "10,10", "--empty", "70,84"]
    chain = gdcm_anon.commands(gdcm, job("anonymize"), OUT, tmp_path, flags)
    assert chain[0][:3] == ["/usr/bin/openssl", "req", "-x509"] and "-nodes" in chain[0]
    assert chain[1] == ["gdcmanon", "-e", "-c", str(tmp_path / "cert.pem"), "-i", str(IN), "-o", str(tmp_path / "anon.dcm")]
    assert chain[2] == ["gdcmconv", "--remove-private-tags", str(tmp_path / "anon.dcm"), str(tmp_path / "no-private.dcm")]
    assert chain[3] == [
        "gdcmanon", "--dumb", *flags, "--remove", "400,500", "--remove", "fffa,fffa", "--remove", "fffc,fffc",
        "-i", str(tmp_path / "no-private.dcm"), "-o", str(OUT),
    ]
    # a top-level UID gdcmanon -e left as it was is replaced in the last pass (unknown ones removed)
    ds.DeviceUID = "1.2.3.4"
    replaced = [flag for flag in gdcm_anon.profile_flags(ds, {0x00181002}) if flag.startswith("18,1002")]
    assert len(replaced) == 1 and replaced[0].startswith("18,1002=") and replaced[0] != "18,1002=1.2.3.4"
    assert "18,1002" not in " ".join(gdcm_anon.profile_flags(ds))


def test_declared_options_exist_in_the_catalog():
    for op, support in GdcmAdapter().capabilities().items():
        assert support.options is None or support.options <= get_op(op).option_names, op
    for op, reason in GdcmAdapter().unsupported.items():
        get_op(op)
        assert reason


def test_network_ops_are_unsupported_with_the_reason():
    for op in ("echo", "store", "find", "move", "get", "worklist"):
        assert op not in GdcmAdapter().capabilities()
        assert "aborts" in GdcmAdapter().unsupported_reason(op)
