"""Cold-start import time of `app` against chalice, boto3 and pydantic alone, and the AWS
calls that one authenticated GET and one POST of /v1/projects make."""

from __future__ import annotations

import compileall
import statistics
from pathlib import Path

from bench.harness import CallCounter, app_on_moto, median_subprocess_seconds, request, show

RUNS = 9


def cold_start() -> None:
    # Both sides import bytecode: pip compiled the libraries when it installed them; the
    # app's modules are compiled here (with PYTHONDONTWRITEBYTECODE set, nothing else would,
    # and every run would compile ~150 modules from source).
    root = Path(__file__).resolve().parents[1]
    compileall.compile_dir(root / "chalicelib", quiet=1)
    compileall.compile_file(root / "app.py", quiet=1)
    baseline, app_import = [], []
    for _ in range(RUNS):
        baseline += median_subprocess_seconds("import chalice, boto3, pydantic", 1)
        app_import += median_subprocess_seconds("import app", 1)
    base, ours = statistics.median(baseline), statistics.median(app_import)
    show(f"import chalice, boto3, pydantic (median of {RUNS})", f"{base * 1000:.0f} ms")
    show(f"import app (median of {RUNS})", f"{ours * 1000:.0f} ms")
    show("cold-start ratio app / (chalice, boto3, pydantic) [target <= 1.2]", f"{ours / base:.2f}")


def aws_calls() -> None:
    counter = CallCounter()
    with app_on_moto() as (client, key):
        created = request(client, "POST", "/v1/projects", key, {"name": "warm-up"})
        project_id = __import__("json").loads(created.body)["data"]["id"]
        request(client, "GET", f"/v1/projects/{project_id}", key)
        with counter.count() as calls:
            request(client, "GET", f"/v1/projects/{project_id}", key)
        dynamo = sum(n for name, n in calls.items() if name.startswith("dynamodb:"))
        show("GET /v1/projects/{id}, warm key cache: DynamoDB calls [target <= 2]", str(dynamo))
        show("  calls", ", ".join(f"{k} x{v}" for k, v in sorted(calls.items())) or "none")
        with counter.count() as calls:
            request(client, "POST", "/v1/projects", key, {"name": "bench"})
        show("POST /v1/projects: AWS calls", str(sum(calls.values())))
        show("  calls", ", ".join(f"{k} x{v}" for k, v in sorted(calls.items())) or "none")


def run() -> None:
    cold_start()
    aws_calls()
