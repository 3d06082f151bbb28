"""schemathesis against the real local stack: every check, every phase (examples,
coverage, fuzzing, stateful), with a bounded number of cases per operation. The stack runs
the enterprise tier (no quota stops the fuzzer early) and keeps outbound connections on
loopback (SHIPYARD_OUTBOUND_LOOPBACK_ONLY), so nothing the fuzzer invents leaves the host.
The only hooks are the two of tests/fuzz/schemathesis_hooks.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import ROOT, start_stack, stop_stack

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
# Cases per operation and phase: enough for each phase to reach every operation, bounded
# so that the run takes a few minutes on two cores.
EXAMPLES = os.environ.get("SHIPYARD_FUZZ_EXAMPLES", "10")
SEED = os.environ.get("SHIPYARD_FUZZ_SEED", "1")


def test_schemathesis_finds_nothing(tmp_path):
    stack = start_stack(
        tmp_path,
        {
            "SHIPYARD_FIRST_TIER": "enterprise",
            "SHIPYARD_OUTBOUND_LOOPBACK_ONLY": "1",
            # An SSE response is held open this long for new lines; schemathesis takes an
            # answer slower than 10 s as a failure, so the streams answer sooner here.
            "SHIPYARD_SSE_WAIT_S": "2",
        },
    )
    try:
        run = subprocess.run(
            [
                str(SCHEMATHESIS),
                "run",
                f"{stack.url}/v1/openapi.json",
                "--header",
                f"Authorization: Bearer {stack.key}",
                "--checks",
                "all",
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--max-examples",
                EXAMPLES,
                "--seed",
                SEED,
                # One worker: Python 3.11.7's ast is not safe in two threads at once
                # ("AST constructor recursion depth mismatch"), and hypothesis parses
                # lambdas with it while schemathesis generates cases.
                "--workers",
                "1",
                "--request-timeout",
                "30",
                "--generation-database",
                "none",
                "--no-color",
            ],
            cwd=tmp_path,
            env={
                **os.environ,
                "SCHEMATHESIS_HOOKS": "tests.fuzz.schemathesis_hooks",
                "PYTHONPATH": str(ROOT),
            },
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        stop_stack(stack.process)
    report = run.stdout + run.stderr
    print(report[-3000:])
    assert run.returncode == 0, report[-20000:]
    # Each phase ran and passed (the examples phase has nothing to run: the document
    # carries no examples of its own).
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in report, report[-5000:]
