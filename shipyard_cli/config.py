"""Where the CLI's credentials and project come from.

- The API's URL and key: `--url`/`--api-key`, then `SHIPYARD_URL`/`SHIPYARD_API_KEY`, then
  the config file `shipyard login` writes (mode 0600, `$XDG_CONFIG_HOME/shipyard/config.json`,
  by default `~/.config/shipyard/config.json`), then, for an API on this machine, the first
  workspace's key the local stack keeps (`$SHIPYARD_STATE_DIR` or `.local/` of this checkout,
  `first-workspace.json`).
- The project: `--project`, then `SHIPYARD_PROJECT`, then the `.shipyard/project.json` that
  `shipyard link` wrote in this directory or a parent.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8000"
CHECKOUT = Path(__file__).resolve().parents[1]
LINK_FILE = Path(".shipyard") / "project.json"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def config_path() -> Path | None:
    base = os.environ.get("XDG_CONFIG_HOME")
    if not base:
        home = os.environ.get("HOME")
        if not home:
            return None
        base = str(Path(home) / ".config")
    return Path(base) / "shipyard" / "config.json"


def _read_json(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def save_login(url: str, api_key: str) -> Path:
    """Write the URL and key to the config file, readable by this user only."""
    path = config_path()
    if path is None:
        raise OSError("neither XDG_CONFIG_HOME nor HOME is set: nowhere to keep the key")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = json.dumps({"url": url, "api_key": api_key}, indent=2) + "\n"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(descriptor, "w") as handle:
        handle.write(data)
    return path


def forget_login() -> bool:
    path = config_path()
    if path is None or not path.exists():
        return False
    path.unlink()
    return True


def is_local(url: str) -> bool:
    return urllib.parse.urlsplit(url).hostname in LOOPBACK


def local_stack_key() -> str | None:
    """The local stack's first workspace key, if this machine runs one from this checkout."""
    state = os.environ.get("SHIPYARD_STATE_DIR")
    saved = _read_json((Path(state) if state else CHECKOUT / ".local") / "first-workspace.json")
    key = saved.get("api_key")
    return key if isinstance(key, str) else None


@dataclass(frozen=True)
class Credentials:
    url: str
    api_key: str | None
    source: str  # where the key came from, for `shipyard login --show` and errors


def credentials(url: str | None, api_key: str | None) -> Credentials:
    saved = _read_json(config_path())
    url = url or os.environ.get("SHIPYARD_URL") or saved.get("url") or DEFAULT_URL
    if api_key:
        return Credentials(url, api_key, "--api-key")
    if os.environ.get("SHIPYARD_API_KEY"):
        return Credentials(url, os.environ["SHIPYARD_API_KEY"], "SHIPYARD_API_KEY")
    if saved.get("api_key") and saved.get("url", "").rstrip("/") == url.rstrip("/"):
        return Credentials(url, saved["api_key"], str(config_path()))
    if is_local(url):
        key = local_stack_key()
        if key:
            return Credentials(url, key, "the local stack's first workspace")
    return Credentials(url, None, "none")


def find_link(start: Path | None = None) -> tuple[Path, dict[str, Any]] | None:
    """The nearest `.shipyard/project.json`, from `start` (the working directory) up."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        linked = _read_json(directory / LINK_FILE)
        if linked.get("project_id"):
            return directory / LINK_FILE, linked
    return None


def write_link(directory: Path, project: dict[str, Any], url: str) -> Path:
    path = directory / LINK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    link = {"project_id": project["id"], "slug": project["slug"], "url": url}
    path.write_text(json.dumps(link, indent=2) + "\n")
    return path
