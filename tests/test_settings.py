"""Start-up checks of the configuration (docs/contract.md §1)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess

import pytest

from target_spotify_conversions.mapping import EventMapper, Mapped
from target_spotify_conversions.settings import Settings, SettingsError, without_secrets

CONNECTION_ID = "3f1c9a9e-2b7d-4c1e-9f0a-5d6b7c8e9f01"
TOKEN = "test-token-7c1d2a90f5e04b6b"
GOOD = {"capi_connection_id": CONNECTION_ID, "auth_token": TOKEN}
NOW = dt.datetime(2026, 11, 2, tzinfo=dt.timezone.utc)


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
    assert settings.max_concurrent_requests == 48
    assert settings.adaptive_concurrency is True
    assert settings.request_timeout == 30
    assert settings.max_retries == 10
    assert dict(settings.mapping_options.event_name_map) == {}
    assert settings.mapping_options.default_event_name is None
    assert settings.mapping_options.default_action_source is None
    assert settings.mapping_options.default_opt_out_targeting is True
    assert settings.mapping_options.phone_default_country is None


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
    assert settings.mapping_options.default_event_name == "LEAD"
    assert dict(settings.mapping_options.event_name_map) == {"Search": "CUSTOM_EVENT_1"}
    assert settings.mapping_options.default_action_source == "WEB"
    assert settings.mapping_options.default_opt_out_targeting is False
    assert settings.mapping_options.phone_default_country == "GB"


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


@pytest.mark.parametrize(
    "setting",
    [{"event_name_map": {"Order Completed": "sp_live_" + "x" * 60}},
     {"default_event_name": "sp_live_" + "x" * 60},
     {"phone_default_country": "sp_live_" + "x" * 60}],
)
def test_a_token_pasted_into_a_setting_is_not_quoted_back(setting):
    with pytest.raises(SettingsError) as refused:
        Settings.from_config({**GOOD, **setting})
    assert "x" * 20 not in str(refused.value)
    assert "a string of 68 characters (not shown)" in str(refused.value)


@pytest.mark.parametrize("value", ["Order Completed", "Search", "CUSTOM_EVENT_6", "", 5, None])
def test_event_name_map_values_must_be_spotify_names(value):
    with pytest.raises(SettingsError, match="event_name_map"):
        Settings.from_config({**GOOD, "event_name_map": {"My Event": value}})


def _sent_name(settings: Settings, event: str | None = None) -> str:
    """The event_name a record with this analytics `event` (and nothing else naming it) gets."""
    record = {"event": event, "$ip": "203.0.113.7", "$event_time": "2026-11-01T10:00:00Z",
              "amount": 25, "currency": "GBP"}
    mapped = EventMapper(settings.mapping_options).map(record, "warehouse_rows", now=NOW)
    assert isinstance(mapped, Mapped), mapped
    return mapped.event["event_name"]


def test_event_name_map_accepts_spotify_names_in_any_case():
    settings = Settings.from_config(
        {**GOOD, "event_name_map": {"Order Completed": "purchase", "Search": "Custom Event 2"}}
    )
    assert _sent_name(settings, "Order Completed") == "PURCHASE"
    assert _sent_name(settings, "Search") == "CUSTOM_EVENT_2"


@pytest.mark.parametrize("value", ["Order Completed", "Search", "PURCHASES", "checkout"])
def test_default_event_name_must_be_a_spotify_name(value):
    with pytest.raises(SettingsError, match="default_event_name"):
        Settings.from_config({**GOOD, "default_event_name": value})


@pytest.mark.parametrize(
    ("value", "sent"),
    [("LEAD", "LEAD"), ("lead", "LEAD"), ("custom_event_5", "CUSTOM_EVENT_5"),
     ("Custom Event 5", "CUSTOM_EVENT_5")],
)
def test_default_event_name_accepts_spotify_names(value, sent):
    settings = Settings.from_config({**GOOD, "default_event_name": value})
    assert _sent_name(settings) == sent


@pytest.mark.parametrize("source", ["SERVER", "web site", "1", "web", " WEB"])
def test_default_action_source_must_be_one_of_spotifys(source):
    """Checked here, where settings are read, and nowhere else (the mapping trusts it)."""
    with pytest.raises(SettingsError, match="default_action_source"):
        Settings.from_config({**GOOD, "default_action_source": source})


def test_default_action_source_is_sent_as_given():
    settings = Settings.from_config({**GOOD, "default_action_source": "OFFLINE"})
    record = {"event": "Order Completed", "$ip": "203.0.113.7", "amount": 25, "currency": "GBP",
              "$event_time": "2026-11-01T10:00:00Z"}
    mapped = EventMapper(settings.mapping_options).map(record, "warehouse_rows", now=NOW)
    assert isinstance(mapped, Mapped), mapped
    assert mapped.event["action_source"] == "OFFLINE"


@pytest.mark.parametrize("value", [["Search", "LEAD"], "Search=LEAD"])
def test_event_name_map_must_be_an_object(value):
    with pytest.raises(SettingsError, match="event_name_map must be an object"):
        Settings.from_config({**GOOD, "event_name_map": value})


@pytest.mark.parametrize("country", ["UK", "XX", "GBR", "G", "England", "44"])
def test_phone_default_country_must_be_iso_alpha_2(country):
    with pytest.raises(SettingsError, match="phone_default_country"):
        Settings.from_config({**GOOD, "phone_default_country": country})


@pytest.mark.parametrize(("country", "expected"), [("GB", "GB"), ("gb", "GB"), ("us", "US")])
def test_phone_default_country_is_upper_cased(country, expected):
    settings = Settings.from_config({**GOOD, "phone_default_country": country})
    assert settings.mapping_options.phone_default_country == expected


@pytest.mark.parametrize("url", ["ftp://example.com/", "capi.spotify.com/capi-direct/events/"])
def test_api_url_must_be_http(url):
    with pytest.raises(SettingsError, match="api_url"):
        Settings.from_config({**GOOD, "api_url": url})


# --- hand-written configs, through the real CLI --------------------------------------------------

from tests.harness import (  # noqa: E402
    TARGET_BIN,
    purchase,
    run_target,
    singer_lines,
    target_config,
)


@pytest.mark.parametrize(
    ("typo", "meant"),
    [("dryrun", "dry_run"), ("events_per_requests", "events_per_request"),
     ("rejects_fle", "rejects_file"), ("batch_size_row", "batch_size_rows")],
)
def test_a_misspelt_setting_stops_the_run_before_any_request(fake, tmp_path, typo, meant):
    config = target_config(fake.url, **{typo: True})
    run = run_target(tmp_path / "run", config, singer_lines([purchase(1)]))
    assert run.returncode == 1
    assert f"`{typo}` is not a setting; did you mean `{meant}`?" in run.stderr
    assert fake.requests == []
    assert "Traceback" not in run.stderr


def test_a_config_using_the_sdk_settings_runs(fake, tmp_path):
    config = target_config(
        fake.url, batch_size_rows=50, validate_records=True, add_record_metadata=False,
        load_method="append-only", flattening_enabled=False, flattening_max_depth=1,
        stream_maps={"conversions": {"currency": "currency"}}, stream_map_config={"k": "v"},
        faker_config={"seed": 1}, summary_file="report.json", consent_property=None,
        batch_wait_limit_seconds=5, input_format="freshpaint", property_paths={},
    )
    run = run_target(tmp_path / "run", config, singer_lines([purchase(i) for i in range(5)]))
    assert run.returncode == 0, run.stderr
    assert fake.accepted_ids() == {f"ord-{i}" for i in range(5)}


SECRET = "tok-very-secret-4242"


@pytest.mark.parametrize(
    "token", [[SECRET], {"token": SECRET}, 4242424242, f"{SECRET}\nX-Evil: 1", f"{SECRET}é"]
)
def test_a_token_of_the_wrong_type_or_characters_is_refused_without_quoting_it(tmp_path, token):
    config = target_config("http://127.0.0.1:9/capi-direct/events/", auth_token=token)
    run = run_target(tmp_path / "run", config, singer_lines([purchase(1)]))
    assert run.returncode == 1
    assert "auth_token" in run.stderr
    assert SECRET not in run.stderr
    assert "4242424242" not in run.stderr


@pytest.mark.parametrize(
    ("api_url", "words"),
    [
        ("https://user:pa55word@capi.example.com/capi-direct/events/", "user name or password"),
        ("http://capi.example.com/capi-direct/events/", "must use https://"),
        ("http://10.1.2.3:8080/capi-direct/events/", "must use https://"),
        ("https://capi.example.com:99999/capi-direct/events/", "not a valid URL"),
        ("http://", "with a host"),
        ("ftp://capi.example.com/", "https:// URL"),
    ],
)
def test_unsafe_or_broken_api_urls_are_refused_at_start_up(tmp_path, api_url, words):
    run = run_target(tmp_path / "run", target_config(api_url), singer_lines([purchase(1)]))
    assert run.returncode == 1
    assert words in run.stderr
    assert "pa55word" not in run.stderr
    assert "Internal error" not in run.stderr


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_plain_http_to_this_machine_is_allowed(host):
    url = f"http://{host}:8080/capi-direct/events/"
    assert Settings.from_config({**GOOD, "api_url": url}).api_url == url


def test_output_files_that_cannot_work_are_refused(tmp_path):
    with pytest.raises(SettingsError, match="rejects_file and dry_run_file name the same file"):
        Settings.from_config({**GOOD, "dry_run_file": str(tmp_path / "x.jsonl"),
                              "rejects_file": str(tmp_path / "x.jsonl")})
    with pytest.raises(SettingsError, match="rejects_file names a directory"):
        Settings.from_config({**GOOD, "rejects_file": str(tmp_path)})
    for ledger in ("sqlite:///file:l%65dger.db?uri=true", f"sqlite:///file:{tmp_path}/ledger.db"):
        # SQLite decodes a `file:` URI's path: the ledger's file, not another
        with pytest.raises(SettingsError, match="name the same file"):
            Settings.from_config({**GOOD, "ledger_url": ledger,
                                  "summary_file": str(tmp_path / "ledger.db")
                                  if tmp_path.as_posix() in ledger else "ledger.db"})
    with pytest.raises(SettingsError, match="one names a file under the other's"):
        Settings.from_config({**GOOD, "rejects_file": str(tmp_path / "out" / "r"),
                              "summary_file": str(tmp_path / "out" / "r" / "s.json")})
    for folder in ("missing/out/", "missing/.", "missing/.."):  # a folder not made yet
        with pytest.raises(SettingsError, match="dry_run_file names a directory"):
            Settings.from_config({**GOOD, "dry_run_file": f"{tmp_path}/{folder}"})
    made = Settings.from_config({**GOOD, "rejects_file": str(tmp_path / "new" / "r.jsonl")})
    assert made.rejects_file == str(tmp_path / "new" / "r.jsonl")  # created when first written


def test_a_request_timeout_beyond_an_hour_is_refused(tmp_path):
    config = target_config("http://127.0.0.1:9/capi-direct/events/", request_timeout=1e300)
    run = run_target(tmp_path / "run", config, singer_lines([purchase(1)]))
    assert run.returncode == 1
    assert "request_timeout" in run.stderr
    assert "Internal error" not in run.stderr


def test_mapping_processes_default_to_the_usable_cpus_and_zero_is_accepted(monkeypatch):
    from target_spotify_conversions import settings as settings_module

    assert Settings.from_config(GOOD).mapping_processes == settings_module.default_processes()
    assert Settings.from_config({**GOOD, "mapping_processes": 0}).mapping_processes == 0
    assert Settings.from_config({**GOOD, "mapping_processes": 3}).mapping_processes == 3
    monkeypatch.setattr(settings_module, "can_start_workers", lambda: False)  # as on Windows
    with pytest.raises(SettingsError, match="mapping_processes: this system cannot start"):
        Settings.from_config({**GOOD, "mapping_processes": 2})
    assert Settings.from_config({**GOOD, "mapping_processes": 0}).mapping_processes == 0


@pytest.mark.parametrize("method", ["upsert", "overwrite"])
def test_a_load_method_an_event_api_cannot_do_is_refused_at_start(fake, tmp_path, method):
    # Accepted, it would run as append-only: an "overwrite" would leave Spotify's events be.
    config = target_config(fake.url, load_method=method)
    run = run_target(tmp_path / "run", config, singer_lines([purchase(1)]))
    assert run.returncode == 1
    assert f"load_method `{method}` is not possible" in run.stderr
    assert "cannot update (upsert) or delete (overwrite)" in run.stderr
    assert fake.requests == []
    assert "Traceback" not in run.stderr


def test_settings_refuse_a_load_method_other_than_append_only():
    assert Settings.from_config({**GOOD, "load_method": "append-only"})
    with pytest.raises(SettingsError, match="load_method `upsert` is not possible"):
        Settings.from_config({**GOOD, "load_method": "upsert"})


def test_about_says_what_each_sdk_setting_does_here_and_what_is_required():
    from click.testing import CliRunner

    from target_spotify_conversions.target import TargetSpotifyConversions

    result = CliRunner().invoke(TargetSpotifyConversions.cli, ["--about", "--format=json"])
    settings = json.loads(result.output)["settings"]["properties"]
    assert settings["load_method"]["default"] == "append-only"  # no enum: the target says why
    assert "refused" in settings["load_method"]["description"]
    assert "Ignored here" in settings["add_record_metadata"]["description"]
    assert "events_per_request" in settings["batch_size_rows"]["description"]
    for name in ("auth_token", "capi_connection_id"):
        assert "Required unless dry_run is true" in settings[name]["description"]
    schema = json.loads(result.output)["settings"]
    assert schema["if"] == {"properties": {"dry_run": {"const": True}}, "required": ["dry_run"]}
    assert schema["else"] == {"anyOf": [{"required": ["capi_connection_id", "auth_token"]},
                                        {"required": ["connections"]}]}


def test_a_run_without_token_or_connection_says_both_are_required_unless_dry_run(tmp_path):
    config = {"rejects_file": "rejects.jsonl"}
    run = run_target(tmp_path / "run", config, singer_lines([purchase(1)]))
    assert run.returncode == 1
    assert "capi_connection_id and auth_token are required (unless dry_run is true)" in run.stderr
    dry = run_target(tmp_path / "dry", {**config, "dry_run": True, "dry_run_file": "d.jsonl"},
                     singer_lines([purchase(1)]))
    assert dry.returncode == 0, dry.stderr


# --- output paths (issue 19: every output a regular file or absent, checked at start) ---------


def _outputs(tmp_path, **paths):
    return {**GOOD, "dry_run_file": str(tmp_path / "bodies.jsonl"), **paths}


def test_an_output_path_that_is_a_fifo_or_a_device_is_refused(tmp_path):
    fifo = tmp_path / "rejects.fifo"
    os.mkfifo(fifo)
    with pytest.raises(SettingsError, match=r"rejects_file names a FIFO .*not a regular file"):
        Settings.from_config(_outputs(tmp_path, rejects_file=str(fifo)))
    with pytest.raises(SettingsError, match="summary_file names a device, not a regular file"):
        Settings.from_config(_outputs(tmp_path, summary_file="/dev/full"))
    with pytest.raises(SettingsError, match="dry_run_file names a FIFO"):
        Settings.from_config({**GOOD, "dry_run": True, "dry_run_file": str(fifo)})
    off = Settings.from_config(_outputs(tmp_path, rejects_file=os.devnull))
    assert off.rejects_file == os.devnull  # /dev/null still turns the rejects file off


def test_an_output_path_under_a_regular_file_is_refused(tmp_path):
    (tmp_path / "plain").write_text("x")
    with pytest.raises(SettingsError, match="rejects_file: a part of the path is a file"):
        Settings.from_config(_outputs(tmp_path, rejects_file=str(tmp_path / "plain" / "r.jsonl")))
    deeper = tmp_path / "plain" / "new" / "r.jsonl"
    with pytest.raises(SettingsError, match="summary_file: a part of the path is a file"):
        Settings.from_config(_outputs(tmp_path, summary_file=str(deeper)))


def test_an_output_name_too_long_for_the_file_system_is_refused(tmp_path):
    with pytest.raises(SettingsError, match=r"rejects_file: .*longer than the file system allows"):
        Settings.from_config(_outputs(tmp_path, rejects_file=str(tmp_path / ("r" * 300))))
    in_new_folder = tmp_path / ("d" * 300) / "r.jsonl"
    with pytest.raises(SettingsError, match=r"summary_file: .*longer than the file system allows"):
        Settings.from_config(_outputs(tmp_path, summary_file=str(in_new_folder)))
    fits = Settings.from_config(_outputs(tmp_path, rejects_file=str(tmp_path / ("r" * 255))))
    assert fits.rejects_file == str(tmp_path / ("r" * 255))


@pytest.mark.parametrize("setting", ["rejects_file", "summary_file", "dry_run_file"])
@pytest.mark.parametrize("where", ["file", "folder"])
def test_an_output_path_through_a_link_to_nothing_is_refused(tmp_path, setting, where):
    """A volume not mounted, a folder moved: the run would write where no one looks, or fail
    mid-run. A link to something is followed as before."""
    link = tmp_path / "out"
    link.symlink_to(tmp_path / "missing" / "out")
    path = link if where == "file" else link / "new" / "output.jsonl"
    with pytest.raises(SettingsError, match=rf"^{setting}: '{link}' is a symbolic link to "
                                            rf"'{tmp_path}/missing/out', which does not exist"):
        Settings.from_config({**_outputs(tmp_path), "dry_run": True, setting: str(path)})
    (tmp_path / "missing" / "out").mkdir(parents=True)
    if where == "file":
        (tmp_path / "missing" / "out").rmdir()
        (tmp_path / "missing" / "out").write_text("")
    settings = Settings.from_config({**_outputs(tmp_path), "dry_run": True, setting: str(path)})
    assert getattr(settings, setting) == str(path)


def test_no_output_may_be_a_file_the_settings_were_read_from(tmp_path):
    config = tmp_path / "config.json"
    config.write_text("{}")
    settings = {**GOOD, "rejects_file": str(config)}
    with pytest.raises(SettingsError, match="rejects_file and the --config file name the same"):
        Settings.from_config(settings, read_from=[("the --config file", str(tmp_path / "o")),
                                                  ("the --config file", str(config))])
    other = {**GOOD, "rejects_file": str(tmp_path / "rejects.jsonl")}
    twice = [("the --config file", str(config))] * 2
    assert Settings.from_config(other, read_from=twice).rejects_file


@pytest.mark.parametrize("url", ["sqlite+pysqlite:///{}", "sqlite:///{}?timeout=5"])
def test_a_ledger_url_with_a_driver_or_a_query_is_still_a_file_no_output_may_be(tmp_path, url):
    rejects = tmp_path / "rejects.jsonl"
    settings = {**GOOD, "rejects_file": str(rejects), "ledger_url": url.format(rejects)}
    with pytest.raises(SettingsError, match=r"the ledger \(ledger_url\) and rejects_file name"):
        Settings.from_config(settings)
    config = tmp_path / "config.json"
    config.write_text("{}")
    settings = {**GOOD, "ledger_url": url.format(config)}
    with pytest.raises(SettingsError, match="the --config file name the same file"):
        Settings.from_config(settings, read_from=[("the --config file", str(config))])


def test_two_outputs_that_are_hard_links_or_links_of_one_file_are_refused(tmp_path):
    rejects = tmp_path / "rejects.jsonl"
    rejects.write_text("")
    os.link(rejects, tmp_path / "bodies.jsonl")
    with pytest.raises(SettingsError, match="rejects_file and dry_run_file name the same file"):
        Settings.from_config({**GOOD, "dry_run": True, "rejects_file": str(rejects),
                              "dry_run_file": str(tmp_path / "bodies.jsonl")})
    (tmp_path / "summary.json").symlink_to(rejects)
    with pytest.raises(SettingsError, match="summary_file and rejects_file name the same file"):
        Settings.from_config(_outputs(tmp_path / "x", rejects_file=str(rejects),
                                      summary_file=str(tmp_path / "summary.json")))


def test_an_output_that_is_the_ledger_file_is_refused(tmp_path):
    """Rejects appended to the SQLite ledger would be lost, and the ledger damaged."""
    ledger = tmp_path / "ledger.sqlite"
    with pytest.raises(SettingsError, match="the same file"):
        Settings.from_config({**GOOD, "ledger_url": f"sqlite:///{ledger}",
                              "rejects_file": str(ledger)})


def test_a_config_file_that_is_no_json_fails_in_one_line(tmp_path):
    config = tmp_path / "config.json"
    config.write_text('{"dry_run": true, "auth_token": "tok-s3cr3t",}')
    run = subprocess.run(
        [TARGET_BIN, "--config", str(config)], input="", capture_output=True, text=True,
        timeout=60, check=False,
    )
    assert run.returncode == 1
    assert "a --config file is not valid JSON" in run.stderr
    assert "Traceback" not in run.stderr
    assert "tok-s3cr3t" not in run.stderr


def test_a_typo_is_named_before_the_settings_it_hid(tmp_path):
    """`dryrun` for dry_run: the run must say so, not that the token is required."""
    run = run_target(tmp_path / "run", {"dryrun": True}, singer_lines([purchase(1)]))
    assert run.returncode == 1
    assert "`dryrun` is not a setting" in run.stderr
    assert "did you mean `dry_run`" in run.stderr


def test_an_unknown_setting_that_is_an_email_is_described_not_quoted():
    from target_spotify_conversions.settings import unknown_settings

    messages = unknown_settings({"jane.doe@example.com": 1, "dryrun": True}, ["dry_run"])
    assert messages[0] == "`dryrun` is not a setting; did you mean `dry_run`?"
    assert "jane.doe" not in messages[1]
    assert messages[1].startswith("a string of 20 characters is not a setting")


@pytest.mark.parametrize(("variable", "value", "words"), [
    ("MAPPING_PROCESSES", "two", "is not a whole number"),
    ("CONNECTIONS", '{"brand_a": {"auth_token": "tok-9f2c1e7a"', "is not valid JSON"),
    ("EVENT_NAME_MAP", "{Order Completed: PURCHASE}", "is not valid JSON"),
])
def test_an_environment_variable_the_sdk_cannot_read_is_named_in_one_line(
    tmp_path, variable, value, words
):
    """`--config ENV` with a value of the wrong type: the SDK would end with a traceback that
    names neither the variable nor the setting."""
    import subprocess

    from tests.checkout import clean_env
    from tests.harness import CONNECTION_ID, TARGET_BIN

    env = clean_env(
        TARGET_SPOTIFY_CONVERSIONS_DRY_RUN="true",
        TARGET_SPOTIFY_CONVERSIONS_CAPI_CONNECTION_ID=CONNECTION_ID,
        **{f"TARGET_SPOTIFY_CONVERSIONS_{variable}": value},
    )
    run = subprocess.run([TARGET_BIN, "--config", "ENV"], cwd=tmp_path, env=env,
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
                         check=False)
    assert run.returncode == 1
    assert f"TARGET_SPOTIFY_CONVERSIONS_{variable} {words}" in run.stderr
    assert "Traceback" not in run.stderr
    assert value not in run.stderr
    assert "tok-9f2c1e7a" not in run.stderr
    assert run.stdout == ""


def test_each_environment_variable_is_read_as_its_settings_type():
    from target_spotify_conversions.settings import read_environment

    schema = {"properties": {
        "n": {"type": ["integer", "null"]}, "flag": {"type": "boolean"},
        "x": {"type": ["number", "null"]},
        "names": {"type": "array", "items": {"type": "string"}},
        "rows": {"type": "array", "items": {"type": "object"}},
        "map": {"anyOf": [{"type": "object"}, {"type": "null"}]}, "text": {"type": "string"},
    }}
    good = {"P_N": "3", "P_FLAG": "Off", "P_X": "2.5", "P_NAMES": "a,b", "P_ROWS": "[]",
            "P_MAP": "{}", "P_TEXT": "{", "OTHER": "1", "P__EXTRA": "meltano's",
            "P_LOGLEVEL": "DEBUG"}
    assert read_environment(schema, "P_", good) == ({
        "n": 3, "flag": False, "x": 2.5, "names": ["a", "b"], "rows": [], "map": {},
        "text": "{"}, [])
    bad = {"P_N": "3.5", "P_ROWS": "a,b", "P_MAP": "x", "P_FLAG": "maybe", "P_X": "nan",
           "P_FLAGG": "1"}
    assert read_environment(schema, "P_", bad)[1] == [
        "P_FLAG is not true or false (its value is not shown)",
        "P_FLAGG is not a setting; did you mean P_FLAG?",
        "P_MAP is not valid JSON (its value is not shown)",
        "P_N is not a whole number (its value is not shown)",
        "P_ROWS is not valid JSON (its value is not shown)",
        "P_X is not a finite number (its value is not shown)",
    ]


@pytest.mark.parametrize(("variables", "words"), [
    ({"DRYRUN": "true"}, "TARGET_SPOTIFY_CONVERSIONS_DRYRUN is not a setting; did you mean "
                         "TARGET_SPOTIFY_CONVERSIONS_DRY_RUN?"),
    ({"DRY_RUN": "maybe"}, "TARGET_SPOTIFY_CONVERSIONS_DRY_RUN is not true or false"),
])
def test_a_misspelt_variable_or_an_unclear_boolean_stops_the_run_before_sending(
    fake, tmp_path, variables, words
):
    """Read by the SDK, both would send real data: the name ignored, `maybe` taken as false."""
    import subprocess

    from tests.checkout import clean_env
    from tests.harness import TARGET_BIN, TOKEN

    env = clean_env(
        TARGET_SPOTIFY_CONVERSIONS_API_URL=fake.url,
        TARGET_SPOTIFY_CONVERSIONS_AUTH_TOKEN=TOKEN,
        TARGET_SPOTIFY_CONVERSIONS_CAPI_CONNECTION_ID=CONNECTION_ID,
        **{f"TARGET_SPOTIFY_CONVERSIONS_{name}": value for name, value in variables.items()},
    )
    run = subprocess.run([TARGET_BIN, "--config", "ENV"], cwd=tmp_path, env=env,
                         input="\n".join(singer_lines([purchase(1)])) + "\n",
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 1
    assert words in run.stderr
    assert "Traceback" not in run.stderr
    assert fake.requests == []


def test_numbers_and_booleans_from_the_environment_run(fake, tmp_path):
    """The SDK reads numbers as text: REQUEST_TIMEOUT=30 failed the schema."""
    import subprocess

    from tests.checkout import clean_env
    from tests.harness import TARGET_BIN, TOKEN

    env = clean_env(
        TARGET_SPOTIFY_CONVERSIONS_API_URL=fake.url,
        TARGET_SPOTIFY_CONVERSIONS_AUTH_TOKEN=TOKEN,
        TARGET_SPOTIFY_CONVERSIONS_CAPI_CONNECTION_ID=CONNECTION_ID,
        TARGET_SPOTIFY_CONVERSIONS_REQUEST_TIMEOUT="30",
        TARGET_SPOTIFY_CONVERSIONS_MAX_REJECTED_SHARE="0.5",
        TARGET_SPOTIFY_CONVERSIONS_DRY_RUN="No",
        TARGET_SPOTIFY_CONVERSIONS_EVENTS_PER_REQUEST="2",
        TARGET_SPOTIFY_CONVERSIONS_LEDGER_URL="none",
    )
    run = subprocess.run([TARGET_BIN, "--config", "ENV"], cwd=tmp_path, env=env,
                         input="\n".join(singer_lines([purchase(i) for i in range(3)])) + "\n",
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    assert len(fake.requests) == 2
    assert "Setting request_timeout read from TARGET_SPOTIFY_CONVERSIONS_REQUEST_TIMEOUT" in (
        run.stderr)


SECRET = "SECRETtok123"


@pytest.mark.parametrize("settings", [
    {"load_method": SECRET},
    {"event_name_map": {"signup": SECRET}},
    {"default_event_name": SECRET},
    {SECRET: True},
    {"phone_default_country": SECRET},
    {"ledger_url": "postgresql+psycopg://user:PASSW0RDx@db.example/ledger",
     "default_event_name": "PASSW0RDx"},
    {"connections": {"brand_a": {"capi_connection_id": CONNECTION_ID,
                                 "auth_token": "CONNsecret99"}},
     "load_method": "CONNsecret99"},
], ids=["load_method", "event_name_map", "default_event_name", "a key", "country", "ledger",
        "connections"])
def test_a_secret_pasted_into_another_setting_is_not_shown(fake, tmp_path, settings):
    config = target_config(fake.url, auth_token=SECRET, **settings)
    run = run_target(tmp_path / "run", config, singer_lines([purchase(1)]))
    assert run.returncode == 1
    for secret in (SECRET, "PASSW0RDx", "CONNsecret99"):
        assert secret not in run.stderr
    assert "Traceback" not in run.stderr
    assert fake.requests == []


PASTED = "k7Qz9xW2pL4vN8"  # a short token, pasted where no secret setting holds it


@pytest.mark.parametrize("settings", [
    {"mapping_processes": PASTED},
    {"dry_run": PASTED},
    {"load_method": PASTED},
    {"request_timeout": PASTED},
    {"event_name_map": {"signup": PASTED}},
], ids=["mapping_processes", "dry_run", "load_method", "request_timeout", "event_name_map"])
def test_a_token_in_a_setting_of_the_wrong_type_is_not_shown(fake, tmp_path, settings):
    """Found by an attack: a token pasted into `dry_run` or `mapping_processes` was quoted by
    the schema's message unless it equalled a configured secret or passed 40 characters."""
    config = target_config(fake.url, **settings)
    run = run_target(tmp_path / "run", config, singer_lines([purchase(1)]))
    assert run.returncode == 1
    assert PASTED not in run.stderr
    assert PASTED[:8] not in run.stderr
    assert f"a string of {len(PASTED)} characters (not shown)" in run.stderr
    assert "Traceback" not in run.stderr
    assert fake.requests == []


