"""The README tells the truth about settings: its table is what `--about` prints."""

from __future__ import annotations

from scripts.update_readme import README, settings_table
from target_spotify_conversions.settings import CONFIG_SCHEMA


def test_readme_settings_table_is_the_one_about_prints():
    assert settings_table() in README.read_text(), "run `make readme` to refresh README.md"


def test_every_setting_of_the_spec_is_declared_and_documented():
    spec_settings = {
        "capi_connection_id", "auth_token", "api_url", "dry_run", "dry_run_file",
        "rejects_file", "on_invalid", "default_event_name", "event_name_map",
        "default_action_source", "default_opt_out_targeting", "phone_default_country",
        "events_per_request", "max_concurrent_requests", "request_timeout", "max_retries",
    }
    assert spec_settings <= set(CONFIG_SCHEMA["properties"])
    table = settings_table()
    for name in spec_settings:
        assert f"| {name} |" in table
