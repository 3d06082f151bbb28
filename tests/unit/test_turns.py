"""The local gateway's turns (local/gateway.Turns): how many requests run the app at once,
in which order, and what a long one does to the line."""

from __future__ import annotations

import threading
import time

import pytest

from chalicelib.local.gateway import Turns


def _in_line(turns: Turns, count: int, order: list[int], hold_s: float) -> list[threading.Thread]:
    """`count` requests that join the line one after another, each holding its turn."""

    def request(n: int) -> None:
        turn = turns.take()
        order.append(n)
        time.sleep(hold_s)
        turns.give_back(turn)

    threads = []
    for n in range(count):
        threads.append(threading.Thread(target=request, args=(n,)))
        threads[-1].start()
        time.sleep(0.02)  # in this order
    return threads


def test_the_line_is_let_in_in_arrival_order():
    turns = Turns(1, overtime_s=30)
    held = turns.take()
    order: list[int] = []
    threads = _in_line(turns, 5, order, hold_s=0)
    time.sleep(0.2)
    assert order == []  # the one turn is held
    turns.give_back(held)
    for thread in threads:
        thread.join(5)
    assert order == [0, 1, 2, 3, 4]


def test_at_most_the_slots_run_at_once():
    turns = Turns(2, overtime_s=30)
    lock = threading.Lock()
    running, most = [0], [0]

    def request() -> None:
        turn = turns.take()
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        turns.give_back(turn)

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert most[0] == 2


def test_a_turn_held_past_its_overtime_makes_room_for_the_next():
    turns = Turns(1, overtime_s=0.2)
    long = turns.take()  # never handed back while the next one waits
    started = time.monotonic()
    turn = turns.take()
    assert 0.15 < time.monotonic() - started < 2
    turns.give_back(turn)
    turns.give_back(long)  # late: its room was already made


def test_no_turns_at_all_is_refused():
    with pytest.raises(ValueError, match="at least one"):
        Turns(0, overtime_s=1)
