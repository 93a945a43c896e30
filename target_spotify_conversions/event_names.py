"""Spotify event names and the spellings other tools use for them (docs/contract.md §3).

The alias table is data: one place to read which input names become which Spotify name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

from .privacy import shown_setting

SPOTIFY_EVENT_NAMES: tuple[str, ...] = (
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
)

# Input spelling -> Spotify name. Keys are written as their tools write them; they are
# compared after `name_key`, so case, spaces and hyphens do not matter.
ALIASES: Mapping[str, str] = {
    # Server-side GTM tags
    "Page_View": "VIEW",
    "View_Product": "PRODUCT",
    "Add_Cart": "ADD_TO_CART",
    "Start_Checkout": "CHECK_OUT",
    # GA4
    "view_item": "PRODUCT",
    "begin_checkout": "CHECK_OUT",
    "generate_lead": "LEAD",
    # Spotify Pixel commands
    "addtocart": "ADD_TO_CART",
    "checkout": "CHECK_OUT",
    "signup": "SIGN_UP",
    # E-commerce spec (Segment / Freshpaint track names)
    "Order Completed": "PURCHASE",
    "Product Added": "ADD_TO_CART",
    "Checkout Started": "CHECK_OUT",
    "Product Viewed": "PRODUCT",
    "Signed Up": "SIGN_UP",
    "Page Viewed": "VIEW",
    # Tealium action labels
    "Page Views": "VIEW",
    "Complete Registration": "SIGN_UP",
    "Subscribe": "SIGN_UP",
}
# GA4's page_view/add_to_cart/purchase/sign_up, the Pixel's view/product/lead, the Ads API
# diagnostics' CHECKOUT/ADDTOCART/SIGNUP, GTM's Purchase/Lead/Sign_Up/Alias/Custom_Event_n and
# Tealium's Add to Cart/Check Out/Purchase/Lead reduce to a key above or to a Spotify name.

_SEPARATORS = re.compile(r"[\s_-]+")


def name_key(name: str) -> str:
    """Compare names the way people misspell them: no case, spaces and hyphens as '_'."""
    return _SEPARATORS.sub("_", name.strip()).upper()


BUILTIN_NAMES: Mapping[str, str] = {
    **{name_key(name): name for name in SPOTIFY_EVENT_NAMES},
    **{name_key(alias): target for alias, target in ALIASES.items()},
}


def spotify_name(value: str) -> str | None:
    """Return the Spotify name `value` spells (case and separators aside), else None."""
    key = name_key(value)
    return key if key in SPOTIFY_EVENT_NAMES else None


class EventNameError(ValueError):
    """A setting names something that is not a Spotify event name."""


def checked_name(value: object, setting: str) -> str:
    """The Spotify name a setting's value spells; the one check every event-name setting takes."""
    name = spotify_name(value) if isinstance(value, str) else None
    if name is None:
        raise EventNameError(
            f"{setting}: {shown_setting(value)} is not a Spotify event name; use one of "
            + ", ".join(SPOTIFY_EVENT_NAMES)
        )
    return name


def checked_name_map(value: Mapping[str, object]) -> dict[str, str]:
    """The `event_name_map` setting with each value as the Spotify name it spells."""
    return {key: checked_name(name, f"event_name_map[{key!r}]") for key, name in value.items()}


class EventNameResolver:
    """Resolve a record's event name: the user's map first, then the built-in names.

    Takes the settings as checked where settings are read (`checked_name_map`,
    `checked_name`): each mapping worker builds one, and none checks them again."""

    def __init__(self, event_name_map: Mapping[str, str], default: str | None = None) -> None:
        self._exact = dict(event_name_map)
        self._by_key = {name_key(key): value for key, value in self._exact.items()}
        self.default = default

    def resolve(self, candidate: object) -> str | None:
        """Return the Spotify name for one candidate, or None when it does not resolve."""
        if not isinstance(candidate, str):
            return None
        if candidate in self._exact:
            return self._exact[candidate]
        return self._by_spelling(candidate)

    # One resolver per run, and spellings repeat on every record: caching on self is fine.
    @lru_cache(maxsize=4096)  # noqa: B019
    def _by_spelling(self, candidate: str) -> str | None:
        key = name_key(candidate)
        return self._by_key.get(key) or BUILTIN_NAMES.get(key)
