"""How many requests may be in flight at once: a limit that follows the API's answers.

No SDK and no HTTP here. The real API answers in tens to hundreds of milliseconds and does not
publish its rate limit, so a fixed number of requests in flight is either too few (the target
waits on the network) or too many (a rate limit answers 429). The limit works as TCP's
congestion window and the AIMD and gradient limits of concurrency-limit libraries do:

- it starts at `START` (twice the old fixed default) and, while answers come back 2xx without the
  latency rising, grows by one per answer (doubling each round trip) until the first sign of
  trouble, then by one per ROUND_TRIPS_PER_STEP round trips;
- after an outage that cut it several times in a row (5xx, timeouts or refused connections
  until the API is back), it doubles each round trip back to where the first of those cuts
  left it, then grows slowly again, as TCP's slow start does up to its threshold (not after
  429s: there the API says how much it takes);
- it shrinks at once, by half, on a 429, a 5xx, a timeout or a refused connection, and by a
  quarter when the answer latency rises well above the lowest seen lately (over the last 100
  to 200 answers, at most 10 s); the answers of requests sent before the last cut count as
  the same trouble and do not cut again;
- when the lowest latency itself stays well above the one before for a whole window (the
  API got slower for good, however few requests were in flight), it doubles each round trip
  again from where it was cut to;
- it only grows when the requests in flight come near it (a limit nobody uses says nothing),
  and only on answers to requests sent since the last cut.

`adaptive=False` keeps the cap as a fixed number. One instance per destination: each
connection's transport gets its own.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

# The limit a run starts at: twice the fixed default of earlier versions, as TCP's initial
# window grew from 4 to 10 segments. Against an API answering in 250 ms, starting at 4 took
# three round trips to reach 32 in flight, a tenth of a 200,000-event run; 8 takes two (41,000
# against 43,100 events/s, 3 alternated runs). The first burst is 4,000 events.
START = 8
# The default cap (setting max_concurrent_requests). The target's answer times run above the
# API's own (250 ms answers were measured at 0.26 to 0.31 s while the target was busy), so 32
# requests of 500 events carried at most 52,000 to 62,000 events/s: no more than the target
# maps on two cores (54,000 against an instant API), and the cap held a run back (41,000
# events/s at 250 ms). 48 carry 77,000 to 92,000: 45,200 events/s at 250 ms. It stays polite:
# the limit starts at START, reaches the cap only while every answer is a fast 2xx, halves at
# the first 429 or 5xx, and after 429s grows back by one per six round trips.
DEFAULT_MAX_IN_FLIGHT = 48
# After the first cut the limit grows by one every this many round trips (TCP grows by one
# each): near a rate limit a request of 500 events is a large step, and growing slowly keeps
# 429s few (the mean of an additive-increase, halving limit is three quarters of its peak,
# whatever the slope), while growing too slowly leaves the limit low after each cut. Against
# a 10,000 events/s limit answering in 80 ms (4 alternated runs each, quiet machine): 4 round
# trips gave 9,400-9,530 events/s with 7.4-9.9% of requests answered 429, 8 gave 5.8-8.2% but
# only 8,980-9,040 events/s, 6 gave 9,250-9,390 events/s with 5.6-7.8%.
ROUND_TRIPS_PER_STEP = 6
# Cuts: on a refused or failed answer (429, 5xx, timeout, connection error), on rising latency.
CUT_ON_FAILURE = 0.5
CUT_ON_LATENCY = 0.75
# Latency is "rising" when the recent answers' smoothed latency exceeds this many times the
# lowest latency seen lately, plus an absolute margin: on a busy machine a request thread
# waiting for the interpreter lock adds tens of milliseconds that say nothing about the API
# (with 25 ms, a fast local API cut the limit to 1 on every hiccup of the target's own CPU).
LATENCY_TOLERANCE = 2.0
LATENCY_MARGIN_S = 0.1
# Smoothing of the recent latency (the weight of each new answer) and the answers per window
# of the lowest-latency filter (the lowest of the current and previous window is kept). A
# window also closes after BASELINE_SECONDS: when the API gets slower for good (a longer
# route, a slower region), the new latency becomes the baseline within two windows, instead
# of 200 answers that a limit cut to 1 took two minutes to collect at 600 ms.
RECENT_WEIGHT = 0.2
BASELINE_WINDOW = 100
BASELINE_SECONDS = 5.0


@dataclass(frozen=True)
class Slot:
    """One request's place in flight: when it started and the cut generation it saw."""

    started: float
    generation: int
    in_flight: int  # requests in flight once this one started, itself included
    limit: int  # the limit when it started


