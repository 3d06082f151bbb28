"""What a local deployment's process is started as: its command, working directory and
environment.

The environment is a clean base (nothing of Shipyard's own that carries credentials, not
Shipyard's virtualenv), the runtime's defaults, the deployment's env and `PORT`. A Python
app's installed dependencies ({app}/.deps) go on PATH and PYTHONPATH, a Node app's
node_modules/.bin on PATH, and a `python` shim where the host only has `python3`. A static
site is served by runtimes/static_server.py from its output directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.buildplan.model import PYTHON_DEPS_DIR
from chalicelib.ports import DeployFailed

STATIC_SERVER = Path(__file__).with_name("static_server.py")
# The machine's interpreter, not Shipyard's virtualenv (which a sandbox does not see): the
# static server needs only the standard library.
BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)

# The only variables of Shipyard's own environment an app inherits: enough to find
# interpreters and locales, nothing that carries credentials.
_INHERITED = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "PYENV_ROOT")


@dataclass
class Launch:
    """A command to run in cwd with exactly env."""

    command: list[str]
    cwd: Path
    env: dict[str, str]


def prepare_launch(
    deployment_id: str, app_dir: Path, plan: Any, env: dict[str, str], port: int, shim_dir: Path
) -> Launch:
    """How to start the deployment's app from `app_dir` on `port` (shim_dir: where a
    `python` shim may be made)."""
    base = _base_environment()
    if plan.runtime == "static":
        site = _static_root(app_dir, plan.output_directory)
        command = [BASE_PYTHON, "-I", str(STATIC_SERVER), "--dir", str(site)]
        command += ["--port", str(port)]
        return Launch(command, app_dir, {**base, "PORT": str(port)})
    if plan.runtime not in ("python", "node"):
        raise DeployFailed(f"unknown runtime {plan.runtime!r}")
    if not plan.start_command:
        raise DeployFailed(f"no start command for this {plan.runtime} app: set run.start_command")
    merged = {**base, **_runtime_defaults(plan.runtime), **env}
    paths = [merged.get("PATH", "")]
    if plan.runtime == "node":
        paths.insert(0, str(app_dir / "node_modules" / ".bin"))
    else:
        deps = app_dir / PYTHON_DEPS_DIR
        if deps.is_dir():
            paths.insert(0, str(deps / "bin"))
            merged["PYTHONPATH"] = os.pathsep.join(
                part for part in (str(deps), env.get("PYTHONPATH")) if part
            )
        shim = _python_shim(shim_dir, os.pathsep.join(paths))
        if shim is not None:
            paths.insert(0, shim)
    merged["PATH"] = os.pathsep.join(part for part in paths if part)
    merged["PORT"] = str(port)
    merged["SHIPYARD_DEPLOYMENT_ID"] = deployment_id
    # A shell, as a Procfile's `web:` line is run: `$PORT`, `&&` and `cd` work as written.
    return Launch(["/bin/sh", "-c", plan.start_command], app_dir, merged)


def _python_shim(shim: Path, path: str) -> str | None:
    """A directory with `python` for hosts that only have `python3` (Debian and friends)."""
    if shutil.which("python", path=path) is not None:
        return None
    python3 = shutil.which("python3", path=path)
    if python3 is None:
        return None
    shim.mkdir(exist_ok=True)
    with contextlib.suppress(FileExistsError):
        (shim / "python").symlink_to(python3)
    return str(shim)


def _runtime_defaults(runtime: str) -> dict[str, str]:
    if runtime == "python":
        return {"PYTHONUNBUFFERED": "1"}
    return {"NODE_ENV": "production"}


def _base_environment() -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name in _INHERITED or name.startswith("LC_")
    }
    # Shipyard's own virtualenv must not leak in: `python` would be Shipyard's interpreter.
    own_bin = os.path.join(sys.prefix, "bin") if sys.prefix != sys.base_prefix else None
    parts = os.environ.get("PATH", os.defpath).split(os.pathsep)
    env["PATH"] = os.pathsep.join(part for part in parts if part and part != own_bin)
    return env


def _static_root(app_dir: Path, output_directory: str | None) -> Path:
    root = app_dir.resolve()
    site = (root / (output_directory or ".")).resolve()
    if not site.is_relative_to(root):
        raise DeployFailed(f"output directory {output_directory!r} leaves the app directory")
    if not site.is_dir():
        raise DeployFailed(f"output directory {output_directory or '.'!r} does not exist")
    return site
