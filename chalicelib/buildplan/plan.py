"""The build plan: which runtime and framework an app is, and the commands that install,
build and start it, detected from its files and overridden by the project's settings.

One plan feeds both build engines: LocalBuilder runs its commands in a temp dir, and
`BuildPlan.buildspec()` renders the same commands for CodeBuild. The artifact layout is
fixed here too (`artifact_content`), so both engines pack the same tree:

- node and python: the app directory (the source root or `root_directory`), started by
  `start_command` from the artifact root. Python dependencies are installed into `.deps`
  inside the app, and Python build/start commands export PYTHONPATH and PATH for it.
- static: only `output_directory`, kept at that path in the artifact.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel

Runtime = Literal["static", "node", "python"]

PYTHON_DEPS_DIR = ".deps"
# Dependencies live inside the artifact so it runs anywhere it is unpacked; $PWD is the
# artifact root when the command starts.
PYTHON_ENV = (
    f'export PYTHONPATH="$PWD/{PYTHON_DEPS_DIR}${{PYTHONPATH:+:$PYTHONPATH}}" '
    f'PATH="$PWD/{PYTHON_DEPS_DIR}/bin:$PATH"; '
)
# Servers bind $HOST when the runtime sets it (the local one binds loopback only).
HOST = "${HOST:-0.0.0.0}"

# Quiet, non-interactive package managers, for both build engines.
BUILD_ENV = {
    "CI": "true",
    "npm_config_audit": "false",
    "npm_config_fund": "false",
    "npm_config_update_notifier": "false",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PIP_NO_INPUT": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
}

NODE_VERSION = "20"
PYTHON_VERSION = "3.11"
ARTIFACT_NAME = "artifact.tar.gz"
ALWAYS_EXCLUDED = (".git",)

# (package, framework) in priority order: a server framework makes an app a node app.
NODE_SERVER_FRAMEWORKS = (
    ("next", "next"),
    ("@nestjs/core", "nest"),
    ("fastify", "fastify"),
    ("koa", "koa"),
    ("@hapi/hapi", "hapi"),
    ("express", "express"),
)
# (package, framework, output directory): these build a static site.
NODE_STATIC_FRAMEWORKS = (
    ("astro", "astro", "dist"),
    ("gatsby", "gatsby", "public"),
    ("react-scripts", "create-react-app", "build"),
    ("@vue/cli-service", "vue", "dist"),
    ("@11ty/eleventy", "eleventy", "_site"),
    ("vite", "vite", "dist"),
    ("parcel", "parcel", "dist"),
)
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
NODE_ENTRY_FILES = ("server.js", "index.js", "app.js", "main.js")
NODE_LOCKFILES = (
    ("package-lock.json", "npm", "npm ci"),
    ("npm-shrinkwrap.json", "npm", "npm ci"),
    ("yarn.lock", "yarn", "yarn install --frozen-lockfile"),
    ("pnpm-lock.yaml", "pnpm", "pnpm install --frozen-lockfile"),
)

PYTHON_MANIFESTS = ("requirements.txt", "pyproject.toml", "Pipfile", "setup.py")
PYTHON_ENTRY_FILES = ("app.py", "main.py", "server.py")
PYTHON_FRAMEWORKS = ("django", "fastapi", "flask", "starlette", "aiohttp", "bottle")
PYTHON_COMMANDS = frozenset(
    {"python", "python3", "gunicorn", "uvicorn", "hypercorn", "flask", "daphne", "waitress-serve"}
)
NODE_COMMANDS = frozenset({"node", "npm", "npx", "yarn", "pnpm", "next"})


class PlanError(ValueError):
    """The project's settings cannot make a plan (the message says which and why)."""


