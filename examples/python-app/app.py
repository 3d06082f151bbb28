"""A small web app on Python's standard library alone: no dependencies to install.

It listens on $PORT, answers /health for Shipyard's health check, and shows APP_VERSION on
its page so a rollback to an older deployment can be seen at a glance.
"""

import html
import json
import os
import platform
import signal
import sys
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = os.environ.get("APP_VERSION", "dev")
GREETING = os.environ.get("GREETING", "Hello from Shipyard")
STARTED_AT = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{greeting}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem}}
code{{background:#f2f2f2;padding:.1rem .3rem;border-radius:3px}}</style></head>
<body>
<h1>{greeting}</h1>
<p>Version <code id="version">{version}</code>, started {started_at}.</p>
<p>Python {python}. Try <a href="/health">/health</a> and <a href="/api/info">/api/info</a>.</p>
</body>
</html>
"""


class Handler(BaseHTTPRequestHandler):
    server_version = "python-app"

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/":
            page = PAGE.format(
                greeting=html.escape(GREETING),
                version=html.escape(VERSION),
                started_at=STARTED_AT,
                python=platform.python_version(),
            )
            self.reply(200, "text/html; charset=utf-8", page.encode())
        elif path == "/health":
            self.reply(200, "application/json", b'{"status": "ok"}')
        elif path == "/api/info":
            info = {"version": VERSION, "started_at": STARTED_AT, "pid": os.getpid()}
            self.reply(200, "application/json", json.dumps(info).encode())
        else:
            self.reply(404, "text/plain; charset=utf-8", b"not found\n")

    def reply(self, status, content_type, body):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        print(f"{self.address_string()} {format % args}", flush=True)


def main():
    port = int(os.environ.get("PORT", "8080"))
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    # Shipyard stops an app with SIGTERM: leave cleanly instead of dying mid-request.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"python-app {VERSION} listening on port {port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
