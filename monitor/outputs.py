"""Files a command writes (alerts, bad records, a report), in place only once the command succeeds.

Each regular file is written beside its name (``.NAME.PID.partial``) and moved over it when the
command ends without an error: a replay that stops on an error (no time column found, an unknown
time zone, Ctrl-C, SIGTERM) leaves the previous run's file as it was, not an empty or half one. The
file keeps the permissions of the one it replaces, and a symbolic link is followed (its target is
replaced, the link stays). What is not a regular file (``/dev/stdout``, a pipe, ``>(jq ...)``) is
written directly. Partial files of a run killed outright (SIGKILL) are removed by the next run
that writes the same name.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from types import TracebackType
from typing import IO


def check_writable(path: str | Path) -> None:
    """Before a long run: raise now the OSError that writing ``path`` at its end would raise (a directory
    named, a file where a directory should be, no permission), and make the directories that are missing."""
    final = Path(path)
    if final.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(final))
    parent = final.parent
    existing = next(p for p in (parent, *parent.parents) if p.exists())
    if not existing.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(existing))
    parent.mkdir(parents=True, exist_ok=True)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(parent))


class OutputFiles:
    def __init__(self) -> None:
        self.pending: list[tuple[Path, Path]] = []  # (partial, final)
        self.handles: list[IO[bytes]] = []

    def open(self, path: str | Path) -> IO[bytes]:
        final = Path(path)
        if final.is_dir():
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(final))
        if final.exists() and not final.is_file():  # a device, a pipe: as it is
            f: IO[bytes] = open(final, "wb")  # noqa: SIM115
            self.handles.append(f)
            return f
        final = final.resolve() if final.is_symlink() else final
        for old in final.parent.glob(f".{final.name}.*.partial"):  # left by a run killed outright
            from monitor.stack import pid_alive  # here: rare, and the module is heavier than this one

            pid = old.name[len(final.name) + 2:-len(".partial")]
            if pid.isdecimal() and not pid_alive(int(pid)):
                old.unlink(missing_ok=True)
        partial = final.with_name(f".{final.name}.{os.getpid()}.partial")
        f = open(partial, "wb")  # noqa: SIM115
        self.pending.append((partial, final))
        self.handles.append(f)
        if final.exists():
            os.chmod(partial, stat.S_IMODE(final.stat().st_mode))
        return f

    def close(self, keep: bool) -> None:
        """Close every file; move the partial ones over their names (``keep``) or remove them."""
        for f in self.handles:
            f.close()
        error: OSError | None = None
        for partial, final in self.pending:
            try:
                if keep:
                    partial.replace(final)
                    continue
            except OSError as exc:
                error = error or exc
            partial.unlink(missing_ok=True)
        self.handles, self.pending = [], []
        if error is not None:
            raise error

    def __enter__(self) -> OutputFiles:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close(keep=kind is None)
