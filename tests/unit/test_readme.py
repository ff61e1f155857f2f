"""The README's examples stay true: its settings example loads, its commands exist."""

from __future__ import annotations

import re
from pathlib import Path

from typer.main import get_command

from monitor.cli import app
from monitor.config import load_settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_configuration_example_is_valid_settings(tmp_path):
    block = README[README.index("## Configuration"):]
    yaml_text = block[block.index("```yaml") + 7: block.index("```", block.index("```yaml") + 7)]
    (tmp_path / "s.yaml").write_text(yaml_text)
    s = load_settings(tmp_path / "s.yaml")
    assert s.workflows["sales"].calendar.mode == "business"


def test_every_command_the_readme_shows_exists():
    commands = set(get_command(app).commands)  # type: ignore[attr-defined]
    shown = set(re.findall(r"^stagewatch ([a-z]+)", README, flags=re.M))
    assert shown and shown <= commands, shown - commands
