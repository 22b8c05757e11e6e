"""`worklist` against DCMTK's wlmscpfs serving three scheduled steps (see peers.sample_worklist)."""

from __future__ import annotations

import pytest
from conftest import expect_ok
from peers import WORKLIST_DATES

pytestmark = pytest.mark.network


def worklist(peer, **options) -> list[dict]:
    data = expect_ok({"op": "worklist", "options": {"host": peer.host, "port": peer.port, "called_aet": peer.aet, **options}})
    assert data["metadata"]["count"] == len(data["metadata"]["results"])
    return data["metadata"]["results"]


def patient_ids(results: list[dict]) -> list[str]:
    return sorted(r["00100020"]["Value"][0] for r in results)


def expected(peer, keep) -> list[str]:
    return sorted(item.PatientID for item in peer.items if keep(item, item.ScheduledProcedureStepSequence[0]))


def test_all_items_with_the_usual_keys(wlmscpfs):
    results = worklist(wlmscpfs)
    assert patient_ids(results) == expected(wlmscpfs, lambda item, step: True)
    step = next(r for r in results if r["00100020"]["Value"][0] == "WL002")["00400100"]["Value"][0]
    assert step["00080060"]["Value"] == ["MR"]  # Modality
    assert step["00400001"]["Value"] == ["MR01"]  # Scheduled Station AE Title
    assert step["00400002"]["Value"] == [WORKLIST_DATES["today"]]


@pytest.mark.parametrize(
    ("options", "keep"),
    [
        ({"modality": "CT"}, lambda item, step: step.Modality == "CT"),
        ({"station_aet": "MR01"}, lambda item, step: step.ScheduledStationAETitle == "MR01"),
        ({"date": "today", "modality": "CT"}, lambda item, step: step.Modality == "CT" and step.ScheduledProcedureStepStartDate == WORKLIST_DATES["today"]),
        ({"date": f"{WORKLIST_DATES['tomorrow']}-"}, lambda item, step: step.ScheduledProcedureStepStartDate >= WORKLIST_DATES["tomorrow"]),
        ({"patient_name": "Beta*"}, lambda item, step: str(item.PatientName).startswith("Beta")),
        ({"query": {"ScheduledProcedureStepSequence": {"Modality": "MR"}}}, lambda item, step: step.Modality == "MR"),
        ({"query": {"AccessionNumber": "ACCWL003"}}, lambda item, step: item.AccessionNumber == "ACCWL003"),
    ],
    ids=["modality", "station", "today-and-modality", "date-range", "patient-name", "raw-step-query", "raw-top-query"],
)
def test_matching_keys(wlmscpfs, options, keep):
    assert patient_ids(worklist(wlmscpfs, **options)) == expected(wlmscpfs, keep)


def test_max_results_cancels_the_rest(wlmscpfs):
    assert len(worklist(wlmscpfs, max_results=1)) == 1


def test_orthanc_worklist_plugin(orthanc):
    from peers import worklist_item, write_worklist

    if orthanc.worklist_dir is None:
        pytest.fail("the Orthanc package ships no ModalityWorklists plugin")
    item = worklist_item("Delta^Dee", "WLORTHANC", "US", "US01", WORKLIST_DATES["today"], "120000", "US abdomen")
    write_worklist(orthanc.worklist_dir, [item])
    results = worklist(orthanc, station_aet="US01")
    assert patient_ids(results) == ["WLORTHANC"]
    assert results[0]["00400100"]["Value"][0]["00400007"]["Value"] == ["US abdomen"]