@pytest.mark.parametrize("settings", [
    {f"TARGET_SPOTIFY_CONVERSIONS_AUTH_TOKEN={PASTED}": ""},  # an env line pasted as a key
    {"event_name_map": {PASTED: "PURCHSE"}},
    {"property_paths": {PASTED: ["x"]}},
    {"dry_run": "QwErTyUiOpAsDfGhJkLz"},
    {"events_per_request": 83920174658392017},  # digits as a JSON number
], ids=["setting name", "event_name_map key", "property_paths key", "letters only", "number"])
def test_a_token_as_a_key_or_of_letters_only_is_not_shown(fake, tmp_path, settings):
    config = target_config(fake.url, **settings)
    run = run_target(tmp_path / "run", config, singer_lines([purchase(1)]))
    assert run.returncode == 1
    for token in (PASTED, "QwErTyUiOpAsDfGhJkLz", "8392017465"):
        assert token[:10] not in run.stderr
    assert "(not shown)" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_mistyped_word_in_a_setting_is_still_shown(fake, tmp_path):
    """What helps to fix a typo stays: words, event names, a number written as text."""
    for settings, shown in (({"dry_run": "ture"}, "'ture'"),
                            ({"event_name_map": {"signup": "SING_UP_COMPLETE"}},
                             "'SING_UP_COMPLETE'"),
                            ({"event_name_map": {"signup": "CUSTOM_EVENT_6"}},
                             "'CUSTOM_EVENT_6'"),
                            ({"mapping_processes": "2"}, "'2'")):
        config = target_config(fake.url, **settings)
        run = run_target(tmp_path / f"run-{len(shown)}", config, singer_lines([purchase(1)]))
        assert run.returncode == 1
        assert shown in run.stderr, run.stderr[-1500:]


