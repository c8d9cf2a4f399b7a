"""Every way a ``taskmix`` command fails, in one place: one ``error:`` line and a documented exit code.

* :func:`handle_errors` wraps each command: a :class:`~taskmix.errors.TaskmixError`
  (bad input) exits with its code (2), an I/O failure (disk full, permission
  denied) with 1, Ctrl-C with 130 and SIGTERM with 143 (:class:`Terminated`),
  each as one line, with a ``--resume`` hint where the command can continue.
* :class:`OneLineErrors`, the command line's group: usage errors (an unknown
  option, a missing or out-of-range value, ``--resume yes``) as one line, exit 2.
* A background thread's I/O error (TensorBoard's writer on a full disk) is one
  ``warning:`` line, not a traceback.

The messages are listed in ``docs/errors.md``.
"""

from __future__ import annotations

import contextlib
import functools
import re
import signal
import sys
import threading
from typing import Any, Callable, Iterator, Sequence

import typer

from ..errors import TaskmixError
from .options import FlagGroup


def _fail(msg: str, code: int = 2) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(code)


def _thread_excepthook(args: Any) -> None:
    """An I/O error in a background thread (TensorBoard's event writer on a full disk): one warning line, no traceback."""
    e = args.exc_value
    if isinstance(e, OSError):
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        name = args.thread.name if args.thread is not None else "a background thread"
        sys.stderr.write(f"warning: {name}: {where}{e.strerror or e}\n")
        return
    threading.__excepthook__(args)


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM, so that a run unwinds as on Ctrl-C (temporary files and the lock released)."""


def _on_sigterm(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM while unwinding ends the process at once
    raise Terminated()


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """While the command runs, SIGTERM raises :class:`Terminated` (only the main thread can set a handler)."""
    previous = None
    if threading.current_thread() is threading.main_thread():
        try:
            previous = signal.signal(signal.SIGTERM, _on_sigterm)
        except (ValueError, OSError):  # pragma: no cover - no SIGTERM handler possible here
            previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _interrupted(e: KeyboardInterrupt, kwargs: dict[str, Any]) -> None:
    """One line for Ctrl-C (exit 130) or SIGTERM (exit 143, 128 + 15), with how to continue where that is possible."""
    what, code = ("terminated (SIGTERM)", 143) if isinstance(e, Terminated) else ("interrupted", 130)
    out = kwargs.get("out")
    if "resume" in kwargs and out is not None:  # search, compare, demo: the finished work in DIR is kept
        what += f"; the work finished so far is kept in {out}: rerun the same command with --resume to continue"
    _fail(what, code)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a :class:`TaskmixError` (and a few OS errors) into one ``error:`` line and exit code 2.

    Ctrl-C and SIGTERM unwind the command (its lock on the output directory is
    released, half-written files removed) and end with one line: ``error:
    interrupted`` (exit 130) or ``error: terminated (SIGTERM)`` (exit 143),
    with a ``--resume`` hint for the commands that can continue.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        previous_hook = threading.excepthook
        threading.excepthook = _thread_excepthook
        try:
            with _sigterm_unwinds():
                return fn(*args, **kwargs)
        except TaskmixError as e:
            _fail(str(e).splitlines()[0] if str(e) else type(e).__name__, e.exit_code)
        except OSError as e:  # disk full, permission denied, ...: not bad input, but no traceback either
            where = f"{e.filename}: " if e.filename else ""
            _fail(f"{where}{e.strerror or e}", 1)
        except KeyboardInterrupt as e:
            _interrupted(e, kwargs)
        finally:
            threading.excepthook = previous_hook

    return wrapper


# typer's (vendored or click's) usage error and abort classes, found without importing click directly
_UsageError: Any = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def _flag_given_a_value(e: Any, msg: str, argv: Sequence[str]) -> str:
    """``--resume yes``: the hint that names the flag, for click's "unexpected extra argument" message."""
    m = re.match(r"Got unexpected extra argument(?:s|\(s\))? \((.*)\)$", msg)
    cmd = e.ctx.command if e.ctx is not None else None
    if m is None or cmd is None:
        return ""
    extra = set(m.group(1).split())
    flags = {o for p in cmd.params if getattr(p, "is_flag", False) for o in p.opts}
    for flag, value in zip(argv, argv[1:]):
        if flag in flags and value in extra:
            return f"; {flag} is a flag and takes no value"
    return ""


def _command_path(ctx: Any) -> str | None:
    """``schedule show`` for a usage error in ``taskmix schedule show`` (``None`` for ``taskmix`` itself)."""
    names = []
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.command.name)
        ctx = ctx.parent
    return " ".join(reversed(names)) or None


class OneLineErrors(FlagGroup):
    """Usage errors (an unknown option, a missing or out-of-range value) as one ``error:`` line, exit code 2."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        """Run the command line; a usage error ends it with one line on stderr and exit code 2."""
        argv = kwargs.get("args", args[0] if args else None)
        argv = [str(a) for a in (sys.argv[1:] if argv is None else argv)]
        try:
            rv = super().main(*args, standalone_mode=False, **kwargs)  # type: ignore[misc]
        except _UsageError as e:
            if not standalone_mode:
                raise
            if type(e).__name__ == "NoArgsIsHelpError":  # plain ``taskmix``: the help, as before
                e.show()
                sys.exit(e.exit_code)
            msg = " ".join(e.format_message().split())
            msg += _flag_given_a_value(e, msg, argv)
            msg = msg if len(msg) <= 300 else msg[:297] + "..."
            cmd = _command_path(e.ctx)
            typer.echo(f"error: {msg}" + (f" (see taskmix {cmd} --help)" if cmd else ""), err=True)
            sys.exit(2)
        except typer.Abort:
            if not standalone_mode:
                raise
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)


def value_errors(fn: Callable[[], Any]) -> Any:
    """``fn()``, with a plain :class:`ValueError` (from a library function given bad input) as a :class:`TaskmixError`."""
    try:
        return fn()
    except ValueError as e:
        if isinstance(e, TaskmixError):
            raise
        raise TaskmixError(str(e).splitlines()[0]) from None
