"""The local stack: moto in server mode as AWS, the resources of infra/, the API on
127.0.0.1:8000 and the pump that does what AWS would do (local/pump.py). On Ctrl-C it
stops the apps it runs; started again on the same moto, it restarts them.

    python -m chalicelib.local.stack [--port 8000]

If a moto server already listens on SHIPYARD_MOTO_PORT (default 5000), it is used and
left running on exit, so its data outlives restarts of the API; otherwise one is started
and stopped with the stack, and its data (everything: it lives in memory) goes with it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

from chalicelib.core.settings import state_dir
from chalicelib.host import sandbox
from chalicelib.host.processes import accepts, stop_process
from chalicelib.local import collector, env

_PROBE_S = 0.2  # how long a probe of a port on this machine waits to connect
# Requests that run the app at once (local/gateway.Turns): enough to keep the API's process
# and moto's busy on two cores (6, 12 and 16 measured the same as 8; no turns at all had a
# longer tail), few enough that each one gets the GIL back promptly. One that has run
# OVERTIME_S stops counting.
DEFAULT_CONCURRENCY = 8
OVERTIME_S = 0.5


def start_moto(port: int) -> subprocess.Popen | None:
    """Start moto unless one already listens; None if an existing one is reused."""
    if accepts(port, _PROBE_S):
        print(f"Using the moto server already on 127.0.0.1:{port}", flush=True)
        return None
    log = open(state_dir() / "moto.log", "ab")  # noqa: SIM115 - the child keeps it open
    process = subprocess.Popen(
        [sys.executable, "-m", "chalicelib.local.moto_server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while not accepts(port, _PROBE_S):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"moto did not start; see {state_dir() / 'moto.log'}")
        time.sleep(0.1)
    return process


def configure_moto(port: int) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/moto-api/config",
        data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request, timeout=10).close()


def first_workspace() -> tuple[str, str]:
    """The workspace made on first start (remade if moto lost it) and its key."""
    from chalicelib.accounts.workspaces import create_with_key
    from chalicelib.store import workspaces as store

    path = state_dir() / "first-workspace.json"
    if path.exists():
        path.chmod(0o600)
        saved = json.loads(path.read_text())
        if store.get_workspace(saved["workspace_id"]) is not None:
            return saved["workspace_id"], saved["api_key"]
    workspace, key = create_with_key("My workspace", os.environ.get("SHIPYARD_FIRST_TIER", "pro"))
    env.write_private(path, json.dumps({"workspace_id": workspace["id"], "api_key": key}))
    return workspace["id"], key


def concurrency() -> int:
    """SHIPYARD_LOCAL_CONCURRENCY, checked: a whole number of at least 1."""
    raw = os.environ.get("SHIPYARD_LOCAL_CONCURRENCY", str(DEFAULT_CONCURRENCY))
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise SystemExit(
            f"error: SHIPYARD_LOCAL_CONCURRENCY must be a whole number of at least 1, not {raw!r}"
        )
    return value


def serve(host: str, port: int, turns: int = DEFAULT_CONCURRENCY):
    from chalice.config import Config
    from chalice.local import CustomLocalChalice, LocalChalice, LocalDevServer

    from app import app
    from chalicelib.local.gateway import ShipyardServer, Turns, handler_class

    # Thread-local current_request, as `chalice local` does, for the threaded server.
    CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
    app.__class__ = CustomLocalChalice
    config = Config.create(chalice_app=app, app_name="shipyard", chalice_stage="local")
    handler = handler_class(app, config, Turns(turns, OVERTIME_S))
    return LocalDevServer(app, config, host, port, handler_cls=handler, server_cls=ShipyardServer)


def start_pump(supervisor):
    """The pump (local/pump.py) and, in the background, the recovery of what a previous
    run left on the same moto data (local/recovery.py), then the supervision of the
    running apps (local/supervision.py), which starts once recovery has adopted them."""
    import app as handlers
    from chalicelib.local.pump import Pump
    from chalicelib.local.recovery import recover

    pump = Pump(handlers.app, handlers)
    pump.start()

    def run_recovery() -> None:
        counts = recover()
        supervisor.start()
        if any(counts.values()):
            done = ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in counts.items() if n)
            print(f"Recovered what the last run left: {done}; supervising", flush=True)

    threading.Thread(target=run_recovery, name="recovery", daemon=True).start()
    return pump


def _sandbox_line() -> str:
    if sandbox.state() == "on":
        return "on (builds and apps run in bubblewrap)"
    return "OFF: builds and apps run unsandboxed (SHIPYARD_ALLOW_UNSANDBOXED=1)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.local.stack")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
    args = parser.parse_args(argv)

    turns = concurrency()
    env.private_state_dir()
    collector.freeze_survivors()
    moto_port = env.moto_port()
    os.environ.setdefault("SHIPYARD_PUBLIC_URL", f"http://{args.host}:{args.port}")
    env.apply(moto_port)
    os.environ.setdefault("SHIPYARD_STATE_DIR", str(state_dir()))
    try:
        sandbox.limits()
    except sandbox.Unsandboxed as refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 1
    if accepts(args.port, _PROBE_S):
        print(f"error: port {args.port} is in use; pick another with PORT=...", file=sys.stderr)
        return 1
    moto = start_moto(moto_port)
    stopping = threading.Event()

    def stop(*_: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server = None
    pump = None
    supervisor = None
    try:
        configure_moto(moto_port)
        from infra.provision import provision

        provision(os.environ.get("SHIPYARD_RESOURCE_PREFIX", "shipyard"))
        workspace_id, key = first_workspace()
        server = serve(args.host, args.port, turns)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        from chalicelib.local.supervision import SupervisorLoop

        supervisor = SupervisorLoop()
        pump = start_pump(supervisor)
        print(
            f"\nShipyard is running on http://{args.host}:{args.port}\n"
            f"  workspace: {workspace_id}\n"
            f"  API key:   {key}\n"
            f"  sandbox:   {_sandbox_line()}\n\n"
            f"  export SHIPYARD_URL=http://{args.host}:{args.port}\n"
            f"  export SHIPYARD_API_KEY={key}\n\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        stopping.wait()
    finally:
        print("Stopping...", flush=True)
        if server is not None:
            server.shutdown()
        if supervisor is not None:
            supervisor.stop()
        if pump is not None:
            pump.stop()
            from chalicelib.pipeline import engines

            engines.shutdown()
        if moto is not None:
            stop_process(moto, grace_s=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
