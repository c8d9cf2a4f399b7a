"""Every method a comparison can run, in one registry: name -> ``fn(Job) -> MethodResult``.

Rule-based methods replay a static schedule (one per rule of
:data:`taskmix.schedule.RULES`; ``temperature_<T>`` for any ``T``); learned
methods search then retrain; the oracle grid-searches static mixtures,
selecting on the reward split; each online strategy of
:data:`taskmix.strategies.STRATEGIES` gives ``<name>`` (the online run's own
model) and ``<name>-replay`` (its average weights retrained from scratch).
All methods of one seed train on the same data (the target's train split minus
the reward split) and report on the target's test split (else validation),
which no method sees before the final evaluation.  Seeds are paired: method
``m`` on seed ``s`` uses the same reward split, initialisation seed and
sampler seed as every other method on seed ``s``.

Each entry's ``kind`` (``baseline``, ``learned``, ``oracle``, ``adaptive``,
``adaptive-replay``, ``peer``) is what reports group by; ``peer`` methods
(:mod:`taskmix.compare.peers`: RegMix, MixMin, ...) are other papers' ways to
find a static mixture, each retrained like the learned ones.  ``adaptive`` and
``adaptive-replay`` are the online strategies' methods: the kind strings are
stored in results rows and kept; docs and help call these *online strategies*.

>>> from taskmix.compare.methods import METHODS
>>> METHODS.meta("temperature_5", "kind")
'baseline'
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from dataclasses import replace
from typing import Any, Callable, Sequence

import numpy as np

from ..config import Config
from ..data.tasks import Task, metric_sign
from ..engine.trainer import Trainer
from ..errors import ConfigError, TrainingError
from ..registry import Registry
from ..runs.job import Job, MethodResult, check_run_config, prepare_job, replay
from ..runs.online import run_online
from ..runs.rewards import REWARDS
from .predictions import encode_labels, encode_losses
from .recommend import LEARNED_INCUMBENT
from ..runs.search_run import SearchRun, shares_trajectory
from ..replay.sampler import TaskSampler
from ..schedule import RULES, Schedule, jsonable, rule_parameter
from ..strategies import STRATEGIES

__all__ = ["CONFIG_CHECKS", "DEFAULT_METHODS", "FEATURE_METHODS", "METHODS", "check_config", "credit_weights", "default_methods",
           "method_row", "run_method", "select_methods"]

Method = Callable[[Job], MethodResult]
METHODS: Registry[Method] = Registry("method", field="compare.methods")

DEFAULT_METHODS = (
    "single_task",
    "uniform",
    "proportional",
    "temperature_2",
    "learned_time_invariant",
    "learned_time_variant",
)
"""The methods a comparison runs when ``compare.methods`` is left out (feature tasks add :data:`FEATURE_METHODS`)."""

FEATURE_METHODS = ("credit_proportional",)
"""Added to :data:`DEFAULT_METHODS` for feature tasks (npz, in-memory, the built-in benchmark; frozen model), so the
recommendation weighs them too: chosen on the development task families (BENCHMARKS.md, *credit-proportional-dev*:
the recommendation's regret 2.94 -> 1.08 points on the wide families, 0.77 -> 0.58 on the original ones) and scored
once on fresh ones (*families-wide-eval-3*: 2.81 -> 1.56 points).  Text tasks keep the standard set (on the real-text
development families it is a worse candidate: *credit-proportional-text-dev*), and so do language-modelling tasks
(better than the best rule on 1 of 4 configs: *lm-credit-proportional*)."""


def default_methods(cfg: Config) -> list[str]:
    """The methods a comparison of ``cfg`` runs when ``compare.methods`` is left out: :data:`DEFAULT_METHODS`, plus
    :data:`FEATURE_METHODS` for feature tasks with a frozen model."""
    extra = FEATURE_METHODS if cfg.regime == "features" and cfg.model.regime == "frozen" else ()
    return list(DEFAULT_METHODS) + list(extra)


# ------------------------------------------------------------ rule-based


def static_method(build: Callable[[Job], Schedule]) -> Method:
    """A method that replays the schedule ``build(job)``."""

    def run(job: Job) -> MethodResult:
        return replay(job, build(job))

    return run


def rule_method(rule: str, **fixed: Any) -> Method:
    """The method of rule ``rule`` (:data:`taskmix.schedule.RULES`) with the job's target, sizes, cap and budget
    (the examples a run draws, ``train.steps * train.batch_size``: UniMax's)."""
    build = RULES.get(rule)
    return static_method(lambda j: build(j.names, target=j.cfg.target, sizes=j.sizes, cap=j.cfg.compare.cap,
                                         budget=j.cfg.train.steps * j.cfg.train.batch_size, **fixed))


def _parametric(rule: str) -> Callable[[str], Method]:
    def build(suffix: str) -> Method:
        return rule_method(rule, **rule_parameter(rule, suffix))  # ValueError for a bad suffix

    return build


for _rule in RULES:
    if not RULES.meta(_rule, "method"):
        continue
    _param = RULES.meta(_rule, "parameter")
    if _param:
        METHODS.register_family(f"{_rule}_", _parametric(_rule), placeholder=_param.upper()[0], kind="baseline")
        if RULES.meta(_rule, "plain"):  # also the bare name, with the rule's default value (unimax)
            METHODS.register(_rule, rule_method(_rule), kind="baseline")
    else:
        METHODS.register(_rule, rule_method(_rule), kind="baseline")


# ------------------------------------------------------------- learned


_SEARCHES: dict[tuple[Any, ...], SearchRun] = {}
"""Searches kept for the other schedule of the same (job, seed): at most a few, most recent last."""
_SEARCH_CACHE_SIZE = 4


def _data_key(split: Any) -> Any:
    """Identifies a split's data by content: a digest of its inputs and labels (a compare carves a new copy per cell)."""
    if isinstance(split.x, np.ndarray):
        h = hashlib.sha1(np.ascontiguousarray(split.x).tobytes())
    else:  # text: each cell carves new split objects, so key by content (an identity key never matched)
        h = hashlib.sha1(json.dumps([list(p) if isinstance(p, (list, tuple)) else p for p in split.x],
                                    ensure_ascii=False, default=str).encode())
    h.update(np.ascontiguousarray(split.y).tobytes())
    return h.hexdigest()


def _search_key(job: Job, cfg: Config) -> tuple[Any, ...]:
    fp = cfg.fingerprint()
    fp["search"] = {k: v for k, v in fp["search"].items() if k != "policy"}
    data = tuple((t.name, _data_key(t.train)) for t in job.tasks)
    return (job.seed, json.dumps(fp, sort_keys=True, default=str), data, _data_key(job.reward_split))


def shared_search(job: Job, cfg: Config) -> tuple[SearchRun, bool]:
    """The time-variant search of ``job`` that yields both schedules, run once per (job, seed); ``(run, cached)``.

    Only when the two searches share a trajectory (:attr:`SearchRun.shares_trajectory`); the cache is
    in-process (a Ray worker or a resumed comparison just runs the search again, with the same result).
    """
    key = _search_key(job, cfg)
    if key in _SEARCHES:
        return _SEARCHES[key], True
    tv = cfg.model_copy(update={"search": cfg.search.model_copy(update={"policy": "time_variant"})})
    run_ = SearchRun(replace(job, cfg=tv))
    run_.run()
    _SEARCHES[key] = run_
    while len(_SEARCHES) > _SEARCH_CACHE_SIZE:
        _SEARCHES.pop(next(iter(_SEARCHES)))
    return run_, False


def learned_method(policy: str, **search: Any) -> Callable[[Job], MethodResult]:
    """Search with the policy, then retrain a fresh model with the learned schedule.

    ``search``: settings over the job's ``search`` section (e.g. the paper's exact method).  Where
    the time-invariant and time-variant searches share a trajectory (``time_variant_init: previous``,
    one round), both methods take their schedule from one time-variant search per (job, seed): the
    time-invariant schedule is its last row, bit for bit what a separate time-invariant search
    learns.  Each row still reports the full search cost (what it costs on its own); ``extra``
    says whether the search was shared and whether this row reused it.
    """

    def run(job: Job) -> MethodResult:
        cfg = job.cfg.model_copy(update={"search": job.cfg.search.model_copy(update={"policy": policy, **search})})
        if shares_trajectory(cfg):
            run_, cached = shared_search(job, cfg)
            sched = run_.schedules()[policy]
            res = run_.result()
            shared = {"search_shared": True, "search_reused": cached}
        else:
            run_ = SearchRun(replace(job, cfg=cfg))
            res = run_.run()
            sched, shared = res.schedule, {"search_shared": False}
        return replay(
            replace(job, cfg=cfg),
            sched,
            extra_seconds=res.seconds,
            extra_steps=res.steps,
            evals=res.reward_evals,
            log=res.log,
            extra={"search_seconds": res.seconds, "task_effects": sched.provenance.get("task_effects"), **shared},
        )

    return run


METHODS.register("learned_time_invariant", learned_method("time_invariant"), kind="learned")
METHODS.register("learned_time_variant", learned_method("time_variant"), kind="learned")


SUPPORT_TEMPERATURE = 2.0
"""The temperature ``learned_support`` mixes its tasks with (p ∝ n^(1/T))."""


def support_weights(names: Sequence[str], target: str, sizes: dict[str, int], effects: dict[str, dict[str, Any]] | None,
                    temperature: float = SUPPORT_TEMPERATURE) -> tuple[np.ndarray, list[str]]:
    """Weights over ``names``: temperature sampling over the target and the tasks whose effect is clearly positive.

    A task is kept when the search's estimate of its effect on the target has its 95% interval above 0
    (``verdict == "helps"``); every other auxiliary gets weight exactly 0.  Returns the weights and the kept tasks.
    """
    kept = [n for n in names if n == target or (effects or {}).get(n, {}).get("verdict") == "helps"]
    n = np.asarray([float(sizes[t]) if t in kept else 0.0 for t in names])
    w = np.where(n > 0, n ** (1.0 / temperature), 0.0)
    return w / w.sum(), kept


def _time_variant_search(job: Job) -> tuple[SearchRun, bool]:
    """The finished time-variant search of ``job``: the learned methods' shared one where the searches share a
    trajectory (``cached``: it had run already), else a search of its own; ``(run, cached)``."""
    cfg = job.cfg.model_copy(update={"search": job.cfg.search.model_copy(update={"policy": "time_variant"})})
    if shares_trajectory(cfg):
        return shared_search(job, cfg)
    run_ = SearchRun(replace(job, cfg=cfg))
    run_.run()
    return run_, False


def support_method(job: Job) -> MethodResult:
    """Method ``learned_support``: the tasks the search found helpful, mixed by a rule; every other task dropped.

    The time-variant search shared with the learned methods (run once per seed) estimates each task's
    effect on the target with a 95% interval (``task_effects``).  The target and the auxiliaries whose
    interval lies above 0 are mixed by temperature sampling (:data:`SUPPORT_TEMPERATURE`); every other
    auxiliary gets weight exactly 0, so noisy, orthogonal and conflicting tasks take no share at all.  It
    keeps the search's *which tasks* and drops its *how much*, which on a small target the search
    reads on a model that has memorised it.  Cost: the search plus one retrain (the search is shared when
    the learned methods run in the same process).
    """
    run_, cached = _time_variant_search(job)
    res, effects = run_.result(), run_.task_effects()
    w, kept = support_weights(job.names, job.cfg.target, job.sizes, effects)
    sched = Schedule.from_weights(job.names, w, provenance={"method": "learned_support", "kept": kept,
                                                             "temperature": SUPPORT_TEMPERATURE, "task_effects": effects})
    return replay(job, sched, extra_seconds=res.seconds, extra_steps=res.steps, evals=res.reward_evals, log=res.log,
                  extra={"search_seconds": res.seconds, "task_effects": effects, "kept": kept, "search_shared": True,
                         "search_reused": cached})


METHODS.register("learned_support", support_method, kind="learned")


def credit_weights(credits: Any, sizes: Sequence[float], target: int, temperature: float = 1.0) -> np.ndarray:
    """Weights proportional to ``max(c_i, 0) * n_i ** (1 / temperature)``, ``c_i`` task ``i``'s mean credit.

    ``credits``: one row of per-task credit per meta-step (meta-steps x tasks), averaged over the rows;
    ``sizes``: each task's training examples.  With ``temperature`` 1 every example is weighted by its task's
    credit (proportional sampling over the tasks that help); a large ``temperature`` weighs by credit alone.
    A task whose mean credit is not positive gets exactly 0.  If the target's own credit is not positive
    (its data does not lower its own held-out loss, so there is nothing to weigh the auxiliaries against),
    the target alone.

    >>> credit_weights([[0.4, 0.2, -0.5]], [100, 1000, 5000], target=0).round(3).tolist()
    [0.167, 0.833, 0.0]
    """
    c = np.asarray(credits, dtype=np.float64)
    n = np.asarray(sizes, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] < 1 or c.shape[1] != len(n) or len(n) < 1:
        raise ValueError(f"credits: expected meta-steps x {len(n)} tasks, got shape {c.shape}")
    if not np.all(np.isfinite(c)):
        raise ValueError("credits: expected finite numbers")
    if not (np.all(np.isfinite(n)) and np.all(n > 0)):
        raise ValueError(f"sizes: expected positive numbers of examples, got {n.tolist()}")
    if not 0 <= int(target) < len(n):
        raise ValueError(f"target: expected a task index in [0, {len(n)}), got {target!r}")
    if not (isinstance(temperature, (int, float)) and np.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature: expected a positive number, got {temperature!r}")
    mean = c.mean(axis=0)
    w = np.where(mean > 0, mean, 0.0) * n ** (1.0 / float(temperature))
    if not w[int(target)] > 0:
        w = np.zeros(len(n))
        w[int(target)] = 1.0
    return w / w.sum()


def credit_method(job: Job) -> MethodResult:
    """Method ``credit_proportional``: every task weighted by its size and by its credit early in the search.

    The search's per-task credit (``search.reward``, e.g. ``gradient_alignment``: how much a step on the task
    lowers the target's held-out loss) over its first ``search.credit_window`` meta-steps, averaged, times each
    task's size ``n ** (1 / search.credit_temperature)``; a task whose credit is not positive gets exactly 0
    (:func:`credit_weights`).  Early, before a small target is memorised, the credit reads how much an example
    of each task transfers; later it mostly reads the memorised target, which is where the policy's own update
    keeps the mixture on the target.  Proportional sampling over the tasks that help, each example counted by
    how much it helps.  Cost: the first meta-steps of the search (shared with the learned methods when they run
    in the same process) plus one retrain.
    """
    s = job.cfg.search
    cfg = job.cfg.model_copy(update={"search": s.model_copy(update={"policy": "time_variant"})})
    window = min(int(s.credit_window), int(s.meta_steps))
    key = _search_key(job, cfg)
    if shares_trajectory(cfg) and key in _SEARCHES:  # the learned methods' search: its first meta-steps
        run_, cached = _SEARCHES[key], True
    else:  # only the first meta-steps, the same ones the full search takes
        run_, cached = SearchRun(replace(job, cfg=cfg)), False
        for _ in range(window):
            run_.step_meta()
    sched, log = _credit_schedule(job, run_)
    seconds = float(sum(float(e.get("seconds", 0.0)) for e in log))
    return replay(job, sched, extra_seconds=seconds, extra_steps=int(log[-1]["step"]), evals=len(log), log=log,
                  extra={"search_seconds": seconds, "search_shared": cached, "search_reused": cached,
                         "kept": sched.provenance["kept"]})


METHODS.register("credit_proportional", credit_method, kind="learned")


def _credit_schedule(job: Job, run_: SearchRun) -> tuple[Schedule, list[dict[str, Any]]]:
    """``credit_proportional``'s schedule from the first ``search.credit_window`` meta-steps of ``run_``'s log."""
    s = job.cfg.search
    window = min(int(s.credit_window), int(s.meta_steps))
    log = [e for e in run_.log if int(e.get("round", 0)) == 0][:window]
    if len(log) < window:
        raise RuntimeError(f"credit_proportional: the search has {len(log)} meta-steps, needs {window}")
    credits = np.asarray([e["rewards"] for e in log], dtype=np.float64)
    w = credit_weights(credits, [job.sizes[t] for t in job.names], job.names.index(job.cfg.target), s.credit_temperature)
    sched = Schedule.from_weights(job.names, w, provenance={
        "method": "credit_proportional", "credit_window": window, "credit_temperature": float(s.credit_temperature),
        "credit": {t: float(c) for t, c in zip(job.names, credits.mean(axis=0))},
        "kept": [t for t, v in zip(job.names, w) if v > 0]})
    return sched, log


BLEND_PARTS = ("learned_time_invariant", "learned_time_variant", "credit_proportional")
"""The schedules ``learned_blend`` averages, in this order."""


def blend_weights(parts: Sequence[Any]) -> np.ndarray:
    """The mean of static mixtures (one row of task weights each), renormalised; a task every part drops stays 0.

    >>> blend_weights([[0.9, 0.1, 0.0], [0.6, 0.4, 0.0], [0.3, 0.7, 0.0]]).round(3).tolist()
    [0.6, 0.4, 0.0]
    """
    w = np.asarray(parts, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] < 1 or w.shape[1] < 1:
        raise ValueError(f"parts: expected one row of task weights per schedule, got shape {w.shape}")
    if not (np.all(np.isfinite(w)) and np.all(w >= 0) and np.all(w.sum(axis=1) > 0)):
        raise ValueError("parts: expected non-negative finite weights, each row with a positive sum")
    w = w / w.sum(axis=1, keepdims=True)
    m = w.mean(axis=0)
    return m / m.sum()


def blend_method(job: Job) -> MethodResult:
    """Method ``learned_blend``: the mean of the learned time-invariant, time-variant and credit-proportional mixtures.

    One time-variant search (shared with the learned methods when they run in the same process) gives all three:
    its last row (``learned_time_invariant``), its rows averaged over the run's steps (``learned_time_variant``
    as one static mixture) and the credit of its first ``search.credit_window`` meta-steps
    (``credit_proportional``).  Their mean is one static mixture: each estimator's error is partly its own (the
    policy keeps a memorised small target, the early credit reads a model that has barely trained), and the mean
    of mixtures sits between them.  A task all three drop stays at exactly 0.  Cost: the search plus one retrain.
    """
    run_, cached = _time_variant_search(job)
    res = run_.result()
    scheds = run_.schedules()
    credit, _ = _credit_schedule(job, run_)
    total = int(job.cfg.train.steps)
    parts = [scheds["time_invariant"].mean_weights(total), scheds["time_variant"].mean_weights(total),
             credit.mean_weights(total)]
    w = blend_weights(parts)
    sched = Schedule.from_weights(job.names, w, provenance={
        "method": "learned_blend", "parts": {m: [float(x) for x in p] for m, p in zip(BLEND_PARTS, parts)}})
    return replay(job, sched, extra_seconds=res.seconds, extra_steps=res.steps, evals=res.reward_evals, log=res.log,
                  extra={"search_seconds": res.seconds, "search_shared": run_.shares_trajectory,
                         "search_reused": cached, "kept": [t for t, v in zip(job.names, w) if v > 0]})


METHODS.register("learned_blend", blend_method, kind="learned")


def _check_credit(cfg: Config) -> None:
    """``credit_proportional`` and ``learned_blend`` read a per-task credit: refuse a scalar ``search.reward`` before any work."""
    readers = [m for m in ("credit_proportional", "learned_blend") if m in select_methods(cfg)]
    if not readers:
        return
    name = cfg.search.reward
    if name in REWARDS and not REWARDS.meta(name, "per_task"):
        per_task = [n for n in REWARDS if REWARDS.meta(n, "per_task")]
        raise ConfigError(f"search.reward: {readers[0]} needs a per-task reward (one of {per_task}), got {name!r}")


def _recommended(job: Job) -> MethodResult:
    raise ConfigError("recommended: not a method to list in compare.methods; a comparison ends with it by itself "
                      "(compare.recommend), from the other methods' rows")


METHODS.register("recommended", _recommended, kind="recommended")
"""The rows of the comparison's recommendation (:mod:`taskmix.compare.recommend`), written by the runner."""
PAPER_SEARCH = {"reward": "accuracy", "baseline": "none", "normalize": False, "lr": 0.001, "sgd_steps": 100,
                "shrink": 0.0, "prior": "uniform", "prior_pull": 0.0, "reward_folds": 1, "horizon": 1.0}
"""The paper's exact search: its scalar accuracy reward on a fixed reward split, no baseline, no normalisation,
lr 0.001 x 100 SGD steps, the search as long as the run."""
METHODS.register("paper", learned_method("time_invariant", **PAPER_SEARCH), kind="learned")
METHODS.register("constant_control", learned_method("time_invariant", reward="constant"), kind="learned")


CHECK_RULES = ("single_task", "uniform", "proportional", "temperature_2")


def checked_method(z: float = 0.0) -> Callable[[Job], MethodResult]:
    """Method ``learned_checked``: both learned schedules and the rule mixtures, checked on the reward split.

    Every candidate (``learned_time_invariant``, ``learned_time_variant`` -- one search -- and the rules
    of :data:`CHECK_RULES`) is retrained on the job and scored on the reward split (held out from all of
    them; never the reported split).  The better learned schedule is kept unless the best rule beats it
    there by more than ``z`` standard errors (binomial, ``sqrt(2 p (1 - p) / n)``); ``z = 0``: the best
    candidate on the reward split, ties to learned.  ``provenance.kept`` says which was kept and
    ``provenance.check`` holds every candidate's reward-split score.  Cost: one search + 6 retrains
    (measured on the family benchmark: regret 1.63 points vs 1.97 for learned alone, BENCHMARKS.md).
    """

    def run(job: Job) -> MethodResult:
        t0 = time.perf_counter()
        cands = {m: METHODS.get(m)(job) for m in ("learned_time_invariant", "learned_time_variant", *CHECK_RULES)}
        score = {m: float(r.extra["reward_split"]) for m, r in cands.items()}
        sign = metric_sign(job.tasks[job.target].metric)  # -1: better lower (bits per byte)
        learned = max(("learned_time_invariant", "learned_time_variant"), key=lambda m: sign * score[m])
        best_rule = max(CHECK_RULES, key=lambda m: sign * score[m])
        p = min(max(score[learned], 1e-3), 1 - 1e-3)
        se = float(np.sqrt(2 * p * (1 - p) / max(1, len(job.reward_split)))) if sign > 0 else 0.0  # binomial: accuracy
        kept = learned if sign * (score[best_rule] - score[learned]) <= z * se else best_rule
        res = cands[kept]
        assert res.schedule is not None
        prov = {**res.schedule.provenance, "method": "learned_checked", "kept": kept, "check": score, "check_z": z,
                "check_se": se}
        sched = Schedule(res.schedule.tasks, res.schedule.weights, res.schedule.steps_per_meta_step, prov)
        search_s = float(cands["learned_time_invariant"].extra.get("search_seconds", 0.0))
        retrains = sum(r.seconds for r in cands.values()) - 2 * search_s
        return MethodResult(
            test=res.test, seconds=retrains + search_s, schedule=sched, predictions=res.predictions,
            train_steps=sum(r.train_steps for r in cands.values()) - cands["learned_time_variant"].train_steps
            + job.cfg.train.steps,
            evaluations=sum(r.evaluations for r in cands.values()) - (cands["learned_time_variant"].evaluations - 1),
            log=res.log,
            extra={"kept": kept, "check": score, "reward_split": score[kept],
                   "reward_predictions": res.extra.get("reward_predictions"), "reward_losses": res.extra.get("reward_losses"),
                   "wall_seconds": time.perf_counter() - t0,
                   "task_effects": cands[learned].extra.get("task_effects")},
        )

    return run


METHODS.register("learned_checked", checked_method(0.0), kind="learned")


# -------------------------------------------------------------- oracle


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
    sign = metric_sign(job.tasks[job.target].metric)  # -1: better lower (bits per byte)
    for w in grid:
        sched = Schedule.from_weights(job.names, w, provenance={"method": "oracle_candidate"})
        score = _reward_split_score(job, sched)
        steps += job.cfg.train.steps
        scores.append({"weights": w.tolist(), "reward_split": score})
        if best is None or sign * score > sign * best_score:
            best, best_score = sched, score
    assert best is not None
    best = Schedule(best.tasks, best.weights, 1, {"method": "oracle", "grid_points": len(grid), "reward_split": best_score})
    search_seconds = time.perf_counter() - t0
    return replay(
        job, best, extra_seconds=search_seconds, extra_steps=steps, evals=len(grid),
        extra={"grid_points": len(grid), "candidates": scores, "search_seconds": search_seconds},
    )


def _reward_split_score(job: Job, sched: Schedule) -> float:
    """Train with ``sched`` and score on the reward split (never on the reported split)."""
    cfg = job.cfg
    tr = Trainer(job.tasks, cfg, job.seed)
    sampler = TaskSampler(sched, cfg.train.batch_size, [t.n_train for t in job.tasks], seed=job.seed, per=cfg.train.per)
    for _ in range(cfg.train.steps):
        tr.train_step(*sampler.next_batch())
    return tr.metric(job.reward_split, job.target)


METHODS.register("oracle", oracle_method, kind="oracle")


# ---------------------------------------------------- online strategies


def online_method(name: str, **kwargs: Any) -> Callable[[Job], MethodResult]:
    """Method ``<name>``: the online run's own final model on the target's report split.

    The row's schedule is the per-meta-step weights the run used; its cost is
    the run's ``train.steps`` steps, the feedback evaluations plus the final
    one, and its wall time.
    """

    def run(job: Job) -> MethodResult:
        res, test, seconds, predictions = run_online(job, name, **kwargs)
        return MethodResult(
            test=test,
            predictions=predictions,
            seconds=seconds,
            schedule=res.time_variant,
            train_steps=res.steps,
            evaluations=res.evaluations + 1,
            log=res.log,
            extra={
                "online": True,
                "average_weights": res.average.weights[0].tolist(),
                "realised": _realised(res.log),
                "reference_steps": res.reference_steps,  # DoReMi's reference run, in train_steps too
                "cost_plain_runs": res.steps / job.cfg.train.steps,
            },
        )

    return run


def replay_method(name: str, schedule: str = "average", **kwargs: Any) -> Callable[[Job], MethodResult]:
    """Method ``<name>-replay``: run ``name`` online, then retrain a fresh model with its schedule.

    ``schedule="average"`` (default) replays the run's average weights as a
    time-invariant schedule -- the static artifact a user would keep;
    ``"time_variant"`` replays the per-meta-step weights (which, with the same
    seed, reproduces the online run).  Cost = online run + replay; the online
    run's own result is kept in ``extra["online_test"]``.
    """
    if schedule not in ("average", "time_variant"):
        raise ValueError(f"replay schedule must be 'average' or 'time_variant', got {schedule!r}")

    def run(job: Job) -> MethodResult:
        res, online_test, seconds, _ = run_online(job, name, **kwargs)
        sched = res.average if schedule == "average" else res.time_variant
        return replay(
            job,
            sched,
            extra_seconds=seconds,
            extra_steps=res.steps,
            evals=res.evaluations + 1,
            log=res.log,
            extra={"online_test": online_test, "online_seconds": seconds, "replayed": schedule,
                   "reference_steps": res.reference_steps,
                   "cost_plain_runs": (res.steps + job.cfg.train.steps) / job.cfg.train.steps},
        )

    return run


def _realised(log: Sequence[dict[str, Any]]) -> list[float]:
    if not log:
        return []
    r = np.asarray([e["realised"] for e in log], dtype=np.float64)
    steps = np.diff([0] + [int(e["step"]) for e in log]).astype(np.float64)
    return ((r * steps[:, None]).sum(axis=0) / steps.sum()).tolist()


for _name in STRATEGIES:
    METHODS.register(_name, online_method(_name), kind="adaptive")
for _name in STRATEGIES:
    METHODS.register(f"{_name}-replay", replay_method(_name), kind="adaptive-replay")


# ------------------------------------------------------------- choosing


def select_methods(cfg: Config, oracle: bool = False) -> list[str]:
    """The methods a comparison runs: ``compare.methods`` (else the defaults), plus the oracle if asked."""
    names = list(cfg.compare.methods) if cfg.compare.methods is not None else default_methods(cfg)
    if not names:
        raise ConfigError("compare.methods: empty; name at least one method, or leave it out for the defaults")
    if oracle and "oracle" not in names:
        names.append("oracle")
    for n in names:
        METHODS.entry(n)
        if METHODS.meta(n, "kind") == "recommended":
            _recommended(None)  # type: ignore[arg-type]  # refused: the runner writes these rows itself
    inc = cfg.compare.incumbent
    if inc is not None:
        explicit = "incumbent" in cfg.compare.model_fields_set and "compare.incumbent" not in cfg.regime_defaults
        if inc == LEARNED_INCUMBENT:
            if cfg.compare.recommend and explicit and not any(METHODS.meta(n, "kind") == "learned" for n in names):
                raise ConfigError(f"compare.incumbent: {inc!r} needs a learned method among the compared methods (e.g. "
                                  "learned_time_invariant); add one to compare.methods, or set compare.incumbent: null")
            return names
        rules = [m for m in METHODS.names() if "<" not in m and METHODS.meta(m, "kind") == "baseline"] + ["temperature_<T>"]
        try:
            is_rule = METHODS.meta(inc, "kind") == "baseline"
        except ConfigError:
            is_rule = False
        if not is_rule:
            raise ConfigError(f"compare.incumbent: expected the name of a rule ({', '.join(rules)}), "
                              f"{LEARNED_INCUMBENT!r} (the best learned candidate) or null, got {inc!r}")
        if cfg.compare.recommend and inc not in names and explicit:  # a default rule not compared is left out
            raise ConfigError(f"compare.incumbent: {inc!r} is not among the compared methods; add it to compare.methods, "
                              "or set compare.incumbent: null")
    return names


CONFIG_CHECKS: list[Callable[[Config], None]] = []
"""More checks of a comparison's config, added by the packages that register methods (the peers' settings,
``compare.peers``); each raises :class:`ConfigError` naming the field."""
CONFIG_CHECKS.append(_check_credit)


def check_config(cfg: Config, oracle: bool = False) -> None:
    """Check every registry name in ``cfg`` before any work: the run's (:func:`taskmix.runs.job.check_run_config`:
    reward, prior, strategies' settings, device) and the comparison's methods.

    Errors name the config's source and the field, as the config's own validation does.
    """
    check_run_config(cfg)
    try:
        select_methods(cfg, oracle)
        for check in CONFIG_CHECKS:
            check(cfg)
    except ConfigError as e:
        raise ConfigError(f"{cfg.source}: {e}") from None


def _row_extra(extra: dict[str, Any]) -> Any:
    """A result's ``extra`` for its row: JSON values, the reward-split predictions in the ``u8:`` form and its rows'
    losses in the ``f32:`` form (:mod:`taskmix.compare.predictions`)."""
    rp, rl = extra.get("reward_predictions"), extra.get("reward_losses")
    out = {k: v for k, v in extra.items() if k not in ("reward_predictions", "reward_losses")}
    if rp is not None:
        out["reward_predictions"] = encode_labels(np.asarray(rp))
    if rl is not None:
        out["reward_losses"] = encode_losses(np.asarray(rl))
    return jsonable(out)


def run_method(cfg: Config, tasks: Sequence[Task], method: str, seed: int) -> dict[str, Any]:
    """One (method, seed) cell of a comparison, as a results row (schedule inline)."""
    job = prepare_job(cfg, tasks, seed)
    fn = METHODS.get(method)
    try:
        res = fn(job)
    except TrainingError as e:  # a non-finite loss or reward: name the cell
        raise TrainingError(f"method {method} seed {seed}: {e}") from None
    return method_row(method, seed, res)


def method_row(method: str, seed: int, res: MethodResult) -> dict[str, Any]:
    """The results row of ``res``, the result of ``method`` on ``seed`` (checked: a finite reported metric)."""
    if not (isinstance(res.test, (int, float)) and np.isfinite(res.test)):
        raise TrainingError(f"method {method} seed {seed}: the reported metric is {res.test!r}, not a finite number")
    return {
        "method": method,
        "kind": METHODS.meta(method, "kind"),
        "seed": seed,
        "test": res.test,
        "seconds": res.seconds,
        "train_steps": res.train_steps,
        "evaluations": res.evaluations,
        "schedule": res.schedule.to_dict() if res.schedule is not None else None,
        "log": res.log,
        "extra": _row_extra(res.extra),
        **({"predictions": encode_labels(res.predictions)} if res.predictions is not None else {}),
    }