class BuildPlan(BaseModel):
    runtime: Runtime
    framework: str | None
    root_directory: str | None
    install_command: str | None
    build_command: str | None
    start_command: str | None
    output_directory: str | None
    port: int | None

    def commands(self) -> list[tuple[str, str]]:
        """The (step, command) pairs a build runs, in order, from the app directory."""
        steps = (("install", self.install_command), ("build", self.build_command))
        return [(step, command) for step, command in steps if command]

    def artifact_content(self) -> tuple[str, tuple[str, ...]]:
        """What the artifact holds: (path inside the app dir, top-level names left out)."""
        if self.runtime == "static":
            output = self.output_directory or "."
            if output == ".":
                return ".", (*ALWAYS_EXCLUDED, "node_modules")
            return output, ()
        return ".", ALWAYS_EXCLUDED

    def buildspec(self) -> dict[str, Any]:
        """The CodeBuild buildspec (version 0.2) of this plan.

        CodeBuild unpacks only zip sources, so the uploaded .tar.gz (named by
        $SHIPYARD_SOURCE_ARCHIVE, already checked by inspect_archive) is unpacked first.
        The artifact is packed as a tar.gz, as LocalBuilder packs it, and uploaded as the
        build's only artifact file.
        """
        app = '"$CODEBUILD_SRC_DIR"' + (
            f"/{shlex.quote(self.root_directory)}" if self.root_directory else ""
        )
        source = '"$CODEBUILD_SRC_DIR/$SHIPYARD_SOURCE_ARCHIVE"'
        install = [
            f'tar -xzf {source} -C "$CODEBUILD_SRC_DIR" --no-same-owner && rm -f {source}',
        ]
        build: list[str] = []
        for step, command in self.commands():
            (install if step == "install" else build).append(f"cd {app} && {command}")
        include, excluded = self.artifact_content()
        excludes = "".join(f" --exclude={shlex.quote('./' + name)}" for name in excluded)
        build.append(
            f"tar -czf /tmp/{ARTIFACT_NAME} -C {app}{excludes} {shlex.quote(include)}"
            f' && mkdir -p "$CODEBUILD_SRC_DIR/.shipyard-out"'
            f' && mv /tmp/{ARTIFACT_NAME} "$CODEBUILD_SRC_DIR/.shipyard-out/"'
        )
        install_phase: dict[str, Any] = {"on-failure": "ABORT", "commands": install}
        versions = self._runtime_versions()
        if versions:
            install_phase["runtime-versions"] = versions
        return {
            "version": 0.2,
            "env": {"shell": "bash", "variables": dict(BUILD_ENV)},
            "phases": {
                "install": install_phase,
                "build": {"on-failure": "ABORT", "commands": build},
            },
            "artifacts": {
                "files": [ARTIFACT_NAME],
                "base-directory": ".shipyard-out",
                "discard-paths": "yes",
            },
        }

    def _runtime_versions(self) -> dict[str, str]:
        words = {word for _, command in self.commands() for word in re.findall(r"[\w.-]+", command)}
        versions = {}
        if self.runtime == "node" or words & NODE_COMMANDS:
            versions["nodejs"] = NODE_VERSION
        if self.runtime == "python" or words & (PYTHON_COMMANDS | {"pip", "pip3"}):
            versions["python"] = PYTHON_VERSION
        return versions


def make_plan(
    files: Mapping[str, bytes], project_runtime: str, build: dict, run: dict
) -> BuildPlan:
    """Detect the plan from the archive's manifest files; explicit settings win."""
    build = build or {}
    run = run or {}
    root = _root_directory(files, build.get("root_directory"))
    app = _under(files, root)
    package = _package_json(app)
    runtime = project_runtime if project_runtime != "auto" else _detect_runtime(app, package)
    if runtime not in ("static", "node", "python"):
        raise PlanError(f"unknown runtime '{runtime}'")
    plan = {"static": _static_plan, "node": _node_plan, "python": _python_plan}[runtime](
        app, package
    )
    for key in ("install_command", "build_command", "output_directory"):
        if build.get(key):
            plan[key] = build[key]
    if run.get("start_command") and runtime != "static":
        plan["start_command"] = run["start_command"]
    if runtime == "python":
        plan["build_command"] = _with_python_env(plan["build_command"])
        plan["start_command"] = _with_python_env(plan["start_command"])
    if plan.get("output_directory"):
        plan["output_directory"] = _relative_dir(plan["output_directory"], "output_directory")
    return BuildPlan(runtime=runtime, root_directory=root, port=run.get("port"), **plan)


def _with_python_env(command: str | None) -> str | None:
    return PYTHON_ENV + command if command else None


