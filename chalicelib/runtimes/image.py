"""The container image of a deployment for the AWS runtime: its Dockerfile and build context.

An app built for Shipyard is a plain HTTP server that listens on $PORT. Lambda speaks events,
not HTTP, so every image carries the AWS Lambda Web Adapter as a Lambda extension
(`/opt/extensions/lambda-adapter`): it starts with the container, waits until the app answers
its readiness check, and turns each function URL event into an HTTP request to the app. The
same image also runs unchanged anywhere a container runs (the adapter stays idle outside Lambda).

The Dockerfile installs and builds inside the image, so native dependencies match the image's
platform. The build context is the app's directory (`root_directory` already applied) with
the files of `context_files(plan)` added; `buildspec_commands` is what a CodeBuild build runs.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

ADAPTER_IMAGE = "public.ecr.aws/awsguru/aws-lambda-adapter:0.8.4"
PYTHON_IMAGE = "public.ecr.aws/docker/library/python:3.12-slim"
NODE_IMAGE = "public.ecr.aws/docker/library/node:20-slim"
DEFAULT_PORT = 8080
DOCKERFILE = ".shipyard/Dockerfile"
STATIC_SERVER_PATH = ".shipyard/static_server.py"

_STATIC_SERVER_SOURCE = Path(__file__).with_name("static_server.py")
_ADAPTER = f"COPY --from={ADAPTER_IMAGE} /lambda-adapter /opt/extensions/lambda-adapter"


def render_dockerfile(plan: Any) -> str:
    """The Dockerfile for a plan (duck-typed BuildPlan: runtime, install_command,
    build_command, start_command, output_directory, port)."""
    if plan.runtime == "static":
        return _static(plan)
    if plan.runtime not in ("python", "node"):
        raise ValueError(f"no image for runtime {plan.runtime!r}")
    if not plan.start_command:
        raise ValueError(f"a {plan.runtime} app needs a start command")
    port = plan.port or DEFAULT_PORT
    if plan.runtime == "python":
        base = PYTHON_IMAGE
        build_env = ["ENV PYTHONUNBUFFERED=1 PYTHONPATH=/app/.deps"]
        run_env = []
    else:
        base = NODE_IMAGE
        build_env = []
        # Set after the build: with NODE_ENV=production npm skips the devDependencies
        # that build tools come from.
        run_env = ["ENV NODE_ENV=production PATH=/app/node_modules/.bin:$PATH"]
    lines = [
        f"# Rendered by Shipyard for a {plan.runtime} app (see docs/runtimes.md).",
        f"FROM {base}",
        _ADAPTER,
        *build_env,
        "WORKDIR /app",
        "COPY . .",
        *_run(plan.install_command),
        *_run(plan.build_command),
        *run_env,
        f"ENV PORT={port} AWS_LWA_PORT={port}",
        f"EXPOSE {port}",
        f"CMD {_shell(plan.start_command)}",
    ]
    return "\n".join(lines) + "\n"


def context_files(plan: Any) -> dict[str, str]:
    """Files to add to the app's directory before `docker build -f .shipyard/Dockerfile .`."""
    files = {DOCKERFILE: render_dockerfile(plan)}
    if plan.runtime == "static":
        files[STATIC_SERVER_PATH] = _STATIC_SERVER_SOURCE.read_text()
    return files


def buildspec_commands(plan: Any, image_uri: str = "$IMAGE_URI") -> list[str]:
    """Shell commands (run in the app's directory) that write the context files, build the
    image and push it to ECR. image_uri may be a shell variable set on the build."""
    commands = []
    for path, text in context_files(plan).items():
        encoded = base64.b64encode(text.encode()).decode()
        commands.append(
            f"mkdir -p \"$(dirname '{path}')\" && echo {encoded} | base64 -d > '{path}'"
        )
    registry = f'"$(echo "{image_uri}" | cut -d/ -f1)"'
    commands += [
        "aws ecr get-login-password | docker login --username AWS --password-stdin " + registry,
        f'docker build -f {DOCKERFILE} -t "{image_uri}" .',
        f'docker push "{image_uri}"',
    ]
    return commands


def _static(plan: Any) -> str:
    site = _site_path(plan.output_directory)
    port = plan.port or DEFAULT_PORT
    lines = [
        "# Rendered by Shipyard for a static site (see docs/runtimes.md).",
    ]
    copy_site = "COPY . /site"
    if plan.install_command or plan.build_command:
        # Build tools (npm, vite...) live in the build stage only; the image serves files.
        lines += [
            f"FROM {NODE_IMAGE} AS build",
            "WORKDIR /app",
            "COPY . .",
            *_run(plan.install_command),
            *_run(plan.build_command),
        ]
        copy_site = "COPY --from=build /app /site"
    lines += [
        f"FROM {PYTHON_IMAGE}",
        _ADAPTER,
        f"COPY {STATIC_SERVER_PATH} /opt/shipyard/static_server.py",
        copy_site,
        f"ENV PORT={port} AWS_LWA_PORT={port}",
        f"EXPOSE {port}",
        "CMD "
        + json.dumps(
            ["python", "-I", "/opt/shipyard/static_server.py", "--dir", site, "--host", "0.0.0.0"]
        ),
    ]
    return "\n".join(lines) + "\n"


def _site_path(output_directory: str | None) -> str:
    parts = [part for part in (output_directory or "").split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"output directory {output_directory!r} leaves the app directory")
    return "/".join(["/site", *parts])


def _run(command: str | None) -> list[str]:
    return [f"RUN {_shell(command)}"] if command else []


def _shell(command: str) -> str:
    # The JSON (exec) form of RUN/CMD keeps quotes, `$` and newlines exactly as written.
    return json.dumps(["/bin/sh", "-c", command])
