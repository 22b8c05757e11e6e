"""Every backend that lists `anonymize` runs the leak corpus: it de-identifies the file completely
(no marker in any value or byte, pixels unchanged, the output parses to the end), or it refuses the
file before running with `unsupported_op` and writes nothing. Keyed backends give one study the same
new UIDs across separate runs (two half-batches), with references following."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pydicom
import pytest
from conftest import require_backend, require_tool, run_request
from deid_corpus import Planted, write_leak_file
from factories import ROOT, ct_slice, save
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid
from test_deid_leaks import assert_no_leak

KEY = "backends-test-key-0123456789"
# Backends that edit top-level elements only and declare (before running) the files they refuse.
TOP_LEVEL_ONLY = {"gdcm", "pixelmed"}
# Backends that take a key, so their UIDs are the same across runs (and equal to each other's).
KEYED = ("python", "dcmtk", "csharp")
# What each backend must de-identify (True) rather than refuse: every corpus for the full engines,
# the flat one (signatures, private blocks, icon, padding; no identity inside sequences) for gdcm.
MUST_SERVE = {
    "python": {False, True},
    "dcmtk": {False, True},
    "csharp": {False, True},
    "gdcm": {True},
    "pixelmed": set(),  # it keeps private attributes of its own choosing: the corpus always has some
}


@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
@pytest.mark.parametrize("flat", [False, True], ids=["nested", "flat"])
@pytest.mark.parametrize("backend", sorted(MUST_SERVE))
def test_backend_leaks_nothing_or_refuses_first(tmp_path: Path, backend: str, flat: bool, implicit: bool) -> None:
    require_backend(backend)
    planted = Planted()
    source = write_leak_file(tmp_path / "in.dcm", planted, implicit=implicit, flat=flat)
    out = tmp_path / "out.dcm"
    options = {"key": KEY} if backend in KEYED else {}
    data = run_request({"op": "anonymize", "input": str(source), "output": str(out), "backend": backend, "options": options})
    if not data["ok"]:
        assert flat not in MUST_SERVE[backend], f"{backend} must de-identify this file: {data['error']}"
        assert backend in TOP_LEVEL_ONLY and data["error"]["code"] == "unsupported_op", data["error"]
        assert "cannot de-identify this file" in data["error"]["message"] and not out.exists()
        return
    ds = assert_no_leak(out, planted)
    assert ds.PatientIdentityRemoved == "YES"
    assert sum(1 for _ in ds.iterall()) > 50  # parsed to the end, sequences included
    assert ds.PixelData == pydicom.dcmread(source).PixelData
    dump = subprocess.run([require_tool("dcmdump"), "-q", str(out)], capture_output=True, text=True, check=False)
    assert dump.returncode == 0 and not dump.stderr, f"DCMTK cannot parse the {backend} output: {dump.stderr[:300]}"
    for elem in ds.iterall():
        if elem.VR == "SQ" and elem.keyword in ("ContentSequence", "PersonIdentificationCodeSequence"):
            assert len(elem.value) == 1, f"{elem.keyword}: D keeps one dummy item, not the original items"


def study_pair(folder: Path) -> tuple[Path, Path]:
    """Two slices of one study; the second references the first (Referenced Image, nested once)."""
    study, series = generate_uid(ROOT), generate_uid(ROOT)
    first = ct_slice(study_uid=study, series_uid=series, instance=1)
    second = ct_slice(study_uid=study, series_uid=series, instance=2, seed=1)
    ref = Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = first.SOPClassUID, first.SOPInstanceUID
    second.ReferencedImageSequence = Sequence([ref])
    return save(first, folder / "a.dcm"), save(second, folder / "b.dcm")


def test_keyed_backends_agree_across_half_batches(tmp_path: Path) -> None:
    """Each file anonymized in a run of its own (two half-batches): same study UID, the reference
    follows the first file's new UID, and every keyed backend gives the same UIDs."""
    a, b = study_pair(tmp_path)
    originals = pydicom.dcmread(a)
    results = {}
    for backend in KEYED:
        require_backend(backend)
        outputs = []
        for source in (a, b):
            out = tmp_path / backend / source.name
            request = {"op": "anonymize", "input": str(source), "output": str(out), "backend": backend, "options": {"key": KEY}}
            data = run_request(request)
            assert data["ok"], f"{backend}: {data['error']}"
            outputs.append(pydicom.dcmread(out))
        first, second = outputs
        assert first.StudyInstanceUID == second.StudyInstanceUID != originals.StudyInstanceUID, backend
        assert first.SeriesInstanceUID == second.SeriesInstanceUID, backend
        assert second.ReferencedImageSequence[0].ReferencedSOPInstanceUID == first.SOPInstanceUID != originals.SOPInstanceUID
        results[backend] = (first.StudyInstanceUID, first.SOPInstanceUID, second.SOPInstanceUID)
    assert len(set(results.values())) == 1, f"keyed backends disagree: {results}"
