"""What an API cold start imports: the MCP server's wire types (hundreds of pydantic models)
only load with the first request to /v1/mcp."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_app_leaves_the_mcp_wire_types_out():
    probe = (
        "import sys, app; print('mcp_types' in sys.modules, 'chalicelib.api.mcp' in sys.modules)"
    )
    env = {"SHIPYARD_STAGE": "test", "SHIPYARD_CURSOR_SECRET": "x" * 32, "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, env=env
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True"]
