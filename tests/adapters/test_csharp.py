"""The C# backend (GDCM's C# bindings under Mono), run for real on pydicom's bundled samples and
checked against the Python backend and against pydicom/numpy references."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import pytest
from conftest import expect_error, expect_ok, require_backend, run_request, sample
from dicom_hub.adapters.csharp.adapter import CSharpAdapter, build_dir
from dicom_hub.adapters.registry import KNOWN_ADAPTERS, get_adapter
from dicom_hub.contract.catalog import load_catalog
from dicom_hub.contract.info import info_fields

pytestmark = pytest.mark.toolkit

INFO_SAMPLES = [
    "CT_small.dcm", "MR_small.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm", "rtplan.dcm",
    "JPEG2000.dcm", "SC_rgb_rle.dcm", "rtdose_rle.dcm", "liver_1frame.dcm", "no_meta.dcm", "MR_truncated.dcm",
]
LOSSLESS = {
    "explicit": "1.2.840.10008.1.2.1",
    "implicit": "1.2.840.10008.1.2",
    "deflated": "1.2.840.10008.1.2.1.99",
    "rle": "1.2.840.10008.1.2.5",
    "jpeg_lossless": "1.2.840.10008.1.2.4.70",
    "jpegls": "1.2.840.10008.1.2.4.80",
    "j2k": "1.2.840.10008.1.2.4.90",
}


@pytest.fixture(scope="module", autouse=True)
def csharp():
    return require_backend("csharp")


def both(request: dict) -> tuple[dict, dict]:
    return run_request({**request, "backend": "python"}), run_request({**request, "backend": "csharp"})


def read(path):
    import pydicom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path)


# -- registration ---------------------------------------------------------------------------------------
def test_registered_as_csharp_with_hint():
    assert "csharp" in KNOWN_ADAPTERS
    adapter = get_adapter("csharp")
    assert isinstance(adapter, CSharpAdapter)
    assert (adapter.name, adapter.language, adapter.toolkit) == ("csharp", "csharp", "GDCM via C#")
    assert "40-csharp.sh" in adapter.install_hint and "libgdcm-cil" in adapter.install_hint
    assert {"info", "dump", "to_json", "transcode", "anonymize", "modify_tags", "stats", "to_image"} <= set(adapter.capabilities())
    assert adapter.command()[-1] == str(build_dir() / "DicomHubGdcm.exe")


def test_declared_table_is_what_the_program_reports():
    """The table in adapters/csharp/adapter.py (known without the program) against the built
    program's own `--capabilities`: the same ops, options, notes and stub reasons."""
    adapter = CSharpAdapter()
    run = subprocess.run([*adapter.command(), "--capabilities"], capture_output=True, text=True, timeout=120)
    report = json.loads(run.stdout)
    declared = adapter.capabilities()
    assert sorted(declared) == sorted(report["ops"])
    for op, entry in report["ops"].items():
        assert declared[op].options == frozenset(entry["options"]), op
        assert declared[op].note == entry["note"], op
    for op, reason in report["unsupported"].items():
        assert adapter.unsupported_reason(op) == reason, op
        assert op not in declared
    assert report["name"] == adapter.name and report["language"] == adapter.language and report["toolkit"] == adapter.toolkit


def test_backends_command_shows_csharp():
    run = subprocess.run([sys.executable, "-m", "dicom_hub.interface", "backends", "--json"], capture_output=True, text=True, timeout=120)
    row = {r["name"]: r for r in json.loads(run.stdout)}["csharp"]
    assert row["available"] and row["toolkit"] == "GDCM via C#" and "GDCM 3" in row["version"]


def test_missing_program_is_unavailable_with_install_hint(monkeypatch, tmp_path):
    monkeypatch.setenv("DICOM_HUB_CSHARP_BUILD", str(tmp_path))
    adapter = CSharpAdapter()
    assert not adapter.available()
    assert "40-csharp.sh" in adapter.availability.reason + adapter.availability.hint


