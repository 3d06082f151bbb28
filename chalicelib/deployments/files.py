"""What a deployment built: its artifact's file list, one file, the whole artifact (tar.gz
or ZIP). Paths are normalized and confined: a path is looked up among the archive's own
entries, so nothing outside the artifact can be named, and traversal in any encoding is
refused before that."""

from __future__ import annotations

import tempfile
from urllib.parse import unquote

from chalicelib.archive import browse
from chalicelib.archive.rules import path_parts
from chalicelib.aws import objects
from chalicelib.core.errors import BadRequest, InvalidState, NotFound, PayloadTooLarge
from chalicelib.core.pagination import Page
from chalicelib.core.settings import get_settings
from chalicelib.deployments import service
from chalicelib.deployments.models import ArtifactFile

PRESIGNED_GET_S = 300
FORMATS = ("tar.gz", "zip")


def _artifact_key(workspace_id: str, project_id: str, deployment_id: str) -> str:
    item = service.item_of(workspace_id, project_id, deployment_id)
    key = item.get("artifact_key")
    if not key:
        raise InvalidState(
            f"Deployment #{item['number']} has no artifact yet (status {item['status']}): "
            "its files can be read once the build has finished"
        )
    return key


def list_name(deployment_id: str) -> str:
    return f"files:{deployment_id}"


def list_files(
    workspace_id: str, project_id: str, deployment_id: str, limit: int, start: dict | None
) -> Page:
    key = _artifact_key(workspace_id, project_id, deployment_id)
    skip = int((start or {}).get("i", 0))
    items: list[ArtifactFile] = []
    more = False
    stream = objects.open_stream(key)
    try:
        for index, entry in enumerate(browse.entries(stream)):
            if index < skip:
                continue
            if len(items) == limit:
                more = True
                break
            items.append(ArtifactFile(path=entry.path, size=entry.size, type=entry.type))
    finally:
        stream.close()
    next_key = {"i": skip + limit} if more else None
    return Page(items, next_key, list_name(deployment_id), workspace_id)


def normalize(raw: str) -> str:
    """The path inside the artifact that `raw` names. Percent-escapes are decoded until
    none is left (double encoding included); then an absolute path, a `..` segment, a
    backslash or a NUL is 400."""
    path = raw
    for _ in range(4):
        decoded = unquote(path)
        if decoded == path:
            break
        path = decoded
    parts = path.split("/")
    still_encoded = unquote(path) != path
    if path.startswith("/") or ".." in parts or "\\" in path or "\x00" in path or still_encoded:
        raise BadRequest(
            "The path must name a file inside the artifact: no '..', no absolute path, no backslash"
        )
    clean = "/".join(path_parts(path))
    if not clean:
        raise BadRequest("The path must name a file inside the artifact")
    return clean


def read_file(
    workspace_id: str, project_id: str, deployment_id: str, raw_path: str
) -> tuple[str, bytes]:
    """(normalized path, bytes) of one file of the artifact."""
    path = normalize(raw_path)
    key = _artifact_key(workspace_id, project_id, deployment_id)
    limit = get_settings().artifact_inline_max_bytes
    stream = objects.open_stream(key)
    try:
        data = browse.read(stream, path, limit)
    except browse.TooLarge:
        raise PayloadTooLarge(
            f"'{path}' is larger than {limit} bytes: download the whole artifact instead",
            {"max_bytes": limit},
        ) from None
    finally:
        stream.close()
    if data is None:
        raise NotFound("File")
    return path, data


def artifact(
    workspace_id: str, project_id: str, deployment_id: str, fmt: str
) -> tuple[str, bytes | None, str | None]:
    """(file name, bytes, None) for an artifact small enough to answer with, else
    (file name, None, presigned URL)."""
    key = _artifact_key(workspace_id, project_id, deployment_id)
    name = f"{deployment_id}.{fmt}"
    if fmt == "zip":
        key = _zip_of(key)
    size = objects.size_of(key) or 0
    if size > get_settings().artifact_inline_max_bytes:
        return name, None, objects.presigned_get(key, PRESIGNED_GET_S, name)
    return name, objects.get_bytes(key), None


def _zip_of(key: str) -> str:
    """The artifact's ZIP, made from the tar.gz once and kept beside it."""
    zip_key = key.rsplit("/", 1)[0] + "/artifact.zip"
    if objects.size_of(zip_key) is not None:
        return zip_key
    stream = objects.open_stream(key)
    try:
        with tempfile.TemporaryFile() as spool:
            browse.to_zip(stream, spool)
            spool.seek(0)
            objects.upload_stream(zip_key, spool)
    finally:
        stream.close()
    return zip_key
