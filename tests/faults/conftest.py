"""The fault tier's fixtures: a moto server behind a fault-injecting proxy (proxy.py), one
local stack on it per xdist worker that the tests kill and start again, and the record of
each fault's outcomes that the run prints as a table (tests/conftest.py)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import Stack, external_moto, start_stack, stop_stack
from tests.faults.proxy import FaultProxy

# Short AWS timeouts, so that a stalled moto answers 503 within seconds; a short
# Idempotency-Key lease, so that a request killed by the fault lets its key go soon.
FAULT_ENV = {
    "SHIPYARD_AWS_CONNECT_TIMEOUT_S": "1",
    "SHIPYARD_AWS_READ_TIMEOUT_S": "2",
    "SHIPYARD_AWS_MAX_ATTEMPTS": "2",
    "SHIPYARD_IDEMPOTENCY_LEASE_S": "3",
    "SHIPYARD_DRAIN_GRACE_S": "0.5",
    "SHIPYARD_SSE_WAIT_S": "2",
}


@dataclass
class FaultStack:
    """The local stack on a moto it does not own, reached through the proxy."""

    tmp_path: Path
    env: dict
    proxy: FaultProxy
    stack: Stack

    def kill(self) -> None:
        """SIGKILL the stack's whole process group, as a crash or an OOM kill would. What it
        started in sessions of their own (apps, the edge) is left to the next stack."""
        os.killpg(self.stack.process.pid, signal.SIGKILL)
        self.stack.process.wait(30)

    def restart(self) -> Stack:
        self.stack = start_stack(self.tmp_path, self.env)
        return self.stack


@pytest.fixture(scope="package")
def fault_stack(tmp_path_factory) -> Iterator[FaultStack]:
    # Package scope: the stack and its proxy stop once the fault tier's tests are done, not
    # at the end of the session. Left running, the stack kept calling AWS through the
    # proxy while later tests ran in the same worker: the unit tests' network guard
    # refused the proxy's calls, and the tracebacks it printed (which parse source, in
    # Python 3.11, with the ast module's shared state) broke a unit test's ast.parse.
    with external_moto() as moto_port:
        proxy = FaultProxy(moto_port).start()
        tmp_path = tmp_path_factory.mktemp("fault-stack")
        env = {**FAULT_ENV, "SHIPYARD_MOTO_PORT": str(proxy.port)}
        running = FaultStack(tmp_path, env, proxy, start_stack(tmp_path, env))
        try:
            yield running
        finally:
            proxy.clear()
            if running.stack.process.poll() is not None:
                # Killed by a test that then failed: a stack started again stops what the
                # killed one left running (apps, the edge) on its way out.
                running.restart()
            stop_stack(running.stack.process)
            proxy.close()


@pytest.fixture
def record(request):
    """record(fault, outcome): one row of the run's fault table (per xdist worker, carried
    to the controller on the test's report)."""

    def add(fault: str, outcome: str) -> None:
        request.node.user_properties.append(("fault", (fault, outcome)))

    return add