def test_bin_override_points_at_another_program(monkeypatch):
    monkeypatch.setenv("DICOM_HUB_CSHARP_BIN", f"{sys.executable} -m dicom_hub.python_backend")
    adapter = CSharpAdapter()
    assert adapter.command() == [sys.executable, "-m", "dicom_hub.python_backend"]
    assert adapter.available() and adapter.toolkit == "pydicom"  # what the other program reports


# -- metadata ops ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", INFO_SAMPLES)
def test_info_equals_python(name):
    py, cs = both({"op": "info", "input": f"sample:{name}"})
    assert cs["ok"] == py["ok"], (py["error"], cs["error"])
    if not py["ok"]:
        assert cs["error"]["code"] == py["error"]["code"]
        return
    for level in info_fields():
        assert cs["metadata"][level] == py["metadata"][level], level
    for key in ("path", "size_bytes", "transfer_syntax", "sop_class_name"):
        assert cs["metadata"]["file"][key] == py["metadata"]["file"][key], key


@pytest.mark.parametrize("name", ["CT_small.dcm", "rtplan.dcm", "MR_small_implicit.dcm"])
def test_dump_lists_the_same_elements_as_python(name):
    py, cs = both({"op": "dump", "input": f"sample:{name}", "options": {"max_depth": 1}})
    assert cs["ok"], cs["error"]
    shape = lambda data: [(e["tag"], e["vr"], e["depth"]) for e in data["metadata"]["elements"]]  # noqa: E731
    assert shape(cs) == shape(py)
    assert cs["metadata"]["element_count"] == py["metadata"]["element_count"]
    assert "(0010,0010) PN PatientName:" in cs["stdout"]


def test_dump_to_file_and_value_cut(tmp_path):
    out = tmp_path / "dump.txt"
    data = expect_ok({"op": "dump", "input": "sample:CT_small.dcm", "output": str(out), "backend": "csharp", "options": {"max_value_length": 10}})
    assert data["output_files"] == [str(out)]
    text = out.read_text()
    assert "(0020,000D) UI StudyInstanceUID: 1.3.6.1..." in text
    assert "(7FE0,0010)" not in text


def test_to_json_matches_pydicom_json_model():
    cs = expect_ok({"op": "to_json", "input": "sample:rtplan.dcm", "backend": "csharp"})
    ref = read(sample("rtplan.dcm")).to_json_dict()
    doc = cs["metadata"]["dataset"]
    assert sorted(doc) == sorted(ref)
    assert doc["300A00B0"]["vr"] == "SQ" and len(doc["300A00B0"]["Value"]) == len(ref["300A00B0"]["Value"])
    for key, element in ref.items():
        assert doc[key]["vr"] == element["vr"], key
        if "Value" in element and element["vr"] != "SQ":
            expected = [float(v) if element["vr"] in ("DS", "IS") and v is not None else v for v in element["Value"]]
            got = [float(v) if element["vr"] in ("DS", "IS") and v is not None else v for v in doc[key]["Value"]]
            assert got == expected, key


def test_to_json_bulk_omit_and_file(tmp_path):
    out = tmp_path / "ct.json"
    data = expect_ok({"op": "to_json", "input": "sample:CT_small.dcm", "output": str(out), "backend": "csharp", "options": {"bulk_data": "omit", "indent": 2}})
    doc = json.loads(out.read_text())
    assert "7FE00010" not in doc and "7FE00010" in data["metadata"]["omitted"]
    assert doc["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "CompressedSamples^CT1"}]}
    assert doc["00280010"] == {"vr": "US", "Value": [128]}


# -- transcode ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("syntax", sorted(LOSSLESS))
@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "SC_rgb_rle.dcm"])
def test_lossless_transcode_is_pixel_exact(tmp_path, name, syntax):
    import numpy as np

    if not sample(name).exists():
        pytest.skip(f"{name} not bundled")
    out = tmp_path / f"{syntax}.dcm"
    data = expect_ok({"op": "transcode", "input": f"sample:{name}", "output": str(out), "backend": "csharp", "options": {"transfer_syntax": syntax}})
    assert data["metadata"]["transfer_syntax"] == LOSSLESS[syntax]
    written, source = read(out), read(sample(name))
    assert written.file_meta.TransferSyntaxUID == LOSSLESS[syntax]
    assert written.SOPInstanceUID == source.SOPInstanceUID
    assert np.array_equal(written.pixel_array, source.pixel_array)


