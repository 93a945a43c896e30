"""How long a request waits between tries: the retry schedule and the outage it rides out.

No SDK and no HTTP here: the client (client.py) follows the schedule; the settings quote its
budget. A Retry-After from the API lengthens a wait, never shortens it (client.py).
"""

from __future__ import annotations

import random
from collections.abc import Callable

import backoff

BACKOFF_FACTOR = 1.0  # seconds of the first step
BACKOFF_MAX = 60.0  # no step is longer
DEFAULT_MAX_RETRIES = 10


def backoff_waits(
    retries: int,
    *,
    factor: float = BACKOFF_FACTOR,
    jitter: Callable[[], float] = random.random,
) -> list[float]:
    """The wait before each retry: steps of 1, 2, 4 ... up to 60 s, each wait between half
    and all of its step ("equal jitter", as stripe-python does).

    Full jitter (anything from 0 to the step) could wait almost nothing between tries, so a
    30-second outage failed a run a few times in a hundred; the half of each step kept as a
    floor makes the outage a run rides out a certainty (`guaranteed_wait`), while the other
    half still spreads the retries of many threads and runs apart.
    """
    steps = backoff.expo(factor=factor, max_value=BACKOFF_MAX)
    next(steps)  # the generator's first value is the priming 0
    return [step * (0.5 + 0.5 * jitter()) for step, _ in zip(steps, range(retries), strict=False)]


def guaranteed_wait(retries: int, *, factor: float = BACKOFF_FACTOR) -> float:
    """The least time a request spends waiting between its tries before it gives up: an
    outage shorter than this is always ridden out (default 10 retries: 151.5 s; at most
    twice that, 303 s, before a run fails on an outage that never ends)."""
    return sum(backoff_waits(retries, factor=factor, jitter=lambda: 0.0))
