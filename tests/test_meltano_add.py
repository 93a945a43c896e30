"""A user adds the target to a Meltano project of their own from the plugin definition.

Exactly as the definition's header says: `meltano init`, then `meltano add --plugin-type loader
target-spotify-conversions --from-ref <the file>` with pip_url pointed at a copy of this
checkout, then a dry run through `meltano invoke`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from scripts.plugin_definition import DEFINITION, NAME
from tests.checkout import BIN, clean_env, copy_checkout
from tests.harness import purchase, singer_lines

PLUGIN = yaml.safe_load(DEFINITION.read_text(encoding="utf-8"))


def _meltano(project: Path, *args: str, stdin: Path | None = None, **env_vars: str):
    env = clean_env(MELTANO_SEND_ANONYMOUS_USAGE_STATS="false", **env_vars)
    given = stdin.open() if stdin else None
    try:
        return subprocess.run(
            [str(BIN / "meltano"), *args], cwd=project, env=env,
            stdin=given or subprocess.DEVNULL, capture_output=True, text=True, timeout=600,
            check=False,
        )
    finally:
        if given:
            given.close()


@pytest.mark.slow
def test_a_fresh_meltano_project_adds_the_target_from_the_definition_and_runs_it(tmp_path):
    source = copy_checkout(tmp_path / "checkout")
    # What the definition's header tells a user to do: point pip_url at their copy.
    ref = tmp_path / "definition.yml"
    ref.write_text(DEFINITION.read_text(encoding="utf-8").replace(
        f"\npip_url: {PLUGIN['pip_url']}\n", f"\npip_url: {source}\n"), encoding="utf-8")
    assert f"pip_url: {source}" in ref.read_text(encoding="utf-8")

    init = _meltano(tmp_path, "init", "--no-usage-stats", "project")
    assert init.returncode == 0, init.stderr
    project = tmp_path / "project"
    added = _meltano(project, "add", "--plugin-type", "loader", NAME, "--from-ref", str(ref))
    assert added.returncode == 0, added.stdout + added.stderr
    plugins = yaml.safe_load((project / "meltano.yml").read_text())["plugins"]
    assert set(plugins) == {"loaders"}  # `add loader NAME` also added NAME as a utility
    loader = [p for p in plugins["loaders"] if p["name"] == NAME]
    assert len(loader) == 1
    assert loader[0]["pip_url"] == str(source)
    # What the README says: every setting, with its kind and description, is in the project.
    assert loader[0]["settings"] == PLUGIN["settings"]

    for setting, value in (("dry_run", "true"), ("dry_run_file", "out/dry-run.jsonl"),
                           ("rejects_file", "out/rejects.jsonl")):
        done = _meltano(project, "config", "set", NAME, setting, value)
        assert done.returncode == 0, done.stderr
    listed = _meltano(project, "config", "list", "--all", NAME)
    assert "Group 1: auth_token, capi_connection_id" in listed.stdout
    assert "load_method" in listed.stdout
    assert "summary_file" in listed.stdout

    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(singer_lines([purchase(i) for i in range(3)])) + "\n")
    run = _meltano(project, "invoke", NAME, stdin=events)
    assert run.returncode == 0, run.stderr[-3000:]
    # pip_url at a path: a plain install, compiled where a C compiler is (setup.py)
    compiled = shutil.which("cc") is not None
    assert ("Build: compiled with mypyc" if compiled else "Build: pure Python") in run.stderr
    bodies = [json.loads(line) for line in (project / "out" / "dry-run.jsonl").read_text()
              .splitlines()]
    sent = [event["event_id"] for body in bodies for event in body["conversion_events"]["events"]]
    assert sent == ["ord-0", "ord-1", "ord-2"]

    # A method an event API cannot do: the target says so, not a traceback from Meltano.
    refused = _meltano(project, "invoke", NAME, stdin=events,
                       TARGET_SPOTIFY_CONVERSIONS_LOAD_METHOD="upsert")
    assert refused.returncode != 0
    assert "load_method `upsert` is not possible" in refused.stderr, refused.stderr[-2000:]
    assert "is not a valid choice" not in refused.stderr
