"""Errors raised on bad input.

Every error a user can cause derives from :class:`TaskmixError` (itself a
``ValueError``), carries a one-line message that names the file, line or field
and what was expected, and is turned into exit code 2 by the CLI.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class TaskmixError(ValueError):
    """Bad input: a one-line message naming where and what was expected."""

    exit_code = 2


class ScheduleError(TaskmixError):
    """A schedule file or object is malformed."""


class ConfigError(TaskmixError):
    """A YAML config is malformed."""


class DataError(TaskmixError):
    """A data file is malformed (bad line, missing column, unknown label, ...)."""


class TrainingError(TaskmixError):
    """Training diverged (non-finite loss) or cannot proceed."""


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temporary file, fsync, rename.

    A reader never sees a half-written file, and a crash leaves either the old
    file or the new one (plus, at worst, a stray ``.tmp`` file that is removed
    on the next successful write of the same path).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
