"""The limit on requests in flight: it grows while answers are good, shrinks at once on trouble."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import replace

from target_spotify_conversions.concurrency import (
    BASELINE_SECONDS,
    DEFAULT_MAX_IN_FLIGHT,
    ROUND_TRIPS_PER_STEP,
    START,
    ConcurrencyLimit,
    Slot,
)


class Traffic:
    """Keeps the limit full, as a busy run does: each answer frees a place that is taken
    again at once. `seconds`: how long each request took."""

    def __init__(self, limit: ConcurrencyLimit) -> None:
        self.limit = limit
        self.flying: deque[Slot] = deque()

    def answers(
        self, n: int, *, ok: bool = True, seconds: float = 0.01, rate_limited: bool = False
    ) -> None:
        for _ in range(n):
            self._fill()
            slot = self.flying.popleft()
            self.limit.release(
                replace(slot, started=time.monotonic() - seconds), ok=ok, rate_limited=rate_limited
            )
        self._fill()

    def _fill(self) -> None:
        while len(self.flying) < self.limit.limit:
            slot = self.limit.acquire(threading.Event())  # never waits: places are free
            assert slot is not None
            self.flying.append(slot)


def grown(
    answers: int, *, seconds: float = 0.01, baseline_seconds: float = BASELINE_SECONDS
) -> tuple[ConcurrencyLimit, Traffic]:
    """A limit of cap 32 started at 4 (the arithmetic is easy to follow), kept full through
    `answers` good answers of `seconds` each."""
    limit = ConcurrencyLimit(32, start=4, baseline_seconds=baseline_seconds)
    traffic = Traffic(limit)
    traffic.answers(answers, seconds=seconds)
    return limit, traffic


def test_it_starts_at_eight_and_grows_by_one_per_good_answer_up_to_the_cap():
    limit = ConcurrencyLimit(DEFAULT_MAX_IN_FLIGHT)
    assert (limit.limit, limit.cap) == (START, DEFAULT_MAX_IN_FLIGHT) == (8, 48)
    traffic = Traffic(limit)
    traffic.answers(8)
    assert limit.limit == 16, "doubling each round trip"
    traffic.answers(100)
    assert limit.limit == 48, "never past the cap"


def test_a_failure_halves_it_once_for_all_the_requests_that_saw_the_old_limit():
    limit, traffic = grown(12)
    assert limit.limit == 16
    traffic.answers(16, ok=False)  # sixteen 429s of one overload, all sent before the cut
    assert limit.limit == 8, "one cut per episode, not one per answer"
    traffic.answers(1, ok=False)  # sent after the cut: a new episode
    assert limit.limit == 4


def test_after_a_cut_it_grows_by_about_one_per_six_round_trips():
    """Near a rate limit a request is a large step: growing slowly keeps 429s rare."""
    limit, traffic = grown(12)
    traffic.answers(16, ok=False)
    assert limit.limit == 8
    traffic.answers(8 * ROUND_TRIPS_PER_STEP)  # that many round trips, less the rounding
    assert limit.limit == 8
    traffic.answers(8)  # one round trip more
    assert limit.limit == 9


def test_rising_latency_shrinks_it():
    limit, traffic = grown(12, seconds=0.05)
    assert limit.limit == 16
    traffic.answers(16, seconds=0.5)  # ten times slower: the API is queueing
    assert limit.limit < 16


def test_when_the_api_gets_slower_for_good_the_limit_grows_back_within_seconds():
    """A longer route, a slower region: every answer ten times slower, however few requests
    are in flight. The limit is cut at once, and once a window of answers (5 s by default;
    0.3 s here) held none as fast as before, it doubles each round trip again, instead of
    staying at 1 until 200 slow answers had come in (two minutes at 600 ms)."""
    limit, traffic = grown(12, seconds=0.05, baseline_seconds=0.3)
    assert limit.limit == 16
    traffic.answers(40, seconds=0.6)
    assert limit.limit < 16, "cut at once"
    for _ in range(5):  # round trips, each longer than a window
        time.sleep(0.35)
        traffic.answers(limit.limit, seconds=0.6)
    assert limit.limit >= 16


def test_after_an_outage_it_doubles_back_to_where_the_first_cut_left_it():
    """Every answer failed round trip after round trip (refused, 503) and cut it to 1. Once
    the API answers again it doubles each round trip up to the first cut's level (32 -> 16),
    as TCP's slow start does, instead of growing by one per six round trips from 1 (90 round
    trips to get back to 16)."""
    limit, traffic = grown(28)
    assert limit.limit == 32
    for _ in range(8):
        traffic.answers(2 * max(limit.limit, 2), ok=False)
    assert limit.limit == 1
    rounds = 0
    while limit.limit < 16:
        traffic.answers(limit.limit)  # a round trip
        rounds += 1
    assert rounds == 4, "1, 2, 4, 8, 16"
    traffic.answers(16)
    assert limit.limit == 16, "then slowly, as after any cut"


def test_after_429s_in_a_row_it_grows_back_slowly():
    """A rate limit says how much the API takes: regrowing fast would only bring more 429s."""
    limit, traffic = grown(28)
    for _ in range(8):
        traffic.answers(2 * max(limit.limit, 2), ok=False, rate_limited=True)
    assert limit.limit == 1
    for _ in range(4):
        traffic.answers(limit.limit)
    assert limit.limit == 1, "one per six round trips"


def test_a_fixed_limit_never_moves():
    limit = ConcurrencyLimit(6, adaptive=False)
    traffic = Traffic(limit)
    traffic.answers(50)
    traffic.answers(10, ok=False)
    assert limit.limit == 6


def test_a_limit_nobody_uses_does_not_grow():
    limit = ConcurrencyLimit(32, start=4)
    for _ in range(50):  # one request at a time: the limit of 4 holds nothing back
        slot = limit.acquire()
        assert slot is not None
        limit.release(slot, ok=True)
    assert limit.limit == 4


def test_requests_beyond_the_limit_wait_and_a_stop_frees_them():
    limit = ConcurrencyLimit(2, adaptive=False)
    held = [limit.acquire(), limit.acquire()]
    stop = threading.Event()
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(limit.acquire(stop)))
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive(), "a third request waits while two are in flight"
    stop.set()
    waiter.join(2)
    assert got == [None]
    first = held[0]
    assert first is not None
    limit.release(first, ok=True)
    assert limit.acquire(threading.Event()) is not None, "a freed place is taken at once"
