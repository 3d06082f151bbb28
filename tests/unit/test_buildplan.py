"""The build plan: detection from files, the project's overrides, and the buildspec."""

from __future__ import annotations

import json

import pytest
import yaml

from chalicelib.buildplan.plan import PYTHON_ENV, PlanError, make_plan


def plan_of(files: dict[str, str | bytes], runtime: str = "auto", build=None, run=None):
    raw = {path: data.encode() if isinstance(data, str) else data for path, data in files.items()}
    return make_plan(raw, runtime, build or {}, run or {})


def package(**fields) -> str:
    return json.dumps(fields)


def test_plain_html_is_a_static_site_served_as_is():
    plan = plan_of({"index.html": "<h1>hi</h1>", "style.css": ""})
    assert (plan.runtime, plan.framework) == ("static", "static")
    assert plan.commands() == []
    assert plan.start_command is None
    assert plan.output_directory == "."
    assert plan.port is None
    assert plan.artifact_content() == (".", (".git", "node_modules"))


def test_nothing_recognisable_is_static_without_a_framework():
    plan = plan_of({})
    assert (plan.runtime, plan.framework, plan.output_directory) == ("static", None, ".")


def test_vite_builds_a_static_site_into_dist():
    plan = plan_of(
        {
            "package.json": package(
                scripts={"dev": "vite", "build": "vite build"}, devDependencies={"vite": "^5"}
            ),
            "package-lock.json": "{}",
            "index.html": "",
        }
    )
    assert (plan.runtime, plan.framework) == ("static", "vite")
    assert plan.commands() == [("install", "npm ci"), ("build", "npm run build")]
    assert plan.output_directory == "dist"
    assert plan.artifact_content() == ("dist", ())


@pytest.mark.parametrize(
    ("dependency", "framework", "output"),
    [("react-scripts", "create-react-app", "build"), ("gatsby", "gatsby", "public")],
)
def test_static_frameworks_have_their_output_directories(dependency, framework, output):
    plan = plan_of(
        {"package.json": package(scripts={"build": "x"}, dependencies={dependency: "1"})}
    )
    assert (plan.runtime, plan.framework, plan.output_directory) == ("static", framework, output)
    assert plan.install_command == "npm install"


def test_next_is_a_node_server():
    plan = plan_of(
        {
            "package.json": package(
                scripts={"build": "next build", "start": "next start"},
                dependencies={"next": "14", "react": "18"},
            ),
            "package-lock.json": "{}",
        }
    )
    assert (plan.runtime, plan.framework) == ("node", "next")
    assert plan.commands() == [("install", "npm ci"), ("build", "npm run build")]
    assert plan.start_command == "npm start"
    assert plan.artifact_content() == (".", (".git",))


def test_next_without_a_start_script_uses_its_binary():
    plan = plan_of(
        {"package.json": package(scripts={"build": "next build"}, dependencies={"next": "14"})}
    )
    assert plan.start_command == "node_modules/.bin/next start"


def test_express_with_vite_in_dev_dependencies_is_a_server():
    plan = plan_of(
        {
            "package.json": package(
                main="server.js",
                dependencies={"express": "4"},
                devDependencies={"vite": "5"},
            ),
            "server.js": "",
        }
    )
    assert (plan.runtime, plan.framework) == ("node", "express")
    assert plan.start_command == "node server.js"
    assert plan.build_command is None


def test_node_without_dependencies_needs_no_install():
    plan = plan_of({"package.json": package(scripts={"build": "node build.js", "start": "node ."})})
    assert plan.runtime == "node"
    assert plan.framework is None
    assert plan.commands() == [("build", "npm run build")]
    assert plan.start_command == "npm start"


def test_node_entry_file_without_package_scripts():
    plan = plan_of({"package.json": package(name="x"), "index.js": ""})
    assert (plan.runtime, plan.start_command) == ("node", "node index.js")


@pytest.mark.parametrize(
    ("lockfile", "install", "build", "start"),
    [
        ("yarn.lock", "yarn install --frozen-lockfile", "yarn build", "yarn start"),
        ("pnpm-lock.yaml", "pnpm install --frozen-lockfile", "pnpm run build", "pnpm start"),
        ("npm-shrinkwrap.json", "npm ci", "npm run build", "npm start"),
    ],
)
def test_lockfiles_choose_the_package_manager(lockfile, install, build, start):
    plan = plan_of(
        {
            "package.json": package(
                scripts={"build": "b", "start": "s"}, dependencies={"koa": "2"}
            ),
            lockfile: "",
        }
    )
    assert plan.framework == "koa"
    assert (plan.install_command, plan.build_command, plan.start_command) == (
        install,
        build,
        start,
    )


