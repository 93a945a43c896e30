"""Reading Singer messages without ever echoing an input line, and stopping cleanly on a signal.

The SDK's readers put the whole offending line (a record full of personal data) into their log
and exception messages; this one names the line number only.
"""

from __future__ import annotations

import decimal
import sys
import typing as t
from collections import Counter
from collections.abc import Callable

import msgspec
from singer_sdk.contrib.msgspec import MsgSpecReader
from singer_sdk.singerlib.exceptions import InvalidInputLine

from .escaping import printable
from .messages import check_message

READ_BUFFER_BYTES = 1 << 20
# Numbers with a fraction become Decimal, as with the SDK's own readers.
_DECODER = msgspec.json.Decoder(float_hook=decimal.Decimal)


class StopReading(BaseException):
    """Raised by the signal handler while the reader waits for input."""


class SafeReader(MsgSpecReader):
    """msgspec decoding (4x the default reader), value-free errors, signal-aware loop."""

    _stdin: t.IO[bytes] | None

    @property
    def default_input(self) -> t.IO[t.Any]:  # type: ignore[override]
        """Bytes, not text: a line that is not UTF-8 is then one unreadable line, not a crash.

        A large buffer: each refill is a system call that lets the request threads take the
        GIL, and the main thread may then wait a whole switch interval to get it back.
        """
        if self._stdin is None:  # one reader per run: two buffers would split the input
            self._stdin = open(  # noqa: SIM115 - stdin stays open; the process ends with it
                sys.stdin.fileno(), "rb", buffering=READ_BUFFER_BYTES, closefd=False
            )
        return self._stdin

    def __init__(self) -> None:
        super().__init__()
        self.line_number = 0
        self.waiting_for_input = False
        self.stop_requested = False
        self.on_unreadable: Callable[[int, str], None] | None = None
        self._stdin = None

    def deserialize_json(self, line: str | bytes) -> dict[str, t.Any]:
        try:
            message = _DECODER.decode(line)
        except (msgspec.DecodeError, UnicodeDecodeError):
            raise InvalidInputLine(
                f"input line {self.line_number} is not valid UTF-8 JSON ({len(line)} bytes)"
            ) from None
        except RecursionError:  # caught here, where it surfaces: no walk over every line
            raise InvalidInputLine(
                f"input line {self.line_number} is nested too deeply to read ({len(line)} bytes)"
            ) from None
        if not isinstance(message, dict):
            raise InvalidInputLine(f"input line {self.line_number} is not a JSON object")
        return message

    @staticmethod
    def assert_line_requires(line_dict: dict[str, t.Any], requires: set[str]) -> None:
        missing = requires - set(line_dict)
        if missing:
            raise InvalidInputLine(
                f"a {printable(str(line_dict.get('type'))[:20])!r} message lacks "
                f"{printable(', '.join(sorted(missing)))}"
            )

    def _process_unknown_message(self, message_dict: dict[str, t.Any]) -> None:
        raise InvalidInputLine(
            f"input line {self.line_number} has unknown message type "
            f"{printable(str(message_dict.get('type'))[:20])!r}"
        )

    def process_lines(
        self,
        file_input: t.IO[str] | None,
        callbacks: dict[str, Callable[[dict[str, t.Any]], None]],
    ) -> t.Counter[str]:
        """The SDK's loop, plus: unreadable lines go to `on_unreadable`, and a signal stops it.

        The signal handler raises StopReading only while `waiting_for_input` is set, that is
        only inside the `try` below, and clears the flag itself, so it raises at most once.
        """
        stats: Counter[str] = Counter()
        lines = iter(file_input or self.default_input)
        try:
            while not self.stop_requested:
                self.waiting_for_input = True
                line = next(lines, None)
                self.waiting_for_input = False
                if line is None:
                    break
                self.line_number += 1
                message = self._read(line)
                if message is not None:
                    self._dispatch(message, callbacks)
                    stats[message["type"]] += 1
        except StopReading:
            pass
        self.waiting_for_input = False
        return stats

    def _dispatch(
        self, message: dict[str, t.Any], callbacks: dict[str, Callable[[dict[str, t.Any]], None]]
    ) -> None:
        callback = callbacks.get(message["type"])
        if callback is None:
            self._process_unknown_message(message)
        else:
            callback(message)

    def _read(self, line: str | bytes) -> dict[str, t.Any] | None:
        if not line.strip():
            return None
        try:
            message = self.deserialize_json(line)
            self.assert_line_requires(message, {"type"})
            try:
                check_message(message, line)
            except InvalidInputLine as exc:
                raise InvalidInputLine(f"input line {self.line_number}: {exc}") from None
        except InvalidInputLine as exc:
            if self.on_unreadable is None:
                raise
            self.on_unreadable(self.line_number, str(exc))
            return None
        return message
