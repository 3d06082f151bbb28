"""The Dockerfiles rendered for each kind of plan, and the build commands that write them."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass

import pytest

from chalicelib.runtimes.image import (
    ADAPTER_IMAGE,
    DOCKERFILE,
    NODE_IMAGE,
    PYTHON_IMAGE,
    STATIC_SERVER_PATH,
    buildspec_commands,
    context_files,
    render_dockerfile,
)

ADAPTER = f"COPY --from={ADAPTER_IMAGE} /lambda-adapter /opt/extensions/lambda-adapter"


@dataclass
class Plan:
    runtime: str
    install_command: str | None = None
    build_command: str | None = None
    start_command: str | None = None
    output_directory: str | None = None
    port: int | None = None


def instructions(dockerfile: str) -> list[str]:
    return [line for line in dockerfile.splitlines() if line and not line.startswith("#")]


def test_python_app_image():
    plan = Plan(
        "python",
        install_command="pip install --target .deps -r requirements.txt",
        start_command='gunicorn -b "0.0.0.0:$PORT" app:app',
    )

    assert instructions(render_dockerfile(plan)) == [
        f"FROM {PYTHON_IMAGE}",
        ADAPTER,
        "ENV PYTHONUNBUFFERED=1 PYTHONPATH=/app/.deps",
        "WORKDIR /app",
        "COPY . .",
        "RUN " + json.dumps(["/bin/sh", "-c", plan.install_command]),
        "ENV PORT=8080 AWS_LWA_PORT=8080",
        "EXPOSE 8080",
        "CMD " + json.dumps(["/bin/sh", "-c", plan.start_command]),
    ]


def test_node_app_builds_with_dev_dependencies_and_runs_in_production():
    plan = Plan("node", "npm ci", "npm run build", "npm start", port=3000)

    lines = instructions(render_dockerfile(plan))

    assert lines[0] == f"FROM {NODE_IMAGE}" and lines[1] == ADAPTER
    build = lines.index('RUN ["/bin/sh", "-c", "npm run build"]')
    assert lines.index('RUN ["/bin/sh", "-c", "npm ci"]') < build
    assert build < lines.index("ENV NODE_ENV=production PATH=/app/node_modules/.bin:$PATH")
    assert "ENV PORT=3000 AWS_LWA_PORT=3000" in lines
    assert lines[-1] == 'CMD ["/bin/sh", "-c", "npm start"]'


def test_plain_static_site_is_served_by_the_static_server():
    lines = instructions(render_dockerfile(Plan("static")))

    assert lines == [
        f"FROM {PYTHON_IMAGE}",
        ADAPTER,
        f"COPY {STATIC_SERVER_PATH} /opt/shipyard/static_server.py",
        "COPY . /site",
        "ENV PORT=8080 AWS_LWA_PORT=8080",
        "EXPOSE 8080",
        'CMD ["python", "-I", "/opt/shipyard/static_server.py", "--dir", "/site", '
        '"--host", "0.0.0.0"]',
    ]


def test_built_static_site_builds_in_a_node_stage_and_serves_its_output():
    plan = Plan("static", "npm ci", "npm run build", output_directory="./dist/")

    lines = instructions(render_dockerfile(plan))

    assert lines[:5] == [
        f"FROM {NODE_IMAGE} AS build",
        "WORKDIR /app",
        "COPY . .",
        'RUN ["/bin/sh", "-c", "npm ci"]',
        'RUN ["/bin/sh", "-c", "npm run build"]',
    ]
    assert "COPY --from=build /app /site" in lines
    assert '"--dir", "/site/dist"' in lines[-1]


def test_commands_keep_their_quoting_and_newlines():
    command = "echo \"it's $HOME\" \\\n && python -c 'print(1)'"
    dockerfile = render_dockerfile(Plan("python", start_command=command))

    cmd = next(line for line in dockerfile.splitlines() if line.startswith("CMD "))
    assert json.loads(cmd.removeprefix("CMD ")) == ["/bin/sh", "-c", command]


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (Plan("python"), "start command"),
        (Plan("ruby", start_command="ruby app.rb"), "no image"),
        (Plan("static", output_directory="../elsewhere"), "leaves the app directory"),
    ],
)
def test_plans_that_cannot_make_an_image(plan, message):
    with pytest.raises(ValueError, match=message):
        render_dockerfile(plan)


def test_buildspec_commands_write_the_context_files(tmp_path):
    plan = Plan("static", output_directory="public")
    commands = buildspec_commands(plan, image_uri="123.dkr.ecr.us-east-1.amazonaws.com/apps:d1")
    writes = [c for c in commands if "base64 -d" in c]

    for command in writes:
        subprocess.run(["/bin/sh", "-c", command], cwd=tmp_path, check=True)

    expected = context_files(plan)
    assert set(expected) == {DOCKERFILE, STATIC_SERVER_PATH}
    for path, text in expected.items():
        assert (tmp_path / path).read_text() == text
    assert commands[-2:] == [
        f'docker build -f {DOCKERFILE} -t "123.dkr.ecr.us-east-1.amazonaws.com/apps:d1" .',
        'docker push "123.dkr.ecr.us-east-1.amazonaws.com/apps:d1"',
    ]
