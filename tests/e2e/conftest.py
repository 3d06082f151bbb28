"""The real local stack for end-to-end tests: one per test session (per xdist worker)."""

from __future__ import annotations

import pytest

from tests.e2e import stack as local_stack_module

# Short bounded waits on the log stream, so a test sees several reconnects in seconds.
STACK_ENV = {"SHIPYARD_SSE_WAIT_S": "1", "SHIPYARD_SSE_RETRY_MS": "100"}


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory):
    started = local_stack_module.start(tmp_path_factory.mktemp("stack"), STACK_ENV)
    yield started
    local_stack_module.stop(started.process)
