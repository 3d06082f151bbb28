"""After a change is committed: how one part of Shipyard reacts to another's change without
calling it.

A domain module publishes a fact (a frozen dataclass naming what changed) right after the
write that made it committed; the handlers subscribed to that kind of fact run then, in
the same process, in the order they were subscribed. The composition root
(pipeline/wiring.py) does all the subscribing, so the module that changes something never
imports the ones that react: dependencies keep running one way.

A handler that fails does not stop the others; the first failure is raised again once
they all ran, to whoever published (a queue consumer then fails its message, as it would
have without this seam). The durable record of committed changes, for events that must
never be lost, is the tables' change streams (docs/architecture.md).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from chalicelib.core.log import logger

_handlers: dict[type, list[Callable[[Any], None]]] = defaultdict(list)


def subscribe(kind: type, handler: Callable[[Any], None]) -> None:
    """Run `handler(fact)` after each committed fact of this kind (once per handler)."""
    if handler not in _handlers[kind]:
        _handlers[kind].append(handler)


def publish(fact: Any) -> None:
    failure: Exception | None = None
    for handler in list(_handlers[type(fact)]):
        try:
            handler(fact)
        except Exception as error:
            logger().exception(
                "A reaction failed",
                extra={"fact": type(fact).__name__, "handler": handler.__name__},
            )
            failure = failure or error
    if failure is not None:
        raise failure
