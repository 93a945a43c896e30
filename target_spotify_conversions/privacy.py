"""What of an input value may be shown: in a reason, a log line, the summary or the rejects file.

A value sits in the wrong column more often than one would think (a CSV shifted by one, a
stream map that picks the wrong field): an email lands in `amount`, a phone number in
`spotify_event_name`. So a message never quotes a value it read from a record; it says what
kind of value it was and how long (`a string of 19 characters`), unless the value is one of a
closed set that holds no personal data (a currency code, an event name). The rejects file
keeps what the mapping reads, but every value that looks like an email or a phone number,
whatever property it sits in, is replaced by its SHA-256 digest, as the mapping would hash it.

Pure functions, no I/O: the mapping workers and the reading process both use them.
"""

from __future__ import annotations

import decimal
import html
import math
import re
import urllib.parse
from collections.abc import Callable, Collection

from .escaping import printable
from .hashing import (
    dials_one,
    email_shaped,
    is_valid_phone,
    redact_emails,
    redact_phone,
    sha256_hex,
)

# What a phone number looks like when it is written as one: a leading `+`, or digit groups
# split by the punctuation people type between them. Bare digits are no phone here: ids and
# amounts are digits too (a bare national number is hashed where the mapping reads a phone).
# Digits of any script (full-width ones too) and the separators phonenumbers reads: spaces of
# every width (no-break, thin, ideographic, zero-width, the word joiner, the soft hyphen),
# brackets, dots, slashes (`030/1234567`), tildes and every dash (U+2010 to U+2015, the minus
# sign, the small and full-width forms, the wave dash and the katakana long mark), as text
# copied from documents and typed on other keyboards writes them.
_SEPARATORS = (
    r" ().\-/~\u00a0\u00ad\u2000-\u200b\u2010-\u2015\u202f\u2053\u205f\u2060\u2212"
    r"\u3000\u301c\u30fc\ufe58\ufe63\ufeff\uff08\uff09\uff0d\uff0e\uff0f\uff5e"
)
_PHONE_SHAPE = re.compile(rf"[+\uff0b]?[{_SEPARATORS}\d]+")
_PHONE_DIGITS = (7, 15)  # E.164 numbers have at most 15 digits; none has fewer than 7
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_SLASHED_DATE = re.compile(r"[0-9]{1,4}/[0-9]{1,2}/[0-9]{1,4}")  # 12/05/2026, 2026/11/12
_DOTTED_DATE = re.compile(r"[0-3]?[0-9]\.[01]?[0-9]\.(?:[0-9]{2}|[0-9]{4})")  # 07.12.2026
_IPV4 = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3}){3}")


def looks_like_email(text: str) -> bool:
    """The mapping's test, at any length: an `@` with text on both sides."""
    return "@" in text and email_shaped(text)


def looks_like_phone(text: str) -> bool:
    """A phone number as people write one: `+44 20 7946 0958`, `(415) 555-0123`."""
    text = text.strip()
    if not _PHONE_SHAPE.fullmatch(text) or _PLAIN_NUMBER.fullmatch(text):
        return False
    if _ISO_DATE.match(text) or _SLASHED_DATE.fullmatch(text) or _IPV4.fullmatch(text):
        return False
    if _DOTTED_DATE.fullmatch(text):  # a date as Germany and Italy write it
        return False
    digits = sum(char.isdigit() for char in text)
    low, high = _PHONE_DIGITS
    return low <= digits <= high and (text.startswith(("+", "\uff0b")) or not text.isdigit())


def looks_personal(value: object) -> bool:
    """Whether a value may be an email or a phone number, wherever it was found."""
    return isinstance(value, str) and (looks_like_email(value) or looks_like_phone(value))


# An email: an `@` (a full-width or a small one, or `%40` as a URL writes it:
# `jane%40example.com`) after a character that is no space (up to two spaces may come between,
# and after: `jane.doe @ example.com` is typed too), and a domain with a dot and a top-level
# name of two letters (of any script: `пример.рф`) after it. Found at each `@`, the domain
# bounded at 253 characters (DNS's limit), so the scan is linear:
# `[^@\s]+@[^@\s]+\.[A-Za-z]{2,}` took the square of the text's length when no dot followed
# the `@` (70,000 characters on each side: over 20 s).
_AT_SIGNS = "@\ufe6b\uff20"
_EMAIL = re.compile(
    rf"[^{_AT_SIGNS}\s][ \t\u00a0]{{0,2}}(?:[{_AT_SIGNS}]|%40)[ \t\u00a0]{{0,2}}"
    rf"(?=[^{_AT_SIGNS}\s]{{1,253}}?\.[^\W\d_]{{2,}})"
)


