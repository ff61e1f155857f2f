"""The compiled parts: a stale extension is refused with what to run, the engine is compiled where
``make venv`` ran, and the compiled engine pickles as the plain one does."""

from __future__ import annotations

import os
import pickle

import pytest

import detectors.calendar
import monitor.backtest
import monitor.engine
from detectors._build import check_compiled, compiled
from monitor.engine import Engine, Item


def test_an_extension_older_than_its_source_is_refused_with_what_to_run(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    source, ext = pkg / "mod.py", pkg / "mod.cpython-311-x86_64-linux-gnu.so"
    source.write_text("x = 1\n")
    ext.write_bytes(b"")
    os.utime(source, (2_000_000_000, 2_000_000_000))
    os.utime(ext, (1_000_000_000, 1_000_000_000))
    with pytest.raises(ImportError, match=r"compiled pkg\.mod is older than its sources .*make venv"):
        check_compiled("pkg", tmp_path)
    os.utime(ext, (2_000_000_001, 2_000_000_001))
    check_compiled("pkg", tmp_path)  # built after its source: fine
    (pkg / "mod__mypyc.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")  # mypyc's shared library: no source
    check_compiled("pkg", tmp_path)


@pytest.mark.skipif(os.environ.get("CI") != "true", reason="CI builds with `make venv`, which compiles the engine")
def test_the_engine_runs_compiled_where_make_venv_built_it():
    for module in (monitor.engine, detectors.calendar, monitor.backtest):
        assert compiled(module), f"core/mypyc_build.py did not compile {module.__name__} (see `make venv`)"


def test_engine_objects_pickle_as_a_dict_of_fields_compiled_or_not():
    """The same pickles whichever way the engine runs, so a worker restarted on the other kind (an
    image built without a C compiler) restores its state; the slots form of earlier versions loads."""
    eng = Engine()
    wf = eng._workflow("sales")
    item = Item("deal-1", wf, eng._state(wf, "lead", None), "smb", 1_767_225_600.0)
    reduced = item.__reduce_ex__(pickle.HIGHEST_PROTOCOL)
    assert isinstance(reduced[2], dict) and reduced[2]["entity_id"] == "deal-1"
    old = Item.__new__(Item)
    old.__setstate__((None, reduced[2]))
    assert old.entered_at == 1_767_225_600.0 and old.segment == "smb"
