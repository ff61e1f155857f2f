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


def test_every_help_shows_flags_without_a_value_placeholder():
    """``--json`` takes no value; typer 0.29 rendered it as ``--json <bool>`` (pinned below it)."""
    from typer.testing import CliRunner

    runner = CliRunner()
    for name in [None, *get_command(app).commands]:  # type: ignore[attr-defined]
        r = runner.invoke(app, [name, "--help"] if name else ["--help"], terminal_width=200)
        assert r.exit_code == 0, (name, r.output)
        assert "--help" in r.output and "<bool>" not in r.output, (name, r.output)