def _has_at_sign(text: str) -> bool:
    """The test in C before `_EMAIL`'s scan: most values hold no `@` in any of its forms."""
    return "@" in text or "\uff20" in text or "%40" in text or "\ufe6b" in text


def plainly_personal(text: str) -> bool:
    """Whether a text is plainly an email (`name@domain.tld`) or an international or bracketed
    phone number (`+44 20 7946 0958`, `(415) 555-0123`): what a free-text field must never
    send raw. Stricter than `looks_personal`, so that no id or user agent is mistaken; two
    cheap tests first, as it runs on every free-text value."""
    if _has_at_sign(text):
        return _EMAIL.search(text) is not None
    return text[:1] in ("+", "(", "\uff0b", "\uff08") and looks_like_phone(text)


def hidden_digests(secrets: Collection[str]) -> frozenset[str]:
    """How `is_hidden` knows secrets: their SHA-256 as written and lower-cased (a copy in other
    case is a copy), so the mapping workers never hold a token."""
    return frozenset(sha256_hex(form) for secret in secrets for form in (secret, secret.lower()))


def is_hidden(value: object, hidden: Collection[str]) -> bool:
    """Whether a value is one of the secrets (trimmed, in any case) `hidden` holds digests of."""
    if not hidden or not isinstance(value, (str, int)) or isinstance(value, bool):
        return False
    text = value.strip() if isinstance(value, str) else str(value)
    try:
        return sha256_hex(text) in hidden or sha256_hex(text.lower()) in hidden
    except UnicodeEncodeError:  # a lone surrogate: no token, which is printable ASCII, has one
        return False


# Where a national number is checked when phone_default_country is not set.
FREE_TEXT_REGION = "US"


def personal_in_free_text(text: str, country: str | None = None) -> bool:
    """Whether a free-text field's value (`content_name`, `$device_id`, `session_id`, ...) must
    not be sent (`_free_text_as_written`), as written or as a link or a form would decode it
    (`_decoded_forms`)."""
    return _judged(_free_text_as_written, text, country)


def _judged(check: Callable[[str, str | None], bool], text: str, country: str | None) -> bool:
    """`check` of the text as written, then of each form a link, a form or HTML decodes it
    to (most values have none)."""
    if check(text, country):
        return True
    return _may_be_encoded(text) and any(check(form, country) for form in _decoded_forms(text))


def _may_be_encoded(text: str) -> bool:
    """Whether a link, a form or HTML may have encoded the text: scans in C, false for most
    values (an `&` alone is no entity: `Apparel & Accessories`)."""
    return "%" in text or text.find("+", 1) >= 0 or _html_escaped(text)


_FORM_SPACE = re.compile(r"(?<=\d)\+(?=\d)")


def _decoded_forms(text: str) -> set[str]:
    """The text as a URL decodes it, once and twice (`%2540` is `%40` encoded again), as a
    form decodes it (`+` a space), and with a `+` between digits read as a space:
    values copied from links and exports (`%2B44%2020%207946%200958`, `+44+20+7946+0958`);
    and as HTML writes it (`jane&#64;example.com`, a page scraped into an export)."""
    forms: set[str] = set()
    if "&" in text:
        forms.add(_html_unescaped(text))
    if "%" in text:
        once = urllib.parse.unquote(text)
        forms |= {once, urllib.parse.unquote(once), urllib.parse.unquote_plus(text)}
    if text.find("+", 1) >= 0:  # a form's spaces between digits: `call +44+20+7946+0958`
        forms.add(_FORM_SPACE.sub(" ", text))
    forms.discard(text)
    return forms


