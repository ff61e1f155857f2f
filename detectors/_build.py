"""Imported first by ``detectors``: in a source checkout, a missing or stale compiled core is an
ImportError that says what to run, instead of running old code."""

from pathlib import Path


def check_core() -> None:
    """In a source checkout, a clear error instead of a missing or stale compiled core (an edited
    ``core/src`` the build has not seen would silently run the old code)."""
    pkg = Path(__file__).parent
    root = pkg.parent
    if not (root / "core" / "src").is_dir():
        return  # installed from a wheel: built together with this package
    built = sorted(pkg.glob("_core.*so")) + sorted(pkg.glob("_core.*pyd"))
    sources = [*(root / "core" / "src").glob("*.rs"), root / "Cargo.toml", root / "Cargo.lock"]
    newest = max(p.stat().st_mtime for p in sources if p.exists())
    if not built or built[0].stat().st_mtime < newest:
        why = "is not built" if not built else "is older than its sources (core/src)"
        raise ImportError(f"the compiled core of the detectors {why}: run `make venv` in {root}")


check_core()