@pytest.mark.parametrize("syntax", ["j2k_lossy", "jpegls_near"])
def test_lossy_transcode_gets_new_uid_and_stays_close(tmp_path, syntax):
    import numpy as np

    out = tmp_path / "lossy.dcm"
    options = {"transfer_syntax": syntax, "compression_ratio": 5} if syntax == "j2k_lossy" else {"transfer_syntax": syntax, "near_lossless_error": 3}
    data = expect_ok({"op": "transcode", "input": "sample:MR_small.dcm", "output": str(out), "backend": "csharp", "options": options})
    written, source = read(out), read(sample("MR_small.dcm"))
    assert data["metadata"]["lossy"] is True
    assert written.SOPInstanceUID != source.SOPInstanceUID == read(sample("MR_small.dcm")).SOPInstanceUID
    assert data["metadata"]["sop_instance_uid"] == written.SOPInstanceUID
    diff = np.abs(written.pixel_array.astype(float) - source.pixel_array.astype(float))
    if syntax == "jpegls_near":
        assert diff.max() <= 3
    else:
        assert diff.mean() < 0.02 * (source.pixel_array.max() - source.pixel_array.min())


def test_transcode_errors(tmp_path):
    expect_error({"op": "transcode", "input": "sample:CT_small.dcm", "output": str(tmp_path / "h.dcm"), "backend": "csharp", "options": {"transfer_syntax": "htj2k"}}, "codec_unavailable")
    expect_error({"op": "transcode", "input": "sample:CT_small.dcm", "output": str(tmp_path / "x.dcm"), "backend": "csharp", "options": {"transfer_syntax": "fancy"}}, "invalid_request")
    assert not list(tmp_path.iterdir())


def test_the_program_reads_the_catalog_defaults_it_is_sent(tmp_path):
    """The program keeps no defaults of its own: without `quality` it uses the catalog's, as sent."""
    import numpy as np

    assert get_adapter("csharp").reported()["defaults"] is True
    catalog_quality = load_catalog()["transcode"].defaults["quality"]
    source = str(sample("examples_rgb_color.dcm"))

    def transcode(name: str, options: dict) -> np.ndarray:
        out = tmp_path / name
        expect_ok({"op": "transcode", "input": source, "output": str(out), "backend": "csharp", "options": {"transfer_syntax": "jpeg", **options}})
        return read(out).pixel_array

    default, catalog, low = transcode("default.dcm", {}), transcode("catalog.dcm", {"quality": catalog_quality}), transcode("low.dcm", {"quality": 40})
    assert np.array_equal(default, catalog)
    assert not np.array_equal(default, low)
    request = {"op": "transcode", "input": source, "output": str(tmp_path / "sent.dcm"), "options": {"transfer_syntax": "jpeg"}}
    code, answer = run_program(request, defaults={"quality": 40, "keep_sop_instance_uid": False})
    assert (code, answer["error"]) == (0, None)
    assert np.array_equal(read(tmp_path / "sent.dcm").pixel_array, low)
    code, answer = run_program({**request, "output": str(tmp_path / "none.dcm")}, defaults={})
    assert answer["error"]["code"] == "internal_error" and "'quality'" in answer["error"]["message"]
    assert not (tmp_path / "none.dcm").exists()


# -- pixels ----------------------------------------------------------------------------------------------
def stored_and_modality(name):
    from pydicom.pixels import apply_modality_lut

    ds = read(sample(name))
    arr = ds.pixel_array
    return ds, arr, apply_modality_lut(arr, ds)