@pytest.mark.parametrize("url", [
    "postgresql://app@db.example:SOMEPASSWORD/ledger",  # a password typed where the port goes
    "postgresql://app:pw@db.example:5432x/ledger",
    "postgresql://app:p@ssSOMEPASSWORD@db.example:5432/ledger",  # an `@` not written %40
])
def test_a_ledger_url_whose_port_is_no_number_is_refused_in_one_line(fake, tmp_path, url):
    """Found by an attack: this was an internal error with a traceback."""
    config = target_config(fake.url, ledger_url=url)
    run = run_target(tmp_path / "run", config, singer_lines([purchase(1)]))
    assert run.returncode == 1
    assert ("ledger_url cannot be read as an SQLAlchemy URL" in run.stderr
            or "an `@` in its password must be written %40" in run.stderr)
    assert "SOMEPASSWORD" not in run.stderr
    assert "Traceback" not in run.stderr
    assert "Internal error" not in run.stderr
    assert fake.requests == []


def test_a_secret_in_the_query_of_ledger_url_is_scrubbed_from_config_messages():
    url = "postgresql+psycopg://app@db.example/ledger?password=Qz8v2Lw9Xk&sslmode=require"
    message = without_secrets(f"{url!r} and Qz8v2Lw9Xk alone; sslmode=require", {"ledger_url": url})
    assert "Qz8v2Lw9Xk" not in message
    assert "sslmode=require" in message


