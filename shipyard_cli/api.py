"""The Shipyard API over HTTP, with the standard library only.

Requests that are safe to repeat (GETs, and POSTs sent with an `Idempotency-Key`) are
retried on a dropped connection, 502/503/504, `rate_limited` and
`idempotency_key_in_use`, waiting as `Retry-After` asks; anything else is raised as an
`ApiError` carrying the contract's error envelope.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from shipyard_cli import __version__

USER_AGENT = f"shipyard-cli/{__version__}"
RETRYABLE_STATUS = {502, 503, 504}
RETRYABLE_CODES = {"rate_limited", "idempotency_key_in_use", "build_queue_full"}
MAX_ATTEMPTS = 6

MAX_RETRY_WAIT_S = 30.0


class ApiError(Exception):
    """An error answer of the API (or of S3), or a failure to reach it."""

    def __init__(
        self,
        message: str,
        code: str,
        status: int | None = None,
        details: dict | None = None,
        request_id: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.details = details or {}
        self.request_id = request_id
        self.hint = hint


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Client:
    base_url: str
    api_key: str | None
    timeout_s: float = 60.0
    on_retry: Callable[[str, float], None] | None = None
    sleep: Callable[[float], None] = field(default=time.sleep)

    def url(self, path: str, query: dict[str, Any] | None = None) -> str:
        url = self.base_url.rstrip("/") + path
        pairs = {k: v for k, v in (query or {}).items() if v is not None}
        return url + ("?" + urllib.parse.urlencode(pairs) if pairs else "")

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        headers.update(extra or {})
        return headers

    def get(self, path: str, query: dict[str, Any] | None = None) -> Any:
        return self.request("GET", path, query=query).json()

    def post(self, path: str, body: Any = None, idempotent: bool = True) -> Any:
        """POST JSON; with `idempotent` it carries a fresh Idempotency-Key, kept on retries."""
        extra = {"Idempotency-Key": f"cli-{uuid.uuid4()}"} if idempotent else {}
        return self.request("POST", path, body=body, headers=extra).json()

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, body=body).json()

    def delete(self, path: str) -> None:
        self.request("DELETE", path)

    def request(
        self,
        method: str,
        path: str,
        query: dict[str, Any] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        sent = self.headers(headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        repeatable = method in ("GET", "PUT", "DELETE") or "Idempotency-Key" in sent
        url = self.url(path, query)
        attempt = 0
        while True:
            attempt += 1
            request = urllib.request.Request(url, data=data, headers=sent, method=method)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                    return Response(answer.status, dict(answer.headers), answer.read())
            except urllib.error.HTTPError as error:
                failure = api_error(error.code, dict(error.headers), error.read())
                wait = retry_wait(error.code, failure.code, error.headers.get("Retry-After"))
            except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
                failure = connection_error(self.base_url, error)
                refused = failure.code == "connection_refused"
                wait = None if refused or not repeatable else min(2.0**attempt, 8.0)
            if wait is None or not repeatable or attempt == MAX_ATTEMPTS:
                raise failure
            if self.on_retry is not None:
                self.on_retry(failure.message, wait)
            self.sleep(wait)

    def open_stream(self, path: str, query: dict[str, Any], headers: dict[str, str]):
        """Open a streamed GET and hand back the raw response (or raise ApiError)."""
        request = urllib.request.Request(
            self.url(path, query), headers=self.headers(headers), method="GET"
        )
        try:
            return urllib.request.urlopen(request, timeout=self.timeout_s)
        except urllib.error.HTTPError as error:
            raise api_error(error.code, dict(error.headers), error.read()) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
            raise connection_error(self.base_url, error) from None


class _KeepRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def download(client: Client, path: str, query: dict[str, Any] | None = None) -> bytes:
    """GET a file of the API. A large one redirects to a presigned storage URL, which is
    fetched without the API key (storage refuses a second credential)."""
    request = urllib.request.Request(
        client.url(path, query), headers=client.headers({"Accept": "*/*"}), method="GET"
    )
    opener = urllib.request.build_opener(_KeepRedirects)
    try:
        with opener.open(request, timeout=client.timeout_s) as answer:
            return answer.read()
    except urllib.error.HTTPError as error:
        if error.code not in (301, 302, 303, 307, 308) or not error.headers.get("Location"):
            raise api_error(error.code, dict(error.headers), error.read()) from None
        location = error.headers["Location"]
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        raise connection_error(client.base_url, error) from None
    unauthenticated = urllib.request.Request(location, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(unauthenticated, timeout=client.timeout_s) as answer:
            return answer.read()
    except urllib.error.HTTPError as error:
        raise s3_error(error.code, error.read()) from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        raise connection_error(location, error) from None


def retry_wait(status: int, code: str, retry_after: str | None) -> float | None:
    """Seconds to wait before trying again, or None when retrying can't help."""
    if status not in RETRYABLE_STATUS and code not in RETRYABLE_CODES:
        return None
    try:
        wait = float(retry_after) if retry_after is not None else 1.0
    except ValueError:
        wait = 1.0
    return min(max(wait, 0.0), MAX_RETRY_WAIT_S)


