"""The ``taskmix`` command line: a thin layer over the library.

Commands (names and outputs are a contract):

* ``taskmix search CONFIG --out DIR [--seed S] [--resume]`` -> ``DIR/schedule.json``, ``DIR/log.{jsonl,csv}``
* ``taskmix train CONFIG --schedule FILE --out DIR [--seed S] [--overwrite]`` -> ``DIR/metrics.json``
* ``taskmix compare CONFIG --seeds N --out DIR [--oracle]`` -> ``DIR/results.json`` (+ table, report)
* ``taskmix plot SCHEDULE --out FILE``: PNG, PDF or SVG, as the suffix says
* ``taskmix schedule show|diff|export``: inspect, compare, export a schedule (interleave stages, seqio rates, Megatron weights)
* ``taskmix config show CONFIG`` / ``taskmix config schema``: the resolved config (YAML); the config's JSON schema
* ``taskmix demo --out DIR [--resume]``: ``compare`` on the built-in benchmark (replaces an earlier demo in DIR)
* ``taskmix --version``: ``taskmix X.Y.Z``

``CONFIG`` is a YAML file, or ``builtin`` for the built-in benchmark.  Every
command takes ``-o KEY=VALUE`` overrides (``-o search.epsilon=0.05``) and
``--data-dir`` (text presets).  On/off options are plain flags (``--resume``,
not ``--resume yes``).  Bad input exits with code 2 and a one-line
message (see ``docs/errors.md``), an I/O failure (disk full, permission
denied) with code 1; nothing half-written is left behind.  Ctrl-C (code 130)
and SIGTERM (code 143) end a command with one line, its output directory's
lock released and, for ``search``, ``compare`` and ``demo``, a ``--resume``
hint.  These three report progress on stderr (``--progress auto|bar|lines|off``,
``$TASKMIX_PROGRESS``; :mod:`taskmix.runs.progress`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer

from ..errors import OutputError, TaskmixError
from ..files import MAX_TEXT_INPUT_BYTES, OutputLock, atomic_write_text, read_input_bytes
from .config_cmds import config_app
from .demo_dir import DEMO_MARKER, prepare_demo_dir
from .errors import OneLineErrors, handle_errors
from .options import MAX_SEEDS, SEED_LIMIT, DataDirOpt, FlagCommand, OverrideOpt, ProgressOpt, out_dir
from .schedule_cmds import schedule_app

app = typer.Typer(
    cls=OneLineErrors,
    add_completion=False,
    no_args_is_help=True,
    help="Learn how to mix tasks in multi-task training: search a task-sampling schedule, replay it, compare mixing methods.\n\n"
         "Start with `taskmix demo` (the built-in benchmark, about a minute), then "
         "`taskmix compare mix.yaml --out DIR` on your own tasks. CONFIG is a YAML file or 'builtin'; "
         "every command takes -o KEY=VALUE overrides and --help.",
    epilog="Documentation: docs/index.md (commands: docs/cli.md; error messages: docs/errors.md).",
)


def _package_version() -> str:
    """The installed distribution's version; the package's own ``__version__`` when not installed (a bare checkout)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("taskmix")
    except PackageNotFoundError:  # the package itself is imported already (it holds this module); no import edge to it
        return str(getattr(sys.modules.get("taskmix"), "__version__", "unknown"))


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"taskmix {_package_version()}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                 help="Print taskmix's version and exit"),
) -> None:
    """Learn how to mix tasks in multi-task training."""


# ----------------------------------------------------------------- helpers


