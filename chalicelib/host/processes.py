"""Processes and ports of this machine, in one place.

- Ports on 127.0.0.1: pick a free one, ask whether one can be bound, whether one accepts
  connections.
- Process groups (every child Shipyard starts gets its own session, so its whole group can
  be stopped): signal one, stop one (a first signal, a grace period, then SIGKILL), and tell
  from /proc whether a group still has live members and whether a pid is still the
  process that was started (not a reused pid).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path

LOCALHOST = "127.0.0.1"
HAS_PROC = Path("/proc/self/stat").exists()
_POLL_S = 0.05


# Ports.


# The ports handed to projects for their stable URLs (runtimes/edge.py): a project keeps
# its port while nothing listens on it (no deployment runs), so free_port never draws one.
PROJECT_PORTS = (20000, 29999)


def free_port() -> int:
    """A port of 127.0.0.1 that nothing is bound to now, for a server to bind next.

    It is drawn below the kernel's range of ephemeral ports: a port from that range (what
    binding port 0 gives) can be taken, before the server binds it, by any outgoing
    connection of this machine, which gets its local port from the same range. Nor is it
    one of PROJECT_PORTS."""
    ephemeral_low = _ephemeral_low()
    for _ in range(50 if ephemeral_low > 2048 else 0):
        port = random.randrange(max(1024, ephemeral_low - 16384), ephemeral_low)
        if PROJECT_PORTS[0] <= port <= PROJECT_PORTS[1]:
            continue
        if port_free(port):
            return port
    with socket.socket() as sock:
        sock.bind((LOCALHOST, 0))
        return sock.getsockname()[1]


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def port_free(port: int) -> bool:
    """Whether `port` of 127.0.0.1 can be bound now."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOCALHOST, port))
        except OSError:
            return False
        return True


def accepts(port: int, timeout_s: float = 0.5) -> bool:
    """Whether something listens on `port` of 127.0.0.1 and accepts a connection."""
    try:
        with socket.create_connection((LOCALHOST, port), timeout=timeout_s):
            return True
    except OSError:
        return False


# Process groups.


def signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to the process group; False if it is gone (or not ours to signal)."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def kill_group(pgid: int) -> None:
    """SIGKILL the process group, if it is still there."""
    signal_group(pgid, signal.SIGKILL)


def stop_process(
    process: subprocess.Popen,
    grace_s: float,
    sig: int = signal.SIGTERM,
    whole_group: bool = True,
) -> None:
    """Send `sig` to the process's group (or, whole_group=False, to the process alone), wait
    up to grace_s for the process to exit, then SIGKILL its group and reap it."""
    if whole_group:
        signal_group(process.pid, sig)
    else:
        process.send_signal(sig)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        kill_group(process.pid)
        process.wait()


def stop_group(
    pgid: int,
    grace_s: float,
    process: subprocess.Popen | None = None,
    kill_wait_s: float = 5.0,
) -> None:
    """SIGTERM the process group and wait up to grace_s until none of its processes is
    alive; then SIGKILL it and wait up to kill_wait_s. `process`, the group's leader when
    this process started it, is reaped on the way."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, kill_wait_s)):
        if not signal_group(pgid, sig):
            break
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if process is not None:
                process.poll()
            if not group_alive(pgid):
                return
            time.sleep(_POLL_S)
    if process is not None:
        process.poll()


def group_alive(pgid: int) -> bool:
    """Whether any process of the group is still alive (zombies waiting to be reaped are not)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not HAS_PROC:
        return True
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = proc_stat(int(entry.name))
            if stat is not None and stat[1] == pgid and not _exited(entry.name, stat[0]):
                return True
    return False


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, process group, start time in clock ticks) from /proc/<pid>/stat."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[2]), int(fields[19])


def start_ticks(pid: int) -> int | None:
    """When the process started, in clock ticks since boot (None without /proc): with its
    pid, it names one process even after the pid is reused."""
    stat = proc_stat(pid) if HAS_PROC else None
    return stat[2] if stat is not None else None


def leader_alive(pid: int, started: int | None) -> bool:
    """The process `pid` is alive, leads its own group, and is the one that started at
    `started` ticks (not a reused pid)."""
    if not HAS_PROC:
        try:
            return os.getpgid(pid) == pid
        except ProcessLookupError:
            return False
    stat = proc_stat(pid)
    return stat is not None and stat[0] != "Z" and stat[1] == pid and stat[2] == started


def group_still_ours(pid: int, pgid: int, started: int | None) -> bool:
    """Whether signalling group `pgid` can only reach the processes that `pid` (started at
    `started` ticks) started.

    While a process group exists its id is never handed out as a pid, so when the pid is
    free, whatever still carries that group id was started by the app."""
    stat = proc_stat(pid) if HAS_PROC else None
    if stat is None:
        return True
    return stat[1] == pgid and stat[2] == started


def _exited(pid: str, state: str) -> bool:
    """A zombie has exited once its last thread has: until then it still holds its sockets."""
    if state != "Z":
        return False
    try:
        return len(os.listdir(f"/proc/{pid}/task")) <= 1
    except OSError:
        return True
