"""LocalApps: the runtime port (ports.AppRuntime) on the local stack. Each deployment's
artifact is unpacked once under the state directory and runs as a process of
LocalProcessRuntime on its own port, which is also the project's URL once promoted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chalicelib.archive.artifacts import download_and_unpack
from chalicelib.ports import AppSpec, OnLog
from chalicelib.runtimes.local import LocalProcessRuntime

UNPACKED_MARK = ".shipyard-unpacked"


class LocalApps:
    def __init__(self, runtime: LocalProcessRuntime, artifacts_dir: Path) -> None:
        self.runtime = runtime
        self.artifacts_dir = artifacts_dir

    def start(self, spec: AppSpec, on_log: OnLog | None) -> str:
        target = self.unpacked(spec.deployment_id, spec.artifact_key)
        app = self.runtime.start(
            spec.deployment_id, spec.project_id, target, spec.plan, spec.env, on_log=on_log
        )
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

    def promote(self, item: dict[str, Any]) -> str:
        return item["url"]

    def stop(self, item: dict[str, Any]) -> None:
        self.runtime.stop(item["id"])