def load(config: str, overrides: list[str] | None, data_dir: str | None, seed: int | None = None, progress: str = "auto",
         compare: bool = False):
    """Config + tasks (text tasks encoded through the cache; its progress lines follow ``progress``), validated
    before any output is written."""
    from ..config import load_config
    from ..data import load_run_tasks
    from ..runs.job import check_run_config
    from ..runs.progress import mode_env

    ov = list(overrides or [])
    if data_dir is not None:
        ov.append(f"data_dir={Path(data_dir).resolve()}")
    if seed is not None:
        ov.append(f"seed={seed}")
    cfg = load_config(None if config == "builtin" else config, ov)
    if compare:  # and the comparison's methods: the comparison layer is imported for compare and demo only
        from ..compare.methods import check_config

        check_config(cfg)
    else:
        check_run_config(cfg)  # every registry name a run uses (reward, prior, strategies, device) before any data is read
    _threads(cfg)
    with mode_env(progress):
        tasks = load_run_tasks(cfg)
    return cfg, tasks


def _check_out(out: Path) -> None:
    """Refuse an ``--out`` that cannot be a directory, before any work is done."""
    for p in (out, *out.parents):
        if p.exists():
            if not p.is_dir():
                raise OutputError(f"{p}: exists and is not a directory; --out needs a directory")
            break


def _check_no_metrics(out: Path, overwrite: bool) -> None:
    if not overwrite and ((out / "metrics.json").exists() or (out / "metrics.json").is_symlink()):
        raise OutputError(f"{out / 'metrics.json'}: already exists; pass --overwrite to replace it or choose another --out")


def _threads(cfg) -> None:
    import torch

    n = cfg.train.threads or (1 if cfg.model.regime == "frozen" else max(1, os.cpu_count() or 1))
    torch.set_num_threads(n)


def _progress(mode: str = "auto"):
    """``--progress``: a bar on a terminal, one line per finished cell or meta-step elsewhere (taskmix.runs.progress)."""
    from ..runs.progress import make_progress

    return make_progress(mode)


def _write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


# ----------------------------------------------------------------- search


@app.command(cls=FlagCommand)
@handle_errors
def search(
    config: str = typer.Argument(..., help="YAML config, or 'builtin'"),
    out: Path = typer.Option(..., "--out", parser=out_dir, metavar="DIR", help="Output directory"),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, max=SEED_LIMIT - 1, help="Seed, 0 <= S < 2^32 (default: the config's seed)"),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last complete checkpoint in DIR"),
    allow_changed_data: bool = typer.Option(False, "--allow-changed-data", help="With --resume: continue although the data changed since the run started"),
    keep: int = typer.Option(2, "--keep-checkpoints", min=1, help="Checkpoints to keep"),
    overrides: Optional[list[str]] = OverrideOpt,
    data_dir: Optional[str] = DataDirOpt,
    progress: str = ProgressOpt,
) -> None:
    """Learn a task-sampling schedule; writes DIR/schedule.json, DIR/log.jsonl and checkpoints (--resume continues)."""
    from ..runs.search_dir import run_search

    _check_out(out)
    reporter = _progress(progress)  # $TASKMIX_PROGRESS checked before any work
    cfg, tasks = load(config, overrides, data_dir, seed, progress)
    res = run_search(cfg, tasks, out, resume=resume, keep=keep, progress=reporter,  # also under torchrun
                     allow_changed_data=allow_changed_data)
    if res.extra.get("rank", 0):  # data parallel: rank 0 wrote the files and reports
        return
    w = res.schedule.mean_weights()
    typer.echo(f"schedule: {out / 'schedule.json'}")
    typer.echo("mean weights: " + ", ".join(f"{t}={v:.3f}" for t, v in zip(res.schedule.tasks, w)))


# ------------------------------------------------------------------ train


