"""Counts of what a run did, progress lines while it runs, and the closing summary (SPEC 7)."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable

PROGRESS_EVERY_SECONDS = 10.0


class RunReport:
    """What the summary prints; counters only, no personal data."""

    def __init__(self, logger: logging.Logger, *, run_id: str = "", dry_run: bool = False) -> None:
        self._logger = logger
        self.run_id = run_id
        # A dry run delivers nothing: its events are counted as written to the dry-run file.
        self._sent = "events written to the dry-run file" if dry_run else "events delivered"
        self._dry_run = dry_run
        self._started = time.monotonic()
        self._last_progress = self._started
        self.records_read = 0
        self.delivered = 0
        self.rejected = 0
        self.reasons: Counter[str] = Counter()
        self.warnings: Counter[str] = Counter()

    def warn(self, kinds: Iterable[str]) -> None:
        """Count warnings; the first of each kind is logged so it is seen without the summary."""
        for kind in kinds:
            if not self.warnings[kind]:
                self._logger.warning(
                    "Warning '%s' (first occurrence; later ones are counted in the summary)", kind
                )
            self.warnings[kind] += 1

    def reject(self, codes: Iterable[str]) -> None:
        self.rejected += 1
        self.reasons.update(codes)

    def deliver(self, count: int) -> None:
        self.delivered += count
        now = time.monotonic()
        if now - self._last_progress >= PROGRESS_EVERY_SECONDS:
            self._last_progress = now
            self._logger.info(
                "Progress%s: %d records read, %d %s, %d rejected, %.0f events/s",
                " (dry run)" if self._dry_run else "",
                self.records_read,
                self.delivered,
                self._sent,
                self.rejected,
                self.rate(),
            )

    def rate(self) -> float:
        return self.delivered / max(self.seconds(), 1e-9)

    def seconds(self) -> float:
        return time.monotonic() - self._started

    def summary_lines(self, requests: int, retries: int, outcome: str) -> list[str]:
        """The closing summary, one fact per line, each starting with 'summary:' for grep."""
        if self._dry_run:
            outcome += " (dry run: nothing sent, no STATE written)"
        lines = [
            f"outcome: {outcome}",
            *([f"run: {self.run_id}"] if self.run_id else []),
            f"records read: {self.records_read}",
            f"{self._sent}: {self.delivered}",
            f"records rejected: {self.rejected}",
            *(f"  rejected {code}: {n}" for code, n in sorted(self.reasons.items())),
            f"warnings: {sum(self.warnings.values())}",
            *(f"  warning {kind}: {n}" for kind, n in sorted(self.warnings.items())),
            f"requests: {requests} (retries: {retries})",
            f"seconds: {self.seconds():.1f} ({self.rate():.0f} events/s)",
        ]
        return ["summary: " + line for line in lines]

    def log_summary(self, requests: int, retries: int, outcome: str) -> None:
        for line in self.summary_lines(requests, retries, outcome):
            self._logger.info(line)
