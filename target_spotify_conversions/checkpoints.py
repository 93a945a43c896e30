"""Which Singer STATE may be written: one whose every earlier record is delivered or rejected.

This is what makes delivery at-least-once: a run killed at any moment has checkpointed only
records that reached Spotify (or were rejected), so a re-run from that STATE loses nothing.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Any


class Checkpoints:
    """Tracks records by arrival number, and the STATE messages that arrived between them."""

    def __init__(self) -> None:
        self._seen = 0
        self._held: Counter[int] = Counter()
        self._states: deque[tuple[int, Any]] = deque()

    def record(self) -> int:
        """Number the next record; records are done unless `hold` says otherwise."""
        seq = self._seen
        self._seen += 1
        return seq

    def hold(self, seq: int) -> None:
        """A request whose first record is `seq` is not finished yet."""
        self._held[seq] += 1

    def release(self, seq: int) -> None:
        """That request is finished: delivered, or its refused events rejected."""
        self._held[seq] -= 1
        if not self._held[seq]:
            del self._held[seq]

    def state(self, value: Any) -> None:
        """A STATE arrived after every record numbered so far."""
        self._states.append((self._seen, value))

    def writable(self) -> Any | None:
        """The newest STATE that is now safe to write, if any (older ones are superseded)."""
        done_below = min(self._held) if self._held else self._seen
        latest = None
        while self._states and self._states[0][0] <= done_below:
            latest = self._states.popleft()[1]
        return latest

    @property
    def pending_states(self) -> int:
        return len(self._states)
