"""Python's cyclic garbage collector, kept from stalling a server under load.

A full collection walks every object the process tracks while holding the GIL, so every
request in flight waits for it. In the API's process that was 150 ms (300,000 objects, most
of them modules, clients and botocore's service models, alive until the process ends); in
moto's it grew with the data it holds, past 250 ms within a minute of load. Under load one
came every few seconds in each process, and those stalls were most of the API's p99
(docs/reliability.md).

So after each full collection, what survived it is frozen (`gc.freeze`): the next full
collection walks only what came since (1 to 30 ms under the load bench). What was frozen
and later becomes garbage in a reference cycle (an exception and its traceback, say) waits
for the next complete collection, which unfreezes everything first: the first full
collection `COMPLETE_EVERY_S` after the last complete one.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable

COMPLETE_EVERY_S = 600.0

_installed = threading.Lock()


def freeze_survivors(
    complete_every_s: float = COMPLETE_EVERY_S, clock: Callable[[], float] = time.monotonic
) -> None:
    """Freeze what each full collection leaves, in this process (idempotent)."""
    if not _installed.acquire(blocking=False):
        return
    complete_at = [clock() + complete_every_s]

    def after_full(phase: str, info: dict) -> None:
        if info["generation"] != 2:
            return
        if phase == "start" and clock() >= complete_at[0]:
            gc.unfreeze()  # this one walks everything, and frees any cycle frozen since
            complete_at[0] = clock() + complete_every_s
        elif phase == "stop":
            gc.freeze()

    gc.callbacks.append(after_full)
