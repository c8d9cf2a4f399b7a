"""Shared command-line pieces (one-line error handling, common options) and the tooling subcommands.

``taskmix schedule show|diff|export`` and ``taskmix config show|schema`` live here as typer sub-apps that
:mod:`taskmix.cli` adds to the main command line.
"""

from __future__ import annotations

import contextlib
import functools
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import typer
from typer.core import TyperCommand, TyperGroup

from .errors import OutputError, TaskmixError, atomic_write_text

OverrideOpt = typer.Option(None, "--override", "-o", metavar="KEY=VALUE",
                           help="Config override (repeatable), e.g. -o search.epsilon=0.05 -o train.steps=2000")
DataDirOpt = typer.Option(None, "--data-dir", help="Directory of local data files for presets (overrides data_dir)")


def _plain_flags(params: list[Any]) -> list[Any]:
    """Show every on/off option (``--resume``, ``--json``, ``--help``, ...) as a plain flag: no value in the help.

    typer's rich help prints a type (``<bool>``) after each option, flags included, which reads as if
    the flag took a value (``--resume yes``); an empty metavar leaves the flag alone.
    """
    for p in params:
        if getattr(p, "is_flag", False) and not getattr(p, "count", False) and p.metavar is None:
            p.metavar = ""
    return params


class FlagCommand(TyperCommand):
    """A command whose boolean options show as plain flags in ``--help`` (every taskmix command uses it)."""

    def get_params(self, ctx: Any) -> list[Any]:
        """The command's parameters, the help option included, with flags shown without a value."""
        return _plain_flags(super().get_params(ctx))


class FlagGroup(TyperGroup):
    """A command group whose boolean options show as plain flags in ``--help`` (see :class:`FlagCommand`)."""

    def get_params(self, ctx: Any) -> list[Any]:
        """The group's parameters, the help option included, with flags shown without a value."""
        return _plain_flags(super().get_params(ctx))


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


# ------------------------------------------------------- schedule / config tooling

schedule_app = typer.Typer(cls=FlagGroup, no_args_is_help=True,
                           help="Show, diff or export a schedule file (prints; export --out FILE writes the export).")
config_app = typer.Typer(cls=FlagGroup, no_args_is_help=True,
                         help="Print the resolved config (YAML) or the config file's JSON schema.")

TotalStepsOpt = typer.Option(None, "--total-steps", help="Run length in steps (default: the one in the schedule's provenance, else one pass over its rows)")


def _emit(text: str, out: Optional[Path]) -> None:
    """``text`` to stdout, or atomically to ``out``."""
    if out is None:
        typer.echo(text, nl=False)
    else:
        if out.is_dir():
            raise OutputError(f"{out}: is a directory; --out needs a file name")
        atomic_write_text(out, text)
        typer.echo(f"wrote {out}", err=True)


