"""The CLI's log follower: reconnects, resume, the end of the stream, and polling where
no stream is served. The API is a scripted fake passed in (the network is off here); the
real server is exercised by tests/e2e."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from shipyard_cli.api import ApiError
from shipyard_cli.follow import Follower, LogLine


def log_frame(seq: int, message: str, phase: str = "build") -> bytes:
    data = {"type": "log", "seq": seq, "phase": phase, "message": message}
    return f"id: {seq}\ndata: {json.dumps(data)}\n\n".encode()


def frame(data: dict) -> bytes:
    return f"data: {json.dumps(data)}\n\n".encode()


class StreamResponse:
    """An HTTP response read in the chunks given; an exception in them is raised then."""

    def __init__(self, status: int, chunks: list, content_type: str = "text/event-stream"):
        self.status = status
        self.headers = {"Content-Type": content_type}
        self._chunks = list(chunks)

    def read1(self, size: int) -> bytes:
        if not self._chunks:
            return b""
        chunk = self._chunks.pop(0)
        if isinstance(chunk, BaseException):
            raise chunk
        return chunk

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@dataclass
class ScriptedApi:
    """Answers each stream request and each GET with the next scripted answer."""

    streams: list = field(default_factory=list)
    pages: list = field(default_factory=list)
    stream_requests: list = field(default_factory=list)
    get_requests: list = field(default_factory=list)

    def open_stream(self, path, query, headers):
        self.stream_requests.append((path, query, dict(headers)))
        answer = self.streams.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def get(self, path, query=None):
        self.get_requests.append((path, query))
        return self.pages.pop(0)


def follower(api: ScriptedApi) -> tuple[Follower, list, list, list]:
    lines: list[LogLine] = []
    statuses: list[str] = []
    sleeps: list[float] = []
    return (
        Follower(api, "prj_1", "dep_1", lines.append, statuses.append, sleep=sleeps.append),
        lines,
        statuses,
        sleeps,
    )


def test_reconnects_with_last_event_id_after_the_servers_retry_until_done():
    # Given: the server ends each response after a bounded wait, with retry: 250
    api = ScriptedApi(
        streams=[
            StreamResponse(200, [b"retry: 250\n\n", log_frame(1, "one"), log_frame(2, "tw")]),
            StreamResponse(200, [frame({"type": "status", "status": "deploying"})]),
            StreamResponse(
                200, [log_frame(3, "three")[:9], log_frame(3, "three")[9:], b"retry: 250\n\n"]
            ),
            StreamResponse(200, [frame({"type": "done", "status": "running"})]),
        ]
    )
    follow, lines, statuses, sleeps = follower(api)

    # When
    final = follow.follow()

    # Then
    assert final == "running"
    assert [(line.seq, line.message) for line in lines] == [(1, "one"), (2, "tw"), (3, "three")]
    assert statuses == ["deploying", "running"]
    sent = [headers.get("Last-Event-ID") for _, _, headers in api.stream_requests]
    assert sent == [None, "2", "2", "3"]
    assert sleeps == [0.25, 0.25, 0.25]
    assert follow.connections == 4


def test_a_status_change_is_shown_after_the_lines_of_its_response():
    # Given: responses that open with the status as it is then, as the server sends them
    api = ScriptedApi(
        streams=[
            StreamResponse(
                200, [frame({"type": "status", "status": "building"}), log_frame(1, "a")]
            ),
            StreamResponse(
                200,
                [
                    frame({"type": "status", "status": "built"}),
                    log_frame(2, "b"),
                    frame({"type": "status", "status": "deploying"}),
                    log_frame(3, "c"),
                    frame({"type": "done", "status": "running"}),
                ],
            ),
        ]
    )
    shown: list[str] = []
    follow = Follower(
        api,
        "prj_1",
        "dep_1",
        lambda line: shown.append(line.message),
        lambda status: shown.append(f"status {status}"),
        sleep=lambda seconds: None,
    )

    # When
    follow.follow()

    # Then
    assert shown == [
        "a",
        "status building",
        "b",
        "c",
        "status built",
        "status deploying",
        "status running",
    ]


def test_starts_after_a_given_seq_and_ends_on_204():
    api = ScriptedApi(streams=[StreamResponse(200, [log_frame(6, "six")]), StreamResponse(204, [])])
    follow, lines, _, _ = follower(api)

    assert follow.follow(after=5) is None
    assert [line.seq for line in lines] == [6]
    assert api.stream_requests[0][1] == {"after": 5}
    assert api.stream_requests[1][1] is None
    assert api.stream_requests[1][2]["Last-Event-ID"] == "6"


def test_a_stream_broken_mid_frame_resumes_without_losing_or_repeating_a_line():
    api = ScriptedApi(
        streams=[
            StreamResponse(
                200, [log_frame(1, "one"), log_frame(2, "two")[:5], ConnectionResetError()]
            ),
            ApiError("cannot reach", "connection_error"),
            StreamResponse(200, [log_frame(2, "two"), frame({"type": "done", "status": "failed"})]),
        ]
    )
    follow, lines, _, sleeps = follower(api)

    assert follow.follow() == "failed"
    assert [line.seq for line in lines] == [1, 2]
    assert [headers.get("Last-Event-ID") for _, _, headers in api.stream_requests] == [
        None,
        "1",
        "1",
    ]
    assert sleeps == [1.0, 2.0]


def test_gives_up_after_repeated_connection_failures():
    api = ScriptedApi(streams=[ApiError("refused", "connection_error")] * 5)
    follow, _, _, _ = follower(api)

    with pytest.raises(ApiError, match="refused"):
        follow.follow()
    assert len(api.stream_requests) == 5


def test_an_authorization_error_is_raised_at_once():
    api = ScriptedApi(streams=[ApiError("Invalid API key", "unauthorized", 401)])
    follow, _, _, _ = follower(api)

    with pytest.raises(ApiError, match="Invalid API key"):
        follow.follow()
    assert len(api.stream_requests) == 1


@pytest.mark.parametrize(
    "answer",
    [
        ApiError("No route matches", "not_found", 404),
        StreamResponse(200, [b"{}"], content_type="application/json"),
    ],
)
def test_polls_the_log_when_no_stream_is_served(answer):
    # Given: no stream, and a log that grows over three polls
    page = {"pagination": {"has_more": False}}
    line = {"phase": "build", "timestamp": "2026-01-01T00:00:00Z"}
    api = ScriptedApi(
        streams=[answer],
        pages=[
            {**page, "data": [{**line, "seq": 1, "message": "a"}], "status": "building"},
            {**page, "data": [], "status": "building"},
            {
                "data": [{**line, "seq": 2, "message": "b"}],
                "pagination": {"has_more": True},
                "status": "deploying",
            },
            {**page, "data": [{**line, "seq": 3, "message": "c"}], "status": "running"},
        ],
    )
    follow, lines, statuses, sleeps = follower(api)

    # When
    final = follow.follow()

    # Then
    assert final == "running"
    assert [line.message for line in lines] == ["a", "b", "c"]
    assert statuses == ["building", "deploying", "running"]
    assert [query["after"] for _, query in api.get_requests] == [None, 1, 1, 2]
    assert sleeps == [1.0, 1.0]


def test_polling_reads_on_while_a_final_status_line_is_still_being_written():
    # Given: the page that first says "failed" holds back the line of that change
    line = {"phase": "system", "timestamp": "2026-01-01T00:00:00Z"}
    api = ScriptedApi(
        streams=[ApiError("No route matches", "not_found", 404)],
        pages=[
            {"data": [], "pagination": {"has_more": True}, "status": "failed"},
            {
                "data": [{**line, "seq": 1, "message": "Failed (build_failed): boom"}],
                "pagination": {"has_more": False},
                "status": "failed",
            },
        ],
    )
    shown: list[str] = []
    follow, _, _, sleeps = follower(api)
    follow.on_line = lambda line: shown.append(line.message)
    follow.on_status = shown.append

    # When
    final = follow.follow()

    # Then: the line is shown, then the status, after a short wait for the line
    assert final == "failed"
    assert shown == ["Failed (build_failed): boom", "failed"]
    assert sleeps == [0.2]


def test_reading_a_whole_log_waits_for_a_line_still_being_written():
    from shipyard_cli.follow import read_all

    line = {"phase": "system", "timestamp": "2026-01-01T00:00:00Z"}
    api = ScriptedApi(
        pages=[
            {"data": [{**line, "seq": 1, "message": "a"}], "pagination": {"has_more": True}},
            {"data": [], "pagination": {"has_more": True}},
            {"data": [{**line, "seq": 2, "message": "b"}], "pagination": {"has_more": False}},
        ]
    )

    sleeps: list[float] = []
    lines = read_all(api, "prj_1", "dep_1", sleep=sleeps.append)

    assert [(line.seq, line.message) for line in lines] == [(1, "a"), (2, "b")]
    assert sleeps == [0.2]
    assert [query["after"] for _, query in api.get_requests] == [None, 1, 1]