def _parts(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


def _relative_dir(path: str, setting: str) -> str:
    parts = _parts(path)
    if path.startswith("/") or ".." in parts:
        raise PlanError(f"{setting} '{path}' must stay inside the app directory (no '/' or '..')")
    return "/".join(parts) or "."


def _root_directory(files: Mapping[str, bytes], setting: str | None) -> str | None:
    if setting:
        root = _relative_dir(setting, "root_directory")
        return None if root == "." else root
    # An archive made with `tar czf app.tgz myapp/` wraps everything in one directory.
    if files and not any("/" not in path for path in files):
        tops = {path.split("/", 1)[0] for path in files}
        if len(tops) == 1:
            top = tops.pop()
            if any(f"{top}/{name}" in files for name in ROOT_MARKERS):
                return top
    return None


def _under(files: Mapping[str, bytes], root: str | None) -> dict[str, bytes]:
    if not root:
        return dict(files)
    prefix = root + "/"
    return {path[len(prefix) :]: data for path, data in files.items() if path.startswith(prefix)}


def _package_json(app: Mapping[str, bytes]) -> dict[str, Any] | None:
    if "package.json" not in app:
        return None
    try:
        package = json.loads(app["package.json"])
    except ValueError:
        return {}
    return package if isinstance(package, dict) else {}


def _node_dependencies(package: Mapping[str, Any]) -> set[str]:
    names: set[str] = set()
    for key in ("dependencies", "devDependencies"):
        section = package.get(key)
        if isinstance(section, dict):
            names.update(section)
    return names


def _scripts(package: Mapping[str, Any]) -> dict[str, str]:
    scripts = package.get("scripts")
    return (
        {k: v for k, v in scripts.items() if isinstance(v, str)}
        if isinstance(scripts, dict)
        else {}
    )


def _procfile_web(app: Mapping[str, bytes]) -> str | None:
    for line in app.get("Procfile", b"").decode("utf-8", "replace").splitlines():
        kind, _, command = line.partition(":")
        if kind.strip() == "web" and command.strip():
            return command.strip()
    return None


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


def _node_framework(package: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(server framework, static framework, its output directory) from the dependencies."""
    deps = _node_dependencies(package)
    server = next((name for dep, name in NODE_SERVER_FRAMEWORKS if dep in deps), None)
    static = next(((name, out) for dep, name, out in NODE_STATIC_FRAMEWORKS if dep in deps), None)
    return server, static[0] if static else None, static[1] if static else None


def _detect_runtime(app: Mapping[str, bytes], package: dict[str, Any] | None) -> str:
    procfile = _procfile_web(app)
    procfile_runtime = _command_runtime(procfile) if procfile else None
    if procfile_runtime:
        return procfile_runtime
    python_manifest = any(name in app for name in PYTHON_MANIFESTS)
    if python_manifest and _python_framework(app):
        return "python"
    if package is not None:
        server, static, _ = _node_framework(package)
        scripts = _scripts(package)
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


def _node_tool(app: Mapping[str, bytes]) -> tuple[str, str | None]:
    """(package manager, lockfile install command or None)."""
    for lockfile, tool, install in NODE_LOCKFILES:
        if lockfile in app:
            return tool, install
    return "npm", None


def _node_install_and_build(
    app: Mapping[str, bytes], package: Mapping[str, Any]
) -> tuple[str | None, str | None, str]:
    tool, install = _node_tool(app)
    if install is None and _node_dependencies(package):
        install = "npm install"
    scripts = _scripts(package)
    build = (
        (f"{tool} run build" if tool != "yarn" else "yarn build") if "build" in scripts else None
    )
    return install, build, tool


def _node_plan(app: Mapping[str, bytes], package: dict[str, Any] | None) -> dict[str, Any]:
    package = package or {}
    install, build, tool = _node_install_and_build(app, package)
    server, static, _ = _node_framework(package)
    procfile = _procfile_web(app)
    main = package.get("main")
    if procfile:
        start = procfile
    elif "start" in _scripts(package):
        start = f"{tool} start"
    elif server == "next":
        start = "node_modules/.bin/next start"
    elif isinstance(main, str) and main in app:
        start = f"node {shlex.quote(main)}"
    else:
        entry = next((name for name in NODE_ENTRY_FILES if name in app), None)
        start = f"node {entry}" if entry else f"{tool} start"
    return {
        "framework": server or static,
        "install_command": install,
        "build_command": build,
        "start_command": start,
        "output_directory": None,
    }


def _static_plan(app: Mapping[str, bytes], package: dict[str, Any] | None) -> dict[str, Any]:
    if package is not None:
        install, build, _ = _node_install_and_build(app, package)
        _, static, output = _node_framework(package)
        if static or build:
            return {
                "framework": static,
                "install_command": install,
                "build_command": build,
                "start_command": None,
                "output_directory": output or ("dist" if build else "."),
            }
    return {
        "framework": "static" if "index.html" in app else None,
        "install_command": None,
        "build_command": None,
        "start_command": None,
        "output_directory": ".",
    }


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


def _python_framework(app: Mapping[str, bytes]) -> str | None:
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


def _python_plan(app: Mapping[str, bytes], package: dict[str, Any] | None) -> dict[str, Any]:
    target = f"python3 -m pip install --target {PYTHON_DEPS_DIR}"
    if "requirements.txt" in app:
        install = f"{target} -r requirements.txt"
    elif "pyproject.toml" in app or "setup.py" in app:
        install = f"{target} ."
    else:
        install = None
    framework = _python_framework(app)
    return {
        "framework": framework,
        "install_command": install,
        "build_command": None,
        "start_command": _procfile_web(app) or _python_start(app, framework),
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
