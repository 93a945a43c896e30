"""What of an input value a message, the summary or the rejects file may show (privacy.py)."""

from __future__ import annotations

import hashlib
import json
import time
import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from target_spotify_conversions import privacy
from target_spotify_conversions.privacy import (
    described,
    looks_personal,
    page_url,
    personal_in_free_text,
    personal_in_words,
    plainly_personal,
    quoted,
    redacted,
    shown,
    shown_id,
    shown_url,
)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.mark.parametrize("value", [
    "alice.smith@example.com", " Bob@Example.org ", "https://shop.example/?e=carol@example.net",
    "+1 415 555 0123", "+442079460958", "(415) 555-0123", "415-555-0123", "415.555.0123",
    "030 1234 5678",
    # written as documents and other countries write them: slashes, typographic dashes,
    # no-break spaces, full-width digits
    "030/1234567", "415/555-0123", "415\u2013555\u20130123", "415\u00a0555\u00a00123",
    "\uff14\uff11\uff15-\uff15\uff15\uff15-\uff10\uff11\uff12\uff13",
    "\uff0b\uff11 \uff14\uff11\uff15 \uff15\uff15\uff15 \uff10\uff11\uff12\uff13",
])
def test_emails_and_phone_numbers_look_personal_wherever_they_are(value):
    assert looks_personal(value)


@pytest.mark.parametrize("value", [
    "USD", "PURCHASE", "Order Completed", "12.50", "1500000", "4155550123", "ord-1001",
    "2026-11-01T10:00:00Z", "2026-11-01", "203.0.113.7", "2001:db8::1", "@", "user@", "",
    "12/05/2026", "2026/11/12", "Chrome/131.0.0.0 Safari/537.36",
    "https://shop.example/p/1", 4155550123, None, ["+1 415 555 0123"],
])
def test_ids_amounts_times_addresses_and_codes_do_not(value):
    """Bare digits are ids and amounts; a list is judged item by item where it is redacted."""
    assert not looks_personal(value)


@pytest.mark.parametrize(("value", "text"), [
    ("alice@example.com", "a string of 17 characters"),
    ("x", "a string of 1 character"),
    (12345, "an integer of 5 digits"),
    (12.5, "a number"),
    (float("inf"), "a non-finite number"),
    (True, "a boolean"),
    (None, "null"),
    (["a", "b"], "a list of 2 items"),
    ({"a": 1}, "an object of 1 key"),
    (1 + 2j, "a value of type complex"),
])
def test_described_says_what_a_value_is_never_the_value(value, text):
    assert described(value) == text


def test_described_counts_the_digits_of_an_integer_that_has_no_text():
    assert described(10**5000) == "an integer of 5001 digits"


def test_shown_quotes_only_a_value_of_the_closed_set():
    assert shown("WEB", allowed={"WEB", "APP"}) == "'WEB'"
    assert shown("alice@example.com", allowed={"WEB"}) == "a string of 17 characters"


def test_quoted_cuts_long_text_and_never_quotes_an_email_or_phone():
    assert quoted("x" * 100) == "'" + "x" * 36 + "..."
    assert quoted("line\nbreak") == "'line\\nbreak'"  # one line
    assert quoted("alice@example.com") == "a string of 17 characters"
    assert quoted("+1 415 555 0123") == "a string of 15 characters"
    assert quoted(10**5000) == "an integer of 5001 digits"


def test_an_event_id_that_looks_personal_is_shown_as_a_stable_digest():
    assert shown_id("ord-1001") == "ord-1001"
    shown_email = shown_id(" Alice@Example.com")
    assert shown_email == "sha256:" + sha("alice@example.com")[:16]
    assert shown_id("+1 415 555 0123") == "sha256:" + sha("+14155550123")[:16]
    assert shown_id("415-555-0123") == "415-555-0123"  # dashed digits are ids too


