"""Every setting of docs/contract.md §1, declared once, and its checks at start-up."""

from __future__ import annotations

import contextlib
import difflib
import ipaddress
import json
import math
import os
import sys
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pycountry
from singer_sdk import typing as th

from .concurrency import DEFAULT_MAX_IN_FLIGHT
from .escaping import printable
from .event_names import EventNameError, checked_name, checked_name_map
from .input_formats import DEFAULT_INPUT_FORMAT, INPUT_FORMATS, check_property_paths
from .mapping import ACTION_SOURCES, INPUT_PROPERTIES, MappingOptions
from .output_paths import (
    OutputPathError,
    check_distinct,
    check_output_path,
    password_holds_at,
    sqlite_database,
    sqlite_file,
)
from .privacy import (
    SECRET_PARAMS,
    described,
    hidden_digests,
    looks_personal,
    showable_setting,
    shown_setting,
)
from .retries import DEFAULT_MAX_RETRIES, guaranteed_wait
from .routing import DEFAULT_CONNECTION, NAME_PATTERN
from .unreadable import MAX_LINE_BYTES
from .wire import ANSWER_TIMEOUT

# More mapping workers than this gain nothing: the reading process is then the bottleneck.
MAX_PROCESSES = 8

DEFAULT_API_URL = "https://capi.spotify.com/capi-direct/events/"
# What `--config ENV` reads: the SDK's prefix for this target's name.
ENV_PREFIX = "TARGET_SPOTIFY_CONVERSIONS_"
MAX_EVENTS_PER_REQUEST = 1000
MAX_MAPPING_PROCESSES = 64
# The SDK offers upsert and overwrite too: an event API can do neither (see load_method).
LOAD_METHODS = ("append-only",)
DEFAULT_LEDGER_URL = "sqlite:///spotify-conversions-ledger.sqlite"  # ledger.DEFAULT_URL
# Four months: a full refresh, a state reset or a replayed export within a quarter (and a
# month's attribution window on top) is caught; the file stays bounded (docs/ledger.md).
DEFAULT_LEDGER_RETENTION_DAYS = 120

