"""Golden argument lists of the DCMTK adapter: every op and option, without running DCMTK."""

from __future__ import annotations

from pathlib import Path

import pytest
from dicom_hub.adapters.dcmtk.adapter import DUMP_FLAGS, DcmtkAdapter
from dicom_hub.adapters.toolkit import syntaxes
from dicom_hub.contract.catalog import get_op
from dicom_hub.contract.errors import HubError
from dicom_hub.contract.job import Job

IN = Path("/data/in.dcm")
OUT = Path("/data/out.png")


@pytest.fixture
def dcmtk(monkeypatch: pytest.MonkeyPatch) -> DcmtkAdapter:
    monkeypatch.setattr(DcmtkAdapter, "tool", lambda self, name: name)
    return DcmtkAdapter()


def job(op: str, output: Path | None = None, inputs: tuple[Path, ...] = (IN,), **options) -> Job:
    return Job(op=op, inputs=inputs, output=output, options=options, defaults=get_op(op).defaults)


def test_dump_and_info_read_the_whole_file_with_numeric_uids(dcmtk):
    assert dcmtk._build_cmd(job("dump")) == ["dcmdump", *DUMP_FLAGS, str(IN)]
    assert dcmtk._build_cmd(job("info")) == ["dcmdump", "-Un", "+L", "+U8", "+uc", "-M", "+R", "256", str(IN)]


@pytest.mark.parametrize(
    ("options", "output", "expected"),
    [
        ({}, None, ["dcm2json", "-fc", str(IN)]),
        ({"include_file_meta": True}, None, ["dcm2json", "-fc", "+m", str(IN)]),
        ({}, Path("/data/o.json"), ["dcm2json", "-fc", str(IN), "/data/o.json"]),
        ({"indent": 2, "bulk_data": "omit"}, Path("/data/o.json"), ["dcm2json", "-fc", str(IN), "/data/o.json"]),
    ],
)
def test_to_json(dcmtk, options, output, expected):
    assert dcmtk._build_cmd(job("to_json", output, **options)) == expected


def test_validate_checks_the_part10_header(dcmtk):
    assert dcmtk._build_cmd(job("validate")) == ["dcmftest", str(IN)]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, ["+Fa"]),
        ({"frame": 0}, ["+F", "1"]),
        ({"frame": 4, "modality": False}, ["+F", "5", "-M"]),
    ],
)
def test_stats(dcmtk, options, expected):
    assert dcmtk._build_cmd(job("stats", **options)) == ["dcmj2pnm", "-v", "-im", "-o", *expected, str(IN)]


@pytest.mark.parametrize(
    ("options", "output", "window", "flags"),
    [
        ({}, OUT, "window", ["+on", "+F", "1", "+Wi", "1"]),
        ({}, OUT, "lut", ["+on", "+F", "1", "+Wl", "1"]),
        ({}, OUT, None, ["+on", "+F", "1", "+Wm"]),
        ({"frame": 2}, OUT, None, ["+on", "+F", "3", "+Wm"]),
        ({"window_center": 40, "window_width": 400}, OUT, "window", ["+on", "+F", "1", "+Ww", "40", "400"]),
        ({"window_center": -600.5, "window_width": 1500}, OUT, None, ["+on", "+F", "1", "+Ww", "-600.5", "1500"]),
        ({"disable_voi_lut": True}, OUT, "window", ["+on", "+F", "1", "+Wm"]),
        ({"disable_modality_lut": True}, OUT, "window", ["+on", "+F", "1", "-M", "+Wi", "1"]),
        ({"force_16bit": True}, OUT, None, ["+on2", "+F", "1", "+Wm"]),
        ({"force_8bit": True, "normalize": False}, OUT, None, ["+on", "+F", "1", "+Wm"]),
        ({}, Path("/data/o.jpg"), None, ["+oj", "+Jq", "90", "+F", "1", "+Wm"]),
        ({"format": "jpeg", "quality": 75}, OUT, None, ["+oj", "+Jq", "75", "+F", "1", "+Wm"]),
        ({"format": "bmp"}, OUT, None, ["+ob", "+F", "1", "+Wm"]),
        ({}, Path("/data/o.tiff"), None, ["+ot", "+F", "1", "+Wm"]),
    ],
)
def test_to_image(dcmtk, options, output, window, flags):
    assert dcmtk._build_cmd(job("to_image", output, **options), file_window=window) == ["dcmj2pnm", *flags, str(IN), str(output)]


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({"force_16bit": True, "format": "jpeg"}, "unsupported_option"),
        ({"normalize": True}, "unsupported_option"),
    ],
)
def test_to_image_refusals(dcmtk, options, code):
    with pytest.raises(HubError) as err:
        dcmtk._build_cmd(job("to_image", OUT, **options), file_window=None)
    assert err.value.code.value == code


