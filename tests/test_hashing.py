"""Normalising and hashing emails and phone numbers (docs/contract.md §2, user data)."""

from __future__ import annotations

import decimal
import hashlib
import random
import time

import phonenumbers
import pytest

from target_spotify_conversions.hashing import (
    MAX_EMAILS,
    e164,
    hash_email,
    hash_emails,
    hash_phone,
    is_sha256_hex,
    number_key,
    redact_emails,
    redact_phone,
    sha256_hex,
)
from tests.harness import purchase, run_target, singer_lines, target_config


def digest(text: str) -> str:
    """The expected value, computed independently of the package."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


JANE = digest("jane.doe@example.com")
JOHN = digest("john@example.org")
LONDON = digest("+442079460958")
US_FICTIONAL = digest("+15550102030")
PRE_HASHED = "a" * 32 + "0123456789abcdef" * 2


# --- sha256_hex / is_sha256_hex -----------------------------------------------------------------


def test_sha256_hex_known_vectors():
    # Published SHA-256 test vectors.
    assert sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_sha256_hex_hashes_utf8_bytes():
    assert sha256_hex("zoë@exämple.com") == hashlib.sha256("zoë@exämple.com".encode()).hexdigest()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (PRE_HASHED, True),
        (PRE_HASHED.upper(), True),
        ("0" * 64, True),
        ("0" * 63, False),
        ("0" * 65, False),
        ("g" * 64, False),
        ("0" * 63 + " ", False),
        ("", False),
        ("jane.doe@example.com", False),
    ],
)
def test_is_sha256_hex(text, expected):
    assert is_sha256_hex(text) is expected


# --- emails -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "jane.doe@example.com",
        "Jane.Doe@Example.COM",
        "  jane.doe@example.com  ",
        "\tJANE.DOE@EXAMPLE.COM\n",
    ],
)
def test_hash_email_trims_and_lower_cases(raw):
    assert hash_email(raw) == JANE


@pytest.mark.parametrize("raw", ["", " ", "\t\n"])
def test_hash_email_empty_is_none(raw):
    assert hash_email(raw) is None


def test_an_email_longer_than_an_address_can_be_is_none():
    longest = "a" * 64 + "@" + "b" * 185 + ".com"  # 254 characters
    assert hash_email(longest) == hashlib.sha256(longest.encode()).hexdigest()
    assert hash_email(f"  {longest.upper()} ") == hash_email(longest)
    assert hash_email("a" + longest) is None
    assert hash_email("x@" + "y" * 3_000_000 + ".com") is None
    assert hash_emails(["x" * 300 + "@example.com", "jane.doe@example.com"]) == [JANE]


def test_pre_hashed_email_is_kept():
    assert hash_email(PRE_HASHED) == PRE_HASHED
    assert hash_email(f"  {PRE_HASHED} ") == PRE_HASHED


def test_upper_case_pre_hashed_email_is_only_lower_cased():
    assert hash_email(PRE_HASHED.upper()) == PRE_HASHED
    assert hash_email(JANE.upper()) == JANE


def test_hashing_twice_changes_nothing():
    once = hash_email("Jane.Doe@example.com")
    assert once == JANE
    assert hash_email(once) == once


def test_hash_emails_single_string_is_a_list():
    assert hash_emails("jane.doe@example.com") == [JANE]


def test_hash_emails_list_keeps_order_drops_duplicates_and_empties():
    value = [
        "john@example.org",
        "",
        "  ",
        "JANE.DOE@example.com",
        "jane.doe@example.com ",
        JANE.upper(),
        None,
        42,
        "John@Example.org",
    ]
    assert hash_emails(value) == [JOHN, JANE]


@pytest.mark.parametrize("value", [None, "", [], ["", "  "], 5, {"email": "jane@example.com"}])
def test_hash_emails_nothing_usable(value):
    assert hash_emails(value) == []


def test_redact_emails_keeps_shape_and_hashes_every_string():
    assert redact_emails("Jane.Doe@example.com") == JANE
    assert redact_emails(["jane.doe@example.com", ["john@example.org"], 3]) == [
        JANE,
        [JOHN],
        None,
    ]
    assert redact_emails({"raw": "jane.doe@example.com"}) is None


# --- phones -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("+44 20 7946 0958", None, "+442079460958"),
        ("+44 (0)20 7946 0958", None, "+442079460958"),
        ("+442079460958", "US", "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("020-7946-0958", "GB", "+442079460958"),
        ("+1 555 010 2030", None, "+15550102030"),
        ("(555) 010-2030", "US", "+15550102030"),
        ("555.010.2030", "US", "+15550102030"),
        ("  +1 555 010 2030  ", None, "+15550102030"),
        ("030 901820", "DE", "+4930901820"),
    ],
)
def test_e164(raw, country, expected):
    assert e164(raw, country) == expected


@pytest.mark.parametrize(
    ("raw", "country"),
    [
        ("020 7946 0958", None),  # national number, no default country
        ("5550102030", None),
        ("+1 555", None),  # too short for its country
        ("+44 20 7946 0958 1234 5678", None),  # too long
        ("not a phone", "GB"),
        ("", "GB"),
        ("+", None),
    ],
)
def test_e164_unusable(raw, country):
    assert e164(raw, country) is None


def test_hash_phone_digest_of_e164():
    assert hash_phone("+44 20 7946 0958", None) == LONDON
    assert hash_phone("020 7946 0958", "GB") == LONDON
    assert hash_phone("+1 555 010 2030", None) == US_FICTIONAL


def test_hash_phone_national_without_country_is_unusable():
    assert hash_phone("020 7946 0958", None) is None


@pytest.mark.parametrize(
    ("value", "country", "expected"),
    [
        (2079460958, "GB", LONDON),
        (decimal.Decimal("2079460958"), "GB", LONDON),
        (decimal.Decimal("2079460958.0"), "GB", LONDON),
        (5550102030, "US", US_FICTIONAL),
        (2079460958, None, None),  # a number has no '+', so it needs a default country
        (decimal.Decimal("207946.0958"), "GB", None),  # a fraction is no phone number
        (True, "GB", None),
    ],
)
def test_hash_phone_numbers(value, country, expected):
    assert hash_phone(value, country) == expected


def test_hash_phone_list_takes_first_usable():
    value = ["", "not a phone", "020 7946 0958", "+1 555 010 2030"]
    assert hash_phone(value, None) == US_FICTIONAL
    assert hash_phone(value, "GB") == LONDON


@pytest.mark.parametrize("value", [[], [None, ""], ["12"], None, "", "  ", {"n": "+442079460958"}])
def test_hash_phone_nothing_usable(value):
    assert hash_phone(value, "GB") is None


def test_pre_hashed_phone_is_only_lower_cased():
    assert hash_phone(LONDON, None) == LONDON
    assert hash_phone(LONDON.upper(), None) == LONDON
    assert hash_phone(f" {LONDON.upper()} ", "GB") == LONDON


def test_redact_phone_never_keeps_the_raw_number():
    assert redact_phone("+44 20 7946 0958", None) == LONDON
    # Unusable numbers are still hashed (as written), never kept.
    assert redact_phone("020 7946 0958", None) == digest("020 7946 0958")
    assert redact_phone(["+1 555 010 2030", 2079460958], "GB") == [US_FICTIONAL, LONDON]
    assert redact_phone(LONDON.upper(), None) == LONDON
    assert redact_phone(None, None) is None


# --- number_key: the phone cache's key ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("+1 (512) 555-0193", "+15125550193"),
        ("+1.512.555.0193", "+15125550193"),
        ("(512) 555-0193", "5125550193"),
        ("+44 (0)20 7946 0958", "+4402079460958"),
        ("+1 512 555 0193 ext 12", "+1 512 555 0193 ext 12"),  # letters: kept as written
        ("+1 800 FLOWERS", "+1 800 FLOWERS"),
        ("00 44 20 7946 0958", "00442079460958"),
        ("(+44) 20 7946 0958", "(+44) 20 7946 0958"),  # a '+' further in: kept
    ],
)
def test_number_key_drops_only_punctuation(text, key):
    assert number_key(text) == key


def spellings(number: str, rng: random.Random) -> list[str]:
    """The same digits with spaces, dots, dashes and brackets put in at random."""
    out = []
    for _ in range(4):
        text = "+" if number.startswith("+") else ""
        for char in number.lstrip("+"):
            text += char
            if rng.random() < 0.3:
                text += rng.choice([" ", "-", ".", "(", ")", " (", ") "])
        out.append(text.strip())
    return out


def test_spellings_that_share_a_key_parse_to_the_same_number():
    """Every region's example numbers, in international and national form, as people type them."""
    rng = random.Random(7)
    parsed = 0
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        example = phonenumbers.example_number(region)
        if example is None:
            continue
        national = phonenumbers.national_significant_number(example)
        international = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
        for number in (international, "0" + national, national):
            for text in spellings(number, rng):
                for country in (None, region):
                    expected = e164(text, country)
                    assert e164(number_key(text), country) == expected, (text, country)
                    parsed += expected is not None
    assert parsed > 1000  # the check compared real numbers, not only refusals


