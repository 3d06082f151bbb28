"""The CLI is a client that runs anywhere Python does: standard library only, no
Shipyard server code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_cli_imports_without_site_packages_or_server_code():
    # `-S` leaves site-packages (pydantic, boto3, chalice...) out of reach.
    probe = (
        "import sys, shipyard_cli.cli; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'chalicelib', 'app', 'boto3'}))"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", probe], cwd=ROOT, capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_bin_wrapper_runs_it_from_anywhere(tmp_path):
    result = subprocess.run(
        [str(ROOT / "bin" / "shipyard"), "--version"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"},
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("shipyard ")


def test_a_missing_api_key_is_explained():
    result = subprocess.run(
        [sys.executable, "-m", "shipyard_cli", "projects", "list"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "SHIPYARD_STATE_DIR": "/nonexistent"},
    )

    assert result.returncode == 1
    assert "error: SHIPYARD_API_KEY is not set (missing_api_key)" in result.stderr
    assert "hint:" in result.stderr


def test_bad_arguments_and_no_project_exit_2_as_docs_cli_md_says(tmp_path):
    # Given: a key and an API that is never reached (both refusals come before a request)
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "SHIPYARD_URL": "http://127.0.0.1:9",
        "SHIPYARD_API_KEY": "sk_live_x",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }

    def shipyard(*args):
        return subprocess.run(
            [sys.executable, "-m", "shipyard_cli", *args],
            cwd=tmp_path,  # no `shipyard link` here or above
            capture_output=True,
            text=True,
            env=env,
        )

    # When
    unknown = shipyard("bogus")
    missing = shipyard("status")
    # Then
    assert unknown.returncode == 2 and "invalid choice" in unknown.stderr
    assert missing.returncode == 2, missing.stderr
    assert "error: no project given (usage)" in missing.stderr