CONFIG_SCHEMA = th.PropertiesList(
    th.Property(
        "capi_connection_id",
        th.UUIDType,
        description="CAPI connection id (a UUID) from Spotify Ads Manager. Required unless "
        "dry_run is true (or `connections` names every connection).",
    ),
    th.Property(
        "auth_token",
        th.StringType,
        secret=True,
        description="CAPI bearer token generated for that connection. Required unless dry_run "
        "is true (or `connections` names every connection). Never logged.",
    ),
    th.Property(
        "connections",
        th.ObjectType(
            additional_properties=th.ObjectType(
                th.Property("capi_connection_id", th.StringType),
                th.Property("auth_token", th.StringType, secret=True),
            )
        ),
        secret=True,
        description='Several Spotify connections, by name: {"brand_a": {"capi_connection_id": '
        '"<uuid>", "auth_token": "<token>"}, ...}. Records go to one by connection_property, '
        "then stream_connections, else to the top-level pair (named default). Names: letters, "
        "digits, _ and -. Secret as a whole: never logged.",
    ),
    th.Property(
        "connection_property",
        th.StringType,
        description="A property (or dotted path, e.g. context.brand) whose value names the "
        "record's connection; a value that names none rejects the record (unknown_connection).",
    ),
    th.Property(
        "stream_connections",
        th.ObjectType(additional_properties=th.StringType),
        description='Stream name to connection name, e.g. {"brand_b_orders": "brand_b"}: the '
        "connection of a stream's records that connection_property does not route.",
    ),
    th.Property(
        "api_url",
        th.StringType,
        default=DEFAULT_API_URL,
        description="Endpoint the events are POSTed to (tests point it at a local server).",
    ),
    th.Property(
        "dry_run",
        th.BooleanType,
        default=False,
        description="Map, validate and write the exact request bodies to dry_run_file; send "
        "nothing.",
    ),
    th.Property(
        "dry_run_file",
        th.StringType,
        default="spotify-conversions-dry-run.jsonl",
        description="Where dry_run writes one JSON request body per line (a regular file, "
        "checked at start).",
    ),
    th.Property(
        "rejects_file",
        th.StringType,
        default="spotify-conversions-rejects.jsonl",
        description="Where rejected records are appended, one JSON line each with the run's id, "
        "email and phone hashed. /dev/null turns it off; otherwise a regular file, checked at "
        "start.",
    ),
    th.Property(
        "on_invalid",
        th.StringType(allowed_values=["skip", "fail"]),
        default="skip",
        description="skip: report an invalid record and go on. fail: stop with a non-zero exit "
        "at the first one.",
    ),
    th.Property(
        "default_event_name",
        th.StringType,
        description="Spotify event name used when nothing else resolves.",
    ),
    th.Property(
        "event_name_map",
        th.ObjectType(additional_properties=th.StringType),
        default={},
        description='Your event names to Spotify names, e.g. {"Order Completed": "PURCHASE"}; '
        "consulted first.",
    ),
    th.Property(
        "default_action_source",
        th.StringType(allowed_values=["WEB", "APP", "OFFLINE"]),
        description="Used when a record has no $action_source.",
    ),
    th.Property(
        "default_opt_out_targeting",
        th.BooleanType,
        default=True,
        description="Used when a record has no opt_out_targeting.",
    ),
    th.Property(
        "phone_default_country",
        th.StringType,
        description="ISO 3166 alpha-2 country for phone numbers written without a country code.",
    ),
    th.Property(
        "events_per_request",
        th.IntegerType(minimum=1, maximum=MAX_EVENTS_PER_REQUEST),
        default=500,
        description="Events in one POST (1 to 1000).",
    ),
    th.Property(
        "max_concurrent_requests",
        th.IntegerType(minimum=1),
        default=DEFAULT_MAX_IN_FLIGHT,
        description="The most POSTs in flight at once. With adaptive_concurrency the number "
        "starts at 8 and follows the API's answers up to this cap; otherwise exactly this many.",
    ),
    th.Property(
        "adaptive_concurrency",
        th.BooleanType,
        default=True,
        description="Let the POSTs in flight grow while the API answers 2xx without slowing "
        "down, and shrink at once on 429, 5xx, timeouts or rising latency. false: always "
        "max_concurrent_requests.",
    ),
    th.Property(
        "mapping_processes",
        th.IntegerType(minimum=0, maximum=MAX_MAPPING_PROCESSES),
        description="Worker processes that map records beside the one reading them. Default: "
        f"one per usable CPU but the first (none on one CPU), at most {MAX_PROCESSES}. 0 maps "
        "in the reading process (the only choice on Windows, where worker processes cannot "
        "start).",
    ),
    th.Property(
        "request_timeout",
        th.NumberType(exclusive_minimum=0, maximum=3600),
        default=30,
        description="Seconds to wait for one request.",
    ),
    th.Property(
        "mapping_worker_timeout_seconds",
        th.NumberType(exclusive_minimum=0, maximum=3600),
        default=ANSWER_TIMEOUT,
        description="Seconds a mapping worker may stay silent while it owes a chunk's results "
        "(it needs milliseconds); a worker that does not answer (stopped, stalled) is killed "
        "and the run ends naming it, before any STATE covers its records.",
    ),
    th.Property(
        "max_line_bytes",
        th.IntegerType(minimum=1024),
        default=MAX_LINE_BYTES,
        description="Longest input line (a RECORD line, or a line of a BATCH file), in bytes. "
        "A longer one is rejected as input_line_too_long with its line number and size, after "
        "reading at most this plus 1 MB of it; memory stays bounded whatever the input.",
    ),
    th.Property(
        "max_retries",
        th.IntegerType(minimum=0),
        default=DEFAULT_MAX_RETRIES,
        description="Retries of one request before the run fails. Waits between tries double "
        "from 0.5-1 s up to 30-60 s: the default 10 ride out at least "
        f"{guaranteed_wait(DEFAULT_MAX_RETRIES):g} s of outage (refused connections, 5xx).",
    ),
    th.Property(
        "batch_wait_limit_seconds",
        th.NumberType(exclusive_minimum=0),
        default=5,
        description="Seconds a record read may wait for a fuller request (a quiet tap); then "
        "a partial request goes out and the STATE follows its answer.",
    ),
    th.Property(
        "input_format",
        th.StringType(allowed_values=list(INPUT_FORMATS)),
        default=DEFAULT_INPUT_FORMAT,
        description="freshpaint: Freshpaint names, top level or in `properties`. segment: "
        "Segment-spec events, nested or as warehouse columns (Segment, RudderStack).",
    ),
    th.Property(
        "property_paths",
        th.ObjectType(additional_properties=th.ArrayType(th.StringType)),
        description='Your own dotted paths per property, tried first, e.g. {"email": '
        '["customer.email_address"], "amount": ["order.total"]}.',
    ),
    th.Property(
        "summary_file",
        th.StringType,
        description="Where the run report goes at the end of every run (also a failed one): "
        "one JSON object with the counts, reasons, warnings and identifier coverage; replaced "
        "whole, never left half written.",
    ),
    th.Property(
        "consent_property",
        th.StringType,
        description="A property (or dotted path, e.g. consent.ads) that must be a clear yes "
        "(true, 'true', 'granted', 'yes', 1) for a record to be sent; others are skipped and "
        "counted, never kept.",
    ),
    th.Property(
        "load_method",
        # No allowed_values: Meltano would refuse upsert itself, with a traceback, before
        # the target could say why (load_method_refusal).
        th.StringType,
        default=LOAD_METHODS[0],
        description="(SDK) append-only, the only method here: every event is sent (a re-sent "
        "event_id is deduplicated by Spotify). upsert and overwrite are refused at start: the "
        "Conversions API cannot update or delete events.",
    ),
    th.Property(
        "ledger_url",
        th.StringType,
        default=DEFAULT_LEDGER_URL,
        secret=True,  # a database URL may hold a password
        description="Where the delivery ledger is kept (an SQLAlchemy URL): every event the API "
        "acknowledged, per connection, so no run sends it twice. Default: a SQLite file in the "
        "working directory; postgresql+psycopg://user@host/db shares one between pipelines; "
        "none turns it off.",
    ),
    th.Property(
        "ledger_retention_days",
        th.IntegerType(minimum=0, maximum=36_500),  # a century: beyond, dates overflow
        default=DEFAULT_LEDGER_RETENTION_DAYS,
        description="Ledger rows older than this many days are deleted at the start of a run "
        "(0 keeps them forever); an event delivered longer ago would be sent again.",
    ),
    th.Property(
        "resend_delivered",
        th.BooleanType,
        default=False,
        description="true: send events even when the ledger holds them as delivered (to "
        "re-send on purpose); they are recorded again.",
    ),
    th.Property(
        "max_rejected_share",
        th.NumberType(minimum=0, maximum=1),
        description="Share of records read (0 to 1) that may be rejected; above it the run "
        "exits 1 after writing its rejects, summary and STATE. A run whose every record is "
        "rejected always exits 1.",
    ),
).to_dict()

