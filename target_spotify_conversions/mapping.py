"""One record in, one Spotify event or the reasons it cannot be sent (docs/contract.md §2-4).

Pure functions and data only: no I/O, no SDK. The table `PROPERTIES` is the one place that says
which record property becomes which Spotify field and what happens when its value is invalid.
"""

from __future__ import annotations

import datetime as dt
import decimal
import ipaddress
import socket
import sys
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import pycountry

from . import event_id as ids
from .event_names import EventNameResolver
from .event_time import (
    UTC,
    format_event_time,
    in_spotify_form,
    parse_event_time,
)
from .hashing import (
    MAX_EMAILS,
    hash_email,
    hash_emails,
    hash_phone,
    redact_emails,
    redact_phone,
)
from .input_formats import DEFAULT_INPUT_FORMAT, lookup, make_reader, split_path
from .privacy import (
    described,
    is_hidden,
    page_url,
    personal_in_free_text,
    personal_in_words,
    plainly_personal,
    quoted,
    redacted,
)
from .problems import Problem
from .taxonomy import category_id
from .values import CACHE_ENTRIES, finite_decimal, is_absent, json_safe, whole_number

MAX_CLOCK_SKEW = dt.timedelta(minutes=5)
# The identifiers an event's user_data may carry, each with a bit of a mask (the report counts
# each one's share of sent events). A click id alone does not match an event to a person:
# an event needs one of the others (MATCHING_IDENTIFIERS).
IDENTIFIERS = ("hashed_emails", "hashed_phone_number", "ip_address", "device_id", "clickID")
MATCHING_IDENTIFIERS = frozenset(IDENTIFIERS) - {"clickID"}
IDENTIFIER_BITS = {name: 1 << n for n, name in enumerate(IDENTIFIERS)}
_IDENTIFIER_BIT_PAIRS = tuple(IDENTIFIER_BITS.items())
ACTION_SOURCES = frozenset({"WEB", "APP", "OFFLINE"})
CURRENCIES = frozenset(currency.alpha_3 for currency in pycountry.currencies)
_GENDERS = {"MALE": "MALE", "M": "MALE", "FEMALE": "FEMALE", "F": "FEMALE"}
_BOOLEANS = {"true": True, "false": False, "1": True, "0": False}
_MAX_FLOAT = decimal.Decimal("1.7976931348623157E+308")


def identifier_mask(user_data: Mapping[str, Any]) -> int:
    """The identifiers an event carries, as bits (cheap to count per event)."""
    mask = 0
    for name, bit in _IDENTIFIER_BIT_PAIRS:  # a plain loop: a third of sum() over a generator
        if name in user_data:
            mask |= bit
    return mask


@dataclass(frozen=True)
class MappingOptions:
    """The settings that change how a record maps (docs/contract.md §1), as settings.py
    checked and normalised them: nothing in the mapping checks them again."""

    event_name_map: Mapping[str, str] = field(default_factory=dict)
    default_event_name: str | None = None
    default_action_source: str | None = None
    default_opt_out_targeting: bool = True
    phone_default_country: str | None = None
    input_format: str = DEFAULT_INPUT_FORMAT
    property_paths: Mapping[str, Sequence[str]] = field(default_factory=dict)
    consent_property: str | None = None
    # Routing to connections (routing.py), read by the workers beside the mapping: no names
    # means the top-level connection alone.
    connection_property: str | None = None
    stream_connections: Mapping[str, str] = field(default_factory=dict)
    connection_names: Sequence[str] = ()
    # SHA-256 digests of the connections' tokens (privacy.hidden_digests): a routing value
    # equal to a token is never quoted or kept. Digests only: the workers never hold a token.
    hidden_digests: frozenset[str] = frozenset()
    # The separator of the SDK's record flattening when `flattening_enabled` is on, else None.
    flattened_by: str | None = None


@dataclass
class Mapped:
    """An event ready to send, and the kinds of warning raised while mapping it."""

    event: dict[str, Any]
    warnings: list[str]

    @property
    def event_id(self) -> str:
        return str(self.event["event_id"])


@dataclass
class Skipped:
    """A record without consent: neither sent nor kept, only counted."""

    event_id: str