def _free_text_as_written(text: str, country: str | None) -> bool:
    """Whether a free-text value as written must not be sent: it holds an email or an
    international or bracketed phone number, alone or within words (`call +44 20 7946
    0958`), or it is a phone number written with separators
    (`415-555-0123`, `030/1234567`, `0044 20 7946 0958`) that is a valid number of `country`
    (phone_default_country; the US when it is not set) written as that country writes its own
    (outside North America with the trunk 0: `300-400-500` is a size in Germany). Valid, not
    just phone-shaped: dates,
    versions, ranges and order numbers with dashes (`100-200-3000`) are what free-text fields
    hold, and bare digits are ids. (`$event_id` keeps the stricter `plainly_personal`.) Two
    regex scans in C first: most values hold no run of seven digits and separators, and end
    there."""
    if _has_at_sign(text) and _EMAIL.search(text) is not None:
        return True
    if _MARKED_RUN.search(text) is not None and any(  # `+44 ...`, `(415) ...`
        looks_like_phone(run) for run in _MARKED_RUN.findall(text)
    ):
        return True
    if _NUMBER_ALONE.fullmatch(text) is None:  # a letter: no national number alone
        return False
    number = text.strip()
    region = country or FREE_TEXT_REGION
    return (
        looks_like_phone(number)
        and not number.isdigit()
        and (dials_one(region) or number.startswith("0"))  # see personal_in_words
        and _valid_phone(number, region)
    )


def _valid_phone(number: str, region: str) -> bool:
    """A valid number of the region, or an international one written with the `00` or `011`
    that dials out (`0044 20 7946 0958`), which phonenumbers reads only in its own region.
    The dashes phonenumbers does not read (`415~555~0123`) are read as hyphens."""
    number = number.translate(_ODD_DASHES)
    if is_valid_phone(number, region):
        return True
    for exit_code in _EXIT_CODES:
        if number.startswith(exit_code):
            return is_valid_phone("+" + number[len(exit_code) :].lstrip(), region)
    return False


_EXIT_CODES = ("00", "011")
_ODD_DASHES = str.maketrans(dict.fromkeys("~\u301c\ufe58\ufe63\uff5e", "-"))
# More runs of a national number's shape than are worth parsing one by one (30 us each):
# such a text is not sent (a long list of numbers in a product name is no product name).
MAX_RUNS_CHECKED = 8


def personal_in_words(text: str, country: str | None = None) -> bool:
    """`personal_in_free_text`, and for a field people type words into (`content_name`) or a
    file that must hold no phone number (the rejects file) also a national number within
    words, as a country writes its own in full: North American ones in three groups
    (`call 1-415-555-0123 after 5`), elsewhere with the leading trunk 0 (`020 7946 0958`,
    `06 12 34 56 78`, `030/1234567`), each checked with phonenumbers for `country`. Product
    specs (`3840 2160 144Hz`, `Box 300 400 500 mm`) have neither shape. Not asked of ids and
    user agents: their digits would cost this scan on every event, and nobody types a phone
    number into them. As written, and as a link or a form would decode it."""
    return _judged(_words_as_written, text, country)


def _words_as_written(text: str, country: str | None) -> bool:
    if _free_text_as_written(text, country):
        return True
    region = country or FREE_TEXT_REGION
    pattern = _NANP_RUN if dials_one(region) else _TRUNK_RUN
    if pattern.search(text) is None:
        return False
    runs = [run for run in pattern.findall(text) if _DOTTED_DATE.fullmatch(run) is None]
    return len(runs) > MAX_RUNS_CHECKED or any(_valid_phone(run, region) for run in runs)


# An international or bracketed number, alone or within words (a space may follow the `+`);
# a national one alone, or within words in its country's shape (personal_in_words). C scans
# that most values end at once; the runs they find are then checked with phonenumbers.
_MARKED_RUN = re.compile(rf"[+(\uff0b\uff08][ \u00a0]?\d[{_SEPARATORS}\d]{{5,}}\d")
_NUMBER_ALONE = re.compile(rf"\s*\d[{_SEPARATORS}\d]{{5,}}\d\s*")
_RUN_ENDS = r"(?![\d.\-/]?\d)"  # no more digits follow: not the head of a longer number
_NANP_RUN = re.compile(
    rf"(?<!\d)[2-9]\d\d[{_SEPARATORS}]{{1,2}}\d{{3}}[{_SEPARATORS}]{{1,2}}\d{{4}}{_RUN_ENDS}"
)
_TRUNK_RUN = re.compile(rf"(?<!\d)0\d{{1,4}}(?:[{_SEPARATORS}]{{1,2}}\d{{2,8}}){{1,4}}{_RUN_ENDS}")