@pytest.mark.parametrize("method", ["Append-Only", "append_only", 5, ["append-only"]])
def test_a_load_method_that_is_no_method_is_named_as_such(method):
    with pytest.raises(SettingsError, match="is not a load method: the only one here is"):
        Settings.from_config({**GOOD, "load_method": method})


def test_a_long_value_in_a_setting_of_few_choices_is_not_quoted(fake, tmp_path):
    """The schema's message quotes the value it refuses: a token pasted there would show."""
    token = "BQDx9" + "k" * 50
    for settings in ({"on_invalid": token}, {"input_format": token},
                     {"default_action_source": token}):
        config = target_config(fake.url, **settings)
        run = run_target(tmp_path / f"run-{len(settings)}-{next(iter(settings))}", config,
                         singer_lines([purchase(1)]))
        assert run.returncode == 1
        assert token not in run.stderr
        assert token[:20] not in run.stderr
        assert "Traceback" not in run.stderr


def test_null_for_an_sdk_setting_means_unset(fake, tmp_path):
    """`stream_maps: null` ended in the SDK's traceback."""
    config = target_config(fake.url, stream_maps=None, stream_map_config=None,
                           flattening_enabled=None)
    run = run_target(tmp_path / "run", config, singer_lines([purchase(1)]))
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.count("events delivered") == 1