def test_flask_installs_into_the_artifact_and_runs_with_its_path():
    plan = plan_of({"requirements.txt": "Flask==3.0.0  # web\nrequests\n", "app.py": ""})
    assert (plan.runtime, plan.framework) == ("python", "flask")
    assert plan.install_command == "python3 -m pip install --target .deps -r requirements.txt"
    assert plan.start_command == (
        PYTHON_ENV + "python3 -m flask --app app run --host ${HOST:-0.0.0.0} --port $PORT"
    )
    assert 'PYTHONPATH="$PWD/.deps' in plan.start_command
    assert 'PATH="$PWD/.deps/bin:$PATH"' in plan.start_command


def test_flask_with_gunicorn():
    plan = plan_of({"requirements.txt": "flask\ngunicorn\n", "main.py": ""})
    assert plan.start_command.endswith("python3 -m gunicorn main:app --bind ${HOST:-0.0.0.0}:$PORT")


def test_fastapi_from_pyproject():
    plan = plan_of(
        {
            "pyproject.toml": (
                '[project]\nname = "api"\ndependencies = ["fastapi[standard]>=0.110"]\n'
            ),
            "main.py": "",
        }
    )
    assert (plan.runtime, plan.framework) == ("python", "fastapi")
    assert plan.install_command == "python3 -m pip install --target .deps ."
    assert plan.start_command.endswith(
        "python3 -m uvicorn main:app --host ${HOST:-0.0.0.0} --port $PORT"
    )


def test_django_with_gunicorn_finds_its_wsgi_module():
    plan = plan_of(
        {
            "requirements.txt": "Django>=5\ngunicorn\n",
            "manage.py": "",
            "mysite/wsgi.py": "",
        }
    )
    assert plan.framework == "django"
    assert plan.start_command.endswith(
        "python3 -m gunicorn mysite.wsgi --bind ${HOST:-0.0.0.0}:$PORT"
    )


def test_a_stdlib_server_is_http_server():
    plan = plan_of({"app.py": "import os\nfrom http.server import HTTPServer\n"})
    assert (plan.runtime, plan.framework) == ("python", "http.server")
    assert plan.install_command is None
    assert plan.start_command == PYTHON_ENV + "python3 app.py"


def test_procfile_web_line_is_the_start_command_and_names_the_runtime():
    plan = plan_of(
        {
            "Procfile": "release: ./migrate\nweb: gunicorn app:app --bind 0.0.0.0:$PORT\n",
            "requirements.txt": "gunicorn\n",
        }
    )
    assert plan.runtime == "python"
    assert plan.start_command == PYTHON_ENV + "gunicorn app:app --bind 0.0.0.0:$PORT"
    node = plan_of({"Procfile": "web: node web.js", "index.html": ""})
    assert (node.runtime, node.start_command) == ("node", "node web.js")


def test_python_framework_wins_over_a_package_json_for_assets():
    plan = plan_of(
        {
            "requirements.txt": "django\n",
            "manage.py": "",
            "package.json": package(scripts={"build": "webpack"}, devDependencies={"webpack": "5"}),
        }
    )
    assert (plan.runtime, plan.framework) == ("python", "django")


def test_settings_override_detection():
    files = {
        "package.json": package(scripts={"build": "vite build"}, devDependencies={"vite": "5"})
    }
    plan = plan_of(
        files,
        "node",
        build={"install_command": "npm i --omit=optional", "build_command": "npm run compile"},
        run={"start_command": "node dist/server.js", "port": 8080},
    )
    assert plan.runtime == "node"
    assert plan.commands() == [("install", "npm i --omit=optional"), ("build", "npm run compile")]
    assert plan.start_command == "node dist/server.js"
    assert plan.port == 8080


def test_static_settings_with_a_build_command_and_output():
    plan = plan_of(
        {"src/page.md": ""},
        "static",
        build={"build_command": "sh build.sh", "output_directory": "./public/"},
    )
    assert plan.runtime == "static"
    assert plan.commands() == [("build", "sh build.sh")]
    assert plan.output_directory == "public"
    assert plan.artifact_content() == ("public", ())


