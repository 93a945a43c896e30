"""meltano.yml tells the truth about settings: its loader declares what `--about` prints.

`--about --format=json` is the target's own account of its settings (the README's table is
made from it too, see test_readme.py). Meltano knows only what meltano.yml declares: a
setting missing there is not listed by `meltano config`, a wrong kind makes Meltano parse an
environment value wrongly, a secret not marked sensitive is shown in clear.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from target_spotify_conversions.target import TargetSpotifyConversions

MELTANO_YML = Path(__file__).resolve().parents[1] / "meltano.yml"
PROJECT = yaml.safe_load(MELTANO_YML.read_text(encoding="utf-8"))
NAME = "target-spotify-conversions"

# JSON schema type -> Meltano setting kind.
KINDS = {
    "string": "string",
    "boolean": "boolean",
    "integer": "integer",
    "number": "decimal",
    "object": "object",
    "array": "array",
}


def _about() -> dict[str, Any]:
    """The settings `target-spotify-conversions --about --format=json` prints, by name."""
    result = CliRunner().invoke(TargetSpotifyConversions.cli, ["--about", "--format=json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["settings"]["properties"]


def _loader_settings() -> dict[str, dict[str, Any]]:
    """The settings meltano.yml declares for this loader, by name."""
    [loader] = [plugin for plugin in PROJECT["plugins"]["loaders"] if plugin["name"] == NAME]
    names = [setting["name"] for setting in loader["settings"]]
    assert len(names) == len(set(names)), "a setting is declared twice"
    return {setting["name"]: setting for setting in loader["settings"]}


def _loader_configs() -> list[dict[str, Any]]:
    """Every config block meltano.yml gives this loader: its own and each environment's."""
    configs = [plugin.get("config") or {} for plugin in PROJECT["plugins"]["loaders"]
               if plugin["name"] == NAME]
    for environment in PROJECT.get("environments", []):
        plugins = (environment.get("config") or {}).get("plugins") or {}
        configs += [plugin.get("config") or {} for plugin in plugins.get("loaders", [])
                    if plugin["name"] == NAME]
    return configs


ABOUT = _about()
DECLARED = _loader_settings()


def _json_type(schema: dict[str, Any]) -> str:
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    [json_type] = [t for t in types if t != "null"]
    return json_type


def test_meltano_yml_declares_every_setting_the_target_has_and_no_other():
    assert sorted(set(ABOUT) - set(DECLARED)) == [], "missing from meltano.yml"
    assert sorted(set(DECLARED) - set(ABOUT)) == [], "unknown to the target"


@pytest.mark.parametrize("name", sorted(ABOUT))
def test_each_setting_has_the_kind_of_its_type(name):
    schema, declared = ABOUT[name], DECLARED.get(name)
    assert declared is not None, f"{name} is missing from meltano.yml"
    if schema.get("secret"):
        assert declared.get("sensitive") is True or declared.get("kind") == "password"
        return
    assert not declared.get("sensitive"), "only secrets are hidden"
    if "enum" in schema:
        assert declared.get("kind") == "options"
        offered = [option["value"] for option in declared["options"]]
        assert sorted(offered) == sorted(v for v in schema["enum"] if v is not None)
        return
    assert declared.get("kind") == KINDS[_json_type(schema)]


@pytest.mark.parametrize("name", sorted(ABOUT))
def test_each_default_in_meltano_yml_is_the_targets_default(name):
    # `meltano config list` shows meltano.yml's `value` as the default: it must be the one the
    # target applies when the setting is not given.
    declared = DECLARED.get(name, {})
    assert declared.get("value") == ABOUT[name].get("default")


def test_no_secret_is_written_in_meltano_yml():
    secrets = {name for name, schema in ABOUT.items() if schema.get("secret")}
    assert secrets == {"auth_token", "connections", "ledger_url"}
    for config in _loader_configs():
        for name in secrets & set(config):
            assert str(config[name]).startswith("$"), f"{name}: only from the environment"
