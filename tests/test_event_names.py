"""Event name resolution (docs/contract.md §3, docs/spotify-api.md "Event names").

The expectation tables are copied from the documents, not from `ALIASES`, so a missing or wrong
alias in the package makes a test fail.
"""

from __future__ import annotations

import pytest

from target_spotify_conversions.event_names import (
    SPOTIFY_EVENT_NAMES,
    EventNameResolver,
    checked_name_map,
    name_key,
    spotify_name,
)

DOCUMENTED_SPOTIFY_NAMES = [
    "VIEW",
    "PRODUCT",
    "ADD_TO_CART",
    "CHECK_OUT",
    "PURCHASE",
    "LEAD",
    "SIGN_UP",
    "ALIAS",
    "CUSTOM_EVENT_1",
    "CUSTOM_EVENT_2",
    "CUSTOM_EVENT_3",
    "CUSTOM_EVENT_4",
    "CUSTOM_EVENT_5",
]

# docs/spotify-api.md: "Other spellings seen in the wild, to accept on input and translate".
GTM = [
    ("Page_View", "VIEW"),
    ("View_Product", "PRODUCT"),
    ("Add_Cart", "ADD_TO_CART"),
    ("Start_Checkout", "CHECK_OUT"),
    ("Purchase", "PURCHASE"),
    ("Lead", "LEAD"),
    ("Sign_Up", "SIGN_UP"),
    ("Alias", "ALIAS"),
    ("Custom_Event_1", "CUSTOM_EVENT_1"),
    ("Custom_Event_2", "CUSTOM_EVENT_2"),
    ("Custom_Event_3", "CUSTOM_EVENT_3"),
    ("Custom_Event_4", "CUSTOM_EVENT_4"),
    ("Custom_Event_5", "CUSTOM_EVENT_5"),
]
GA4 = [
    ("page_view", "VIEW"),
    ("view_item", "PRODUCT"),
    ("add_to_cart", "ADD_TO_CART"),
    ("begin_checkout", "CHECK_OUT"),
    ("purchase", "PURCHASE"),
    ("generate_lead", "LEAD"),
    ("sign_up", "SIGN_UP"),
]
PIXEL = [
    ("view", "VIEW"),
    ("product", "PRODUCT"),
    ("addtocart", "ADD_TO_CART"),
    ("checkout", "CHECK_OUT"),
    ("purchase", "PURCHASE"),
    ("lead", "LEAD"),
    ("signup", "SIGN_UP"),
]
DIAGNOSTICS = [
    ("CHECKOUT", "CHECK_OUT"),
    ("ADDTOCART", "ADD_TO_CART"),
    ("SIGNUP", "SIGN_UP"),
]
# Tealium's action labels (docs/spotify-api.md) with docs/contract.md §3's targets; Search has none.
TEALIUM = [
    ("Page Views", "VIEW"),
    ("Complete Registration", "SIGN_UP"),
    ("Add to Cart", "ADD_TO_CART"),
    ("Check Out", "CHECK_OUT"),
    ("Purchase", "PURCHASE"),
    ("Lead", "LEAD"),
    ("Subscribe", "SIGN_UP"),
]
# docs/contract.md §3: the common e-commerce spec names.
ECOMMERCE = [
    ("Order Completed", "PURCHASE"),
    ("Product Added", "ADD_TO_CART"),
    ("Checkout Started", "CHECK_OUT"),
    ("Product Viewed", "PRODUCT"),
    ("Signed Up", "SIGN_UP"),
    ("Page Viewed", "VIEW"),
]
SPOTIFY_ITSELF = [(name, name) for name in DOCUMENTED_SPOTIFY_NAMES]

ALL_DOCUMENTED = [
    pytest.param(alias, expected, id=f"{source}:{alias}")
    for source, table in [
        ("spotify", SPOTIFY_ITSELF),
        ("gtm", GTM),
        ("ga4", GA4),
        ("pixel", PIXEL),
        ("diagnostics", DIAGNOSTICS),
        ("tealium", TEALIUM),
        ("ecommerce", ECOMMERCE),
    ]
    for alias, expected in table
]


def test_spotify_names_are_the_documented_list():
    assert sorted(SPOTIFY_EVENT_NAMES) == sorted(DOCUMENTED_SPOTIFY_NAMES)


@pytest.mark.parametrize(("alias", "expected"), ALL_DOCUMENTED)
def test_documented_spelling_resolves(alias, expected):
    assert EventNameResolver({}).resolve(alias) == expected


