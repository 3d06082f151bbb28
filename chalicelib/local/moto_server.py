"""moto in server mode, with DynamoDB's atomicity.

DynamoDB applies each conditional write and each transaction atomically. moto checks a
condition and then writes without a lock, and rolls a failed transaction back by
restoring whole tables, so concurrent requests can both pass a condition or undo each
other's writes. Quotas and idempotency rest on that atomicity, so the local stack and the
tests run moto with its DynamoDB requests taken one at a time.

    python -m chalicelib.local.moto_server -H 127.0.0.1 -p PORT
"""

from __future__ import annotations

import sys
import threading

_lock = threading.RLock()


def serialise_dynamodb() -> None:
    """Make moto handle one DynamoDB request at a time (idempotent)."""
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.call_action
    if getattr(original, "serialised", False):
        return

    def call_action(self):
        with _lock:
            return original(self)

    call_action.serialised = True
    DynamoHandler.call_action = call_action


def main(argv: list[str] | None = None) -> None:
    from moto.server import main as moto_main

    serialise_dynamodb()
    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