@dataclass
class Rejected:
    """A record that must not be sent, with every reason found."""

    event_id: str
    reasons: list[Problem]
    warnings: list[str]


class Invalid(ValueError):
    """A present value that cannot be sent; the message must not contain personal data.

    `code` names the reason when it is not the rule's usual `invalid_<property>`.
    """

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


# --- converters: value in, Spotify value out, or Invalid ---------------------------------------


def _text(value: object, options: MappingOptions) -> str:
    if isinstance(value, str):
        # a column shifted into a free-text field
        if personal_in_free_text(value, options.phone_default_country):
            raise Invalid("an email or a phone number, which is only ever sent hashed")
        return value
    number = whole_number(value)
    if number is not None:
        return str(number)
    if isinstance(value, decimal.Decimal) and value.is_finite():
        return str(value)
    raise Invalid(f"expected a string, got {type(value).__name__}")


def _words(value: object, options: MappingOptions) -> str:
    """Text people type words into: a national phone number within them is looked for too."""
    if isinstance(value, str):
        if personal_in_words(value, options.phone_default_country):
            raise Invalid("an email or a phone number, which is only ever sent hashed")
        return value
    return _text(value, options)


def _action_source(value: object, _: MappingOptions) -> str:
    text = value.strip().upper() if isinstance(value, str) else ""
    if text not in ACTION_SOURCES:
        raise Invalid(f"{described(value)} is not WEB, APP or OFFLINE")
    return text


def _boolean(value: object, _: MappingOptions) -> bool:
    if isinstance(value, bool):
        return value
    key = value.strip().lower() if isinstance(value, str) else str(whole_number(value))
    if key not in _BOOLEANS:
        raise Invalid("expected true/false or 1/0")
    return _BOOLEANS[key]


def _url(value: object, options: MappingOptions) -> str:
    text = value.strip() if isinstance(value, str) else ""
    scheme, colon, rest = text.partition(":")
    if scheme.lower() not in ("http", "https") or not rest.startswith("//"):
        raise Invalid("must start with http:// or https://")
    try:  # HTTPS://x is sent as https://x
        return page_url(scheme.lower() + colon + rest, options.phone_default_country)
    except ValueError as exc:  # urllib cannot take it apart, and it may hold an email
        raise Invalid(str(exc)) from None


def _amount(value: object, _: MappingOptions) -> int | float:
    if isinstance(value, str) and "@" not in value and plainly_personal(value):  # "+1 415 ..."
        raise Invalid(f"{described(value)} is shaped like a phone number, not an amount")
    number = finite_decimal(value)
    if number is None:
        raise Invalid(f"{described(value)} is not a number")
    if number.copy_abs() > _MAX_FLOAT:  # beyond a double: inf to JSON readers, and to float()
        raise Invalid(f"{described(value)} is too large")
    if number < 0:
        raise Invalid("negative: a refund is not a conversion")
    whole = whole_number(number)
    return whole if whole is not None else float(number)


def _currency(value: object, _: MappingOptions) -> str:
    code = value.strip().upper() if isinstance(value, str) else ""
    if code not in CURRENCIES:
        # Three letters are shown (no email or phone is three letters); anything else is not.
        shown = quoted(code) if len(code) == 3 and code.isascii() and code.isalpha() else None
        raise Invalid(f"{shown or described(value)} is not an ISO 4217 currency code")
    return code


def _content_category(value: object, _: MappingOptions) -> str:
    found = category_id(value)
    if found is None:
        raise Invalid("not a Google Product Taxonomy id or full path")
    return found


def _emails(value: object, _: MappingOptions) -> list[str]:
    if isinstance(value, str):  # the common case, without building a list first
        digest = hash_email(value)
        if digest is not None:
            return [digest]
    digests = hash_emails(value, limit=MAX_EMAILS + 1)  # one more: the cap is checked later
    if not digests:
        raise Invalid("no usable email")
    return digests


def _phone(value: object, options: MappingOptions) -> str:
    digest = hash_phone(value, options.phone_default_country)
    if digest is None:
        raise Invalid("not a possible phone number (E.164 needs '+' or phone_default_country)")
    return digest


def _ip(value: object, _: MappingOptions) -> str:
    address = normal_ip(value.strip()) if isinstance(value, str) else None
    if address is None:
        raise Invalid("not an IPv4 or IPv6 address")
    return address