# Required unless dry_run is true or `connections` names every connection, said in --about's
# JSON schema too, as JSON schema says it (the SDK's `required` column cannot say "unless");
# Settings.from_config gives the message.
REQUIRED_UNLESS_DRY_RUN = ("capi_connection_id", "auth_token")
CONFIG_SCHEMA["if"] = {"properties": {"dry_run": {"const": True}}, "required": ["dry_run"]}
CONFIG_SCHEMA["else"] = {
    "anyOf": [{"required": list(REQUIRED_UNLESS_DRY_RUN)}, {"required": ["connections"]}]
}

# The SDK's own settings, as they act in this target (its generic descriptions would promise
# what an event API cannot do); the target writes these over the SDK's in --about.
SDK_SETTING_DESCRIPTIONS = {
    "add_record_metadata": "(SDK) Add the _sdc_* metadata properties to each record. Ignored "
    "here: the target reads none of them, so what is sent does not change.",
    "batch_size_rows": "(SDK) Records between two full drains of the target, each of which "
    "waits for every request in flight (default 100000). Request size is events_per_request; "
    "STATE does not wait for it.",
    "validate_records": "(SDK) Validate each record against the stream's JSON schema; a record "
    "that fails is rejected (schema_validation), the run goes on.",
    "faker_config": "(SDK) Seed and locale of `fake` in stream map expressions; needs the "
    "faker extra of singer-sdk, which this target does not install.",
}


# Settings whose values no message may quote.
SECRET_SETTINGS = tuple(
    name for name, spec in CONFIG_SCHEMA["properties"].items() if spec.get("secret")
)

# The schema's defaults: the SDK fills them into its config; a plain dict gets them here.
_DEFAULTS = {
    name: spec["default"] for name, spec in CONFIG_SCHEMA["properties"].items() if "default" in spec
}