def test_a_retention_beyond_a_century_is_refused_at_start(fake, tmp_path):
    config = target_config(fake.url, ledger_retention_days=99_999_999_999_999_999_999)
    run = run_target(tmp_path / "run", config, singer_lines([purchase(1)]))
    assert run.returncode == 1
    assert "ledger_retention_days" in run.stderr
    assert "Internal error" not in run.stderr
    assert fake.requests == []


@pytest.mark.parametrize("wrong", [
    {"events_per_request": 5000},  # the target's own check
    {"dryrun": True},  # a misspelt setting name
    {"max_concurrent_requests": "four"},  # JSON schema's
])
def test_a_run_refused_at_start_replaces_the_last_summary_file(tmp_path, wrong):
    """An alert on the summary file must not read the last run's `completed` as this run's."""
    work = tmp_path / "run"
    config = target_config("http://127.0.0.1:9/capi-direct/events/",
                           summary_file="summary.json", dry_run=True)
    assert run_target(work, config, singer_lines([purchase(1)])).returncode == 0
    assert json.loads((work / "summary.json").read_text())["outcome"] == "completed"
    config = {**config, "dry_run": False, **wrong}
    run = run_target(work, config, singer_lines([purchase(1)]))
    assert run.returncode == 1
    summary = json.loads((work / "summary.json").read_text())
    assert summary["outcome"] == "failed: settings refused"
    assert summary["records_read"] == 0
    assert config["auth_token"] not in (work / "summary.json").read_text()