def _user_ip(value: object, options: MappingOptions) -> str:
    """The end user's address: public only, and a database `inet` prefix length is dropped.

    A private, loopback or link-local address is a server's or a proxy's, never the user's:
    sent as `ip_address` it would match the wrong people (or nobody).
    """
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, str) and "/" in text:
        text = _host_of_inet(text)
    address = _ip(text, options)
    if not is_public_ip(address):
        raise Invalid(
            "not a public address (private, loopback, link-local or multicast)",
            code="ip_not_public",
        )
    return address


def _host_of_inet(text: str) -> str:
    """`203.0.113.7/24` (PostgreSQL `inet`) -> `203.0.113.7`; anything else is left alone."""
    host, _, length = text.partition("/")
    limit = 128 if ":" in host else 32
    return host if length.isdigit() and int(length) <= limit else text


def normal_ip(text: str) -> str | None:
    """The address in its standard form (IPv6 compressed, lower case), or None.

    The C library's inet_pton/inet_ntop: as strict as the ipaddress module (no leading zeros,
    no short forms) at a tenth of its cost; IPv6 scope ids (fe80::1%eth0) are refused.
    """
    family = socket.AF_INET6 if ":" in text else socket.AF_INET
    try:
        return socket.inet_ntop(family, socket.inet_pton(family, text))
    except (OSError, ValueError):
        return None


# Networks no end user's public address lies in: unspecified/"this network", private,
# loopback, link-local, multicast and broadcast (IPv4-mapped IPv6 addresses are checked as IPv4).
_NOT_PUBLIC = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "224.0.0.0/4",
        "255.255.255.255/32",
        "::/128",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    )
)


@lru_cache(maxsize=CACHE_ENTRIES)
def is_public_ip(address: str) -> bool:
    """Whether an address (in standard form) can be an end user's public address."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not any(ip in net for net in _NOT_PUBLIC if net.version == ip.version)


def _gender(value: object, _: MappingOptions) -> str:
    gender = _GENDERS.get(value.strip().upper() if isinstance(value, str) else "")
    if gender is None:
        raise Invalid("expected MALE, FEMALE, m or f")
    return gender


Section = Literal["event", "event_details", "user_data"]
OnInvalid = Literal["reject", "drop"]


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of docs/contract.md §2: where a property goes and what an invalid value does."""

    source: str
    target: str
    section: Section
    convert: Callable[[Any, MappingOptions], Any]
    on_invalid: OnInvalid


def _user(source: str, target: str, convert: Callable[[Any, MappingOptions], Any] = _text) -> Rule:
    return Rule(source, target, "user_data", convert, "drop")


PROPERTIES: tuple[Rule, ...] = (
    Rule("$action_source", "action_source", "event", _action_source, "reject"),
    Rule("opt_out_targeting", "opt_out_targeting", "event", _boolean, "reject"),
    Rule("event_source_url", "event_source_url", "event", _url, "reject"),
    Rule("amount", "amount", "event_details", _amount, "reject"),
    Rule("currency", "currency", "event_details", _currency, "reject"),
    Rule("content_name", "content_name", "event_details", _words, "drop"),
    Rule("content_category", "content_category", "event_details", _content_category, "drop"),
    _user("email", "hashed_emails", _emails),
    _user("phone", "hashed_phone_number", _phone),
    _user("$ip", "ip_address", _user_ip),
    _user("$device_id", "device_id"),
    _user("$user_agent", "user_agent"),
    _user("gender", "gender", _gender),
    _user("request_ip_address", "request_ip_address", _ip),
    _user("event_ip_address", "event_ip_address", _ip),
    _user("platform_id", "platform_id"),
    _user("session_id", "session_id"),
    _user("alias_id", "alias_id"),
    _user("cookie1", "cookie1"),
    _user("page_id", "page_id"),
    _user("connection_type", "connection_type"),
    _user("age_group", "age_group"),
    _user("$spclid", "clickID"),
)

RULES_BY_SOURCE: Mapping[str, Rule] = {rule.source: rule for rule in PROPERTIES}

