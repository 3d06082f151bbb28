"""Every request the local server answers, whatever its method or shape, gets the
contract's error envelope and an X-Request-ID, in one write on a keep-alive connection."""

from __future__ import annotations

import http.client
import json
import socket
from urllib.parse import urlsplit

import pytest

from tests.conftest import raw_exchange


def _connection(stack) -> http.client.HTTPConnection:
    address = urlsplit(stack.url)
    return http.client.HTTPConnection(address.hostname, address.port, timeout=30)


def _raw(stack, data: bytes) -> bytes:
    address = urlsplit(stack.url)
    return raw_exchange(address.port, data, address.hostname)


def _envelope(body: bytes, headers) -> dict:
    error = json.loads(body)["error"]
    assert error["request_id"] == headers["X-Request-ID"]
    assert headers["X-Request-ID"].startswith("req_")
    return error


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND", "CONNECT", "PUT", "OPTIONS"])
def test_a_method_the_path_lacks_is_405_with_allow_in_the_envelope(local_stack, method):
    connection = _connection(local_stack)
    connection.request(method, "/v1/projects", headers={"Authorization": "Bearer x"})
    response = connection.getresponse()
    error = _envelope(response.read(), response.headers)
    assert response.status == 405 and error["code"] == "method_not_allowed"
    assert {m.strip() for m in response.headers["Allow"].split(",")} == {"GET", "POST"}


def test_head_is_answered_without_a_body_and_the_connection_stays_usable(local_stack):
    connection = _connection(local_stack)
    connection.request("HEAD", "/v1/health")
    head = connection.getresponse()
    assert head.status == 405 and head.read() == b"" and head.headers["X-Request-ID"]
    connection.request("GET", "/v1/health")
    after = connection.getresponse()
    assert after.status == 200 and json.loads(after.read())["data"]


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /v1/health HTTP/7.0\r\n\r\n", 505),
        (b"GET /v1/health HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n", 431),
    ],
)
def test_a_request_the_http_parser_refuses_still_gets_the_envelope(
    local_stack, request_bytes, status
):
    head, _, body = _raw(local_stack, request_bytes).partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0].startswith(f"HTTP/1.1 {status} ")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert headers["Content-Type"] == "application/json"
    assert _envelope(body, headers)["code"] == "bad_request"


def test_a_response_leaves_in_one_write(local_stack):
    # Headers and body written apart are what Nagle's algorithm holds back until the
    # client's delayed ACK: on loopback one write arrives whole in the first recv.
    address = urlsplit(local_stack.url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        for _ in range(3):
            sock.sendall(b"GET /v1/nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
            first = sock.recv(65536)
            head, _, body = first.partition(b"\r\n\r\n")
            length = int(
                next(
                    line.split(b":")[1] for line in head.split(b"\r\n") if b"Content-Length" in line
                )
            )
            assert len(body) == length and json.loads(body)["error"]["code"] == "not_found"
