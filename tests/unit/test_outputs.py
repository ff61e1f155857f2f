"""The files a command writes are in place only once it succeeds (``monitor.outputs``)."""

from __future__ import annotations

import os
import stat

import pytest

from monitor.outputs import OutputFiles


def test_a_file_is_replaced_only_when_the_command_succeeds_and_keeps_its_mode(tmp_path):
    target = tmp_path / "alerts.jsonl"
    target.write_text("previous\n")
    target.chmod(0o600)
    with pytest.raises(RuntimeError), OutputFiles() as files:
        files.open(target).write(b"half")
        raise RuntimeError("no time column")
    assert target.read_text() == "previous\n" and os.listdir(tmp_path) == ["alerts.jsonl"]
    with OutputFiles() as files:
        files.open(target).write(b"new\n")
    assert target.read_text() == "new\n" and stat.S_IMODE(target.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["alerts.jsonl"]


def test_a_link_is_followed_a_pipe_written_directly_and_a_killed_runs_partial_removed(tmp_path):
    real = tmp_path / "real.jsonl"
    real.write_text("old\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    dead = tmp_path / ".real.jsonl.999999999.partial"  # no such process
    dead.write_text("left by a SIGKILL")
    mine = tmp_path / f".real.jsonl.{os.getppid()}.partial"  # a live process: maybe running
    mine.write_text("another run's")
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        with OutputFiles() as files:
            files.open(link).write(b"new\n")
            files.open(fifo).write(b"through\n")
        assert os.read(reader, 100) == b"through\n"
    finally:
        os.close(reader)
    assert link.is_symlink() and real.read_text() == "new\n"
    assert not dead.exists() and mine.exists()
    with pytest.raises(IsADirectoryError):
        OutputFiles().open(tmp_path)