# What a rule made of a value: (the value to send, None), or (None, why) when it is invalid
# (a Problem: frozen, so the records that hold the same value share it).
_Converted = tuple[Any, Problem | None]
# What an EventMapper keeps of the text values it converted (EventMapper._keep): the longest
# value kept (a user agent is about 150 characters), and the memory all may hold, estimated
# as MEMO_ENTRY_BYTES an entry (its result and the table's share) and a byte an ASCII
# character; other text twice its size (up to 4 bytes a character, and its UTF-8 copy once
# encoded: 400 emoji were 3.3 kB kept, not 400 bytes).
# 24 MB holds the emails, phones and devices of about 40,000 people: against 200,000 events
# of 25,000 people, 91% of the values were found kept (78% with a fifth of that).
MEMO_VALUE_CHARS = 400
MEMO_ENTRY_BYTES = 200
MEMO_BYTES = 24_000_000


def _converted(rule: Rule, value: object, options: MappingOptions) -> _Converted:
    try:
        return rule.convert(value, options), None
    except Invalid as exc:
        return None, Problem(exc.code or "invalid_" + rule.source.lstrip("$"), str(exc))


# Every property the mapping reads: what a rejects-file record keeps.
INPUT_PROPERTIES: tuple[str, ...] = (
    "spotify_event_name",
    "event",
    "$event_id",
    "$event_time",
    *[rule.source for rule in PROPERTIES],
)


