"""Normalise and SHA-256-hash personal data, as Spotify matches it (docs/contract.md §2).

Raw emails and phone numbers never leave this module: callers get hex digests only.

phonenumbers is imported by the functions that use it, when first called: the reading process
of a run whose records go to mapping workers never reads a phone, and the import cost it 25 ms
of CPU at every start.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

from .values import CACHE_ENTRIES, whole_number

_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


def sha256_hex(text: str) -> str:
    """Digest as Spotify expects it: lower-case hex of the UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_sha256_hex(text: str) -> bool:
    """A value that already looks hashed is passed through, never hashed twice."""
    return len(text) == 64 and _SHA256_HEX.fullmatch(text) is not None


# The longest address mail can carry (RFC 5321's 256-character path, less its angle brackets).
MAX_EMAIL_CHARS = 254


def hash_email(email: str) -> str | None:
    """Trim, lower-case and hash one email; None when it cannot be an address.

    An address needs an `@` with text on both sides: placeholders such as `n/a` or `unknown`
    would otherwise all hash to one "identifier" that matches nobody, or the wrong person. A
    longer text than an address can be (a column of notes, a whole document shifted into
    `email`) is none either: its digest would be sent as an identifier that matches nobody.
    """
    cleaned = email.strip().lower()
    if is_sha256_hex(cleaned):
        return cleaned
    if len(cleaned) > MAX_EMAIL_CHARS or not email_shaped(cleaned):
        return None
    return sha256_hex(cleaned)


def email_shaped(text: str) -> bool:
    """An `@` with text on both sides, whatever the length: what the rejects file and the
    log treat as an email, so that a long note holding one is never kept raw either."""
    local, at, domain = text.strip().rpartition("@")
    return bool(local and at and domain)


# Emails kept for one event: a person has a few addresses, and a list of thousands is a tap's
# bug that would otherwise cost time on every stage and bloat the request. The rest are dropped.
MAX_EMAILS = 100


def hash_emails(value: object, limit: int | None = None) -> list[str]:
    """Unique digests of a string or a list of emails; non-strings and empties are dropped.

    Order is kept so the same input always produces the same request body. Reading stops once
    `limit` digests are found, so a huge list costs no more than its first few hundred items.
    """
    items = value if isinstance(value, list) else [value]
    digests: dict[str, None] = {}  # insertion-ordered set: linear, where a list was quadratic
    for item in items:
        digest = hash_email(item) if isinstance(item, str) else None
        if digest is not None:
            digests[digest] = None
            if limit is not None and len(digests) >= limit:
                break
    return list(digests)


def e164(phone: str, default_country: str | None) -> str | None:
    """E.164 form of a *possible* number, or None when it cannot be one.

    Possible, not valid: fictional ranges such as +1 555 010 2030 are real test numbers for
    advertisers, and validity data goes stale faster than the library is upgraded.
    """
    return _e164(phone.strip(), default_country)


def _e164(phone: str, default_country: str | None) -> str | None:
    import phonenumbers  # here, not at the top: see the module's words

    international = phone.startswith("+")
    if not international and default_country is None:
        return None
    try:
        number = phonenumbers.parse(phone, None if international else default_country)
    except phonenumbers.NumberParseException:
        return None
    # IS_POSSIBLE only: "IS_POSSIBLE_LOCAL_ONLY" numbers (no area code) cannot be matched.
    possible = phonenumbers.ValidationResult.IS_POSSIBLE
    if phonenumbers.is_possible_number_with_reason(number) != possible:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=256)
def dials_one(region: str) -> bool:
    """Whether a region's numbers are North American (calling code 1: `415-555-0123`)."""
    import phonenumbers  # here, not at the top: see the module's words

    return bool(phonenumbers.country_code_for_region(region) == 1)


@lru_cache(maxsize=CACHE_ENTRIES)
def is_valid_phone(text: str, region: str) -> bool:
    """Whether a text is a *valid* number of the region (or an international one): stricter
    than `e164`'s possible, so that a date, a version or an order number written with dashes
    (`100-200-3000`: no US area code starts with 1) is not taken for a phone number."""
    import phonenumbers  # here, not at the top: see the module's words

    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_valid_number(number))


def hash_phone(value: object, default_country: str | None) -> str | None:
    """Digest of the first usable number in a value (a string, a number or a list)."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        text = _phone_text(item)
        digest = None if text is None else _phone_digest(text, default_country)
        if digest is not None:
            return digest
    return None


def _phone_digest(text: str, default_country: str | None) -> str | None:
    if is_sha256_hex(text):
        return text.lower()
    return _number_digest(number_key(text), default_country)


_PLAIN = re.compile(r"\+?[0-9 ().-]+")
_PUNCTUATION = re.compile(r"[ ().-]")


def number_key(text: str) -> str:
    """The text without the punctuation phonenumbers skips anyway, if that is all it holds.

    Anything else (letters, "ext", "#", a "+" further in) is kept as it is.
    """
    return _PUNCTUATION.sub("", text) if _PLAIN.fullmatch(text) else text


# Parsing a phone number costs about 30 us, and users repeat: digests are cached (bounded) by
# the number's key, so that spellings differing only in spaces, dots, dashes and brackets
# ("+1 (512) 555-0193", "+1.512.555.0193") share an entry and are parsed once.
@lru_cache(maxsize=CACHE_ENTRIES)
def _number_digest(text: str, default_country: str | None) -> str | None:
    number = _e164(text, default_country)
    return None if number is None else sha256_hex(number)


def redact_phone(value: object, default_country: str | None) -> object:
    """Replace every number in a value by a digest, for files that must hold no raw phone."""
    if isinstance(value, list):
        return [redact_phone(item, default_country) for item in value]
    text = _phone_text(value)
    if text is None:
        return None
    if is_sha256_hex(text):
        return text.lower()
    number = e164(text, default_country)
    return sha256_hex(number if number is not None else text)


def redact_emails(value: object) -> object:
    """Replace every email in a value by its digest, keeping the value's shape.

    Unusable values are hashed too (after trimming and lower-casing): a rejects file never
    holds what was typed into an email field, whatever it was.
    """
    if isinstance(value, list):
        return [redact_emails(item) for item in value]
    if not isinstance(value, str) or not value.strip():
        return None
    cleaned = value.strip().lower()
    return cleaned if is_sha256_hex(cleaned) else sha256_hex(cleaned)


def _phone_text(item: object) -> str | None:
    if isinstance(item, str):
        return item.strip() or None
    number = whole_number(item)  # numeric columns arrive as int or Decimal
    return None if number is None else str(number)