@pytest.mark.parametrize("op", ["to_image", "batch_convert"])
@pytest.mark.parametrize("options", [{"window_center": 40}, {"window_width": 400}, {"window_center": 40, "window_width": 0}])
def test_a_half_or_empty_window_is_refused_by_the_schema(op, options):
    """No backend checks the window pair again: the catalog refuses it before any backend runs."""
    with pytest.raises(HubError) as err:
        get_op(op).validate_options(options)
    assert err.value.code.value == "invalid_request"


def test_modify_tags_edits_the_given_copy_only(dcmtk):
    argv = dcmtk._build_cmd(
        job("modify_tags", Path("/data/tmp.part"), set={"PatientName": "A^B", "(0018,1020)": ["x", "y"], "PatientWeight": None, "Rows": 64}, delete=["StationName"])
    )
    assert argv == [
        "dcmodify", "-nb", "-imt",
        "-i", "(0010,0010)=A^B", "-i", "(0018,1020)=x\\y", "-i", "(0010,1030)=", "-i", "(0028,0010)=64",
        "-e", "(0008,1010)",
        "/data/tmp.part",
    ]  # fmt: skip
    assert str(IN) not in argv


def test_modify_tags_without_deletions_has_no_ignore_flag(dcmtk):
    assert dcmtk._build_cmd(job("modify_tags", Path("/t"), set={"PatientID": "X"})) == ["dcmodify", "-nb", "-i", "(0010,0020)=X", "/t"]


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({"set": {"Rows": "abc"}}, "invalid_request"),
        ({"set": {"PatientWeight": "heavy"}}, "invalid_request"),
        ({"set": {"NoSuchKeyword": "1"}}, "invalid_request"),
        ({"set": {"(0011,1099)": "x"}}, "unsupported_option"),
        ({"set": {"OtherPatientIDsSequence": "x"}}, "unsupported_option"),
    ],
)
def test_modify_tags_values_are_checked_before_the_command_line(dcmtk, options, code):
    with pytest.raises(HubError) as err:
        dcmtk._build_cmd(job("modify_tags", Path("/t"), **options))
    assert err.value.code.value == code


W = Path("/work")


