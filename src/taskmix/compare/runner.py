"""Running a comparison: every (method, seed) cell, resumable, then the results, schedules, table and report.

>>> import tempfile
>>> from taskmix.config import builtin_config
>>> from taskmix.data import load_run_tasks
>>> from taskmix.compare import run_compare
>>> cfg = builtin_config(["train.steps=20", "search.meta_steps=2", "compare.methods=[uniform]"])
>>> res = run_compare(cfg, load_run_tasks(cfg), tempfile.mkdtemp(), seeds=1)
>>> [row["method"] for row in res["results"]["rows"]]
['uniform']
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..config import Config
from ..data.tasks import Task
from ..engine.trainer import train_with_schedule
from ..errors import ConfigError, atomic_write_text
from ..runs.checkpoint import check_compatible
from ..runs.job import prepare_job
from ..runs.stamp import package_versions, write_run_stamp
from ..runs.tracking import track_compare
from ..schedule import RULES, Schedule
from .methods import run_method, select_methods
from .plots import plot_schedule
from .ray_backend import run_cells_ray
from .report import write_report
from .stats import format_table, method_kind, summarize

__all__ = ["run_cells", "run_compare", "schedule_title", "warm_up"]


def schedule_title(method: str, seed: int, target: str) -> str:
    """The title of a learned schedule's plot (``DIR/schedule.png``): method, seed and the target task's name."""
    return f"{method}, seed {seed} (target task: {target!r})"


def warm_up(cfg: Config, tasks: Sequence[Task], seed: int) -> None:
    """A few untimed training steps, so that the first timed method does not pay one-off start-up costs."""
    job = prepare_job(cfg, tasks, seed)
    train_with_schedule(job.tasks, job.target, RULES.get("uniform")(job.names), cfg, seed, steps=min(20, cfg.train.steps))


def run_cells(cfg: Config, tasks: Sequence[Task], cells: Sequence[tuple[str, int]], on_row: Callable[[dict[str, Any]], None]) -> None:
    """Run (method, seed) cells one after the other, handing each row to ``on_row``."""
    if cells:
        warm_up(cfg, tasks, cells[0][1])
    for method, seed in cells:
        on_row(run_method(cfg, tasks, method, seed))


def run_compare(
    cfg: Config,
    tasks: Sequence[Task],
    out: str | Path,
    seeds: int = 5,
    oracle: bool = False,
    backend: str = "sequential",
    address: str | None = None,
    resume: bool = False,
    progress: Any = None,
    command: str = "compare",
) -> dict[str, Any]:
    """Run every method on ``seeds`` paired seeds; write results, schedules, logs and the table under ``out``.

    ``out`` also keeps ``config.resolved.yaml`` and ``versions.json``
    (:func:`taskmix.runs.stamp.write_run_stamp`, naming ``command``).
    """
    out = Path(out)
    methods = select_methods(cfg, oracle)
    if backend not in ("sequential", "ray"):
        raise ConfigError(f"--backend: expected 'sequential' or 'ray', got {backend!r}")
    seed_list = [cfg.seed + i for i in range(seeds)]
    rows_path = out / "rows.jsonl"
    meta_path = out / "compare.json"
    fingerprint = cfg.fingerprint()
    rows: list[dict[str, Any]] = []
    if resume and rows_path.exists():
        try:
            saved = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError):
            raise ConfigError(f"{meta_path}: missing or unreadable; cannot check that --resume uses the same config") from None
        check_compatible(saved, fingerprint, saved.get("seed"), str(out))
        for i, line in enumerate(rows_path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                (row["method"], int(row["seed"]), float(row["test"]))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                raise ConfigError(f"{rows_path}:{i}: not a results row (expected JSON with method, seed, test)") from None
            rows.append(row)
    elif (out / "results.json").exists() or rows_path.exists():
        raise ConfigError(f"{out}: already holds a comparison; use --resume to continue it or choose a new --out")
    done = {(r["method"], int(r["seed"])) for r in rows}
    cells = [(m, s) for s in seed_list for m in methods if (m, s) not in done]

    prog = progress if progress is not None else contextlib.nullcontext()
    with prog:
        bar = progress.add_task("compare", total=len(cells)) if progress is not None else None

        def on_row(row: dict[str, Any]) -> None:
            if not meta_path.exists():  # written with the first row: a run refused before any work leaves nothing
                atomic_write_text(meta_path, json.dumps({"config": fingerprint, "seed": cfg.seed, "command": command}, indent=2) + "\n")
                write_run_stamp(out, cfg, command)
            rows.append(row)
            atomic_write_text(rows_path, "".join(json.dumps(r) + "\n" for r in rows))
            if bar is not None:
                progress.advance(bar)

        if backend == "ray":
            run_cells_ray(cfg, tasks, cells, on_row, address=address)
        else:
            run_cells(cfg, tasks, cells, on_row)

    order = {(m, s): i for i, (m, s) in enumerate((m, s) for s in seed_list for m in methods)}
    rows = sorted((r for r in rows if (r["method"], int(r["seed"])) in order), key=lambda r: order[(r["method"], int(r["seed"]))])
    names = [t.name for t in tasks]
    target = tasks[names.index(cfg.target)]
    public_rows = []
    for r in rows:
        tag = f"{r['method']}-seed{r['seed']}"
        sched_rel = None
        if r.get("schedule") is not None:
            sched = Schedule.from_dict(r["schedule"], tag)
            sched_rel = f"schedules/{tag}.json"
            sched.save(out / sched_rel)
        if r.get("log"):
            atomic_write_text(out / "logs" / f"{tag}.jsonl", "".join(json.dumps(e) + "\n" for e in r["log"]))
        public_rows.append({k: v for k, v in r.items() if k not in ("log", "schedule")} | {"schedule": sched_rel})
    uniform_secs = [r["seconds"] for r in rows if r["method"] == "uniform"]
    plain_seconds = float(np.median(uniform_secs)) if uniform_secs else None
    summary = summarize(rows, plain_seconds=plain_seconds, plain_steps=cfg.train.steps)
    table = format_table(summary)
    results = {
        "target": cfg.target,
        "metric": target.metric,
        "report_split": target.report_split_name,
        "seeds": seed_list,
        "methods": methods,
        "plain_run_seconds": plain_seconds,
        "rows": public_rows,
        "summary": summary,
        "config": cfg.model_dump(mode="json"),
        "versions": package_versions(command),
    }
    write_run_stamp(out, cfg, command)
    atomic_write_text(out / "table.md", table + "\n")
    # the learned schedules of the first seed, with plots (the paper's Figure 1)
    drawn: dict[str, np.ndarray] = {}
    for method, stem in (("learned_time_invariant", "schedule"), ("learned_time_variant", "schedule_time_variant")):
        first = next((r for r in rows if r["method"] == method and r.get("schedule")), None)
        if first is None:
            continue
        sched = Schedule.from_dict(first["schedule"], method)
        sched.save(out / f"{stem}.json")
        log = first.get("log") or None
        plot_schedule(sched, out / f"{stem}.png", title=schedule_title(method, first["seed"], cfg.target), log=log)
        if log and all("probs_after" in e for e in log):
            drawn[method] = np.asarray([e["probs_after"] for e in log], dtype=np.float64)
    if len(drawn) == 2:
        a, b = drawn.values()
        results["schedule_plots_identical"] = bool(a.shape == b.shape and np.allclose(a, b, rtol=0, atol=1e-12))
        results["time_variant_init"] = cfg.search.time_variant_init
    atomic_write_text(out / "results.json", json.dumps(results, indent=2) + "\n")
    write_report(out, results, rows)
    track_compare(cfg, out, rows, target.metric, method_kind)  # MLflow, when the config's logging section asks
    return {"results": results, "table": table, "summary": summary}
