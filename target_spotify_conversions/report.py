"""Counts of what a run did, progress lines while it runs, the closing summary and its JSON file.

An operator reads this, not the log: every rejection and warning is counted by kind, the first
few of each are logged with their stream and event id (never a value) so a row can be found,
and the rest are only counted, so a run with 20,000 rejects writes a few kilobytes of log.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .mapping import IDENTIFIER_BITS

PROGRESS_EVERY_SECONDS = 10.0
# Occurrences of one reject reason or warning kind logged one by one; the rest are counted.
LOGGED_PER_KIND = 5
# Event ids kept per reason or kind in the summary file, to find the rows.
SAMPLES_PER_KIND = 5


# Which property a warning kind is about, for the log line (the kind itself says why).
WARNING_FIELDS = {
    "event_time_missing": "$event_time",
    "event_time_clamped": "$event_time",
    "ip_not_public": "$ip",
    "invalid_ip": "$ip",
    "invalid_device_id": "$device_id",
    "invalid_user_agent": "$user_agent",
    "invalid_spclid": "$spclid",
}


def warning_field(kind: str) -> str:
    """`invalid_email` -> `email`: the property a warning is about."""
    return WARNING_FIELDS.get(kind) or kind.removeprefix("invalid_")


def unmatched_stream_maps(stream_maps: Mapping[str, Any], seen: Iterable[str]) -> list[str]:
    """A hint for each `stream_maps` key that matched no stream of the run: a silent no-op."""
    seen = sorted(seen)
    unmatched = []
    for key, spec in stream_maps.items():
        source = spec.get("__source__") if isinstance(spec, Mapping) else None
        if key.startswith("__") or key in seen or source in seen:
            continue
        unmatched.append(
            f"stream_maps key {json.dumps(key)} matched no stream; the streams seen were "
            + (", ".join(json.dumps(name) for name in seen) or "none")
        )
    return unmatched


class RunReport:
    """What the summary prints and the summary file holds; counters and ids, no personal data."""

    def __init__(self, logger: logging.Logger, *, run_id: str = "", dry_run: bool = False) -> None:
        self._logger = logger
        self.run_id = run_id
        self.dry_run = dry_run
        self._started = time.monotonic()
        self._last_progress = self._started
        self.records_read = 0
        self.delivered = 0
        self.rejected = 0
        self.skipped_no_consent = 0
        self.reasons: Counter[str] = Counter()
        self.warnings: Counter[str] = Counter()
        self.not_logged = 0
        self.samples: dict[str, dict[str, list[str]]] = {"rejected": {}, "warnings": {}}
        self._identifier_masks: Counter[int] = Counter()
        self.read_by_stream: Counter[str] = Counter()
        self.rejected_by_stream: dict[str, Counter[str]] = defaultdict(Counter)
        self.hints: list[str] = []
        self.ledger: str | None = None  # where the delivery ledger is; None: no ledger
        self.already_delivered = 0  # left out: the ledger holds them as delivered
        self.max_rejected_share: float | None = None  # None: only all rejected fails

    # --- counting ---------------------------------------------------------------------------

    def read(self, stream: str) -> None:
        self.records_read += 1
        self.read_by_stream[stream] += 1

    def recount(self, stream: str, as_stream: str) -> None:
        """A record counted under `stream` turned out to be an unreadable line."""
        self.read_by_stream[stream] -= 1
        self.read_by_stream[as_stream] += 1

    def warn(self, stream: str, event_id: str, kinds: Iterable[str]) -> None:
        """Count warnings; the first few of each kind are logged so the row can be found."""
        for kind in kinds:
            self.warnings[kind] += 1
            if self._sample("warnings", kind, event_id):
                self._logger.warning(
                    "Warning %s: stream %s, event_id %s, field %s",
                    kind,
                    json.dumps(stream),
                    json.dumps(event_id),
                    json.dumps(warning_field(kind)),
                )

    def reject(self, stream: str, event_id: str, reasons: Iterable[tuple[str, str]]) -> None:
        """Count one rejected record by each (code, text) reason; log it if it is among the
        first few of one of its reasons."""
        reasons = list(reasons)
        self.rejected += 1
        self.rejected_by_stream[stream].update(code for code, _ in reasons)
        logged = False
        for code, _ in reasons:
            self.reasons[code] += 1
            logged = self._sample("rejected", code, event_id) or logged
        if logged:
            self._logger.warning(
                "Rejected record: stream %s, event_id %s: %s",
                json.dumps(stream),
                json.dumps(event_id),
                json.dumps([text for _, text in reasons], ensure_ascii=True)[1:-1],
            )

    def skip_no_consent(self) -> None:
        self.skipped_no_consent += 1

    def deliver(self, count: int, identifier_masks: Mapping[int, int] | None = None) -> None:
        self.delivered += count
        if identifier_masks:
            self._identifier_masks.update(identifier_masks)
        now = time.monotonic()
        if now - self._last_progress >= PROGRESS_EVERY_SECONDS:
            self._last_progress = now
            self._logger.info(
                "Progress%s: %d records read, %d events %s, %d rejected, %.0f events/s",
                " (dry run)" if self.dry_run else "",
                self.records_read,
                self.delivered,
                self.sent_verb,
                self.rejected,
                self.rate(),
            )

    def _sample(self, group: str, kind: str, event_id: str) -> bool:
        """Keep the event id as a sample; whether this occurrence is logged one by one."""
        ids = self.samples[group].setdefault(kind, [])
        if len(ids) < SAMPLES_PER_KIND:
            ids.append(event_id)
        counter = self.warnings if group == "warnings" else self.reasons
        if counter[kind] <= LOGGED_PER_KIND:
            return True
        self.not_logged += 1
        return False

    # --- derived figures --------------------------------------------------------------------

    @property
    def sent_verb(self) -> str:
        return "written to the dry-run file" if self.dry_run else "delivered"

    def rate(self) -> float:
        return self.delivered / max(self.seconds(), 1e-9)

    def seconds(self) -> float:
        return time.monotonic() - self._started

    def rejected_share(self) -> float:
        return self.rejected / self.records_read if self.records_read else 0.0

    def reject_limit_exceeded(self) -> str | None:
        """Why the run fails on its rejects, or None. A run that read no record is no failure;
        one whose every record was rejected always is, whatever the limit."""
        if not self.records_read:
            return None
        share, limit = self.rejected_share(), self.max_rejected_share
        if self.rejected >= self.records_read:
            why = "every record read was rejected"
        elif limit is not None and share > limit:
            why = f"above max_rejected_share {limit:g}"
        else:
            return None
        return (
            f"{self.rejected} of {self.records_read} records read were rejected "
            f"({share:.1%}): {why}. The rejects file holds them, with their reasons; the "
            "summary's hints say what to check"
        )

    def _reject_limit_line(self) -> str:
        limit = self.max_rejected_share
        named = "none (only a run of all rejects fails)" if limit is None else f"{limit:g}"
        return f"rejected share: {self.rejected_share():.4f} (max_rejected_share: {named})"

    def identifier_coverage(self) -> dict[str, float]:
        """For each identifier, the share (0 to 1) of sent events that carry it."""
        total = sum(self._identifier_masks.values())
        return {
            name: round(
                sum(n for mask, n in self._identifier_masks.items() if mask & bit) / total, 4
            )
            if total
            else 0.0
            for name, bit in IDENTIFIER_BITS.items()
        }

    def stream_hints(self) -> list[str]:
        """Streams whose every record was rejected for one same reason: a setup mistake."""
        hints = []
        for stream, read in sorted(self.read_by_stream.items()):
            reasons = self.rejected_by_stream.get(stream, Counter())
            common = [code for code, n in reasons.items() if n >= read]
            if read and common:
                hints.append(
                    f"every record of stream {json.dumps(stream)} ({read}) was rejected for "
                    f"{common[0]}: check the stream's mapping or stream_maps"
                )
        if self.reasons["event_time_in_future"]:
            hints.append(
                f"{self.reasons['event_time_in_future']} events were dated more than 5 minutes "
                "ahead: an incremental tap's bookmark may now lie in the future, and rows "
                "written before it would be skipped next time (see the README, 'Bookmarks in "
                "the future')"
            )
        return self.hints + hints

    # --- the end of the run -----------------------------------------------------------------

    def summary_lines(self, requests: int, retries: int, outcome: str) -> list[str]:
        """The closing summary, one fact per line, each starting with 'summary:' for grep."""
        coverage = self.identifier_coverage()
        if self.dry_run:
            outcome += " (dry run: nothing sent, no STATE written)"
        lines = [
            f"outcome: {outcome}",
            *([f"run: {self.run_id}"] if self.run_id else []),
            f"records read: {self.records_read}",
            f"events {self.sent_verb}: {self.delivered}",
            *(
                [f"events already delivered, not sent again: {self.already_delivered} "
                 f"(ledger: {self.ledger})"]
                if self.ledger
                else []
            ),
            f"records rejected: {self.rejected}",
            *[f"  rejected {code}: {n}" for code, n in sorted(self.reasons.items())],
            self._reject_limit_line(),
            *(
                [f"records skipped without consent: {self.skipped_no_consent}"]
                if self.skipped_no_consent
                else []
            ),
            f"warnings: {sum(self.warnings.values())}",
            *[f"  warning {kind}: {n}" for kind, n in sorted(self.warnings.items())],
            f"rejects and warnings not logged one by one: {self.not_logged}",
            "identifier coverage: "
            + ", ".join(f"{name} {share:.1%}" for name, share in coverage.items()),
            f"requests: {requests} (retries: {retries})",
            f"seconds: {self.seconds():.1f} ({self.rate():.0f} events/s)",
        ]
        return ["summary: " + line for line in lines]

    def log_summary(self, requests: int, retries: int, outcome: str) -> None:
        for line in self.summary_lines(requests, retries, outcome):
            self._logger.info(line)
        for hint in self.stream_hints():
            self._logger.warning("Hint: %s", hint)

    def as_dict(self, requests: int, retries: int, outcome: str) -> dict[str, Any]:
        """The summary file's content; its field names are a stable interface."""
        return {
            "outcome": outcome,
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "records_read": self.records_read,
            "events_delivered": self.delivered,
            "already_delivered": self.already_delivered,
            "ledger": self.ledger,
            "records_rejected": self.rejected,
            "rejected_share": round(self.rejected_share(), 6),
            "max_rejected_share": self.max_rejected_share,
            "rejected_by_reason": dict(sorted(self.reasons.items())),
            "skipped_no_consent": self.skipped_no_consent,
            "warnings_by_kind": dict(sorted(self.warnings.items())),
            "not_logged_one_by_one": self.not_logged,
            "identifier_coverage": self.identifier_coverage(),
            "requests": requests,
            "retries": retries,
            "seconds": round(self.seconds(), 3),
            "sample_event_ids": self.samples,
            "hints": self.stream_hints(),
        }

    def write_file(self, path: str, requests: int, retries: int, outcome: str) -> None:
        """Write the summary file whole or not at all: a reader never sees half of it."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        text = json.dumps(self.as_dict(requests, retries, outcome), indent=2, sort_keys=False)
        partial.write_text(text + "\n", encoding="utf-8")
        os.replace(partial, target)
