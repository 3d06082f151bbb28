"""The supervisor's loop in the local stack: pipeline/supervisor.py's tick, every
`supervisor_tick_s`, on a thread of its own until the stack stops."""

from __future__ import annotations

import threading

from chalicelib.core.log import logger
from chalicelib.core.settings import get_settings
from chalicelib.pipeline.supervisor import Supervisor


class SupervisorLoop:
    def __init__(self) -> None:
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def _run(self) -> None:
        supervisor = Supervisor()
        interval = get_settings().supervisor_tick_s
        while not self._stopping.wait(interval):
            try:
                supervisor.tick()
            except Exception:
                # moto unreachable for a moment, say: the next tick tries again.
                logger().exception("A supervisor tick failed")
