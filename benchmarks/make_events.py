#!/usr/bin/env python3
"""Generate a Singer stream of Freshpaint-style analytics events for the benchmark.

The file looks like what a warehouse export (a Singer tap reading a Freshpaint/Segment-style
events table) carries: one SCHEMA with declared column types, one RECORD per event with the
same 16 columns every time (null where a value does not apply), and a STATE bookmark after
every 1000 records. Events come in time order over the 25 days before ``anchor``.

Personal data is messy the way real exports are: emails with stray spaces and any case (about
10% of users pre-hashed to 64 hex digits), phones in the forms people type them (some
national-only, which the target drops with a warning, about 5% pre-hashed), IPv4/IPv6 from the
documentation ranges (some IPv6 written out in full), app and web device ids. Phone numbers
are fictional (NANP 555-01xx, Ofcom drama ranges).

Users are drawn from a pool (default N/8 users, so each appears about 8 times, as in real
funnels): the hashing caches of the target see repeats at a realistic rate. The pool size
matters for speed and is reported.

About 1% of records are invalid on purpose, one problem each, of four kinds the target must
reject: an event time days in the future, an unknown event name, a PURCHASE without currency,
no identifier at all. Every other record is valid, so ``valid`` in the returned counts is
exactly the number of events the API must receive.

Deterministic: the same seed, size, pool and anchor give a byte-identical file. The anchor
defaults to the current hour (UTC), so that all valid times are in the past and within the
API's window; pass ``--anchor`` for a fixed file.

    python benchmarks/make_events.py --events 200000 --out /tmp/events.jsonl
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import json
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

STREAM = "conversions"
STATE_EVERY = 1000
SPAN = timedelta(days=25)
INVALID_RATE = 0.01
INVALID_KINDS = ("future_time", "unknown_event_name", "purchase_without_currency",
                 "no_identifier")

# Warehouse column types, as a tap reading the events table declares them.
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "$event_id": {"type": ["string"]},
        "spotify_event_name": {"type": ["null", "string"]},
        "$event_time": {"type": ["null", "string"], "format": "date-time"},
        "email": {"type": ["null", "string"]},
        "phone": {"type": ["null", "string"]},
        "$ip": {"type": ["null", "string"]},
        "$device_id": {"type": ["null", "string"]},
        "$user_agent": {"type": ["null", "string"]},
        "$action_source": {"type": ["null", "string"]},
        "event_source_url": {"type": ["null", "string"]},
        "amount": {"type": ["null", "number"]},
        "currency": {"type": ["null", "string"]},
        "content_name": {"type": ["null", "string"]},
        "content_category": {"type": ["null", "string"]},
        "opt_out_targeting": {"type": ["null", "boolean"]},
        "$spclid": {"type": ["null", "string"]},
    },
}
KEY_PROPERTIES = ["$event_id"]

# (spelling in the export, Spotify name it resolves to, weight): a shop's funnel.
EVENT_NAMES: list[tuple[str, str, int]] = [
    ("page_view", "VIEW", 18),
    ("Page Viewed", "VIEW", 12),
    ("VIEW", "VIEW", 4),
    ("Product Viewed", "PRODUCT", 14),
    ("view_item", "PRODUCT", 6),
    ("add_to_cart", "ADD_TO_CART", 8),
    ("Product Added", "ADD_TO_CART", 4),
    ("begin_checkout", "CHECK_OUT", 4),
    ("Checkout Started", "CHECK_OUT", 3),
    ("PURCHASE", "PURCHASE", 4),
    ("Order Completed", "PURCHASE", 8),
    ("Signed Up", "SIGN_UP", 3),
    ("sign_up", "SIGN_UP", 2),
    ("LEAD", "LEAD", 2),
    ("generate_lead", "LEAD", 1),
]
PURCHASE_SPELLINGS = ["PURCHASE", "Order Completed", "purchase"]
UNKNOWN_NAMES = ["Coupon Applied", "wishlist_add", "Serch", "Cart Abandoned"]

# (content_name, price, Google Product Taxonomy id)
PRODUCTS = [
    ("Linen Wrap Dress", 89.0, "2271"),
    ("Silk Slip Dress", 129.0, "2271"),
    ("Organic Cotton Tee", 24.5, "212"),
    ("Oxford Shirt", 49.99, "212"),
    ("Wool Overcoat", 249.0, "5598"),
    ("Rain Shell", 139.0, "3066"),
    ("Quilted Vest", 79.0, "1831"),
    ("Pleated Midi Skirt", 64.0, "1581"),
    ("Running Tights", 45.0, "5322"),
    ("Cotton Pyjama Set", 55.0, "2580"),
    ("Leather Tote", 175.0, "3032"),
    ("Gold Pendant Necklace", 58.0, "196"),
    ("Canvas Sneakers", 72.0, "187"),
    ("Tortoise Sunglasses", 110.0, "178"),
    ("Hydrating Face Cream", 32.0, "567"),
]
CURRENCIES = ["usd", "USD", "USD", "gbp", "GBP", "EUR", "eur", " usd "]
FIRST = ["jane", "amara", "oliver", "priya", "mateo", "sofia", "liam", "hannah", "kenji",
         "chloe", "noah", "fatima", "lucas", "isla", "ethan", "zara", "aiden", "maya"]
LAST = ["doe", "okafor", "smith", "patel", "garcia", "rossi", "murphy", "berg", "tanaka",
        "martin", "williams", "haddad", "silva", "campbell", "brown", "khan", "kelly"]
DOMAINS = ["example.com", "example.org", "example.net", "mail.example.com"]
US_AREAS = ["415", "212", "646", "312", "206", "617", "303", "512", "305", "702"]
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.6778.81 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
]
APP_USER_AGENTS = ["LinenLane/4.12.0 (iPhone; iOS 18.1; Scale/3.00)",
                   "LinenLane/4.12.1 (Android 14; Pixel 8)"]
OFFSETS = [timezone(timedelta(hours=h, minutes=m))
           for h, m in ((2, 0), (-5, 0), (5, 30), (-8, 0), (1, 0), (9, 0))]


@dataclass(frozen=True)
class User:
    """One shopper: what the export knows about them, fixed across their events."""

    email: str | None  # canonical lower-case address, or a pre-hashed digest
    email_hashed: bool
    phone: tuple[str, str] | None  # ("us" | "uk" | "hashed", number digits or digest)
    ips: tuple[str, ...]
    device_id: str | None
    app: bool
    user_agent: str


def _uuid(rng: random.Random, upper: bool = False) -> str:
    h = f"{rng.getrandbits(128):032x}"
    text = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:]}"
    return text.upper() if upper else text


def _ipv6(rng: random.Random) -> str:
    groups = [rng.getrandbits(16) for _ in range(3)]
    if rng.random() < 0.2:  # written out in full, as some exports do
        tail = f":0000:0000:{rng.getrandbits(16):04x}"
        return "2001:0db8:" + ":".join(f"{g:04x}" for g in groups) + tail
    return "2001:db8:" + ":".join(f"{g:x}" for g in groups) + f"::{rng.getrandbits(16):x}"


def _ipv4(rng: random.Random) -> str:
    net = rng.choice(("192.0.2.", "198.51.100.", "203.0.113."))
    return net + str(rng.randrange(1, 255))


def make_user(rng: random.Random, n: int) -> User:
    app = rng.random() < 0.3
    email: str | None = None
    hashed = False
    if rng.random() < 0.85:
        local = f"{rng.choice(FIRST)}.{rng.choice(LAST)}{n}"
        email = f"{local}@{rng.choice(DOMAINS)}"
        if rng.random() < 0.10:  # the source system already hashed it
            email = hashlib.sha256(email.encode()).hexdigest()
            hashed = True
    phone: tuple[str, str] | None = None
    r = rng.random()
    if r < 0.03:
        phone = ("hashed", hashlib.sha256(f"+1415555{n % 10000:04d}".encode()).hexdigest())
    elif r < 0.40:
        phone = ("us", f"{rng.choice(US_AREAS)}55501{rng.randrange(100):02d}")
    elif r < 0.60:
        if rng.random() < 0.5:
            phone = ("uk", f"2079460{rng.randrange(1000):03d}")
        else:
            phone = ("uk", f"7700900{rng.randrange(1000):03d}")
    ips = tuple(_ipv6(rng) if rng.random() < 0.3 else _ipv4(rng)
                for _ in range(rng.choice((1, 1, 2))))
    device = None
    if rng.random() < 0.8:
        device = _uuid(rng, upper=app)  # IDFA-style upper case in the app
    agent = rng.choice(APP_USER_AGENTS if app else USER_AGENTS)
    return User(email, hashed, phone, ips, device, app, agent)


def messy_email(rng: random.Random, email: str, hashed: bool) -> str:
    if hashed:
        return email.upper() if rng.random() < 0.2 else email
    r = rng.random()
    if r < 0.45:
        return email
    if r < 0.65:
        local, _, domain = email.partition("@")
        return f"{local.title()}@{domain.title()}"
    if r < 0.80:
        return f"  {email} "
    if r < 0.90:
        return email.upper()
    local, _, domain = email.partition("@")
    return f" {local.capitalize()}@{domain.upper()}"


def messy_phone(rng: random.Random, phone: tuple[str, str]) -> str:
    kind, d = phone
    if kind == "hashed":
        return d
    r = rng.random()
    if kind == "us":
        if r < 0.35:
            return f"+1 ({d[:3]}) {d[3:6]}-{d[6:]}"
        if r < 0.55:
            return f"+1 {d[:3]}-{d[3:6]}-{d[6:]}"
        if r < 0.75:
            return f"+1{d}"
        if r < 0.92:
            return f"+1.{d[:3]}.{d[3:6]}.{d[6:]}"
        return f"({d[:3]}) {d[3:6]}-{d[6:]}"  # national only: dropped, with a warning
    if d.startswith("20"):
        if r < 0.5:
            return f"+44 20 {d[2:6]} {d[6:]}"
        if r < 0.8:
            return f"+44{d}"
        if r < 0.92:
            return f"+44 (0)20 {d[2:6]} {d[6:]}"
        return f"020 {d[2:6]} {d[6:]}"  # national only: dropped, with a warning
    if r < 0.6:
        return f"+44 {d[:4]} {d[4:]}"
    if r < 0.92:
        return f"+44{d}"
    return f"0{d[:4]} {d[4:]}"  # national only: dropped, with a warning


def format_time(rng: random.Random, moment: datetime) -> str:
    """ISO 8601 as exports write it: Z, an offset, +00:00, or no offset at all (UTC)."""
    r = rng.random()
    if r < 0.45:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    if r < 0.65:
        return moment.astimezone(rng.choice(OFFSETS)).isoformat(timespec="seconds")
    if r < 0.85:
        return moment.replace(tzinfo=None).isoformat(timespec="seconds")
    return moment.isoformat(timespec="microseconds")


def _encoder() -> Callable[[Any], str]:
    """Compact JSON: msgspec when installed (the target's venv has it), else the stdlib."""
    try:
        import msgspec
    except ImportError:
        return json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    encode = msgspec.json.Encoder().encode
    return lambda obj: encode(obj).decode()


def default_anchor() -> datetime:
    return datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)


