"""The files a run writes (rejects, dry-run bodies, summary): checked at start, opened safely.

A path that cannot work must stop the run before anything is read or sent, not at the first
reject hours later: a FIFO or a device (opening one for writing blocks, or writes elsewhere),
a directory, a path under a regular file, a name too long for the file system, a directory
the run may not write to, two settings naming one file (the same path once links are
resolved, or two hard links of one inode: the dry run would truncate the rejects), and a
symbolic link to nothing, as the file or as a folder on its path.
Messages name the setting and the folder, never the file's contents.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import urllib.parse
from collections.abc import Mapping

from .escaping import printable

# A SQLite URL as SQLAlchemy splits one (any driver, an optional host, the database up to
# the query): the ledger's file is an output like the others.
_SQLITE_URL = re.compile(r"sqlite(?:\+\w+)?://[^/?]*(?:/([^?]*))?(?:\?.*)?", re.DOTALL)


def password_holds_at(url: str) -> bool:
    """Whether a database URL has more than one `@` before its database: an `@` in the
    password not written %40. SQLAlchemy then reads the rest of the password as the host
    (and a message would show it)."""
    return url.partition("://")[2].partition("/")[0].count("@") > 1


def sqlite_database(url: str | None) -> str | None:
    """The database of a SQLite URL (a path, or a `file:` URI) as SQLAlchemy reads it; None for
    another database, an in-memory one or none. Without loading SQLAlchemy: a run without a
    ledger never does."""
    found = _SQLITE_URL.fullmatch(url) if url else None
    if not found or found[1] in (None, "", ":memory:"):
        return None
    if found[1].startswith("file::memory:") or "mode=memory" in (url or ""):  # in memory
        return None
    return found[1]


def sqlite_file(database: str) -> str:
    """The file a SQLite database name opens: a `file:` URI's path is percent-decoded by
    SQLite (`file:l%65dger.db` is `ledger.db`), after its query and fragment go."""
    if not database.startswith("file:"):
        return database
    path = re.split(r"[?#]", database.removeprefix("file:"), maxsplit=1)[0]
    if path.startswith("//"):  # file://localhost/path or file:///path
        path = "/" + path[2:].partition("/")[2]
    return urllib.parse.unquote(path)


# A file written whole is written under a temporary name beside it, then renamed over it
# (tempfile.mkstemp: the prefix, 8 random characters, the suffix).
PARTIAL_SUFFIX = ".tmp"
_PARTIAL_RANDOM = 8
_SHORT_PARTIAL_PREFIX = ".partial."


def partial_prefix(path: str) -> str:
    """The prefix of the temporary name `path` is written under: `.NAME.` says whose it is, but
    is 14 bytes longer than NAME, so for a name within 14 bytes of the file system's limit
    (which the start-up check lets pass) the short `.partial.`: that output still works."""
    folder, name = os.path.split(os.path.abspath(path))
    prefix = f".{name}."
    extra = _PARTIAL_RANDOM + len(PARTIAL_SUFFIX)
    if len(os.fsencode(prefix)) + extra > name_max(folder):
        return _SHORT_PARTIAL_PREFIX
    return prefix


class OutputPathError(ValueError):
    """An output path that cannot work; the message names the setting and why."""


def check_output_path(setting: str, path: str | None) -> str | None:
    """`path` if the run can write a regular file there (existing, or created at its first
    write along with missing directories); None when unset."""
    if not path:
        return None
    if path == os.devnull:  # turns the output off
        return path
    if os.path.basename(path) in ("", ".", ".."):  # `out/`: a folder, existing or not
        raise OutputPathError(f"{setting} names a directory; give a file name in it")
    try:
        info = os.stat(path)
    except FileNotFoundError:
        _check_creatable(setting, path)
        return path
    except OSError as exc:
        raise OutputPathError(_unusable(setting, path, exc)) from None
    if stat.S_ISDIR(info.st_mode):
        raise OutputPathError(f"{setting} names a directory; give a file name in it")
    if not stat.S_ISREG(info.st_mode):
        raise OutputPathError(
            f"{setting} names a {_kind(info.st_mode)}, not a regular file: writing to it could "
            "block the run or send the output elsewhere; give a regular file's name"
        )
    if not os.access(path, os.W_OK):
        raise OutputPathError(f"{setting}: the file is not writable")
    return path


def check_distinct(paths: Mapping[str, str | None]) -> None:
    """Two settings naming one file would mix rejects into request bodies (or a report); one
    naming a file under the other's would find a file where it needs a folder, mid-run."""
    seen: dict[object, str] = {}
    for setting, path in paths.items():
        if path is None or path == os.devnull:
            continue
        real = os.path.realpath(path)
        keys: list[object] = [real]
        try:
            info = os.stat(path)
            keys.append((info.st_dev, info.st_ino))
        except OSError:  # absent: its resolved path is its identity
            pass
        for key in keys:
            if key in seen:
                raise OutputPathError(
                    f"{setting} and {seen[key]} name the same file (the same path, a link or "
                    "a hard link of it): use two files"
                )
        for other, name in seen.items():
            if isinstance(other, str) and (
                real.startswith(other + os.sep) or other.startswith(real + os.sep)
            ):
                raise OutputPathError(
                    f"{setting} and {name}: one names a file under the other's, which cannot "
                    "be a file and a folder at once: use two separate paths"
                )
        for key in keys:
            seen[key] = setting