@pytest.mark.parametrize(("kept", "settings"), [
    # the ledger, by its default path (ledger_url empty means the default)
    (b"SQLite format 3\x00" + bytes(100), {"ledger_url": ""}),
    # another output (a one-line rejects file is a JSON object too, with a run_id)
    (b'{"run_id": "r-1", "reasons": ["invalid_email"]}\n', {"rejects_file": "kept.file"}),
    # a connection's dry-run file, and an input file: JSON lines
    (b'{"data": []}\n{"data": []}\n', {"dry_run": True}),
])
def test_a_refused_run_writes_its_summary_over_no_other_file(tmp_path, kept, settings):
    """The refusal may be of summary_file itself: only a path holding nothing, or an earlier
    summary, is written."""
    work = tmp_path / "run"
    work.mkdir()
    (work / "kept.file").write_bytes(kept)
    if "ledger_url" in settings:
        (work / "kept.file").rename(work / "spotify-conversions-ledger.sqlite")
        settings = {**settings, "summary_file": "spotify-conversions-ledger.sqlite"}
    config = target_config("http://127.0.0.1:9/capi-direct/events/",
                           **{"summary_file": "kept.file", **settings, "typo_setting": 1})
    run = run_target(work, config, singer_lines([purchase(1)]))
    assert run.returncode == 1
    assert "typo_setting" in run.stderr
    name = config["summary_file"]
    assert (work / name).read_bytes() == kept


