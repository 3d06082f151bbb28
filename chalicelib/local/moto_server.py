"""moto in server mode, with DynamoDB's atomicity, and fast enough to serve a load.

DynamoDB applies each conditional write and each transaction atomically. moto checks a
condition and then writes without a lock, and rolls a failed transaction back by
restoring whole tables, so concurrent requests can both pass a condition or undo each
other's writes. Quotas and idempotency rest on that atomicity, so the local stack and the
tests run moto with its DynamoDB requests taken one at a time.

Other changes make it answer at a speed closer to what it stands in for:
- it is served by local/wsgi_server.py, not werkzeug's development server: werkzeug closes
  the connection after every response, so each AWS call cost a TCP connection and a thread
  (and a wait for the client to close); this one keeps connections alive, runs each
  request on the thread that read it, writes each response at once (`TCP_NODELAY`) and
  logs no line per request;
- a Query on a table's key reads its partition, in key order, from where the key
  condition and the start key put it, and no further than its Limit, as DynamoDB does
  (moto walks and sorts every item of the table for each Query);
- a transaction notes the items it touches to undo them, instead of deep-copying its
  tables;
- requests are routed without listing moto's package directory, and item results that are
  plain JSON are sent as they are;
- what each full garbage collection leaves is frozen (local/collector.py), so a collection
  walks what came since, not all of moto's data.

    python -m chalicelib.local.moto_server -H 127.0.0.1 -p PORT
"""

from __future__ import annotations

import argparse
import bisect
import inspect
import itertools
import json
import logging
import os
import signal
import sys
import threading
from typing import Any

from chalicelib.local import collector

_lock = threading.RLock()
_versions = itertools.count(1)  # a partition's version: a new one at each of its changes
_cut = threading.local()  # the items a Query of this thread runs on, with their table


def patch() -> None:
    """DynamoDB's atomicity, Query and transactions, and quicker answers, for a moto in
    this process (idempotent)."""
    serialise_dynamodb()
    query_partitions()
    uncopied_results()
    undo_logged_transactions()
    quick_answers()


def changed(table: Any, hash_key: Any) -> None:
    """Note a change to one partition of `table` (None: to any of them)."""
    versions = table.__dict__.setdefault("_shipyard_versions", {})
    versions[hash_key] = next(_versions)


def version_of(table: Any, hash_key: Any) -> tuple[int, int]:
    versions = table.__dict__.get("_shipyard_versions", {})
    return versions.get(None, 0), versions.get(hash_key, 0)


def undo_logged_transactions() -> None:
    """A transaction keeps what it touches to undo it, not a copy of its tables
    (idempotent).

    moto deep-copies every table a TransactWriteItems names, every time, to restore it if
    the transaction fails: a cost that grows with the table (most of a project create's
    time once a workspace has a few thousand items). Here moto's own transaction runs with
    that copy skipped, after the items it names (as they were) and the length of each
    table's stream are noted; if it fails, those items are put back and the stream
    records it added are dropped, which is what restoring the copy did.
    """
    import copy
    import types

    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    original = models.DynamoDBBackend.transact_write_items
    if getattr(original, "undo_logged", False):
        return
    models.copy = types.SimpleNamespace(
        deepcopy=lambda value, memo=None: (
            value if isinstance(value, Table) else copy.deepcopy(value, memo)
        ),
        copy=copy.copy,
    )

    def key_of(table: Any, op_type: str, op: dict) -> tuple[Any, Any]:
        key = op["Item"] if op_type == "Put" else op["Key"]
        hash_value = DynamoType(key[table.hash_key_attr])
        if table.range_key_attr is None:
            return hash_value, None
        return hash_value, DynamoType(key[table.range_key_attr])

    def transact_write_items(self, transact_items):
        touched: dict[tuple, tuple] = {}
        streams: dict[str, tuple] = {}
        for entry in transact_items:
            op_type, op = next(iter(entry.items()))
            table = self.tables.get(op.get("TableName")) if isinstance(op, dict) else None
            if table is None:
                continue
            if table.stream_shard is not None:
                streams.setdefault(table.name, (table, len(table.stream_shard.items)))
            try:
                hash_value, range_value = key_of(table, op_type, op)
            except (KeyError, TypeError):
                continue  # moto refuses it before writing anything
            before = table.items.get(hash_value)
            if range_value is not None:
                before = before.get(range_value) if before else None
            touched.setdefault(
                (table.name, hash_value, range_value),
                (table, copy.deepcopy(before) if before is not None else None),
            )
        try:
            return original(self, transact_items)
        except Exception:
            for (_, hash_value, range_value), (table, before) in touched.items():
                if range_value is None:
                    if before is None:
                        table.items.pop(hash_value, None)
                    else:
                        table.items[hash_value] = before
                elif before is None:
                    table.items.get(hash_value, {}).pop(range_value, None)
                else:
                    table.items[hash_value][range_value] = before
                changed(table, hash_value)
            for table, length in streams.values():
                del table.stream_shard.items[length:]
            raise

    transact_write_items.undo_logged = True
    models.DynamoDBBackend.transact_write_items = transact_write_items


