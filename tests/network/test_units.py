"""The pure parts of the network ops: UID-checked storage paths and query building (no peer)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dicom_hub.contract.dicom.network.query import build_query
from dicom_hub.contract.dicom.network.storage import RejectedInstance, instance_path
from dicom_hub.contract.errors import HubError


@pytest.mark.parametrize("bad", ["../../x", "1.2/3", "..", "", "1.2.03", "1." + "2" * 80, "1.2.3\\4", "/etc/passwd"])
def test_instance_path_refuses_anything_but_a_uid(tmp_path, bad):
    for parts in ((bad, "1.2", "1.3"), ("1.2", bad, "1.3"), ("1.2", "1.3", bad)):
        with pytest.raises(RejectedInstance) as info:
            instance_path(tmp_path, *parts)
        assert info.value.status == 0xC000


def test_instance_path_layout(tmp_path):
    assert instance_path(tmp_path, "1.2", "1.2.3", "1.2.3.4") == Path(tmp_path, "1.2", "1.2.3", "1.2.3.4.dcm")


def test_build_query_types_and_sequences():
    ds = build_query("STUDY", ("StudyInstanceUID",), {
        "PatientName": "Smith*", "(0010,0020)": None, "SeriesNumber": "4", "ModalitiesInStudy": ["CT", "MR"],
        "ScheduledProcedureStepSequence": {"Modality": "CT"},
    })
    assert ds.QueryRetrieveLevel == "STUDY"
    assert ds.PatientName == "Smith*" and ds.PatientID in (None, "")
    assert ds.StudyInstanceUID in (None, "")
    assert ds.SeriesNumber == 4
    assert list(ds.ModalitiesInStudy) == ["CT", "MR"]
    assert ds.ScheduledProcedureStepSequence[0].Modality == "CT"


@pytest.mark.parametrize("query", [{"NotAKeyword": "x"}, {"(0009,0010)": "x"}, {"PatientName": {"a": "b"}}, {"SeriesNumber": "four"}])
def test_build_query_rejects_bad_keys(query):
    with pytest.raises(HubError) as info:
        build_query("STUDY", (), query)
    assert info.value.code.value == "invalid_request"