def test_redacted_hashes_emails_and_phones_in_any_shape_and_keeps_the_rest():
    value = {"a": [" Alice@Example.com", "+44 20 7946 0958", "12.50"], "b": 7, "c": "PURCHASE"}
    assert redacted(value, None) == {
        "a": [sha("alice@example.com"), sha("+442079460958"), "12.50"], "b": 7, "c": "PURCHASE"}
    # A national number is hashed as the mapping would send it with phone_default_country.
    assert redacted("(415) 555-0123", "US") == sha("+14155550123")


def test_a_text_holding_an_email_is_redacted_and_never_quoted_however_long():
    """Found by an attack: the mapping stopped taking texts over 254 characters as an email,
    and the rejects file, which asked the mapping's test, kept such a note raw."""
    for size in (40, 254, 255, 3_000):
        note = ("Customer jane.doe@gmail asked twice for a refund " * 100)[:size]
        assert "jane.doe" not in json.dumps(redacted(note, None))
        assert "jane.doe" not in json.dumps(redacted({"content_name": note}, None))
        assert "jane.doe" not in quoted(note, limit=5_000)
        assert looks_personal(note)


@pytest.mark.parametrize(("url", "text"), [
    ("http://user:pw@files.example/batch/1.jsonl", "http://files.example/batch/1.jsonl"),
    ("s3://AKIAKEY:SeCrEt@bucket/batch/1.jsonl.gz", "s3://bucket/batch/1.jsonl.gz"),
    ("https://bucket.s3.amazonaws.com/1.jsonl?X-Amz-Signature=abc&X-Amz-Credential=k",
     "https://bucket.s3.amazonaws.com/1.jsonl?(query removed)"),
    ("https://files.example/1.jsonl?part=2", "https://files.example/1.jsonl?part=2"),
    ("file:///tmp/batch/1.jsonl", "file:///tmp/batch/1.jsonl"),
    ("/tmp/batch/1.jsonl", "/tmp/batch/1.jsonl"),
    ("https://files.example/1.jsonl#token=abc", "https://files.example/1.jsonl"),
])
def test_shown_url_drops_credentials_and_signed_queries(url, text):
    assert shown_url(url) == text


@pytest.mark.parametrize(("text", "personal"), [
    ("alice@example.com", True), ("Mozilla/5.0 (contact: ops@example.org)", True),
    ("+44 20 7946 0958", True), ("(415) 555-0123", True),
    ("order@123", False), ("415-555-0123", False), ("6D92078A-8246-4BA4-AE5B-76104861E7DC", False),
    ("Mozilla/5.0 (X11; Linux x86_64)", False), ("(none)", False), ("1699999999.123", False),
])
def test_plainly_personal_is_what_a_free_text_field_never_sends(text, personal):
    assert plainly_personal(text) is personal
    if personal:
        assert personal_in_free_text(text)


@pytest.mark.parametrize(("text", "country", "personal"), [
    ("415-555-0123", None, True), ("415.555.0123", None, True), ("212 555 0199", "US", True),
    ("07911 123456", "GB", True), ("0044 7911 123456", "GB", True), ("07700 900123", None, False),
    ("+447700900123", None, True), ("00447700900123", "GB", False), ("100-200-3000", None, False),
    ("2026-12-07", None, False), ("203.0.113.7", None, False), ("25-34", None, False),
    ("1699999999.123", None, False), ("15.01.2024", "DE", False), ("1981-1996", None, False),
    ("Mozilla/5.0 (X11; Linux x86_64)", None, False), ("order@123", None, False),
    # within words: a note typed into a free-text column
    ("call +44 20 7946 0958", None, True), ("call (415) 555-0123 after 5", None, True),
    ("call 415-555-0123 after 5", None, False),  # national within words: see personal_in_words
    ("mail alice.wrong@example.com now", None, True), ("order 100-200-3000 shipped", None, False),
    ("Mozilla/5.0 (Linux; Android 14) Chrome/131.0.6778.81 Mobile Safari/537.36", None, False),
    ("Dress, size 38-40, 2024-06-01 edition", None, False),
    # other ways of writing the separators and the digits
    ("030/1234567", "DE", True), ("415/555-0123", None, True),
    ("415\u2013555\u20130123", None, True),
    ("415\u2011555\u20110123", None, True), ("415\u00a0555\u00a00123", None, True),
    ("\uff14\uff11\uff15-\uff15\uff15\uff15-\uff10\uff11\uff12\uff13", None, True),
    ("call \uff0b44 20 7946 0958", None, True), ("+1/415/555/0123", None, True),
    ("12/05/2026", None, False), ("2026/11/12", "DE", False), ("1920/1080", None, False),
    ("1981\u20131996", None, False),
])
def test_a_free_text_field_also_refuses_valid_phone_numbers_written_with_separators(
    text, country, personal
):
    assert personal_in_free_text(text, country) is personal