def generate(
    out: Path,
    events: int,
    *,
    seed: int = 1,
    users: int | None = None,
    invalid_rate: float = INVALID_RATE,
    anchor: datetime | None = None,
) -> dict[str, Any]:
    """Write the stream to `out`; return its counts (``valid`` = events the API must get)."""
    rng = random.Random(seed)
    anchor = anchor or default_anchor()
    if anchor < datetime.now(timezone.utc) - timedelta(days=1):
        # The "future" records (anchor + 2..4 days) would no longer be in the future.
        raise ValueError("anchor must not be more than a day in the past")
    pool_size = max(1, users if users is not None else events // 8)
    pool: list[User | None] = [None] * pool_size  # users made on first appearance
    start_s = (anchor - SPAN).timestamp()
    step_s = SPAN.total_seconds() / max(events, 1)
    rnd = rng.random
    names = [n for n, _, _ in EVENT_NAMES]
    spotify = {n: s for n, s, _ in EVENT_NAMES}
    cum_weights = []
    total = 0
    for _, _, w in EVENT_NAMES:
        total += w
        cum_weights.append(total)
    invalid: dict[str, int] = dict.fromkeys(INVALID_KINDS, 0)
    dumps = _encoder()
    seen_users = 0
    order = 1_000_000
    states = 0
    started = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        f.write(dumps({"type": "SCHEMA", "stream": STREAM, "schema": SCHEMA,
                       "key_properties": KEY_PROPERTIES}) + "\n")
        buf: list[str] = []
        last_time = ""
        for i in range(events):
            u = rng.randrange(pool_size)
            user = pool[u]
            if user is None:
                user = pool[u] = make_user(rng, u)
                seen_users += 1
            name = names[bisect.bisect(cum_weights, rnd() * total)]
            kind = spotify[name]
            moment = datetime.fromtimestamp(start_s + step_s * i + rnd(), timezone.utc)
            source = "APP" if user.app else "WEB"
            if kind == "PURCHASE" and user.email and not user.app and rng.random() < 0.15:
                source = "OFFLINE"  # bought in a shop, matched by email only
            product = rng.choice(PRODUCTS)
            if kind == "PURCHASE":
                order += 1 + rng.randrange(3)
                event_id = f"ORD-{order}"
            else:
                event_id = _uuid(rng)
            offline = source == "OFFLINE"
            has_product = kind in ("PRODUCT", "ADD_TO_CART", "CHECK_OUT", "PURCHASE")
            has_amount = kind in ("ADD_TO_CART", "CHECK_OUT", "PURCHASE")
            quantity = 1 + (rng.random() < 0.3) + (rng.random() < 0.1)
            spclid = None
            if not offline and rng.random() < 0.2:
                spclid = f"{rng.getrandbits(96):024x}"
            url = None
            if source == "WEB":
                slug = product[0].lower().replace(" ", "-")
                url = f"https://shop.example.com/products/{slug}"
                if spclid:
                    url += f"?spclid={spclid}"
            record: dict[str, Any] = {
                "$event_id": event_id,
                "spotify_event_name": name,
                "$event_time": format_time(rng, moment),
                "email": (messy_email(rng, user.email, user.email_hashed)
                          if user.email else None),
                "phone": messy_phone(rng, user.phone) if user.phone else None,
                "$ip": None if offline else rng.choice(user.ips),
                "$device_id": None if offline else user.device_id,
                "$user_agent": None if offline else user.user_agent,
                "$action_source": source if rng.random() < 0.8 else source.title(),
                "event_source_url": url,
                "amount": round(product[1] * quantity, 2) if has_amount else None,
                "currency": rng.choice(CURRENCIES) if has_amount else None,
                "content_name": product[0] if has_product else None,
                "content_category": product[2] if has_product else None,
                "opt_out_targeting": (rng.random() < 0.05) if rng.random() < 0.9 else None,
                "$spclid": spclid,
            }
            if rng.random() < invalid_rate:
                bad = rng.choice(INVALID_KINDS)
                invalid[bad] += 1
                if bad == "future_time":
                    ahead = anchor + timedelta(days=2 + rng.random() * 2)
                    record["$event_time"] = ahead.isoformat(timespec="seconds")
                elif bad == "unknown_event_name":
                    record["spotify_event_name"] = rng.choice(UNKNOWN_NAMES)
                elif bad == "purchase_without_currency":
                    record["spotify_event_name"] = rng.choice(PURCHASE_SPELLINGS)
                    record["amount"] = round(product[1] * quantity, 2)
                    record["currency"] = None
                else:
                    for key in ("email", "phone", "$ip", "$device_id"):
                        record[key] = None
            else:
                last_time = record["$event_time"]
            buf.append(dumps({"type": "RECORD", "stream": STREAM, "record": record}))
            if (i + 1) % STATE_EVERY == 0 or i + 1 == events:
                state = {"bookmarks": {STREAM: {"replication_key": "$event_time",
                                                "replication_key_value": last_time}}}
                buf.append(dumps({"type": "STATE", "value": state}))
                states += 1
                f.write("\n".join(buf) + "\n")
                buf = []
    bad_total = sum(invalid.values())
    return {
        "path": str(out),
        "events": events,
        "valid": events - bad_total,
        "invalid": bad_total,
        "invalid_by_kind": invalid,
        "user_pool": pool_size,
        "users_seen": seen_users,
        "properties_per_record": len(SCHEMA["properties"]),
        "states": states,
        "bytes": out.stat().st_size,
        "seed": seed,
        "anchor": anchor.isoformat(),
        "seconds": round(time.perf_counter() - started, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--out", type=Path, required=True, help="Singer stream file to write")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--users", type=int, default=None,
                        help="size of the user pool (default: events/8)")
    parser.add_argument("--invalid-rate", type=float, default=INVALID_RATE)
    parser.add_argument("--anchor", type=datetime.fromisoformat, default=None,
                        help="latest event time, ISO 8601 with offset (default: this hour, UTC)")
    parser.add_argument("--meta", type=Path, default=None,
                        help="also write the counts as JSON here")
    args = parser.parse_args(argv)
    if args.anchor is not None and args.anchor.tzinfo is None:
        parser.error("--anchor needs an offset, e.g. 2026-11-23T18:00:00+00:00")
    meta = generate(args.out, args.events, seed=args.seed, users=args.users,
                    invalid_rate=args.invalid_rate, anchor=args.anchor)
    text = json.dumps(meta, sort_keys=True)
    if args.meta is not None:
        args.meta.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
