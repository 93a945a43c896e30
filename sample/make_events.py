#!/usr/bin/env python3
"""Write the demo input ``sample/events.jsonl`` (and ``sample/expected.json``).

Deterministic: the same seed always writes byte-identical files, so the sample can be
regenerated and checked (``python sample/make_events.py --check``).

The events look like what a Freshpaint-style analytics export holds for a small clothing
shop that sells on the web, in an app and in its shops: shopper journeys (page view, product
view, add to cart, checkout, purchase), leads, sign-ups, alias events, custom events and
searches, spelled the many ways real tag setups spell them. Personal data is reserved or
example data only: e-mail addresses at example.com / example.org, phone numbers from the
fictional ranges (NANP 555-0100..0199, Ofcom's drama numbers), IP addresses from the
documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32).

About 16 records are broken on purpose, one problem each, so that a run shows rejections:
an event time in 2099, no identifier at all, a PURCHASE without currency or amount, an
unknown event name, an invalid currency, action source, URL, amount or opt-out flag.
``expected.json`` lists them with the reason, and the explicit event ids of the records the
target should accept, for the end-to-end test. It assumes the settings of meltano.yml:
``phone_default_country: GB``, no ``default_event_name`` and
``event_name_map: {"Search": "CUSTOM_EVENT_1"}``.

The same vocabulary also makes **benchmark streams** of any size (benchmarks/run.py):

    python sample/make_events.py --events 200000 --out /tmp/events.jsonl [--clean]

a Singer file as a warehouse export of such events carries it: one SCHEMA, one RECORD per
event with the same 16 columns (null where a value does not apply), a STATE every 1000
records, events in time order over the 25 days before ``--anchor`` (default: this hour).
Users come from a pool (default N/8, so the target's caches see repeats at a realistic
rate). *Messy* (the default): emails and phones in the spellings people type, some
pre-hashed, some national-only phones (dropped with a warning), times in several forms, and
about 1% of records invalid on purpose, one problem each (a time in the future, an unknown
event name, a PURCHASE without currency, no identifier). *Clean* (``--clean``): every value
in its canonical form and every record valid. The JSON summary it prints says how many
events the API must receive (``valid``). Deterministic for a given seed, size, pool and
anchor.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import json
import random
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

SEED = 20261123
HERE = Path(__file__).resolve().parent
EVENTS_FILE = HERE / "events.jsonl"
EXPECTED_FILE = HERE / "expected.json"

# Every record carries these keys, in this order (null where a value does not apply).
# `$event_id` is left out entirely on some records, `spotify_event_name` on the records
# whose Spotify name comes from the analytics `event` name.
KEYS = [
    "event",
    "spotify_event_name",
    "$event_id",
    "$event_time",
    "distinct_id",
    "email",
    "phone",
    "$ip",
    "$device_id",
    "$user_agent",
    "$spclid",
    "$action_source",
    "opt_out_targeting",
    "event_source_url",
    "amount",
    "currency",
    "content_name",
    "content_category",
    "gender",
    "age_group",
]

START = datetime(2025, 1, 6, 8, 0, tzinfo=timezone.utc)
END = datetime(2026, 11, 16, 20, 0, tzinfo=timezone.utc)

FIRST = [
    "Jane",
    "Amara",
    "Oliver",
    "Priya",
    "Mateo",
    "Sofia",
    "Liam",
    "Hannah",
    "Kenji",
    "Chloe",
    "Noah",
    "Fatima",
    "Lucas",
    "Isla",
    "Ethan",
    "Zara",
    "Aiden",
    "Maya",
    "Samuel",
    "Elena",
    "Tom",
    "Grace",
    "Ravi",
    "Nora",
    "Felix",
    "Leah",
    "Omar",
    "Ruby",
    "Daniel",
    "Ivy",
    "Jonas",
    "Mia",
    "Arjun",
    "Lena",
    "Theo",
    "Alice",
]
LAST = [
    "Doe",
    "Okafor",
    "Smith",
    "Patel",
    "Garcia",
    "Rossi",
    "Murphy",
    "Berg",
    "Tanaka",
    "Martin",
    "Williams",
    "Haddad",
    "Silva",
    "Campbell",
    "Brown",
    "Khan",
    "Kelly",
    "Cohen",
    "Adeyemi",
    "Novak",
    "Wright",
    "Evans",
    "Sharma",
    "Lind",
    "Weber",
    "Levi",
    "Aziz",
    "Hughes",
    "Jones",
    "Chen",
    "Fischer",
    "Moreau",
    "Mehta",
    "Vogel",
    "Hall",
    "Reed",
]

# Phone numbers in the forms people type them. GB national numbers rely on
# phone_default_country GB; US numbers always carry +1 (written national, a US number would
# be read as a GB one under that default).
PHONES = [
    "+1 (415) 555-0132",
    "+1 415.555.0199",
    "+1-646-555-0178",
    "+1 312 555 0114",
    "+12065550161",
    "020 7946 0958",
    "+44 20 7946 0958",
    "020 7946 0321",
    "07700 900123",
    "+44 7700 900456",
    "07700900871",
    "0161 496 0321",
    "+44 161 496 0755",
    "(020) 7946 0412",
]

IPV4 = (
    [f"192.0.2.{i}" for i in (14, 27, 33, 58, 91, 120, 177, 203)]
    + [f"198.51.100.{i}" for i in (7, 42, 66, 99, 150, 231)]
    + [f"203.0.113.{i}" for i in (5, 19, 64, 88, 142, 250)]
)
IPV6 = [
    "2001:db8:85a3::8a2e:370:7334",
    "2001:db8:4f2a::17",
    "2001:db8:0:1::a1",
    "2001:db8:cafe:12::5",
    "2001:db8:1234:5678::beef",
    "2001:db8::2:1",
]

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
APP_USER_AGENTS = [
    "LinenLane/4.12.0 (iPhone; iOS 18.1; Scale/3.00)",
    "LinenLane/4.12.1 (Android 14; Pixel 8)",
]

# (content_name, price, category as id string, id number, or taxonomy path)
PRODUCTS = [
    (
        "Linen Wrap Dress",
        "89.00",
        [
            "2271",
            2271,
            "Apparel & Accessories > Clothing > Dresses",
            "apparel & accessories > clothing > dresses",
        ],
    ),
    ("Silk Slip Dress", "129.00", ["2271", "Apparel & Accessories > Clothing > Dresses"]),
    ("Organic Cotton Tee", "24.50", ["212", "Apparel & Accessories > Clothing > Shirts & Tops"]),
    ("Oxford Shirt", "49.99", ["212", 212]),
    (
        "Wool Overcoat",
        "249.00",
        ["5598", "Apparel & Accessories > Clothing > Outerwear > Coats & Jackets"],
    ),
    ("Pleated Midi Skirt", "64.00", ["1581", "Apparel & Accessories > Clothing > Skirts"]),
    (
        "Leather Tote",
        "175.00",
        ["3032", "Apparel & Accessories > Handbags, Wallets & Cases > Handbags"],
    ),
    ("Gold Pendant Necklace", "58.00", ["196", "Apparel & Accessories > Jewelry > Necklaces"]),
    ("Canvas Sneakers", "72.00", ["187", "Apparel & Accessories > Shoes", 187]),
    (
        "Hydrating Face Cream",
        "32.00",
        ["567", "Health & Beauty > Personal Care > Cosmetics > Skin Care"],
    ),
    ("Gift Card", "50.00", ["Gift Cards", None]),  # free text: left out with a warning
    ("Summer Bundle", "99.00", ["Summer Sale"]),  # free text: left out with a warning
]

CURRENCIES = ["gbp", "GBP", "GBP", "usd", "USD", "EUR", "eur"]
AGE_GROUPS = ["18-24", "25-34", "35-44", "45-54", "55-64", "65+"]
GENDERS = ["female", "F", "f", "FEMALE", "male", "M", "m", "Male"]

# Spellings of each Spotify name found in the wild (spotify_event_name values), and the
# analytics `event` names that resolve on their own when spotify_event_name is absent.
SPELLINGS = {
    "VIEW": ["VIEW", "page_view", "Page_View", "view", "Page Viewed", "Page Views"],
    "PRODUCT": ["PRODUCT", "View_Product", "view_item", "product", "Product Viewed"],
    "ADD_TO_CART": [
        "ADD_TO_CART",
        "add_to_cart",
        "Add_Cart",
        "addtocart",
        "Product Added",
        "Add to Cart",
        "ADDTOCART",
    ],
    "CHECK_OUT": [
        "CHECK_OUT",
        "begin_checkout",
        "Start_Checkout",
        "checkout",
        "Checkout Started",
        "Check Out",
        "CHECKOUT",
    ],
    "PURCHASE": ["PURCHASE", "Purchase", "purchase", "Order Completed"],
    "LEAD": ["LEAD", "Lead", "generate_lead", "lead"],
    "SIGN_UP": [
        "SIGN_UP",
        "Sign_Up",
        "sign_up",
        "signup",
        "Signed Up",
        "Complete Registration",
        "Subscribe",
    ],
    "ALIAS": ["ALIAS", "Alias", "alias"],
    "CUSTOM_EVENT_1": ["Custom_Event_1", "CUSTOM_EVENT_1"],
    "CUSTOM_EVENT_2": ["CUSTOM_EVENT_2", "custom_event_2"],
    "CUSTOM_EVENT_3": ["custom event 3", "Custom_Event_3"],
    "CUSTOM_EVENT_4": ["Custom-Event-4", "CUSTOM_EVENT_4"],
    "CUSTOM_EVENT_5": ["CUSTOM_EVENT_5", "Custom_Event_5"],
}
EVENT_ONLY = {
    "VIEW": "Page Viewed",
    "PRODUCT": "Product Viewed",
    "ADD_TO_CART": "Product Added",
    "CHECK_OUT": "Checkout Started",
    "PURCHASE": "Order Completed",
    "LEAD": "generate_lead",
    "SIGN_UP": "Signed Up",
}
# Analytics names sent alongside a spotify_event_name (they need not resolve).
ANALYTICS_NAME = {
    "VIEW": ["$pageview", "Page Viewed"],
    "PRODUCT": ["Product Viewed", "Product Clicked"],
    "ADD_TO_CART": ["Product Added", "Added To Bag"],
    "CHECK_OUT": ["Checkout Started", "Checkout Step Viewed"],
    "PURCHASE": ["Order Completed", "Payment Info Entered"],
    "LEAD": ["Stylist Appointment Requested", "Newsletter Form Submitted"],
    "SIGN_UP": ["Signed Up", "Account Created"],
    "ALIAS": ["Identify", "Loyalty Card Linked"],
    "CUSTOM_EVENT_1": ["Store Locator Used"],
    "CUSTOM_EVENT_2": ["Size Guide Opened"],
    "CUSTOM_EVENT_3": ["Back In Stock Alert Set"],
    "CUSTOM_EVENT_4": ["Video Lookbook Played"],
    "CUSTOM_EVENT_5": ["Gift Wrap Selected"],
}
ID_PREFIX = {
    "VIEW": "pv",
    "PRODUCT": "prd",
    "ADD_TO_CART": "atc",
    "CHECK_OUT": "chk",
    "PURCHASE": "ord",
    "LEAD": "lead",
    "SIGN_UP": "su",
    "ALIAS": "alias",
    "SEARCH": "srch",
}
PAGES = {
    "VIEW": ["/", "/new-in", "/dresses", "/sale", "/journal/autumn-edit"],
    "LEAD": ["/stylist", "/newsletter"],
    "SIGN_UP": ["/account/register"],
    "CHECK_OUT": ["/checkout"],
    "PURCHASE": ["/checkout/thank-you"],
    "ADD_TO_CART": ["/cart"],
}
SHOP = "https://shop.example.com"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Persona:
    """One shopper, with the messy spellings of their e-mail that various sources send."""

    def __init__(self, rng: random.Random, idx: int) -> None:
        first, last = FIRST[idx % len(FIRST)], LAST[(idx * 7) % len(LAST)]
        self.distinct_id = f"fp_{uuid.UUID(int=rng.getrandbits(128), version=4).hex[:16]}"
        primary = f"{first.lower()}.{last.lower()}@example.com"
        secondary = f"{first[0].lower()}{last.lower()}@example.org"
        self.email_forms: list[Any] = [
            primary,
            f"  {first}.{last}@Example.COM ",
            primary.upper(),
            [primary, secondary],
            sha256(primary),
            sha256(primary).upper(),
        ]
        if idx % 9 == 4:  # some shoppers are only known by device / IP / phone
            self.email_forms = [None]
        self.phone: Any = PHONES[idx % len(PHONES)] if idx % 3 != 2 else None
        if idx % 11 == 5:
            self.phone = sha256("+447700900077")  # already hashed upstream
        if idx % 13 == 7:
            self.phone = ["n/a", "+44 7700 900314"]  # the first usable one counts
        self.ip = IPV6[idx % len(IPV6)] if idx % 4 == 3 else IPV4[idx % len(IPV4)]
        self.device_id = str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper()
        self.user_agent = USER_AGENTS[idx % len(USER_AGENTS)]
        self.channel = ["web", "web", "app", "web", "app", "offline", "web"][idx % 7]
        self.gender = GENDERS[idx % len(GENDERS)] if idx % 5 != 0 else None
        self.age_group = AGE_GROUPS[idx % len(AGE_GROUPS)] if idx % 4 != 1 else None


def fmt_time(rng: random.Random, moment: datetime) -> Any:
    """Write an instant in one of the forms analytics exports use."""
    style = rng.choices(
        ["z", "z_ms", "offset", "naive", "epoch_s", "epoch_ms"], weights=[5, 2, 2, 2, 2, 2]
    )[0]
    if style == "z":
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if style == "z_ms":
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    if style == "offset":
        hours = rng.choice([2, 1, -5, 5.5])
        tz = timezone(timedelta(hours=hours))
        return moment.astimezone(tz).replace(microsecond=0).isoformat()
    if style == "naive":
        return moment.strftime("%Y-%m-%dT%H:%M:%S")
    if style == "epoch_s":
        return int(moment.timestamp())
    return int(moment.timestamp()) * 1000 + moment.microsecond // 1000


class Generator:
    def __init__(self) -> None:
        self.rng = random.Random(SEED)
        self.personas = [Persona(self.rng, i) for i in range(36)]
        self.counters: dict[str, int] = {}
        self.records: list[tuple[datetime, dict[str, Any]]] = []
        self.spelling_queue: dict[str, list[str]] = {}

    def next_id(self, kind: str) -> str:
        base = 10000 if kind == "PURCHASE" else 500
        self.counters[kind] = self.counters.get(kind, 0) + 1
        prefix = ID_PREFIX.get(kind) or "ce" + kind.rsplit("_", 1)[-1]
        return f"{prefix}-{base + 17 + self.counters[kind] * 3}"

    def spelling(self, name: str) -> str:
        """Each spelling of a name in turn (reshuffled each round), so all of them occur."""
        queue = self.spelling_queue.setdefault(name, [])
        if not queue:
            queue.extend(SPELLINGS[name])
            self.rng.shuffle(queue)
        return queue.pop()

    def spclid(self) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        return "".join(self.rng.choice(alphabet) for _ in range(22))

    def event(
        self,
        name: str,
        persona: Persona,
        moment: datetime,
        product: tuple[str, str, list[Any]] | None = None,
        *,
        event_only: bool = False,
        analytics: str | None = None,
        keep_id: bool = True,
        quantity: int = 1,
        channel: str | None = None,
    ) -> dict[str, Any]:
        rng = self.rng
        rec: dict[str, Any] = dict.fromkeys(KEYS)
        kind = "SEARCH" if analytics == "Search" else name
        if event_only:
            del rec["spotify_event_name"]
            rec["event"] = analytics or EVENT_ONLY[name]
        else:
            rec["spotify_event_name"] = self.spelling(name)
            rec["event"] = analytics or rng.choice(ANALYTICS_NAME[name])
        if keep_id:
            rec["$event_id"] = self.next_id(kind)
        else:
            del rec["$event_id"]
        rec["$event_time"] = fmt_time(rng, moment)
        rec["distinct_id"] = persona.distinct_id
        rec["email"] = rng.choice(persona.email_forms)
        if persona.phone is not None and rng.random() < 0.6:
            rec["phone"] = persona.phone
        channel = channel or persona.channel
        if channel == "offline" and name not in ("PURCHASE", "LEAD", "ALIAS"):
            channel = "web"  # shop customers still browse online
        if channel == "web":
            rec["$ip"] = persona.ip
            rec["$user_agent"] = persona.user_agent
            rec["$action_source"] = rng.choice(["web", "WEB", "Web", "web", None])
            if rng.random() < 0.35:
                rec["$spclid"] = self.spclid()
            path = rng.choice(PAGES.get(name, ["/products"]))
            if product and name in ("PRODUCT", "ADD_TO_CART"):
                path = "/products/" + product[0].lower().replace(" ", "-")
            url = SHOP + path
            if rec["$spclid"]:
                url += "?spclid=" + rec["$spclid"]
            rec["event_source_url"] = url
        elif channel == "app":
            rec["$device_id"] = persona.device_id
            rec["$user_agent"] = rng.choice(APP_USER_AGENTS)
            rec["$action_source"] = rng.choice(["app", "APP", "App"])
            if rng.random() < 0.5:
                rec["$ip"] = persona.ip
        else:
            rec["$action_source"] = rng.choice(["OFFLINE", "offline"])
            if rec["email"] is None:  # in a shop, a customer is known by e-mail or phone
                if persona.phone is None:
                    rec["email"] = f"store.customer{len(self.records)}@example.org"
                else:
                    rec["phone"] = persona.phone
        rec["opt_out_targeting"] = rng.choices(
            [False, True, "false", "true", 0, 1, None], weights=[5, 2, 2, 1, 1, 1, 3]
        )[0]
        if product is not None:
            pname, price, categories = product
            rec["content_name"] = pname
            rec["content_category"] = rng.choice(categories)
            if name in ("ADD_TO_CART", "CHECK_OUT", "PURCHASE", "PRODUCT"):
                total = float(price) * quantity
                form = rng.choice(["float", "string", "int", "float"])
                if form == "string":
                    rec["amount"] = f"{total:.2f}"
                elif form == "int" and total == int(total):
                    rec["amount"] = int(total)
                else:
                    rec["amount"] = round(total, 2)
                rec["currency"] = rng.choice(CURRENCIES)
        rec["gender"] = persona.gender
        rec["age_group"] = persona.age_group
        return rec

    def add(self, moment: datetime, rec: dict[str, Any]) -> None:
        self.records.append((moment, rec))

    def random_moment(self) -> datetime:
        span = (END - START).total_seconds()
        return START + timedelta(
            seconds=self.rng.uniform(0, span), microseconds=self.rng.randrange(1_000_000)
        )

    def journeys(self, count: int) -> None:
        """Shopper sessions: VIEW, PRODUCT, ADD_TO_CART, CHECK_OUT, PURCHASE, as far as it gets."""
        rng = self.rng
        steps = ["VIEW", "PRODUCT", "ADD_TO_CART", "CHECK_OUT", "PURCHASE"]
        for _ in range(count):
            persona = rng.choice(self.personas)
            product = rng.choice(PRODUCTS)
            moment = self.random_moment()
            depth = rng.choices([1, 2, 3, 4, 5], weights=[2, 3, 3, 2, 5])[0]
            quantity = rng.choice([1, 1, 1, 2])
            for name in steps[:depth]:
                event_only = name in EVENT_ONLY and rng.random() < 0.2
                keep_id = name == "PURCHASE" or rng.random() > 0.12
                rec = self.event(
                    name,
                    persona,
                    moment,
                    product if name != "VIEW" else None,
                    event_only=event_only,
                    keep_id=keep_id,
                    quantity=quantity,
                )
                self.add(moment, rec)
                moment += timedelta(seconds=rng.randint(20, 900), milliseconds=rng.randint(0, 999))

    def build(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        rng = self.rng
        self.journeys(50)
        for name, count in [
            ("LEAD", 12),
            ("SIGN_UP", 14),
            ("ALIAS", 5),
            ("CUSTOM_EVENT_1", 3),
            ("CUSTOM_EVENT_2", 3),
            ("CUSTOM_EVENT_3", 3),
            ("CUSTOM_EVENT_4", 3),
            ("CUSTOM_EVENT_5", 3),
        ]:
            for _ in range(count):
                persona = rng.choice(self.personas)
                moment = self.random_moment()
                event_only = name in EVENT_ONLY and rng.random() < 0.25
                rec = self.event(
                    name, persona, moment, None, event_only=event_only, keep_id=rng.random() > 0.1
                )
                if name == "ALIAS":  # identifiers only: the shop links a loyalty card
                    rec["opt_out_targeting"] = True
                self.add(moment, rec)
        # Purchases in the shops, matched to a customer by e-mail or phone.
        for _ in range(8):
            persona = rng.choice(self.personas)
            moment = self.random_moment()
            rec = self.event(
                "PURCHASE",
                persona,
                moment,
                rng.choice(PRODUCTS[:10]),
                event_only=rng.random() < 0.25,
                channel="offline",
                quantity=rng.choice([1, 1, 2, 3]),
            )
            self.add(moment, rec)
        # Standalone page views and product views (ads landing traffic).
        for name, count in [("VIEW", 14), ("PRODUCT", 8)]:
            for _ in range(count):
                persona = rng.choice(self.personas)
                moment = self.random_moment()
                product = rng.choice(PRODUCTS) if name == "PRODUCT" else None
                rec = self.event(
                    name,
                    persona,
                    moment,
                    product,
                    event_only=rng.random() < 0.2,
                    keep_id=rng.random() > 0.15,
                )
                self.add(moment, rec)
        # Searches: no Spotify counterpart, resolved through event_name_map to CUSTOM_EVENT_1.
        for _ in range(4):
            persona = rng.choice(self.personas)
            moment = self.random_moment()
            rec = self.event(
                "CUSTOM_EVENT_1", persona, moment, None, event_only=True, analytics="Search"
            )
            rec["content_name"] = rng.choice(["linen dress", "wool coat", "gift card"])
            self.add(moment, rec)
        # A few warnings that do not reject: an IP that is no IP, a phone that cannot be a
        # number, an unknown gender, free-text category, a record without $event_time.
        self._warnings()

        valid = sorted(self.records, key=lambda item: item[0])
        rejects = self._rejects()
        records = [rec for _, rec in valid]
        # Put each broken record somewhere in the stream, deterministically.
        positions = sorted(rng.sample(range(10, len(records)), len(rejects)))
        out: list[dict[str, Any]] = []
        reject_lines: list[dict[str, Any]] = []
        it = iter(zip(positions, rejects, strict=True))
        nxt = next(it, None)
        for i, rec in enumerate(records):
            while nxt is not None and nxt[0] == i:
                out.append(nxt[1][0])
                reject_lines.append(
                    {"line": len(out), "event_id": nxt[1][0].get("$event_id"), "reason": nxt[1][1]}
                )
                nxt = next(it, None)
            out.append(rec)
        accepted_ids = [r["$event_id"] for r in records if r.get("$event_id")]
        all_ids = [r["$event_id"] for r in out if r.get("$event_id")]
        assert len(all_ids) == len(set(all_ids)), "explicit event ids must be unique"
        expected = {
            "records": len(out),
            "accepted": len(records),
            "rejected": len(rejects),
            "accepted_without_event_id": sum(1 for r in records if not r.get("$event_id")),
            "accepted_event_ids": sorted(accepted_ids),
            "rejects": reject_lines,
            "assumes": {
                "phone_default_country": "GB",
                "default_event_name": None,
                "event_name_map": {"Search": "CUSTOM_EVENT_1"},
            },
        }
        return out, expected

    def _warnings(self) -> None:
        rng = self.rng
        p = self.personas
        cases = [
            ("VIEW", p[0], {"$ip": "unknown"}),
            ("PRODUCT", p[1], {"phone": "12345"}),
            ("ADD_TO_CART", p[3], {"gender": "unknown"}),
            ("PRODUCT", p[6], {"content_category": "Summer Sale"}),
            ("SIGN_UP", p[10], {"$event_time": None}),
        ]
        for name, persona, override in cases:
            moment = self.random_moment()
            product = rng.choice(PRODUCTS[:10]) if name in ("PRODUCT", "ADD_TO_CART") else None
            rec = self.event(name, persona, moment, product)
            if rec["email"] is None:
                rec["email"] = "fallback.shopper@example.com"
            rec.update(override)
            self.add(moment, rec)

    def _rejects(self) -> list[tuple[dict[str, Any], str]]:
        rng = self.rng
        p = self.personas
        product = PRODUCTS[0]
        out: list[tuple[dict[str, Any], str]] = []

        def make(
            name: str,
            persona: Persona,
            reason: str,
            override: dict[str, Any],
            *,
            event_only: bool = False,
            with_product: bool = True,
        ) -> None:
            moment = self.random_moment()
            rec = self.event(
                name, persona, moment, product if with_product else None, event_only=event_only
            )
            if rec["email"] is None:
                rec["email"] = "reject.demo@example.com"
            for key, value in override.items():
                if value is _DELETE:
                    rec.pop(key, None)
                else:
                    rec[key] = value
            rec["$event_id"] = rec.get("$event_id") or self.next_id(name)
            out.append((rec, reason))

        no_ids = {"email": None, "phone": None, "$ip": None, "$device_id": None}
        make("PURCHASE", p[2], "event_time in the future", {"$event_time": "2099-03-14T09:26:53Z"})
        make(
            "ADD_TO_CART",
            p[7],
            "event_time in the future",
            {"$event_time": int(datetime(2099, 6, 1, 12, tzinfo=timezone.utc).timestamp())},
        )
        make("VIEW", p[8], "no identifier", no_ids, with_product=False)
        make(
            "LEAD",
            p[12],
            "no identifier",
            {**no_ids, "email": "", "phone": "   ", "$ip": ""},
            with_product=False,
        )
        make("PRODUCT", p[13], "no identifier", {**no_ids, "$ip": "unknown"})
        make("PURCHASE", p[14], "PURCHASE without currency", {"currency": None})
        make("PURCHASE", p[15], "PURCHASE without currency", {"currency": _DELETE}, event_only=True)
        make("PURCHASE", p[16], "PURCHASE without amount", {"amount": None})
        make("PRODUCT", p[17], "unknown event name", {"spotify_event_name": "Serch"})
        make(
            "ADD_TO_CART", p[18], "unknown event name", {"event": "Wishlist Added"}, event_only=True
        )
        make("ADD_TO_CART", p[19], "unknown event name", {"spotify_event_name": "Wishlist Added"})
        make("PURCHASE", p[20], "invalid currency", {"currency": "ZZZ"})
        make("CHECK_OUT", p[21], "invalid currency", {"currency": "ZZZ"})
        make(
            "VIEW",
            p[22],
            "invalid action_source",
            {"$action_source": "kiosk", "$ip": p[22].ip},
            with_product=False,
        )
        make(
            "CHECK_OUT",
            p[23],
            "invalid event_source_url",
            {
                "$action_source": "web",
                "$ip": p[23].ip,
                "event_source_url": "www.example.com/checkout",
            },
        )
        make("PURCHASE", p[24], "invalid amount", {"amount": "N/A"})
        make(
            "LEAD",
            p[25],
            "invalid opt_out_targeting",
            {"opt_out_targeting": "maybe"},
            with_product=False,
        )
        rng.shuffle(out)
        return out


_DELETE = object()


# --- benchmark streams -------------------------------------------------------------------------

STREAM = "conversions"
STATE_EVERY = 1000
SPAN = timedelta(days=25)
INVALID_RATE = 0.01
INVALID_KINDS = ("future_time", "unknown_event_name", "purchase_without_currency", "no_identifier")
_NULLABLE = {"type": ["null", "string"]}
# Warehouse column types, as a tap reading the events table declares them.
STREAM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "$event_id": {"type": ["string"]},
        "spotify_event_name": _NULLABLE,
        "$event_time": {"type": ["null", "string"], "format": "date-time"},
        **dict.fromkeys(["email", "phone", "$ip", "$device_id", "$user_agent"], _NULLABLE),
        **dict.fromkeys(["$action_source", "event_source_url"], _NULLABLE),
        "amount": {"type": ["null", "number"]},
        **dict.fromkeys(["currency", "content_name", "content_category"], _NULLABLE),
        "opt_out_targeting": {"type": ["null", "boolean"]},
        "$spclid": _NULLABLE,
    },
}
# (spelling in the export, Spotify name it resolves to, weight): a shop's funnel.
FUNNEL: list[tuple[str, str, int]] = [
    ("page_view", "VIEW", 18), ("Page Viewed", "VIEW", 12), ("VIEW", "VIEW", 4),
    ("Product Viewed", "PRODUCT", 14), ("view_item", "PRODUCT", 6),
    ("add_to_cart", "ADD_TO_CART", 8), ("Product Added", "ADD_TO_CART", 4),
    ("begin_checkout", "CHECK_OUT", 4), ("Checkout Started", "CHECK_OUT", 3),
    ("PURCHASE", "PURCHASE", 4), ("Order Completed", "PURCHASE", 8),
    ("Signed Up", "SIGN_UP", 3), ("sign_up", "SIGN_UP", 2),
    ("LEAD", "LEAD", 2), ("generate_lead", "LEAD", 1),
]  # fmt: skip
UNKNOWN_NAMES = ["Coupon Applied", "wishlist_add", "Serch", "Cart Abandoned"]
_MESSY_CHANCE = {"email": 0.55, "phone": 0.6, "time": 0.55}


@dataclass(frozen=True)
class Shopper:
    """One user of a benchmark stream: what the export knows about them, across events."""

    email: str | None  # canonical lower-case address, or (pre-hashed) a digest
    phone: str | None  # E.164, or a digest
    ip: str
    device_id: str | None
    app: bool


def make_shopper(rng: random.Random, n: int, clean: bool) -> Shopper:
    app = rng.random() < 0.3
    email = None
    if rng.random() < 0.85:
        email = f"{rng.choice(FIRST).lower()}.{rng.choice(LAST).lower()}{n}@example.com"
        if not clean and rng.random() < 0.10:  # the source system already hashed it
            email = sha256(email)
    phone = None
    if rng.random() < 0.6:
        phone = f"+1{rng.choice(('415', '212', '646', '312', '206'))}55501{rng.randrange(100):02d}"
        if not clean and rng.random() < 0.05:
            phone = sha256(phone)
    ip = rng.choice(IPV6 if rng.random() < 0.3 else IPV4)
    device = str(uuid.UUID(int=rng.getrandbits(128), version=4)) if rng.random() < 0.8 else None
    return Shopper(email, phone, ip, device.upper() if app and device else device, app)


def messy(rng: random.Random, kind: str, value: str) -> str:
    """A value as people type it: case and stray spaces; phones with punctuation or none."""
    if len(value) == 64 or rng.random() >= _MESSY_CHANCE[kind]:
        return value
    if kind == "email":
        return rng.choice([f"  {value} ", value.upper(), value.title()])
    d = value[2:]  # a +1 number's ten digits
    return rng.choice([f"+1 ({d[:3]}) {d[3:6]}-{d[6:]}", f"+1.{d[:3]}.{d[3:6]}.{d[6:]}",
                       f"({d[:3]}) {d[3:6]}-{d[6:]}"])  # the last: national only, dropped


def stream_time(rng: random.Random, moment: datetime, clean: bool) -> str:
    """Spotify's own form when clean; else also offsets, no offset, or microseconds."""
    canonical = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    if clean or rng.random() >= _MESSY_CHANCE["time"]:
        return canonical
    return rng.choice([
        moment.astimezone(timezone(timedelta(hours=rng.choice((2, -5, 9))))).isoformat(),
        moment.replace(tzinfo=None).isoformat(timespec="seconds"),
        moment.isoformat(timespec="microseconds"),
    ])