def test_a_rejected_record_keeps_an_id_made_of_dashed_digits_so_it_can_be_fed_back():
    from target_spotify_conversions.mapping import EventMapper, MappingOptions

    mapper = EventMapper(MappingOptions())
    record = {"$event_id": "100-200-3000", "content_name": "415-555-0123", "amount": "x"}
    kept = mapper.redact(record, "100-200-3000")
    assert kept["$event_id"] == "100-200-3000"
    assert kept["content_name"] == sha("415-555-0123")  # elsewhere it is hashed to be safe
    kept = mapper.redact({"$event_id": " Ann@Example.com"}, "derived")
    assert kept["$event_id"] == sha("ann@example.com")


@pytest.mark.parametrize(("url", "sent"), [
    ("https://shop.example/thanks?email=jane@example.com", "https://shop.example/thanks"),
    ("https://shop.example/thanks?email=jane%40example.com&o=1", "https://shop.example/thanks"),
    ("https://shop.example/p?phone=%2B447700900123", "https://shop.example/p"),
    ("https://shop.example/u/jane@example.com/orders", "https://shop.example/"),
    ("https://jane:pw@shop.example/thanks", "https://shop.example/thanks"),
    ("https://shop.example/?spclid=jane@example.com", "https://shop.example/"),
    ("https://shop.example:8443/a/b?c=d#e", "https://shop.example:8443/a/b?c=d#e"),
    # A phone's own `+` written as it is (a form would read it as a space)
    ("https://shop.example/thanks?phone=+14155550123", "https://shop.example/thanks"),
    ("https://shop.example/thanks#phone=+14155550123", "https://shop.example/thanks"),
    ("https://shop.example/thanks?p=+1+415+555+0199", "https://shop.example/thanks"),
    ("https://shop.example/p?q=a+b&utm=summer+sale", "https://shop.example/p?q=a+b&utm=summer+sale"),
    ("https://shop.example/p?n=+5", "https://shop.example/p?n=+5"),
    # national numbers as a country writes them, found by an attack: sent whole before
    ("https://shop.example.com/thanks?phone=415-555-0123", "https://shop.example.com/thanks"),
    ("https://shop.example.com/thanks?phone=415.555.0123&x=1", "https://shop.example.com/thanks"),
    ("https://shop.example.com/t#tel=415-555-0123", "https://shop.example.com/t"),
    ("https://shop.example.com/t?phone=415/555/0101", "https://shop.example.com/t"),
    # at signs of other widths, and HTML's entities (a `#` would cut the address in two)
    ("https://shop.example.com/t?email=jane.doe\uff20example.com", "https://shop.example.com/t"),
    ("https://shop.example.com/t?email=jane.doe\ufe6bexample.com", "https://shop.example.com/t"),
    ("https://shop.example.com/t?email=jane.doe&#64;example.com", "https://shop.example.com/t"),
    ("https://shop.example.com/t?email=jane.doe&commat;example.com&x=1",
     "https://shop.example.com/t"),
    ("https://shop.example.com/t?email=jane&amp;#64;example.com", "https://shop.example.com/t"),
    # an entity that hides nothing leaves the URL as it was (found by the property test below)
    ("https://shop.example/&#0", "https://shop.example/&#0"),
    ("https://shop.example/p?a=1&#38;b=2", "https://shop.example/p?a=1&#38;b=2"),
    # dates, ids and prices with the same punctuation stay
    ("https://shop.example/blog?d=2026-12-07", "https://shop.example/blog?d=2026-12-07"),
    ("https://shop.example/p?sku=100-200-3000", "https://shop.example/p?sku=100-200-3000"),
    ("https://shop.example/p?price=12.50&v=1.2.3", "https://shop.example/p?price=12.50&v=1.2.3"),
])
def test_a_page_url_reaches_spotify_without_personal_data_or_credentials(url, sent):
    """A thank-you page often carries the buyer's email in its query string."""
    assert page_url(url) == sent