def _check_creatable(setting: str, path: str) -> None:
    """The nearest existing folder must be a writable directory, and every name to create must
    fit the file system and be no broken link."""
    check_no_broken_link(setting, path)
    folder = os.path.dirname(os.path.abspath(path))
    missing = [os.path.basename(os.path.abspath(path))]
    while True:
        try:
            info = os.stat(folder)
            break
        except FileNotFoundError:
            missing.append(os.path.basename(folder))
            folder = os.path.dirname(folder)
        except OSError as exc:
            raise OutputPathError(_unusable(setting, path, exc)) from None
    if not stat.S_ISDIR(info.st_mode):
        raise OutputPathError(
            f"{setting}: {printable(folder)[:300]!r} is a file, not a directory, so no file "
            "can be created under it"
        )
    longest = name_max(folder)
    if any(len(os.fsencode(name)) > longest for name in missing):
        raise OutputPathError(
            f"{setting}: a file or folder name is longer than the file system allows "
            f"({longest} bytes)"
        )
    if not os.access(folder, os.W_OK):
        raise OutputPathError(f"{setting}: the directory {printable(folder)!r} is not writable")


def check_no_broken_link(setting: str, path: str) -> None:
    """Neither the file nor a folder on its path that is not there may be a link to nothing
    (the SQLite ledger is checked so too, as its file is another output)."""
    path = os.path.abspath(path)
    while not os.path.exists(path):  # a link to nothing does not exist either
        _check_not_a_broken_link(setting, path)
        if os.path.dirname(path) == path:
            return
        path = os.path.dirname(path)


def _check_not_a_broken_link(setting: str, path: str) -> None:
    """A link to nothing (a volume not mounted, a folder moved) is refused, not written through:
    the run would create what it points to, where no one looks, or fail mid-run when that
    lies in a missing folder (or the link stands where a folder goes); summary_file, renamed
    over it, would replace the link itself."""
    if os.path.islink(path):
        raise OutputPathError(
            f"{setting}: {printable(path)[:300]!r} is a symbolic link to "
            f"{printable(os.readlink(path))[:300]!r}, which does not exist: create that, or "
            "give a path without the broken link"
        )


def _unusable(setting: str, path: str, exc: OSError) -> str:
    if exc.errno == errno.ENOTDIR:
        return f"{setting}: a part of the path is a file, not a directory, so it cannot be created"
    if exc.errno == errno.ENAMETOOLONG:
        return f"{setting}: the path or a name in it is longer than the file system allows"
    return f"{setting}: the path cannot be used ({exc.strerror or type(exc).__name__})"


def special_file(path: str) -> str | None:
    """What `path` is when it exists and is no regular file ("a directory", "a FIFO (named
    pipe)", ...), else None: a database opened there fails with words of no help, or (a FIFO
    opened to read) waits for a writer that never comes, deaf to a stop signal."""
    try:
        mode = os.stat(path).st_mode
    except OSError:  # absent (made later), or refused: the caller's open says why
        return None
    if stat.S_ISREG(mode):
        return None
    return "a directory" if stat.S_ISDIR(mode) else f"a {_kind(mode)}"


def name_max(folder: str) -> int:
    """The longest name the file system takes in `folder`, in bytes (255 when it does not say)."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"
