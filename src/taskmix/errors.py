"""Errors raised on bad input.

Every error a user can cause derives from :class:`TaskmixError` (itself a
``ValueError``), carries a one-line message that names the file, line or field
and what was expected, and is turned into exit code 2 by the CLI.  Also here:
:func:`first_line`, :func:`warn`, and the checks of restored state
(``state_*``).  Atomic writes, output locks and input limits live in
:mod:`taskmix.files`; their old names here still resolve, with a
:class:`DeprecationWarning`.
"""

from __future__ import annotations

import importlib
import sys
import warnings
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


def check_state_matches(what: str, state: Any, **expected: Any) -> None:
    """Refuse (``ValueError``) a saved ``state`` whose identifying fields differ from this object's ``expected`` ones."""
    got = {k: state.get(k) if isinstance(state, dict) else None for k in expected}
    if got != expected:
        saved = ", ".join(f"{k}={v!r}" for k, v in got.items())
        mine = ", ".join(f"{k}={v!r}" for k, v in expected.items())
        raise ValueError(f"{what} state is for {saved}; this {what} has {mine}")


# ---------------------------------------------- checking restored state
# A checkpoint's checksum proves it is intact, not that it is sane: every owner of a piece of state checks what it
# restores with these (``check_state_dict`` methods), raising ``ValueError("<where>: ...")`` before anything is loaded.


def _shown(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def state_keys(state: Any, where: str, required: Any, optional: Any = ()) -> dict[str, Any]:
    """``state`` as a dict with every ``required`` key, and no key beyond those and ``optional``."""
    if not isinstance(state, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(state).__name__}")
    missing = [k for k in required if k not in state]
    if missing:
        raise ValueError(f"{where}: missing {', '.join(map(str, missing))}")
    extra = [k for k in state if k not in required and k not in optional]
    if extra:
        raise ValueError(f"{where}: unexpected key {_shown(extra[0])}")
    return state


def state_int(v: Any, where: str, lo: int, hi: int) -> int:
    """An integer ``lo <= v <= hi`` (not a bool, not a float)."""
    if type(v) is not int:
        raise ValueError(f"{where}: expected an integer, got {_shown(v)}")
    if not lo <= v <= hi:
        raise ValueError(f"{where}: {_shown(v)} is out of range (expected {lo}..{hi})")
    return v


def state_real(v: Any, where: str, lo: float = -float("inf"), hi: float = float("inf"), none: bool = False,
               nan: bool = False) -> float | None:
    """A finite real number (an int or a float, not a bool) with ``lo <= v <= hi``; ``None`` if ``none``, NaN if ``nan``."""
    if v is None and none:
        return None
    if type(v) not in (int, float):
        raise ValueError(f"{where}: expected a number, got {_shown(v)}")
    x = float(v) if type(v) is float or abs(v) <= 2**1023 else float("inf")
    if x != x and nan:
        return x
    if not (x == x and abs(x) != float("inf") and lo <= x <= hi):
        bounds = "" if (lo, hi) == (-float("inf"), float("inf")) else f" in [{lo}, {hi}]"
        raise ValueError(f"{where}: {_shown(v)} is not a finite number{bounds}")
    return x


def state_reals(v: Any, where: str, n: int, lo: float = -float("inf"), hi: float = float("inf"), none: bool = False,
                nan: bool = False) -> list[Any]:
    """A list of ``n`` numbers, each as :func:`state_real`."""
    if not isinstance(v, list) or len(v) != n:
        got = f"{len(v)} items" if isinstance(v, list) else type(v).__name__
        raise ValueError(f"{where}: expected a list of {n} numbers, got {got}")
    return [state_real(x, f"{where}[{i}]", lo, hi, none=none, nan=nan) for i, x in enumerate(v)]


class DuplicateKeyError(ValueError):
    """A JSON object names one key twice (raised by :func:`unique_keys`)."""


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads(..., object_pairs_hook=unique_keys)``: a JSON object with a key given twice is a :class:`DuplicateKeyError`."""
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise DuplicateKeyError(f"duplicate key {k[:40]!r} in a JSON object")
        out[k] = v
    return out


def warn(message: str) -> None:
    """One ``warning: ...`` line on stderr (bad input that is accepted, or a damaged file passed over)."""
    sys.stderr.write(f"warning: {message}\n")
    sys.stderr.flush()


_MOVED_TO_FILES = frozenset(['LOCK_NAME', 'MAX_DATA_INPUT_BYTES', 'MAX_TEXT_INPUT_BYTES', 'OutputLock', 'STALE_TEMP_SECONDS', 'TEMP_MARKER', 'atomic_write_bytes', 'atomic_write_text', 'check_input_file', 'check_no_symlinks', 'check_output_tree', 'input_errors', 'open_input_file', 'read_input', 'read_input_bytes', 'remove_stale_temps', 'temp_prefix'])


def __getattr__(name: str) -> Any:
    """The file helpers' old home: ``taskmix.errors.<name>`` still resolves, with a DeprecationWarning."""
    if name in _MOVED_TO_FILES:
        warnings.warn(f"taskmix.errors.{name} is deprecated; import from taskmix.files", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module("taskmix.files"), name)  # by name: files sits above errors
    raise AttributeError(f"module 'taskmix.errors' has no attribute {name!r}")