def without_sdk_nulls(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config without its nulls for the SDK's own settings: a null means unset here, but
    the SDK takes it as a value (`stream_maps: null` ends in its traceback)."""
    ours = CONFIG_SCHEMA["properties"]
    return {name: value for name, value in config.items() if value is not None or name in ours}


def unknown_settings(config: Mapping[str, Any], known: Iterable[str]) -> list[str]:
    """One message per setting name the target does not know, with the closest real one.

    A misspelt setting is not ignored: `"dryrun": true` ignored would send real data.
    """
    known = sorted(known)
    messages = []
    for name in sorted(config):
        if name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"; did you mean `{close[0]}`?" if close else "; see docs/settings.md"
        shown = f"`{printable(name)[:80]}`" if not looks_personal(name) else described(name)
        messages.append(f"{shown} is not a setting{hint}")
    return messages


# How `--config ENV` reads a boolean: the SDK's words for true, and these for false; any
# other word is refused (the SDK reads `maybe` as false, and a dry run would send).
_TRUE_WORDS = ("true", "1", "yes", "on")
_FALSE_WORDS = ("false", "0", "no", "off", "")
# Variables of the prefix the SDK reads that are not settings: the log level.
_SDK_VARIABLES = ("LOGLEVEL",)


def read_environment(
    schema: Mapping[str, Any], prefix: str, environ: Mapping[str, str]
) -> tuple[dict[str, Any], list[str]]:
    """The settings `--config ENV` gives, and what is wrong with its variables.

    The SDK's own reading takes numbers as text (`REQUEST_TIMEOUT=30` then fails the schema),
    reads any unknown word as false, ignores a misspelt name (`..._DRYRUN=true` would send real
    data), and ends with a traceback on `MAPPING_PROCESSES=two`. Here each variable is read as
    its setting's type, and every problem is one line naming the variable, never its value
    (it may be a token). Names with `__` are Meltano's plugin extras, not settings.
    """
    properties = schema.get("properties") or {}
    known = {prefix + name.upper().replace("-", "_"): name for name in properties}
    values: dict[str, Any] = {}
    problems = []
    for variable in sorted(environ):
        rest = variable[len(prefix) :]
        if not variable.startswith(prefix) or rest.startswith("_") or "__" in rest:
            continue
        if rest in _SDK_VARIABLES:
            continue
        name = known.get(variable)
        if name is None:
            close = difflib.get_close_matches(variable, list(known), n=1, cutoff=0.8)
            hint = f"; did you mean {close[0]}?" if close else "; see docs/settings.md"
            problems.append(f"{printable(variable)[:80]} is not a setting{hint}")
            continue
        try:
            values[name] = _environment_value(properties[name], environ[variable])
        except ValueError as exc:
            problems.append(f"{variable} {exc} (its value is not shown)")
    return values, problems


def _environment_value(spec: Mapping[str, Any], text: str) -> Any:
    kinds = _schema_types(spec)
    if "integer" in kinds:
        try:
            return int(text)
        except ValueError:
            raise ValueError("is not a whole number") from None
    if "number" in kinds:
        try:
            number = float(text)
        except ValueError:
            raise ValueError("is not a number") from None
        if not math.isfinite(number):
            raise ValueError("is not a finite number")
        return number
    if "boolean" in kinds:
        word = text.strip().lower()
        if word not in _TRUE_WORDS + _FALSE_WORDS:
            raise ValueError("is not true or false")
        return word in _TRUE_WORDS
    if "array" in kinds or "object" in kinds:
        try:
            return json.loads(text)
        except ValueError:
            if "array" in kinds and _string_list(spec):  # the SDK's older `a,b,c` form
                return text.split(",")
            raise ValueError("is not valid JSON") from None
    return text


def _schema_types(spec: Mapping[str, Any]) -> set[str]:
    kind = spec.get("type")
    kinds = {kind} if isinstance(kind, str) else set(kind or ())
    for sub in spec.get("anyOf") or ():
        if isinstance(sub, Mapping):
            kinds |= _schema_types(sub)
    return kinds


def _string_list(spec: Mapping[str, Any]) -> bool:
    items = spec.get("items")
    return isinstance(items, Mapping) and "string" in _schema_types(items)


def without_secrets(message: str, config: Mapping[str, Any]) -> str:
    """A config error message with every secret setting's value cut out, whatever its type,
    and any other setting's text that may not be shown (privacy.showable_setting: a token
    pasted into the wrong setting; the schema's messages quote the value they refuse)
    described instead."""
    for name in SECRET_SETTINGS:
        value = config.get(name)
        if value is None:
            continue
        for form in sorted(_forms(value), key=len, reverse=True):
            message = message.replace(form, "<secret not shown>")
    for value in _texts(config):
        if not showable_setting(value):
            for form in (repr(value), json.dumps(value), str(value)):
                message = message.replace(form, shown_setting(value))
    return message


def _texts(value: object) -> Iterator[str | int]:
    """Every text (and whole number: a token of digits) in a value, within lists and objects
    too, and objects' keys (a setting's name pasted wrong, an event_name_map key)."""
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _texts(key)
            yield from _texts(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _texts(item)


def _forms(value: object) -> set[str]:
    """Every way a value can be written into a message: str, repr, JSON, its leaves, and the
    password of a URL (ledger_url)."""
    forms = {str(value), repr(value)}
    if isinstance(value, str) and "://" in value:
        with contextlib.suppress(ValueError):
            parts = urllib.parse.urlsplit(value)
            secrets = [parts.password or ""] + [
                text
                for key, text in urllib.parse.parse_qsl(parts.query)
                if SECRET_PARAMS.search(key)
            ]
            forms |= {form for secret in secrets for form in (secret, urllib.parse.quote(secret))}
            forms |= {urllib.parse.unquote(secret) for secret in secrets}
    with contextlib.suppress(TypeError, ValueError):
        forms.add(json.dumps(value))
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        for item in value:
            forms |= _forms(item)
    return {form for form in forms if len(form) >= 4}


class SettingsError(ValueError):
    """A configuration the target cannot run with; the message says which setting and why."""


@dataclass(frozen=True)
class Connection:
    """One Spotify connection records may go to: its name, its id and its token."""

    name: str
    connection_id: str
    auth_token: str


@dataclass(frozen=True)
class Settings:
    """The validated configuration, typed, for the parts of the target that are not SDK code."""

    connection_id: str
    auth_token: str
    api_url: str
    dry_run: bool
    dry_run_file: str
    rejects_file: str | None
    fail_on_invalid: bool
    events_per_request: int
    max_concurrent_requests: int
    request_timeout: float
    max_retries: int
    mapping_options: MappingOptions
    batch_wait_limit_seconds: float = 5.0
    summary_file: str | None = None
    mapping_processes: int = 0
    adaptive_concurrency: bool = True
    mapping_worker_timeout_seconds: float = ANSWER_TIMEOUT
    max_line_bytes: int = MAX_LINE_BYTES
    # Every connection by name, the top-level pair as `default` (routing.py); empty: only
    # the top-level pair, as `connection_id` and `auth_token` say.
    connections: Mapping[str, Connection] = field(default_factory=dict)

    def all_connections(self) -> dict[str, Connection]:
        """The connections records may go to: the `connections` setting's, or the top-level
        pair alone."""
        if self.connections:
            return dict(self.connections)
        default = Connection(DEFAULT_CONNECTION, self.connection_id, self.auth_token)
        return {DEFAULT_CONNECTION: default}
    ledger_url: str | None = None  # None: no ledger
    ledger_retention_days: int = DEFAULT_LEDGER_RETENTION_DAYS
    resend_delivered: bool = False
    max_rejected_share: float | None = None  # None: only a run of all rejects fails

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], *, read_from: Iterable[tuple[str, str]] = ()
    ) -> Settings:
        """Check what JSON schema cannot: cross-field rules and Spotify's own vocabularies.

        `read_from`: (what, path) of the files the run reads (`--config`, `--input`), which
        no output may be: a rejects file there would spoil the config, a dry-run file empty
        the input."""
        config = {**_DEFAULTS, **{k: v for k, v in config.items() if v not in (None, "")}}
        dry_run = bool(config["dry_run"])
        refused = load_method_refusal(config)
        if refused:
            raise SettingsError(refused)
        connections = _connections(config, dry_run)
        top_level = not connections or DEFAULT_CONNECTION in connections
        checked = {name: check(config.get(name)) for name, check in VALUE_CHECKS.items()}
        return cls(
            connection_id=_connection_id(config.get("capi_connection_id"), dry_run)
            if top_level
            else "",
            auth_token=_token(config.get("auth_token"), dry_run) if top_level else "",
            api_url=checked["api_url"],
            dry_run=dry_run,
            dry_run_file=checked["dry_run_file"],
            rejects_file=checked["rejects_file"],
            fail_on_invalid=config["on_invalid"] == "fail",
            events_per_request=int(config["events_per_request"]),
            max_concurrent_requests=int(config["max_concurrent_requests"]),
            request_timeout=float(config["request_timeout"]),
            max_retries=int(config["max_retries"]),
            mapping_options=_mapping_options(config, checked, connections),
            batch_wait_limit_seconds=float(config["batch_wait_limit_seconds"]),
            summary_file=checked["summary_file"],
            mapping_processes=checked["mapping_processes"],
            connections=connections,
            mapping_worker_timeout_seconds=float(config["mapping_worker_timeout_seconds"]),
            max_line_bytes=int(config["max_line_bytes"]),
            adaptive_concurrency=bool(config["adaptive_concurrency"]),
            ledger_url=checked["ledger_url"],
            ledger_retention_days=int(config["ledger_retention_days"]),
            resend_delivered=bool(config["resend_delivered"]),
            max_rejected_share=checked["max_rejected_share"],
        )._distinct_files(tuple(read_from))

    def _distinct_files(self, read_from: tuple[tuple[str, str], ...]) -> Settings:
        """Two outputs in one file would mix rejects into request bodies (or a report)."""
        named = {
            "dry_run_file": self.dry_run_file,
            "rejects_file": self.rejects_file,
            "summary_file": self.summary_file,
        }
        ledger_file = sqlite_database(self.ledger_url)
        if ledger_file:  # a file, like these
            named["the ledger (ledger_url)"] = sqlite_file(ledger_file)
        try:
            if self.dry_run:  # each named connection's bodies go to a file of its own
                for name in sorted(set(self.connections) - {DEFAULT_CONNECTION}):
                    named[f"the dry-run file of {name}"] = self._connection_dry_run_file(name)
            check_distinct(named)
            for what, path in read_from:  # each against the outputs, not one another
                check_distinct({what: path, **named})
        except OutputPathError as exc:
            raise SettingsError(str(exc)) from None
        return self

    def _connection_dry_run_file(self, name: str) -> str:
        """A connection's dry-run file, checked as dry_run_file was (output_paths): its name
        is longer by the connection's, which may be what passes the file system's limit, and
        the file may be there already (a FIFO, a folder)."""
        path = dry_run_path(self.dry_run_file, name)
        what = f"the dry-run file of {name} (dry_run_file with the connection's name)"
        return check_output_path(what, path) or path


def start_refusal(config: Mapping[str, Any]) -> str | None:
    """A refusal of the config worded by the target, where JSON schema's words say less."""
    refused = load_method_refusal(config)
    if refused or config.get("dry_run") is True or config.get("connections"):
        return refused
    missing = [name for name in REQUIRED_UNLESS_DRY_RUN if config.get(name) in (None, "")]
    if not missing:
        return None
    verb = "is" if len(missing) == 1 else "are"
    return f"{' and '.join(missing)} {verb} required (unless dry_run is true)"