def _value_errors(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except ValueError as e:
        if isinstance(e, TaskmixError):
            raise
        raise TaskmixError(str(e).splitlines()[0]) from None


@schedule_app.command("show", cls=FlagCommand)
@handle_errors
def schedule_show(
    schedule: Path = typer.Argument(..., help="Schedule JSON"),
    total_steps: Optional[int] = TotalStepsOpt,
    as_json: bool = typer.Option(False, "--json", help="The schedule file, validated and normalised, as JSON (exact values)"),
) -> None:
    """Tasks, step layout, provenance and the weights of each row and on average.

    Provenance is shown as indented ``key: value`` lines, numbers to 4 significant digits and long lists
    shortened; --json prints every value exactly.
    """
    from .schedule import Schedule
    from .schedule_tools import describe

    sched = Schedule.load(schedule)
    if as_json:
        typer.echo(sched.to_json())
        return
    typer.echo(_value_errors(lambda: describe(sched, total_steps)), nl=False)


@schedule_app.command("diff", cls=FlagCommand)
@handle_errors
def schedule_diff(
    a: Path = typer.Argument(..., help="Schedule JSON"),
    b: Path = typer.Argument(..., help="Schedule JSON to compare with"),
    total_steps: Optional[int] = TotalStepsOpt,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output"),
) -> None:
    """How two schedules differ: tasks, layout, mean weights, total variation, largest per-step difference."""
    from .schedule import Schedule
    from .schedule_tools import diff, format_diff

    d = _value_errors(lambda: diff(Schedule.load(a), Schedule.load(b), total_steps))
    typer.echo(json.dumps(d, indent=2) if as_json else format_diff(d, a.name, b.name if b.name != a.name else str(b)), nl=as_json)


@schedule_app.command("export", cls=FlagCommand)
@handle_errors
def schedule_export(
    schedule: Path = typer.Argument(..., help="Schedule JSON"),
    fmt: str = typer.Option(..., "--format", "-f", help="interleave (datasets.interleave_datasets stages, JSON) | "
                            "seqio (MixtureRegistry.add rates, Python) | megatron (--data-path weights)"),
    out: Optional[Path] = typer.Option(None, "--out", help="Write to this file instead of stdout"),
    total_steps: Optional[int] = TotalStepsOpt,
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="interleave: examples per step (required)"),
    by: str = typer.Option("meta_step", "--by", help="interleave: meta_step | distinct_row (merge equal rows)"),
    average: bool = typer.Option(False, "--average", help="seqio / megatron: one stage, the step-weighted mean"),
    name: str = typer.Option("taskmix_mixture", "--name", help="seqio: mixture name"),
    rename: Optional[list[str]] = typer.Option(None, "--rename", help="seqio: TASK=SEQIO_TASK (repeatable)"),
    prefix: Optional[list[str]] = typer.Option(None, "--prefix", help="megatron: TASK=DATA_PREFIX (repeatable)"),
) -> None:
    """Export a schedule to another pipeline's format."""
    from .schedule import Schedule
    from .schedule_tools import megatron_data_path, parse_mapping, seqio_mixtures, to_stages, total_steps_of

    formats = ("interleave", "seqio", "megatron")
    if fmt not in formats:
        raise TaskmixError(f"--format: expected one of {list(formats)}, got {fmt!r}")
    sched = Schedule.load(schedule)
    if fmt == "interleave":
        if batch_size is None:
            raise TaskmixError("--format interleave needs --batch-size (examples per step)")
        steps = total_steps if total_steps is not None else total_steps_of(sched)
        stages = _value_errors(lambda: to_stages(sched, steps, batch_size, by))  # type: ignore[arg-type]
        doc = {"tasks": list(sched.tasks), "total_steps": steps, "batch_size": batch_size,
               "stages": [dict(st, steps=list(st["steps"])) for st in stages]}
        text = json.dumps(doc, indent=2) + "\n"
    elif fmt == "seqio":
        text = _value_errors(lambda: seqio_mixtures(sched, name, total_steps, average, parse_mapping(rename, "--rename")))
    else:
        text = _value_errors(lambda: megatron_data_path(sched, parse_mapping(prefix, "--prefix"), total_steps, average))
    _emit(text, out)


@config_app.command("show", cls=FlagCommand)
@handle_errors
def config_show(
    config: str = typer.Argument(..., help="YAML config, or 'builtin'"),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of YAML"),
    overrides: Optional[list[str]] = OverrideOpt,
    data_dir: Optional[str] = DataDirOpt,
) -> None:
    """The config as a run would use it: overrides applied, every default filled in (no data is read)."""
    from .compare.methods import check_config
    from .config import load_config, resolved_dict, resolved_yaml

    ov = list(overrides or [])
    if data_dir is not None:
        ov.append(f"data_dir={Path(data_dir).resolve()}")
    cfg = load_config(None if config == "builtin" else config, ov)
    check_config(cfg)
    typer.echo(json.dumps(resolved_dict(cfg), indent=2) if as_json else resolved_yaml(cfg), nl=as_json)


@config_app.command("schema", cls=FlagCommand)
@handle_errors
def config_schema_cmd(
    out: Optional[Path] = typer.Option(None, "--out", help="Write to this file instead of stdout"),
) -> None:
    """The JSON schema of a config file, with every field's default and description."""
    from .config import config_schema

    _emit(json.dumps(config_schema(), indent=2) + "\n", out)
