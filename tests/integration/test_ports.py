"""Ports picked for the servers the stack starts (chalicelib/host/processes.py)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from chalicelib.host.processes import PROJECT_PORTS, free_port


def test_free_ports_are_bindable_and_outside_the_ephemeral_range():
    """A port picked for a server is not one an outgoing connection may take meanwhile."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(20):
        port = free_port()
        assert 1024 <= port < low
        assert not PROJECT_PORTS[0] <= port <= PROJECT_PORTS[1]  # a project may hold it
        with socket.socket() as sock:
            # As a server binds (create_server, http.server): a port whose last
            # connections are still in TIME_WAIT is free for it.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))


# The projects' ports of the local edge (chalicelib/runtimes/edge.py): its state directory
# alone, no Caddy is started for them.


def test_a_project_keeps_its_port_across_restarts_and_projects_never_share_one(tmp_path):
    from chalicelib.runtimes.edge import CaddyEdge

    edge = CaddyEdge(tmp_path)
    first, second = edge.reserve("prj_a"), edge.reserve("prj_b")
    assert first != second
    assert all(PROJECT_PORTS[0] <= port <= PROJECT_PORTS[1] for port in (first, second))
    assert edge.reserve("prj_a") == first

    restarted = CaddyEdge(tmp_path)
    assert restarted.reserve("prj_a") == first
    assert restarted.reserve("prj_b") == second


def drawing(module, monkeypatch, *ports: int) -> None:
    """The edge draws these ports, in turn, and finds each free to bind."""
    draws = iter(ports)
    monkeypatch.setattr(module.random, "randint", lambda low, high: next(draws))
    monkeypatch.setattr(module, "port_free", lambda port: True)


def test_two_edges_on_one_state_directory_never_hand_out_one_port_twice(tmp_path, monkeypatch):
    """The claim of a port is an exclusive file create, so a second process (here a second
    edge, drawing the same random ports) moves on to another port."""
    from chalicelib.runtimes import edge as module

    drawing(module, monkeypatch, 24_001, 24_001, 24_002)
    one, other = module.CaddyEdge(tmp_path), module.CaddyEdge(tmp_path)
    assert one.reserve("prj_a") == 24_001
    assert other.reserve("prj_b") == 24_002


def test_a_released_project_frees_its_port_and_only_its_own(tmp_path, monkeypatch):
    from chalicelib.runtimes import edge as module

    drawing(module, monkeypatch, 24_001, 24_001, 24_001, 24_002)
    edge = module.CaddyEdge(tmp_path)
    assert edge.reserve("prj_a") == 24_001
    edge.release("prj_a")
    assert edge.reserve("prj_b") == 24_001
    assert module.CaddyEdge(tmp_path).reserve("prj_b") == 24_001
    # A release run again (its project file gone, or naming a port now another's)
    # frees nothing of anyone else's
    edge.release("prj_a")
    (tmp_path / "edge" / "projects" / "prj_a").write_text("24001")
    edge.release("prj_a")
    assert edge.reserve("prj_c") == 24_002  # 24001 is still prj_b's


def test_a_create_stopped_between_its_claim_and_its_project_file_gets_that_port(
    tmp_path, monkeypatch
):
    from chalicelib.runtimes import edge as module

    (tmp_path / "edge" / "ports").mkdir(parents=True)
    (tmp_path / "edge" / "ports" / "24001").write_text("prj_a")
    drawing(module, monkeypatch, 24_001)
    assert module.CaddyEdge(tmp_path).reserve("prj_a") == 24_001


def test_only_project_ids_name_files(tmp_path):
    from chalicelib.runtimes.edge import CaddyEdge

    edge = CaddyEdge(tmp_path)
    for refused in ("../prj_a", "prj_../../x", "prj_a/b", "dep_a", ""):
        with pytest.raises(ValueError):
            edge.reserve(refused)
        with pytest.raises(ValueError):
            edge.release(refused)


def test_ports_kept_by_an_older_stack_in_one_file_are_kept(tmp_path, monkeypatch):
    import json

    from chalicelib.runtimes import edge as module

    (tmp_path / "edge").mkdir()
    (tmp_path / "edge" / "ports.json").write_text(json.dumps({"prj_a": 24_005, "prj_b": 24_007}))
    # One of them half-split already, by a start that stopped part-way
    (tmp_path / "edge" / "ports").mkdir()
    (tmp_path / "edge" / "ports" / "24007").write_text("prj_b")
    drawing(module, monkeypatch, 24_005, 24_007, 24_006)
    edge = module.CaddyEdge(tmp_path)
    assert edge.reserve("prj_a") == 24_005
    assert edge.reserve("prj_b") == 24_007
    assert not (tmp_path / "edge" / "ports.json").exists()
    assert edge.reserve("prj_c") == 24_006  # 24005 and 24007 are taken


def test_a_file_of_ports_that_cannot_be_read_is_left_for_a_person(tmp_path):
    from chalicelib.runtimes.edge import CaddyEdge

    (tmp_path / "edge").mkdir()
    (tmp_path / "edge" / "ports.json").write_text("{not json")
    CaddyEdge(tmp_path)
    assert (tmp_path / "edge" / "ports.json").read_text() == "{not json"
