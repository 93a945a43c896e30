"""Write the settings table of `target-spotify-conversions --about --format=markdown` into
docs/settings.md (the README links to it), between its settings markers, so the
documentation always lists the real settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SETTINGS_DOC = Path(__file__).resolve().parents[1] / "docs" / "settings.md"
START, END = "<!-- settings:start -->", "<!-- settings:end -->"


def settings_table() -> str:
    about = subprocess.run(
        [str(Path(sys.executable).with_name("target-spotify-conversions")), "--about",
         "--format=markdown"], capture_output=True, text=True, check=True,
    ).stdout
    lines = about.split("## Settings", 1)[1].splitlines()
    table = "\n".join(line for line in lines if line.startswith("|"))
    # The SDK prints an enum default with str(), which Python 3.11 changed for str enums:
    # write the value a user types, the same on every version.
    return table.replace("TargetLoadMethods.APPEND_ONLY", "append-only")


def main() -> None:
    text = SETTINGS_DOC.read_text()
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    SETTINGS_DOC.write_text(f"{before}{START}\n{settings_table()}\n{END}{after}")


if __name__ == "__main__":
    main()
