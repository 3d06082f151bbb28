"""What masking secrets costs on the write path of logs: a local build that prints 10,000
lines (one in ten holding the secret), its every line written to the deployment's log on
moto, once for a deployment with secrets to mask and once for one without; the ratio of
the two, measured in the same run, and the masking alone per line."""

from __future__ import annotations

import io
import statistics
import tarfile
import threading
import time
from pathlib import Path
from tempfile import TemporaryDirectory

from bench.harness import app_on_moto, request, show

LINES = 10_000
RUNS = 2
SECRET = "tok_live_9f8e7d6c5b4a3210"
COMMAND = (
    f'i=0; while [ $i -lt {LINES} ]; do if [ $((i % 10)) = 0 ]; then echo "step $i: $TOKEN";'
    ' else echo "step $i: compiling module number $i of the app"; fi; i=$((i+1)); done'
)


def run() -> None:
    from chalicelib.aws.clients import client
    from chalicelib.builders.local import LocalBuilder
    from chalicelib.core.settings import get_settings
    from chalicelib.deployments import env as deployment_env
    from chalicelib.deployments import logs
    from chalicelib.deployments import service as deployments
    from chalicelib.deployments.masking import Masker
    from chalicelib.ports import BuildJob
    from chalicelib.store import logs as log_store
    from chalicelib.store import projects as project_store

    with app_on_moto() as (api, key), TemporaryDirectory() as work:
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w:gz") as tar:
            info = tarfile.TarInfo("index.html")
            tar.addfile(info, io.BytesIO(b""))
        client("s3").put_object(
            Bucket=get_settings().bucket, Key="uploads/bench.tar.gz", Body=archive.getvalue()
        )

        seen: list[bool] = []

        def deployment(secret: bool) -> tuple[dict, BuildJob]:
            seen.append(secret)
            created = request(api, "POST", "/v1/projects", key, {"name": f"masking {len(seen)}"})
            project = created.json_body["data"]
            env = {"vars": {"TOKEN": {"value": SECRET, "secret": secret}}}
            request(api, "PUT", f"/v1/projects/{project['id']}/env", key, env)
            stored = project_store.get(project["workspace_id"], project["id"])
            item = deployments.new_item(stored, "pending", {"type": "upload"}, None)
            item["env_key"] = deployment_env.snapshot_env(stored, item["id"])
            deployments.create(stored, item, "bench")
            job = BuildJob(
                deployment_id=item["id"],
                project_id=item["project_id"],
                workspace_id=item["workspace_id"],
                source_key="uploads/bench.tar.gz",
                project_runtime="static",
                build={"build_command": COMMAND},
                run={},
                env=deployment_env.env_of(item),
            )
            return item, job

        builder = LocalBuilder(Path(work))
        timings: dict[bool, list[float]] = {True: [], False: []}
        # Alternated (masked first, then plain first), so a drift of the machine's load
        # weighs on both.
        for run_index in range(RUNS):
            for secret in (True, False) if run_index % 2 == 0 else (False, True):
                item, job = deployment(secret)
                started = time.perf_counter()
                sink = logs.BufferedLog(item["project_id"], item["id"], max_lines=25)
                outcome = builder.build(job, sink, threading.Event())
                sink.close()
                timings[secret].append(time.perf_counter() - started)
                assert outcome.ok, outcome
                written = log_store.read_after(item["id"], 0, LINES + 100)
                leaked = sum(SECRET in line["message"] for line in written)
                assert leaked == (0 if secret else LINES // 10), leaked

        masked, plain = statistics.median(timings[True]), statistics.median(timings[False])
        ratio = masked / plain - 1
        show(
            f"build printing {LINES} lines, masked vs not: extra [target < 10%]",
            f"{ratio * 100:+.1f}% ({masked:.2f} s vs {plain:.2f} s, median of {RUNS})",
        )
        masker = Masker([SECRET, "another-secret-value", "third-one"])
        text = [f"step {i}: compiling module number {i} of the app" for i in range(LINES)]
        started = time.perf_counter()
        for line in text:
            masker(line)
        alone = time.perf_counter() - started
        show(f"masking alone, 3 secrets, {LINES} lines", f"{alone * 1000:.1f} ms")
