"""Unreadable input: what makes a line unreadable, the limits, the reason codes and the wording.

One home for it, because a line is judged in three places (the reader, a BATCH block, a mapping
worker that decodes a raw record) and must be judged and worded the same in all three. Nothing
here quotes a line: a reason names the line by its number and size only.
"""

from __future__ import annotations

import decimal
from typing import Any

from .privacy import shown_url
from .problems import Problem

# Deeper than any real record or schema. Below it every later step (validation, the mapping
# workers, the rejects file) handles a value without running out of Python stack.
MAX_DEPTH = 100
# Opening brackets a line may hold before its depth is measured: most lines are not measured.
_BRACKETS_UNCHECKED = MAX_DEPTH
# The types of decoded JSON values that hold nothing (exactly these: a subclass of dict or list
# is looked into).
_SCALARS = frozenset({str, int, float, bool, type(None), decimal.Decimal})

# Why a raw record is an unreadable line (wire.MappedRecord.unreadable).
NOT_JSON, TOO_DEEP, AMBIGUOUS = "not_json", "too_deep", "ambiguous"
# The rejection code of every unreadable line, and the pseudo-stream it is counted under.
REASON = "unreadable_input_line"
INPUT_STREAM = "(input)"
# Why a line nested too deeply is unreadable (after "input line N: ").
NESTED_TOO_DEEP = f"nested more than {MAX_DEPTH} levels deep"
# The longest line read (the max_line_bytes setting's default): far above any real record (a
# Spotify request holds at most 1 MB of events), far below what would strain memory. A longer
# line is rejected under its own code after reading at most this plus one block of it
# (line_splitter.py), in linear time.
MAX_LINE_BYTES = 4 << 20
LINE_TOO_LONG = "input_line_too_long"


def not_json(line_number: int, size: int | str) -> str:
    """Why an input line is unreadable: a RECORD line (`size` in bytes), or a BATCH file's
    line (`size` is then the file's URL)."""
    if isinstance(size, str):
        return f"line {line_number} of BATCH file {shown_url(size)!r} is not a JSON object"
    return f"input line {line_number} is not valid UTF-8 JSON ({size} bytes)"


def nested_too_deep(line_number: int) -> str:
    """Why an input line is unreadable when it nests too deeply."""
    return f"input line {line_number}: {NESTED_TOO_DEEP}"


def worded(code: str, line_number: int, size: int | str) -> str:
    """The reason for a raw record a mapping worker found unreadable (`code`: NOT_JSON,
    TOO_DEEP or AMBIGUOUS), worded as the reader words a line it decoded itself."""
    if code == TOO_DEEP:
        return nested_too_deep(line_number)
    if code == AMBIGUOUS:
        return (
            f"input line {line_number} starts as a RECORD message, then names another type or "
            "stream, or a record that is no object (a name given twice)"
        )
    return not_json(line_number, size)


def too_long(line_number: int, size: int, limit: int, url: str | None = None) -> str:
    """Why a line is rejected as too long: its number and size, never a byte of it."""
    where = f"input line {line_number}"
    if url is not None:
        where = f"line {line_number} of BATCH file {url[:300]!r}"
    return f"{where} is {size} bytes long, over the limit of {limit} bytes (max_line_bytes)"


def problem(why: str, code: str = REASON) -> Problem:
    """The rejection of an unreadable line (`code`: REASON, or LINE_TOO_LONG)."""
    return Problem(code, why)


def nests_deeper(value: object, limit: int) -> bool:
    """Whether a decoded value nests more than `limit` objects and lists; stops early.

    Level by level. Every raw record is measured (in a mapping worker), and most hold no
    object or list at all: the types of an item's children are compared with the scalars'
    in C, and only an item with some other child is looked into, which made the measuring
    three times cheaper than looking at each child in Python."""
    if not isinstance(value, (dict, list)):
        return False
    level: list[dict[str, Any] | list[Any]] = [value]
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below: list[dict[str, Any] | list[Any]] = []
        for item in level:
            children = item.values() if isinstance(item, dict) else item
            if not _SCALARS.issuperset(map(type, children)):
                below.extend(child for child in children if isinstance(child, (dict, list)))
        level = below
    return False


def too_deep(value: object) -> bool:
    """Whether a decoded value nests more than MAX_DEPTH objects and lists; stops early."""
    return nests_deeper(value, MAX_DEPTH)


def may_stay_raw(line: bytes, *, text_ok: bool = False) -> bool:
    """Whether a line's record may go to the mapping workers undecoded: two C scans prove
    that its JSON, once the decoder has skipped over it, is all a full decoding would accept
    (ASCII, so no invalid UTF-8; few brackets, so not too deep). The `_sdc_` metadata the
    SDK's path removes, the workers remove too (StreamChecks.metadata).

    `text_ok`: `text_may_stay_raw` already holds for a text the line is part of, so only the
    depth, which each line needs for itself, is left to check."""
    return (text_ok or text_may_stay_raw(line)) and brackets(line) <= _BRACKETS_UNCHECKED


def text_may_stay_raw(text: bytes) -> bool:
    """The scan of `may_stay_raw` that holds for many lines at once if for their whole text."""
    return text.isascii()


def line_may_be_too_deep(line: str | bytes) -> bool:
    """Whether a decoded line must be measured: one with few brackets cannot nest deeply."""
    return brackets(line) > _BRACKETS_UNCHECKED


def brackets(line: str | bytes) -> int:
    """Opening brackets in a line: an upper bound of its depth, at the cost of a C scan."""
    if isinstance(line, bytes):
        return line.count(b"{") + line.count(b"[")
    return line.count("{") + line.count("[")
