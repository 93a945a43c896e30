"""Which Singer STATE may be written: one whose every earlier record is delivered or rejected.

This is what makes delivery at-least-once: a run killed at any moment has checkpointed only
records that reached Spotify (or were rejected), so a re-run from that STATE loses nothing.
Records are numbered as they arrive; whoever holds unfinished records (records waiting for a
mapping worker, events waiting for an answer) says which is the oldest of them.
"""

from __future__ import annotations

from collections import deque
from typing import Any


class Checkpoints:
    """Numbers records as they arrive, and keeps each STATE with the records read before it."""

    def __init__(self) -> None:
        self._seen = 0
        self._states: deque[tuple[int, Any]] = deque()

    def number(self, records: int = 1) -> int:
        """The arrival number of the next record (0, 1, 2, ...); of the first of the next
        `records`, which take the numbers that follow."""
        seq = self._seen
        self._seen += records
        return seq

    def state(self, value: Any) -> None:
        """A STATE arrived after every record numbered so far."""
        self._states.append((self._seen, value))

    def writable(self, oldest_unfinished: int | None) -> Any | None:
        """The newest STATE that is now safe to write, if any (older ones are superseded).

        `oldest_unfinished`: the number of the oldest record not yet delivered or rejected,
        or None when every record numbered so far is.
        """
        done_below = self._seen if oldest_unfinished is None else oldest_unfinished
        latest = None
        while self._states and self._states[0][0] <= done_below:
            latest = self._states.popleft()[1]
        return latest

    @property
    def pending_states(self) -> int:
        """STATE messages received and not yet written."""
        return len(self._states)
