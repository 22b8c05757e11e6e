"""Zero bytes are not DICOM, on every backend; raw data sets without preamble still are.

A run of zero bytes force-parses as (0000,0000) elements: pydicom, PixelMed and DCMTK (for larger
files) used to answer `info` ok with an empty summary. The contract says `not_dicom`.
"""

from __future__ import annotations

import pytest
from conftest import backend_request, expect_error, expect_ok, require_backend, sample
from dicom_hub.contract.dicom.part10 import read_dataset
from dicom_hub.contract.errors import ErrorCode, HubError
from pydicom import dcmread
from pydicom.filewriter import dcmwrite

BACKENDS = ["python", "dcmtk", "gdcm", "dicom-rs", "pixelmed", "csharp"]
ZERO_FILES = {"100 zero bytes": 100, "132 zero bytes": 132, "4 KiB of zeros": 4096, "empty": 0}


@pytest.fixture
def zero_files(tmp_path):
    paths = {}
    for name, size in ZERO_FILES.items():
        path = tmp_path / f"{name.replace(' ', '_')}.dcm"
        path.write_bytes(b"\0" * size)
        paths[name] = path
    return paths


@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_bytes_are_not_dicom_on_every_backend(backend, zero_files, tmp_path):
    adapter = require_backend(backend)
    for name, path in zero_files.items():
        for op in ("info", "dump", "to_json"):
            if adapter.support(op) is None:
                continue
            data = expect_error(backend_request(backend, op, str(path)), "not_dicom")
            assert data["error"]["message"], name


def test_python_reader_itself_refuses_zero_bytes(zero_files):
    """Ops that read files themselves (batch ops, folders) go through the same reader check."""
    for path in zero_files.values():
        with pytest.raises(HubError) as info:
            read_dataset(path)
        assert info.value.code is ErrorCode.NOT_DICOM


@pytest.mark.parametrize("name", ["ExplVR_LitEndNoMeta.dcm", "ExplVR_BigEndNoMeta.dcm", "rtstruct.dcm"])
def test_raw_data_sets_from_pydicom_are_still_dicom(name):
    data = expect_ok({"op": "info", "input": f"sample:{name}", "backend": "python"})
    assert data["metadata"]["series"] or data["metadata"]["study"]


def test_an_implicit_vr_raw_data_set_is_still_dicom(tmp_path):
    """No preamble, no meta header, implicit VR little endian: read with force, as DICOM."""
    ds = dcmread(sample("CT_small.dcm"))
    del ds.file_meta
    ds.preamble = None
    raw = tmp_path / "raw_implicit"
    dcmwrite(raw, ds, implicit_vr=True, little_endian=True, enforce_file_format=False)
    assert raw.read_bytes()[128:132] != b"DICM"
    data = expect_ok({"op": "info", "input": str(raw), "backend": "python"})
    assert data["metadata"]["patient"]["PatientID"] == "1CT1"
    assert read_dataset(raw).PatientID == "1CT1"