@pytest.mark.parametrize(("url", "country", "sent"), [
    ("https://shop.example.de/danke?tel=030-1234567", "DE", "https://shop.example.de/danke"),
    ("https://shop.example.co.uk/t?phone=020%207946%200958", "GB", "https://shop.example.co.uk/t"),
    ("https://shop.example.co.uk/t?phone=0044%2020%207946%200958", None,
     "https://shop.example.co.uk/t"),
])
def test_a_page_url_loses_a_national_number_of_the_country(url, country, sent):
    assert page_url(url, country) == sent


@pytest.mark.parametrize("url", [
    "https://shop.example.com:99999/thanks?email=jane.doe@example.com",
    "https://shop.example.com:abc/thanks?phone=%2B442079460958",
    "http://[::1/thanks?email=jane.doe@example.com",
])
def test_a_url_that_cannot_be_taken_apart_is_not_sent_with_what_it_holds(url):
    """Found by an attack: such a URL was sent as it was, email and all."""
    with pytest.raises(ValueError, match="host or port"):
        page_url(url)


@pytest.mark.parametrize(("url", "country"), [
    ("https://shop.example.de/k?datum=07.12.2026&utm_source=nl", "DE"),
    ("https://shop.example.it/k?data=7.12.26", "IT"),
    ("https://shop.example.de/k?dim=300-400-500", "DE"),
])
def test_a_date_or_a_size_in_a_page_url_is_no_phone_number(url, country):
    """Found by an attack: German and Italian dates, and sizes, were read as national
    numbers."""
    assert page_url(url, country) == url


# Page URLs as exports hold them, with the characters urllib treats specially, but none of
# those a personal part needs (`@`, `%`, `+`, `(`): the ones page_url sends without a closer look.
_URL_TEXT = st.text(alphabet="aZ09-._~/?#&=:;,!$*'[] \t", max_size=40)


@given(host=st.sampled_from(["shop.example", "shop.example:8443", "[::1]", "x"]), rest=_URL_TEXT)
def test_a_url_sent_without_a_closer_look_is_what_the_closer_look_sends(host, rest):
    url = f"https://{host}/{rest}"
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - what page_url refuses to take apart it returns as it is
    except ValueError:  # sent as it is by the plain-URL path, or refused
        try:
            assert page_url(url) == url
        except ValueError:
            assert privacy._may_hold_personal(url)
        return
    assert page_url(url) == privacy._without_personal_parts(parts, None)


_ANY_URL_TEXT = st.text(alphabet="aZ09-._~/?#&=:;,!$*'[]\\ \t\x01\x7fé", max_size=40)


@given(
    scheme=st.sampled_from(["https", "http", "HTTP", "ftp"]),
    host=st.sampled_from(["shop.example", "shop.example:8443", "x:99999", "x:", "[::1]",
                          "a_b-c.d", "é.example", ""]),
    rest=_ANY_URL_TEXT,
)
def test_a_plain_url_is_sent_as_urllib_would_put_it_back_together(scheme, host, rest):
    """The shortcut for plain URLs (no urllib round trip) sends what the round trip sends."""
    url = f"{scheme}://{host}{rest}"
    if privacy._PLAIN_URL.fullmatch(url) is None:
        return
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - a URL urllib refuses is sent as it is anyway
    except ValueError:
        return
    assert urllib.parse.urlunsplit(parts) == url
    assert page_url(url) == url


