"""The Meltano plugin definition (plugins/loaders/) is what `--about` says.

The repository's own meltano.yml declares the same settings: both are written by
scripts/plugin_definition.py (`make readme`). tests/test_meltano_add.py adds the target to a
fresh Meltano project from the definition, as a user does.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from click.testing import CliRunner

from scripts.plugin_definition import (
    DEFINITION,
    MELTANO_YML,
    NAME,
    definition_text,
    with_settings,
)
from target_spotify_conversions.target import TargetSpotifyConversions


def _about() -> dict[str, Any]:
    result = CliRunner().invoke(TargetSpotifyConversions.cli, ["--about", "--format=json"])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.output))


ABOUT = _about()
PLUGIN = yaml.safe_load(DEFINITION.read_text(encoding="utf-8"))


def _project_loader() -> dict[str, Any]:
    project = yaml.safe_load(MELTANO_YML.read_text(encoding="utf-8"))
    [loader] = [p for p in project["plugins"]["loaders"] if p["name"] == NAME]
    return dict(loader)


def test_the_definition_is_the_one_about_makes():
    assert DEFINITION.read_text(encoding="utf-8") == definition_text(ABOUT), (
        "run `make readme` to refresh the plugin definition"
    )


def test_meltano_yml_declares_the_settings_of_the_definition():
    text = MELTANO_YML.read_text(encoding="utf-8")
    assert text == with_settings(text, ABOUT), "run `make readme` to refresh meltano.yml"
    loader = _project_loader()
    assert loader["settings"] == PLUGIN["settings"]
    assert loader["capabilities"] == PLUGIN["capabilities"]
    assert loader["namespace"] == PLUGIN["namespace"]


def test_the_definition_is_in_the_hub_loader_format():
    for key in ("name", "namespace", "variant", "label", "pip_url", "capabilities", "settings"):
        assert PLUGIN.get(key), key
    assert PLUGIN["name"] == NAME
    names = [setting["name"] for setting in PLUGIN["settings"]]
    assert names == list(ABOUT["settings"]["properties"])
    for setting in PLUGIN["settings"]:
        assert setting["kind"], setting["name"]
        assert setting["label"], setting["name"]
        assert setting["description"], setting["name"]
    sensitive = {s["name"] for s in PLUGIN["settings"] if s.get("sensitive")}
    assert sensitive == {"auth_token", "connections", "ledger_url"}
    by_name = {setting["name"]: setting for setting in PLUGIN["settings"]}
    for name in ("auth_token", "capi_connection_id"):
        assert "Required unless dry_run is true" in by_name[name]["description"]
    assert PLUGIN["settings_group_validation"] == [["auth_token", "capi_connection_id"],
                                                   ["connections"], ["dry_run"]]
    # A string, not options: the target itself refuses upsert, saying why (Meltano would
    # refuse an option outside the list with a traceback instead).
    assert by_name["load_method"]["kind"] == "string"
    assert by_name["load_method"]["value"] == "append-only"
    assert "refused at start" in by_name["load_method"]["description"]
    header = DEFINITION.read_text(encoding="utf-8").split("\nname:", 1)[0]
    for told in ("--from-ref", "pip_url: git+https://", "pip_url: /path/to/"):
        assert told in header