@pytest.mark.parametrize(
    ("target", "source", "options", "expected"),
    [
        ("explicit", syntaxes.IMPLICIT_LE, {}, [["dcmconv", "+te", str(IN), "/o"]]),
        ("implicit", syntaxes.EXPLICIT_LE, {}, [["dcmconv", "+ti", str(IN), "/o"]]),
        ("deflated", syntaxes.EXPLICIT_LE, {}, [["dcmconv", "+td", str(IN), "/o"]]),
        ("rle", syntaxes.EXPLICIT_LE, {}, [["dcmcrle", str(IN), "/o"]]),
        ("jpeg", syntaxes.EXPLICIT_LE, {}, [["dcmcjpeg", "+eb", "+q", "90", str(IN), "/o"]]),
        ("jpeg", syntaxes.EXPLICIT_LE, {"quality": 80}, [["dcmcjpeg", "+eb", "+q", "80", str(IN), "/o"]]),
        ("jpeg", syntaxes.EXPLICIT_LE, {"keep_sop_instance_uid": True}, [["dcmcjpeg", "+eb", "+q", "90", "+un", str(IN), "/o"]]),
        ("jpeg_lossless", syntaxes.EXPLICIT_LE, {}, [["dcmcjpeg", "+e1", str(IN), "/o"]]),
        ("jpegls", syntaxes.EXPLICIT_LE, {}, [["dcmcjpls", "+el", str(IN), "/o"]]),
        ("jpegls_near", syntaxes.EXPLICIT_LE, {}, [["dcmcjpls", "+en", "+md", "2", str(IN), "/o"]]),
        ("jpegls_near", syntaxes.EXPLICIT_LE, {"near_lossless_error": 5, "keep_sop_instance_uid": True}, [["dcmcjpls", "+en", "+md", "5", "+un", str(IN), "/o"]]),
        # compressed input: decompress straight into a native target ...
        ("explicit", syntaxes.RLE, {}, [["dcmdrle", "+te", str(IN), "/o"]]),
        ("implicit", syntaxes.JPEG_BASELINE, {}, [["dcmdjpeg", "+ti", str(IN), "/o"]]),
        ("explicit", syntaxes.JPEGLS_NEAR, {}, [["dcmdjpls", "+te", str(IN), "/o"]]),
        # ... or decompress first, then encode.
        ("deflated", syntaxes.JPEG_LOSSLESS_SV1, {}, [["dcmdjpeg", "+te", str(IN), "/work/decompressed.dcm"], ["dcmconv", "+td", "/work/decompressed.dcm", "/o"]]),
        ("jpegls", syntaxes.RLE, {}, [["dcmdrle", "+te", str(IN), "/work/decompressed.dcm"], ["dcmcjpls", "+el", "/work/decompressed.dcm", "/o"]]),
        ("rle", syntaxes.JPEGLS_LOSSLESS, {}, [["dcmdjpls", "+te", str(IN), "/work/decompressed.dcm"], ["dcmcrle", "/work/decompressed.dcm", "/o"]]),
    ],
)
def test_transcode_chains(dcmtk, target, source, options, expected):
    assert dcmtk._transcode_cmds(job("transcode", Path("/o"), transfer_syntax=target, **options), source, Path("/o"), W) == expected


@pytest.mark.parametrize(
    ("target", "source", "options", "code"),
    [
        ("j2k", syntaxes.EXPLICIT_LE, {}, "codec_unavailable"),
        ("j2k_lossy", syntaxes.EXPLICIT_LE, {}, "codec_unavailable"),
        ("htj2k", syntaxes.EXPLICIT_LE, {}, "codec_unavailable"),
        ("explicit", syntaxes.J2K_LOSSLESS, {}, "codec_unavailable"),
        ("rle", syntaxes.EXPLICIT_LE, {"quality": 50}, "unsupported_option"),
        ("jpeg", syntaxes.EXPLICIT_LE, {"near_lossless_error": 3}, "unsupported_option"),
        ("no-such-syntax", syntaxes.EXPLICIT_LE, {}, "invalid_request"),
        ("big_endian", syntaxes.EXPLICIT_LE, {}, "invalid_request"),
        (syntaxes.EXPLICIT_BE, syntaxes.EXPLICIT_LE, {}, "invalid_request"),
    ],
)
def test_transcode_refusals(dcmtk, target, source, options, code):
    with pytest.raises(HubError) as err:
        dcmtk._transcode_cmds(job("transcode", Path("/o"), transfer_syntax=target, **options), source, Path("/o"), W)
    assert err.value.code.value == code


