"""Where a record keeps each property the mapping reads: the `input_format` and `property_paths`.

The mapping reads Freshpaint property names (`email`, `$ip`, `amount`, ...). Other tools put the
same facts elsewhere: Segment-spec events nest them (`context.traits.email`), and the warehouses
Segment and RudderStack load flatten them into one column per field (`context_traits_email`,
properties as plain columns). A reader turns any of these shapes into the flat view the mapping
reads. Pure functions and tables of data only: no I/O, no SDK.

Values are passed on as they are (an amount stays a number); a key that is missing on the way
down a path, or a value of the wrong kind there, only means the path finds nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from .values import is_absent

INPUT_FORMATS = ("freshpaint", "segment")
DEFAULT_INPUT_FORMAT = "freshpaint"

# Segment-spec paths per property, first present wins (after the user's property_paths).
# Each path is also tried in its flattened forms (see `flattened`). Sources:
# Segment's Spec (common fields, track, page, e-commerce v2) and RudderStack's event spec,
# and both products' warehouse schemas (snake_case columns, properties and traits unprefixed).
SEGMENT_PATHS: Mapping[str, tuple[str, ...]] = {
    "spotify_event_name": ("properties.spotify_event_name",),
    "event": ("event", "event_text"),
    "$event_id": ("messageId", "id"),
    "$event_time": ("timestamp", "originalTimestamp", "receivedAt"),
    "email": ("context.traits.email", "traits.email", "properties.email"),
    "phone": ("context.traits.phone", "traits.phone", "properties.phone"),
    "$ip": ("context.ip",),
    "$user_agent": ("context.userAgent",),
    "$device_id": ("context.device.advertisingId", "context.device.id"),
    "event_source_url": ("context.page.url", "properties.url"),
    "amount": ("properties.revenue", "properties.total", "properties.value"),
    "currency": ("properties.currency",),
    "content_name": ("properties.name",),
    "content_category": ("properties.category",),
}
# A Segment `page` call has no `event`; it is read as this track name (built in: VIEW).
SEGMENT_PAGE_EVENT = "Page Viewed"
# Warehouses keep the track name in `event` as a slug (order_completed, which resolves like
# "Order Completed") and as sent in `event_text`.
# Objects whose keys Segment's and RudderStack's warehouses write as columns of their own.
_UNPREFIXED = frozenset({"properties", "traits"})
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")

Path = tuple[str, ...]
Reader = Callable[[Mapping[str, Any]], Mapping[str, Any]]


def split_path(path: str) -> Path:
    """`"customer.email_address"` as its keys; a list index is written as a number."""
    return tuple(path.split("."))


def flattened(path: Path) -> list[Path]:
    """The path, then the columns a flattened copy of it may have, without repeats.

    Warehouses: snake_case keys joined by `_`, properties and traits as plain columns
    (`context.userAgent` -> `context_user_agent`, `properties.revenue` -> `revenue`), or the
    keys as they were (`context_userAgent`). The Singer SDK's schema flattening joins the keys
    unchanged with `__` (`context__userAgent`); other exports keep the dotted path as one key.
    """
    parts = path[1:] if len(path) > 1 and path[0] in _UNPREFIXED else path
    warehouse = "_".join(_CAMEL.sub("_", part).lower() for part in parts)
    forms: list[Path] = [
        path,
        (warehouse,),
        ("_".join(parts),),
        ("__".join(path),),
        (".".join(path),),
    ]
    return list(dict.fromkeys(forms))


def lookup(record: Mapping[str, Any], path: Path) -> Any:
    """The value at `path`, or None when any step is missing or not an object (or a list)."""
    value: Any = record
    for key in path:
        if type(value) is dict or isinstance(value, Mapping):  # a dict is the fast case
            value = value.get(key)
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return None
    return value


def check_property_paths(value: object, properties: Iterable[str]) -> dict[str, list[str]]:
    """The `property_paths` setting, checked: known property names, lists of dotted paths."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError('property_paths must be an object such as {"email": ["user.email"]}')
    known = set(properties)
    checked: dict[str, list[str]] = {}
    for name, paths in value.items():
        if name not in known:
            raise ValueError(
                f"property_paths: {name!r} is not a property the target reads; use one of "
                + ", ".join(sorted(known))
            )
        listed = [paths] if isinstance(paths, str) else paths
        if not isinstance(listed, list) or not all(
            isinstance(path, str) and path and "" not in path.split(".") for path in listed
        ):
            raise ValueError(
                f"property_paths[{name!r}] must be a list of dotted paths such as "
                '["customer.email_address"]'
            )
        checked[name] = list(listed)
    return checked


