"""The retry schedule: how long a request keeps trying, whatever the jitter draws."""

from __future__ import annotations

import random

from target_spotify_conversions.retries import (
    DEFAULT_MAX_RETRIES,
    backoff_waits,
    guaranteed_wait,
)
from target_spotify_conversions.settings import CONFIG_SCHEMA


def test_with_defaults_a_request_always_waits_out_more_than_two_minutes():
    assert CONFIG_SCHEMA["properties"]["max_retries"]["default"] == DEFAULT_MAX_RETRIES
    unluckiest = backoff_waits(DEFAULT_MAX_RETRIES, jitter=lambda: 0.0)
    assert unluckiest == [0.5, 1, 2, 4, 8, 16, 30, 30, 30, 30]
    assert sum(unluckiest) == guaranteed_wait(DEFAULT_MAX_RETRIES) == 151.5
    assert guaranteed_wait(DEFAULT_MAX_RETRIES) > 120  # the promise: two minutes of outage
    assert sum(backoff_waits(DEFAULT_MAX_RETRIES, jitter=lambda: 1.0)) == 303


def test_every_wait_lies_between_half_and_all_of_its_step():
    steps = backoff_waits(DEFAULT_MAX_RETRIES, jitter=lambda: 1.0)
    rng = random.Random(7)
    for _ in range(200):
        waits = backoff_waits(DEFAULT_MAX_RETRIES, jitter=rng.random)
        assert all(step / 2 <= wait <= step for wait, step in zip(waits, steps, strict=True))
        assert sum(waits) >= 151.5


def test_the_budget_quoted_to_users_is_the_schedule_s():
    about = CONFIG_SCHEMA["properties"]["max_retries"]["description"]
    assert "at least 151.5 s of outage" in about