class EventMapper:
    """Maps records with one set of options; build once per run, call per record."""

    def __init__(self, options: MappingOptions) -> None:
        self.options = options
        self._names = EventNameResolver(options.event_name_map, options.default_event_name)
        # Where each property is read from (input_format, property_paths): the flat view.
        self._read = make_reader(
            options.input_format, options.property_paths, INPUT_PROPERTIES, options.flattened_by
        )
        self._consent = options.consent_property
        # Properties the settings name that decide what becomes of a record (its connection,
        # its consent): the rejects file keeps them, so a fixed record fed back goes the same way.
        self._kept_settings_properties = tuple(
            name for name in (options.connection_property, options.consent_property) if name
        )
        self._hidden = frozenset(options.hidden_digests)  # privacy.is_hidden: the tokens
        self._default_source = options.default_action_source  # checked (settings.py)
        self._now: dt.datetime | None = None
        self._now_texts = ("", "")
        # Each property's rule, and what it made of each text value (_keep): bounded,
        # held by the mapping process only, never written anywhere.
        self._rules: dict[str, tuple[Rule, dict[str, _Converted]]] = {
            source: (rule, {}) for source, rule in RULES_BY_SOURCE.items()
        }
        self._memo_bytes = 0  # estimated: see MEMO_BYTES

    def map(
        self, record: Mapping[str, Any], stream: str, now: dt.datetime | None = None
    ) -> Mapped | Rejected | Skipped:
        """Turn one record into an event, or into every reason it is rejected."""
        if self._consent is not None and not has_consent(record, self._consent):
            return Skipped(self.event_id(record, stream))
        problems: list[Problem] = []
        warnings: list[str] = []
        view = self._read(record)
        event_id = self._event_id(view, record, stream, problems)
        name = self._event_name(view, stream, problems)
        when = self._event_time(view, now or dt.datetime.now(UTC), problems, warnings)
        event: dict[str, Any] = {"event_name": name, "event_id": event_id, "event_time": when}
        sections: dict[str, dict[str, Any]] = {"event": event, "event_details": {}, "user_data": {}}
        self._apply_rules(view, sections, problems, warnings)
        self._check_and_finish(event, sections, problems, warnings)
        if problems:
            return Rejected(event_id, problems, warnings)
        return Mapped(event, warnings)

    def redact(self, record: Mapping[str, Any], event_id: str) -> dict[str, Any]:
        """The record as the rejects file keeps it: mapping inputs only, email/phone hashed,
        and so is every other value that looks like an email or a phone (privacy.redacted).

        A derived event id is written as `$event_id`, so a fixed record fed back keeps its id.
        Nested records are kept as read (Freshpaint names), never with their raw objects.
        """
        view = self._read(record)
        country = self.options.phone_default_country
        kept = {
            key: redacted(json_safe(view[key]), country) for key in INPUT_PROPERTIES if key in view
        }
        if "email" in kept:  # an email hashed above stays as it is; anything else is hashed
            kept["email"] = redact_emails(kept["email"])
        if "phone" in kept:
            kept["phone"] = redact_phone(kept["phone"], country)
        if "$event_id" in kept:  # kept as it is (a fed-back record keeps its id), if it is one
            value = json_safe(view["$event_id"])
            usable = isinstance(value, (int, float)) or (
                isinstance(value, str) and not plainly_personal(value)
            )
            kept["$event_id"] = value if usable else redacted(value, country)
        if kept and is_absent(kept.get("$event_id")):
            kept["$event_id"] = event_id
        for name in self._kept_settings_properties:  # a fed-back record keeps its route, consent
            value = record[name] if name in record else lookup(record, split_path(name))
            if is_hidden(value, self._hidden):  # a token in the routing column: never kept
                kept[name] = described(value) + " (equal to a token: not kept)"
            elif not is_absent(value):
                kept[name] = redacted(json_safe(value), country)
        return kept

    def event_id(self, record: Mapping[str, Any], stream: str) -> str:
        """The id a record is known by, even when it is rejected for other reasons."""
        return self._event_id(self._read(record), record, stream, [])

    def _event_id(
        self,
        view: Mapping[str, Any],
        record: Mapping[str, Any],
        stream: str,
        problems: list[Problem],
    ) -> str:
        """`$event_id` as read; else derived from the record as received (ids stay stable)."""
        value = view.get("$event_id")
        if is_absent(value):
            return ids.derive_event_id(record, stream)
        try:
            return ids.event_id_text(value)
        except ValueError as exc:
            problems.append(Problem("invalid_event_id", str(exc)))
            return ids.derive_event_id(record, stream)

    def _event_name(
        self, record: Mapping[str, Any], stream: str, problems: list[Problem]
    ) -> str | None:
        explicit = record.get("spotify_event_name")
        if not is_absent(explicit):
            name = self._names.resolve(explicit)
            if name is None:
                problems.append(
                    Problem(
                        "unknown_event_name",
                        f"spotify_event_name ({_described(explicit)}) is no Spotify event name, "
                        "alias or event_name_map key",
                    )
                )
            return name
        for candidate in (record.get("event"), stream):
            name = self._names.resolve(candidate)
            if name is not None:
                return name
        if self._names.default is None:
            problems.append(
                Problem(
                    "unknown_event_name",
                    f"neither event ({_described(record.get('event'))}) nor stream "
                    f"{quoted(stream)} "
                    "resolves, and no default_event_name is set",
                )
            )
        return self._names.default

    def _event_time(
        self,
        record: Mapping[str, Any],
        now: dt.datetime,
        problems: list[Problem],
        warnings: list[str],
    ) -> str | None:
        value = record.get("$event_time")
        if in_spotify_form(value):  # the common case, compared as text (see _clock)
            now_text, limit_text = self._clock(now)
            if value <= now_text:
                return value
            if value > limit_text:
                problems.append(Problem("event_time_in_future", "more than 5 minutes ahead of now"))
                return None
            warnings.append("event_time_clamped")
            return now_text
        if is_absent(value):
            warnings.append("event_time_missing")
            return format_event_time(now)
        try:
            moment = parse_event_time(value)
        except (ValueError, OverflowError):
            problems.append(Problem("invalid_event_time", "not an ISO 8601 time or epoch value"))
            return None
        if moment > now + MAX_CLOCK_SKEW:
            problems.append(Problem("event_time_in_future", "more than 5 minutes ahead of now"))
            return None
        if moment > now:
            warnings.append("event_time_clamped")
            return format_event_time(now)
        return format_event_time(moment)  # not in Spotify's form (checked above)

    def _clock(self, now: dt.datetime) -> tuple[str, str]:
        """`now` and the latest acceptable time, in Spotify's form: worked out once per `now`
        (a chunk of records shares one). Texts of that fixed-width form sort as their times,
        and a time with milliseconds is after `now` exactly when it is after `now` cut to
        milliseconds."""
        if now is not self._now:
            self._now = now
            self._now_texts = (format_event_time(now), format_event_time(now + MAX_CLOCK_SKEW))
        return self._now_texts

    def _apply_rules(
        self,
        record: Mapping[str, Any],
        sections: dict[str, dict[str, Any]],
        problems: list[Problem],
        warnings: list[str],
    ) -> None:
        rules = self._rules
        for key, value in record.items():
            found_rule = rules.get(key)
            if found_rule is None or value is None:
                continue
            rule, memo = found_rule
            if type(value) is str:  # most values: is_absent without the call
                found = memo.get(value)
                if found is None:
                    if not value or value.isspace():
                        continue
                    found = _converted(rule, value, self.options)
                    if len(value) <= MEMO_VALUE_CHARS:
                        self._keep(memo, value, found)
            elif is_absent(value):
                continue
            else:
                found = _converted(rule, value, self.options)
            result, invalid = found
            if invalid is None:
                # a list (the emails) is the event's own: _check_and_finish may cut it
                if type(result) is list:
                    result = list(result)
                sections[rule.section][rule.target] = result
            elif rule.on_invalid == "reject":
                problems.append(invalid)
            else:
                warnings.append(invalid.code)

    def _keep(self, memo: dict[str, _Converted], value: str, found: _Converted) -> None:
        """Keep what a rule made of a text value for the next record that holds it: a
        person's email, phone, address and device, a product's name and category repeat
        across a run's events, and were checked and hashed again for each (200,000 events of
        25,000 people: 15.6 µs a record to map, 13.7 with the values kept). Bounded in the
        length of a value kept and in all (MEMO_BYTES)."""
        size = MEMO_ENTRY_BYTES + (len(value) if value.isascii() else 2 * sys.getsizeof(value))
        self._memo_bytes += size
        if self._memo_bytes > MEMO_BYTES:  # everything starts afresh
            for _, kept in self._rules.values():
                kept.clear()
            self._memo_bytes = size
        memo[value] = found

    def _check_and_finish(
        self,
        event: dict[str, Any],
        sections: dict[str, dict[str, Any]],
        problems: list[Problem],
        warnings: list[str],
    ) -> None:
        """The rules that need the whole event (an identifier, a PURCHASE's amount and
        currency, the email cap), then the click id and defaults the record did not give."""
        user_data, details = sections["user_data"], sections["event_details"]
        emails = user_data.get("hashed_emails")
        if emails is not None and len(emails) > MAX_EMAILS:
            del emails[MAX_EMAILS:]
            warnings.append("too_many_emails")
        if user_data.keys().isdisjoint(MATCHING_IDENTIFIERS):
            problems.append(
                Problem("no_identifier", "no ip_address, device_id, email or phone survives")
            )
        if event["event_name"] == "PURCHASE":
            invalid = {problem.code for problem in problems}
            for key in ("amount", "currency"):
                if key not in details and f"invalid_{key}" not in invalid:
                    problems.append(Problem(f"purchase_without_{key}", f"PURCHASE needs {key}"))
        if "clickID" not in user_data and "event_source_url" in event:
            click_id = click_id_of(event["event_source_url"])
            if click_id is not None:
                user_data["clickID"] = click_id
        event["user_data"] = user_data
        if details:
            event["event_details"] = details
        if "action_source" not in event and self._default_source is not None:
            event["action_source"] = self._default_source
        event.setdefault("opt_out_targeting", self.options.default_opt_out_targeting)


# What counts as a clear yes in a consent property; anything else, or nothing, is a no.
CONSENT_YES = frozenset({"true", "granted", "yes", "1"})


def has_consent(record: Mapping[str, Any], prop: str) -> bool:
    """Whether a property, or the value at a dotted path (`consent.ads`), is a clear yes."""
    value = record[prop] if prop in record else lookup(record, split_path(prop))
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, decimal.Decimal)):
        return value == 1
    return isinstance(value, str) and value.strip().lower() in CONSENT_YES


def click_id_of(url: str) -> str | None:
    """Spotify's click id from a landing page URL's `spclid` query parameter, if any."""
    if "spclid=" not in url:
        return None
    query = urllib.parse.urlsplit(url).query
    values = urllib.parse.parse_qs(query).get("spclid")
    return (values[0].strip() or None) if values else None


def _described(value: object) -> str:
    """`described`, with the words of the contract for a value that counts as absent."""
    return "absent" if is_absent(value) else described(value)
