"""`auto` falls back at run time: a backend that answers codec_unavailable or backend_unavailable
hands the request to the next candidate, and the response lists every attempt."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import backend_request, expect_error, expect_ok, require_backend, sample
from dicom_hub.adapters import registry
from dicom_hub.adapters.base import Adapter, Availability, Unsupported, supports
from dicom_hub.contract.catalog import load_catalog
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.job import Job, Outcome
from pydicom import dcmread


@pytest.fixture
def no_python_gdcm(monkeypatch):
    """python-gdcm looks uninstalled (`find_spec` answers None): the Python backend then cannot
    encode JPEG baseline or JPEG lossless, which is exactly the machine this is about."""
    monkeypatch.setitem(sys.modules, "gdcm", None)


def transcode(backend: str, out, syntax: str, source: str = "sample:CT_small.dcm") -> dict:
    return backend_request(backend, "transcode", source, out, transfer_syntax=syntax)


def test_auto_falls_back_to_dcmtk_for_jpeg_lossless(no_python_gdcm, tmp_path):
    require_backend("dcmtk")
    out = tmp_path / "out.dcm"
    data = expect_ok(transcode("auto", out, "jpeg_lossless"))
    assert data["backend"] == "dcmtk"
    (attempt,) = data["metadata"]["attempts"]
    assert attempt["backend"] == "python" and attempt["code"] == "codec_unavailable"
    assert "python-gdcm" in attempt["message"]
    written = dcmread(out)
    assert written.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.70"
    assert np.array_equal(written.pixel_array, dcmread(sample("CT_small.dcm")).pixel_array)


def test_no_attempts_when_the_first_backend_answers(tmp_path):
    data = expect_ok(transcode("auto", tmp_path / "out.dcm", "rle"))
    assert data["backend"] == "python" and "attempts" not in data["metadata"]


def test_a_named_backend_never_falls_back(no_python_gdcm, tmp_path):
    out = tmp_path / "out.dcm"
    data = expect_error(transcode("python", out, "jpeg_lossless"), "codec_unavailable")
    assert data["backend"] == "python" and "tried before" not in data["error"]["message"]
    assert not out.exists() and not list(tmp_path.iterdir())


def test_when_every_candidate_fails_the_error_lists_each_attempt(tmp_path):
    """Neither C++ toolkit writes HTJ2K: `cpp` (dcmtk, then gdcm) tries both and says so."""
    require_backend("dcmtk")
    require_backend("gdcm")
    out = tmp_path / "out.dcm"
    data = expect_error(transcode("cpp", out, "htj2k_lossless"), "codec_unavailable")
    message = data["error"]["message"]
    assert message.startswith("every backend that could run 'transcode' failed: dcmtk: codec_unavailable: ")
    assert "; gdcm: codec_unavailable: " in message
    assert data["error"]["hint"]
    assert not out.exists() and not list(tmp_path.iterdir())


class FakeWriter(Adapter):
    """Serves transcode by failing with codec_unavailable; `leaky` writes part of the output first."""

    name = "fake"
    language = "python"
    toolkit = "fake"
    leaky = False

    def probe(self) -> Availability:
        return Availability(True, "1.0")

    def declare_ops(self):
        stubs = {op: Unsupported(f"fake does not implement {op!r}") for op in load_catalog()}
        return {**stubs, "transcode": supports("transfer_syntax", handler=self.fail)}

    def fail(self, job: Job) -> Outcome:
        if self.leaky:
            job.output.write_bytes(b"partial")
        raise HubError(ErrorCode.CODEC_UNAVAILABLE, "no codec here", "install one")


@pytest.fixture
def fake_first(monkeypatch, register_adapter):
    """A backend tried before every built-in one under `auto`."""
    monkeypatch.setattr(registry, "PREFERENCE", ("fake", *registry.PREFERENCE))
    return register_adapter("fake", f"{__name__}:FakeWriter")


def test_an_answer_other_than_unavailable_ends_the_search_and_names_the_attempts(fake_first, tmp_path):
    """After fake's codec_unavailable, python refuses JPEG baseline for 16-bit data: that is the answer."""
    data = expect_error(transcode("auto", tmp_path / "out.dcm", "jpeg"), "unsupported_option")
    assert data["backend"] == "python"
    assert data["error"]["message"].endswith("(tried before: fake: codec_unavailable: no codec here)")
    assert not list(tmp_path.iterdir())


def test_no_fall_back_after_a_failed_attempt_left_output(fake_first, tmp_path):
    fake_first.leaky = True
    data = expect_error(transcode("auto", tmp_path / "out.dcm", "rle"), "internal_error")
    assert data["backend"] == "fake" and "must leave no output" in data["error"]["message"]


def test_output_state_sees_files_not_empty_folders(tmp_path):
    from dicom_hub.adapters.dispatch import _output_state

    folder = tmp_path / "out"
    assert _output_state(folder) is None
    folder.mkdir()
    assert _output_state(folder) is None  # an op may make its folder before it fails
    (folder / "a.dcm").write_bytes(b"x")
    assert _output_state(folder) == ((str(folder / "a.dcm"), 1, (folder / "a.dcm").stat().st_mtime_ns),)