def make_reader(
    input_format: str,
    property_paths: Mapping[str, Sequence[str]],
    properties: Sequence[str],
    flattened_by: str | None = None,
) -> Reader:
    """The function that gives the mapping its flat view of a record, built once per run.

    `flattened_by`: the separator of the SDK's record flattening (`flattening_enabled`), which
    turns `properties.email` into `properties__email`; the flattened names of the paths are
    then read too, after the paths themselves. The settings come checked (settings.py).
    """
    user = {name: [split_path(path) for path in paths] for name, paths in property_paths.items()}
    if flattened_by:
        user = {name: _with_joined(paths, flattened_by) for name, paths in user.items()}
    if input_format == "segment":
        read = _segment_reader(user, properties)
    else:
        read = _freshpaint_reader(user, frozenset(properties))
    if not flattened_by:
        return read
    return _flattened_reader(read, flattened_names(input_format, properties, flattened_by))


def flattened_names(input_format: str, properties: Sequence[str], separator: str) -> dict[str, str]:
    """The keys the SDK's flattening gives the nested paths of a format, each with the property
    it holds: `properties__email` -> `email`. Only names no other property could mean."""
    paths: list[tuple[str, Path]] = [(name, ("properties", name)) for name in properties]
    if input_format == "segment":
        paths += [
            (name, split_path(path)) for name in SEGMENT_PATHS for path in SEGMENT_PATHS[name]
        ]
    found: dict[str, set[str]] = {}
    for name, path in paths:
        if len(path) > 1:
            found.setdefault(separator.join(path), set()).add(name)
    return {key: names.pop() for key, names in found.items() if len(names) == 1}


def _with_joined(paths: list[Path], separator: str) -> list[Path]:
    """Each path, then its flattened name (a path of one key) when it has several keys."""
    joined = [(path, (separator.join(path),)) if len(path) > 1 else (path,) for path in paths]
    return [form for forms in joined for form in forms]


def _flattened_reader(read: Reader, names: Mapping[str, str]) -> Reader:
    """`read`, then each property it did not find, from its flattened name."""
    pairs = tuple(names.items())

    def read_flattened(record: Mapping[str, Any]) -> Mapping[str, Any]:
        view = read(record)
        copied = view is not record
        for key, name in pairs:
            value = record.get(key)
            if value is not None and not is_absent(value) and is_absent(view.get(name)):
                if not copied:
                    view, copied = dict(view), True
                view[name] = value  # type: ignore[index]
        return view

    return read_flattened


def _freshpaint_reader(user: Mapping[str, list[Path]], wanted: frozenset[str]) -> Reader:
    """Top-level names first, then the same names inside a `properties` object."""

    def read(record: Mapping[str, Any]) -> Mapping[str, Any]:
        nested = record.get("properties")
        if not user and not isinstance(nested, dict):
            return record  # the common case costs one lookup
        view = dict(record)
        _apply_user_paths(record, user, view)
        if isinstance(nested, dict):
            for key, value in nested.items():
                if key in wanted and is_absent(view.get(key)) and not is_absent(value):
                    view[key] = value
        return view

    return read


def _segment_reader(user: Mapping[str, list[Path]], properties: Sequence[str]) -> Reader:
    """Each property from the first of its Segment paths, nested or flattened, that is present.

    A property the table does not name is read by its own name, at the top level or inside
    `properties`, as in the freshpaint format.
    """
    # Each path as its first key and the rest, so that most paths cost one dict lookup.
    table: list[tuple[str, tuple[tuple[str, Path], ...]]] = []
    for name in SEGMENT_PATHS:
        paths = [form for path in SEGMENT_PATHS[name] for form in _forms(path)]
        unique = dict.fromkeys([*paths, (name,), ("properties", name)])
        table.append((name, tuple((path[0], path[1:]) for path in unique)))
    plain = tuple(name for name in properties if name not in SEGMENT_PATHS)

    def read(record: Mapping[str, Any]) -> Mapping[str, Any]:
        view: dict[str, Any] = {}
        if user:
            _apply_user_paths(record, user, view)
        get = record.get
        nested = get("properties")
        inner = nested.get if isinstance(nested, dict) else _nothing
        for name in plain:
            if name not in view:
                for value in (get(name), inner(name)):
                    if value is not None and not is_absent(value):
                        view[name] = value
                        break
        for name, paths in table:
            if name in view:
                continue
            for first, rest in paths:
                value = get(first)  # most paths are one key, or start with a missing one
                if value is None:
                    continue
                if rest:
                    value = lookup(value, rest)
                if value is not None and not is_absent(value):
                    view[name] = value
                    break
        if "event" not in view and lookup(record, ("type",)) == "page":
            view["event"] = SEGMENT_PAGE_EVENT
        return view

    return read


def _nothing(_: str) -> None:
    return None


def _forms(path: str) -> list[Path]:
    return flattened(split_path(path))


def _apply_user_paths(
    record: Mapping[str, Any], user: Mapping[str, list[Path]], view: dict[str, Any]
) -> None:
    for name, paths in user.items():
        for path in paths:
            value = lookup(record, path)
            if not is_absent(value):
                view[name] = value
                break
