"""Ports picked for the servers the stack starts (chalicelib/host/processes.py)."""

from __future__ import annotations

import socket
from pathlib import Path

from chalicelib.host.processes import free_port


def test_free_ports_are_bindable_and_outside_the_ephemeral_range():
    """A port picked for a server is not one an outgoing connection may take meanwhile."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(20):
        port = free_port()
        assert 1024 <= port < low
        with socket.socket() as sock:
            # As a server binds (create_server, http.server): a port whose last
            # connections are still in TIME_WAIT is free for it.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))


# The projects' ports of the local edge (chalicelib/runtimes/edge.py): its state directory
# alone, no Caddy is started for them.


def test_a_project_keeps_its_port_across_restarts_and_projects_never_share_one(tmp_path):
    from chalicelib.runtimes.edge import PORT_RANGE, CaddyEdge

    edge = CaddyEdge(tmp_path)
    first, second = edge.reserve("prj_a"), edge.reserve("prj_b")
    assert first != second
    assert all(PORT_RANGE[0] <= port <= PORT_RANGE[1] for port in (first, second))
    assert edge.reserve("prj_a") == first

    restarted = CaddyEdge(tmp_path)
    assert restarted.reserve("prj_a") == first
    assert restarted.reserve("prj_b") == second


def test_two_edges_on_one_state_directory_never_hand_out_one_port_twice(tmp_path, monkeypatch):
    """The claim of a port is an exclusive file create, so a second process (here a second
    edge, drawing the same random ports) moves on to another port."""
    from chalicelib.runtimes import edge as module

    draws = iter([24_001, 24_001, 24_002])
    monkeypatch.setattr(module.random, "randint", lambda low, high: next(draws))
    one, other = module.CaddyEdge(tmp_path), module.CaddyEdge(tmp_path)
    assert one.reserve("prj_a") == 24_001
    assert other.reserve("prj_b") == 24_002


def test_a_released_project_frees_its_port(tmp_path, monkeypatch):
    from chalicelib.runtimes import edge as module

    draws = iter([24_001, 24_001])
    monkeypatch.setattr(module.random, "randint", lambda low, high: next(draws))
    edge = module.CaddyEdge(tmp_path)
    assert edge.reserve("prj_a") == 24_001
    edge.release("prj_a")
    assert edge.reserve("prj_b") == 24_001
    assert module.CaddyEdge(tmp_path).reserve("prj_b") == 24_001


def test_ports_kept_by_an_older_stack_in_one_file_are_kept(tmp_path):
    import json

    from chalicelib.runtimes.edge import CaddyEdge

    (tmp_path / "edge").mkdir()
    (tmp_path / "edge" / "ports.json").write_text(json.dumps({"prj_a": 24_005}))
    edge = CaddyEdge(tmp_path)
    assert edge.reserve("prj_a") == 24_005
    assert not (tmp_path / "edge" / "ports.json").exists()
    assert edge.reserve("prj_b") != 24_005
