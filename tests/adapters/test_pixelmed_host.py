"""The PixelMed host (one long-lived JVM for PixelMed's mains) against one JVM per request: same
answers, twice in one JVM (no state leaking between requests), System.exit and timeouts contained,
nothing but com.pixelmed classes run."""

from __future__ import annotations

import json
import threading
from functools import partial
from pathlib import Path

import pytest
from conftest import backend_request, expect_error, expect_ok, missing, require_backend, run_request
from dicom_hub.adapters.pixelmed import host
from dicom_hub.contract.errors import ErrorCode, HubError
from pydicom import dcmread

BACKEND = "pixelmed"
pm = partial(backend_request, BACKEND)


@pytest.fixture
def session():
    """The host JVM the adapter uses (the test fails, or skips locally, when it is not built)."""
    adapter = require_backend(BACKEND)
    if host.host_missing():
        missing(f"{host.host_missing()}; run scripts/install/50-pixelmed.sh")
    return host.session_for(adapter.tool("java"), adapter.classpath())


def host_pid(session) -> int | None:
    return session._proc.pid if session._proc is not None and session._proc.poll() is None else None


def raw(session, request: dict, timeout: float = 60):
    """A request straight to the host, as the adapter would send it."""
    return host.ask(session, ["java", "(test)"], request, timeout)


def mixed_requests(tmp_path: Path, tag: str) -> list[dict]:
    """One request per kind of PixelMed main the adapter runs, failures included."""
    document = tmp_path / f"{tag}-ct.json"
    notes = tmp_path / "notes.dcm"
    notes.write_text("not DICOM")
    return [
        pm("dump", "sample:rtplan.dcm"),
        pm("to_json", "sample:CT_small.dcm", document),
        pm("from_json", str(document), tmp_path / f"{tag}-rebuilt.dcm"),
        pm("info", "sample:MR_small.dcm"),
        pm("to_image", "sample:CT_small.dcm", tmp_path / f"{tag}-ct.png", window_center=40, window_width=400),
        pm("transcode", "sample:MR_small_RLE.dcm", tmp_path / f"{tag}-implicit.dcm", transfer_syntax="implicit"),
        pm("transcode", "sample:MR_small.dcm", tmp_path / f"{tag}-rle.dcm", transfer_syntax="rle"),
        pm("anonymize", "sample:MR_small.dcm", tmp_path / f"{tag}-anon.dcm"),
        pm("info", "sample:MR_truncated.dcm"),
        pm("to_json", str(notes)),
    ]


def summary(response: dict) -> dict:
    """What must not depend on how PixelMed was run (anonymize mints new UIDs each run)."""
    files = {}
    for name in response["output_files"]:
        path = Path(name)
        if path.suffix == ".dcm":
            ds = dcmread(path)
            if "anon" in path.name:  # new UIDs and a ContributionDateTime of now, each run
                for element in [*ds.iterall(), *ds.file_meta]:
                    if element.VR in ("UI", "DT") and not element.keyword.endswith(("ClassUID", "TransferSyntaxUID")):
                        element.value = "1.2.3" if element.VR == "UI" else "20000101"
            files[path.name.split("-", 1)[1]] = ds.to_json_dict(bulk_data_threshold=1 << 30)
        elif path.suffix == ".json":
            files[path.name.split("-", 1)[1]] = json.loads(path.read_text())
        else:
            files[path.name.split("-", 1)[1]] = path.read_bytes()
    return {"ok": response["ok"], "error": (response["error"] or {}).get("code"), "metadata": response["metadata"], "files": files}


def test_a_mix_of_ops_twice_in_one_jvm_answers_like_one_jvm_per_request(session, tmp_path, monkeypatch):
    first = [summary(run_request(r)) for r in mixed_requests(tmp_path, "a")]
    pid = host_pid(session)
    assert pid is not None, "the requests did not go through the host"
    again = [summary(run_request(r)) for r in mixed_requests(tmp_path, "b")]
    assert host_pid(session) == pid, "the host JVM was restarted during the mix"
    monkeypatch.setenv("DICOM_HUB_PIXELMED_HOST", "0")
    one_shot = [summary(run_request(r)) for r in mixed_requests(tmp_path, "c")]
    assert [s["ok"] for s in first] == [True] * 8 + [False, False]
    for index, (a, b, c) in enumerate(zip(first, again, one_shot, strict=True)):
        assert a == b, f"request {index}: the second run in the same JVM differs"
        assert a == c, f"request {index}: the host answers differently from one JVM per request"


def test_only_pixelmed_classes_run(session):
    for name in ("java.lang.Runtime", "com.pixelmedX.Evil", "com.pixelmed", "PixelmedHost", "com.pixelmed..dicom.AttributeList"):
        with pytest.raises(HubError) as err:
            raw(session, {"class": name, "args": []})
        assert err.value.code is ErrorCode.INTERNAL_ERROR and "refused" in err.value.message
    assert host.host_request(["java", "-cp", "x", "java.lang.Runtime"], "x") is None  # never sent at all
    run = raw(session, {"class": "com.pixelmed.NoSuchMain", "args": []})
    assert (run.returncode, run.stderr.strip()) == (1, "Error: Could not find or load main class com.pixelmed.NoSuchMain")


