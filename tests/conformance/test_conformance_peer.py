"""The conformance runner's network peer: started once per run when a spec names it, filled into
the spec's options, stopped at the end (also when it fails to start), and bad placeholders refused
when specs are loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dicom_hub.adapters.conformance import peers as peers_module
from dicom_hub.adapters.conformance.matrix import expected_document, run_matrix
from dicom_hub.adapters.conformance.peers import PeerError, Peers, placeholder_problems, substitute
from dicom_hub.adapters.conformance.runner import Cell
from dicom_hub.adapters.conformance.specs import load_specs
from peers import c_echo_ok, http_ok


def _spec_dir(tmp_path: Path, specs: list[dict]) -> Path:
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "extra.json").write_text(json.dumps(specs))
    return folder


ECHO = {
    "id": "zz.echo-peer",
    "peer": "hub-scp",
    "request": {"op": "echo", "options": {"host": "{peer.host}", "port": "{peer.port}", "called_aet": "{peer.aet}"}},
    "expect": [{"check": "metadata_equals", "path": "status", "value": 0}],
}


def _run_recording_peer(tmp_path: Path, starter: str, specs, check) -> tuple[list, list]:
    """Run `specs` on python with `peers_module.<starter>` wrapped: every peer it starts is recorded
    and `check`ed while up (a peer failing the check is stopped here: the runner never got it)."""
    started: list = []
    real_start = getattr(peers_module, starter)

    def recording_start(root: Path):
        peer = real_start(root)
        started.append(peer)
        try:
            check(peer, root)
        except AssertionError:
            peer.stop()
            raise
        return peer

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(peers_module, starter, recording_start)
        cells, _ = run_matrix(specs, ["python"], tmp_path, jobs=2)
    return cells, started


def test_one_peer_per_run_serves_the_preloaded_instances_and_is_stopped_at_the_end(tmp_path: Path) -> None:
    def up(peer, root: Path) -> None:
        assert c_echo_ok(peer.host, peer.port, peer.aet)  # up while the cells run

    specs = load_specs("network.find-study-by-*")
    assert len(specs) == 2
    cells, started = _run_recording_peer(tmp_path, "start_hub_scp_peer", specs, up)
    assert [c.status for c in cells] == ["pass", "pass"], [c.detail for c in cells]
    assert len(started) == 1, "the peer is started once per run, not per cell"
    peer = started[0]
    assert peer.host == "127.0.0.1"
    assert all(proc.poll() is not None for proc in peer.procs), "every peer process is stopped"
    assert not c_echo_ok(peer.host, peer.port, peer.aet)


def test_the_tls_peer_speaks_only_tls_with_a_ca_made_for_the_run_and_is_stopped_at_the_end(tmp_path: Path) -> None:
    def tls_only(peer, root: Path) -> None:
        assert Path(peer.tls_ca_file).is_relative_to(root), "the CA is made in the peer's own folder"
        assert not c_echo_ok(peer.host, peer.port, peer.aet), "a plain-text association must not be served"

    specs = load_specs("network-tls.*")
    assert {s.id for s in specs} >= {"network-tls.echo", "network-tls.echo-untrusted-ca", "network-tls.store", "network-tls.find-study-by-uid"}
    cells, started = _run_recording_peer(tmp_path, "start_hub_scp_tls_peer", specs, tls_only)
    assert all(c.status == "pass" for c in cells), [(c.spec, c.status, c.detail) for c in cells]
    assert len(started) == 1, "the peer is started once per run, not per cell"
    assert all(proc.poll() is not None for proc in started[0].procs), "every peer process is stopped"
    assert not Path(started[0].tls_ca_file).exists(), "the throw-away CA is removed with the run's folder"


def test_the_orthanc_web_peer_is_loaded_reached_with_its_credentials_and_stopped_at_the_end(tmp_path: Path) -> None:
    def own_credentials_only(peer, root: Path) -> None:
        user, password = Path(peer.auth_file).read_text().strip().split(":", 1)
        assert http_ok(f"{peer.url}/studies", user, password)
        assert not http_ok(f"{peer.url}/studies", user, "wrong"), "the peer must refuse other credentials"

    specs = load_specs("network-web.*")
    assert {s.id for s in specs} == {"network-web.qido-study-by-uid", "network-web.wado-study", "network-web.stow"}
    cells, started = _run_recording_peer(tmp_path, "start_orthanc_web_peer", specs, own_credentials_only)
    assert all(c.status == "pass" for c in cells), [(c.spec, c.status, c.detail) for c in cells]
    assert len(started) == 1, "the peer is started once per run, not per cell"
    assert all(proc.poll() is not None for proc in started[0].procs), "Orthanc is stopped"
    assert not Path(started[0].auth_file).exists(), "the credentials are removed with the run's folder"


def test_a_peer_that_cannot_start_gives_error_cells_and_no_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(peers_module, "hub_scp_command", lambda *a, **k: ["false"])
    monkeypatch.setattr(peers_module, "START_TIMEOUT_S", 5.0)
    specs = load_specs("zz.*", (_spec_dir(tmp_path, [ECHO]),))
    cells, _ = run_matrix(specs, ["python", "dcmtk"], tmp_path / "work")
    assert [c.status for c in cells] == ["error", "error"]
    assert all("did not start" in c.detail for c in cells)


def test_placeholders_are_filled_in_with_the_port_as_a_number() -> None:
    peer = peers_module.HubScpPeer("hub-scp", "127.0.0.1", 11112, "HUBSCP", Path("/nonexistent"), move_destination="DEST")
    options = {"host": "{peer.host}", "port": "{peer.port}", "destination": "{peer.move_destination}", "level": "STUDY", "note": "x{peer.host}"}
    assert substitute(options, peer) == {"host": "127.0.0.1", "port": 11112, "destination": "DEST", "level": "STUDY", "note": "x{peer.host}"}


def test_bad_placeholders_are_refused_when_specs_load(tmp_path: Path) -> None:
    assert placeholder_problems({"host": "{peer.hots}"}, "hub-scp") == [
        "option host: unknown placeholder {peer.hots} for peer hub-scp; known: {peer.host}, {peer.port}, {peer.aet}, {peer.move_destination}"
    ]
    assert "unknown placeholder {peer.tls_ca_file} for peer hub-scp;" in placeholder_problems({"tls_ca_file": "{peer.tls_ca_file}"}, "hub-scp")[0]
    assert "names no peer" in placeholder_problems({"port": "{peer.port}"}, None)[0]
    no_peer = {key: value for key, value in ECHO.items() if key != "peer"}
    with pytest.raises(ValueError, match="names no peer"):
        load_specs("zz.*", (_spec_dir(tmp_path, [no_peer]),))


def test_an_unknown_peer_name_is_a_peer_error() -> None:
    with pytest.raises(PeerError, match="unknown peer"):
        Peers().get("orthanc")


def test_update_expect_keeps_the_records_of_cells_not_run() -> None:
    previous = {"file.a": {"gdcm": "unsupported"}, "network.echo": {"gdcm": "unsupported", "pixelmed": "fail"}}
    cells = [Cell("network.echo", "pixelmed", "pass"), Cell("network.echo", "csharp", "unsupported"), Cell("network.echo", "dcmtk", "unavailable")]
    assert expected_document(cells, previous)["cells"] == {"file.a": {"gdcm": "unsupported"}, "network.echo": {"csharp": "unsupported", "gdcm": "unsupported"}}
