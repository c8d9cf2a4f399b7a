"""The ``taskmix`` command line: a thin layer over the library.

Commands (names and outputs are a contract):

* ``taskmix search CONFIG --out DIR [--seed S] [--resume]`` -> ``DIR/schedule.json``, ``DIR/log.{jsonl,csv}``
* ``taskmix train CONFIG --schedule FILE --out DIR [--seed S]`` -> ``DIR/metrics.json``
* ``taskmix compare CONFIG --seeds N --out DIR [--oracle]`` -> ``DIR/results.json`` (+ table, report)
* ``taskmix plot SCHEDULE --out PNG``
* ``taskmix schedule show|diff|export``: inspect, compare, export a schedule (interleave stages, seqio rates, Megatron weights)
* ``taskmix config show CONFIG`` / ``taskmix config schema``: the resolved config (YAML); the config's JSON schema
* ``taskmix demo --out DIR [--resume]``: ``compare`` on the built-in benchmark (replaces an earlier demo in DIR)

``CONFIG`` is a YAML file, or ``builtin`` for the built-in benchmark.  Every
command takes ``-o KEY=VALUE`` overrides (``-o search.epsilon=0.05``) and
``--data-dir`` (text presets).  Bad input exits with code 2 and a one-line
message (see ``docs/errors.md``), an I/O failure (disk full, permission
denied) with code 1; nothing half-written is left behind.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from .errors import OutputError, TaskmixError, atomic_write_text

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Learn how to mix tasks in multi-task training: search a task-sampling schedule, replay it, compare strategies.",
)

OverrideOpt = typer.Option(None, "--override", "-o", help="KEY=VALUE config override (repeatable), e.g. -o search.epsilon=0.05")
DataDirOpt = typer.Option(None, "--data-dir", help="Directory of local data files for presets (overrides data_dir)")


def _fail(msg: str, code: int = 2) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(code)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TaskmixError as e:
            _fail(str(e).splitlines()[0] if str(e) else type(e).__name__, e.exit_code)
        except OSError as e:  # disk full, permission denied, ...: not bad input, but no traceback either
            where = f"{e.filename}: " if e.filename else ""
            _fail(f"{where}{e.strerror or e}", 1)
        except KeyboardInterrupt:
            _fail("interrupted", 130)

    return wrapper


# ----------------------------------------------------------------- helpers


def load(config: str, overrides: list[str] | None, data_dir: str | None, seed: int | None = None):
    """Config + tasks (text tasks encoded through the cache), validated before any output is written."""
    from .compare.methods import check_config
    from .config import load_config
    from .data import load_run_tasks

    ov = list(overrides or [])
    if data_dir is not None:
        ov.append(f"data_dir={Path(data_dir).resolve()}")
    if seed is not None:
        ov.append(f"seed={seed}")
    cfg = load_config(None if config == "builtin" else config, ov)
    check_config(cfg)  # every registry name (reward, methods, strategies) before any data is read
    _threads(cfg)
    tasks = load_run_tasks(cfg)
    return cfg, tasks


def _check_out(out: Path) -> None:
    """Refuse an ``--out`` that cannot be a directory, before any work is done."""
    for p in (out, *out.parents):
        if p.exists():
            if not p.is_dir():
                raise OutputError(f"{p}: exists and is not a directory; --out needs a directory")
            break


def _threads(cfg) -> None:
    import torch

    n = cfg.train.threads or (1 if cfg.model.regime == "frozen" else max(1, os.cpu_count() or 1))
    torch.set_num_threads(n)


def _progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    transient=False, disable=not sys.stderr.isatty() and os.environ.get("TASKMIX_PROGRESS") != "1")


def _write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


# ----------------------------------------------------------------- search


@app.command()
@handle_errors
def search(
    config: str = typer.Argument(..., help="YAML config, or 'builtin'"),
    out: Path = typer.Option(..., "--out", help="Output directory"),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed (default: the config's seed)"),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last complete checkpoint in DIR"),
    keep: int = typer.Option(2, "--keep-checkpoints", min=1, help="Checkpoints to keep"),
    overrides: Optional[list[str]] = OverrideOpt,
    data_dir: Optional[str] = DataDirOpt,
) -> None:
    """Learn a task-sampling schedule: DIR/schedule.json and the per-meta-step log."""
    from .runs.search_dir import run_search

    _check_out(out)
    cfg, tasks = load(config, overrides, data_dir, seed)
    res = run_search(cfg, tasks, out, resume=resume, keep=keep, progress=_progress())  # also under torchrun
    if res.extra.get("rank", 0):  # data parallel: rank 0 wrote the files and reports
        return
    w = res.schedule.mean_weights()
    typer.echo(f"schedule: {out / 'schedule.json'}")
    typer.echo("mean weights: " + ", ".join(f"{t}={v:.3f}" for t, v in zip(res.schedule.tasks, w)))


# ------------------------------------------------------------------ train


@app.command()
@handle_errors
def train(
    config: str = typer.Argument(..., help="YAML config, or 'builtin'"),
    schedule: Path = typer.Option(..., "--schedule", help="Schedule JSON to replay"),
    out: Path = typer.Option(..., "--out", help="Output directory"),
    seed: Optional[int] = typer.Option(None, "--seed"),
    overrides: Optional[list[str]] = OverrideOpt,
    data_dir: Optional[str] = DataDirOpt,
) -> None:
    """Retrain a fresh model with a static schedule: DIR/metrics.json."""
    from .engine.trainer import train_with_schedule
    from .runs.job import prepare_job
    from .runs.stamp import write_run_stamp
    from .schedule import Schedule

    _check_out(out)
    sched = Schedule.load(schedule)
    cfg, tasks = load(config, overrides, data_dir, seed)
    sched = sched.restrict_to([t.name for t in tasks], str(schedule))
    job = prepare_job(cfg, tasks, cfg.seed)
    res = train_with_schedule(job.tasks, job.target, sched, cfg, cfg.seed)
    metrics = {"target": cfg.target, "seed": cfg.seed, "schedule": str(schedule), **res.to_dict()}
    _write_json(out / "metrics.json", metrics)
    write_run_stamp(out, cfg, "train")
    typer.echo(f"{cfg.target} {res.metric} on {res.report_split}: {res.test:.4f}  ({res.seconds:.1f} s)  -> {out / 'metrics.json'}")


# ---------------------------------------------------------------- compare


@app.command()
@handle_errors
def compare(
    config: str = typer.Argument(..., help="YAML config, or 'builtin'"),
    out: Path = typer.Option(..., "--out", help="Output directory"),
    seeds: int = typer.Option(5, "--seeds", min=1, help="Number of paired seeds"),
    oracle: bool = typer.Option(False, "--oracle", help="Add a grid search over static mixtures"),
    methods: Optional[str] = typer.Option(None, "--methods", help="Comma-separated methods (default: the config's or the standard set)"),
    backend: str = typer.Option("sequential", "--backend", help="sequential | ray"),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address (backend ray)"),
    resume: bool = typer.Option(False, "--resume", help="Skip (method, seed) cells already in DIR/rows.jsonl"),
    overrides: Optional[list[str]] = OverrideOpt,
    data_dir: Optional[str] = DataDirOpt,
) -> None:
    """Every strategy on the same tasks and paired seeds: DIR/results.json and a table."""
    from .compare.runner import run_compare

    ov = list(overrides or [])
    if methods:
        ov.append("compare.methods=[" + ",".join(m.strip() for m in methods.split(",") if m.strip()) + "]")
    _check_out(out)
    cfg, tasks = load(config, ov, data_dir)
    res = run_compare(cfg, tasks, out, seeds=seeds, oracle=oracle, backend=backend, address=address, resume=resume,
                      progress=_progress())
    typer.echo(res["table"])
    typer.echo(f"results: {out / 'results.json'}")


# ------------------------------------------------------------------- plot


@app.command()
@handle_errors
def plot(
    schedule: Path = typer.Argument(..., help="Schedule JSON"),
    out: Path = typer.Option(..., "--out", help="PNG file"),
    log: Optional[Path] = typer.Option(None, "--log", help="Search log.jsonl: draw the policy after each update"),
    title: Optional[str] = typer.Option(None, "--title"),
) -> None:
    """Plot a schedule's task weights over meta-steps (the paper's Figure 1)."""
    from .compare.plots import plot_schedule
    from .schedule import Schedule

    sched = Schedule.load(schedule)
    entries = None
    if log is not None:
        try:
            entries = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        except (OSError, ValueError) as e:  # ValueError: bad JSON or not UTF-8
            raise TaskmixError(f"{log}: not a readable log.jsonl ({e})") from None
    plot_schedule(sched, out, title=title, log=entries)
    typer.echo(f"plot: {out}")


# ------------------------------------------------------------------- demo


@app.command()
@handle_errors
def demo(
    out: Path = typer.Option(Path("demo"), "--out", help="Output directory"),
    seeds: int = typer.Option(5, "--seeds", min=1),
    oracle: bool = typer.Option(False, "--oracle", help="Add the oracle grid (slower)"),
    resume: bool = typer.Option(False, "--resume", help="Continue the demo in DIR instead of replacing it"),
    overrides: Optional[list[str]] = OverrideOpt,
) -> None:
    """`compare` on the built-in benchmark; writes results.json, the learned schedule.json and its plot.

    A DIR that holds an earlier demo is replaced (or continued, with --resume); any other non-empty DIR is refused.
    """
    from .compare.runner import run_compare

    t0 = time.perf_counter()
    _check_out(out)
    cfg, tasks = load("builtin", overrides, None)
    resume = _prepare_demo_dir(out, resume)
    res = run_compare(cfg, tasks, out, seeds=seeds, oracle=oracle, resume=resume, progress=_progress(), command="demo")
    _write_json(out / DEMO_MARKER, {"command": "demo", "seeds": seeds, "oracle": oracle, "overrides": list(overrides or [])})
    typer.echo(res["table"])
    typer.echo(f"results: {out / 'results.json'}   schedule: {out / 'schedule.json'}   plot: {out / 'schedule.png'}")
    typer.echo(f"demo finished in {time.perf_counter() - t0:.1f} s")


# ------------------------------------------------------- schedule / config tooling

schedule_app = typer.Typer(no_args_is_help=True, help="Inspect, compare and export schedule files.")
config_app = typer.Typer(no_args_is_help=True, help="The resolved config and the config file's JSON schema.")
app.add_typer(schedule_app, name="schedule")
app.add_typer(config_app, name="config")

TotalStepsOpt = typer.Option(None, "--total-steps", help="Run length in steps (default: the schedule's search_steps)")


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


@schedule_app.command("show")
@handle_errors
def schedule_show(
    schedule: Path = typer.Argument(..., help="Schedule JSON"),
    total_steps: Optional[int] = TotalStepsOpt,
    as_json: bool = typer.Option(False, "--json", help="The schedule file, validated and normalised, as JSON"),
) -> None:
    """Tasks, step layout, provenance and the weights of each row and on average."""
    from .schedule import Schedule
    from .schedule_tools import describe

    sched = Schedule.load(schedule)
    typer.echo(sched.to_json() if as_json else _value_errors(lambda: describe(sched, total_steps)), nl=as_json)


@schedule_app.command("diff")
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


@schedule_app.command("export")
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


@config_app.command("show")
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


@config_app.command("schema")
@handle_errors
def config_schema_cmd(
    out: Optional[Path] = typer.Option(None, "--out", help="Write to this file instead of stdout"),
) -> None:
    """The JSON schema of a config file, with every field's default and description."""
    from .config import config_schema

    _emit(json.dumps(config_schema(), indent=2) + "\n", out)


