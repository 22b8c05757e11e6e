"""NaN and infinities in header values: never non-standard JSON (in a file or a response), never an
ok answer made of NaN, never `internal_error`, and never an output left behind by a failed answer.

DICOM JSON carries FL/FD/DS special values as the strings "NaN", "inf", "-inf" (PS3.18 F.2.3.1,
as pydicom and dicom-rs read them); stats/histogram/to_image refuse a Rescale Slope or Intercept
that is not a finite number, or that takes the stored values past the float range, with
`decode_error` naming the attribute.
"""

from __future__ import annotations

import json
import math

import pytest
from conftest import backend_request, expect_error, expect_ok, require_backend, run_request, sample
from dicom_hub.adapters.dispatch import dispatch, response_json
from pydicom import Dataset, dcmread

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _strict(text: str):
    """JSON as RFC 8259 defines it: NaN, Infinity and -Infinity are not JSON."""
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"non-standard JSON constant {name}"))


@pytest.fixture(scope="module")
def special(tmp_path_factory):
    """CT_small with NaN/infinite DS, FL and FD values, top level and inside a sequence."""
    ds = dcmread(sample("CT_small.dcm"))
    ds.RescaleSlope = "NaN"
    ds.RescaleIntercept = "-Infinity"
    item = Dataset()
    item.add_new(0x00181318, "FD", [float("nan"), float("inf"), 1.5])  # dB/dt
    ds.add_new(0x00081140, "SQ", [item])
    ds.add_new(0x00189327, "FD", float("-inf"))  # Table Position
    ds.add_new(0x00089459, "FL", float("inf"))  # Recommended Display Frame Rate in Float
    path = tmp_path_factory.mktemp("special") / "special.dcm"
    ds.save_as(path)
    return path


def _rescaled(tmp_path, slope: str):
    ds = dcmread(sample("CT_small.dcm"))
    ds.RescaleSlope = slope
    path = tmp_path / f"slope-{slope}.dcm"
    ds.save_as(path)
    return path


EXPECTED = {"00281053": ["NaN"], "00281052": ["-inf"], "00189327": ["-inf"], "00089459": ["inf"]}


@pytest.mark.parametrize("backend", ["python", "csharp"])
def test_to_json_file_is_standard_json_with_special_strings(backend, special, tmp_path):
    require_backend(backend)
    out = tmp_path / "special.json"
    expect_ok(backend_request(backend, "to_json", str(special), out))
    document = _strict(out.read_text())
    assert {tag: document[tag]["Value"] for tag in EXPECTED} == EXPECTED
    assert document["00081140"]["Value"][0]["00181318"]["Value"] == ["NaN", "inf", 1.5]


def test_to_json_inline_response_is_standard_json(special):
    response = dispatch({"op": "to_json", "input": str(special), "backend": "python"})
    data = _strict(response_json(response))
    assert data["ok"], data["error"]
    assert data["metadata"]["dataset"]["00189327"]["Value"] == ["-inf"]


def test_special_strings_round_trip_through_from_json(special, tmp_path):
    document = tmp_path / "special.json"
    expect_ok({"op": "to_json", "input": str(special), "output": str(document)})
    rebuilt = tmp_path / "rebuilt.dcm"
    expect_ok({"op": "from_json", "input": str(document), "output": str(rebuilt)})
    ds = dcmread(rebuilt)
    assert ds[0x00189327].value == float("-inf") and ds[0x00089459].value == float("inf")
    db_dt = ds[0x00081140].value[0][0x00181318].value
    assert math.isnan(db_dt[0]) and db_dt[1] == float("inf") and db_dt[2] == 1.5


@pytest.mark.parametrize("backend", ["dcmtk", "pixelmed"])
def test_toolkits_that_cannot_write_special_numbers_never_write_bad_json(backend, special, tmp_path):
    """dcm2json and PixelMed refuse such files; their refusal must still be a typed, clean answer."""
    require_backend(backend)
    out = tmp_path / "special.json"
    data = run_request(backend_request(backend, "to_json", str(special), out))
    if data["ok"]:
        assert {tag: _strict(out.read_text())[tag]["Value"] for tag in EXPECTED} == EXPECTED
    else:
        assert data["error"]["code"] != "internal_error" and not out.exists()


@pytest.mark.parametrize("slope", ["NaN", "Infinity", "-inf", "1e308"])
@pytest.mark.parametrize("backend", ["python", "csharp", "dcmtk"])
def test_stats_refuse_an_unusable_rescale(backend, slope, tmp_path):
    require_backend(backend)
    path = _rescaled(tmp_path, slope)
    data = expect_error(backend_request(backend, "stats", str(path)), "decode_error")
    assert "Rescale" in data["error"]["message"] and "Slope" in data["error"]["message"]
    stored = expect_ok(backend_request(backend, "stats", str(path), modality=False))["metadata"]
    assert stored["min"] == 0 or stored["min"] > -5000  # stored values are still measurable


@pytest.mark.parametrize("slope", ["NaN", "1e308"])
@pytest.mark.parametrize("backend", ["python", "csharp"])
def test_histogram_and_to_image_refuse_and_leave_nothing(backend, slope, tmp_path):
    require_backend(backend)
    path = _rescaled(tmp_path, slope)
    expect_error(backend_request(backend, "histogram", str(path)), "decode_error")
    out = tmp_path / "out.png"
    expect_error(backend_request(backend, "to_image", str(path), out), "decode_error")
    assert not out.exists() and not list(tmp_path.glob(".out.png*"))


def test_an_unsendable_answer_removes_its_outputs(tmp_path, monkeypatch):
    """Backstop: an op whose metadata cannot be standard JSON gives no ok answer and leaves no output."""
    from dicom_hub.python_backend.pixels import to_image

    real = to_image.to_image

    def with_nan(job):
        outcome = real(job)
        outcome.metadata["mean"] = float("nan")
        return outcome

    monkeypatch.setattr(to_image, "to_image", with_nan)
    out = tmp_path / "out.png"
    response = dispatch({"op": "to_image", "input": "sample:CT_small.dcm", "output": str(out), "backend": "python"})
    data = _strict(response_json(response))
    assert data["error"]["code"] == "internal_error" and not out.exists()