def test_anonymize_plan_as_dcmodify_flags(dcmtk):
    from dicom_hub.adapters.dcmtk import anon as dcmtk_anon
    from dicom_hub.adapters.toolkit import annex_e
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ref = Dataset()
    ref.ReferencedSOPInstanceUID = "1.2.3.4"  # U, inside a sequence
    ds = Dataset()
    ds.StudyDate = "20200101"  # Z
    ds.InstitutionName = "Hospital"  # X
    ds.Modality = "CT"  # K: untouched
    ds.PatientName = ""  # Z, already empty: nothing to do
    ds.SOPInstanceUID = "1.2.3.4"  # U: the same original UID gets the same new one
    ds.ReferencedImageSequence = Sequence([ref])  # X/Z/U*: kept, UIDs inside replaced
    ds.OtherPatientIDsSequence = Sequence([Dataset()])  # X: erased with its content
    edits = annex_e.plan(ds)
    new_uid = edits[0].value
    assert [(e.action, e.path) for e in edits] == [
        ("U", "(0008,0018)"),
        ("Z", "(0008,0020)"),
        ("X", "(0008,0080)"),
        ("U", "(0008,1140)[0].(0008,1155)"),
        ("X", "(0010,1002)"),
    ]
    assert edits[3].value == new_uid != "1.2.3.4"
    argv = dcmtk_anon.command(dcmtk, edits, Path("/t/copy.dcm"))
    assert argv[:3] == ["dcmodify", "-nb", "-imt"]
    assert argv[3:13] == ["-m", f"(0008,0018)={new_uid}", "-m", "(0008,0020)=", "-e", "(0008,0080)", "-m", f"(0008,1140)[0].(0008,1155)={new_uid}", "-e", "(0010,1002)"]
    assert argv[13:16] == ["-ep", "-e", "(fffc,fffc)"] and "(0012,0062)=YES" in argv and argv[-1] == "/t/copy.dcm"


def test_anonymize_plan_empties_type_2_sequences_and_drops_what_the_iod_does_not_need(dcmtk):
    """Enhanced CT: Acquisition Context Sequence (X/Z) is type 2 there, so it stays, without items;
    Echo Time belongs to no CT IOD, so it goes."""
    from dicom_hub.adapters.dcmtk import anon as dcmtk_anon
    from dicom_hub.adapters.toolkit import annex_e
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    from pydicom.uid import EnhancedCTImageStorage

    ds = Dataset()
    ds.SOPClassUID = EnhancedCTImageStorage
    ds.AcquisitionContextSequence = Sequence([Dataset()])
    ds.EchoTime = 12
    edits = annex_e.plan(ds)
    assert [(e.action, e.path, e.sequence) for e in edits] == [("X", "(0018,0081)", False), ("Z", "(0040,0555)", True)]
    assert dcmtk_anon.edit_flags(edits) == ["-e", "(0018,0081)", "-e", "(0040,0555)", "-i", "(0040,0555)"]


def test_anonymize_plan_replaces_a_d_sequence_by_its_dummy_item(dcmtk):
    """Person Identification Code Sequence (D): erased, then inserted holding only the dummy code
    (contract/data/deid-dummy-items.tsv); its original code never reaches a flag."""
    from dicom_hub.adapters.dcmtk import anon as dcmtk_anon
    from dicom_hub.adapters.toolkit import annex_e
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "EMP-4711", "99HOSP", "Dr Jane Doe"
    ds = Dataset()
    ds.PersonIdentificationCodeSequence = Sequence([code])
    flags = dcmtk_anon.edit_flags(annex_e.plan(ds))
    assert flags == [
        "-e", "(0040,1101)",
        "-i", "(0040,1101)[0].(0008,0100)=DUMMY",
        "-i", "(0040,1101)[0].(0008,0102)=99DCMHUB",
        "-i", "(0040,1101)[0].(0008,0104)=ANONYMIZED",
    ]
    assert not any("EMP-4711" in flag or "Doe" in flag for flag in flags)