def stream_record(rng: random.Random, shopper: Shopper, name: str, kind: str,
                  moment: datetime, order: int, clean: bool) -> dict[str, Any]:
    """One event of a benchmark stream: the 16 columns, null where they do not apply."""
    product, price, categories = rng.choice(PRODUCTS[:10])  # those with a taxonomy id
    quantity = 1 + (rng.random() < 0.3)
    has_amount = kind in ("ADD_TO_CART", "CHECK_OUT", "PURCHASE")
    source = "APP" if shopper.app else "WEB"
    spclid = f"{rng.getrandbits(96):024x}" if rng.random() < 0.2 else None
    url = None
    if source == "WEB":
        url = f"{SHOP}/products/{product.lower().replace(' ', '-')}"
        url += f"?spclid={spclid}" if spclid else ""
    event_id = f"ORD-{order}" if kind == "PURCHASE" else str(uuid.UUID(int=rng.getrandbits(128)))
    return {
        "$event_id": event_id,
        "spotify_event_name": kind if clean else name,
        "$event_time": stream_time(rng, moment, clean),
        "email": shopper.email and (shopper.email if clean else messy(rng, "email", shopper.email)),
        "phone": shopper.phone and (shopper.phone if clean else messy(rng, "phone", shopper.phone)),
        "$ip": shopper.ip,
        "$device_id": shopper.device_id,
        "$user_agent": rng.choice(APP_USER_AGENTS if shopper.app else USER_AGENTS),
        "$action_source": source,
        "event_source_url": url,
        "amount": round(float(price) * quantity, 2) if has_amount else None,
        "currency": ("USD" if clean else rng.choice(CURRENCIES)) if has_amount else None,
        "content_name": product if kind != "VIEW" else None,
        "content_category": str(categories[0]) if kind != "VIEW" else None,
        "opt_out_targeting": False if clean else rng.random() < 0.05,
        "$spclid": spclid,
    }  # fmt: skip


