"""The small predicates on property values (values.py), fed values the way the target reads
them: each JSON text below is decoded by the target's own reader, so a number with a fraction
arrives as a Decimal, a whole number as an int, as in a real run."""

from __future__ import annotations

import decimal
import time

import pytest

from target_spotify_conversions.reader import SafeReader
from target_spotify_conversions.values import finite_decimal, is_absent, whole_number

D = decimal.Decimal
_READER = SafeReader()


def read(json_text: str) -> object:
    """A property value as the target reads it from an input line."""
    return _READER.deserialize_json(f'{{"value": {json_text}}}')["value"]


# --- is_absent: what counts as "no value" everywhere (docs/contract.md §2) ----------------------


@pytest.mark.parametrize(
    "json_text", ["null", '""', '"   "', r'"\t\n"', r'"\u00a0"', "[]", "{}"]
)
def test_null_empty_and_blank_values_are_absent(json_text):
    assert is_absent(read(json_text))


@pytest.mark.parametrize(
    "json_text",
    ['"x"', '" jane@example.com "', "0", "0.0", "false", "[null]", '{"a": null}', '"null"'],
)
def test_anything_else_is_a_value_even_zero_false_and_the_word_null(json_text):
    assert not is_absent(read(json_text))


# --- whole_number: ids, phones, epochs, taxonomy ids written as numbers ------------------------


@pytest.mark.parametrize(
    ("json_text", "number"),
    [
        ("7", 7),
        ("-3", -3),
        ("0", 0),
        ("7.0", 7),
        ("7.00", 7),
        ("-0.0", 0),
        ("1e3", 1000),
        ("-2E+1", -20),
        ("4155550132", 4155550132),
        ("9007199254740993", 9007199254740993),  # beyond a double's exact range: kept exact
        ("1700000000123", 1700000000123),  # epoch milliseconds
    ],
)
def test_a_whole_json_number_is_its_integer(json_text, number):
    assert whole_number(read(json_text)) == number


@pytest.mark.parametrize(
    "json_text", ["7.5", "-2.50", "0.001", "true", "false", '"7"', "null", "[7]", '{"n": 7}']
)
def test_fractions_booleans_and_strings_are_no_whole_number(json_text):
    assert whole_number(read(json_text)) is None


def test_a_whole_number_of_up_to_999_digits_is_kept_and_a_longer_one_is_not():
    assert whole_number(read("9" * 1000)) == 10**1000 - 1
    assert whole_number(read("-" + "9" * 1000)) == -(10**1000 - 1)
    assert whole_number(read("1" + "0" * 1000)) is None
    assert whole_number(read("1e999")) == 10**999
    assert whole_number(read("1e1000")) is None


def test_an_absurd_exponent_is_refused_at_once():
    started = time.monotonic()
    assert whole_number(read("1e999999999")) is None
    assert whole_number(read("-1E+999999999")) is None
    assert time.monotonic() - started < 1  # int() of it would take minutes


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), -float("inf"), D("NaN"), D("sNaN"), D("Infinity")]
)
def test_not_a_number_and_infinity_are_no_whole_number(value):
    # JSON cannot spell these, but a stream map or the SDK can hand them over.
    assert whole_number(value) is None


# --- finite_decimal: amounts and epoch times, written as numbers or as text ---------------------


@pytest.mark.parametrize(
    ("json_text", "number"),
    [
        ("19.99", D("19.99")),
        ("0.1", D("0.1")),  # exact: what was written, never a binary float's approximation
        ("3", D(3)),
        ('"19.99"', D("19.99")),
        ('" 12.30 "', D("12.30")),
        ('"1e3"', D(1000)),
        ('"+5"', D(5)),
        ('"-0.5"', D("-0.5")),
        ("1700000000.250", D("1700000000.250")),
    ],
)
def test_a_number_or_numeric_text_is_its_exact_decimal(json_text, number):
    found = finite_decimal(read(json_text))
    assert found == number
    assert isinstance(found, decimal.Decimal)


def test_the_decimal_keeps_the_digits_as_written():
    assert str(finite_decimal(read("12.50"))) == "12.50"
    assert str(finite_decimal(read('"12.50"'))) == "12.50"


@pytest.mark.parametrize(
    "json_text",
    [
        "true",
        "false",
        "null",
        '""',
        '"   "',
        '"NaN"',
        '"nan"',
        '"Infinity"',
        '"-inf"',
        '"abc"',
        '"12,50"',  # a decimal comma is not read as 1250
        '"$12.50"',
        '"12.50 EUR"',
        '"0x10"',
        "[1]",
        '{"amount": 1}',
    ],
)
def test_anything_that_is_no_finite_number_gives_none(json_text):
    assert finite_decimal(read(json_text)) is None


@pytest.mark.parametrize("value", [D("NaN"), D("Infinity"), D("-Infinity"), float("nan")])
def test_not_a_number_and_infinity_give_none(value):
    assert finite_decimal(value) is None
