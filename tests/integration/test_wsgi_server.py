"""The embedded moto's HTTP server (chalicelib/local/wsgi_server.py), over real sockets:
what AWS SDKs, curl and browsers send it."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import threading

import pytest

from chalicelib.host.processes import free_port
from chalicelib.local.wsgi_server import Server
from tests.conftest import raw_exchange


def echo(environ, start_response):
    """Answers what it was sent: method, path, query, headers and body."""
    body = environ["wsgi.input"].read()
    answer = {
        "method": environ["REQUEST_METHOD"],
        "path": environ["PATH_INFO"],
        "query": environ["QUERY_STRING"],
        "raw": environ["RAW_URI"],
        "length": environ.get("CONTENT_LENGTH"),
        "headers": {k: v for k, v in environ.items() if k.startswith("HTTP_")},
        "body": body.decode("latin-1"),
    }
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(answer).encode()]


@pytest.fixture(scope="module")
def server():
    port = free_port()
    running = Server(echo, "127.0.0.1", port)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    yield port
    running.close()
    thread.join(5)
    assert not thread.is_alive(), "run() returns once the server is closed"


def test_keep_alive_serves_requests_on_one_connection(server):
    client = http.client.HTTPConnection("127.0.0.1", server, timeout=5)
    client.request("GET", "/a%20b?x=1")
    first = client.getresponse()
    assert json.loads(first.read())["path"] == "/a b"
    client.request("POST", "/second", body=b"hello")
    second = client.getresponse()
    sent = json.loads(second.read())
    assert (sent["method"], sent["body"], sent["length"]) == ("POST", "hello", "5")
    assert client.sock is not None, "the connection stayed open"
    client.close()


def test_pipelined_requests_answered_in_order(server):
    requests = (
        b"POST /one HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /two?q=2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    answers = raw_exchange(server, requests).split(b"HTTP/1.1 200 OK")[1:]
    assert len(answers) == 2
    assert b'"body": "abc"' in answers[0] and b'"path": "/one"' in answers[0]
    assert b'"query": "q=2"' in answers[1] and b"Connection: close" in answers[1]


def test_chunked_body_is_decoded(server):
    client = http.client.HTTPConnection("127.0.0.1", server, timeout=5)
    client.request("PUT", "/upload", body=iter([b"abc", b"", b"defgh"]), encode_chunked=True)
    sent = json.loads(client.getresponse().read())
    assert sent["body"] == "abcdefgh" and sent["length"] == "8"
    assert "HTTP_TRANSFER_ENCODING" not in sent["headers"]


def test_large_body_arrives_whole(server):
    body = bytes(range(256)) * 40_000  # 10 MB, read in many pieces
    client = http.client.HTTPConnection("127.0.0.1", server, timeout=30)
    client.request("PUT", "/big", body=body)
    assert json.loads(client.getresponse().read())["length"] == str(len(body))


def test_expect_100_continue_with_curl(server, tmp_path):
    """curl waits for 100 Continue before sending a large body, as an S3 upload does."""
    upload = tmp_path / "archive.tar.gz"
    upload.write_bytes(b"x" * 2_000_000)
    answer = subprocess.run(
        [
            "curl",
            "-sS",
            "--fail",
            "-T",
            str(upload),
            "-H",
            "Expect: 100-continue",
            f"http://127.0.0.1:{server}/bucket/archive.tar.gz",
        ],
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    sent = json.loads(answer)
    assert sent["method"] == "PUT" and sent["length"] == "2000000"
    # The server says 100 Continue before it reads the body.
    with socket.create_connection(("127.0.0.1", server), timeout=5) as connection:
        connection.sendall(b"PUT /o HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        assert connection.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        connection.sendall(b"ok")
        assert b'"body": "ok"' in connection.recv(65536)


def test_head_answers_headers_only(server):
    client = http.client.HTTPConnection("127.0.0.1", server, timeout=5)
    client.request("HEAD", "/thing")
    response = client.getresponse()
    assert response.status == 200 and int(response.getheader("Content-Length")) > 0
    assert response.read() == b""
    client.request("GET", "/after-head")  # the connection is still in step
    assert json.loads(client.getresponse().read())["path"] == "/after-head"


def test_header_names_keep_underscores_but_none_poses_as_a_framing_header(server):
    client = http.client.HTTPConnection("127.0.0.1", server, timeout=5)
    client.request("PUT", "/o", body=b"", headers={"x-amz-meta-a_b": "1", "X-Twice": "a"})
    headers = json.loads(client.getresponse().read())["headers"]
    assert headers["HTTP_X_AMZ_META_A_B"] == "1" and headers["HTTP_X_TWICE"] == "a"
    # `Content_Length: 5` is not a length: the body is empty and the next request is read
    answers = raw_exchange(
        server,
        b"POST /a HTTP/1.1\r\nContent_Length: 5\r\n\r\n"
        b"GET /b HTTP/1.1\r\nConnection: close\r\n\r\n",
    ).split(b"HTTP/1.1 200 OK")[1:]
    assert b'"path": "/a"' in answers[0] and b'"body": ""' in answers[0]
    assert b'"path": "/b"' in answers[1]


def test_both_framings_are_read_chunked_and_the_connection_closed(server):
    answer = raw_exchange(
        server,
        b"POST /both HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nhi\r\n0\r\n\r\n",
    )
    assert b'"body": "hi"' in answer and b"Connection: close" in answer


def test_http_1_0_closes_unless_asked_to_keep_alive(server):
    closed = raw_exchange(server, b"GET /old HTTP/1.0\r\n\r\n")
    assert closed.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in closed
    with socket.create_connection(("127.0.0.1", server), timeout=5) as connection:
        connection.sendall(b"GET /kept HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        first = connection.recv(65536)
        assert b"Connection: keep-alive" in first
        connection.sendall(b"GET /again HTTP/1.0\r\n\r\n")
        assert b'"/again"' in connection.recv(65536)


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"NONSENSE\r\n\r\n", b"400"),
        (b"GET / SPDY/3\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", b"400"),
        (b"POST / HTTP/1.1\r\nContent-Length: ten\r\n\r\n", b"400"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", b"400"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nabcdef\r\n", b"400"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", b"400"),
        (b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\nabcde", b"400"),
        (b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", b"431"),
    ],
)
def test_malformed_requests_are_refused_and_closed(server, request_bytes, status):
    answer = raw_exchange(server, request_bytes)
    assert answer.startswith(b"HTTP/1.1 " + status)
    assert b"Connection: close" in answer


def test_idle_and_half_sent_connections_do_not_stop_others(server):
    """A client that sends half a request holds only its own thread."""
    stuck = socket.create_connection(("127.0.0.1", server), timeout=5)
    stuck.sendall(b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc")
    client = http.client.HTTPConnection("127.0.0.1", server, timeout=5)
    client.request("GET", "/other")
    assert client.getresponse().status == 200
    stuck.close()


def test_an_app_that_fails_is_answered_500_and_the_server_goes_on(caplog):
    def failing(environ, start_response):
        if environ["PATH_INFO"] == "/boom":
            raise RuntimeError("boom")
        return echo(environ, start_response)

    port = free_port()
    running = Server(failing, "127.0.0.1", port)
    threading.Thread(target=running.run, daemon=True).start()
    try:
        answer = raw_exchange(port, b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 500 ") and b"Connection: close" in answer
        assert "GET /boom failed" in caplog.text
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        client.request("GET", "/fine")
        assert client.getresponse().status == 200
    finally:
        running.close()