@pytest.mark.parametrize(("alias", "expected"), ALL_DOCUMENTED)
@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(str.upper, id="upper"),
        pytest.param(str.lower, id="lower"),
        pytest.param(lambda s: s.replace("_", " "), id="spaces"),
        pytest.param(lambda s: s.replace("_", "-").replace(" ", "-"), id="hyphens"),
        pytest.param(lambda s: f"  {s}\t", id="padded"),
    ],
)
def test_case_space_and_hyphen_do_not_matter(alias, expected, variant):
    assert EventNameResolver({}).resolve(variant(alias)) == expected


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        ("add to cart", "ADD_TO_CART"),
        ("Add-To-Cart", "ADD_TO_CART"),
        ("add - to - cart", "ADD_TO_CART"),
        ("custom event 3", "CUSTOM_EVENT_3"),
        ("Custom-Event-5", "CUSTOM_EVENT_5"),
        ("ORDER_COMPLETED", "PURCHASE"),
        ("order-completed", "PURCHASE"),
        ("sign up", "SIGN_UP"),
        ("check-out", "CHECK_OUT"),
    ],
)
def test_mixed_separators(candidate, expected):
    assert EventNameResolver({}).resolve(candidate) == expected


@pytest.mark.parametrize(
    "candidate",
    [
        "Search",
        "search",
        "SEARCH",
        "Order Refunded",
        "Product Removed",
        "CUSTOM_EVENT_6",
        "CUSTOM_EVENT_0",
        "PURCHASES",
        "checkout_progress",
        "add to",
        "",
        "   ",
    ],
)
def test_names_without_spotify_counterpart_do_not_resolve(candidate):
    assert EventNameResolver({}).resolve(candidate) is None


@pytest.mark.parametrize("candidate", [None, 1, 1.5, True, ["VIEW"], {"name": "VIEW"}])
def test_non_strings_do_not_resolve(candidate):
    assert EventNameResolver({"1": "LEAD", "True": "LEAD"}).resolve(candidate) is None


def test_search_resolves_through_event_name_map():
    resolver = EventNameResolver({"Search": "CUSTOM_EVENT_2"})
    assert resolver.resolve("Search") == "CUSTOM_EVENT_2"
    assert resolver.resolve("search") == "CUSTOM_EVENT_2"
    assert resolver.resolve(" SEARCH ") == "CUSTOM_EVENT_2"


def test_event_name_map_wins_over_builtin_aliases():
    resolver = EventNameResolver({"Order Completed": "CUSTOM_EVENT_1", "view": "LEAD"})
    assert resolver.resolve("Order Completed") == "CUSTOM_EVENT_1"
    assert resolver.resolve("order_completed") == "CUSTOM_EVENT_1"
    assert resolver.resolve("VIEW") == "LEAD"
    # Other builtin names are untouched.
    assert resolver.resolve("Product Added") == "ADD_TO_CART"


def test_event_name_map_exact_key_before_normalised_key():
    # Both keys normalise to SIGNUP_FORM; an exact hit must pick its own value.
    resolver = EventNameResolver({"signup form": "LEAD", "Signup-Form": "SIGN_UP"})
    assert resolver.resolve("signup form") == "LEAD"
    assert resolver.resolve("Signup-Form") == "SIGN_UP"
    # A spelling that is neither key exactly still resolves through the normalised form.
    assert resolver.resolve("SIGNUP_FORM") in {"LEAD", "SIGN_UP"}


def test_event_name_map_values_are_normalised_to_spotify_names():
    checked = checked_name_map({"Lead Form": "lead", "Buy": "purchase", "C": "custom event 4"})
    assert checked == {"Lead Form": "LEAD", "Buy": "PURCHASE", "C": "CUSTOM_EVENT_4"}
    resolver = EventNameResolver(checked)
    assert resolver.resolve("Lead Form") == "LEAD"
    assert resolver.resolve("Buy") == "PURCHASE"
    assert resolver.resolve("C") == "CUSTOM_EVENT_4"


@pytest.mark.parametrize(
    "bad_value",
    ["Order Completed", "Search", "CUSTOM_EVENT_6", "checkout", "", None, 3, ["VIEW"]],
)
def test_event_name_map_value_that_is_no_spotify_name_raises(bad_value):
    with pytest.raises(ValueError):  # noqa: PT011 - the type is the contract
        checked_name_map({"My Event": bad_value})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("VIEW", "VIEW"),
        ("view", "VIEW"),
        ("add to cart", "ADD_TO_CART"),
        ("custom-event-1", "CUSTOM_EVENT_1"),
        ("Order Completed", None),
        ("checkout", None),
        ("Search", None),
    ],
)
def test_spotify_name_accepts_only_spotify_names(value, expected):
    assert spotify_name(value) == expected


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Order Completed", "ORDER_COMPLETED"),
        ("add-to-cart", "ADD_TO_CART"),
        ("  page  view ", "PAGE_VIEW"),
        ("a_-_b", "A_B"),
    ],
)
def test_name_key(name, key):
    assert name_key(name) == key
