"""Running a comparison: every (method, seed) cell, resumable, then the results, schedules, table and report.

>>> import tempfile
>>> from taskmix.config import builtin_config
>>> from taskmix.data import load_run_tasks
>>> from taskmix.compare import run_compare
>>> cfg = builtin_config(["train.steps=20", "search.meta_steps=2", "compare.methods=[uniform]"])
>>> res = run_compare(cfg, load_run_tasks(cfg), tempfile.mkdtemp(), seeds=1)
>>> [row["method"] for row in res["results"]["rows"]]
['uniform', 'recommended']
>>> res["results"]["recommendation"]["source"]
'uniform'
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..config import Config
from ..data.tasks import Task, metric_label, metric_sign
from ..engine.trainer import train_with_schedule
from ..errors import ConfigError, OutputError, TrainingError
from ..files import OutputLock, atomic_write_text, read_input_bytes
from ..runs.checkpoint import check_compatible
from ..runs.inputs import check_inputs, input_digests
from ..runs.job import prepare_job, replay
from ..runs.progress import ProgressReporter, make_progress, reporting
from ..runs.stamp import package_versions, write_run_stamp
from ..runs.tracking import check_tracking, track_compare
from ..schedule import RULES, Schedule, jsonable
from .budget import equal_compute
from .methods import METHODS, method_row, run_method, select_methods
from .plots import plot_schedule
from .predictions import encode_labels
from .ray_backend import run_cells_ray
from .recommend import RECOMMENDED, Recommendation, confirm, confirm_round, recommend
from .report import write_report
from .rows import FRACTION, ROW_DIGEST, RowContext, held_out_fraction, read_rows, row_digest
from .stats import format_table, method_kind, paired, paired_t, summarize

__all__ = ["read_rows", "row_digest", "run_cells", "run_compare", "schedule_title", "warm_up"]

def strict_json(obj: Any, indent: int | None = None) -> str:
    """``obj`` as strict JSON (RFC 8259): a value that is not finite (a ratio to a zero-second run) is written as ``null``."""
    return json.dumps(jsonable(obj), indent=indent, allow_nan=False)


def schedule_title(method: str, seed: int, target: str) -> str:
    """The title of a learned schedule's plot (``DIR/schedule.png``): method, seed and the target task's name."""
    return f"{method}, seed {seed} (target task: {target!r})"


def warm_up(cfg: Config, tasks: Sequence[Task], seed: int) -> None:
    """A few untimed training steps, so that the first timed method does not pay one-off start-up costs."""
    job = prepare_job(cfg, tasks, seed)
    try:
        train_with_schedule(job.tasks, job.target, RULES.get("uniform")(job.names), cfg, seed, steps=min(20, cfg.train.steps))
    except TrainingError:  # it only warms up; a cell that diverges says so, naming its method and seed
        pass


def run_cells(cfg: Config, tasks: Sequence[Task], cells: Sequence[tuple[str, int]], on_row: Callable[[dict[str, Any]], None],
              on_start: Callable[[str, int], None] | None = None) -> None:
    """Run (method, seed) cells one after the other, calling ``on_start(method, seed)`` before each and handing
    each row to ``on_row``."""
    if cells:
        warm_up(cfg, tasks, cells[0][1])
    for method, seed in cells:
        if on_start is not None:
            on_start(method, seed)
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
    allow_changed_data: bool = False,
) -> dict[str, Any]:
    """Run every method on ``seeds`` paired seeds; write results, schedules, logs and the table under ``out``.

    ``out`` also keeps ``config.resolved.yaml`` and ``versions.json``
    (:func:`taskmix.runs.stamp.write_run_stamp`, naming ``command``), and ``compare.json`` the digests of
    the data the rows were scored on (:mod:`taskmix.runs.inputs`): ``resume`` on changed data is refused
    unless ``allow_changed_data``.

    With ``resume``, every row of ``rows.jsonl`` is checked before it is used
    (:func:`taskmix.compare.rows.check_row`: fields, types, ranges, labels, and ``test`` recomputed
    from the row's predictions).  Every JSON file written (``results.json``, ``compare.json``,
    ``rows.jsonl``, ``logs/*.jsonl``) is strict JSON: a value that is not finite (a cost ratio to a
    plain run of ~0 seconds, a NaN in a method's log or ``extra``) is written as ``null``.

    ``progress``: where each finished (method, seed) cell, ``recommended`` cells included, is reported
    (:mod:`taskmix.runs.progress`): ``None``, the ``taskmix.progress`` logger at ``INFO`` (silent unless logging
    is set up); ``"lines"``, one line on stderr (``[compare] 3/12 uniform seed 1: test accuracy 0.8123 (0.4 s;
    ETA 12 s)``); ``"bar"``, a bar naming the running method, seed and meta-step, with an ETA; ``True``, a bar
    when stderr is a terminal, else lines; ``False``, nowhere; or a
    :class:`~taskmix.runs.progress.ProgressReporter` (or a ``rich.progress.Progress``).
    """
    out = Path(out)
    reporter = make_progress(progress)  # a bad value is refused before any work
    methods = select_methods(cfg, oracle)
    if backend not in ("sequential", "ray"):
        raise ConfigError(f"--backend: expected 'sequential' or 'ray', got {backend!r}")
    seed_list = [cfg.seed + i for i in range(seeds)]
    if seed_list and seed_list[-1] >= 2**32:
        raise ConfigError(f"--seeds: seeds {cfg.seed}..{seed_list[-1]} reach 2^32; seeds are 0 <= seed < 2^32")
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a directory; --out needs a directory")
    check_tracking(cfg)  # a tracker's missing package is refused now, not after the work
    with OutputLock(out):  # a second comparison on ``out`` is refused
        try:
            return _compare_locked(cfg, tasks, out, methods, seed_list, oracle, backend, address, resume, reporter, command,
                                   allow_changed_data)
        finally:
            reporter.finish()


RESUMABLE = ("methods", "recommend", "choose_by", "incumbent", "incumbent_margin", "confirm_seeds", "confirm_rows")
"""The ``compare`` settings a resume may change: which rows run, and how the recommendation is made from them."""


def _without_methods(saved: dict[str, Any]) -> dict[str, Any]:
    """A saved comparison's record with the settings that never change a kept row left out of its config
    (:data:`RESUMABLE`): a resume may run other methods (or none more), the recommendation or not, choose it by
    another criterion or incumbent (a run made before a regime's default incumbent changed resumes under the new one)
    or confirm it on more or fewer seeds (a confirmation's rows are ordinary (method, seed) rows)."""
    config = saved.get("config")
    if not isinstance(config, dict) or not isinstance(config.get("compare"), dict):
        return saved
    section = {k: v for k, v in config["compare"].items() if k not in RESUMABLE}
    return {**saved, "config": {**config, "compare": section}}


def _compare_locked(cfg: Config, tasks: Sequence[Task], out: Path, methods: list[str], seed_list: list[int], oracle: bool,
                    backend: str, address: str | None, resume: bool, progress: ProgressReporter, command: str,
                    allow_changed_data: bool = False) -> dict[str, Any]:
    rows_path = out / "rows.jsonl"
    meta_path = out / "compare.json"
    fingerprint = cfg.fingerprint()
    inputs = input_digests(tasks)  # what the rows are scored on; kept in compare.json
    rows: list[dict[str, Any]] = []
    if resume and (rows_path.exists() or rows_path.is_symlink()):
        try:
            saved = json.loads(read_input_bytes(meta_path, "compare.json", 2**26, ConfigError, follow_symlinks=False))
            if not isinstance(saved, dict):
                raise ValueError("not an object")
        except (OSError, ValueError):
            raise ConfigError(f"{meta_path}: missing or unreadable; cannot check that --resume uses the same config") from None
        # which methods run is no difference: every row is one (method, seed), so a resume may add or drop methods
        check_compatible(_without_methods(saved), _without_methods({"config": fingerprint})["config"], saved.get("seed"),  # type: ignore[arg-type]  # seeds are per row
                         str(out))
        check_inputs(saved.get("inputs"), inputs, str(meta_path), allow_changed_data, cfg)  # before the rows are read
        reward_labels = functools.lru_cache(maxsize=None)(lambda s, f: _reward_labels(cfg, tasks, s, f))
        # every field checked; `test` and `extra.reward_split` against the row's own predictions
        rows = read_rows(rows_path, RowContext.of(tasks, cfg.target, reward_labels))
    elif (out / "results.json").exists() or rows_path.exists() or rows_path.is_symlink():
        raise ConfigError(f"{out}: already holds a comparison; use --resume to continue it or choose a new --out")
    done = {(r["method"], int(r["seed"])) for r in rows if held_out_fraction(r) is None}  # not a confirmation's own
    cells = [(m, s) for s in seed_list for m in methods if (m, s) not in done]
    names = [t.name for t in tasks]
    target = tasks[names.index(cfg.target)]
    # every cell counts, the recommended ones too: one per seed (how many are kept from a resumed run, and how
    # many run, is known once the other cells are done)
    n_main = len(methods) * len(seed_list)
    n_rec = len(seed_list) if cfg.compare.recommend else 0
    progress.start("compare", n_main + n_rec, n_main - len(cells), cells=cells,
                   metric=f"{target.report_split_name} {target.metric}")

    def on_row(row: dict[str, Any]) -> None:
        if not meta_path.exists():  # written with the first row: a run refused before any work leaves nothing
            atomic_write_text(meta_path, strict_json({"config": fingerprint, "seed": cfg.seed, "command": command, "inputs": inputs}, indent=2) + "\n")
            write_run_stamp(out, cfg, command)
        row = jsonable({k: v for k, v in row.items() if k != ROW_DIGEST})  # a non-finite value in a log or extra: null
        row[ROW_DIGEST] = row_digest(row)
        rows.append(row)
        atomic_write_text(rows_path, "".join(strict_json(r) + "\n" for r in rows))
        progress.cell_finished(row["method"], int(row["seed"]), row.get("test"), row.get("seconds"))

    def run(todo: Sequence[tuple[str, int]], run_cfg: Config = cfg, mark: float | None = None) -> None:
        """Run ``todo`` with ``run_cfg``; ``mark``: the held-out share its rows record (a confirmation's own)."""
        keep = on_row if mark is None else (lambda row: on_row({**row, "extra": {**(row.get("extra") or {}), FRACTION: mark}}))
        with reporting(progress):  # a learned method's search reports its meta-steps to the running cell
            if backend == "ray":
                run_cells_ray(run_cfg, tasks, todo, keep, address=address)
            else:
                run_cells(run_cfg, tasks, todo, keep, on_start=progress.cell_started)

    run(cells)

    rec = None
    n_confirm = 0
    if cfg.compare.recommend:
        rec = recommendation(cfg, tasks, rows, seed_list)
        first_rec = rec
        extra: list[int] = []
        rounds: list[dict[str, Any]] = []
        mark = confirm_mark(cfg)
        while rec is not None and (round_seeds := next_round(cfg, rec, seed_list)):
            # the choice is within noise of others: rerun just those on more seeds (holding out compare.confirm_fraction
            # of the target's rows), and choose again on every seed
            have_now = {(r["method"], int(r["seed"])) for r in rows if held_out_fraction(r) == mark}
            wanted = [(m, s) for s in round_seeds for m in rec.contenders]
            more = [c for c in wanted if c not in have_now]
            n_confirm += len(wanted)
            progress.set_total(n_main + n_confirm + len(seed_list), n_main + n_confirm - len(more))
            run(more, cfg.for_confirmation(), mark)
            extra += round_seeds
            rounds.append({"seeds": round_seeds, "candidates": rec.contenders})
            rec = recommendation(cfg, tasks, rows, seed_list + extra, methods=rec.contenders, confirming=extra)
            assert rec is not None  # every contender has rows of every seed now
        if extra and first_rec is not None and rec is not None:  # rec is a round's choice: never None after one
            rec = confirm(first_rec, rec, extra, rounds)
        stale = [r for r in rows if r["method"] == RECOMMENDED and (rec is None or not _same_mixture(r, rec))]
        if stale:  # written for another recommendation (other seeds): replaced
            rows[:] = [r for r in rows if not any(r is s for s in stale)]
            atomic_write_text(rows_path, "".join(strict_json(r) + "\n" for r in rows))
        have = {int(r["seed"]) for r in rows if r["method"] == RECOMMENDED}
        todo = [s for s in seed_list if s not in have] if rec is not None else []
        kept = len(have & set(seed_list))
        progress.set_total(n_main + n_confirm + kept + len(todo), n_main + n_confirm + kept)
        for s in todo:
            assert rec is not None  # todo is empty without a recommendation
            progress.cell_started(RECOMMENDED, s)
            on_row(recommended_row(cfg, tasks, rec, s, rows))
        methods = methods + ([RECOMMENDED] if rec is not None else [])

    order = {(m, s): i for i, (m, s) in enumerate((m, s) for s in seed_list for m in methods)}
    rows = sorted((r for r in rows if (r["method"], int(r["seed"])) in order and held_out_fraction(r) is None), key=lambda r: order[(r["method"], int(r["seed"]))])
    public_rows = []
    for r in rows:
        tag = f"{r['method']}-seed{r['seed']}"
        sched_rel = None
        if r.get("schedule") is not None:
            sched = Schedule.from_dict(r["schedule"], tag)
            sched_rel = f"schedules/{tag}.json"
            sched.save(out / sched_rel)
        if r.get("log"):
            atomic_write_text(out / "logs" / f"{tag}.jsonl", "".join(strict_json(e) + "\n" for e in r["log"]))
        public_rows.append({k: v for k, v in r.items() if k not in ("log", "schedule", "predictions", ROW_DIGEST)}
                           | {"schedule": sched_rel})
    uniform_secs = [r["seconds"] for r in rows if r["method"] == "uniform"]
    plain_seconds = float(np.median(uniform_secs)) if uniform_secs else None
    labels = target.report_split.y
    summary = summarize(rows, plain_seconds=plain_seconds, plain_steps=cfg.train.steps, labels=labels,
                        metric=target.metric, num_labels=target.num_labels)
    table = format_table(summary, metric=target.metric)
    results = {
        "target": cfg.target,
        "metric": target.metric,
        "report_split": target.report_split_name,
        "report_labels": encode_labels(labels),
        "seeds": seed_list,
        "methods": methods,
        "plain_run_seconds": plain_seconds,
        "rows": public_rows,
        "summary": summary,
        "equal_compute": equal_compute([r for r in rows if r["method"] != "recommended"], cfg.train.steps, target.metric),
        "config": cfg.model_dump(mode="json"),
        "versions": package_versions(command),
    }
    answer = _with_report_split(rec, summary, rows, target.metric) if rec is not None else None
    if answer is not None:
        results["recommendation"] = answer
        atomic_write_text(out / "recommended.json", strict_json(answer, indent=2) + "\n")
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
    atomic_write_text(out / "results.json", strict_json(results, indent=2) + "\n")
    write_report(out, results, rows)
    track_compare(cfg, out, rows, target.metric, method_kind)  # MLflow / W&B, when the config's logging section asks
    return {"results": results, "table": table, "summary": summary, "verdict": answer["text"] if answer else None}


def confirm_mark(cfg: Config) -> float | None:
    """The held-out share a confirmation's rows record (:data:`~taskmix.compare.rows.FRACTION`):
    ``compare.confirm_fraction`` where it differs from ``search.reward_fraction``, else None (its rows are like the
    comparison's)."""
    f = cfg.confirm_fraction
    return None if f == cfg.search.reward_fraction else f


def _reward_labels(cfg: Config, tasks: Sequence[Task], seed: int, fraction: float | None = None) -> np.ndarray:
    """The labels of ``seed``'s reward split, carved with ``fraction`` of the target's rows (None: the config's)."""
    return np.asarray(prepare_job(cfg.with_reward_fraction(fraction), tasks, seed).reward_split.y)


def recommendation(cfg: Config, tasks: Sequence[Task], rows: Sequence[dict[str, Any]], seeds: Sequence[int],
                   methods: Sequence[str] | None = None, confirming: Sequence[int] = ()) -> Recommendation | None:
    """The comparison's recommended mixture (:func:`taskmix.compare.recommend.recommend`) from its rows of ``seeds``
    (of ``methods`` only, when given: a confirmation's contenders; ``confirming``: the seeds among ``seeds`` that a
    confirmation ran, whose rows hold out ``compare.confirm_fraction`` of the target's rows).

    The held-out evidence is pooled over the reward-split rows of every seed: their labels come from the
    seed's job (the reward split is carved from the target's training data per seed, as every method's is).
    """
    wanted, mark, later = set(seeds), confirm_mark(cfg), set(confirming)
    base = [r for r in rows if r["method"] != RECOMMENDED and int(r["seed"]) in wanted
            and (methods is None or r["method"] in methods)
            and held_out_fraction(r) == (mark if int(r["seed"]) in later else None)]
    kinds = {r["method"]: METHODS.meta(r["method"], "kind") for r in base}
    labels = {s: _reward_labels(cfg, tasks, s, mark if s in later else None) for s in seeds}
    target = tasks[[t.name for t in tasks].index(cfg.target)]
    return recommend(base, kinds, labels, target.metric, incumbent=cfg.compare.incumbent,
                     incumbent_z=cfg.compare.incumbent_margin, criterion=cfg.compare.choose_by)


def next_round(cfg: Config, rec: Recommendation, seeds: Sequence[int]) -> list[int]:
    """The seeds of the confirmation's next round after the choice ``rec`` (:func:`~taskmix.compare.recommend.confirm_round`
    with ``compare.confirm_seeds``, ``compare.confirm_rows`` and the held-out rows ``rec`` weighed), ``seeds`` the
    comparison's own."""
    if not rec.contenders or not cfg.confirm_seeds:
        return []
    return confirm_round(rec, seeds, cfg.confirm_seeds, cfg.confirm_rows, rec.held_out_rows)


def _same_mixture(row: dict[str, Any], rec: Recommendation) -> bool:
    sched = row.get("schedule")
    if not isinstance(sched, dict):
        return False
    w = np.asarray(sched.get("weights"), dtype=np.float64)
    return tuple(sched.get("tasks", ())) == rec.schedule.tasks and w.shape == rec.schedule.weights.shape and bool(
        np.allclose(w, rec.schedule.weights, rtol=0, atol=1e-12))


def recommended_row(cfg: Config, tasks: Sequence[Task], rec: Recommendation, seed: int,
                    rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The ``recommended`` row of ``seed``: the recommendation trained on the seed's job and scored on the report split.

    A rule's recommendation is that rule's own row of the seed (the same schedule on the same job: nothing
    to retrain); a learned one (the seeds' consensus) is retrained.  Its cost is what producing it took on
    this seed: every candidate's run plus the retrain.
    """
    conf = rec.confirmed or {}
    names = set(rec.held_out) | set(conf.get("first_held_out", {}))  # every candidate the choice weighed
    same = [r for r in rows if int(r["seed"]) == seed and r["method"] in names]
    cost = {k: sum(float(r[k]) for r in same) for k in ("seconds", "train_steps", "evaluations")}
    if conf:  # the confirmation's runs, shared equally by the comparison's seeds
        seeds, mark = set(conf["seeds"]), confirm_mark(cfg)
        more = [r for r in rows if int(r["seed"]) in seeds and r["method"] in conf["candidates"]
                and held_out_fraction(r) == mark]
        cost = {k: v + sum(float(r[k]) for r in more) / len(conf["first_seeds"]) for k, v in cost.items()}
    src = next((r for r in same if r["method"] == rec.source), None)
    if rec.kind == "baseline" and src is not None:
        kept = ("reward_split", "reward_predictions", "reward_losses", "realised")
        row: dict[str, Any] = {**{k: src[k] for k in ("test", "predictions") if k in src},
                               "extra": {k: v for k, v in (src.get("extra") or {}).items() if k in kept}}
    else:
        res = replay(prepare_job(cfg, tasks, seed), rec.schedule)
        row = method_row(RECOMMENDED, seed, res)
        cost = {"seconds": cost["seconds"] + res.seconds, "train_steps": cost["train_steps"] + res.train_steps,
                "evaluations": cost["evaluations"] + res.evaluations}
    return {**row, "method": RECOMMENDED, "kind": METHODS.meta(RECOMMENDED, "kind"), "seed": seed,
            "seconds": cost["seconds"], "train_steps": int(cost["train_steps"]), "evaluations": int(cost["evaluations"]),
            "schedule": rec.schedule.to_dict(), "log": [],
            "extra": {**row.get("extra", {}), "source": rec.source, "verdict": rec.verdict}}


def _with_report_split(rec: Recommendation, summary: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]],
                       metric: str | None = None) -> dict[str, Any]:
    """The recommendation's record, with what its rows score on the report split (which the choice never saw)."""
    out = rec.to_dict()
    mine = next((s for s in summary if s["method"] == RECOMMENDED), None)
    if mine is None:
        return out
    groups: dict[str, dict[int, dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r["method"], {})[int(r["seed"])] = r
    report: dict[str, Any] = {"mean": mine["mean"], "ci_low": mine.get("ci_low"), "ci_high": mine.get("ci_high")}
    versus = {"single_task": "single_task"}
    best_rule = rec.best_rule or (rec.confirmed or {}).get("first_best_rule")  # a confirmation may rerun no rule
    if best_rule is not None:
        versus["best_rule"] = best_rule  # the rule chosen on held-out rows, not on the report split
    for key, method in versus.items():
        if method in groups and method != RECOMMENDED:
            d = paired(groups[RECOMMENDED], groups[method])
            if len(d):
                pt = paired_t(d)
                report[f"vs_{key}"] = {"method": method, "mean": pt["mean"], "ci_low": pt["ci_low"], "ci_high": pt["ci_high"],
                                       "p": pt["p"]}
    out["report_split"] = report
    unit = f" {metric_label(metric)}" if metric is not None and metric_sign(metric) < 0 else ""
    words = [f"On the report split (never used to choose) it scores {report['mean']:.4f}{unit}"]
    for key, label in (("vs_single_task", "target-only"), ("vs_best_rule", "the best rule")):
        v = report.get(key)
        if v:
            ci = f" [{v['ci_low']:+.4f}, {v['ci_high']:+.4f}]" if v.get("ci_low") is not None else ""
            name = f" ({v['method']})" if key == "vs_best_rule" else ""
            words.append(f"{v['mean']:+.4f}{ci} against {label}{name}")
    out["text"] = rec.text + " " + ", ".join(words) + "."
    return out
