"""Start-up checks of the configuration (docs/contract.md §1)."""

from __future__ import annotations

import pytest

from target_spotify_conversions.settings import Settings, SettingsError

CONNECTION_ID = "3f1c9a9e-2b7d-4c1e-9f0a-5d6b7c8e9f01"
TOKEN = "test-token-7c1d2a90f5e04b6b"
GOOD = {"capi_connection_id": CONNECTION_ID, "auth_token": TOKEN}


def test_minimal_config_and_defaults():
    settings = Settings.from_config(GOOD)
    assert settings.connection_id == CONNECTION_ID
    assert settings.auth_token == TOKEN
    assert settings.api_url == "https://capi.spotify.com/capi-direct/events/"
    assert settings.dry_run is False
    assert settings.dry_run_file == "spotify-conversions-dry-run.jsonl"
    assert settings.rejects_file == "spotify-conversions-rejects.jsonl"
    assert settings.fail_on_invalid is False
    assert settings.events_per_request == 500
    assert settings.max_concurrent_requests == 4
    assert settings.request_timeout == 30
    assert settings.max_retries == 8
    assert dict(settings.mapping.event_name_map) == {}
    assert settings.mapping.default_event_name is None
    assert settings.mapping.default_action_source is None
    assert settings.mapping.default_opt_out_targeting is True
    assert settings.mapping.phone_default_country is None


def test_full_config_is_carried_over():
    settings = Settings.from_config(
        {
            **GOOD,
            "api_url": "http://127.0.0.1:8080/events/",
            "rejects_file": "rejects.jsonl",
            "on_invalid": "fail",
            "default_event_name": "LEAD",
            "event_name_map": {"Search": "CUSTOM_EVENT_1"},
            "default_action_source": "WEB",
            "default_opt_out_targeting": False,
            "phone_default_country": "GB",
            "events_per_request": 100,
        }
    )
    assert settings.api_url == "http://127.0.0.1:8080/events/"
    assert settings.rejects_file == "rejects.jsonl"
    assert settings.fail_on_invalid is True
    assert settings.events_per_request == 100
    assert settings.mapping.default_event_name == "LEAD"
    assert dict(settings.mapping.event_name_map) == {"Search": "CUSTOM_EVENT_1"}
    assert settings.mapping.default_action_source == "WEB"
    assert settings.mapping.default_opt_out_targeting is False
    assert settings.mapping.phone_default_country == "GB"


@pytest.mark.parametrize(
    "connection_id",
    [
        "not-a-uuid",
        "3f1c9a9e-2b7d-4c1e-9f0a-5d6b7c8e9f0",  # one digit short
        "3f1c9a9e-2b7d-4c1e-9f0a-5d6b7c8e9f01-extra",
        "zzzzzzzz-2b7d-4c1e-9f0a-5d6b7c8e9f01",
        12345,
    ],
)
def test_connection_id_must_be_a_uuid(connection_id):
    with pytest.raises(SettingsError, match="capi_connection_id"):
        Settings.from_config({**GOOD, "capi_connection_id": connection_id})


def test_connection_id_is_required_outside_dry_run():
    with pytest.raises(SettingsError, match="capi_connection_id"):
        Settings.from_config({"auth_token": TOKEN})


@pytest.mark.parametrize("token", [None, "", "   "])
def test_token_is_required_outside_dry_run(token):
    config = {"capi_connection_id": CONNECTION_ID}
    if token is not None:
        config["auth_token"] = token
    with pytest.raises(SettingsError, match="auth_token"):
        Settings.from_config(config)


def test_dry_run_needs_neither_token_nor_connection():
    settings = Settings.from_config({"dry_run": True})
    assert settings.dry_run is True
    assert settings.auth_token == ""
    # Still a UUID, so the dry-run bodies look like the real ones.
    assert len(settings.connection_id) == 36


def test_dry_run_keeps_a_given_connection_id():
    settings = Settings.from_config({"dry_run": True, "capi_connection_id": CONNECTION_ID})
    assert settings.connection_id == CONNECTION_ID


def test_token_is_not_in_the_error_message():
    with pytest.raises(SettingsError) as caught:
        Settings.from_config({"auth_token": TOKEN, "capi_connection_id": "bad"})
    assert TOKEN not in str(caught.value)


@pytest.mark.parametrize("value", ["Order Completed", "Search", "CUSTOM_EVENT_6", "", 5, None])
def test_event_name_map_values_must_be_spotify_names(value):
    with pytest.raises(SettingsError, match="event_name_map"):
        Settings.from_config({**GOOD, "event_name_map": {"My Event": value}})


def test_event_name_map_accepts_spotify_names_in_any_case():
    settings = Settings.from_config(
        {**GOOD, "event_name_map": {"Order Completed": "purchase", "Search": "Custom Event 2"}}
    )
    assert set(settings.mapping.event_name_map) == {"Order Completed", "Search"}


@pytest.mark.parametrize("value", ["Order Completed", "Search", "PURCHASES", "checkout"])
def test_default_event_name_must_be_a_spotify_name(value):
    with pytest.raises(SettingsError, match="default_event_name"):
        Settings.from_config({**GOOD, "default_event_name": value})


@pytest.mark.parametrize("value", ["LEAD", "lead", "custom_event_5"])
def test_default_event_name_accepts_spotify_names(value):
    Settings.from_config({**GOOD, "default_event_name": value})


@pytest.mark.parametrize("country", ["UK", "XX", "GBR", "G", "England", "44"])
def test_phone_default_country_must_be_iso_alpha_2(country):
    with pytest.raises(SettingsError, match="phone_default_country"):
        Settings.from_config({**GOOD, "phone_default_country": country})


@pytest.mark.parametrize(("country", "expected"), [("GB", "GB"), ("gb", "GB"), ("us", "US")])
def test_phone_default_country_is_upper_cased(country, expected):
    settings = Settings.from_config({**GOOD, "phone_default_country": country})
    assert settings.mapping.phone_default_country == expected


@pytest.mark.parametrize("url", ["ftp://example.com/", "capi.spotify.com/capi-direct/events/"])
def test_api_url_must_be_http(url):
    with pytest.raises(SettingsError, match="api_url"):
        Settings.from_config({**GOOD, "api_url": url})
