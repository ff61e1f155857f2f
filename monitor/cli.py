"""The ``stagewatch`` command line. Heavy imports stay inside the commands so ``--help`` is instant."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(
    name="stagewatch",
    help="Stagewatch: learns how long each workflow stage normally takes and pages stalled items, "
    "bottleneck shifts, backlog growth and silent sources.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOpt = typer.Option(None, "--config", "-c", help="YAML settings file (env STAGEWATCH_* overrides it).")


def _settings(config: Optional[Path]):
    from monitor.config import ConfigError, load_settings

    try:
        return load_settings(config)
    except ConfigError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from None


def main() -> None:
    app()


if __name__ == "__main__":
    main()