def load_method_refusal(config: Mapping[str, Any]) -> str | None:
    """Why the SDK's `load_method` cannot be what the config asks, or None when it can.

    Accepted silently, upsert or overwrite would run as append-only: a user who asked for an
    overwrite would believe Spotify's earlier events gone when they are not.
    """
    method = config.get("load_method")
    if method in (None, "", *LOAD_METHODS):
        return None
    word = method.strip().lower() if isinstance(method, str) else None
    if word in ("upsert", "overwrite"):
        return (
            f"load_method `{word}` is not possible: the Spotify Conversions API takes new "
            "events only, it cannot update (upsert) or delete (overwrite) events already sent; "
            "use append-only (the default), a re-sent event_id is deduplicated by Spotify"
        )
    return (
        f"load_method {shown_setting(method)} is not a load method: the only one here is "
        "append-only (the default)"
    )


def _output_file(setting: str) -> Callable[[object], str | None]:
    """The check of a file the run writes: a regular file or absent, creatable where it is
    (output_paths)."""

    def check(path: object) -> str | None:
        try:
            return check_output_path(setting, None if path is None else str(path))
        except OutputPathError as exc:
            raise SettingsError(str(exc)) from None

    return check


def _dry_run_file(path: object) -> str:
    return _output_file("dry_run_file")(path) or _DEFAULTS["dry_run_file"]