@pytest.mark.parametrize(("name", "options"), [("CT_small.dcm", {}), ("CT_small.dcm", {"modality": False}), ("rtdose.dcm", {"frame": 3}), ("SC_rgb_rle.dcm", {})])
def test_stats_equal_numpy(name, options):
    import numpy as np

    if not sample(name).exists():
        pytest.skip(f"{name} not bundled")
    ds, arr, hu = stored_and_modality(name)
    values = (hu if options.get("modality", True) else arr).astype(float)
    if "frame" in options:
        values = values[options["frame"]]
    data = expect_ok({"op": "stats", "input": f"sample:{name}", "backend": "csharp", "options": options})["metadata"]
    assert data["total_pixels"] == values.size
    for key, expected in [("min", values.min()), ("max", values.max()), ("mean", values.mean()), ("median", np.median(values)), ("std", values.std())]:
        assert data[key] == pytest.approx(expected, rel=1e-9, abs=1e-9), key
    assert data["p95"] == pytest.approx(np.percentile(values, 95))
    assert data["zero_pixels"] == int((values == 0).sum())
    assert data["unique_values"] == len(np.unique(values))


def reference_grey(name, center=None, width=None, bits=8):
    """pydicom's modality LUT and LINEAR windowing, scaled to the output range."""
    import numpy as np
    from pydicom.pixels import apply_voi_lut

    ds, arr, hu = stored_and_modality(name)
    if center is not None:
        ds.WindowCenter, ds.WindowWidth = center, width
    windowed = apply_voi_lut(hu.astype(float), ds)
    low, high = apply_voi_lut(np.array([-1e12, 1e12]), ds)
    top = 2**bits - 1
    return (windowed - low) / (high - low) * top


@pytest.mark.parametrize(
    ("name", "options", "window"),
    [
        ("CT_small.dcm", {"window_center": 40, "window_width": 400}, (40, 400)),
        ("CT_small.dcm", {"window_center": -600, "window_width": 1500}, (-600, 1500)),
        ("MR_small.dcm", {}, None),  # the file's own window 600/1600
        ("MR_small.dcm", {"force_16bit": True, "window_center": 500, "window_width": 1000}, (500, 1000)),
    ],
    ids=["ct-soft-tissue", "ct-lung", "mr-file-window", "mr-16bit"],
)
def test_to_image_within_one_grey_level(tmp_path, name, options, window):
    import numpy as np
    from PIL import Image

    out = tmp_path / "out.png"
    data = expect_ok({"op": "to_image", "input": f"sample:{name}", "output": str(out), "backend": "csharp", "options": options})
    bits = 16 if options.get("force_16bit") else 8
    image = np.array(Image.open(out))
    center, width = window or (None, None)
    expected = reference_grey(name, center, width, bits)
    assert image.shape == expected.shape
    assert np.abs(image.astype(float) - expected).max() <= 1.0
    assert data["metadata"]["bit_depth"] == bits
    assert image.std() > 0  # not a blank picture


def test_to_image_rgb_is_the_pixel_data(tmp_path):
    import numpy as np
    from PIL import Image

    out = tmp_path / "rgb.png"
    expect_ok({"op": "to_image", "input": "sample:SC_rgb_rle.dcm", "output": str(out), "backend": "csharp"})
    assert np.array_equal(np.array(Image.open(out).convert("RGB")), read(sample("SC_rgb_rle.dcm")).pixel_array)


def test_to_image_refuses_other_formats_and_bad_frames(tmp_path):
    expect_error({"op": "to_image", "input": "sample:CT_small.dcm", "output": str(tmp_path / "a.jpg"), "backend": "csharp"}, "unsupported_option")
    expect_error({"op": "to_image", "input": "sample:CT_small.dcm", "output": str(tmp_path / "a.png"), "backend": "csharp", "options": {"frame": 5}}, "invalid_request")
    expect_error({"op": "to_image", "input": "sample:CT_small.dcm", "output": str(tmp_path / "a.png"), "backend": "csharp", "options": {"quality": 50}}, "unsupported_option")
    assert not list(tmp_path.iterdir())


