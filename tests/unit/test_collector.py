"""The local servers' garbage-collector policy (local/collector.py), in a process of its
own: after each full collection what survived is frozen, and a frozen cycle that became
garbage is freed by the next complete collection."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import gc, weakref
from chalicelib.local import collector

now = [0.0]
collector.freeze_survivors(complete_every_s=600, clock=lambda: now[0])

class Node:
    pass

cycle = Node()
cycle.itself = cycle
alive = weakref.ref(cycle)
gc.collect()
assert gc.get_freeze_count() > 0, "a full collection froze nothing"
frozen = gc.get_freeze_count()

del cycle
gc.collect()
assert alive() is not None, "a full collection walked what was frozen"
assert gc.get_freeze_count() >= frozen

now[0] = 600
gc.collect()
assert alive() is None, "the complete collection kept a frozen cycle"
print("ok")
"""


def test_full_collections_freeze_survivors_and_a_complete_one_frees_frozen_cycles():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
