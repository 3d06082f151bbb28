"""Helpers the pipeline's tests share: archives made in memory and uploads sent the way
a client sends them (a multipart POST to the presigned URL)."""

from __future__ import annotations

import hashlib
import io
import tarfile
import uuid


def targz(files: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def send_to_presigned(upload: dict, data: bytes) -> int:
    """POST the archive to S3 with the upload's fields, as the contract's step 2 says."""
    import requests

    response = requests.post(
        upload["url"],
        data=upload["fields"],
        files={"file": ("app.tar.gz", data, "application/gzip")},
        timeout=30,
    )
    return response.status_code


def multipart(fields: dict[str, tuple[str, bytes] | str]) -> tuple[str, bytes]:
    """(content type, body) of a multipart/form-data request."""
    boundary = uuid.uuid4().hex
    body = b""
    for name, value in fields.items():
        body += f"--{boundary}\r\n".encode()
        if isinstance(value, tuple):
            filename, data = value
            body += (
                (
                    f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                    "Content-Type: application/gzip\r\n\r\n"
                ).encode()
                + data
                + b"\r\n"
            )
        else:
            body += f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    body += f"--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", body
