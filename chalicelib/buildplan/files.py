"""The app's files as the build plan reads them: where the app lives in the archive (the
root directory), its files under that root, and the manifests every runtime looks at
(package.json, the Procfile's web command).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from chalicelib.buildplan.model import PlanError

# Files that mark the directory an app lives in.
ROOT_MARKERS = (
    "package.json",
    "index.html",
    "Procfile",
    "requirements.txt",
    "pyproject.toml",
    "Pipfile",
    "setup.py",
)


def _parts(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


def relative_dir(path: str, setting: str) -> str:
    parts = _parts(path)
    if path.startswith("/") or ".." in parts:
        raise PlanError(f"{setting} '{path}' must stay inside the app directory (no '/' or '..')")
    return "/".join(parts) or "."


def root_directory(files: Mapping[str, bytes], setting: str | None) -> str | None:
    if setting:
        root = relative_dir(setting, "root_directory")
        return None if root == "." else root
    # An archive made with `tar czf app.tgz myapp/` wraps everything in one directory.
    if files and not any("/" not in path for path in files):
        tops = {path.split("/", 1)[0] for path in files}
        if len(tops) == 1:
            top = tops.pop()
            if any(f"{top}/{name}" in files for name in ROOT_MARKERS):
                return top
    return None


def files_under(files: Mapping[str, bytes], root: str | None) -> dict[str, bytes]:
    if not root:
        return dict(files)
    prefix = root + "/"
    return {path[len(prefix) :]: data for path, data in files.items() if path.startswith(prefix)}


def package_json(app: Mapping[str, bytes]) -> dict[str, Any] | None:
    if "package.json" not in app:
        return None
    try:
        package = json.loads(app["package.json"])
    except ValueError:
        return {}
    return package if isinstance(package, dict) else {}


def procfile_web(app: Mapping[str, bytes]) -> str | None:
    for line in app.get("Procfile", b"").decode("utf-8", "replace").splitlines():
        kind, _, command = line.partition(":")
        if kind.strip() == "web" and command.strip():
            return command.strip()
    return None
