"""``taskmix schedule show|diff|export``: inspect a schedule file, compare two, export one to another pipeline's format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ..errors import TaskmixError
from .errors import handle_errors, value_errors
from .options import FlagCommand, FlagGroup, emit

schedule_app = typer.Typer(cls=FlagGroup, no_args_is_help=True,
                           help="Show, diff or export a schedule file (prints; export --out FILE writes the export).")

TotalStepsOpt = typer.Option(None, "--total-steps", help="Run length in steps (default: the one in the schedule's provenance, else one pass over its rows)")


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
    from ..schedule import Schedule
    from ..schedule.inspect import describe

    sched = Schedule.load(schedule)
    if as_json:
        typer.echo(sched.to_json())
        return
    typer.echo(value_errors(lambda: describe(sched, total_steps)), nl=False)


@schedule_app.command("diff", cls=FlagCommand)
@handle_errors
def schedule_diff(
    a: Path = typer.Argument(..., help="Schedule JSON"),
    b: Path = typer.Argument(..., help="Schedule JSON to compare with"),
    total_steps: Optional[int] = TotalStepsOpt,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output"),
) -> None:
    """How two schedules differ: tasks, layout, mean weights, total variation, largest per-step difference."""
    from ..schedule import Schedule
    from ..schedule.inspect import diff, format_diff

    d = value_errors(lambda: diff(Schedule.load(a), Schedule.load(b), total_steps))
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
    from ..schedule import Schedule
    from ..schedule.export import megatron_data_path, parse_mapping, seqio_mixtures, to_stages, total_steps_of

    formats = ("interleave", "seqio", "megatron")
    if fmt not in formats:
        raise TaskmixError(f"--format: expected one of {list(formats)}, got {fmt!r}")
    sched = Schedule.load(schedule)
    if fmt == "interleave":
        if batch_size is None:
            raise TaskmixError("--format interleave needs --batch-size (examples per step)")
        steps = total_steps if total_steps is not None else total_steps_of(sched)
        stages = value_errors(lambda: to_stages(sched, steps, batch_size, by))  # type: ignore[arg-type]
        doc = {"tasks": list(sched.tasks), "total_steps": steps, "batch_size": batch_size,
               "stages": [dict(st, steps=list(st["steps"])) for st in stages]}
        text = json.dumps(doc, indent=2) + "\n"
    elif fmt == "seqio":
        text = value_errors(lambda: seqio_mixtures(sched, name, total_steps, average, parse_mapping(rename, "--rename")))
    else:
        text = value_errors(lambda: megatron_data_path(sched, parse_mapping(prefix, "--prefix"), total_steps, average))
    emit(text, out)