@app.command(cls=FlagCommand)
@handle_errors
def train(
    config: str = typer.Argument(..., help="YAML config, or 'builtin'"),
    schedule: Path = typer.Option(..., "--schedule", metavar="FILE", help="Schedule JSON to replay"),
    out: Path = typer.Option(..., "--out", parser=out_dir, metavar="DIR", help="Output directory"),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, max=SEED_LIMIT - 1, help="Seed, 0 <= S < 2^32"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing DIR/metrics.json"),
    allow_missing_tasks: bool = typer.Option(False, "--allow-missing-tasks", help="Give the tasks the schedule does not name weight 0"),
    overrides: Optional[list[str]] = OverrideOpt,
    data_dir: Optional[str] = DataDirOpt,
) -> None:
    """Train a fresh model on a fixed schedule; writes DIR/metrics.json."""
    from ..engine.trainer import train_with_schedule
    from ..runs.job import prepare_job
    from ..runs.stamp import write_run_stamp
    from ..schedule import Schedule

    _check_out(out)
    _check_no_metrics(out, overwrite)
    sched = Schedule.load(schedule)
    cfg, tasks = load(config, overrides, data_dir, seed)
    sched = sched.restrict_to([t.name for t in tasks], str(schedule), allow_missing=allow_missing_tasks)
    job = prepare_job(cfg, tasks, cfg.seed)
    with OutputLock(out):  # a second writer on DIR is refused
        _check_no_metrics(out, overwrite)
        res = train_with_schedule(job.tasks, job.target, sched, cfg, cfg.seed)
        metrics = {"target": cfg.target, "seed": cfg.seed, "schedule": str(schedule), **res.to_dict()}
        _write_json(out / "metrics.json", metrics)
        write_run_stamp(out, cfg, "train")
    typer.echo(f"{cfg.target} {res.metric} on {res.report_split}: {res.test:.4f}  ({res.seconds:.1f} s)  -> {out / 'metrics.json'}")


# ---------------------------------------------------------------- compare


_KIND_NOTES = {
    "baseline": "fixed rules, replayed as static schedules",
    "learned": "a search, then a fresh model on the learned schedule",
    "oracle": "grid search over static mixtures; also --oracle",
    "adaptive": "online strategies: the online run's own model",
    "adaptive-replay": "an online strategy's average weights, retrained",
}


def methods_help(width: int = 78) -> str:
    """The methods ``compare --methods`` accepts, grouped by kind, and the default set: from the registry.

    Lines are wrapped to ``width`` columns with a hanging indent (the help's epilog keeps line breaks).
    """
    import textwrap

    from ..compare.methods import DEFAULT_METHODS, FEATURE_METHODS, METHODS

    by_kind: dict[str, list[str]] = {}
    for name in METHODS.names():
        if name in METHODS:
            kind = str(METHODS.meta(name, "kind", "other"))
        else:  # a family, e.g. temperature_<T> (any positive T): the kind of a default member, else "other"
            prefix, _, placeholder = name.partition("<")
            member = next((m for m in DEFAULT_METHODS if m.startswith(prefix) and m in METHODS), None)
            kind = str(METHODS.meta(member, "kind", "other")) if member else "other"
            name += f" (any {placeholder.rstrip('>')} > 0" + (f", e.g. {member})" if member else ")")
        by_kind.setdefault(kind, []).append(name)

    def wrap(first: str, rest: str, indent: str) -> list[str]:
        return textwrap.wrap(first + rest, width, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)

    lines = ["Methods (--methods NAME,NAME,...; also compare.methods in the config):"]
    for kind, names in by_kind.items():
        note = _KIND_NOTES.get(kind)
        lines += wrap(f"  {kind}" + (f" ({note})" if note else "") + ": ", "", "      ")
        lines += wrap("      ", ", ".join(names), "      ")
    lines += wrap("Default set: ", ", ".join(DEFAULT_METHODS), "  ")
    lines += wrap("Feature tasks (npz, built-in) also: ", ", ".join(FEATURE_METHODS), "  ")
    return "\n".join(lines)


