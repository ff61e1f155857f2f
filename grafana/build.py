"""Write grafana/dashboards/*.json from grafana/dashboards.py.

    python -m grafana.build            # regenerate
    python -m grafana.build --check    # exit 1 if a committed file differs from what the code generates
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from grafana.dashboards import DASHBOARDS, dashboard_json

OUT_DIR = Path(__file__).resolve().parent / "dashboards"


def render_all() -> dict[str, str]:
    """File name -> JSON text, deterministic (sorted keys, fixed indentation, trailing newline)."""
    return {
        f"{name}.json": json.dumps(dashboard_json(build()), indent=2, sort_keys=True) + "\n"
        for name, build in DASHBOARDS.items()
    }


def write(out_dir: Path = OUT_DIR) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_all().items():
        path = out_dir / name
        path.write_text(text)
        written.append(path)
    return written


def stale(out_dir: Path = OUT_DIR) -> list[str]:
    """Names of files that are missing or differ from the generated text."""
    return [
        name
        for name, text in render_all().items()
        if not (out_dir / name).is_file() or (out_dir / name).read_text() != text
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grafana.build", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args(argv)
    if args.check:
        bad = stale(args.out)
        for name in bad:
            print(f"{args.out / name} is stale: run python -m grafana.build", file=sys.stderr)
        return 1 if bad else 0
    for path in write(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
