"""Routes of what a deployment built: its files, one file, the whole artifact."""

from __future__ import annotations

import mimetypes

from chalice import Response

from chalicelib.api.http import RequestContext, Router, choice
from chalicelib.deployments import files
from chalicelib.deployments.models import ArtifactFile

router = Router(__name__, "deployments")
DEPLOYMENT = "/v1/projects/{project_id}/deployments/{deployment_id}"
# A file of an app is served as a download, never rendered: an HTML file of the artifact
# opened on the API's own origin would run its scripts beside the dashboard.
DOWNLOAD_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"}


@router.route(
    DEPLOYMENT + "/files",
    "GET",
    scope="deployments:read",
    response=list[ArtifactFile],
    errors=(409,),
)
def list_files(ctx: RequestContext, project_id: str, deployment_id: str):
    """List the built artifact's files (path, size, type), in archive order."""
    limit, start = ctx.page_params(files.list_name(deployment_id), ctx.workspace_id)
    return files.list_files(ctx.workspace_id, project_id, deployment_id, limit, start)


@router.route(
    DEPLOYMENT + "/files/{path}",
    "GET",
    scope="deployments:read",
    errors=(409,),
    content={"*/*": {"schema": {}}},
)
def get_file(ctx: RequestContext, project_id: str, deployment_id: str, path: str):
    """Download one file of the artifact; `path` is URL-encoded as one segment (a%2Fb.js)."""
    name, data = files.read_file(ctx.workspace_id, project_id, deployment_id, path)
    guessed = mimetypes.guess_type(name)[0] or "unknown"
    return Response(
        body=data,
        status_code=200,
        headers={
            **DOWNLOAD_HEADERS,
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'attachment; filename="{name.rsplit("/", 1)[-1]}"',
            "X-File-Type": guessed,
        },
    )


@router.route(
    DEPLOYMENT + "/artifact",
    "GET",
    scope="deployments:read",
    query={"format": choice(files.FORMATS, "The archive's format (default tar.gz)")},
    errors=(302, 409),
    content={"application/gzip": {"schema": {}}, "application/zip": {"schema": {}}},
)
def get_artifact(ctx: RequestContext, project_id: str, deployment_id: str):
    """Download the whole artifact as tar.gz (default) or zip; a large one redirects (302)
    to a presigned S3 URL valid for 5 minutes."""
    fmt = ctx.param("format") or "tar.gz"
    name, data, url = files.artifact(ctx.workspace_id, project_id, deployment_id, fmt)
    if url is not None:
        return Response(body="", status_code=302, headers={"Location": url, **DOWNLOAD_HEADERS})
    return Response(
        body=data,
        status_code=200,
        headers={
            **DOWNLOAD_HEADERS,
            "Content-Type": "application/zip" if fmt == "zip" else "application/gzip",
            "Content-Disposition": f'attachment; filename="{name}"',
        },
    )