def _ledger_url(value: object) -> str | None:
    """`none` turns the ledger off; anything else must look like a URL (the database is
    opened, and a wrong URL refused, when the run starts). Messages never quote it: it may
    hold a password."""
    text = str(value).strip()
    if text.lower() == "none":
        return None
    scheme, separator, _ = text.partition("://")
    if not separator or not scheme or not all(c.isalnum() or c in "+_-" for c in scheme):
        raise SettingsError(
            "ledger_url must be an SQLAlchemy URL such as "
            "sqlite:///spotify-conversions-ledger.sqlite or postgresql+psycopg://user@host/db, "
            "or none"
        )
    if sqlite_database(text) is None:  # a server's: read as SQLAlchemy will read it
        if password_holds_at(text):
            raise SettingsError(
                "ledger_url holds more than one `@` before its database: an `@` in its "
                "password must be written %40; its value is not shown"
            )
        import sqlalchemy as sa

        try:
            sa.engine.make_url(text)
        except (sa.exc.ArgumentError, ValueError):
            raise SettingsError(
                "ledger_url cannot be read as an SQLAlchemy URL (is its port a number? a "
                "password with `@`, `:` or `/` in it must be percent-encoded); its value is "
                "not shown"
            ) from None
    return text


def _share(value: object) -> float | None:
    if value is None:
        return None
    share = float(str(value))
    if not 0 <= share <= 1:
        raise SettingsError("max_rejected_share must be between 0 and 1")
    return share


