"""Google Product Taxonomy lookups for content_category (docs/contract.md §2)."""

from __future__ import annotations

import decimal

import pytest

from target_spotify_conversions.taxonomy import category_id

# Lines of Google's file (version 2021-09-21), written down here by hand.
KNOWN = [
    ("1", "Animals & Pet Supplies"),
    ("166", "Apparel & Accessories"),
    ("2271", "Apparel & Accessories > Clothing > Dresses"),
    ("35", "Arts & Entertainment > Hobbies & Creative Arts > Magic & Novelties"),
    ("3237", "Animals & Pet Supplies > Live Animals"),
    ("5424", "Apparel & Accessories > Clothing > Baby & Toddler Clothing > Baby & Toddler Dresses"),
]


@pytest.mark.parametrize(("expected", "path"), KNOWN)
def test_full_path_gives_its_id(expected, path):
    assert category_id(path) == expected


@pytest.mark.parametrize(("expected", "path"), KNOWN)
def test_path_matched_without_case(expected, path):
    assert category_id(path.lower()) == expected
    assert category_id(path.upper()) == expected


@pytest.mark.parametrize(
    "path",
    [
        "apparel & accessories>clothing>dresses",
        "  Apparel & Accessories >   Clothing > Dresses  ",
        "APPAREL & ACCESSORIES > CLOTHING > DRESSES",
    ],
)
def test_path_spacing_around_separators(path):
    assert category_id(path) == "2271"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2271", "2271"),
        (" 2271 ", "2271"),
        ("35", "35"),
        (2271, "2271"),
        (35, "35"),
        (decimal.Decimal("2271"), "2271"),
        (decimal.Decimal("2271.0"), "2271"),
        (1, "1"),
    ],
)
def test_ids_as_strings_and_numbers(value, expected):
    assert category_id(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "Dresses",  # a leaf name alone is no full path
        "Clothing > Dresses",
        "Apparel & Accessories > Clothing > Dresses > Mini",
        "Shoes",
        "free text about dresses",
        "0",
        "999999999",
        "2271.5",
        decimal.Decimal("2271.5"),
        -2271,
        True,
        False,
        None,
        ["2271"],
        {"id": "2271"},
        "",
        "   ",
    ],
)
def test_anything_else_is_none(value):
    assert category_id(value) is None
