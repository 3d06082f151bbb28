"""The CLI's Server-Sent Events parser, against the WHATWG event stream rules."""

from __future__ import annotations

import pytest

from shipyard_cli.sse import Event, Parser


def feed_all(parser: Parser, chunks: list[bytes]) -> list[Event]:
    return [event for chunk in chunks for event in parser.feed(chunk)]


STREAM = (
    b'id: 1\ndata: {"type": "log", "seq": 1}\n\n'
    b": keep-alive comment\n\n"
    b'id: 2\ndata: {"type": "log",\ndata:  "seq": 2}\n\n'
    b"retry: 1500\n\n"
    b'data: {"type": "done", "status": "running"}\n\n'
)
EXPECTED = [
    Event("message", '{"type": "log", "seq": 1}', "1"),
    Event("message", '{"type": "log",\n "seq": 2}', "2"),
    Event("message", '{"type": "done", "status": "running"}', "2"),
]


def test_frames_comments_multiline_data_and_retry():
    parser = Parser()

    assert parser.feed(STREAM) == EXPECTED
    assert parser.retry == 1500
    assert parser.last_event_id == "2"


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_frames_split_across_reads_of_any_size(size):
    parser = Parser()
    chunks = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]

    assert feed_all(parser, chunks) == EXPECTED
    assert parser.retry == 1500


@pytest.mark.parametrize("newline", [b"\r\n", b"\r", b"\n"])
def test_every_line_ending(newline):
    stream = STREAM.replace(b"\n", newline)
    parser = Parser()

    # Fed one byte at a time, so a `\r\n` is always split between two reads.
    assert feed_all(parser, [stream[i : i + 1] for i in range(len(stream))]) == EXPECTED


def test_a_multibyte_character_split_between_reads():
    data = 'data: {"message": "déploiement ✓"}\n\n'.encode()
    cut = data.index("✓".encode()) + 1
    parser = Parser()

    assert feed_all(parser, [data[:cut], data[cut:]]) == [
        Event("message", '{"message": "déploiement ✓"}', "")
    ]


def test_field_parsing_rules():
    parser = Parser()
    stream = (
        b"\xef\xbb\xbfevent: status\n"  # a leading BOM is dropped
        b"data\n"  # a field with no colon has an empty value
        b"data:no-space\n"
        b"id: bad\x00id\n"  # an id with NUL is ignored
        b"retry: 12x\n"  # a retry that is not all digits is ignored
        b"unknown: field\n"
        b"\n"
    )

    assert parser.feed(stream) == [Event("status", "\nno-space", "")]
    assert parser.retry is None


def test_an_empty_event_is_not_dispatched_but_its_id_is_kept():
    parser = Parser()

    assert parser.feed(b"id: 41\n\n") == []
    assert parser.last_event_id == "41"
    assert parser.feed(b"data: x\n\n") == [Event("message", "x", "41")]


def test_an_unfinished_event_is_dropped_on_reconnect_but_the_last_id_stays():
    # Given: a connection that ends in the middle of an event
    parser = Parser()
    assert parser.feed(b"id: 7\ndata: whole\n\nid: 8\ndata: half") == [
        Event("message", "whole", "7")
    ]

    # When: the next connection starts
    parser.reset()

    # Then: the half event is gone, and Last-Event-ID would be 7
    assert parser.last_event_id == "7"
    assert parser.feed(b"\n\nid: 8\ndata: again\n\n") == [Event("message", "again", "8")]