def test_the_rejects_file_hashes_a_text_that_holds_a_phone_number_within_words():
    note = "call +44 20 7946 0958 after 5"
    kept = redacted({"content_name": note, "ua": "Chrome/131.0.6778.81"}, None)
    assert kept == {"content_name": sha(note), "ua": "Chrome/131.0.6778.81"}
    national = "call 415-555-0123 after 5"
    assert redacted({"content_name": national}, None) == {"content_name": sha(national)}


@pytest.mark.parametrize(("text", "country", "personal"), [
    ("call 415-555-0123 after 5", None, True), ("ring 020 7946 0958 today", "GB", True),
    ("ring 020 7946 0958 today", None, False), ("tel. 415.555.0123.", None, True),
    ("(Ann) 415 555 0199, evenings", "US", True), ("alice@example.com", None, True),
    ("order 100-200-3000 shipped", None, False), ("range 415-555-0123-4567", None, False),
    ("see 10.0.19045.3570", None, False), ("ISBN 978-3-16-148410-0", None, False),
    ("Mozilla/5.0 (Linux; Android 14; SM-G991B Build/UP1A.231005.007) "
     "Chrome/131.0.6778.81 Mobile Safari/537.36", None, False),
])
def test_words_people_type_are_also_searched_for_a_national_number(text, country, personal):
    assert personal_in_words(text, country) is personal


@pytest.mark.parametrize("url", [
    "https://shop.example.com/t?phone=+44+20+7946+0500",
    "https://shop.example.com/t?phone=0044%2020%207946%200506",
    "https://shop.example.com/t?phone=415-555-0103",
    "https://shop.example.com:99999/t?email=jane@example.com",
])
def test_the_rejects_file_keeps_no_page_url_that_holds_a_phone_or_an_email(url):
    """Found by an attack: the request body lost these parts, the rejects file kept them."""
    assert redacted(url, None) != url
    assert redacted({"event_source_url": url}, None)["event_source_url"] != url


def test_the_rejects_file_keeps_a_page_url_without_personal_parts():
    url = "https://shop.example.com/products/oxford-shirt?spclid=f28c105d1fb1&d=2026-12-07"
    assert redacted(url, None) == url


def test_the_rejects_file_redacts_keys_as_well_as_values():
    kept = redacted({"amount": {"key.leak@example.com": 1}, "c": {"+44 7700 900202": "EUR"}}, "GB")
    text = json.dumps(kept)
    assert "key.leak@example.com" not in text
    assert "7700 900202" not in text


@pytest.mark.parametrize(("text", "country"), [
    # a trunk 1 or punctuation before a North American number within words
    ("Call 1-415-555-0123 after 5", None), ("call 1.415.555.0123 now", None),
    ("Tel.415-555-0123", None), ("ref-415-555-0123", None),
    # full-width brackets, slashes and dots; spaces of every width; dashes of other keyboards
    ("+1\uff08415\uff09555-0123", None), ("\uff08415\uff09555-0123", None),
    ("030\uff0f1234567", "DE"), ("415\uff0e555\uff0e0123", None),
    ("+44\u200b20\u200b7946\u200b0958", None), ("+1\u2060415\u2060555\u20600123", None),
    ("415\u00ad555\u00ad0123", None), ("+44\u200920\u20097946\u20090958", None),
    ("415\ufe63555\ufe630123", None), ("415\u301c555\u301c0123", None), ("415~555~0123", None),
    # a space after the plus, or the 00 / 011 that dials out
    ("+ 1 415 555 0123", None), ("0044 20 7946 0958", None), ("011 44 20 7946 0958", "GB"),
    # emails with a top-level name in another script, or a full-width at sign
    ("contact ivan@\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444", None),
    ("john\uff20example.com", None),
    # an email as a URL writes it (a value copied from a link)
    ("x%40domain.com", None), ("Gift for jane%40example.org", None),
    ("jane.doe%2540example.com", None), ("%2B44%2020%207946%200958", None),
    ("%2B442079460958", None), ("tel%3A%2B44%2020%207946%200958", None),
    ("+44+20+7946+0958", None), ("call%20415-555-0123%20now", None),
    ("call +44+20+7946+0958 now", None),
    ("%28415%29%20555-0123", None),
    # spaces around the at sign, the small commercial at, HTML's entities
    ("jane.doe @example.com", None), ("jane.doe @ example.com", None),
    ("jane.doe\u00a0@example.com", None), ("jane\ufe6bexample.com", None),
    ("jane&#64;example.com", None), ("jane&#x40;example.com", None),
    ("jane&commat;example.com", None), ("&#43;44 20 7946 0958", None),
    ("jane&amp;#64;example.com", None),
    # national numbers within words, written as their countries write them
    ("appelez le 06 12 34 56 78", "FR"), ("Tel. 030 12345678", "DE"),
])
def test_phone_numbers_and_emails_as_people_write_them_are_found(text, country):
    assert personal_in_words(text, country)
    assert redacted(text, country) != text, "the rejects file never keeps it raw"


