"""Google Product Taxonomy lookups for `content_category` (docs/contract.md §2).

Spotify answers free text with HTTP 400, so anything that is not a known id or path is left out
rather than sent. The file ships as package data and is read once per process.
"""

from __future__ import annotations

from functools import cache, lru_cache
from importlib import resources

from .values import whole_number

TAXONOMY_FILE = "google-product-taxonomy-with-ids.en-US.txt"


@cache
def _taxonomy() -> tuple[frozenset[str], dict[str, str]]:
    ids: set[str] = set()
    by_path: dict[str, str] = {}
    text = resources.files(__package__).joinpath("data").joinpath(TAXONOMY_FILE).read_text("utf-8")
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        category_id, _, path = line.partition(" - ")
        ids.add(category_id)
        by_path[_path_key(path)] = category_id
    return frozenset(ids), by_path


def _path_key(path: str) -> str:
    return " > ".join(part.strip().lower() for part in path.split(">"))


def category_id(value: object) -> str | None:
    """The taxonomy id that `value` names (an id, an id number or a full path), else None."""
    if isinstance(value, str):  # a catalogue repeats a few categories on every event
        return _category_of_text(value)
    return _category_of(value)


@lru_cache(maxsize=4096)
def _category_of_text(value: str) -> str | None:
    return _category_of(value)


def _category_of(value: object) -> str | None:
    ids, by_path = _taxonomy()
    number = whole_number(value)
    if number is not None:
        value = str(number)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text in ids:
        return text
    return by_path.get(_path_key(text))
