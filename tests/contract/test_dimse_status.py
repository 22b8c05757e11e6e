"""The DIMSE status table (`contract/data/dimse-status-*.tsv`) says what pynetdicom's tables say.

Every backend describes a status through `dicom_hub.contract.dicom.network.status`; the Python
backend used to ask pynetdicom directly, so the table must give the same category and text for
every code of every service, including codes no table lists (their category by range).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from dicom_hub.contract.dicom.network.status import meaning, status_info
from pydicom import Dataset

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {
    "C-STORE": "STORAGE_SERVICE_CLASS_STATUS",
    "C-FIND": "QR_FIND_SERVICE_CLASS_STATUS",
    "C-MOVE": "QR_MOVE_SERVICE_CLASS_STATUS",
    "C-GET": "QR_GET_SERVICE_CLASS_STATUS",
    "worklist C-FIND": "MODALITY_WORKLIST_SERVICE_CLASS_STATUS",
    "C-ECHO": "GENERAL_STATUS",  # a service without a table of its own: the general one
}


@pytest.mark.parametrize("service", SERVICES)
def test_every_code_means_what_pynetdicom_says(service):
    from pynetdicom import status as tables

    table = {**tables.GENERAL_STATUS, **getattr(tables, SERVICES[service])}
    wrong = []
    for code in range(0x10000):
        expected = table.get(code, (tables.code_to_category(code), ""))
        if meaning(code, service) != tuple(expected):
            wrong.append((hex(code), expected, meaning(code, service)))
    assert not wrong, wrong[:5]


def test_status_info_describes_a_status_and_its_comment():
    status = Dataset()
    status.Status = 0xA700
    status.ErrorComment = "disk full"
    assert status_info(status, "C-STORE") == {"status": 0xA700, "status_hex": "0xA700", "category": "Failure", "text": "Refused: Out of Resources (disk full)"}
    assert status_info(None, "C-FIND")["category"] == "No response"
    assert status_info(Dataset(), "C-FIND")["status"] is None


def test_the_committed_table_is_the_generated_one():
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_status_table.py"), "--check"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