DEMO_MARKER = "demo.json"
"""Written into a demo's directory: marks it as one that ``taskmix demo`` may replace."""

DEMO_OUTPUTS = ("results.json", "rows.jsonl", "compare.json", "table.md", "report.md", "report.html", "schedule.json",
                "schedule.png", "schedule_time_variant.json", "schedule_time_variant.png", "config.resolved.yaml",
                "versions.json", "schedules", "logs", "plots", DEMO_MARKER)
"""What ``taskmix demo`` writes (and removes when it replaces an earlier demo)."""


def _is_demo_dir(out: Path) -> bool:
    if (out / DEMO_MARKER).is_file():  # a finished demo
        return True
    try:  # an interrupted demo (compare.json is written with the first row)
        meta = json.loads((out / "compare.json").read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(meta, dict):
        return False
    if "command" in meta:
        return meta["command"] == "demo"
    # written before compare.json named its command: a comparison on the built-in benchmark
    return isinstance(meta.get("config"), dict) and meta["config"].get("synthetic") is not None


def _prepare_demo_dir(out: Path, resume: bool) -> bool:
    """Make ``out`` ready for a demo; return whether ``run_compare`` should resume.

    An absent or empty ``out`` starts afresh.  An earlier demo's directory is
    continued with ``resume`` and otherwise replaced: the files the demo writes
    are removed, anything else in it is left alone.  Any other non-empty
    directory is refused, so a mistyped ``--out`` never loses data.
    """
    import shutil

    if not out.is_dir() or not any(out.iterdir()):
        return False
    if not _is_demo_dir(out):
        raise OutputError(f"{out}: exists, is not empty and holds no earlier demo ({DEMO_MARKER}); choose another --out")
    if resume:
        return (out / "rows.jsonl").exists()
    typer.echo(f"replacing the earlier demo in {out} (--resume continues it instead)", err=True)
    for name in DEMO_OUTPUTS:
        p = out / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()
    return False


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