def test_python_overrides_still_get_the_dependency_path():
    plan = plan_of(
        {"requirements.txt": "flask"},
        "python",
        build={"build_command": "python3 manage.py collectstatic"},
        run={"start_command": "python3 -m mysite"},
    )
    assert plan.build_command == PYTHON_ENV + "python3 manage.py collectstatic"
    assert plan.start_command == PYTHON_ENV + "python3 -m mysite"


def test_root_directory_setting_scopes_detection():
    files = {"index.html": "", "api/requirements.txt": "fastapi\n", "api/main.py": ""}
    plan = plan_of(files, build={"root_directory": "api/"})
    assert (plan.runtime, plan.framework, plan.root_directory) == ("python", "fastapi", "api")


def test_a_single_wrapping_directory_becomes_the_root():
    plan = plan_of({"myapp/package.json": package(scripts={"start": "node ."}), "myapp/a/b.js": ""})
    assert (plan.runtime, plan.root_directory) == ("node", "myapp")
    # ... but not a directory that merely holds a script
    assert plan_of({"src/index.js": ""}).root_directory is None


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("root_directory", "../elsewhere"),
        ("root_directory", "/abs"),
        ("output_directory", "a/../../b"),
    ],
)
def test_paths_leaving_the_app_are_refused(setting, value):
    with pytest.raises(PlanError) as raised:
        plan_of({"index.html": ""}, build={setting: value})
    assert setting in str(raised.value)


def test_explicit_static_ignores_a_start_command():
    plan = plan_of({"index.html": ""}, "static", run={"start_command": "node x.js"})
    assert plan.start_command is None


def test_buildspec_renders_the_same_plan():
    # Given a vite site in a subdirectory
    plan = plan_of(
        {
            "web/package.json": package(
                scripts={"build": "vite build"}, devDependencies={"vite": "5"}
            ),
            "web/package-lock.json": "{}",
        },
        build={"root_directory": "web"},
    )

    # When its buildspec is rendered
    spec = plan.buildspec()

    # Then it is a version 0.2 buildspec that unpacks the source, runs the plan's commands
    # in the app directory and packs the output as the one artifact file
    assert spec["version"] == 0.2
    install = spec["phases"]["install"]
    assert install["runtime-versions"] == {"nodejs": "20"}
    assert install["commands"][0].startswith(
        'tar -xzf "$CODEBUILD_SRC_DIR/$SHIPYARD_SOURCE_ARCHIVE"'
    )
    assert install["commands"][1] == 'cd "$CODEBUILD_SRC_DIR"/web && npm ci'
    build = spec["phases"]["build"]["commands"]
    assert build[0] == 'cd "$CODEBUILD_SRC_DIR"/web && npm run build'
    assert build[1].startswith('tar -czf /tmp/artifact.tar.gz -C "$CODEBUILD_SRC_DIR"/web dist')
    assert spec["artifacts"] == {
        "files": ["artifact.tar.gz"],
        "base-directory": ".shipyard-out",
        "discard-paths": "yes",
    }
    assert spec["env"]["variables"]["CI"] == "true"
    # As a JSON string it is also the YAML CodeBuild reads
    assert yaml.safe_load(json.dumps(spec)) == spec


def test_buildspec_of_python_and_plain_static():
    python = plan_of({"requirements.txt": "flask", "app.py": ""}).buildspec()
    assert python["phases"]["install"]["runtime-versions"] == {"python": "3.11"}
    assert python["phases"]["install"]["commands"][1] == (
        'cd "$CODEBUILD_SRC_DIR" && python3 -m pip install --target .deps -r requirements.txt'
    )
    assert "--exclude=./.git ." in python["phases"]["build"]["commands"][-1]
    static = plan_of({"index.html": ""}).buildspec()
    assert "runtime-versions" not in static["phases"]["install"]
    assert static["phases"]["build"]["commands"][0].startswith(
        'tar -czf /tmp/artifact.tar.gz -C "$CODEBUILD_SRC_DIR" --exclude=./.git '
        "--exclude=./node_modules ."
    )


def test_root_directory_is_shell_quoted_in_the_buildspec():
    plan = plan_of({"my app/index.html": ""}, build={"root_directory": "my app"})
    assert plan.buildspec()["phases"]["build"]["commands"][0].startswith(
        "tar -czf /tmp/artifact.tar.gz -C \"$CODEBUILD_SRC_DIR\"/'my app'"
    )