# -- editing -----------------------------------------------------------------------------------------------
def test_modify_tags_sets_adds_and_deletes(tmp_path):
    out = tmp_path / "mod.dcm"
    options = {
        "set": {"PatientName": "Doe^Jane", "(0008,1030)": "new study", "InstanceNumber": 7, "Rows": 128, "ImageType": ["DERIVED", "SECONDARY"]},
        "delete": ["PatientID", "AccessionNumber"],
    }
    expect_ok({"op": "modify_tags", "input": "sample:CT_small.dcm", "output": str(out), "backend": "csharp", "options": options})
    ds = read(out)
    assert str(ds.PatientName) == "Doe^Jane"
    assert ds.StudyDescription == "new study"
    assert ds.InstanceNumber == 7 and ds.Rows == 128
    assert list(ds.ImageType) == ["DERIVED", "SECONDARY"]
    assert "PatientID" not in ds
    assert ds.pixel_array.shape == (128, 128)
    assert read(sample("CT_small.dcm")).PatientID == "1CT1"  # the input is untouched


@pytest.mark.parametrize(
    "options",
    [{"set": {"StudyDate": "2020-01-01"}}, {"set": {"Rows": -1}}, {"set": {"NoSuchKeyword": "x"}}, {"set": {"(0011,1010)": "x"}}],
    ids=["bad-date", "negative-US", "unknown-keyword", "private-without-vr"],
)
def test_modify_tags_invalid_values(tmp_path, options):
    out = tmp_path / "mod.dcm"
    expect_error({"op": "modify_tags", "input": "sample:CT_small.dcm", "output": str(out), "backend": "csharp", "options": options}, "invalid_request")
    assert not out.exists()


def test_modify_tags_private_with_vr(tmp_path):
    out = tmp_path / "mod.dcm"
    options = {"set": {"(0011,0010)": "DICOMHUB", "(0011,1010)": "value"}, "vr": {"(0011,1010)": "LO"}}
    expect_ok({"op": "modify_tags", "input": "sample:CT_small.dcm", "output": str(out), "backend": "csharp", "options": options})
    assert read(out)[0x00111010].value == "value"


# -- typed errors --------------------------------------------------------------------------------------
def run_program(request: dict, defaults: dict | None = None) -> tuple[int, dict]:
    """The C# program on its own (no dispatcher in front): its own checks must hold too. Like
    dicom-hub, it sends the catalog defaults of the options not given (unless `defaults` is given)."""
    if defaults is None:
        catalog = load_catalog()
        options = request.get("options", {})
        defaults = {k: v for k, v in catalog[request["op"]].defaults.items() if k not in options} if request["op"] in catalog else {}
    request = {**request, "defaults": defaults}
    adapter = get_adapter("csharp")
    run = subprocess.run(adapter.command(), input=json.dumps(request), capture_output=True, text=True, timeout=120)
    return run.returncode, json.loads(run.stdout)


def test_not_dicom(tmp_path):
    text = tmp_path / "notes.dcm"
    text.write_text("plain text, not DICOM\n" * 50)
    data = expect_error({"op": "info", "input": str(text), "backend": "csharp"}, "not_dicom")
    assert data["backend"] == "csharp"


def test_missing_input_and_existing_output(tmp_path):
    expect_error({"op": "info", "input": str(tmp_path / "none.dcm"), "backend": "csharp"}, "input_not_found")
    code, answer = run_program({"op": "info", "input": str(tmp_path / "none.dcm")})
    assert (code, answer["error"]["code"]) == (1, "input_not_found")
    existing = tmp_path / "out.png"
    existing.write_bytes(b"keep")
    code, answer = run_program({"op": "to_image", "input": str(sample("CT_small.dcm")), "output": str(existing)})
    assert answer["error"]["code"] == "output_exists"
    assert existing.read_bytes() == b"keep"
    assert os.listdir(tmp_path) == ["out.png"]