def described(value: object) -> str:
    """What a value is, without the value: `a string of 19 characters`, `a list of 3 items`.

    The one way a reason or a log line speaks of a value read from a record.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"a string of {_count(len(value), 'character')}"
    if isinstance(value, int):
        return f"an integer of {_count(_digits(value), 'digit')}"
    if isinstance(value, float) and not math.isfinite(value):
        return "a non-finite number"
    if isinstance(value, decimal.Decimal) and not value.is_finite():
        return "a non-finite number"
    if isinstance(value, (float, decimal.Decimal)):
        return "a number"
    if isinstance(value, (list, tuple)):
        return f"a list of {_count(len(value), 'item')}"
    if isinstance(value, dict):
        return f"an object of {_count(len(value), 'key')}"
    return f"a value of type {printable(type(value).__name__)}"


def shown(value: object, *, allowed: Collection[str] = (), limit: int = 40) -> str:
    """A value as a message may quote it: quoted when it is a string of the closed set
    `allowed` (compared as given), else `described`."""
    if isinstance(value, str) and value in allowed:
        return quoted(value, limit)
    return described(value)


def quoted(value: object, limit: int = 40) -> str:
    """The repr of a value that is not the record's (a schema's text, a setting), cut short,
    one line; one that looks like an email or a phone number is only described."""
    if looks_personal(value):
        return described(value)
    try:
        text = printable(repr(value))
    except ValueError:  # an int of more than 4300 digits has no repr
        return described(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# Characters of a setting's text a start-up message may quote; a longer one (a token pasted
# into the wrong setting) is only described, and so is one of SECRET_LIKE_CHARS or more that
# reads as random: letters and digits mixed, a run of digits, or letters of both cases mixed
# as no word mixes them. A setting's word is quoted (`PURCHSE`, `CUSTOM_EVENT_6`, `ture`,
# `checkoutCompleted`: they help to fix a typo), a token is not (`9f3kQ...`, `QwErTy...`).
SHOWN_SETTING_CHARS = 40
SECRET_LIKE_CHARS = 12
SECRET_LIKE_MIX = 3  # digits and letters, each at least: `k7Qz9xW2pL4vN8`
SECRET_LIKE_DIGITS = 12  # a number this long is an id or a key, not a typo
SECRET_LIKE_CASES = 16  # letters of both cases, a quarter capitals, and no separator
_WORD_SEPARATORS = frozenset(" _-./:,;@")


def showable_setting(value: object, limit: int = SHOWN_SETTING_CHARS) -> bool:
    """Whether a setting's value may be quoted in a start-up message (see shown_setting)."""
    if isinstance(value, int) and not isinstance(value, bool):  # a token of digits, unquoted
        return value == 0 or _digits(value) < SECRET_LIKE_DIGITS
    if not isinstance(value, str):
        return True
    if len(value) > limit or (_has_at_sign(value) and _EMAIL.search(value) is not None):
        return False  # too long to be a word, or it names someone (a filter's email)
    if len(value) < SECRET_LIKE_CHARS:
        return True
    digits = sum(char.isdigit() for char in value)
    letters = sum(char.isalpha() for char in value)
    if (digits >= SECRET_LIKE_MIX and letters >= SECRET_LIKE_MIX) or digits >= SECRET_LIKE_DIGITS:
        return False
    return not _mixed_cases(value)


def _mixed_cases(text: str) -> bool:
    """Capitals and small letters mixed as in a random token, not as in camelCase."""
    if len(text) < SECRET_LIKE_CASES or _WORD_SEPARATORS.intersection(text):
        return False
    capitals = sum(char.isupper() for char in text)
    small = sum(char.islower() for char in text)
    return capitals >= 4 and small >= 4 and capitals * 4 >= len(text)


def shown_setting(value: object, limit: int = SHOWN_SETTING_CHARS) -> str:
    """A setting's value as a start-up error may show it: `quoted` when it fits in `limit`
    and does not look like a token, else only `described` (a token pasted in the wrong place,
    and not a prefix of it either)."""
    if not showable_setting(value, limit):
        return f"{described(value)} (not shown)"
    return quoted(value, limit)


# Event ids are logged and kept in the summary; one that looks personal is shown as a digest.
ID_DIGEST_PREFIX = "sha256:"