def test_anonymize_plan_uses_the_keyed_uids(dcmtk):
    """With a key, the plan's new UIDs are the Python engine's (the same across runs and backends)."""
    from dicom_hub.adapters.toolkit import annex_e
    from dicom_hub.contract.dicom.deid.pseudonyms import Pseudonymizer
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.SOPInstanceUID = "1.2.3.4"
    ds.FailedSOPInstanceUIDList = ["1.2.3.4", "1.2.3.5"]  # U, two values: each replaced
    keyed = Pseudonymizer(b"k" * 20).uid
    edits = {edit.path: edit.value for edit in annex_e.plan(ds, keyed)}
    assert edits["(0008,0018)"] == keyed("1.2.3.4")
    assert edits["(0008,0058)"] == f"{keyed('1.2.3.4')}\\{keyed('1.2.3.5')}"


def test_declared_options_exist_in_the_catalog():
    for op, support in DcmtkAdapter().capabilities().items():
        assert support.options is None or support.options <= get_op(op).option_names, op
    for op in DcmtkAdapter().unsupported:
        get_op(op)  # every stub names a real op


def test_bin_dir_override(monkeypatch, tmp_path):
    fake = tmp_path / "dcmdump"
    fake.write_text("#!/bin/sh\necho '$dcmtk: dcmdump v9.8.7 2030-01-01 $'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("DICOM_HUB_DCMTK_BIN_DIR", str(tmp_path))
    adapter = DcmtkAdapter()
    assert adapter.tool("dcmdump") == str(fake)
    assert adapter.probe().version == "9.8.7"
    with pytest.raises(HubError) as err:
        adapter.tool("dcmconv")  # not in the override folder: not silently taken from PATH
    assert err.value.code.value == "backend_unavailable"


# -- network ops --------------------------------------------------------------------------------
PEER = {"host": "127.0.0.1", "port": 11112, "called_aet": "ORTHANC", "calling_aet": "ME"}
TIMEOUTS = ["-to", "30", "-ta", "30", "-td", "60"]  # catalog defaults
Q, RSP = Path("/w/query.dcm"), Path("/w/responses")


def net_job(op: str, inputs: tuple[Path, ...] = (), output: Path | None = None, **options) -> Job:
    return job(op, output, inputs, **{**PEER, **options})


def test_echo_cmd(dcmtk):
    from dicom_hub.adapters.dcmtk.network import build_cmd

    assert build_cmd(dcmtk, net_job("echo")) == ["echoscu", "-v", "-aet", "ME", "-aec", "ORTHANC", *TIMEOUTS, "127.0.0.1", "11112"]
    argv = build_cmd(dcmtk, net_job("echo", network_timeout=2.5, dimse_timeout=0.2))
    assert argv[argv.index("-to") : argv.index("-td") + 2] == ["-to", "3", "-ta", "3", "-td", "1"]


def test_store_cmd(dcmtk, tmp_path):
    from dicom_hub.adapters.dcmtk.network import build_cmd

    files = (tmp_path / "a.dcm", tmp_path / "b.dcm")
    base = ["storescu", "-v", "-aet", "ME", "-aec", "ORTHANC", *TIMEOUTS, "-nh"]
    assert build_cmd(dcmtk, net_job("store", files)) == [*base, "127.0.0.1", "11112", *map(str, files)]
    assert build_cmd(dcmtk, net_job("store", (tmp_path,))) == [*base, "+sd", "127.0.0.1", "11112", str(tmp_path)]
    assert build_cmd(dcmtk, net_job("store", (tmp_path,), recursive=True)) == [*base, "+sd", "+r", "127.0.0.1", "11112", str(tmp_path)]


@pytest.mark.parametrize(
    ("options", "model_flag", "extra"),
    [
        ({}, "-S", []),
        ({"level": "PATIENT"}, "-P", []),
        ({"level": "PATIENT", "model": "study"}, "-S", []),
        ({"level": "SERIES", "model": "patient", "max_results": 5}, "-P", ["--cancel", "5"]),
    ],
)
def test_find_cmd(dcmtk, options, model_flag, extra):
    from dicom_hub.adapters.dcmtk.network import build_cmd

    argv = build_cmd(dcmtk, net_job("find", **options), Q, RSP)
    assert argv == ["findscu", "-v", model_flag, "-aet", "ME", "-aec", "ORTHANC", *TIMEOUTS, "-X", "-od", str(RSP), *extra, "127.0.0.1", "11112", str(Q)]


def test_worklist_cmd(dcmtk):
    from dicom_hub.adapters.dcmtk.network import build_cmd

    argv = build_cmd(dcmtk, net_job("worklist", modality="CT", max_results=2), Q, RSP)
    assert argv == ["findscu", "-v", "-W", "-aet", "ME", "-aec", "ORTHANC", *TIMEOUTS, "-X", "-od", str(RSP), "--cancel", "2", "127.0.0.1", "11112", str(Q)]


def test_move_and_get_cmds(dcmtk):
    from dicom_hub.adapters.dcmtk.network import build_cmd

    query = {"StudyInstanceUID": "1.2.3"}
    move = build_cmd(dcmtk, net_job("move", destination="DEST", query=query), Q, RSP)
    assert move == ["movescu", "-d", "-S", "-aet", "ME", "-aec", "ORTHANC", *TIMEOUTS, "-aem", "DEST", "127.0.0.1", "11112", str(Q)]
    get = build_cmd(dcmtk, net_job("get", output=Path("/out"), level="PATIENT", query={"PatientID": "X"}), Q, RSP)
    assert get == ["getscu", "-v", "-P", "-aet", "ME", "-aec", "ORTHANC", *TIMEOUTS, "-od", str(RSP), "127.0.0.1", "11112", str(Q)]


def test_queries_are_built_like_the_python_backend():
    from dicom_hub.adapters.dcmtk.network import query_dataset

    ds = query_dataset(net_job("find", level="SERIES", query={"PatientID": "P1", "Modality": "CT"}))
    assert ds.QueryRetrieveLevel == "SERIES" and ds.PatientID == "P1" and ds.Modality == "CT" and "SeriesInstanceUID" in ds and not ds.SeriesInstanceUID
    wl = query_dataset(net_job("worklist", modality="MR", patient_name="Doe*"))
    assert wl.PatientName == "Doe*" and wl.ScheduledProcedureStepSequence[0].Modality == "MR"
    with pytest.raises(HubError) as err:
        query_dataset(net_job("move", destination="D", query={}))
    assert err.value.code.value == "invalid_request"


def test_tls_flags(dcmtk, tmp_path):
    from dicom_hub.adapters.dcmtk.network import SYSTEM_CA_DIR, build_cmd

    ca, cert, key = (tmp_path / name for name in ("ca.pem", "cert.pem", "key.pem"))
    for path in (ca, cert, key):
        path.write_text("PEM")
    peer = ["127.0.0.1", "11112"]
    anonymous = build_cmd(dcmtk, net_job("echo", tls=True, tls_ca_file=str(ca)))
    assert anonymous[anonymous.index("-td") + 2 : -2] == ["+tla", "+cf", str(ca), "-rc"] and anonymous[-2:] == peer
    mutual = build_cmd(dcmtk, net_job("echo", tls=True, tls_ca_file=str(ca), tls_cert_file=str(cert), tls_key_file=str(key), tls_verify=False))
    assert mutual[mutual.index("-td") + 2 : -2] == ["+tls", str(key), str(cert), "-pw", "+cf", str(ca), "-ic"]
    system = build_cmd(dcmtk, net_job("store", (tmp_path,), tls=True))
    assert system[system.index("-td") + 2 : system.index("-nh")] == ["+tla", "+cd", SYSTEM_CA_DIR, "-rc"]
    assert "+tla" not in build_cmd(dcmtk, net_job("echo"))


def test_tls_is_declared_where_dcmtk_has_it():
    served = DcmtkAdapter().capabilities()
    for op in ("echo", "store", "find", "worklist"):
        assert served[op].honours("tls") and served[op].honours("tls_ca_file")
        assert not served[op].honours("tls_key_password_env")  # DCMTK would need it on its command line
    for op in ("move", "get"):  # movescu and getscu have no TLS
        assert not served[op].honours("tls")