def test_system_exit_in_a_main_is_its_return_code_and_the_host_lives_on(session):
    answers = [raw(session, {"class": "com.pixelmed.convert.UnencapsulateData", "args": []}) for _ in range(2)]
    pid = host_pid(session)
    assert pid is not None
    for run in answers:  # UnencapsulateData prints its usage and calls System.exit(1)
        assert run.returncode == 1
        assert run.stderr == "Error: Incorrect number of arguments\nUsage: UnencapsulateData inputFile outputFile\n"
    expect_ok(pm("info", "sample:CT_small.dcm"))
    assert host_pid(session) == pid


@pytest.mark.network
def test_a_timeout_is_typed_and_the_next_request_gets_a_fresh_jvm(session, silent_peer):
    expect_ok(pm("info", "sample:CT_small.dcm"))
    pid = host_pid(session)
    data = expect_error(pm("echo", host="127.0.0.1", port=silent_peer, timeout=3), "timeout")
    assert "did not answer within 3 s" in data["error"]["message"]
    assert host_pid(session) is None, "the JVM that timed out must be gone"
    expect_ok(pm("info", "sample:CT_small.dcm"))
    assert host_pid(session) not in (None, pid)



def test_the_adapters_command_lines_become_host_requests():
    from dicom_hub.adapters.pixelmed.adapter import PixelMedAdapter

    adapter = PixelMedAdapter()
    classpath = adapter.classpath()
    validate = ["/usr/bin/java", *adapter.java("validate.DicomInstanceValidator", "/in/x.dcm", jvm_flags=("-Djdk.xml.xpathExprOpLimit=0",))[1:]]
    assert host.host_request(validate, classpath) == {"class": "com.pixelmed.validate.DicomInstanceValidator", "args": ["/in/x.dcm"]}
    unknown_flag = ["java", "-Xmx1g", "-cp", classpath, "com.pixelmed.dicom.AttributeList", "/in/x.dcm"]
    other_classpath = ["java", "-cp", "/elsewhere.jar", "com.pixelmed.dicom.AttributeList", "/in/x.dcm"]
    for args in (unknown_flag, other_classpath, ["java", "-version"]):
        assert host.host_request(args, classpath) is None  # run as before, one JVM for it


def test_without_a_built_host_one_jvm_per_request_unless_required(tmp_path, monkeypatch):
    require_backend(BACKEND)
    monkeypatch.setenv("DICOM_HUB_PIXELMED_BUILD", str(tmp_path / "not-built"))
    monkeypatch.setenv("DICOM_HUB_REQUIRE_BACKENDS", "1")
    data = expect_error(pm("info", "sample:CT_small.dcm"), "backend_unavailable")
    assert "not built" in data["error"]["message"] and "50-pixelmed.sh" in data["error"]["hint"]
    monkeypatch.setenv("DICOM_HUB_REQUIRE_BACKENDS", "0")
    reference = expect_ok({"op": "info", "backend": "python", "input": "sample:CT_small.dcm"})
    assert expect_ok(pm("info", "sample:CT_small.dcm"))["metadata"]["patient"] == reference["metadata"]["patient"]


def _info_in_a_forked_worker(_: int) -> tuple[bool, int | None]:
    from dicom_hub.adapters.dispatch import dispatch
    from dicom_hub.adapters.registry import get_adapter

    adapter = get_adapter(BACKEND)
    ok = dispatch({"op": "info", "backend": BACKEND, "input": "sample:CT_small.dcm"}).ok
    return ok, host_pid(host.session_for(adapter.tool("java"), adapter.classpath()))


def test_a_forked_worker_starts_its_own_jvm_and_leaves_the_parents_alone(session):
    import multiprocessing

    expect_ok(pm("info", "sample:CT_small.dcm"))
    parent = host_pid(session)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        ok, child = pool.map(_info_in_a_forked_worker, [0])[0]
    assert ok and child not in (None, parent)
    expect_ok(pm("info", "sample:MR_small.dcm"))
    assert host_pid(session) == parent


@pytest.mark.network
def test_a_jvm_that_dies_mid_request_is_a_backend_error_and_the_next_request_gets_a_fresh_jvm(session, silent_peer):
    import os
    import signal

    expect_ok(pm("info", "sample:CT_small.dcm"))
    pid = host_pid(session)
    killer = threading.Timer(1.5, os.kill, (pid, signal.SIGKILL))  # while the echo waits for the silent peer
    killer.start()
    try:
        data = expect_error(pm("echo", host="127.0.0.1", port=silent_peer, timeout=60), "backend_error")
    finally:
        killer.cancel()
    assert "ended without an answer" in data["error"]["message"]
    expect_ok(pm("info", "sample:CT_small.dcm"))
    assert host_pid(session) not in (None, pid)


def test_extra_host_jvm_flags_start_a_host_of_their_own(monkeypatch):
    plain = host.session_for("/usr/bin/java", "pixelmed.jar")
    monkeypatch.setenv("DICOM_HUB_PIXELMED_HOST_JVM_FLAGS", "-Xmx2g -XX:TieredStopAtLevel=1")
    tuned = host.session_for("/usr/bin/java", "pixelmed.jar")
    assert tuned is not plain
    assert tuned.argv[tuned.argv.index(host.SECURITY_MANAGER) + 1 : tuned.argv.index("-cp")] == ["-Xmx2g", "-XX:TieredStopAtLevel=1"]
    assert tuned.argv[-2:] == [host.HOST_CLASS, "--stream"]