def _connection_id(value: object, dry_run: bool, *, required: bool = False) -> str:
    if value in (None, ""):
        if dry_run and not required:
            return "00000000-0000-0000-0000-000000000000"
        raise SettingsError(
            "capi_connection_id is required" + ("" if required else " (unless dry_run is true)")
        )
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise SettingsError(
            "capi_connection_id must be a UUID such as 3f1c9a9e-2b7d-4c1e-9f0a-5d6b7c8e9f01 "
            "(Ads Manager > Events > your connection)"
        ) from None


def _token(value: object, dry_run: bool) -> str:
    if isinstance(value, str) and value.strip():
        token = value.strip()
        if not token.isprintable() or not token.isascii():
            raise SettingsError(
                "auth_token holds a line break, a control character or a non-ASCII character, "
                "which no HTTP header can carry: copy the token again (its value is not shown)"
            )
        return token
    if dry_run:
        return ""
    raise SettingsError("auth_token is required (unless dry_run is true)")


def _api_url(value: object) -> str:
    """An https URL without credentials; plain http only to this machine (a test server).

    Messages never repeat the URL: one with credentials in it holds a secret.
    """
    value = str(value)
    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError when out of range or not a number
    except ValueError:
        raise SettingsError("api_url is not a valid URL (check its host and port)") from None
    scheme, host = parts.scheme.lower(), parts.hostname or ""
    if scheme not in ("https", "http") or not host:
        raise SettingsError("api_url must be an https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise SettingsError(
            "api_url must not hold a user name or password (the CAPI token is sent as a Bearer "
            "token from auth_token); remove the part before '@'"
        )
    if scheme == "http" and not _is_loopback(host):
        raise SettingsError(
            "api_url must use https://: plain http:// would send the token in clear text "
            "(it is allowed only to this machine, for a local test server)"
        )
    return value


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _mapping_processes(value: object) -> int:
    if value is None:
        return default_processes()
    if int(str(value)) > 0 and not can_start_workers():
        raise SettingsError("mapping_processes: this system cannot start worker processes; use 0")
    return int(str(value))


def _connections(config: Mapping[str, Any], dry_run: bool) -> dict[str, Connection]:
    """The `connections` setting, each checked as the top-level pair is, naming the connection
    (never its id or token), with the top-level pair as `default` when it is set."""
    value = config.get("connections")
    if value is None or value == {}:
        return {}
    if not isinstance(value, Mapping):
        raise SettingsError(
            'connections must be an object such as {"brand_a": {"capi_connection_id": ..., '
            '"auth_token": ...}} (its value is not shown)'
        )
    checked: dict[str, Connection] = {}
    for name, entry in value.items():
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise SettingsError(  # not quoted: a token pasted in the wrong place is no name
                f"connections: a name of {len(str(name))} characters (not shown) is no connection "
                "name: 1 to 64 letters, digits, _ or -, starting with a letter or digit"
            )
        where = f"connections[{name!r}]"
        if name == DEFAULT_CONNECTION:
            raise SettingsError(
                f"{where}: `default` names the top-level capi_connection_id and auth_token; "
                "give this connection another name"
            )
        if not isinstance(entry, Mapping) or set(entry) - {"capi_connection_id", "auth_token"}:
            raise SettingsError(
                f"{where} must be an object with capi_connection_id and auth_token only "
                "(its value is not shown)"
            )
        try:
            checked[name] = Connection(
                name,
                _connection_id(entry.get("capi_connection_id") or None, dry_run, required=True),
                _token(entry.get("auth_token"), dry_run),
            )
        except SettingsError as exc:
            raise SettingsError(f"{where}: {exc}") from None
    if config.get("capi_connection_id") or config.get("auth_token"):
        checked[DEFAULT_CONNECTION] = Connection(
            DEFAULT_CONNECTION,
            _connection_id(config.get("capi_connection_id"), dry_run),
            _token(config.get("auth_token"), dry_run),
        )
    return checked


def _routing_options(
    config: Mapping[str, Any], connections: Mapping[str, Connection]
) -> dict[str, Any]:
    """connection_property and stream_connections, checked against the connections."""
    prop = config.get("connection_property") or None
    streams = dict(config.get("stream_connections") or {})
    if (prop or streams) and not connections:
        setting = "connection_property" if prop else "stream_connections"
        raise SettingsError(f"{setting} routes records to connections: set `connections` too")
    if prop is not None and (not isinstance(prop, str) or "" in prop.split(".")):
        raise SettingsError("connection_property must be a property name or a dotted path")
    for stream, name in streams.items():
        if name not in connections:
            known = ", ".join(sorted(connections)[:10])
            raise SettingsError(  # the value is not shown: a token pasted there is no name
                f"stream_connections[{printable(stream)[:80]!r}] names no connection "
                f"(its value is not shown; known: {known})"
            )
    return {
        "connection_property": prop,
        "stream_connections": streams,
        "connection_names": tuple(sorted(connections)),
        "hidden_digests": hidden_digests(
            [c.auth_token for c in connections.values() if c.auth_token]
        ),
    }