class _CompareCommand(FlagCommand):
    """``taskmix compare``: its help ends with the registered methods and the default set."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        """The help, with the method list generated from the registry when asked for (not at import)."""
        self.epilog = methods_help()
        super().format_help(ctx, formatter)


@app.command(cls=_CompareCommand)
@handle_errors
def compare(
    config: str = typer.Argument(..., help="YAML config, or 'builtin'"),
    out: Path = typer.Option(..., "--out", parser=out_dir, metavar="DIR", help="Output directory"),
    seeds: int = typer.Option(5, "--seeds", min=1, max=MAX_SEEDS, help="Number of paired seeds"),
    oracle: bool = typer.Option(False, "--oracle", help="Add a grid search over static mixtures"),
    methods: Optional[str] = typer.Option(None, "--methods", metavar="NAME,...",
                                          help="Comma-separated methods (listed below; default: the config's compare.methods, "
                                               "else the default set below)"),
    backend: str = typer.Option("sequential", "--backend", help="sequential | ray"),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address (backend ray)"),
    resume: bool = typer.Option(False, "--resume", help="Skip (method, seed) cells already in DIR/rows.jsonl"),
    allow_changed_data: bool = typer.Option(False, "--allow-changed-data", help="With --resume: keep the rows although the data changed since they were scored"),
    overrides: Optional[list[str]] = OverrideOpt,
    data_dir: Optional[str] = DataDirOpt,
    progress: str = ProgressOpt,
) -> None:
    """Compare mixing methods on paired seeds; prints a table, writes DIR/results.json, DIR/report.html and report.md."""
    from ..compare.runner import run_compare

    ov = list(overrides or [])
    if methods is not None:
        names = [m.strip() for m in methods.split(",") if m.strip()]
        if not names:
            raise TaskmixError(f"--methods: {methods[:40]!r} names no method; expected comma-separated names, e.g. uniform,learned_time_invariant")
        ov.append("compare.methods=[" + ",".join(names) + "]")
    _check_out(out)
    reporter = _progress(progress)  # $TASKMIX_PROGRESS checked before any work
    cfg, tasks = load(config, ov, data_dir, progress=progress, compare=True)
    res = run_compare(cfg, tasks, out, seeds=seeds, oracle=oracle, backend=backend, address=address, resume=resume,
                      progress=reporter, allow_changed_data=allow_changed_data)
    _echo_verdict(res)
    typer.echo(res["table"])
    _echo_outputs(out)


def _echo_verdict(res: dict) -> None:
    """The comparison's answer, first: the recommended mixture and its evidence, in plain words."""
    if res.get("verdict"):
        typer.echo(f"verdict: {res['verdict']}\n")


def _echo_outputs(out: Path) -> None:
    """The last lines of ``compare`` and ``demo``: where the results, the report and the learned schedule are."""
    typer.echo(f"results: {out / 'results.json'}")
    if (out / "recommended.json").exists():
        typer.echo(f"recommended: {out / 'recommended.json'}")
    reports = [out / name for name in ("report.html", "report.md") if (out / name).exists()]
    if reports:
        typer.echo("report: " + ", ".join(str(p) for p in reports))
    schedules = [out / name for name in ("schedule.json", "schedule_time_variant.json") if (out / name).exists()]
    if schedules:
        plot = out / "schedule.png"
        typer.echo("learned schedule of the first seed: " + ", ".join(str(p) for p in schedules)
                   + (f" (plot: {plot})" if plot.exists() else ""))


# ------------------------------------------------------------------- plot


