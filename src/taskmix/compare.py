"""Compare mixing strategies on the same tasks, seeds and budget.

Every method is a function of a :class:`Job` (config, tasks with the reward
split carved out, seed) that returns a :class:`MethodResult`.  Rule-based
methods replay a static schedule; learned methods search then retrain; the
oracle grid-searches static mixtures, selecting on the reward split.  All
methods of one seed train on the same data (the target's train split minus
the reward split) and report on the target's test split (else validation),
which no method sees before the final evaluation.  Seeds are paired: method
``m`` on seed ``s`` uses the same reward split, the same initialisation seed
and the same sampler seed as every other method on seed ``s``.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from . import schedule as rules
from .config import Config
from .errors import ConfigError
from .schedule import Schedule
from .search import SearchRun
from .tasks import Split, Task, carve_reward_split
from .train import Trainer, train_with_schedule


@dataclass
class Job:
    cfg: Config
    tasks: list[Task]  # target's train split already reduced
    target: int
    reward_split: Split
    seed: int

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tasks]

    @property
    def sizes(self) -> dict[str, int]:
        return {t.name: t.n_train for t in self.tasks}


@dataclass
class MethodResult:
    test: float
    seconds: float
    schedule: Schedule | None
    train_steps: int
    evaluations: int
    log: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def prepare_job(cfg: Config, tasks: Sequence[Task], seed: int) -> Job:
    names = [t.name for t in tasks]
    target = names.index(cfg.target)
    carved, reward = carve_reward_split(tasks[target], cfg.search.reward_fraction, seed)
    tasks = list(tasks)
    tasks[target] = carved
    return Job(cfg, tasks, target, reward, seed)


# ----------------------------------------------------------------- methods


def _replay(job: Job, sched: Schedule, extra_seconds: float = 0.0, extra_steps: int = 0, evals: int = 0, log=None, extra=None) -> MethodResult:
    r = train_with_schedule(job.tasks, job.target, sched, job.cfg, job.seed)
    return MethodResult(
        test=r.test,
        seconds=r.seconds + extra_seconds,
        schedule=sched,
        train_steps=r.steps + extra_steps,
        evaluations=1 + evals,
        log=log or [],
        extra={"realised": r.realised, **(extra or {})},
    )


def static_method(build: Callable[[Job], Schedule]) -> Callable[[Job], MethodResult]:
    def run(job: Job) -> MethodResult:
        return _replay(job, build(job))

    return run


def learned_method(policy: str) -> Callable[[Job], MethodResult]:
    """Search with the policy, then retrain a fresh model with the learned schedule."""

    def run(job: Job) -> MethodResult:
        cfg = job.cfg.model_copy(update={"search": job.cfg.search.model_copy(update={"policy": policy})})
        run_ = SearchRun(job.tasks, job.target, job.reward_split, cfg, job.seed)
        res = run_.run()
        return _replay(
            replace(job, cfg=cfg),
            res.schedule,
            extra_seconds=res.seconds,
            extra_steps=res.steps,
            evals=res.reward_evals,
            log=res.log,
            extra={"search_seconds": res.seconds},
        )

    return run


def simplex_grid(n: int, step: float) -> np.ndarray:
    """All points of the probability simplex in R^n with coordinates on a grid of ``step``."""
    k = int(round(1.0 / step))
    if abs(k * step - 1.0) > 1e-9:
        raise ConfigError(f"compare.oracle_step: 1/step must be an integer, got step={step}")
    pts = [c for c in itertools.product(range(k + 1), repeat=n) if sum(c) == k]
    return np.asarray(pts, dtype=np.float64) / k


def oracle_method(job: Job) -> MethodResult:
    """Grid search over static mixtures (random search on the simplex beyond 4 tasks).

    Each mixture is trained and scored on the *reward split*; the best one is
    reported on the test split, so the oracle is as honest as the search.
    """
    n = len(job.tasks)
    cc = job.cfg.compare
    if n <= 4:
        grid = simplex_grid(n, cc.oracle_step)
    else:
        rng = np.random.default_rng([job.seed, 0x0AC1E])
        grid = rng.dirichlet(np.ones(n), size=cc.oracle_samples)
    t0 = time.perf_counter()
    best, best_score, scores = None, -np.inf, []
    steps = 0
    for w in grid:
        sched = Schedule.from_weights(job.names, w, provenance={"method": "oracle_candidate"})
        score = _reward_split_score(job, sched)
        steps += job.cfg.train.steps
        scores.append({"weights": w.tolist(), "reward_split": score})
        if score > best_score:
            best, best_score = sched, score
    assert best is not None
    best = Schedule(best.tasks, best.weights, 1, {"method": "oracle", "grid_points": len(grid), "reward_split": best_score})
    search_seconds = time.perf_counter() - t0
    return _replay(
        job, best, extra_seconds=search_seconds, extra_steps=steps, evals=len(grid),
        extra={"grid_points": len(grid), "candidates": scores, "search_seconds": search_seconds},
    )


def _reward_split_score(job: Job, sched: Schedule) -> float:
    """Train with ``sched`` and score on the reward split (never on the reported split)."""
    from .sampler import TaskSampler

    cfg = job.cfg
    tr = Trainer(job.tasks, cfg, job.seed)
    sampler = TaskSampler(sched, cfg.train.batch_size, [t.n_train for t in job.tasks], seed=job.seed, per=cfg.train.per)
    for _ in range(cfg.train.steps):
        tr.train_step(*sampler.next_batch())
    return tr.metric(job.reward_split, job.target)


def rule_methods(cfg: Config) -> dict[str, Callable[[Job], MethodResult]]:
    m: dict[str, Callable[[Job], MethodResult]] = {
        "single_task": static_method(lambda j: rules.single_task(j.names, j.cfg.target)),
        "uniform": static_method(lambda j: rules.uniform(j.names)),
        "proportional": static_method(lambda j: rules.proportional(j.names, j.sizes)),
    }
    for t in cfg.compare.temperatures:
        m[f"temperature_{t:g}"] = static_method(lambda j, t=t: rules.temperature(j.names, j.sizes, t))
    m["examples_proportional"] = static_method(lambda j: rules.examples_proportional(j.names, j.sizes, j.cfg.compare.cap))
    return m


def all_methods(cfg: Config) -> dict[str, Callable[[Job], MethodResult]]:
    m = rule_methods(cfg)
    m["learned_time_invariant"] = learned_method("time_invariant")
    m["learned_time_variant"] = learned_method("time_variant")
    m["oracle"] = oracle_method
    try:  # adaptive peers (EXP3, Thompson sampling, gradient alignment), when available
        from .adaptive import adaptive_methods

        m.update(adaptive_methods(cfg))
    except ImportError:
        pass
    return m


DEFAULT_METHODS = (
    "single_task",
    "uniform",
    "proportional",
    "temperature_2",
    "learned_time_invariant",
    "learned_time_variant",
)


def select_methods(cfg: Config, oracle: bool = False) -> list[str]:
    available = all_methods(cfg)
    names = list(cfg.compare.methods) if cfg.compare.methods else list(DEFAULT_METHODS)
    if oracle and "oracle" not in names:
        names.append("oracle")
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ConfigError(f"compare.methods: unknown method(s) {unknown}; expected some of {sorted(available)}")
    return names


def run_method(cfg: Config, tasks: Sequence[Task], method: str, seed: int) -> dict[str, Any]:
    """One (method, seed) cell of a comparison, as a results row (schedule inline)."""
    job = prepare_job(cfg, tasks, seed)
    fn = all_methods(cfg)[method]
    res = fn(job)
    return {
        "method": method,
        "seed": seed,
        "test": res.test,
        "seconds": res.seconds,
        "train_steps": res.train_steps,
        "evaluations": res.evaluations,
        "schedule": res.schedule.to_dict() if res.schedule is not None else None,
        "log": res.log,
        "extra": _json_safe(res.extra),
    }


def _json_safe(x: Any) -> Any:
    from .schedule import _jsonable

    return _jsonable(x)


# ----------------------------------------------------------------- running


def warm_up(cfg: Config, tasks: Sequence[Task], seed: int) -> None:
    """A few untimed training steps, so that the first timed method does not pay one-off start-up costs."""
    job = prepare_job(cfg, tasks, seed)
    train_with_schedule(job.tasks, job.target, rules.uniform(job.names), cfg, seed, steps=min(20, cfg.train.steps))


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
) -> dict[str, Any]:
    """Run every method on ``seeds`` paired seeds; write results, schedules, logs and the table under ``out``."""
    import contextlib
    import json

    from .errors import atomic_write_text
    from .report import format_table, plot_schedule, summarize

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
        from .checkpoint import check_compatible

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
                atomic_write_text(meta_path, json.dumps({"config": fingerprint, "seed": cfg.seed}, indent=2) + "\n")
            rows.append(row)
            atomic_write_text(rows_path, "".join(json.dumps(r) + "\n" for r in rows))
            if bar is not None:
                progress.advance(bar)

        if backend == "ray":
            from .ray_backend import run_cells_ray

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
    }
    atomic_write_text(out / "results.json", json.dumps(results, indent=2) + "\n")
    atomic_write_text(out / "table.md", table + "\n")
    # the learned schedules of the first seed, with plots (the paper's Figure 1)
    for method, stem in (("learned_time_invariant", "schedule"), ("learned_time_variant", "schedule_time_variant")):
        first = next((r for r in rows if r["method"] == method and r.get("schedule")), None)
        if first is None:
            continue
        sched = Schedule.from_dict(first["schedule"], method)
        sched.save(out / f"{stem}.json")
        plot_schedule(sched, out / f"{stem}.png", title=f"{method} (seed {first['seed']}), target {cfg.target}",
                      log=first.get("log") or None)
    try:
        from .report import write_report

        write_report(out, results, rows)
    except ImportError:
        pass
    return {"results": results, "table": table, "summary": summary}