@pytest.mark.parametrize(("text", "country"), [
    ("Monitor 3840 2160 144Hz", "DE"), ("Box 300 400 500 mm", "DE"),
    ("Speaker 20 2000 20000 Hz", "DE"), ("Episode 202 312 4567", "DE"),
    ("Set 100 250 500 ml", "FR"), ("Cable 10 100 1000 Mbps", "FR"), ("Order 12 345 678", "AT"),
    ("SKU 123-456-7890", "GB"), ("Range 200-300-4000", "GB"), ("Released 01.02.2024", "DE"),
    ("Save 50%40 today", "US"), ("Mix 100%40.5", "US"), ("Buy 2+1 free", "US"),
    ("Size 10+12+14", "US"), ("100%25 cotton", "US"), ("C++ and 3840+2160", "DE"),
    ("Follow @shop on Insta", "US"), ("Tea & Cake &#38; more", "US"),
    ("Price @ $5.99", "US"), ("Lieferung am 07.12.2026", "DE"), ("07.12.2026", "DE"),
    ("Consegna 7.12.26", "IT"), ("vom 01.02.2024 bis 07.12.2026", "DE"),
    ("300-400-500", "DE"), ("12-345-6789", "FR"),
])
def test_product_specs_with_numbers_are_no_phone_numbers(text, country):
    assert not personal_in_words(text, country)


@pytest.mark.parametrize("text", [
    "x" * 200_000 + "@" + "y" * 200_000,  # no dot after the @: was quadratic
    "x" * 200_000 + "%40" + "y" * 200_000, "a%40" * 100_000, "%2B1+" * 80_000,
    "%25" * 130_000, "+1 " * 100_000 + "%20", "a @ " * 100_000, "&#64;" * 80_000,
    "a@" * 200_000, "@" * 400_000, "212-555-0100 " * 30_000, "+1 " * 200_000, "(" * 200_000 + "1",
])
def test_huge_values_are_judged_in_bounded_time(text):
    """Each of these took from seconds to minutes when a pattern backtracked over the text;
    a mapping worker that takes that long is killed and the run fails."""
    started = time.process_time()
    personal_in_words(text)
    redacted(text, None)
    assert time.process_time() - started < 5


@pytest.mark.parametrize(("value", "shown"), [
    ("ture", True),
    ("PURCHSE", True),
    ("CUSTOM_EVENT_6", True),
    ("2026-12-07", True),
    ("append-only", True),
    ("checkoutCompleted", True),  # camelCase: a word
    ("OrderCompletedEventName", True),
    ("ADD_PAYMENT_INFO_STEP", True),
    ("k7Qz9xW2pL4vN8", False),  # a short token: letters and digits mixed
    ("3f1c9a9e2b7d4c1e", False),
    ("8392017465839201", False),  # digits only
    ("QwErTyUiOpAsDfGhJkLz", False),  # letters only, both cases mixed at random
    ("sPotiFyCapiToKen42x", False),
    ("x" * 41, False),
    (5, True),
])
def test_a_setting_is_quoted_only_when_it_reads_as_a_word(value, shown):
    assert privacy.showable_setting(value) is shown
    assert ("not shown" not in privacy.shown_setting(value)) is shown