def shown_id(event_id: str) -> str:
    """An event id as a log line, the summary and the rejects file show it: as it is, unless
    it is plainly an email or a phone number (a column shifted into `$event_id`); then a short
    digest of it, the same each run, so the rows can still be told apart. Strict, as ids are
    kept as they are so a record fed back keeps its id (the mapping refuses such an id, so
    this is the net under every other way an id may come)."""
    if not plainly_personal(event_id):
        return event_id
    digest = redact_phone(event_id, None) if looks_like_phone(event_id) else redact_emails(event_id)
    return ID_DIGEST_PREFIX + str(digest)[:16]


def redacted(value: object, phone_country: str | None) -> object:
    """A value as the rejects file keeps it: every string in it that looks like an email or a
    phone number replaced by the digest the mapping would send for it; lists and objects
    keep their shape."""
    if isinstance(value, str):
        if looks_like_email(value):
            return redact_emails(value)
        if looks_like_phone(value):
            return redact_phone(value, phone_country)
        if personal_in_words(value, phone_country):  # one within words: `call +44 20 ...`
            return sha256_hex(value)
        if _url_holds_personal(value, phone_country):  # `?phone=+44+20+7946+0958`
            return sha256_hex(value)
        return value
    if isinstance(value, list):
        return [redacted(item, phone_country) for item in value]
    if isinstance(value, dict):  # keys too: an email can be a key of an object
        return {
            str(redacted(key, phone_country)): redacted(item, phone_country)
            for key, item in value.items()
        }
    return value


def _url_holds_personal(text: str, country: str | None) -> bool:
    """A page URL that page_url would cut (or refuse): its query read as a form reads it."""
    if not text[:8].lower().startswith(("http://", "https://")):
        return False
    if _html_escaped(text):
        text = _html_unescaped(text)
    return _holds_personal_parts(text, country)


def _html_escaped(text: str) -> bool:
    """Whether HTML may have escaped an `@` or a `+` in the text (or escaped an entity again)."""
    return "&#" in text or "&commat;" in text or "&amp;" in text


def _html_unescaped(text: str) -> str:
    """Unescaped as HTML, twice: an export of a page may escape an entity again (`&amp;#64;`)."""
    return html.unescape(html.unescape(text))


# Query parameters whose value is a credential: presigned URLs (S3, GCS, Azure SAS) carry one,
# and a database URL may (`?password=`, `sslpassword`, `pwd`).
SECRET_PARAMS = re.compile(
    r"(sig|signature|token|key|secret|pass|pwd|credential|cred|auth|sas|x-amz-|x-goog-)", re.I
)