def test_program_rejects_bad_requests():
    code, answer = run_program({"op": "nope"})
    assert (code, answer["error"]["code"]) == (2, "unknown_op")
    code, answer = run_program({"op": "info", "input": str(sample("CT_small.dcm")), "options": {"x": 1}})
    assert answer["error"]["code"] == "unsupported_option"
    adapter = get_adapter("csharp")
    run = subprocess.run(adapter.command(), input="{not json", capture_output=True, text=True, timeout=120)
    assert json.loads(run.stdout)["error"]["code"] == "invalid_request"


def test_stream_mode_answers_each_line():
    adapter = get_adapter("csharp")
    lines = "\n".join(json.dumps({"op": "info", "input": str(sample(n)), "id": i}) for i, n in enumerate(["CT_small.dcm", "MR_small.dcm"]))
    run = subprocess.run([*adapter.command(), "--stream"], input=lines + "\n", capture_output=True, text=True, timeout=120)
    answers = [json.loads(line) for line in run.stdout.splitlines()]
    assert [(a["id"], a["metadata"]["series"]["Modality"]) for a in answers] == [(0, "CT"), (1, "MR")]


# -- anonymize -------------------------------------------------------------------------------------
KEY = "0123456789abcdef-test-key"


def flat(ds, prefix=""):
    """Every element (nested ones by path) -> (VR, value); Pixel Data by length only."""
    out = {}
    for elem in ds:
        key = f"{prefix}{elem.tag:08X}"
        if elem.VR == "SQ":
            out[key] = ("SQ", len(elem.value))
            for i, item in enumerate(elem.value):
                out.update(flat(item, f"{key}[{i}]."))
        else:
            out[key] = (elem.VR, len(elem.value or b"") if elem.tag == 0x7FE00010 else elem.value)
    return out


@pytest.mark.parametrize("name", ["CT_small.dcm", "rtplan.dcm", "priv_SQ.dcm", "UN_sequence.dcm", "MR_small_implicit.dcm"])
def test_anonymize_with_a_key_equals_python(tmp_path, name):
    outputs = {}
    for backend in ("python", "csharp"):
        outputs[backend] = tmp_path / f"{backend}.dcm"
        data = expect_ok({"op": "anonymize", "input": f"sample:{name}", "output": str(outputs[backend]), "backend": backend, "options": {"key": KEY}})
        assert data["metadata"]["key_source"] == "option"
    py, cs = read(outputs["python"]), read(outputs["csharp"])
    assert flat(cs) == flat(py)
    assert cs.file_meta.MediaStorageSOPInstanceUID == py.file_meta.MediaStorageSOPInstanceUID
    assert "SourceApplicationEntityTitle" not in cs.file_meta or not cs.file_meta.SourceApplicationEntityTitle


def test_anonymize_leaves_no_identifiers(tmp_path):
    out = tmp_path / "anon.dcm"
    source = read(sample("CT_small.dcm"))
    data = expect_ok({"op": "anonymize", "input": "sample:CT_small.dcm", "output": str(out), "backend": "csharp"})
    raw = out.read_bytes()
    for value in ("CompressedSamples", "1CT1", "JFK IMAGING CENTER", "CT01_OC0", source.StudyInstanceUID, source.SOPInstanceUID, source.FrameOfReferenceUID):
        assert value.encode() not in raw, value
    ds = read(out)
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    assert ds.SOPInstanceUID.startswith("2.25.") and data["metadata"]["sop_instance_uid"] == ds.SOPInstanceUID
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert not [e for e in ds.iterall() if e.tag.is_private]
    assert (ds.pixel_array == source.pixel_array).all()
    assert data["metadata"]["key_source"] == "random"


def test_anonymize_random_key_differs_between_runs(tmp_path):
    uids = []
    for i in range(2):
        out = tmp_path / f"{i}.dcm"
        uids.append(expect_ok({"op": "anonymize", "input": "sample:CT_small.dcm", "output": str(out), "backend": "csharp"})["metadata"]["study_instance_uid"])
    assert uids[0] != uids[1]


