"""moto's server for the local stack, with DynamoDB requests made as atomic as on AWS.

moto checks a write's condition and then applies the write, and applies a transaction
one operation at a time (rolling back by restoring a copy of whole tables), with no
lock: two requests running at once can both pass a condition only one of them should.
DynamoDB never allows that, and Shipyard's counters (active keys, quotas) and
idempotency records rely on it, so here each DynamoDB request runs alone.

    python -m chalicelib.local.moto_server -H 127.0.0.1 -p PORT
"""

from __future__ import annotations

import threading

from moto import server
from moto.dynamodb.responses import DynamoHandler

_lock = threading.Lock()


def serialise_dynamodb() -> None:
    original = DynamoHandler.call_action
    if getattr(original, "serialised", False):
        return

    def call_action(self):
        with _lock:
            return original(self)

    call_action.serialised = True
    DynamoHandler.call_action = call_action


if __name__ == "__main__":
    serialise_dynamodb()
    server.main()