def shown_url(url: str, limit: int = 300) -> str:
    """A URL as a message may show it: no user name or password (`s3://KEY:SECRET@bucket`
    becomes `s3://bucket`), no query string when it carries a signature or a token (a
    presigned URL), one line, cut short."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # an unbalanced IPv6 bracket: show no more than the scheme
        return printable(url.partition(":")[0][:20]) + ":(unreadable URL)"
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    if query and SECRET_PARAMS.search(urllib.parse.unquote(query)):
        query = "(query removed)"
    text = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    if not parts.netloc and "@" in parts.path:  # `s3:KEY:SECRET@bucket`: no // to split on
        text = parts.scheme + ":" + parts.path.rpartition("@")[2]
    text = printable(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _count(n: int, unit: str) -> str:
    return f"{n} {unit}" + ("" if n == 1 else "s")


def _digits(value: int) -> int:
    """Digits of an int, without str() (which refuses more than 4,300 digits)."""
    size = abs(value)
    if size < 10**18:
        return len(str(size))
    return int(size.bit_length() * 0.30103) + 1  # log10(2): within one digit


# Nothing in a URL without these can spell an email or a phone number once unquoted (an
# `@` of any width, or a `+` or `(`, or an encoded character) nor hold a user name: most
# page URLs.
_MAYBE_PERSONAL_URL = re.compile(r"[@%+(\uff20\ufe6b]")
# Nor in a query (or fragment) without three groups of digits split by dashes, dots,
# slashes or tildes, as national numbers are written: `?phone=415-555-0123`. (A date,
# `2026-12-07`, has that shape too: such a URL is taken apart, and kept.) Looked for after
# the `?` only: the pattern costs 2 us on a whole URL, and a thank-you page's number is in
# its query.
_NATIONAL_IN_QUERY = re.compile(r"(?<!\d)\d{2,4}[-./~]\d{2,4}[-./~]?\d{2,5}(?!\d)")
# A URL urllib takes apart and puts together unchanged, with none of those characters: a
# lower-case scheme, a plain host and port, and a query or fragment that is not empty. Most
# page URLs are sent as they are, at a tenth of the cost of the round trip through urllib
# (tests/test_privacy.py checks the two agree).
_PLAIN_URL = re.compile(
    r"https?://[A-Za-z0-9._-]+(?::[0-9]{1,5})?(?:/[^\x00-\x20?#@%+(\x7f]*)?"
    r"(?:\?[^\x00-\x20#@%+(\x7f]+)?(?:#[^\x00-\x20@%+(\x7f]+)?"
)


def page_url(url: str, country: str | None = None) -> str:
    """A page's URL as it may reach Spotify: without a user name or password, and without a
    path, query or fragment that holds an email or a phone number (a thank-you page often
    carries the buyer's email in its query). What is left still names the site and page.
    A part is personal as a free-text field's value is (`personal_in_free_text`, national
    numbers of `country`).

    A URL with none of the characters a personal part needs skips taking its parts apart,
    which cost a tenth of the mapping's time on a web export; what urllib would normalise
    (a trailing `?`) is normalised the same way either path. A URL copied out of HTML is also
    judged unescaped (`?email=jane&#64;example.com`: its `#` would cut the address in two),
    and sent so, cut, when that holds a personal part.

    Raises ValueError for a URL that may hold personal data and that urllib cannot take
    apart (a port that is no number, a bracket left open): it cannot be sent without it."""
    if _html_escaped(url):
        unescaped = _html_unescaped(url)
        if unescaped != url and _holds_personal_parts(unescaped, country):
            return page_url(unescaped, country)  # shorter each time: it ends
    maybe_personal = _may_hold_personal(url)
    if not maybe_personal and _PLAIN_URL.fullmatch(url) is not None:
        return url
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise ValueError("its host or port cannot be read") from None
    if not maybe_personal:
        return urllib.parse.urlunsplit(parts)
    return _without_personal_parts(parts, country)


def _holds_personal_parts(url: str, country: str | None) -> bool:
    """Whether page_url would cut a part of the URL (or refuse it), normalising aside."""
    if not _may_hold_personal(url):
        return False
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return True
    return _without_personal_parts(parts, country) != urllib.parse.urlunsplit(parts)


def _may_hold_personal(url: str) -> bool:
    if _MAYBE_PERSONAL_URL.search(url) is not None:
        return True
    start = url.find("?")
    if start < 0:
        start = url.find("#")
    if start < 0:
        return False
    query = url[start:]  # scans in C first: most queries hold no dash, dot, slash or tilde
    if "-" not in query and "." not in query and "/" not in query and "~" not in query:
        return False
    return _NATIONAL_IN_QUERY.search(query) is not None


def _without_personal_parts(parts: urllib.parse.SplitResult, country: str | None) -> str:
    netloc = parts.netloc.rpartition("@")[2]  # without a user name and password
    path, query, fragment = parts.path, parts.query, parts.fragment
    if _holds_personal(path.split("/"), country):
        path = "/"
    pairs = [*_pair_values(query), query, *_pair_values(fragment), fragment]
    if _holds_personal(pairs, country):
        query = fragment = ""
    return urllib.parse.urlunsplit((parts.scheme, netloc, path, query, fragment))


_PAIRS = re.compile(r"[&;]")


def _pair_values(text: str) -> list[str]:
    """The values of a query (or fragment) of key=value pairs, each read as a form reads it
    (`+` a space) and as people write phones (`?phone=+1+415+555+0199`: the first `+` is the
    number's own)."""
    values = [value for _, value in urllib.parse.parse_qsl(text, keep_blank_values=True)]
    for pair in _PAIRS.split(text):
        value = urllib.parse.unquote(pair.partition("=")[2])  # a `+` kept as written
        if value.startswith("+"):
            values.append("+" + value[1:].replace("+", " "))
    return values


def _holds_personal(parts: list[str], country: str | None) -> bool:
    return any(
        personal_in_free_text(urllib.parse.unquote(part), country) for part in parts if part
    )
