"""The demo sample: regenerable, and made of reserved / example data only."""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample" / "events.jsonl"
RECORDS = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
EXPECTED = json.loads((REPO / "sample" / "expected.json").read_text(encoding="utf-8"))

DOC_NETWORKS = [
    ipaddress.ip_network(n)
    for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
]
HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


def _values(record: dict, key: str) -> list:
    value = record.get(key)
    return value if isinstance(value, list) else [value]


def test_generator_reproduces_the_committed_sample() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "sample" / "make_events.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_sample_size_and_rejects() -> None:
    assert len(RECORDS) >= 220
    assert EXPECTED["records"] == len(RECORDS)
    assert 12 <= EXPECTED["rejected"] <= 20


def test_emails_are_example_domains_or_hashes() -> None:
    for record in RECORDS:
        for email in _values(record, "email"):
            if email is None or not email.strip() or HEX64.match(email):
                continue
            domain = email.strip().lower().rsplit("@", 1)[1]
            assert domain in {"example.com", "example.org"}, email


def test_phones_are_fictional() -> None:
    for record in RECORDS:
        for phone in _values(record, "phone"):
            if phone is None or HEX64.match(phone):
                continue
            digits = re.sub(r"\D", "", phone)
            if len(digits) < 10:  # the deliberately unusable ones ("12345", "n/a")
                continue
            national = digits[1:] if digits.startswith("1") else digits
            fictional = (
                re.fullmatch(r"\d{3}55501\d\d", national)  # NANP 555-0100..0199
                or re.fullmatch(r"(44|0)20794\d{5}", digits)  # London drama range
                or re.fullmatch(r"(44|0)7700900\d{3}", digits)  # mobile drama range
                or re.fullmatch(r"(44|0)1614960\d{3}", digits)  # Manchester drama range
            )
            assert fictional, phone


def test_ips_are_documentation_addresses() -> None:
    for record in RECORDS:
        ip = record.get("$ip")
        if not ip or ip == "unknown":
            continue
        address = ipaddress.ip_address(ip)
        assert any(address in net for net in DOC_NETWORKS), ip


def test_covers_the_forms_the_target_must_read() -> None:
    names = {r.get("spotify_event_name") for r in RECORDS}
    for spelling in (
        "PURCHASE",
        "Purchase",
        "add_to_cart",
        "Add_Cart",
        "begin_checkout",
        "page_view",
        "Order Completed",
        "Product Added",
        "Signed Up",
        "generate_lead",
        "Custom_Event_1",
        "ALIAS",
        "CUSTOM_EVENT_5",
    ):
        assert spelling in names, spelling
    events_only = {r["event"] for r in RECORDS if "spotify_event_name" not in r}
    assert {"Order Completed", "Product Viewed"} <= events_only
    times = [r.get("$event_time") for r in RECORDS]
    assert any(isinstance(t, str) and t.endswith("Z") for t in times)
    assert any(isinstance(t, str) and re.search(r"[+-]\d\d:\d\d$", t) for t in times)
    assert any(isinstance(t, str) and re.fullmatch(r"[\d\-T:]{19}", t) for t in times)
    assert any(isinstance(t, int) and t < 10**11 for t in times)  # epoch seconds
    assert any(isinstance(t, int) and t > 10**11 for t in times)  # epoch milliseconds
    assert any(isinstance(r.get("amount"), str) for r in RECORDS)
    assert any(isinstance(r.get("amount"), (int, float)) for r in RECORDS)
    assert any(isinstance(r.get("email"), list) for r in RECORDS)
    assert any("$event_id" not in r for r in RECORDS)
