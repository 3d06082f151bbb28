"""LocalApps: the runtime port (ports.AppRuntime) on the local stack. Each deployment's
artifact is unpacked once under the state directory and runs as a process of
LocalProcessRuntime on its own port (the deployment's URL). The project's URL is a port of
the edge (runtimes/edge.py, Caddy), switched to the deployment being promoted; what the app
prints is copied into its runtime log (runtimes/runtime_logs.py)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from chalicelib.archive.artifacts import download_and_unpack
from chalicelib.core.clock import rfc3339
from chalicelib.ports import AppSpec, OnLog
from chalicelib.runtimes.edge import DEPLOYMENT_HEADER, CaddyEdge, port_of, upstream_of
from chalicelib.runtimes.local import LocalProcessRuntime
from chalicelib.runtimes.runtime_logs import RuntimeLogs

UNPACKED_MARK = ".shipyard-unpacked"


class LocalApps:
    def __init__(
        self,
        runtime: LocalProcessRuntime,
        artifacts_dir: Path,
        edge: CaddyEdge,
        logs: RuntimeLogs,
        drain_s: float = 5.0,
    ) -> None:
        """drain_s: how long a replaced app keeps running for the requests it still serves."""
        self.runtime = runtime
        self.artifacts_dir = artifacts_dir
        self.edge = edge
        self.logs = logs
        self.drain_s = drain_s

    def start(self, spec: AppSpec, on_log: OnLog | None) -> str:
        target = self.unpacked(spec.deployment_id, spec.artifact_key)
        app = self.runtime.start(
            spec.deployment_id,
            spec.project_id,
            target,
            spec.plan,
            spec.env,
            on_log=on_log,
            host_port=spec.port,
        )
        self.logs.follow(spec.deployment_id, self.runtime.log_path(spec.deployment_id), spec.mask)
        return app.url

    def unpacked(self, deployment_id: str, artifact_key: str | None) -> Path:
        target = self.artifacts_dir / deployment_id
        if not (target / UNPACKED_MARK).exists():
            if not artifact_key:
                raise ValueError(f"deployment {deployment_id} has no artifact to run")
            target.mkdir(parents=True, exist_ok=True)
            download_and_unpack(artifact_key, target)
            (target / UNPACKED_MARK).touch()
        return target

    def health_check(self, item: dict[str, Any], path: str, timeout_s: float) -> tuple[bool, str]:
        return self.runtime.health_check(item["id"], path, timeout_s)

    def alive(self, item: dict[str, Any]) -> tuple[bool, str]:
        if self.runtime.is_running(item["id"]):
            return True, "running"
        return False, self.runtime.health_check(item["id"], "/", 1.0)[1]

    def exit_code(self, item: dict[str, Any]) -> int | None:
        return self.runtime.exit_code(item["id"])

    def reserve_url(self, project_id: str) -> str | None:
        return f"http://127.0.0.1:{self.edge.reserve(project_id)}"

    def release_url(self, project_id: str) -> None:
        self.edge.release(project_id)

    def promote(self, item: dict[str, Any]) -> str:
        project_url = item.get("project_url")
        port = port_of(project_url) if project_url else None
        if port is None:
            return item["url"]
        self.edge.route(item["project_id"], port, upstream_of(item["url"]), item["id"])
        return project_url

    def keep_serving(self) -> bool:
        return self.edge.ensure() if self.edge.routes() else False

    def retire(self, item: dict[str, Any]) -> None:
        if self.drain_s <= 0:
            self.stop(item)
            return
        timer = threading.Timer(self.drain_s, self.stop, args=(item,))
        timer.daemon = True
        timer.start()

    def stop(self, item: dict[str, Any]) -> None:
        self.runtime.stop(item["id"])
        self.logs.unfollow(item["id"])

    def runtime_note(self, item: dict[str, Any], message: str) -> None:
        self.logs.note(item["id"], message, self.runtime.log_path(item["id"]))

    def runtime_logs(self, item: dict[str, Any], after: int, limit: int) -> list[dict[str, Any]]:
        if self.runtime.is_running(item["id"]):
            self.logs.follow(item["id"], self.runtime.log_path(item["id"]))
        return self.logs.read(item["id"], after, limit)

    def access_logs(self, project_id: str, after: int, limit: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        try:
            handle = self.edge.access_log(project_id).open("rb")
        except FileNotFoundError:
            return found
        with handle:
            for seq, raw in enumerate(handle, start=1):
                if seq <= after:
                    continue
                if not raw.endswith(b"\n"):
                    break
                found.append(_access_entry(seq, json.loads(raw)))
                if len(found) >= limit:
                    break
        return found


def _access_entry(seq: int, entry: dict[str, Any]) -> dict[str, Any]:
    request = entry.get("request", {})
    served_by = (entry.get("resp_headers") or {}).get(DEPLOYMENT_HEADER) or [None]
    return {
        "seq": seq,
        "timestamp": rfc3339(datetime.fromtimestamp(entry["ts"], UTC)),
        "method": request.get("method", ""),
        # The query string may hold tokens: never kept.
        "path": urlsplit(request.get("uri", "")).path,
        "status": entry.get("status", 0),
        "duration_ms": round(entry.get("duration", 0.0) * 1000, 3),
        "bytes": entry.get("size", 0),
        "deployment_id": served_by[0],
    }
