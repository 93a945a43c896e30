"""The README and docs/settings.md tell the truth, and the README stays a user's page.

Its settings table (docs/settings.md) is what `--about` prints; its summary example is what a
run of the sample prints; it opens with the two-command start, shows `meltano add` early, and
stays short (reference material lives in docs/).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from scripts.plugin_definition import NAME
from scripts.update_readme import SETTINGS_DOC, settings_table
from target_spotify_conversions.settings import CONFIG_SCHEMA
from tests.harness import run_target

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
LINES = README.splitlines()


def test_the_settings_table_is_the_one_about_prints():
    assert settings_table() in SETTINGS_DOC.read_text(), "run `make readme` to refresh it"


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


def test_the_readme_is_short_and_opens_with_the_two_command_start():
    assert len(LINES) <= 300
    first_block = README.split("```bash\n", 1)[1].split("```", 1)[0]
    assert first_block.splitlines()[0].startswith("make run")
    assert first_block.splitlines()[1].startswith("make test")
    assert README.index("make run") < README.index("## What it does")


def test_meltano_add_comes_within_the_first_120_lines_and_pip_follows():
    first = next(n for n, line in enumerate(LINES, 1)
                 if "meltano add --plugin-type loader" in line)
    assert first <= 120
    assert "--from-ref" in LINES[first - 1]
    assert "pip install" in README


def test_every_local_link_of_the_readme_leads_to_a_file():
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    local = [link for link in links if not link.startswith("http")]
    assert "docs/settings.md" in local
    for link in local:
        assert (REPO / link).exists(), link


def _summary_example() -> list[str]:
    block = README.split("<!-- summary:start -->", 1)[1].split("<!-- summary:end -->", 1)[0]
    return [line for line in block.splitlines() if line.startswith("summary:")]


def _normalised(lines: list[str]) -> list[str]:
    """Facts that differ from run to run (the run's id, the seconds) are set aside."""
    out = []
    for line in lines:
        line = re.sub(r"^summary: run: [0-9a-f-]{36}$", "summary: run: <id>", line)
        line = re.sub(r"^summary: seconds: .*$", "summary: seconds: <s>", line)
        out.append(line)
    return out


def _dev_config() -> dict:
    """The loader's config in meltano.yml's dev environment, the one `make run` uses."""
    project = yaml.safe_load((REPO / "meltano.yml").read_text(encoding="utf-8"))
    [loader] = [p for p in project["plugins"]["loaders"] if p["name"] == NAME]
    [dev] = [e for e in project["environments"] if e["name"] == "dev"]
    [env_loader] = [p for p in dev["config"]["plugins"]["loaders"] if p["name"] == NAME]
    return {**loader.get("config", {}), **env_loader["config"]}


def test_the_summary_example_is_what_the_sample_run_prints(tmp_path):
    # As `make run` runs it: meltano.yml's dev environment over sample/events.jsonl.
    records = (REPO / "sample" / "events.jsonl").read_text(encoding="utf-8").splitlines()
    lines = [json.dumps({"type": "SCHEMA", "stream": "conversions",
                         "schema": {"type": "object", "properties": {}}, "key_properties": []})]
    lines += [json.dumps({"type": "RECORD", "stream": "conversions", "record": json.loads(r)})
              for r in records]
    config = {**_dev_config(), "dry_run_file": "dry-run.jsonl", "rejects_file": "rejects.jsonl"}
    assert config["dry_run"] is True
    run = run_target(tmp_path / "run", config, lines)
    assert run.returncode == 0, run.stderr
    printed = [line.split("| ", 3)[-1] for line in run.stderr.splitlines() if "summary: " in line]
    printed = [line[line.index("summary: "):] for line in printed]
    example = _summary_example()
    assert len(example) > 20
    assert _normalised(example) == _normalised(printed)