def test_anonymize_options_and_refusals(tmp_path, monkeypatch):
    out = tmp_path / "a.dcm"
    expect_error({"op": "anonymize", "input": "sample:SC_rgb_rle.dcm", "output": str(out), "backend": "csharp"}, "invalid_request")  # burned-in risk
    expect_error({"op": "anonymize", "input": "sample:CT_small.dcm", "output": str(out), "backend": "csharp", "options": {"profile_options": ["retain_modified_dates"]}}, "unsupported_option")
    expect_error({"op": "anonymize", "input": "sample:CT_small.dcm", "output": str(out), "backend": "csharp", "options": {"mapping_file": str(tmp_path / "m.json")}}, "unsupported_option")
    assert not out.exists()
    monkeypatch.setenv("DICOM_HUB_TEST_KEY", KEY)
    data = expect_ok({"op": "anonymize", "input": "sample:CT_small.dcm", "output": str(out), "backend": "csharp",
                      "options": {"key_env": "DICOM_HUB_TEST_KEY", "profile_options": ["retain_uids", "retain_device_identity"], "patient_prefix": "P"}})
    ds = read(out)
    assert ds.StudyInstanceUID == read(sample("CT_small.dcm")).StudyInstanceUID  # retain_uids
    assert ds.StationName == "CT01_OC0"  # retain_device_identity
    assert ds.PatientID.startswith("P") and data["metadata"]["profile_options"] == ["retain_uids", "retain_device_identity"]


def test_anonymize_without_any_sop_instance_uid_is_refused(tmp_path):
    py, cs = both({"op": "anonymize", "input": "sample:nested_priv_SQ.dcm", "output": str(tmp_path / "a.dcm"), "options": {"key": KEY}})
    assert py["error"]["code"] == cs["error"]["code"] == "decode_error"
    assert not (tmp_path / "a.dcm").exists()


# -- objects GDCM's image reader does not take ----------------------------------------------------------
def test_objects_without_pixels(tmp_path):
    expect_error({"op": "stats", "input": "sample:rtplan.dcm", "backend": "csharp"}, "invalid_request")
    out = tmp_path / "plan.dcm"
    data = expect_ok({"op": "transcode", "input": "sample:rtplan.dcm", "output": str(out), "backend": "csharp", "options": {"transfer_syntax": "explicit"}})
    assert data["metadata"]["transfer_syntax"] == "1.2.840.10008.1.2.1"
    written, source = read(out), read(sample("rtplan.dcm"))
    assert written.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1" and not written.is_implicit_VR
    assert [(e.tag, e.value) for e in written.iterall() if e.VR != "SQ"] == [(e.tag, e.value) for e in source.iterall() if e.VR != "SQ"]


def test_gdcm_abort_is_refused_before_it_happens():
    """GDCM 3.0 aborts the process on RT Dose files with a Frame Increment Pointer and no Number of
    Frames; the program refuses them with a typed error and keeps serving."""
    data = expect_error({"op": "stats", "input": "sample:rtdose_1frame.dcm", "backend": "csharp"}, "decode_error")
    assert "Number of Frames" in data["error"]["message"]
    expect_ok({"op": "stats", "input": "sample:rtdose.dcm", "backend": "csharp"})


@pytest.mark.parametrize("options", [{"bins": 16}, {"bins": 3, "range": [-1000, 0]}, {"bins": 9, "modality": False}])
def test_histogram_equals_numpy(options):
    import numpy as np

    _, arr, hu = stored_and_modality("CT_small.dcm")
    values = (hu if options.get("modality", True) else arr).astype(float)
    counts, edges = np.histogram(values, bins=options["bins"], range=options.get("range"))
    data = expect_ok({"op": "histogram", "input": "sample:CT_small.dcm", "backend": "csharp", "options": options})["metadata"]
    assert data["counts"] == counts.tolist()
    assert data["bin_edges"] == pytest.approx(edges.tolist())
    assert data["counted"] == counts.sum() and data["total_pixels"] == values.size
