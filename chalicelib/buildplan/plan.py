"""The build plan of an app: which runtime and framework it is, and the commands that
install, build and start it, detected from its files and overridden by the project's
settings.

One plan feeds both build engines: LocalBuilder runs its commands in a temp dir, and
`BuildPlan.buildspec()` renders the same commands for CodeBuild. This module decides the
runtime and applies the settings; the plan's model is in model.py, the per-runtime
detection in node.py and python.py, and the reading of the archive's files in files.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.buildplan.files import (
    files_under,
    package_json,
    procfile_web,
    relative_dir,
    root_directory,
)
from chalicelib.buildplan.model import (
    NODE_COMMANDS,
    PYTHON_COMMANDS,
    PYTHON_ENV,
    BuildPlan,
    PlanError,
)
from chalicelib.buildplan.node import (
    NODE_ENTRY_FILES,
    node_framework,
    node_plan,
    npm_scripts,
    static_plan,
)
from chalicelib.buildplan.python import (
    PYTHON_ENTRY_FILES,
    PYTHON_MANIFESTS,
    python_framework,
    python_plan,
)

__all__ = ["BuildPlan", "PlanError", "detect", "make_plan"]

# The files that can decide a plan, in the order detection consults them, and how sure a
# plan is when the strongest of them decided it.
DECIDING = ("Procfile", "package.json", *PYTHON_MANIFESTS, *PYTHON_ENTRY_FILES, *NODE_ENTRY_FILES)
MANIFESTS = ("Procfile", "package.json", *PYTHON_MANIFESTS)


def make_plan(
    files: Mapping[str, bytes], project_runtime: str, build: dict, run: dict
) -> BuildPlan:
    """Detect the plan from the archive's manifest files; explicit settings win."""
    build = build or {}
    run = run or {}
    root = root_directory(files, build.get("root_directory"))
    app = files_under(files, root)
    package = package_json(app)
    runtime = project_runtime if project_runtime != "auto" else _detect_runtime(app, package)
    if runtime not in ("static", "node", "python"):
        raise PlanError(f"unknown runtime '{runtime}'")
    plan = {"static": static_plan, "node": node_plan, "python": python_plan}[runtime](app, package)
    for key in ("install_command", "build_command", "output_directory"):
        if build.get(key):
            plan[key] = build[key]
    if run.get("start_command") and runtime != "static":
        plan["start_command"] = run["start_command"]
    if runtime == "python":
        plan["build_command"] = _with_python_env(plan["build_command"])
        plan["start_command"] = _with_python_env(plan["start_command"])
    if plan.get("output_directory"):
        plan["output_directory"] = relative_dir(plan["output_directory"], "output_directory")
    return BuildPlan(runtime=runtime, root_directory=root, port=run.get("port"), **plan)


def detect(
    files: Mapping[str, bytes], build: dict | None = None
) -> tuple[BuildPlan, list[str], float]:
    """What `make_plan` decides for a project left on `auto`, with the files that decided
    it (paths in the source) and how sure it is: 0.95 when a manifest names a framework,
    0.8 for a manifest alone, 0.6 for an entry file or index.html, 0.3 for the fallback."""
    plan = make_plan(files, "auto", build or {}, {})
    prefix = f"{plan.root_directory}/" if plan.root_directory else ""
    app = files_under(files, plan.root_directory)
    evidence = [prefix + name for name in (*DECIDING, "index.html") if name in app]
    evidence = list(dict.fromkeys(evidence))
    if any(name in app for name in MANIFESTS):
        confidence = 0.95 if plan.framework and plan.framework != "static" else 0.8
    elif evidence:
        confidence = 0.6
    else:
        confidence = 0.3
    return plan, evidence, confidence


def _with_python_env(command: str | None) -> str | None:
    return PYTHON_ENV + command if command else None


def _command_runtime(command: str) -> str | None:
    for word in command.split():
        if "=" in word and not word.startswith("="):
            continue
        name = word.rsplit("/", 1)[-1]
        if name in PYTHON_COMMANDS or name.startswith("python"):
            return "python"
        if name in NODE_COMMANDS:
            return "node"
        return None
    return None


def _detect_runtime(app: Mapping[str, bytes], package: dict[str, Any] | None) -> str:
    procfile = procfile_web(app)
    procfile_runtime = _command_runtime(procfile) if procfile else None
    if procfile_runtime:
        return procfile_runtime
    python_manifest = any(name in app for name in PYTHON_MANIFESTS)
    if python_manifest and python_framework(app):
        return "python"
    if package is not None:
        server, static, _ = node_framework(package)
        scripts = npm_scripts(package)
        main = package.get("main")
        if server or "start" in scripts or (isinstance(main, str) and main in app):
            return "node"
        if static or "build" in scripts:
            return "static"
        if python_manifest:
            return "python"
        if "index.html" in app:
            return "static"
        return "node" if any(name in app for name in NODE_ENTRY_FILES) else "static"
    if python_manifest or any(name in app for name in PYTHON_ENTRY_FILES):
        return "python"
    return "static"
