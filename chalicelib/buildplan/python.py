"""Python apps: their framework from the requirements or the entry file's imports, and
their install and start commands (dependencies go into PYTHON_DEPS_DIR inside the app).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from typing import Any

from chalicelib.buildplan.files import procfile_web
from chalicelib.buildplan.model import PYTHON_DEPS_DIR

PYTHON_MANIFESTS = ("requirements.txt", "pyproject.toml", "Pipfile", "setup.py")
PYTHON_ENTRY_FILES = ("app.py", "main.py", "server.py")
PYTHON_FRAMEWORKS = ("django", "fastapi", "flask", "starlette", "aiohttp", "bottle")

# Servers bind $HOST when the runtime sets it (the local one binds loopback only).
HOST = "${HOST:-0.0.0.0}"


def _requirement_names(app: Mapping[str, bytes]) -> set[str]:
    names: set[str] = set()
    for line in app.get("requirements.txt", b"").decode("utf-8", "replace").splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line)
        if match and not line.startswith("-"):
            names.add(match.group(0))
    if "pyproject.toml" in app:
        try:
            pyproject = tomllib.loads(app["pyproject.toml"].decode("utf-8", "replace"))
        except tomllib.TOMLDecodeError:
            pyproject = {}
        for requirement in pyproject.get("project", {}).get("dependencies", []) or []:
            match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", str(requirement).strip())
            if match:
                names.add(match.group(0))
        poetry = pyproject.get("tool", {}).get("poetry", {}).get("dependencies", {})
        if isinstance(poetry, dict):
            names.update(poetry)
    return {name.lower().replace("_", "-") for name in names}


def _python_entry(app: Mapping[str, bytes]) -> str | None:
    return next((name for name in PYTHON_ENTRY_FILES if name in app), None)


def python_framework(app: Mapping[str, bytes]) -> str | None:
    names = _requirement_names(app)
    found = next((name for name in PYTHON_FRAMEWORKS if name in names), None)
    if found:
        return found
    entry = _python_entry(app)
    source = app.get(entry, b"").decode("utf-8", "replace") if entry else ""
    for name in (*PYTHON_FRAMEWORKS, "http.server"):
        if re.search(rf"^\s*(from|import)\s+{re.escape(name)}\b", source, re.MULTILINE):
            return name
    return None


def python_plan(app: Mapping[str, bytes], package: dict[str, Any] | None) -> dict[str, Any]:
    target = f"python3 -m pip install --target {PYTHON_DEPS_DIR}"
    if "requirements.txt" in app:
        install = f"{target} -r requirements.txt"
    elif "pyproject.toml" in app or "setup.py" in app:
        install = f"{target} ."
    else:
        install = None
    framework = python_framework(app)
    return {
        "framework": framework,
        "install_command": install,
        "build_command": None,
        "start_command": procfile_web(app) or _python_start(app, framework),
        "output_directory": None,
    }


def _python_start(app: Mapping[str, bytes], framework: str | None) -> str:
    names = _requirement_names(app)
    entry = _python_entry(app) or "app.py"
    module = entry.removesuffix(".py")
    if framework == "django":
        wsgi = next((p for p in sorted(app) if p.count("/") == 1 and p.endswith("/wsgi.py")), None)
        if wsgi and "gunicorn" in names:
            return f"python3 -m gunicorn {wsgi[:-3].replace('/', '.')} --bind {HOST}:$PORT"
        return f"python3 manage.py runserver {HOST}:$PORT --noreload"
    if framework in ("fastapi", "starlette"):
        return f"python3 -m uvicorn {module}:app --host {HOST} --port $PORT"
    if framework == "flask":
        if "gunicorn" in names:
            return f"python3 -m gunicorn {module}:app --bind {HOST}:$PORT"
        return f"python3 -m flask --app {module} run --host {HOST} --port $PORT"
    return f"python3 {entry}"