@app.command(cls=FlagCommand)
@handle_errors
def plot(
    schedule: Path = typer.Argument(..., help="Schedule JSON"),
    out: Path = typer.Option(..., "--out", parser=out_dir, metavar="FILE",
                             help="Figure file; its suffix picks the format (.png, .pdf, .svg)"),
    log: Optional[Path] = typer.Option(None, "--log", help="Search log.jsonl: draw the policy after each update"),
    title: Optional[str] = typer.Option(None, "--title"),
) -> None:
    """Plot a schedule's task weights over meta-steps (the paper's Figure 1); writes FILE (.png, .pdf or .svg)."""
    from ..compare.plots import plot_schedule
    from ..schedule import Schedule

    from ..compare.plots import figure_format

    figure_format(out)  # before any work
    sched = Schedule.load(schedule)
    entries = None
    if log is not None:
        try:
            text = read_input_bytes(log, "log.jsonl", MAX_TEXT_INPUT_BYTES).decode("utf-8")
        except OSError as e:
            raise TaskmixError(f"{log}: not a readable log.jsonl ({e.strerror or e})") from None
        except UnicodeDecodeError as e:
            raise TaskmixError(f"{log}: not a readable log.jsonl (not UTF-8 at byte {e.start})") from None
        entries = []
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                entries.append(json.loads(line))
            except (ValueError, RecursionError) as e:
                why = e.msg if isinstance(e, json.JSONDecodeError) else type(e).__name__
                raise TaskmixError(f"{log}:{i}: not valid JSON ({why}); expected a search log.jsonl row") from None
        _check_log(entries, sched.n_tasks, str(log))
    plot_schedule(sched, out, title=title, log=entries)
    typer.echo(f"plot: {out}")


def _check_log(entries: list[Any], n_tasks: int, where: str) -> None:
    """Every ``--log`` row is a search log row: ``probs_after`` holds one finite weight per task."""
    import math

    for i, e in enumerate(entries, 1):
        w = e.get("probs_after") if isinstance(e, dict) else None
        if not (isinstance(w, list) and len(w) == n_tasks
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in w)):
            raise TaskmixError(f"{where}: row {i}: 'probs_after' is missing or not {n_tasks} finite numbers "
                               "(one per task of the schedule); expected a search log.jsonl")


# ------------------------------------------------------------------- demo


@app.command(cls=FlagCommand)
@handle_errors
def demo(
    out: Path = typer.Option(Path("demo"), "--out", parser=out_dir, metavar="DIR", help="Output directory"),
    seeds: int = typer.Option(5, "--seeds", min=1, max=MAX_SEEDS),
    oracle: bool = typer.Option(False, "--oracle", help="Add the oracle grid (slower)"),
    resume: bool = typer.Option(False, "--resume", help="Continue the demo in DIR instead of replacing it"),
    allow_changed_data: bool = typer.Option(False, "--allow-changed-data", help="With --resume: keep the rows although the data changed since they were scored"),
    overrides: Optional[list[str]] = OverrideOpt,
    progress: str = ProgressOpt,
) -> None:
    """`compare` on the built-in benchmark; writes DIR (demo/): results.json, report.html, report.md, schedule.json.

    Also the learned schedule's plot (schedule.png).  A DIR that holds an earlier demo is replaced (or
    continued, with --resume); any other non-empty DIR is refused.
    """
    from ..compare.runner import run_compare

    t0 = time.perf_counter()
    _check_out(out)
    reporter = _progress(progress)  # $TASKMIX_PROGRESS checked before any work
    cfg, tasks = load("builtin", overrides, None, compare=True)
    # the lock first: a demo refused because DIR is in use never touches the running demo's files
    with OutputLock(out, nested=True):  # run_compare's own lock on DIR joins this one
        resume = prepare_demo_dir(out, resume)
        res = run_compare(cfg, tasks, out, seeds=seeds, oracle=oracle, resume=resume, progress=reporter, command="demo",
                          allow_changed_data=allow_changed_data)
        _write_json(out / DEMO_MARKER, {"command": "demo", "seeds": seeds, "oracle": oracle, "overrides": list(overrides or [])})
    _echo_verdict(res)
    typer.echo(res["table"])
    typer.echo(f"demo finished in {time.perf_counter() - t0:.1f} s")
    _echo_outputs(out)


app.add_typer(schedule_app, name="schedule")
app.add_typer(config_app, name="config")


def main() -> None:  # pragma: no cover
    """Entry point of the ``taskmix`` console script."""
    app()

