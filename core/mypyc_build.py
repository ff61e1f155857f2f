"""Compile the engine's per-event Python (``COMPILED``) with mypyc, next to its sources.

    python core/mypyc_build.py [--root DIR] [--if-stale]

mypyc turns type-annotated Python into a C extension that does the same thing faster: the modules keep
their one source, the ``.py``, and the extension built from it is imported in its place. ``make venv``
runs this in the checkout; the image build runs it over the installed package (``--root``). Without
it (or when it fails) the same modules run as plain Python: slower, never different.

The modules' own check (``detectors._build.check_compiled``) turns an extension older than its source
into an ImportError that says to rebuild, so an edited module never silently runs its old code.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

# the per-event path: the engine, the calendar clocks it asks for every duration, the creep watch it
# tells every completion, the backtest's replay
COMPILED = ("monitor/engine.py", "detectors/calendar.py", "detectors/creep.py", "monitor/backtest.py")
PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def build(root: Path) -> None:
    from mypyc.build import mypycify
    from setuptools import Distribution

    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(root)  # mypyc names modules from the paths it is given
        try:
            # the checkout's [tool.mypy], also for an installed package (--root), which has no pyproject.toml
            exts = mypycify(["--config-file", str(PYPROJECT), *COMPILED], opt_level="3",
                            target_dir=os.path.join(tmp, "c"))
            dist = Distribution({"name": "stagewatch-compiled", "ext_modules": exts})
            cmd = dist.get_command_obj("build_ext")
            cmd.build_lib = os.path.join(tmp, "lib")  # type: ignore[attr-defined]
            cmd.build_temp = os.path.join(tmp, "obj")  # type: ignore[attr-defined]
            cmd.inplace = True  # type: ignore[attr-defined]
            dist.run_command("build_ext")
        finally:
            os.chdir(cwd)


def clean(root: Path) -> None:
    """Remove extensions of an earlier build (a module taken off ``COMPILED`` runs as Python again)."""
    for pattern in ("monitor/*.so", "detectors/*.so", "*__mypyc*.so"):
        for path in root.glob(pattern):
            if not path.name.startswith("_core."):  # the Rust core, built by maturin
                path.unlink()


def up_to_date(root: Path) -> bool:
    """Every module of ``COMPILED`` has an extension newer than its source."""
    for module in COMPILED:
        source = root / module
        built = list(source.parent.glob(source.stem + ".cpython-*.so"))
        if not built or built[0].stat().st_mtime < source.stat().st_mtime:
            return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                    help="the directory holding monitor/ and detectors/ (default: this checkout)")
    ap.add_argument("--if-stale", action="store_true", help="do nothing when every extension is newer than its source")
    ap.add_argument("--require", action="store_true", help="fail when it does not compile (default: plain Python)")
    args = ap.parse_args()
    root = args.root.resolve()
    if args.if_stale and up_to_date(root):
        return
    clean(root)
    print(f"mypyc_build: compiling {', '.join(COMPILED)} to C (5-10 minutes on two cores; again only when "
          "one of them changes) ...", flush=True)
    try:
        build(root)
    except (Exception, SystemExit) as exc:  # setuptools reports compiler failures as SystemExit
        clean(root)
        print(f"mypyc_build: not compiled ({exc}); the engine runs as plain Python (slower)", file=sys.stderr)
        sys.exit(1 if args.require else 0)
    print(f"mypyc_build: compiled {', '.join(COMPILED)}")


if __name__ == "__main__":
    main()
