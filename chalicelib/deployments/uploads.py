"""Uploads: presigned S3 POSTs for one object key, and the checks made on Shipyard's side
before an upload is built (S3 behind moto, and not only moto, enforces none of them): the
object is there, its size is within the limit, and it has the promised SHA-256."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chalicelib.aws import objects
from chalicelib.core import ids
from chalicelib.core.clock import now_iso, rfc3339, utcnow
from chalicelib.core.errors import (
    ChecksumMismatch,
    Conflict,
    NotFound,
    PayloadTooLarge,
    UploadIncomplete,
)
from chalicelib.core.settings import get_settings
from chalicelib.deployments.models import Upload, UploadCreate
from chalicelib.store import uploads as store


def source_key(project_id: str, name: str) -> str:
    return f"uploads/{project_id}/{name}.tar.gz"


def create(workspace_id: str, project_id: str, body: UploadCreate) -> Upload:
    settings = get_settings()
    upload_id = ids.new_id("upl")
    key = source_key(project_id, upload_id)
    expires_at = rfc3339(utcnow() + timedelta(seconds=settings.upload_expires_s))
    post = objects.presigned_post(key, settings.upload_max_bytes, settings.upload_expires_s)
    store.put(
        {
            "id": upload_id,
            "project_id": project_id,
            "workspace_id": workspace_id,
            "key": key,
            "sha256": body.sha256,
            "max_bytes": settings.upload_max_bytes,
            "expires_at": expires_at,
            "created_at": now_iso(),
        }
    )
    return Upload(
        id=upload_id,
        url=post["url"],
        fields={name: str(value) for name, value in post["fields"].items()},
        max_bytes=settings.upload_max_bytes,
        expires_at=expires_at,
    )


def verified(project_id: str, upload_id: str) -> dict[str, Any]:
    """The upload record, once its object is checked; raises the contract's errors."""
    upload = store.get(project_id, upload_id)
    if upload is None:
        raise NotFound("Upload")
    if upload.get("deployment_id"):
        raise Conflict(
            f"This upload was already used by deployment {upload['deployment_id']}; "
            "create a new upload"
        )
    size = objects.size_of(upload["key"])
    if size is None:
        raise UploadIncomplete(
            "The upload has not arrived: POST the archive to the upload's url with its fields first"
        )
    if size > upload["max_bytes"]:
        raise PayloadTooLarge(
            f"The uploaded archive is {size} bytes; the limit is {upload['max_bytes']}",
            {"size": size, "max_bytes": upload["max_bytes"]},
        )
    if upload.get("sha256"):
        actual = objects.sha256_of(upload["key"])
        if actual != upload["sha256"]:
            raise ChecksumMismatch(upload["sha256"], actual)
    return upload


def store_direct(project_id: str, archive: bytes) -> str:
    """Keep an archive sent through `POST .../deploy`; returns its key."""
    key = source_key(project_id, ids.new_id("src"))
    objects.put_bytes(key, archive)
    return key