def test_a_run_whose_output_is_a_link_to_nothing_stops_at_start_and_keeps_the_links(
    fake, tmp_path
):
    work = tmp_path / "run"
    (work / "out").mkdir(parents=True)
    for name in ("rejects.jsonl", "summary.json"):
        (work / "out" / name).symlink_to(tmp_path / "unmounted" / name)
    config = target_config(fake.url, rejects_file="out/rejects.jsonl",
                           summary_file="out/summary.json")
    run = run_target(work, config, singer_lines([purchase(1)]))
    assert run.returncode == 1
    assert (f"rejects_file: '{work}/out/rejects.jsonl' is a symbolic link to "
            f"'{tmp_path}/unmounted/rejects.jsonl', which does not exist") in run.stderr
    assert fake.requests == []
    assert sorted(path.name for path in (work / "out").iterdir() if path.is_symlink()) == [
        "rejects.jsonl", "summary.json"]
    assert not (tmp_path / "unmounted").exists()


def test_a_dotenv_file_in_the_working_directory_is_read(fake, tmp_path):
    """`--config ENV` with the settings in ./.env, as a user keeps them beside a pipeline."""
    import subprocess

    from tests.checkout import clean_env
    from tests.harness import TARGET_BIN, TOKEN

    (tmp_path / ".env").write_text(
        f"TARGET_SPOTIFY_CONVERSIONS_API_URL={fake.url}\n"
        f"TARGET_SPOTIFY_CONVERSIONS_AUTH_TOKEN={TOKEN}\n"
        f"TARGET_SPOTIFY_CONVERSIONS_CAPI_CONNECTION_ID={CONNECTION_ID}\n"
        "TARGET_SPOTIFY_CONVERSIONS_LEDGER_URL=none\n"
    )
    run = subprocess.run([TARGET_BIN, "--config", "ENV"], cwd=tmp_path, env=clean_env(),
                         input="\n".join(singer_lines([purchase(1)])) + "\n",
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    assert len(fake.requests) == 1
    assert TOKEN not in run.stderr


def test_a_refused_environment_replaces_the_last_summary_file(fake, tmp_path):
    """`--config ENV` with a variable of the wrong type: refused before any config exists."""
    import subprocess

    from tests.checkout import clean_env
    from tests.harness import TARGET_BIN

    env = clean_env(TARGET_SPOTIFY_CONVERSIONS_DRY_RUN="true",
                    TARGET_SPOTIFY_CONVERSIONS_LEDGER_URL="none",
                    TARGET_SPOTIFY_CONVERSIONS_SUMMARY_FILE="summary.json")

    def run(**variables: str) -> subprocess.CompletedProcess:
        return subprocess.run([TARGET_BIN, "--config", "ENV"], cwd=tmp_path,
                              env={**env, **variables},
                              input="\n".join(singer_lines([purchase(1)])) + "\n",
                              capture_output=True, text=True, timeout=60, check=False)

    assert run().returncode == 0
    assert json.loads((tmp_path / "summary.json").read_text())["outcome"] == "completed"
    assert run(TARGET_SPOTIFY_CONVERSIONS_EVENTS_PER_REQUEST="many").returncode == 1
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["outcome"] == "failed: settings refused"
