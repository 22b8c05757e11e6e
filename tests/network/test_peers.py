"""The test peers themselves: they answer, keep what is stored, and serve the worklist.

Checked with pynetdicom and DCMTK directly (not with dicom-hub code), so a broken peer is told
apart from a broken op.
"""

from __future__ import annotations

import subprocess

import pytest
from conftest import require_tool
from factories import series
from peers import c_echo_ok

pytestmark = pytest.mark.network


def test_orthanc_answers_echo_and_keeps_preloaded_files(orthanc, tmp_path):
    from pydicom.dataset import Dataset
    from pynetdicom import AE
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

    assert c_echo_ok(orthanc.host, orthanc.port, orthanc.aet)
    files = series(tmp_path, count=2)
    assert orthanc.preload(files) == [0, 0]
    from pydicom import dcmread

    series_uid = dcmread(files[0]).SeriesInstanceUID
    ae = AE("CHECK")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = ae.associate(orthanc.host, orthanc.port, ae_title=orthanc.aet)
    assert assoc.is_established
    query = Dataset()
    query.QueryRetrieveLevel = "IMAGE"
    query.SeriesInstanceUID = series_uid
    query.SOPInstanceUID = ""
    found = [ident.SOPInstanceUID for status, ident in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind) if ident]
    assoc.release()
    assert sorted(found) == sorted(dcmread(f).SOPInstanceUID for f in files)


def test_wlmscpfs_serves_the_worklist_to_findscu(wlmscpfs, tmp_path):
    findscu = require_tool("findscu")
    run = subprocess.run(
        [findscu, "-W", "-aec", wlmscpfs.aet, "-k", "PatientID", "-k", "ScheduledProcedureStepSequence[0].Modality=CT",
         "-X", "-od", str(tmp_path), wlmscpfs.host, str(wlmscpfs.port)],
        capture_output=True, text=True, timeout=30,
    )
    assert run.returncode == 0, run.stderr
    from pydicom import dcmread

    ids = sorted(dcmread(p).PatientID for p in tmp_path.glob("rsp*.dcm"))
    assert ids == sorted(item.PatientID for item in wlmscpfs.items if item.ScheduledProcedureStepSequence[0].Modality == "CT")