def _mapping_options(
    config: Mapping[str, Any], checked: Mapping[str, Any], connections: Mapping[str, Connection]
) -> MappingOptions:
    flattened_by = (  # the SDK's flattening renames nested properties (`properties__email`)
        (config.get("flattening_separator") or "__") if config.get("flattening_enabled") else None
    )
    return MappingOptions(
        event_name_map=checked["event_name_map"],
        default_event_name=checked["default_event_name"],
        default_action_source=checked["default_action_source"],
        default_opt_out_targeting=bool(config["default_opt_out_targeting"]),
        phone_default_country=checked["phone_default_country"],
        input_format=checked["input_format"],
        property_paths=checked["property_paths"],
        flattened_by=flattened_by,
        consent_property=config.get("consent_property") or None,
        **_routing_options(config, connections),
    )


def _event_name_map(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SettingsError('event_name_map must be an object such as {"Search": "LEAD"}')
    try:
        return checked_name_map(value)
    except EventNameError as exc:
        raise SettingsError(str(exc)) from None


def _default_event_name(value: object) -> str | None:
    if value is None:
        return None
    try:
        return checked_name(value, "default_event_name")
    except EventNameError as exc:
        raise SettingsError(str(exc)) from None


def _country(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or pycountry.countries.get(alpha_2=value.upper()) is None:
        raise SettingsError(
            f"phone_default_country: {shown_setting(value)} is not an ISO 3166 alpha-2 code"
        )
    return value.upper()


def _action_source(value: object) -> str | None:
    """As the schema's allowed values say (the CLI checks those first): exactly WEB, APP or
    OFFLINE."""
    if value is not None and value not in ACTION_SOURCES:
        raise SettingsError("default_action_source must be WEB, APP or OFFLINE")
    return None if value is None else str(value)


def _input_format(value: object) -> str:
    if value not in INPUT_FORMATS:
        raise SettingsError(f"input_format must be one of {', '.join(INPUT_FORMATS)}")
    return str(value)


def _property_paths(value: object) -> dict[str, list[str]]:
    try:
        return check_property_paths(value, INPUT_PROPERTIES)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


# The one check of each setting whose value needs more than its JSON schema type, applied
# where settings are read (Settings.from_config) to the value given or its default: it
# returns the value the run uses, normalised (`lead` -> `LEAD`), or raises SettingsError
# naming the setting. Nothing downstream checks these again. Settings that depend on others
# (the connection ids and tokens, `connections`, routing, distinct files) are checked after.
VALUE_CHECKS: Mapping[str, Callable[[Any], Any]] = {
    "api_url": _api_url,
    "dry_run_file": _dry_run_file,
    "rejects_file": _output_file("rejects_file"),
    "summary_file": _output_file("summary_file"),
    "mapping_processes": _mapping_processes,
    "ledger_url": _ledger_url,
    "max_rejected_share": _share,
    "event_name_map": _event_name_map,
    "default_event_name": _default_event_name,
    "phone_default_country": _country,
    "default_action_source": _action_source,
    "input_format": _input_format,
    "property_paths": _property_paths,
}


def default_processes() -> int:
    """One worker per usable CPU but the first, which the reading process keeps (it reads,
    sends and records about a third of the work): a worker on each CPU made three busy
    processes share two, for 7% more speed at 10% more CPU. None on one CPU or where
    workers cannot start."""
    if not can_start_workers():
        return 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(max((usable or 1) - 1, 0), MAX_PROCESSES)


def can_start_workers() -> bool:
    """Workers talk over inherited pipes (POSIX) and run this Python (`sys.executable`)."""
    return os.name == "posix" and bool(sys.executable)


def dry_run_path(dry_run_file: str, connection: str) -> str:
    """Where a connection's dry-run bodies go: `dry_run_file` for the default connection,
    beside it with the connection's name before the suffix for the others
    (`dry-run.jsonl` -> `dry-run.brand_a.jsonl`), so each line stays an exact request body."""
    if connection == DEFAULT_CONNECTION:
        return dry_run_file
    path = Path(dry_run_file)
    return str(path.with_name(f"{path.stem}.{connection}{path.suffix}"))
