"""moto in server mode, with DynamoDB's atomicity, and fast enough to serve a load.

DynamoDB applies each conditional write and each transaction atomically. moto checks a
condition and then writes without a lock, and rolls a failed transaction back by
restoring whole tables, so concurrent requests can both pass a condition or undo each
other's writes. Quotas and idempotency rest on that atomicity, so the local stack and the
tests run moto with its DynamoDB requests taken one at a time.

Three changes make it answer at a speed closer to what it stands in for:
- a Query on a table's key reads its partition, in key order, from where the key
  condition and the start key put it, and no further than its Limit, as DynamoDB does
  (moto walks and sorts every item of the table for each Query);
- responses leave on `TCP_NODELAY` sockets: werkzeug writes headers and body separately,
  and Nagle's algorithm held the body back for the client's delayed ACK (about 40 ms
  per call on a keep-alive connection);
- no log line per request.

    python -m chalicelib.local.moto_server -H 127.0.0.1 -p PORT
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import socket
import sys
import threading
from typing import Any

_lock = threading.RLock()
_versions = itertools.count(1)  # a table's version: a new one at each of its changes
_cut = threading.local()  # the items a Query of this thread runs on, with their table


def patch() -> None:
    """Everything below, for a moto server in this process (idempotent)."""
    serialise_dynamodb()
    query_partitions()
    quick_responses()


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


# Which keys a key condition keeps, as bisect bounds over the partition's sorted keys.
_LOWER = {"GT": bisect.bisect_right, ">": bisect.bisect_right}
_LOWER |= {"GE": bisect.bisect_left, ">=": bisect.bisect_left}
_UPPER = {"LT": bisect.bisect_left, "<": bisect.bisect_left}
_UPPER |= {"LE": bisect.bisect_right, "<=": bisect.bisect_right}


def _key_range(keys: list, comparison: str | None, values: list) -> tuple[int, int] | None:
    """(lo, hi) of the keys a range condition keeps; None for one bisect can't answer."""
    lo, hi = 0, len(keys)
    if comparison is None:
        return lo, hi
    if comparison in _LOWER:
        return _LOWER[comparison](keys, values[0]), hi
    if comparison in _UPPER:
        return lo, _UPPER[comparison](keys, values[0])
    if comparison in ("EQ", "="):
        return bisect.bisect_left(keys, values[0]), bisect.bisect_right(keys, values[0])
    if comparison == "BETWEEN":
        return bisect.bisect_left(keys, values[0]), bisect.bisect_right(keys, values[1])
    return None


def query_partitions() -> None:
    """Make a Query on a table's own key read only what DynamoDB would (idempotent).

    Each partition's items are kept sorted by range key, remade when the table changes
    (a put or delete bumps its version; a transaction's rollback replaces the partitions);
    the key condition, the start key and the Limit cut that list with bisect, and moto's
    own Query runs on the cut, which is already in order. Index queries, legacy filters and
    multi-attribute keys go to moto unchanged.
    """
    from moto.dynamodb.exceptions import MockValidationException
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    original = Table.query
    if getattr(original, "by_partition", False):
        return

    def changes(method):
        def changed(self, *args, **kwargs):
            self.__dict__["_shipyard_version"] = next(_versions)
            return method(self, *args, **kwargs)

        return changed

    Table.put_item = changes(Table.put_item)
    Table.delete_item = changes(Table.delete_item)
    every_item = Table.all_items

    def all_items(self):
        cut = getattr(_cut, "items", None)
        return cut[1] if cut is not None and cut[0] is self else every_item(self)

    Table.all_items = all_items

    def sorted_partition(table: Any, hash_key: Any) -> tuple[list, list]:
        partition = table.items.get(hash_key)
        if not partition:
            return [], []
        version = table.__dict__.get("_shipyard_version", 0)
        cache = table.__dict__.setdefault("_shipyard_sorted", {})
        known = cache.get(hash_key)
        if known is not None and known[0] is partition and known[1] == version:
            return known[2], known[3]
        pairs = sorted(
            ((item.range_key.cast_value, item) for item in partition.values()),
            key=lambda pair: pair[0],
        )
        keys, items = [pair[0] for pair in pairs], [pair[1] for pair in pairs]
        cache[hash_key] = (partition, version, keys, items)
        return keys, items

    def query(
        self,
        hash_key,
        range_comparison,
        range_objs,
        limit,
        exclusive_start_key,
        scan_index_forward,
        projection_expressions,
        index_name=None,
        consistent_read=False,
        filter_expression=None,
        hash_key_conditions=None,
        range_key_conditions=None,
        **filter_kwargs,
    ):
        unchanged = (
            index_name
            or not self.range_key_attr
            or filter_kwargs
            or (range_key_conditions and len(range_key_conditions) > 1)
        )
        bounds = None
        if not unchanged:
            keys, items = sorted_partition(self, hash_key)
            values = [obj.cast_value for obj in range_objs or []]
            try:
                bounds = _key_range(keys, range_comparison, values)
            except TypeError:  # moto would fail the same comparison with a 500
                raise MockValidationException(
                    "One or more parameter values were invalid: "
                    "Condition parameter type does not match schema type"
                ) from None
        if bounds is None:
            return original(
                self,
                hash_key,
                range_comparison,
                range_objs,
                limit,
                exclusive_start_key,
                scan_index_forward,
                projection_expressions,
                index_name=index_name,
                consistent_read=consistent_read,
                filter_expression=filter_expression,
                hash_key_conditions=hash_key_conditions,
                range_key_conditions=range_key_conditions,
                **filter_kwargs,
            )
        lo, hi = bounds
        if exclusive_start_key is not None:
            start = DynamoType(exclusive_start_key.get(self.range_key_attr) or {"NULL": True})
            start = start.cast_value
            if scan_index_forward is False:
                hi = min(hi, bisect.bisect_left(keys, start))
            else:
                lo = max(lo, bisect.bisect_right(keys, start))
        if limit:
            # One more than the Limit, so moto's Query sees that there is a next page.
            if scan_index_forward is False:
                lo = max(lo, hi - limit - 1)
            else:
                hi = min(hi, lo + limit + 1)
        _cut.items = (self, items[lo:hi])
        try:
            return original(
                self,
                hash_key,
                None,
                [],
                limit,
                None,
                scan_index_forward,
                projection_expressions,
                consistent_read=consistent_read,
                filter_expression=filter_expression,
            )
        finally:
            _cut.items = None

    query.by_partition = True
    Table.query = query


def quick_responses() -> None:
    """`TCP_NODELAY` on every connection, and no log line per request (idempotent)."""
    from werkzeug.serving import WSGIRequestHandler

    if getattr(WSGIRequestHandler.setup, "nodelay", False):
        return
    original = WSGIRequestHandler.setup

    def setup(self):
        original(self)
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    setup.nodelay = True
    WSGIRequestHandler.setup = setup
    WSGIRequestHandler.log_request = lambda self, code="-", size="-": None


def main(argv: list[str] | None = None) -> None:
    from moto.server import main as moto_main

    patch()
    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