# The DynamoDB operations that answer with a DynamoResult (their items in wire form).
_ITEM_OPERATIONS = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "TransactGetItems",
    }
)


def _refuse(value: Any) -> Any:
    raise TypeError(type(value).__name__)


def _epoch(value: Any) -> Any:
    """A stream record's time as moto's serializer writes it for the JSON protocol: Unix
    seconds, to the millisecond."""
    import calendar
    import datetime

    if not isinstance(value, datetime.datetime):
        return _refuse(value)
    seconds = calendar.timegm(value.utctimetuple())
    return seconds + (value.microsecond // 1000) / 1000.0 if value.microsecond else seconds


def _as_json(value: Any, default: Any = _refuse) -> str | None:
    """`value` as JSON text if it is JSON as it stands: no None, bytes, dates, sets or
    other objects (those go through moto's serializer, which knows their shapes), except
    what `default` writes."""
    try:
        text = json.dumps(value, default=default, allow_nan=False)
    except (TypeError, ValueError):
        return None
    # A None takes moto's way (its serializer leaves it out); a string that holds "null"
    # (a stored JSON document, say) does not.
    return None if "null" in text and _holds_none(value) else text


def _holds_none(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(_holds_none(each) for each in value.values())
    if isinstance(value, list):
        return any(_holds_none(each) for each in value)
    return False


def quick_answers() -> None:
    """Costs moto pays on every request, cut (idempotent):
    - it lists its own package directory (200-odd `isdir` calls) to route each request;
    - it lists a handler class's methods (`inspect.getmembers`) to find the action's;
    - it draws a request id one random character at a time, and searches every body,
      JSON ones too, for an XML `<RequestId>` to put it in;
    - its Flask apps run in debug mode, which wraps each request's form data;
    - it serializes DynamoDB's item results, and DynamoDB Streams' records, by walking
      botocore's output shape, attribute by attribute, where they are already the JSON to
      send: those that are plain JSON (and a record's time) go out as they are.
    """
    import base64
    import functools
    import re

    from moto import backends
    from moto.core import responses
    from moto.dynamodb.responses import DynamoResult
    from moto.moto_server import werkzeug_app

    if getattr(DynamoResult.execute_result, "quick", False):
        return
    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules
    responses.method_names_from_class = functools.cache(responses.method_names_from_class)

    def request_id(headers: dict) -> str:
        # 52 characters of A-Z and 2-7, as moto's own are 52 of A-Z, a-z and 0-9.
        headers["x-amzn-requestid"] = base64.b32encode(os.urandom(33)).decode()[:52]
        return headers["x-amzn-requestid"]

    def enrich(headers: dict, body: Any) -> tuple[dict, Any]:
        if "status" in headers:
            headers["status"] = str(headers["status"])
        identifier = request_id(headers)
        if isinstance(body, str) and "<RequestId>" in body:
            body = re.sub(r"(?<=<RequestId>).*(?=<\/RequestId>)", identifier, body)
        return headers, body

    responses.BaseResponse._enrich_response = staticmethod(enrich)
    quick_items()
    quick_update_validation()
    parse_once()
    parse_workflows_once()
    reuse_workflow_clients()
    make_app = werkzeug_app.create_backend_app

    def create_backend_app(service):
        app = make_app(service)
        app.debug = False
        return app

    werkzeug_app.create_backend_app = create_backend_app
    shaped = DynamoResult.execute_result

    def execute_result(self, context):
        result = self.result
        if context.operation_model.name in _ITEM_OPERATIONS:
            text = _as_json(result)
            if text is not None:
                return 200, {"Content-Type": "application/x-amz-json-1.0"}, text
        return shaped(self, context)

    execute_result.quick = True
    DynamoResult.execute_result = execute_result
    quick_stream_records()


def quick_stream_records() -> None:
    """GetRecords answers its records as JSON text, not through moto's serializer (half
    of moto's work while a deployment runs, every record's images walked by shape)."""
    from moto.core.responses import ActionResult
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    def get_records(self):
        limit = self._get_param("Limit")
        result = self.backend.get_records(
            self._get_param("ShardIterator"), 1000 if limit is None else limit
        )
        text = _as_json(result, default=_epoch)
        if text is None:
            return ActionResult(result)
        return text, {"Content-Type": "application/x-amz-json-1.0"}

    DynamoDBStreamsHandler.get_records = get_records


def parse_once() -> None:
    """Parse each UpdateExpression once, not twice per UpdateItem (idempotent): moto's
    validation changes the tree it is given, so each request gets its own copy of the
    parsed one (unpickled: several times quicker than parsing or deep-copying)."""
    import pickle

    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    make = UpdateExpressionParser.make
    if getattr(make, "once", False):
        return
    parsed: dict[str, bytes] = {}

    def parse(cls, expression: str):
        kept = parsed.get(expression)
        if kept is None:
            tree = make.__func__(cls, expression)  # a malformed one raises, and is not kept
            if len(parsed) >= 1024:
                parsed.clear()
            kept = parsed[expression] = pickle.dumps(tree)
        return pickle.loads(kept)

    parse.once = True
    UpdateExpressionParser.make = classmethod(parse)


def quick_items() -> None:
    """moto's walks over every attribute of every item, made direct (idempotent): turning
    an answer's items into dicts, and sizing each item a Query reads (twice) or a write
    changes. Both checked each value with several method calls and copied map values; a
    list page of projects spent half its time in them. Binary values, and anything
    that is not an item's value, still go through moto's own."""
    from moto.dynamodb import responses
    from moto.dynamodb.models import utilities
    from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict

    shaped = utilities.dynamo_to_dict
    if getattr(shaped, "quick", False):
        return
    plain = (str, int, float, bool, type(None))

    def to_dict(value: Any) -> Any:
        kind = type(value)
        if kind is DynamoType:
            if value.type in ("B", "BS"):
                return shaped(value)
            return {value.type: to_dict(value.value)}
        if kind is dict or kind is LimitedSizeDict:
            return {key: to_dict(nested) for key, nested in value.items()}
        if kind is list:
            return [to_dict(nested) for nested in value]
        if kind in plain:
            return value
        return shaped(value)

    def size(value: DynamoType) -> int:
        kind, content = value.type, value.value
        if kind == "S" or kind == "B":
            return utilities.bytesize(content)
        if kind == "N":
            return len(str(content))
        if kind == "M":
            return sum(
                len(key.encode("utf-8"))
                + size(nested if type(nested) is DynamoType else DynamoType(nested))
                for key, nested in content.items()
            )
        if kind == "L":
            return sum(size(nested) for nested in content)
        if kind in ("SS", "NS", "BS"):
            return sum(
                len(str(member)) if kind == "NS" else utilities.bytesize(member)
                for member in content
            )
        if isinstance(content, bool):  # BOOL, NULL
            return 1
        return utilities.bytesize(content)

    to_dict.quick = True
    utilities.dynamo_to_dict = responses.dynamo_to_dict = to_dict
    DynamoType.size = size


def quick_update_validation() -> None:
    """moto validates an UpdateExpression with ten passes over its tree, and each pass
    rebuilt its table of node types for every node it visited: a seventh of what a
    create costs moto. Each pass now builds it once (idempotent)."""
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser, Node

    if getattr(DepthFirstTraverser.traverse, "quick", False):
        return

    def traverse(self, root):
        processors = tuple(self._processing_map().items())
        kinds = tuple(kind for kind, _ in processors)

        def visit(node, child_id=-1):
            if isinstance(node, Node):
                parent = node.parent
                if node.children is not None:
                    for i, child in enumerate(node.children):
                        self.pre_processing_of_child(node, i)
                        visit(child, i)
                if isinstance(node, kinds):
                    node = next(process for kind, process in processors if isinstance(node, kind))(
                        node
                    )
                    node.parent = parent
                    if parent:
                        parent.children[child_id] = node
            return node

        return visit(root)

    traverse.quick = True
    DepthFirstTraverser.traverse = traverse


def parse_workflows_once() -> None:
    """Parse each state machine's definition once, not at each execution (idempotent):
    moto's ANTLR parser takes about 50 ms of CPU for the deploy workflow, and every
    deployment starts an execution. Each execution still gets its own program, unpickled
    from the first parse (under a millisecond), so no state is shared between them."""
    import pickle

    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    entrypoint = ExecutionWorker._get_evaluation_entrypoint
    if getattr(entrypoint, "once", False):
        return
    parsed: dict[str, bytes] = {}
    lock = threading.Lock()

    def parsed_entrypoint(self):
        definition = self._evaluation_details.state_machine_details.definition
        with lock:
            kept = parsed.get(definition)
        if kept is None:
            program = entrypoint(self)  # a malformed one raises, and is not kept
            try:
                kept = pickle.dumps(program)
            except (pickle.PicklingError, TypeError, AttributeError):
                return program  # one that can't be kept is parsed at each execution
            with lock:
                if len(parsed) >= 64:
                    parsed.clear()
                parsed[definition] = kept
        return pickle.loads(kept)

    parsed_entrypoint.once = True
    ExecutionWorker._get_evaluation_entrypoint = parsed_entrypoint


def reuse_workflow_clients() -> None:
    """Step Functions' tasks reuse their boto3 clients (idempotent): moto makes a new one
    for every task it runs (about 20 ms of CPU each; the deploy workflow runs three SQS
    tasks per deployment). boto3's clients are safe to share between threads."""
    import sys

    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_sqs,  # noqa: F401 - the deploy workflow's tasks: loaded now
    )
    from moto.stepfunctions.parser.asl.utils import boto_client

    make = boto_client.boto_client_for
    if getattr(make, "reused", False):
        return
    clients: dict[tuple, Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        # What the client depends on: moto's own address, or in-process interception.
        key = (region, service, boto_client.botocore_stubber.enabled, os.environ.get("MOTO_PORT"))
        with lock:
            if key not in clients:
                clients[key] = make(region, service, state_credentials)
            return clients[key]

    boto_client_for.reused = True
    for name, module in list(sys.modules.items()):
        if (
            name.startswith("moto.stepfunctions")
            and getattr(module, "boto_client_for", None) is make
        ):
            module.boto_client_for = boto_client_for


def serialise_dynamodb() -> None:
    """Make moto handle one DynamoDB or DynamoDB Streams request at a time (idempotent):
    a stream read never sees the records of a transaction that is being undone."""
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    for handler in (DynamoHandler, DynamoDBStreamsHandler):
        original = handler.call_action
        if getattr(original, "serialised", False):
            continue

        def call_action(self, original=original):
            with _lock:
                return original(self)

        call_action.serialised = True
        handler.call_action = call_action


def uncopied_results() -> None:
    """A Query or Scan answers its items without deep-copying them first (idempotent).

    moto deep-copies every item a Query or Scan returns (40% of a Query of 20 items),
    which would keep a concurrent write from changing what is being answered. Here each
    request runs under the lock (serialise_dynamodb) until its answer is serialized, and
    what follows the copy (index and expression projections, filters) makes new items
    rather than changing these, so the copy protects nothing. Other deep copies in the
    module (a table's backup) are moto's own.
    """
    import copy
    import types

    from moto.dynamodb.models import table as module
    from moto.dynamodb.models.dynamo_type import Item

    if getattr(module.copy, "uncopied", False):
        return

    def deepcopy(value: Any, memo: Any = None) -> Any:
        if isinstance(value, Item):
            return value
        if isinstance(value, list) and all(isinstance(each, Item) for each in value):
            return list(value)
        return copy.deepcopy(value, memo)

    module.copy = types.SimpleNamespace(deepcopy=deepcopy, copy=copy.copy, uncopied=True)


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
    if comparison == "BEGINS_WITH" and isinstance(values[0], str):
        prefix = values[0]
        if not prefix:
            return lo, hi
        if prefix[-1] == chr(sys.maxunicode):
            return None
        # The first string past every one that starts with `prefix`.
        after = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        return bisect.bisect_left(keys, prefix), bisect.bisect_left(keys, after)
    return None


def query_partitions() -> None:
    """Make a Query on a table's own key read only what DynamoDB would (idempotent).

    Each partition's items are kept sorted by range key, remade after the partition
    changes (a put, a delete or a transaction's undo gives it a new version); the key
    condition, the start key and the Limit cut that list with bisect, and moto's
    own Query runs on the cut, which is already in order. Index queries, legacy filters and
    multi-attribute keys go to moto unchanged.
    """
    from moto.dynamodb.exceptions import MockValidationException
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    original = Table.query
    if getattr(original, "by_partition", False):
        return

    put_item, delete_item = Table.put_item, Table.delete_item

    def put(self, item_attrs, *args, **kwargs):
        try:
            changed(self, DynamoType(item_attrs[self.hash_key_attr]))
        except (KeyError, TypeError):
            changed(self, None)
        return put_item(self, item_attrs, *args, **kwargs)

    def delete(self, hash_key, *args, **kwargs):
        changed(self, hash_key)
        return delete_item(self, hash_key, *args, **kwargs)

    Table.put_item, Table.delete_item = put, delete
    every_item = Table.all_items

    def all_items(self):
        cut = getattr(_cut, "items", None)
        return cut[1] if cut is not None and cut[0] is self else every_item(self)

    Table.all_items = all_items

    def sorted_partition(table: Any, hash_key: Any) -> tuple[list, list]:
        partition = table.items.get(hash_key)
        if not partition:
            return [], []
        version = version_of(table, hash_key)
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

    signature = inspect.signature(original)

    def query(self, *args, **kwargs):
        asked = signature.bind(self, *args, **kwargs)
        asked.apply_defaults()
        a = asked.arguments
        conditions = a["range_key_conditions"]
        if (
            a["index_name"]
            or not self.range_key_attr
            or a["filter_kwargs"]
            or (conditions and len(conditions) > 1)
        ):
            return original(self, *args, **kwargs)
        keys, items = sorted_partition(self, a["hash_key"])
        values = [obj.cast_value for obj in a["range_objs"] or []]
        try:
            bounds = _key_range(keys, a["range_comparison"], values)
        except TypeError:  # moto would fail the same comparison with a 500
            raise MockValidationException(
                "One or more parameter values were invalid: "
                "Condition parameter type does not match schema type"
            ) from None
        if bounds is None:
            return original(self, *args, **kwargs)
        lo, hi = bounds
        forward, limit = a["scan_index_forward"] is not False, a["limit"]
        try:
            if a["exclusive_start_key"] is not None:
                start = a["exclusive_start_key"].get(self.range_key_attr) or {"NULL": True}
                start = DynamoType(start).cast_value
                if forward:
                    lo = max(lo, bisect.bisect_right(keys, start))
                else:
                    hi = min(hi, bisect.bisect_left(keys, start))
        except TypeError:
            raise MockValidationException(
                "The provided starting key does not match the range key predicate"
            ) from None
        # One item past the key condition's bound, and one past the Limit: moto's Query
        # checks the Limit before the condition, and returns a LastEvaluatedKey when the
        # partition goes on after a full page, as DynamoDB does.
        if forward:
            hi = min(hi + 1, len(items))
            if limit:
                hi = min(hi, lo + limit + 1)
        else:
            lo = max(lo - 1, 0)
            if limit:
                lo = max(lo, hi - limit - 1)
        a["exclusive_start_key"] = None
        _cut.items = (self, items[lo:hi])
        try:
            return original(*asked.args, **asked.kwargs)
        finally:
            _cut.items = None

    query.by_partition = True
    Table.query = query


def wsgi_app() -> Any:
    """moto's WSGI app, with every patch above applied. DynamoDB's and DynamoDB Streams'
    requests (POST `/` with their `X-Amz-Target`) go straight to moto's handler for them:
    moto's way finds the service's Flask app under a lock, then routes, wraps and
    finalizes each request in Flask, a fifth of what a DynamoDB call costs here."""
    from botocore.exceptions import ClientError
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler
    from werkzeug.exceptions import HTTPException
    from werkzeug.wrappers import Response

    patch()
    from moto.moto_server import werkzeug_app

    moto = werkzeug_app.DomainDispatcherApplication(werkzeug_app.create_backend_app)
    direct = {
        "DynamoDB_20120810": DynamoHandler,
        "DynamoDBStreams_20120810": DynamoDBStreamsHandler,
    }

    def app(environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "").partition(".")[0]
        handler = direct.get(target)
        if handler is None or environ.get("PATH_INFO") != "/":
            # moto's S3 reads the path as sent from RAW_URI (werkzeug's name for it).
            environ.setdefault("RAW_URI", environ.get("REQUEST_URI", ""))
            return moto(environ, start_response)
        request = werkzeug_app.BackendRequest(environ)
        headers = dict(request.headers)
        try:
            status, headers, body = handler.dispatch(request, request.raw_url, headers)
        except ClientError as error:  # as moto's Flask view answers it
            status, headers, body = 400, {}, error.response["Error"]["Message"]
        except HTTPException as error:  # the request itself refused (a bad body, say)
            return error.get_response(environ)(environ, start_response)
        except Exception:  # as Flask answers, and logs, what a view raised
            logging.getLogger("moto").exception(
                "moto failed on %s", environ.get("HTTP_X_AMZ_TARGET")
            )
            status, headers, body = 500, {}, "Internal Server Error"
        return Response(body, status=status, headers=headers)(environ, start_response)

    return app


def wsgi_server(host: str, port: int) -> Any:
    """wsgi_app() on this stack's HTTP server (local/wsgi_server.py), not yet running:
    call `.run()`, which returns after `.close()`."""
    from chalicelib.local.wsgi_server import Server

    return Server(wsgi_app(), host, port)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.local.moto_server")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args(argv)
    # moto writes its own address into what it answers (presigned URLs, queue URLs).
    os.environ.setdefault("MOTO_PORT", str(args.port))
    server = wsgi_server(args.host, args.port)
    collector.freeze_survivors()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.run()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.close()


if __name__ == "__main__":
    main()
