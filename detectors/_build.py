"""Imported first by ``detectors`` and ``monitor``: in a source checkout, a missing or stale compiled
part is an ImportError that says what to run, instead of running old code."""

from pathlib import Path

ROOT = Path(__file__).parent.parent


def _stale(what: str, built: Path | None, sources: list[Path]) -> None:
    newest = max(p.stat().st_mtime for p in sources if p.exists())
    if built is None or built.stat().st_mtime < newest:
        why = "is not built" if built is None else f"is older than its sources ({', '.join(p.name for p in sources)})"
        raise ImportError(f"{what} {why}: run `make venv` in {ROOT}")


def check_core() -> None:
    """The detectors' Rust core (an edited ``core/src`` the build has not seen would silently run the
    old code). Installed from a wheel, it was built together with the package."""
    if not (ROOT / "core" / "src").is_dir():
        return
    pkg = ROOT / "detectors"
    built = sorted(pkg.glob("_core.*so")) + sorted(pkg.glob("_core.*pyd"))
    sources = [*(ROOT / "core" / "src").glob("*.rs"), ROOT / "Cargo.toml", ROOT / "Cargo.lock"]
    _stale("the compiled core of the detectors", built[0] if built else None, sources)


def check_compiled(package: str, root: Path = ROOT) -> None:
    """Modules of ``package`` compiled by mypyc (``core/mypyc_build.py``): Python imports an extension
    in place of its ``.py``, so one older than the ``.py`` would run the module's old code. None built
    is fine: the modules then run as plain Python."""
    for ext in sorted((root / package).glob("*.so")):
        source = ext.with_name(ext.name.split(".", 1)[0] + ".py")
        if source.exists() and not ext.name.startswith("_core."):
            _stale(f"the compiled {package}.{source.stem}", ext, [source])


def compiled(module: object) -> bool:
    """Whether ``module`` runs compiled (an extension module) or as plain Python (figures say which)."""
    return not str(getattr(module, "__file__", "")).endswith(".py")


check_core()
check_compiled("detectors")