def test_hash_emails_is_linear_and_stops_at_its_limit():
    emails = [f"user.{i}@example.com" for i in range(200_000)]
    started = time.monotonic()
    everything = hash_emails(emails)
    assert time.monotonic() - started < 10  # a quadratic de-duplication took minutes
    assert len(everything) == 200_000
    assert hash_emails(emails + emails, limit=3) == [digest(e) for e in emails[:3]]
    assert hash_emails(["A@x.io", "a@x.io ", "b@x.io"], limit=2) == [
        digest("a@x.io"),
        digest("b@x.io"),
    ]


def test_a_record_with_100000_emails_is_capped_and_quick(fake, tmp_path):
    emails = [f"user.{i}@example.com" for i in range(100_000)]
    records = [purchase(1, email=emails), purchase(2)]
    started = time.monotonic()
    run = run_target(tmp_path / "run", target_config(fake.url), singer_lines(records))
    assert time.monotonic() - started < 20  # was 43 s, with a core busy after a kill
    assert run.returncode == 0, run.stderr[-3000:]
    sent = fake.accepted["ord-1"]["user_data"]["hashed_emails"]
    assert sent == [digest(email) for email in emails[:MAX_EMAILS]]
    assert run.count("warning too_many_emails") == 1
    assert fake.accepted_ids() == {"ord-1", "ord-2"}


def test_the_reading_process_loads_phonenumbers_only_when_it_reads_a_phone(tmp_path):
    """Its import cost 25 ms of CPU at every start, and a run whose records go to mapping
    workers never reads a phone in the reading process."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from target_spotify_conversions.target import TargetSpotifyConversions\n"
        f"TargetSpotifyConversions(config={target_config(phone_default_country='DE')!r}, "
        "validate_config=True)\n"
        "print('phonenumbers' in sys.modules)\n"
        "from target_spotify_conversions.hashing import hash_phone\n"
        "print(hash_phone('030 1234567', 'DE') is not None, 'phonenumbers' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60,
        cwd=tmp_path,
    )
    assert done.stdout.split() == ["False", "True", "True"]
