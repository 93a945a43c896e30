"""Stream maps that fail on one record reject that record instead of ending the run.

The SDK evaluates a stream map's expressions for each record before the sink sees it, and any
error there (a column the record lacks, `int('n/a')`, a function that does not exist) escapes
the whole run. Each custom stream map is wrapped once, after its SCHEMA registers it: an error
in one expression becomes a rejection naming the map property (or `__filter__`) and the kind of
error, never the value, which may be personal data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import simpleeval
from singer_sdk.mapper import CustomStreamMap, StreamMap

from .privacy import described, shown_setting
from .problems import Problem

# What receives a record a map failed on: the pipeline's `process(record, stream, problems)`.
OnFailure = Callable[[dict[str, Any], str, Sequence[Problem]], None]
FILTER = "__filter__"
_GUARDED = "_spotify_conversions_guarded"


class StreamMapFailed(Exception):
    """One expression of a stream map failed on the record being transformed."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.detail)
        self.problem = problem


class _MapperLinesUnquoted(logging.Filter):
    """singer_sdk.mapper's lines as the target's own would be: no expression, no record value.

    At INFO the SDK logs each stream's `__filter__` expression, and a filter may name a
    customer (`email != 'ceo@example.com'`): the line keeps the stream, not the expression. At
    DEBUG (`LOGLEVEL=DEBUG`, `meltano --log-level=debug`) it logs each record's filter result
    beside the expression, and the result is whatever the expression made of the record
    (`__filter__: email` makes the email): the line keeps true or false, the rest described."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == _FILTER_RULE_LINE and isinstance(record.args, tuple):
            stream, *rest = record.args
            record.args = (stream, *(_unquoted(rule) for rule in rest))
        elif str(record.msg).startswith(_FILTER_RESULT_LINE) and isinstance(record.args, tuple):
            rule, *results = record.args
            record.args = (_unquoted(rule), *(_outcome(result) for result in results))
        return True


def _unquoted(rule: object) -> str:
    return f"{described(rule)} (not shown)"


def _outcome(result: object) -> str:
    """A filter's result as the SDK reads it: a boolean or null as it is, a value described."""
    return str(result) if result is None or isinstance(result, bool) else described(result)


# singer_sdk.mapper's words; a result's line by its start alone (the SDK leaves its
# `{self.name}` unformatted: a release that fixes that must not let results through).
_FILTER_RULE_LINE = "Found '%s' filter rule: %s"
_FILTER_RESULT_LINE = "Filter result for '%s' in "
_SDK_MAPPER_LOG = logging.getLogger("singer_sdk.mapper")
_SDK_MAPPER_LOG.addFilter(_MapperLinesUnquoted())


# What `__else__` may be, for all streams or for one stream's other properties: drop them.
_ELSE_VALUES = (None, "__NULL__")


def else_refusal(stream_maps: object) -> str | None:
    """Why an `__else__` of the stream maps cannot be, or None. The SDK's own check of it
    ends in a traceback (its schema's `"__NULL__"` constant is no schema to jsonschema)."""
    if not isinstance(stream_maps, Mapping):
        return None
    places = [("stream_maps", stream_maps)] + [
        (f"stream_maps[{shown_setting(name)}]", stream_map)
        for name, stream_map in stream_maps.items()
        if isinstance(stream_map, Mapping)
    ]
    for where, stream_map in places:
        if "__else__" in stream_map and stream_map["__else__"] not in _ELSE_VALUES:
            return (
                f"{where}: __else__ may only be null (or \"__NULL__\"), which leaves out every "
                f"{'stream' if where == 'stream_maps' else 'property'} not named; it is "
                f"{described(stream_map['__else__'])}"
            )
    return None


def guard_stream_maps(stream_maps: Sequence[StreamMap], on_failure: OnFailure) -> None:
    """Make each custom map of a stream hand the records it fails on to `on_failure`."""
    for stream_map in stream_maps:
        if isinstance(stream_map, CustomStreamMap) and not getattr(stream_map, _GUARDED, False):
            _guard(stream_map, on_failure)


def failure(property_name: str | None, exc: BaseException) -> Problem:
    """The reason a record is rejected: the map property and the kind of error, no value."""
    cause = exc.__cause__ or exc  # the SDK wraps simpleeval's errors in MapExpressionError
    if isinstance(cause, simpleeval.NameNotDefined):
        # A name from the map, not a value; shown unless it reads as a token pasted there.
        why = f"name {shown_setting(cause.name)} is not in the record"
    else:
        why = type(cause).__name__
    where = FILTER if property_name is None else repr(property_name)
    return Problem("stream_map_failed", f"stream map property {where} failed: {why}")


def _guard(stream_map: CustomStreamMap, on_failure: OnFailure) -> None:
    evaluate = stream_map._eval  # the one place where the failing property is known
    transform = stream_map.transform

    def guarded_eval(
        expr: str, expr_parsed: Any, record: dict[str, Any], property_name: str | None
    ) -> Any:
        try:
            return evaluate(
                expr=expr, expr_parsed=expr_parsed, record=record, property_name=property_name
            )
        except Exception as exc:  # any error of an expression is the record's
            raise StreamMapFailed(failure(property_name, exc)) from None

    def guarded_transform(record: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return transform(record)
        except StreamMapFailed as failed:
            on_failure(record, stream_map.stream_alias, [failed.problem])
            return None  # to the SDK, a record the map filtered out

    setattr(stream_map, "_eval", guarded_eval)  # noqa: B010 - mypy forbids assigning a method
    setattr(stream_map, "transform", guarded_transform)  # noqa: B010
    setattr(stream_map, _GUARDED, True)
