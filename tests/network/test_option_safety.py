"""Network option values can never be read as command-line options by the toolkits' SCUs: a host
beginning with '-' is refused by the schema on every network op, and valid AE titles beginning
with '-' reach a real SCP (`dicom-hub scp` on 127.0.0.1) intact through DCMTK and dicom-rs."""

from __future__ import annotations

import subprocess

import pytest
from conftest import expect_error, expect_ok, require_backend
from dicom_hub.contract.catalog import get_op
from dicom_hub.contract.job import Job
from factories import series

pytestmark = pytest.mark.network

NETWORK_OPS = ("echo", "store", "find", "move", "get", "worklist")


@pytest.mark.parametrize("host", ["--help", "-v", "-"])
@pytest.mark.parametrize("backend", ["python", "dcmtk", "dicom-rs", "pixelmed"])
def test_a_host_beginning_with_a_dash_is_refused_by_the_schema(host, backend):
    for op in NETWORK_OPS:
        options = {"host": host, "port": 104, **({"destination": "D"} if op == "move" else {}), **({"query": {"PatientID": "1"}} if op in ("move", "get") else {})}
        request = {"op": op, "backend": backend, "options": options}
        if op == "store":
            request["input"] = "sample:CT_small.dcm"
        if op == "get":
            request["output"] = "/tmp/never-written"
        data = expect_error(request, "invalid_request")
        assert "host" in data["error"]["message"]


@pytest.mark.parametrize(("calling", "called_ok"), [("-X", True), ("--help", True)])
def test_dcmtk_sends_ae_titles_beginning_with_a_dash_as_they_are(hub_scp_factory, calling, called_ok):
    require_backend("dcmtk")
    scp = hub_scp_factory(aet="-HUB")
    assert expect_ok({"op": "echo", "backend": "dcmtk", "options": {"host": scp.host, "port": scp.port, "called_aet": "-HUB", "calling_aet": calling}})["metadata"]["status"] == 0
    assert scp.stop() == 0
    assert f"association {calling}@127.0.0.1" in scp.log_text()


def test_dcmtk_store_with_a_dash_ae_title(hub_scp_factory, tmp_path):
    require_backend("dcmtk")
    scp = hub_scp_factory()
    files = series(tmp_path / "in", count=2)
    meta = expect_ok({"op": "store", "backend": "dcmtk", "input": [str(f) for f in files], "options": {"host": scp.host, "port": scp.port, "called_aet": scp.aet, "calling_aet": "-X"}})["metadata"]
    assert meta["completed"] == 2
    assert scp.stop() == 0
    assert "association -X@127.0.0.1" in scp.log_text() and "2 stored" in scp.log_text()


def rs_adapter():
    """The dicom-rs adapter; its SCU binaries are needed, not its whole tool set."""
    from dicom_hub.adapters.registry import get_adapter

    return get_adapter("dicom-rs")


def test_dicom_rs_commands_carry_dash_ae_titles_to_a_real_scp(hub_scp_factory, tmp_path):
    # The argument lists the adapter builds, run as they are (echo and store).
    from conftest import missing
    from dicom_hub.contract.errors import HubError

    adapter = rs_adapter()
    try:
        adapter.tool("dicom-echoscu"), adapter.tool("dicom-storescu")
    except HubError as err:
        missing(f"dicom-rs SCUs ({err.message})")
    scp = hub_scp_factory(aet="-HUB")
    options = {"host": scp.host, "port": scp.port, "called_aet": "-HUB", "calling_aet": "-X", "network_timeout": 10}
    echo = Job(op="echo", inputs=(), output=None, options=options, defaults=get_op("echo").defaults)
    run = subprocess.run(adapter.network_cmd(echo, None), capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr + run.stdout
    files = series(tmp_path / "in", count=2)
    store = Job(op="store", inputs=tuple(files), output=None, options={**options, "calling_aet": "--help"}, defaults=get_op("store").defaults)
    run = subprocess.run(adapter.network_cmd(store, None), capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr + run.stdout
    assert scp.stop() == 0
    log = scp.log_text()
    assert "association -X@127.0.0.1" in log and "1 echo" in log
    assert "association --help@127.0.0.1" in log and "2 stored" in log


def test_dicom_rs_echo_with_a_dash_ae_title_through_the_hub(hub_scp_factory):
    require_backend("dicom-rs")
    scp = hub_scp_factory(aet="-HUB")
    options = {"host": scp.host, "port": scp.port, "called_aet": "-HUB", "calling_aet": "-X"}
    assert expect_ok({"op": "echo", "backend": "dicom-rs", "options": options})["metadata"]["status"] == 0
    assert scp.stop() == 0
    assert "association -X@127.0.0.1" in scp.log_text()
