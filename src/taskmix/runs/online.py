"""Online runs: one training run whose task distribution an online strategy adapts as it goes.

:class:`OnlineRun` drives a :class:`~taskmix.strategies.Strategy` the way
:class:`taskmix.runs.search_run.SearchRun` drives the policy: meta-steps of
``cfg.steps_per_meta_step`` training steps; at the start of a meta-step the
strategy's weights are read; every sample's task is drawn with
:func:`taskmix.replay.sampler.categorical` (one task per batch with ``train.per:
batch``) and its example from :class:`~taskmix.replay.sampler.ExampleStreams`; at the
end the feedback the strategy asks for is computed (``feedback``: the per-task
training loss, free; the target's reward-split metric, one evaluation; the
gradient alignment, one backward pass per probe batch and task) and
``update`` is called.  The draws use the same random streams as
:func:`taskmix.engine.trainer.train_with_schedule` (task draws from
``PCG64([seed, 0x7A5C])``, examples from ``ExampleStreams(seed=seed)``, model
initialisation from ``seed``), so **replaying the exported per-meta-step
schedule reproduces the online run bit for bit on CPU**.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from ..data.tasks import metric_score
from ..engine.trainer import Trainer
from ..errors import state_int, state_keys, state_real, state_reals
from ..replay.sampler import ExampleStreams, TaskSampler, categorical, check_generator_state
from ..schedule import Schedule
from ..strategies import FEEDBACK_KINDS, MetaStepInfo, Strategy, make_strategy, strategy_kwargs
from .job import GLOBAL_RNG_KEYS, Job, MetaStepLoop, RunResult, as_job, check_global_rng_state, global_rng_state, restore_global_rng
from .rewards import GradientAlignmentReward, RewardContext

__all__ = ["AdaptiveResult", "AdaptiveRun", "OnlineResult", "OnlineRun", "run_online"]


@dataclass(kw_only=True)
class OnlineResult(RunResult):
    """An online run: its per-meta-step and average schedules, log and cost."""

    time_variant: Schedule
    average: Schedule
    evaluations: int
    reference_steps: int = 0
    """Steps of the reference model trained before the run (DoReMi's), included in ``steps``."""


class OnlineRun(MetaStepLoop):
    """One training run whose task distribution an online strategy (a :class:`Strategy`) adapts as it goes.

    ``run()`` goes to the end; ``step_meta()`` does one meta-step and returns its
    log row.  The budget is ``cfg.train.steps`` training steps in meta-steps of
    ``cfg.steps_per_meta_step`` (the last one shorter if they do not divide).
    State (model, optimiser, strategy, every random stream, counters, log) is in
    :meth:`state_dict`, so a run can checkpoint between meta-steps and resume.

    Cost accounting (``evaluations``): one per computation of the feedback a
    strategy asks for -- a reward-split evaluation (``reward_metric``, plus one
    before training for the first comparison) or a gradient-alignment
    computation (``alignment``, ``1 + K x probe_batches`` backward passes, no
    optimiser steps) or the per-task held-out losses (``heldout_loss``, one
    evaluation of every task's probe rows).  A strategy that ``needs_reference``
    (DoReMi) without its reference losses gets a reference model first: a plain
    uniform run of ``train.steps`` steps, counted in the result's ``steps``
    (``reference_steps``).  The reward-split accuracy and loss logged every
    meta-step for every strategy are a diagnostic and, as in
    :class:`taskmix.runs.search_run.SearchRun`, not counted (``thompson`` reuses that
    evaluation as its feedback, so nothing is evaluated twice).
    """

    def __init__(self, job: Job, *args: Any, strategy: Strategy | None = None,
                 trunk_factory: Callable[[], torch.nn.Module] | None = None, **kw: Any):
        """``OnlineRun(job, strategy)`` (the old ``AdaptiveRun(tasks, target, reward_split, cfg, seed, strategy)``
        still works, deprecated)."""
        job, rest, kw = as_job(job, args, kw, "OnlineRun")
        if kw:
            raise TypeError(f"OnlineRun() got an unexpected keyword argument {next(iter(kw))!r}")
        if rest:  # strategy (and the old positional trunk_factory)
            strategy, trunk_factory = rest[0], rest[1] if len(rest) > 1 else trunk_factory
        if strategy is None:
            raise TypeError("OnlineRun(job, strategy): the strategy is missing")
        self.job = job
        tasks, target, reward_split, cfg, seed = job.tasks, job.target, job.reward_split, job.cfg, job.seed
        self.tasks = list(tasks)
        self.target = int(target)
        self.reward_split = reward_split
        self.cfg = cfg
        self.seed = int(seed)
        if strategy.n_tasks != len(self.tasks):
            raise ValueError(f"strategy is over {strategy.n_tasks} tasks, the run has {len(self.tasks)}")
        self.strategy = strategy
        unknown = set(strategy.feedback) - set(FEEDBACK_KINDS)
        if unknown:
            raise ValueError(f"strategy {strategy.name!r} asks for unknown feedback {sorted(unknown)}")
        self.total_budget = int(cfg.train.steps)
        self.spm = int(cfg.steps_per_meta_step)
        self.meta_steps = -(-self.total_budget // self.spm)
        strategy.set_budget(self.meta_steps)
        self.meta_step = 0
        self.step = 0
        self.seconds = 0.0
        self.evaluations = 0
        self.log: list[dict[str, Any]] = []
        self.used: list[list[float]] = []  # weights in force during each meta-step
        t0 = time.perf_counter()
        self.heldout = self._heldout_splits() if "heldout_loss" in strategy.feedback else None
        self.reference_steps = 0
        if getattr(strategy, "needs_reference", False) and not getattr(strategy, "has_reference", True):
            strategy.set_reference(self._train_reference())  # type: ignore[attr-defined]  # before any seeding below
            self.reference_steps = self.total_budget
        random.seed(self.seed)
        np.random.seed(self.seed % 2**32)
        self.trainer = Trainer(self.tasks, cfg, self.seed, trunk_factory() if trunk_factory else None)
        # the same streams as train_with_schedule's TaskSampler: replaying the
        # per-meta-step schedule reproduces this run
        self.draw_rng = np.random.Generator(np.random.PCG64([self.seed, 0x7A5C]))
        self.streams = ExampleStreams([t.n_train for t in self.tasks], seed=self.seed)
        self.probe_rng = np.random.Generator(np.random.PCG64([self.seed, 0x960B]))
        self.alignment = (
            GradientAlignmentReward(getattr(strategy, "probe_batches", cfg.search.probe_batches),
                                    getattr(strategy, "similarity", "cosine"))
            if "alignment" in strategy.feedback
            else None
        )
        self.previous_metric: float | None = None
        if "reward_metric" in strategy.feedback:
            self.previous_metric = metric_score(self.tasks[self.target].metric, self.trainer.metric(self.reward_split, self.target))
            self.evaluations += 1
        self.seconds += time.perf_counter() - t0

    @property
    def done(self) -> bool:
        """Whether the run has used its training budget."""
        return self.step >= self.total_budget

    def step_meta(self) -> dict[str, Any]:
        """Train one meta-step with the strategy's weights, compute its feedback, update it."""
        if self.done:
            raise RuntimeError("the run is finished")
        t0 = time.perf_counter()
        n = len(self.tasks)
        steps = min(self.spm, self.total_budget - self.step)
        w = np.asarray(self.strategy.weights(self.step), dtype=np.float64)
        if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError(f"strategy {self.strategy.name!r} returned invalid weights {w.tolist()}")
        w = w / w.sum()
        bs = self.cfg.train.batch_size
        per_batch = self.cfg.train.per == "batch"
        counts = np.zeros(n)
        loss_sums = np.zeros(n)
        train_loss = 0.0
        for _ in range(steps):
            if per_batch:
                tids = np.full(bs, categorical(self.draw_rng, w, 1)[0], dtype=np.int64)
            else:
                tids = categorical(self.draw_rng, w, bs)
            c = np.bincount(tids, minlength=n)
            train_loss += self.trainer.train_step(tids, self.streams.take_for(tids))
            present = c > 0
            loss_sums[present] += self.trainer.last_losses[present] * c[present]
            counts += c
        self.step += steps
        with np.errstate(invalid="ignore", divide="ignore"):
            task_loss = np.where(counts > 0, loss_sums / np.maximum(counts, 1), np.nan)
        diag = self.trainer.evaluate(self.reward_split, self.target)
        metric = metric_score(self.tasks[self.target].metric, diag[self.tasks[self.target].metric])  # higher is better, in [0, 1]
        info = MetaStepInfo(step=self.step, steps=steps, weights=w, counts=counts, task_loss=task_loss)
        if "reward_metric" in self.strategy.feedback:
            info.metric, info.previous_metric = metric, self.previous_metric
            self.previous_metric = metric
            self.evaluations += 1
        if self.heldout is not None:
            info.heldout_loss = self.heldout_losses(self.trainer)
            self.evaluations += 1
        if self.alignment is not None:
            ctx = RewardContext(self.trainer, self.target, self.reward_split, bs, self.probe_rng, self.meta_step)
            info.alignment = self.alignment(ctx)
            self.evaluations += 1
        rewards = self.strategy.rewards(info)
        self.strategy.update(self.meta_step, info)
        after = self.strategy.weights(self.step)
        dt = time.perf_counter() - t0
        self.seconds += dt
        self.used.append(w.tolist())
        entry: dict[str, Any] = {
            "round": 0,
            "meta_step": self.meta_step,
            "step": self.step,
            "row": self.meta_step,
            "strategy": self.strategy.name,
            "realised": info.shares.tolist(),
            "probs_before": w.tolist(),
            "probs_after": (after / after.sum()).tolist(),
            "rewards": np.asarray(rewards, dtype=np.float64).tolist(),
            "reward_split_accuracy": diag["accuracy"],
            "reward_split_loss": diag["loss"],
            "reward_split_metric": metric,
            "train_loss": train_loss / steps,
            "task_train_loss": [None if not np.isfinite(v) else float(v) for v in task_loss],
            "seconds": dt,
            **self.strategy.log_extra(info),
        }
        self.log.append(entry)
        self.meta_step += 1
        return entry

    def run(self, on_meta_step: Callable[["OnlineRun", dict[str, Any]], None] | None = None) -> OnlineResult:
        """Run every remaining meta-step (calling ``on_meta_step`` after each) and return the result."""
        result: Any = super().run(on_meta_step)
        return result

    # -------------------------------------------------------------- artifacts
    def provenance(self, kind: str) -> dict[str, Any]:
        """The provenance stamped into an exported schedule (``kind``: time_variant or average)."""
        return {
            "method": self.strategy.name,
            "schedule": kind,
            "target": self.tasks[self.target].name,
            "seed": self.seed,
            "meta_steps": len(self.used),
            "train_steps": self.step,
            **{f"{self.strategy.name}_{k}": v for k, v in self.strategy.hyper_parameters().items()},
        }

    def time_variant_schedule(self) -> Schedule:
        """The weights used in each meta-step, one row per meta-step (replays this run exactly)."""
        if not self.used:
            raise RuntimeError("no meta-step has run yet")
        return Schedule.from_weights([t.name for t in self.tasks], np.asarray(self.used), self.spm,
                                     self.provenance("time_variant"))

    def average_schedule(self) -> Schedule:
        """The step-weighted average of the weights used, as a time-invariant schedule.

        ``mean_m w_m`` weighted by the steps of meta-step ``m`` (all equal unless
        the last meta-step is shorter) -- the expected task shares of the run.
        """
        tv = self.time_variant_schedule()
        return Schedule.from_weights(tv.tasks, tv.mean_weights(self.step), 1, self.provenance("average"))

    def evaluate_report(self) -> float:
        """The target's metric on its report split (test, else validation), with the current model."""
        return self.report_metric_and_predictions()[0]

    def report_metric_and_predictions(self) -> tuple[float, np.ndarray]:
        """:meth:`evaluate_report` and the predicted label of every report-split row it was computed from."""
        return self.trainer.metric_and_predictions(self.tasks[self.target].report_split, self.target)

    def result(self) -> OnlineResult:
        """The run's schedules, log and cost so far."""
        return OnlineResult(time_variant=self.time_variant_schedule(), average=self.average_schedule(), log=list(self.log),
                              seconds=self.seconds, steps=self.step + self.reference_steps, evaluations=self.evaluations,
                              reference_steps=self.reference_steps)

    # ------------------------------------------------------- held-out losses
    HELDOUT_ROWS = 512
    """Rows of an auxiliary's training data probed for its held-out loss when it has no validation split."""

    def _heldout_splits(self) -> list[Any]:
        """Per task, the rows its held-out loss is measured on: the target's reward split (carved out of its
        training data); an auxiliary's validation split, else a fixed sample of its training rows (in-sample: the
        families and the real-text suites give auxiliaries no validation split).  Never the reported split."""
        rng = np.random.Generator(np.random.PCG64([self.seed, 0x4E1D]))
        out: list[Any] = []
        for i, t in enumerate(self.tasks):
            if i == self.target:
                out.append(self.reward_split)
            elif t.validation is not None and len(t.validation) > 0:
                out.append(t.validation)
            else:
                n = t.n_train
                out.append(t.train.take(np.sort(rng.choice(n, size=min(n, self.HELDOUT_ROWS), replace=False))))
        return out

    def heldout_losses(self, trainer: Trainer) -> np.ndarray:
        """Every task's mean loss on its held-out rows (:meth:`_heldout_splits`) under ``trainer``'s model."""
        assert self.heldout is not None
        return np.asarray([trainer.evaluate(split, i)["loss"] for i, split in enumerate(self.heldout)], dtype=np.float64)

    def _train_reference(self) -> np.ndarray:
        """DoReMi's reference: a plain run on the uniform mixture (``train.steps`` steps, this run's seed), and its
        per-task held-out losses."""
        cfg = self.cfg
        sched = Schedule.from_weights([t.name for t in self.tasks], np.full(len(self.tasks), 1.0 / len(self.tasks)),
                                      provenance={"method": "reference"})
        tr = Trainer(self.tasks, cfg, self.seed)
        sampler = TaskSampler(sched, cfg.train.batch_size, [t.n_train for t in self.tasks], seed=self.seed, per=cfg.train.per)
        for _ in range(self.total_budget):
            tr.train_step(*sampler.next_batch())
        return self.heldout_losses(tr)

    # ------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """Every piece of the run's state, for checkpoints; :meth:`load_state_dict` resumes it exactly."""
        return {
            "meta_step": self.meta_step,
            "step": self.step,
            "seconds": self.seconds,
            "evaluations": self.evaluations,
            "previous_metric": self.previous_metric,
            "log": self.log,
            "used": self.used,
            "strategy": self.strategy.state_dict(),
            "trainer": self.trainer.state_dict(),
            "draw_rng": self.draw_rng.bit_generator.state,
            "probe_rng": self.probe_rng.bit_generator.state,
            "streams": self.streams.state_dict(),
            **global_rng_state(),
        }

    _STATE_KEYS = ("meta_step", "step", "seconds", "evaluations", "previous_metric", "log", "used", "strategy", "trainer",
                   "draw_rng", "probe_rng", "streams", *GLOBAL_RNG_KEYS)

    def check_state_dict(self, state: Any, where: str = "state") -> None:
        """Refuse (``ValueError`` naming the field) a state this run cannot continue from sanely.

        The counters agree with each other and the budget (``step`` is the training steps of ``meta_step``
        meta-steps, ``evaluations`` what the strategy's feedback costs over them), the log and the weights used
        have one entry per meta-step (one finite non-negative weight per task), the strategy, the model and the
        optimiser pass their own checks, the draw stream is where ``step`` steps of draws leave it, the other
        random states have their form.
        """
        state_keys(state, where, self._STATE_KEYS)
        n = len(self.tasks)
        meta_step = state_int(state["meta_step"], f"{where}.meta_step", 0, self.meta_steps)
        step = min(meta_step * self.spm, self.total_budget)
        if state_int(state["step"], f"{where}.step", 0, self.total_budget) != step:
            raise ValueError(f"{where}.step: {state['step']}, but {meta_step} meta-step(s) of {self.spm} steps give {step}")
        fb = self.strategy.feedback
        per_meta_step = ("reward_metric" in fb) + (self.alignment is not None) + (self.heldout is not None)
        evaluations = ("reward_metric" in fb) + meta_step * per_meta_step
        if state_int(state["evaluations"], f"{where}.evaluations", 0, 2**53) != evaluations:
            raise ValueError(f"{where}.evaluations: {state['evaluations']}, but {meta_step} meta-step(s) cost {evaluations}")
        state_real(state["seconds"], f"{where}.seconds", 0.0)
        previous = state_real(state["previous_metric"], f"{where}.previous_metric", 0.0, 1.0, none=True)
        if (previous is None) != ("reward_metric" not in fb):
            raise ValueError(f"{where}.previous_metric: {'missing' if previous is None else 'set'} for strategy "
                             f"{self.strategy.name!r}")
        for key in ("log", "used"):
            if not isinstance(state[key], list) or len(state[key]) != meta_step:
                raise ValueError(f"{where}.{key}: expected {meta_step} entries (one per meta-step)")
        for i, (w, e) in enumerate(zip(state["used"], state["log"])):
            used = state_reals(w, f"{where}.used[{i}]", n, 0.0, 1.0)
            if not isinstance(e, dict) or e.get("meta_step") != i or e.get("probs_before") != used:
                raise ValueError(f"{where}.log[{i}]: not the log entry of meta-step {i} with the weights used")
        if meta_step and "reward_metric" in fb and state["log"][-1].get("reward_split_metric") != previous:
            raise ValueError(f"{where}.previous_metric: not the last logged reward-split metric")
        self.strategy.check_state_dict(state["strategy"], f"{where}.strategy")
        self.trainer.check_state_dict(state["trainer"], f"{where}.trainer")
        if state["trainer"]["step"] != step:
            raise ValueError(f"{where}.trainer.step: {state['trainer']['step']}, expected {step}")
        draws = step if self.cfg.train.per == "batch" else step * self.cfg.train.batch_size
        start = np.random.Generator(np.random.PCG64([self.seed, 0x7A5C]))
        if check_generator_state(state["draw_rng"], f"{where}.draw_rng", start, window=None) != draws:
            raise ValueError(f"{where}.draw_rng: not where {step} steps of task draws leave it")
        check_generator_state(state["probe_rng"], f"{where}.probe_rng", np.random.Generator(np.random.PCG64([self.seed, 0x960B])))
        self.streams.check_state_dict(state["streams"], f"{where}.streams")
        if state["streams"]["seed"] != self.seed:
            raise ValueError(f"{where}.streams.seed: {state['streams']['seed']}, but this run's streams are seeded with {self.seed}")
        check_global_rng_state(state, where)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict` (checked first: :meth:`check_state_dict`; a state that fails is
        refused with a ``ValueError`` naming the field, and nothing is restored)."""
        self.check_state_dict(state)
        self.meta_step = int(state["meta_step"])
        self.step = int(state["step"])
        self.seconds = float(state["seconds"])
        self.evaluations = int(state["evaluations"])
        self.previous_metric = state["previous_metric"]
        self.log = list(state["log"])
        self.used = [list(r) for r in state["used"]]
        self.strategy.load_state_dict(state["strategy"])
        self.trainer.load_state_dict(state["trainer"])
        self.draw_rng.bit_generator.state = state["draw_rng"]
        self.probe_rng.bit_generator.state = state["probe_rng"]
        self.streams.load_state_dict(state["streams"])
        restore_global_rng(state)


# ------------------------------------------------------------- one call


def run_online(job: Job, name: str, **kwargs: Any) -> tuple[OnlineResult, float, float, np.ndarray]:
    """Run strategy ``name`` online on ``job``: ``(result, report-split metric, seconds incl. the evaluation,
    the report split's predicted labels)``.

    ``kwargs`` override the strategy's hyper-parameters (after the config's).
    """
    t0 = time.perf_counter()
    hyper = {**strategy_kwargs(job.cfg, name), **kwargs}
    strategy = make_strategy(name, len(job.tasks), job.target, job.seed, **hyper)
    run = OnlineRun(job, strategy)
    res = run.run()
    test, predictions = run.report_metric_and_predictions()
    return res, test, time.perf_counter() - t0, predictions


AdaptiveRun = OnlineRun
"""The old name of :class:`OnlineRun` (kept working; "online" is the one name of these runs)."""
AdaptiveResult = OnlineResult
"""The old name of :class:`OnlineResult`."""