def api_error(status: int, headers: dict[str, str], body: bytes) -> ApiError:
    try:
        envelope = json.loads(body)["error"]
        error = ApiError(
            envelope.get("message") or "",
            envelope.get("code") or "http_error",
            status,
            envelope.get("details"),
            envelope.get("request_id"),
        )
    except (ValueError, KeyError, TypeError):
        text = body.decode("utf-8", "replace").strip()[:300]
        error = ApiError(text or f"HTTP {status}", "http_error", status)
    if status == 401:
        error.hint = "check SHIPYARD_API_KEY (the local stack prints its key when it starts)"
    return error


def connection_error(base_url: str, error: BaseException) -> ApiError:
    reason = getattr(error, "reason", error)
    if isinstance(reason, ConnectionRefusedError):
        return ApiError(
            f"cannot connect to {base_url}: connection refused",
            "connection_refused",
            hint="is the Shipyard API up (`make run`)? SHIPYARD_URL says where it is",
        )
    if isinstance(reason, TimeoutError):
        return ApiError(f"{base_url} did not answer in time", "timeout")
    return ApiError(f"cannot reach {base_url}: {reason}", "connection_error")


def _quote(name: str) -> str:
    """Quote a form-data name or filename as browsers do (HTML's multipart rules)."""
    return name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def multipart(
    fields: dict[str, str], file_field: str, filename: str, content_type: str
) -> tuple[str, bytes, bytes]:
    """multipart/form-data around one file: (content type, bytes before, bytes after it).

    The file goes last, as S3's POST policy requires."""
    boundary = f"----shipyard-{uuid.uuid4().hex}"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote(name)}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote(file_field)}"; '
        f'filename="{_quote(filename)}"\r\nContent-Type: {content_type}\r\n\r\n'
    )
    tail = f"\r\n--{boundary}--\r\n"
    return f"multipart/form-data; boundary={boundary}", "".join(parts).encode(), tail.encode()


def post_form(
    url: str,
    fields: dict[str, str],
    file_chunks: Iterator[bytes],
    file_size: int,
    filename: str,
    timeout_s: float = 300.0,
) -> int:
    """POST a form with one file to `url` (S3's presigned POST); returns the status."""
    content_type, head, tail = multipart(fields, "file", filename, "application/gzip")

    def body() -> Iterator[bytes]:
        yield head
        yield from file_chunks
        yield tail

    request = urllib.request.Request(
        url,
        data=body(),
        headers={
            "Content-Type": content_type,
            "Content-Length": str(len(head) + file_size + len(tail)),
            "User-Agent": USER_AGENT,
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        raise s3_error(error.code, error.read()) from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        failure = connection_error(url, error)
        failure.hint = "the storage endpoint of the presigned URL must be reachable from here"
        raise failure from None


def s3_error(status: int, body: bytes) -> ApiError:
    """S3 answers errors in XML: <Error><Code>..</Code><Message>..</Message></Error>."""
    try:
        root = ElementTree.fromstring(body)
        code = root.findtext("Code") or "s3_error"
        message = root.findtext("Message") or f"HTTP {status}"
    except ElementTree.ParseError:
        code, message = "s3_error", body.decode("utf-8", "replace").strip()[:300] or str(status)
    return ApiError(f"the upload to storage was refused: {message}", code, status)
