"""The settings of several connections, checked at start-up, naming the connection."""

from __future__ import annotations

import os
from typing import Any

import pytest

from target_spotify_conversions.routing import DEFAULT_CONNECTION
from target_spotify_conversions.settings import Settings, SettingsError

ID_A = "11111111-2222-4333-8444-555555555555"
ID_B = "66666666-7777-4888-9999-aaaaaaaaaaaa"
TOKEN_A = "tok-brand-a-5f0c1e"
TOKEN_B = "tok-brand-b-9d2a7b"


def connections(**changes: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {
        "brand_a": {"capi_connection_id": ID_A, "auth_token": TOKEN_A},
        "brand_b": {"capi_connection_id": ID_B, "auth_token": TOKEN_B},
    }
    found.update(changes)
    return found


def test_connections_alone_need_no_top_level_pair() -> None:
    settings = Settings.from_config({"connections": connections()})
    assert sorted(settings.all_connections()) == ["brand_a", "brand_b"]
    assert settings.all_connections()["brand_b"].auth_token == TOKEN_B
    assert settings.all_connections()["brand_a"].connection_id == ID_A
    assert settings.mapping_options.connection_names == ("brand_a", "brand_b")


def test_the_top_level_pair_is_the_default_connection() -> None:
    settings = Settings.from_config(
        {"connections": connections(), "capi_connection_id": ID_B, "auth_token": "tok-top-1"}
    )
    default = settings.all_connections()[DEFAULT_CONNECTION]
    assert (default.connection_id, default.auth_token) == (ID_B, "tok-top-1")


def test_the_top_level_pair_alone_works_as_before() -> None:
    settings = Settings.from_config({"capi_connection_id": ID_A, "auth_token": TOKEN_A})
    assert settings.connections == {}
    [only] = settings.all_connections().values()
    assert (only.name, only.connection_id, only.auth_token) == ("default", ID_A, TOKEN_A)


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({"capi_connection_id": "not-a-uuid", "auth_token": TOKEN_B}, "must be a UUID"),
        ({"auth_token": TOKEN_B}, "capi_connection_id is required"),
        ({"capi_connection_id": ID_B}, "auth_token is required"),
        ({"capi_connection_id": ID_B, "auth_token": "tok\nB"}, "line break"),
        ({"capi_connection_id": ID_B, "auth_token": TOKEN_B, "token": "x"}, "only"),
        ("tok-brand-b-as-a-string", "must be an object"),
    ],
)
def test_a_config_error_in_one_connection_is_refused_naming_it(entry: Any, words: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_config({"connections": connections(brand_b=entry)})
    message = str(caught.value)
    assert "connections['brand_b']" in message
    assert words in message
    for secret in (TOKEN_A, TOKEN_B, "tok\nB", "tok-brand-b-as-a-string", ID_A, ID_B):
        assert secret not in message


@pytest.mark.parametrize("name", ["default", "brand a", "", "brand/a", "x" * 65])
def test_connection_names_are_short_file_safe_words_other_than_default(name: str) -> None:
    config = {name: {"capi_connection_id": ID_A, "auth_token": TOKEN_A}}
    with pytest.raises(SettingsError, match="connections"):
        Settings.from_config({"connections": config})


def test_a_name_that_is_no_name_is_not_quoted() -> None:
    pasted = "tok/brand-a+secret=="  # a token pasted where the name goes
    config = {pasted: {"capi_connection_id": ID_A, "auth_token": TOKEN_A}}
    with pytest.raises(SettingsError) as caught:
        Settings.from_config({"connections": config})
    assert pasted not in str(caught.value)
    assert "a name of 20 characters (not shown)" in str(caught.value)


def test_stream_connections_must_name_known_connections() -> None:
    with pytest.raises(SettingsError, match=r"stream_connections\['orders'\] names no") as caught:
        Settings.from_config(
            {"connections": connections(), "stream_connections": {"orders": "sk_live_Tok3n"}}
        )
    assert "sk_live_Tok3n" not in str(caught.value)  # a token pasted there is not repeated
    settings = Settings.from_config(
        {"connections": connections(), "stream_connections": {"orders": "brand_b"}}
    )
    assert settings.mapping_options.stream_connections == {"orders": "brand_b"}


def test_default_may_be_routed_to_only_when_the_top_level_pair_is_set() -> None:
    config = {"connections": connections(), "stream_connections": {"orders": "default"}}
    with pytest.raises(SettingsError, match="names no connection"):
        Settings.from_config(config)
    Settings.from_config({**config, "capi_connection_id": ID_A, "auth_token": TOKEN_A})


@pytest.mark.parametrize(
    "config",
    [
        {"connection_property": "brand", "capi_connection_id": ID_A, "auth_token": TOKEN_A},
        {"stream_connections": {"s": "default"}, "capi_connection_id": ID_A, "auth_token": "t1"},
    ],
)
def test_routing_settings_without_connections_are_refused(config: dict[str, Any]) -> None:
    with pytest.raises(SettingsError, match="set `connections` too"):
        Settings.from_config(config)


def test_a_dry_run_needs_ids_but_no_tokens() -> None:
    entry = {"brand_a": {"capi_connection_id": ID_A}}
    settings = Settings.from_config({"dry_run": True, "connections": entry})
    assert settings.all_connections()["brand_a"].auth_token == ""
    with pytest.raises(SettingsError, match=r"capi_connection_id is required$"):
        Settings.from_config({"dry_run": True, "connections": {"brand_a": {}}})


def test_each_connections_dry_run_file_is_distinct_from_the_other_outputs(tmp_path) -> None:
    """The rejects or the summary written into a connection's dry-run file would spoil its
    request bodies (or the bodies the summary)."""
    base = {"connections": connections(), "dry_run": True, "connection_property": "brand"}
    for setting in ("rejects_file", "summary_file"):
        with pytest.raises(SettingsError, match=f"{setting}|dry-run file of brand_a"):
            Settings.from_config({
                **base,
                "dry_run_file": str(tmp_path / "dry.jsonl"),
                setting: str(tmp_path / "dry.brand_a.jsonl"),
            })
    Settings.from_config({**base, "dry_run_file": str(tmp_path / "dry.jsonl"),
                          "rejects_file": str(tmp_path / "rejects.jsonl")})


def test_a_connections_dry_run_file_is_checked_at_start_like_dry_run_file(tmp_path) -> None:
    """Found by an attack: a dry_run_file name that fits the file system's limit passed, and
    the run failed when it opened the longer name with a connection's in it."""
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    longest = str(tmp_path / ("d" * (limit - len(".jsonl")) + ".jsonl"))
    base = {"connections": connections(), "dry_run": True, "connection_property": "brand"}
    with pytest.raises(SettingsError, match=r"^the dry-run file of brand_a \(dry_run_file with "
                       r"the connection's name\): .*longer than the file system allows"):
        Settings.from_config({**base, "dry_run_file": longest})
    alone = {"capi_connection_id": ID_A, "dry_run": True, "dry_run_file": longest}
    assert Settings.from_config(alone).dry_run_file == longest  # the name itself fits
    os.mkfifo(tmp_path / "dry.brand_b.jsonl")
    with pytest.raises(SettingsError, match=r"^the dry-run file of brand_b .* names a FIFO"):
        Settings.from_config({**base, "dry_run_file": str(tmp_path / "dry.jsonl")})


def test_a_routing_value_equal_to_a_token_is_never_quoted() -> None:
    """A short token pasted into the routing column has a connection name's shape."""
    from target_spotify_conversions.chunk_codec import ChunkMapper
    from target_spotify_conversions.routing import router_for

    settings = Settings.from_config(
        {"connections": connections(), "capi_connection_id": ID_B, "auth_token": "tok-top-1",
         "connection_property": "brand"}
    )
    options = settings.mapping_options
    assert TOKEN_A not in repr(options)
    assert "tok-top-1" not in repr(options)
    router = router_for(options)
    for token in (TOKEN_A, f" {TOKEN_B} ", "tok-top-1", TOKEN_A.upper()):
        problem = router.route({"brand": token}, "s").problem
        assert problem is not None
        assert problem.code == "unknown_connection"
        assert token.strip() not in str(problem)
        assert "not shown" in str(problem)
    named = router.route({"brand": "brand_c"}, "s").problem
    assert named is not None
    assert "'brand_c'" in str(named)
    # as the workers receive the options: JSON, the digests a list
    import msgspec

    from target_spotify_conversions.worker_pool import _options

    sent = _options(msgspec.json.encode(options))
    result = ChunkMapper(sent).map(b"J", msgspec.json.encode([["s", {"brand": TOKEN_A}]]))
    assert TOKEN_A.encode() not in result
    # the rejects file keeps the routing property (a fed-back record goes the same way),
    # but never a token there
    from target_spotify_conversions.mapping import EventMapper

    kept = EventMapper(sent).redact({"brand": f" {TOKEN_B.upper()} ", "amount": "x"}, "id-1")
    assert TOKEN_B.upper() not in repr(kept)
    assert "not kept" in kept["brand"]
    assert EventMapper(sent).redact({"brand": "brand_c"}, "id-2")["brand"] == "brand_c"
