"""Waiting for something the stack does in the background, with a deadline."""

from __future__ import annotations

import time


def eventually(check, timeout_s: float = 30, what: str = "it"):
    """The first truthy result of `check()`, polled every 0.1 s; fails after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"{what} did not happen in {timeout_s} s"
        time.sleep(0.1)