class ConcurrencyLimit:
    """A thread-safe limit on requests in flight; `acquire` before sending, `release` after."""

    def __init__(
        self,
        cap: int,
        *,
        adaptive: bool = True,
        start: int = START,
        baseline_seconds: float = BASELINE_SECONDS,
    ) -> None:
        if cap < 1:
            raise ValueError("the cap on requests in flight must be at least 1")
        self.cap = cap
        self.adaptive = adaptive
        self._limit = float(min(start, cap) if adaptive else cap)
        self._slow_start = True  # doubling each round trip until the first cut
        # Where the first cut of the latest trouble left the limit, and whether that trouble
        # goes on (no answer to a request sent since the last cut has come back good yet):
        # after an outage has cut the limit to 1, it doubles each round trip back to there.
        self._recover_to = 0.0
        self._in_trouble = False
        self._in_flight = 0
        self._generation = 0  # bumped on each cut
        self._changed = threading.Condition()
        self._recent: float | None = None  # smoothed latency of recent answers
        self._windows: deque[float] = deque([float("inf")], maxlen=2)  # lowest per window
        self._in_window = 0
        self._window_started = time.monotonic()
        self._baseline_seconds = baseline_seconds

    @property
    def limit(self) -> int:
        """Requests allowed in flight now (a whole number, at least 1)."""
        return max(1, int(self._limit))

    @property
    def untroubled(self) -> bool:
        """Whether the limit is still growing from its start, never cut: no answer has yet
        been a sign of trouble."""
        return self.adaptive and self._generation == 0

    def acquire(self, stop: threading.Event | None = None) -> Slot | None:
        """Wait for a place in flight; None when `stop` was set meanwhile."""
        with self._changed:
            while self._in_flight >= self.limit:
                if stop is not None and stop.is_set():
                    return None
                self._changed.wait(0.2 if stop is not None else None)
            self._in_flight += 1
            return Slot(time.monotonic(), self._generation, self._in_flight, self.limit)

    def release(self, slot: Slot, *, ok: bool | None, rate_limited: bool = False) -> float:
        """The request is over: `ok` True for a 2xx (or any final answer that is no sign of
        load), False for a sign of overload, None when it says nothing (the run is stopping).
        `rate_limited`: the failure was a 429, after which the limit only ever grows slowly.
        Returns the request's latency in seconds."""
        seconds = time.monotonic() - slot.started
        with self._changed:
            self._in_flight -= 1
            if self.adaptive and ok is not None:
                self._learn(slot, ok, seconds, rate_limited)
            self._changed.notify_all()
        return seconds

    def _learn(self, slot: Slot, ok: bool, seconds: float, rate_limited: bool = False) -> None:
        if not ok:
            self._cut(slot, CUT_ON_FAILURE, outage=not rate_limited)
            return
        baseline = self._baseline(seconds)
        if slot.generation != self._generation:
            return  # sent under the limit before the last cut: it says nothing of this one
        recent = seconds if self._recent is None else self._recent
        self._recent = recent + RECENT_WEIGHT * (seconds - recent)
        if self._recent > LATENCY_TOLERANCE * baseline + LATENCY_MARGIN_S:
            self._cut(slot, CUT_ON_LATENCY)
            return
        self._in_trouble = False
        if 2 * (self._in_flight + 1) >= self.limit:  # the limit is what holds requests back
            doubling = self._slow_start or self._limit < self._recover_to
            step = 1.0 if doubling else 1.0 / (self._limit * ROUND_TRIPS_PER_STEP)
            self._limit = min(float(self.cap), self._limit + step)

    def _cut(self, slot: Slot, factor: float, *, outage: bool = False) -> None:
        """Shrink once per episode: a request sent before the last cut saw the old limit.
        `outage`: a 5xx, a timeout or a refused connection; the first such cut of a trouble
        sets the level the limit doubles back to once the API answers again. Not a 429 (the
        API says how much it takes: regrowing fast there only brings more 429s) nor rising
        latency."""
        if slot.generation != self._generation:
            return
        self._generation += 1
        self._slow_start = False
        self._limit = max(1.0, self._limit * factor)
        if not self._in_trouble:  # the first cut of this trouble
            self._recover_to = self._limit if outage else 0.0
            self._in_trouble = True
        self._recent = None  # judge the new limit by the answers it gets

    def _baseline(self, seconds: float) -> float:
        """The lowest latency of the current and the previous window of answers.

        When a window closes with its lowest latency well above the one before, the API got
        slower whatever the load (the limit was cut meanwhile, and still no answer came
        fast): the limit doubles each round trip again, as at the start, until the next
        sign of trouble."""
        self._windows[-1] = min(self._windows[-1], seconds)
        self._in_window += 1
        now = time.monotonic()
        if (
            self._in_window >= BASELINE_WINDOW
            or now - self._window_started >= self._baseline_seconds
        ):
            before = min(self._windows)
            self._windows.append(float("inf"))
            self._in_window = 0
            self._window_started = now
            if min(self._windows) > LATENCY_TOLERANCE * before + LATENCY_MARGIN_S:
                self._slow_start = True
                self._recent = None
        return min(self._windows)
