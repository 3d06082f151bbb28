"""The web dashboard, `GET /`: static HTML, CSS and JS from `api/static/`, served by the API
itself with a Content-Security-Policy that lets the page load nothing from elsewhere and run
no inline script. It talks to the same REST API with the key the user signs in with."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from chalice import Response

from chalicelib.api.http import RequestContext, Router
from chalicelib.core.errors import NotFound

router = Router(__name__, "dashboard")
STATIC = Path(__file__).parent / "static"
ASSETS = {"app.js": "text/javascript", "app.css": "text/css", "icon.svg": "image/svg+xml"}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@cache
def _read(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def _page(name: str, content_type: str) -> Response:
    return Response(
        body=_read(name),
        status_code=200,
        headers={**SECURITY_HEADERS, "Content-Type": f"{content_type}; charset=utf-8"},
    )


@router.route(
    "/",
    "GET",
    auth=False,
    workspace=False,
    content={"text/html": {"schema": {"type": "string"}}},
)
def index(ctx: RequestContext):
    """The dashboard's page."""
    return _page("index.html", "text/html")


@router.route(
    "/dashboard/{name}",
    "GET",
    auth=False,
    workspace=False,
    content={media: {"schema": {"type": "string"}} for media in ASSETS.values()},
)
def asset(ctx: RequestContext, name: str):
    """The dashboard's script, style sheet and icon."""
    if name not in ASSETS:
        raise NotFound("Asset")
    return _page(name, ASSETS[name])
