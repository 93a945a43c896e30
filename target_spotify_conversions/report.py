"""Counts of what a run did, progress lines while it runs, the closing summary and its JSON file.

An operator reads this, not the log: every rejection and warning is counted by kind, the first
few of each are logged with their stream and event id (never a value) so a row can be found,
and the rest are only counted, so a run with 20,000 rejects writes a few kilobytes of log.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import stat
import statistics
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .mapping import IDENTIFIER_BITS
from .output_paths import PARTIAL_SUFFIX, partial_prefix
from .privacy import showable_setting, shown_id, shown_setting

PROGRESS_EVERY_SECONDS = 10.0
# Occurrences of one reject reason or warning kind logged one by one; the rest are counted.
LOGGED_PER_KIND = 5
# Event ids kept per reason or kind in the summary file, to find the rows.
SAMPLES_PER_KIND = 5
# Answer latencies and in-flight counts kept to compute medians: a uniform sample of this
# many (reservoir sampling), so a run of millions of requests keeps a few kilobytes.
KEPT_SAMPLES = 10_000


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
        shown = json.dumps(key) if showable_setting(key) else shown_setting(key)
        unmatched.append(
            f"stream_maps key {shown} matched no stream; the streams seen were "
            + (", ".join(json.dumps(name) for name in seen) or "none")
        )
    return unmatched


class _Reservoir:
    """A uniform sample of at most KEPT_SAMPLES values (Vitter's algorithm R), seeded: the
    same run gives the same figures."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self._seen = 0
        self._rng = random.Random(0)

    def add(self, value: float) -> None:
        self._seen += 1
        if len(self.values) < KEPT_SAMPLES:
            self.values.append(value)
            return
        index = self._rng.randrange(self._seen)
        if index < KEPT_SAMPLES:
            self.values[index] = value

    def quantile(self, share: float) -> float | None:
        if not self.values:
            return None
        ordered = sorted(self.values)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None


class RequestCounts:
    """Every count the request threads make, behind one lock: requests sent, retries, 429
    answers, answer latencies, requests in flight and the limit on them.

    The transport calls it from any number of threads; the summary reads it at the end.
    """

    def __init__(self, parent: RequestCounts | None = None) -> None:
        """`parent`: the run's counts, which a connection's add up into (several connections)."""
        self._parent = parent
        self._lock = threading.Lock()
        self.requests = 0
        self.retries = 0
        self.throttled = 0  # answers 429
        self._latencies = _Reservoir()
        self._in_flight = _Reservoir()
        self.most_in_flight = 0
        self.limits: tuple[int, int] | None = None  # lowest and highest limit requests saw
        self.cap: int | None = None
        self.adaptive = False

    def limited(self, cap: int, *, adaptive: bool) -> None:
        """The limit on requests in flight this run works with."""
        with self._lock:
            self.cap, self.adaptive = cap, adaptive

    def sent(self, in_flight: int | None = None, limit: int | None = None) -> None:
        """One request (a first attempt or a retry) started, with `in_flight` requests in
        flight, itself included, under `limit`."""
        if self._parent is not None:
            self._parent.sent(in_flight, limit)
        with self._lock:
            self.requests += 1
            if in_flight is not None:
                self._in_flight.add(in_flight)
                self.most_in_flight = max(self.most_in_flight, in_flight)
            if limit is not None:
                low, high = self.limits or (limit, limit)
                self.limits = (min(low, limit), max(high, limit))

    def answered(self, seconds: float, status: int | None) -> None:
        """An answer came (status None: a connection error or timeout) after `seconds`."""
        if self._parent is not None:
            self._parent.answered(seconds, status)
        with self._lock:
            if status is not None:
                self._latencies.add(seconds)
            if status == 429:
                self.throttled += 1

    def retried(self) -> None:
        if self._parent is not None:
            self._parent.retried()
        with self._lock:
            self.retries += 1

    def latency(self) -> dict[str, float] | None:
        """Median and 95th percentile of the answers' latency, in seconds."""
        with self._lock:
            median, p95 = self._latencies.median(), self._latencies.quantile(0.95)
        if median is None or p95 is None:
            return None
        return {"median": round(median, 4), "p95": round(p95, 4)}

    def in_flight(self) -> dict[str, Any] | None:
        """Requests in flight as each request started (median, most), and the limit's range."""
        with self._lock:
            median = self._in_flight.median()
            if median is None or self.limits is None:
                return None
            return {
                "median": median,
                "max": self.most_in_flight,
                "limit_min": self.limits[0],
                "limit_max": self.limits[1],
                "cap": self.cap,
                "adaptive": self.adaptive,
            }

    def summary_lines(self) -> list[str]:
        """The request lines of the closing summary."""
        lines = [f"requests: {self.requests} (retries: {self.retries})"]
        if self.throttled:
            lines.append(f"requests answered 429 (rate limited): {self.throttled}")
        flight = self.in_flight()
        if flight is not None:
            how = "adaptive" if flight["adaptive"] else "fixed"
            lines.append(
                f"requests in flight: median {flight['median']:g}, at most {flight['max']}; "
                f"limit {flight['limit_min']} to {flight['limit_max']} ({how}, cap {flight['cap']})"
            )
        latency = self.latency()
        if latency is not None:
            lines.append(
                f"answer latency: median {latency['median']:.3f} s, p95 {latency['p95']:.3f} s"
            )
        return lines

    def as_dict(self) -> dict[str, Any]:
        """The summary file's request fields."""
        return {
            "requests": self.requests,
            "retries": self.retries,
            "answered_429": self.throttled,
            "in_flight": self.in_flight(),
            "answer_latency_seconds": self.latency(),
        }


# The outcome of a run whose settings were refused before it read anything.
REFUSED_AT_START = "failed: settings refused"
# What a summary file holds whatever the run (a file without them is no summary: not replaced
# by a refused run's), and more than it ever takes.
_SUMMARY_KEYS = frozenset({"outcome", "run_id", "records_read", "events_delivered"})
_SUMMARY_BYTES = 1 << 20


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
        # With several connections: what each one got (delivered, rejected, coverage).
        self.connections: dict[str, ConnectionCounts] = {}
        self.requests = RequestCounts()  # handed to the transport, which counts into it
        self.ledger: str | None = None  # where the delivery ledger is; None: no ledger
        self.already_delivered = 0  # left out: the ledger holds them as delivered
        self.max_rejected_share: float | None = None  # None: only all rejected fails

    # --- counting ---------------------------------------------------------------------------

    def read(self, stream: str, records: int = 1) -> None:
        self.records_read += records
        self.read_by_stream[stream] += records

    def recount(self, stream: str, as_stream: str) -> None:
        """A record counted under `stream` turned out to be an unreadable line."""
        self.read_by_stream[stream] -= 1
        self.read_by_stream[as_stream] += 1

    def warn(self, stream: str, event_id: str, kinds: Iterable[str]) -> None:
        """Count warnings; the first few of each kind are logged so the row can be found."""
        event_id = shown_id(event_id)
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

    def by_connection(self, names: Iterable[str]) -> None:
        """Count per connection from now on, each of `names` listed even if it gets nothing."""
        self.connections = {name: ConnectionCounts() for name in sorted(names)}

    def connection_requests(self, requests: Mapping[str, tuple[int, int]]) -> None:
        """Each connection's requests and retries, at the end of the run."""
        for name, (made, retries) in requests.items():
            if name in self.connections:
                self.connections[name].requests = made
                self.connections[name].retries = retries

    def reject(
        self,
        stream: str,
        event_id: str,
        reasons: Iterable[tuple[str, str]],
        connection: str | None = None,
    ) -> None:
        """Count one rejected record by each (code, text) reason; log it if it is among the
        first few of one of its reasons."""
        reasons = list(reasons)
        event_id = shown_id(event_id)
        self.rejected += 1
        if self.connections and connection in self.connections:
            self.connections[connection].rejected += 1
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

    def deliver(
        self,
        count: int,
        identifier_masks: Mapping[int, int] | None = None,
        connection: str | None = None,
    ) -> None:
        self.delivered += count
        if identifier_masks:
            self._identifier_masks.update(identifier_masks)
        if self.connections and connection in self.connections:
            self.connections[connection].add(count, identifier_masks)
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
        return coverage(self._identifier_masks)

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
                "written before it would be skipped next time (see docs/operations.md, "
                "'Bookmarks in the future')"
            )
        return self.hints + hints

    # --- the end of the run -----------------------------------------------------------------

    def summary_lines(self, outcome: str) -> list[str]:
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
            *self.requests.summary_lines(),
            f"seconds: {self.seconds():.1f} ({self.rate():.0f} events/s)",
            *[
                counts.summary_line(name, self.sent_verb)
                for name, counts in self.connections.items()
            ],
        ]
        return ["summary: " + line for line in lines]

    def log_summary(self, outcome: str) -> None:
        for line in self.summary_lines(outcome):
            self._logger.info(line)
        for hint in self.stream_hints():
            self._logger.warning("Hint: %s", hint)

    def as_dict(self, outcome: str) -> dict[str, Any]:
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
            **self.requests.as_dict(),
            "seconds": round(self.seconds(), 3),
            "sample_event_ids": self.samples,
            "hints": self.stream_hints(),
            **(
                {"connections": {name: c.as_dict() for name, c in self.connections.items()}}
                if self.connections
                else {}
            ),
        }

    def write_file(self, path: str, outcome: str) -> None:
        """Write the summary file whole or not at all: a reader never sees half of it, and a
        failure (a full disk) leaves the earlier file as it was and no temporary file: written
        beside it, synced to disk, then renamed over it; removed if any step fails.

        /dev/null turns it off: renamed over, the device itself would become a file (as root,
        for every program on the machine). A symbolic link is written through, as the other
        outputs are: renamed over, the user's link would become a file and its target stay old
        (a link to nothing is refused at start, output_paths)."""
        if path == os.devnull or _not_a_regular_file(path):
            return
        target = Path(os.path.realpath(path))
        target.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.as_dict(outcome), indent=2, sort_keys=False)
        fd, partial = tempfile.mkstemp(
            prefix=partial_prefix(str(target)), suffix=PARTIAL_SUFFIX, dir=target.parent
        )
        try:
            os.fchmod(fd, 0o644)  # as a plain new file gets (mkstemp makes it 0600)
            with os.fdopen(fd, "wb") as file:
                file.write(text.encode() + b"\n")
                file.flush()
                os.fsync(file.fileno())
            os.replace(partial, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(partial)
            raise


def write_refused_summary(path: object, *, dry_run: bool) -> None:
    """The summary file of a run whose settings were refused at start: it replaces the last
    run's, whose `completed` an alert would otherwise read as this run's.

    The refusal may be of summary_file itself (it names the ledger, the input, another
    output), so it is written only where no other file can be: at a path that holds nothing
    yet, or over an earlier summary."""
    if not isinstance(path, str) or not path or not _replaceable_by_summary(path):
        return
    report = RunReport(logging.getLogger(__name__), run_id=str(uuid.uuid4()), dry_run=dry_run)
    with contextlib.suppress(OSError):
        report.write_file(path, REFUSED_AT_START)


def _replaceable_by_summary(path: str) -> bool:
    """Nothing there (and a folder to make it in), or a file an earlier run's summary is. A
    link to nothing is something: renamed over, the user's link would be gone."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block the read below
            return False
        with open(path, "rb") as file:
            text = file.read(_SUMMARY_BYTES + 1)
    except FileNotFoundError:
        return not os.path.islink(path) and os.path.isdir(os.path.dirname(os.path.abspath(path)))
    except (OSError, ValueError):  # a path under a file, a NUL in the name, no permission
        return False
    try:
        summary = json.loads(text) if len(text) <= _SUMMARY_BYTES else None
    except ValueError:
        return False
    return isinstance(summary, dict) and summary.keys() >= _SUMMARY_KEYS


def _not_a_regular_file(path: str) -> bool:
    """Whether a path names something other than a regular file or nothing (never renamed
    over: the start-up check refuses such a summary_file; this is the last line of defence)."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def coverage(masks: Mapping[int, int]) -> dict[str, float]:
    """For each identifier, the share (0 to 1) of events with these masks that carry it."""
    total = sum(masks.values())
    return {
        name: round(sum(n for mask, n in masks.items() if mask & bit) / total, 4) if total else 0.0
        for name, bit in IDENTIFIER_BITS.items()
    }


class ConnectionCounts:
    """What one connection got in a run with several: its own delivered, rejected, coverage."""

    def __init__(self) -> None:
        self.delivered = 0
        self.rejected = 0
        self.requests = 0
        self.retries = 0
        self._masks: Counter[int] = Counter()

    def add(self, count: int, masks: Mapping[int, int] | None) -> None:
        self.delivered += count
        if masks:
            self._masks.update(masks)

    def summary_line(self, name: str, verb: str) -> str:
        shares = ", ".join(f"{key} {share:.1%}" for key, share in coverage(self._masks).items())
        return (
            f"connection {name}: {self.delivered} events {verb}, {self.rejected} rejected, "
            f"requests {self.requests} (retries {self.retries}); identifier coverage: {shares}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "events_delivered": self.delivered,
            "records_rejected": self.rejected,
            "identifier_coverage": coverage(self._masks),
            "requests": self.requests,
            "retries": self.retries,
        }


class SummaryFileError(Exception):
    """The summary file could not be written; the message says what became of the run."""


def summary_file_failed(exc: OSError, outcome: str, *, dry_run: bool) -> str:
    """Why the summary file is missing, and the truth about STATE: after a completed run
    everything read was delivered (or rejected) and the final STATE written; a dry run wrote
    its bodies and no STATE at all, so the words of a real run would be false there."""
    why = f"summary_file could not be written ({exc.strerror or type(exc).__name__})"
    if outcome == "completed" and dry_run:
        return (
            f"{why}; the dry run itself completed: every event read was written to the "
            "dry-run file or rejected; as in every dry run, nothing was sent and no STATE "
            "was written. The earlier summary_file, if any, is left as it was"
        )
    if outcome == "completed":
        return (
            f"{why}; the run itself completed: every event read was delivered or rejected and "
            "the final STATE was written, so a re-run sends nothing again. The earlier "
            "summary_file, if any, is left as it was"
        )
    return f"{why}; the earlier summary_file, if any, is left as it was"