def spoil(rng: random.Random, record: dict[str, Any], anchor: datetime) -> str:
    """Make a record invalid in one way; return which."""
    bad = rng.choice(INVALID_KINDS)
    if bad == "future_time":
        record["$event_time"] = (anchor + timedelta(days=2 + rng.random() * 2)).isoformat()
    elif bad == "unknown_event_name":
        record["spotify_event_name"] = rng.choice(UNKNOWN_NAMES)
    elif bad == "purchase_without_currency":
        record.update(spotify_event_name="Order Completed", amount=42.0, currency=None)
    else:
        record.update({"email": None, "phone": None, "$ip": None, "$device_id": None})
    return bad


def _encoder() -> Callable[[Any], str]:
    """Compact JSON: msgspec when installed (the target's venv has it), else the stdlib."""
    try:
        import msgspec
    except ImportError:
        return json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    encode = msgspec.json.Encoder().encode
    return lambda obj: encode(obj).decode()


def generate(out: Path, events: int, *, seed: int = 1, users: int | None = None,
             clean: bool = False, anchor: datetime | None = None) -> dict[str, Any]:
    """Write a benchmark stream to `out`; return its counts (``valid``: events to deliver)."""
    rng = random.Random(seed)
    anchor = anchor or datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    pool_size = max(1, users if users is not None else events // 8)
    pool: dict[int, Shopper] = {}
    names, weights = [n for n, _, _ in FUNNEL], [w for _, _, w in FUNNEL]
    kinds = {n: k for n, k, _ in FUNNEL}
    cumulative = [sum(weights[: i + 1]) for i in range(len(weights))]
    invalid = dict.fromkeys(INVALID_KINDS, 0)
    dumps, started, start = _encoder(), time.perf_counter(), anchor - SPAN
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        f.write(dumps({"type": "SCHEMA", "stream": STREAM, "schema": STREAM_SCHEMA,
                       "key_properties": ["$event_id"]}) + "\n")
        last_time = ""
        for i in range(events):
            u = rng.randrange(pool_size)
            shopper = pool.get(u) or pool.setdefault(u, make_shopper(rng, u, clean))
            name = names[bisect.bisect(cumulative, rng.random() * cumulative[-1])]
            moment = start + SPAN * ((i + rng.random()) / max(events, 1))
            record = stream_record(rng, shopper, name, kinds[name], moment, 1_000_000 + i, clean)
            if not clean and rng.random() < INVALID_RATE:
                invalid[spoil(rng, record, anchor)] += 1
            else:
                last_time = record["$event_time"]
            f.write(dumps({"type": "RECORD", "stream": STREAM, "record": record}) + "\n")
            if (i + 1) % STATE_EVERY == 0 or i + 1 == events:
                bookmark = {"replication_key": "$event_time", "replication_key_value": last_time}
                f.write(dumps({"type": "STATE", "value": {"bookmarks": {STREAM: bookmark}}}) + "\n")
    bad = sum(invalid.values())
    return {
        "path": str(out), "events": events, "valid": events - bad, "invalid": bad,
        "invalid_by_kind": invalid, "clean": clean, "user_pool": pool_size,
        "users_seen": len(pool), "properties_per_record": len(STREAM_SCHEMA["properties"]),
        "bytes": out.stat().st_size, "seed": seed, "anchor": anchor.isoformat(),
        "seconds": round(time.perf_counter() - started, 2),
    }  # fmt: skip


def render(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in records)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="verify the committed files match what the generator writes",
    )
    parser.add_argument("--events", type=int, help="write a benchmark stream of N events")
    parser.add_argument("--out", type=Path, help="the benchmark stream's file")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--users", type=int, help="user pool (default: events/8)")
    parser.add_argument("--clean", action="store_true", help="canonical values, none invalid")
    parser.add_argument("--anchor", type=datetime.fromisoformat, help="latest event time")
    parser.add_argument("--meta", type=Path, help="also write the counts as JSON here")
    args = parser.parse_args(argv)
    if args.events is not None:
        if args.out is None:
            parser.error("--events needs --out")
        meta = json.dumps(generate(args.out, args.events, seed=args.seed, users=args.users,
                                   clean=args.clean, anchor=args.anchor), sort_keys=True)
        if args.meta is not None:
            args.meta.write_text(meta + "\n")
        print(meta)
        return 0
    records, expected = Generator().build()
    events_text = render(records)
    expected_text = json.dumps(expected, indent=2, ensure_ascii=False) + "\n"
    if args.check:
        ok = (
            EVENTS_FILE.read_text(encoding="utf-8") == events_text
            and EXPECTED_FILE.read_text(encoding="utf-8") == expected_text
        )
        print("sample is up to date" if ok else "sample differs from the generator's output")
        return 0 if ok else 1
    EVENTS_FILE.write_text(events_text, encoding="utf-8")
    EXPECTED_FILE.write_text(expected_text, encoding="utf-8")
    print(
        f"wrote {len(records)} records to {EVENTS_FILE.name} "
        f"({expected['accepted']} to accept, {expected['rejected']} to reject)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
