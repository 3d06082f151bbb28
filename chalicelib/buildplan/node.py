"""Node apps and static sites (built by a node toolchain or served as they are): their
framework from package.json, their package manager from the lockfile, and their install,
build and start commands.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from chalicelib.buildplan.files import procfile_web

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

NODE_ENTRY_FILES = ("server.js", "index.js", "app.js", "main.js")
NODE_LOCKFILES = (
    ("package-lock.json", "npm", "npm ci"),
    ("npm-shrinkwrap.json", "npm", "npm ci"),
    ("yarn.lock", "yarn", "yarn install --frozen-lockfile"),
    ("pnpm-lock.yaml", "pnpm", "pnpm install --frozen-lockfile"),
)


def _node_dependencies(package: Mapping[str, Any]) -> set[str]:
    names: set[str] = set()
    for key in ("dependencies", "devDependencies"):
        section = package.get(key)
        if isinstance(section, dict):
            names.update(section)
    return names


def npm_scripts(package: Mapping[str, Any]) -> dict[str, str]:
    scripts = package.get("scripts")
    return (
        {k: v for k, v in scripts.items() if isinstance(v, str)}
        if isinstance(scripts, dict)
        else {}
    )


def node_framework(package: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(server framework, static framework, its output directory) from the dependencies."""
    deps = _node_dependencies(package)
    server = next((name for dep, name in NODE_SERVER_FRAMEWORKS if dep in deps), None)
    static = next(((name, out) for dep, name, out in NODE_STATIC_FRAMEWORKS if dep in deps), None)
    return server, static[0] if static else None, static[1] if static else None


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
    scripts = npm_scripts(package)
    build = (
        (f"{tool} run build" if tool != "yarn" else "yarn build") if "build" in scripts else None
    )
    return install, build, tool


def node_plan(app: Mapping[str, bytes], package: dict[str, Any] | None) -> dict[str, Any]:
    package = package or {}
    install, build, tool = _node_install_and_build(app, package)
    server, static, _ = node_framework(package)
    procfile = procfile_web(app)
    main = package.get("main")
    if procfile:
        start = procfile
    elif "start" in npm_scripts(package):
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


def static_plan(app: Mapping[str, bytes], package: dict[str, Any] | None) -> dict[str, Any]:
    if package is not None:
        install, build, _ = _node_install_and_build(app, package)
        _, static, output = node_framework(package)
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
