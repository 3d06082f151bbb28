"""S3 objects of the pipeline: presigned uploads, their verification, and sealed
environment snapshots. Objects live in the artifacts bucket (settings.bucket)."""

from __future__ import annotations

import hashlib
from typing import Any, BinaryIO

from chalicelib.aws.clients import client
from chalicelib.aws.errors import error_code
from chalicelib.core.settings import get_settings

CHUNK = 1024 * 1024


def _is_missing(error: Exception) -> bool:
    return error_code(error) in ("404", "NoSuchKey", "NotFound")


def presigned_post(key: str, max_bytes: int, expires_s: int) -> dict[str, Any]:
    """A POST policy for exactly `key`, at most `max_bytes` long."""
    return client("s3").generate_presigned_post(
        Bucket=get_settings().bucket,
        Key=key,
        Conditions=[["content-length-range", 1, max_bytes]],
        ExpiresIn=expires_s,
    )


def size_of(key: str) -> int | None:
    """The object's size, or None if it is not there (yet)."""
    try:
        head = client("s3").head_object(Bucket=get_settings().bucket, Key=key)
    except Exception as error:
        if _is_missing(error):
            return None
        raise
    return int(head["ContentLength"])


def sha256_of(key: str) -> str:
    """The object's SHA-256, streamed: the object is never held in memory whole."""
    body = client("s3").get_object(Bucket=get_settings().bucket, Key=key)["Body"]
    digest = hashlib.sha256()
    for chunk in iter(lambda: body.read(CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()


def put_bytes(key: str, data: bytes) -> None:
    client("s3").put_object(Bucket=get_settings().bucket, Key=key, Body=data)


def get_bytes(key: str) -> bytes:
    return client("s3").get_object(Bucket=get_settings().bucket, Key=key)["Body"].read()


def open_stream(key: str) -> BinaryIO:
    return client("s3").get_object(Bucket=get_settings().bucket, Key=key)["Body"]


def delete_prefix(prefix: str) -> None:
    s3 = client("s3")
    bucket = get_settings().bucket
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


def upload_stream(key: str, data: BinaryIO) -> None:
    client("s3").upload_fileobj(data, get_settings().bucket, key)


def presigned_get(key: str, expires_s: int, filename: str) -> str:
    """A URL that downloads the object for `expires_s` seconds, saved as `filename`."""
    return client("s3").generate_presigned_url(
        "get_object",
        Params={
            "Bucket": get_settings().bucket,
            "Key": key,
            "ResponseContentDisposition": f'attachment; filename="{filename}"',
        },
        ExpiresIn=expires_s,
    )
