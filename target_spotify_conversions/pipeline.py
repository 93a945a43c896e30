"""The target's work for one run, outside the SDK: record in, event mapped, delivered or rejected.

The SDK sink calls `process` for each record and `drain` when it drains; the target calls
`finish` or `fail` once at the end.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec

from .client import CapiClient
from .delivery import Delivery, DryRunFile, Outcome, Pending, Transport
from .mapping import EventMapper, Problem, Rejected
from .rejects import Rejects
from .report import RunReport
from .settings import Settings

_ENCODER = msgspec.json.Encoder(decimal_format="number")


class Pipeline:
    """Everything one run shares across streams: mapper, delivery, rejects and counts."""

    def __init__(
        self,
        settings: Settings,
        logger: logging.Logger,
        write_state: Callable[[Any], None],
    ) -> None:
        self.settings = settings
        self.report = RunReport(logger)
        self.mapper = EventMapper(settings.mapping)
        self.rejects = Rejects(
            self.report,
            logger,
            path=settings.rejects_file,
            fail=settings.fail_on_invalid,
            redact=self.mapper.redact,
        )
        self.transport = _transport(settings)
        self.delivery = Delivery(
            self.transport,
            settings.connection_id,
            events_per_request=settings.events_per_request,
            max_concurrent_requests=settings.max_concurrent_requests,
            on_outcome=self._on_outcome,
            write_state=self._checkpoint(write_state),
        )

    def process(
        self, record: Mapping[str, Any], stream: str, problems: Sequence[Problem] = ()
    ) -> None:
        """Map one record and queue its event, or reject it; `problems` come from the SDK side."""
        seq = self.delivery.checkpoints.record()
        self.report.records_read += 1
        if problems:
            self.rejects.reject(stream, self.mapper.event_id(record, stream), problems, record)
            return
        result = self.mapper.map(record, stream)
        if result.warnings:
            self.report.warn(result.warnings)
        if isinstance(result, Rejected):
            self.rejects.reject(stream, result.event_id, result.reasons, record)
            return
        item = Pending(stream, result.event_id, _ENCODER.encode(result.event), record)
        if not self.delivery.fits(item):
            too_big = Problem("event_too_large", "the event alone exceeds the 1 MB request limit")
            self.rejects.reject(stream, item.event_id, [too_big], record)
            return
        self.delivery.add(seq, item)

    def unreadable(self, line_number: int, why: str) -> None:
        """A line that is no Singer message may have been a record: never lose it silently."""
        self.delivery.checkpoints.record()
        self.report.records_read += 1
        problem = Problem("unreadable_input_line", why)
        self.rejects.reject("(input)", f"line-{line_number}", [problem], {})

    def state(self, value: Any) -> None:
        self.delivery.state(value)

    def drain(self) -> None:
        self.delivery.drain()

    def finish(self, outcome: str = "completed") -> None:
        """Deliver what is left, close files, and print the summary."""
        self.delivery.drain()
        self._close(abandon=False)
        self._summary(outcome)

    def fail(self, outcome: str) -> None:
        """Stop sending at once (nothing more is checkpointed) and print the summary."""
        self._close(abandon=True)
        self._summary(outcome)

    def _on_outcome(self, outcome: Outcome) -> None:
        self.report.deliver(outcome.delivered)
        for item, problem in outcome.refused:
            self.rejects.reject(item.stream, item.event_id, [problem], item.record)

    def _checkpoint(self, write_state: Callable[[Any], None]) -> Callable[[Any], None]:
        def write(state: Any) -> None:
            self.rejects.flush()
            write_state(state)

        return write

    def _close(self, *, abandon: bool) -> None:
        self.delivery.close(abandon=abandon)
        if isinstance(self.transport, DryRunFile):
            self.transport.close()
        self.rejects.close()

    def _summary(self, outcome: str) -> None:
        requests = self.transport.requests_made
        self.report.log_summary(requests, self.transport.retries, outcome)


def _transport(settings: Settings) -> Transport:
    if settings.dry_run:
        return DryRunFile(settings.dry_run_file)
    return CapiClient(
        settings.api_url,
        settings.auth_token,
        timeout=settings.request_timeout,
        max_retries=settings.max_retries,
    )
