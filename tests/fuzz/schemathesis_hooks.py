"""The only two fuzzer artifacts left out of the schemathesis run (issue 14), each for a
request every part of which the fuzzer generated schema-valid:

- a fresh Idempotency-Key: the fuzzer repeats keys across different requests, which the
  contract rightly answers 422 idempotency_key_reused;
- no cursor: a random cursor is a forged one, which the contract rightly answers 400
  invalid_cursor.

Schema-violating requests are sent as generated.
"""

from __future__ import annotations

import uuid

import schemathesis


def _schema_valid(case) -> bool:
    meta = case.meta
    if meta is None:
        return True
    return not meta.generation.mode.is_negative and not any(
        component.mode.is_negative for component in meta.components.values()
    )


@schemathesis.hook
def before_call(context, case, kwargs):
    if not _schema_valid(case):
        return
    if case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = f"fuzz-{uuid.uuid4()}"
    if case.query and "cursor" in case.query:
        del case.query["cursor"]
