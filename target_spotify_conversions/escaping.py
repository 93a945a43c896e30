"""Values from the input, made safe to put on a log line.

A stream name, an event id or an API message can hold a newline; written as it is, it would start
a line of its own that reads like one of ours ("summary: outcome: completed"). Control and other
non-printable characters are written as Python escapes instead (\\n, \\x1b, \\u2028).
"""

from __future__ import annotations

import logging
from typing import Any


def printable(value: object) -> str:
    """The text of a value with every non-printable character escaped; one line, always."""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():  # the common case: one C-level scan
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def install_log_escaping() -> None:
    """Escape the arguments of every log record, the SDK's as well as ours.

    The SDK logs stream names as it received them; a record factory is the one place that sees
    every log call's arguments before they are formatted. Messages themselves are our own text.
    """
    make_record = logging.getLogRecordFactory()
    if getattr(make_record, "escapes_input", False):
        return

    def escaped_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        if isinstance(record.args, tuple):
            record.args = tuple(_escaped(arg) for arg in record.args)
        record.name = printable(record.name)  # a sink's logger is named after its stream
        return record

    escaped_record.escapes_input = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(escaped_record)


def _escaped(arg: object) -> object:
    if isinstance(arg, (str, BaseException)):
        return printable(arg)
    return arg
