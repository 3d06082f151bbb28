"""The build plan as data: `BuildPlan` (runtime, framework, the commands that install,
build and start the app), what its artifact holds, and the CodeBuild buildspec that runs the
same commands; with the names and environment both build engines share.

The artifact layout is fixed here (`artifact_content`), so both engines pack the same tree:

- node and python: the app directory (the source root or `root_directory`), started by
  `start_command` from the artifact root. Python dependencies are installed into `.deps`
  inside the app, and Python build/start commands export PYTHONPATH and PATH for it.
- static: only `output_directory`, kept at that path in the artifact.
"""

from __future__ import annotations

import re
import shlex
from typing import Any, Literal

from chalicelib.core.models import Model

Runtime = Literal["static", "node", "python"]

PYTHON_DEPS_DIR = ".deps"
# Dependencies live inside the artifact so it runs anywhere it is unpacked; $PWD is the
# artifact root when the command starts.
PYTHON_ENV = (
    f'export PYTHONPATH="$PWD/{PYTHON_DEPS_DIR}${{PYTHONPATH:+:$PYTHONPATH}}" '
    f'PATH="$PWD/{PYTHON_DEPS_DIR}/bin:$PATH"; '
)

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

# The commands that name a runtime (in a Procfile, or in a build's commands).
PYTHON_COMMANDS = frozenset(
    {"python", "python3", "gunicorn", "uvicorn", "hypercorn", "flask", "daphne", "waitress-serve"}
)
NODE_COMMANDS = frozenset({"node", "npm", "npx", "yarn", "pnpm", "next"})


class PlanError(ValueError):
    """The project's settings cannot make a plan (the message says which and why)."""


class BuildPlan(Model):
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
