"""Errors raised on bad input.

Every error a user can cause derives from :class:`TaskmixError` (itself a
``ValueError``), carries a one-line message that names the file, line or field
and what was expected, and is turned into exit code 2 by the CLI.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any


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


class NonFiniteRewardError(TrainingError):
    """A reward came out NaN or infinite (the policy refuses to update on it)."""


class OutputError(TaskmixError):
    """The output location cannot be used (not a directory, or it holds another run)."""


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its class name when the message is empty)."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once: os.umask can only be read by setting it
_TEMP_SUFFIX = ".tmp"


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temporary file, fsync, rename.

    A reader never sees a half-written file, and a crash leaves either the old
    file or the new one (plus, at worst, a hidden ``.<name>.*.tmp`` file;
    :func:`remove_stale_temps` clears those when a run resumes).  The file gets
    the usual permissions (``0o666`` less the umask), not ``mkstemp``'s ``0o600``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), 0o666 & ~_UMASK)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError) and e.filename is None:  # name the file (fsync / write errors do not)
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise
    try:  # make the rename durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def check_state_matches(what: str, state: Any, **expected: Any) -> None:
    """Refuse (``ValueError``) a saved ``state`` whose identifying fields differ from this object's ``expected`` ones."""
    got = {k: state.get(k) if isinstance(state, dict) else None for k in expected}
    if got != expected:
        saved = ", ".join(f"{k}={v!r}" for k, v in got.items())
        mine = ", ".join(f"{k}={v!r}" for k, v in expected.items())
        raise ValueError(f"{what} state is for {saved}; this {what} has {mine}")


def read_input(path: str | os.PathLike, noun: str, expected: str, error: type[TaskmixError] = TaskmixError) -> bytes:
    """The bytes of an input file; every way it can fail is one ``error`` naming the path.

    ``noun`` names the file in "... not found" (``"config file"``); ``expected``
    completes "expected ..." (``"a YAML file"``).
    """
    p = Path(path)
    what = expected
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise error(f"{p}: {noun} not found") from None
    except IsADirectoryError:
        raise error(f"{p}: is a directory, expected {what}") from None
    except OSError as e:
        raise error(f"{p}: cannot be read ({e.strerror or e})") from None


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 text atomically (see :func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def remove_stale_temps(directory: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that writes killed mid-way left in ``directory``; return them.

    Only hidden ``.<name>.<random>.tmp`` files of :func:`atomic_write_bytes`
    are touched.  Call it when no other process writes to ``directory``.
    """
    d = Path(directory)
    if not d.is_dir():
        return []
    removed = []
    for p in d.iterdir():
        if p.name.startswith(".") and p.name.endswith(_TEMP_SUFFIX) and p.is_file():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed
