"""Search: one training run in which the policy picks the tasks.

Data flow: tasks -> (policy <-> trainer) -> schedule.  At each step the
policy (with exploration) draws the task of every sample; at the end of each
meta-step a reward is computed on the *reward split* (carved from the
target's training data) and the policy takes a REINFORCE update.  The result
is a static :class:`~taskmix.schedule.Schedule`; the reported split is never
seen here.

:class:`SearchRun` holds every piece of state (model, optimiser, policy and
its baseline, all RNGs, the example streams, counters and the log) in
``state_dict()`` form, so a run can checkpoint at every meta-step and resume
bit for bit (:mod:`taskmix.runs.checkpoint`).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..config import Config
from ..data.tasks import Split, Task, stratified_folds
from ..engine.parallel import LOCAL
from ..engine.trainer import Trainer
from ..errors import NonFiniteRewardError
from ..sampler import ExampleStreams
from ..schedule import Schedule
from ..strategies.mixer import Mixer
from ..strategies.policy import Policy
from .job import MetaStepLoop, RunResult, global_rng_state, restore_global_rng
from .rewards import RewardContext, make_reward


AUTO_FOLDS = 4
"""``search.reward_folds: auto`` for a reward that supports cross-fitting (chosen on a development set of
families: 2--5 rotating folds were within noise of each other, 4 the best measured; BENCHMARKS.md)."""


@dataclass(kw_only=True)
class SearchResult(RunResult):
    """A finished search: the learned schedule, its per-meta-step log and its cost."""

    schedule: Schedule
    reward_evals: int


class SearchRun(MetaStepLoop):
    """A resumable search.  ``run()`` goes to the end; ``step_meta()`` does one meta-step."""

    def __init__(
        self,
        tasks: Sequence[Task],
        target: int,
        reward_split: Split,
        cfg: Config,
        seed: int,
        trunk_factory: Callable[[], torch.nn.Module] | None = None,
        dist: Any = None,
    ):
        self.tasks = list(tasks)
        self.target = int(target)
        self.reward_split = reward_split
        self.cfg = cfg
        self.seed = int(seed)
        self.folds: list[Split] | None = None
        self._fold_rows: list[np.ndarray] = []
        self.reward = make_reward(cfg.search.reward, cfg.search)
        folds = cfg.search.reward_folds
        if folds == "auto":
            folds = AUTO_FOLDS if self.reward.cross_fit else 1
        self.reward_folds = min(int(folds), (len(self.tasks[self.target].train) + len(reward_split)) // 2)
        if self.reward_folds > 1:
            self._cross_fit(self.reward_folds)
        self.trunk_factory = trunk_factory
        self.dist = dist if dist is not None else LOCAL  # data parallel: taskmix.engine.parallel
        s = cfg.search
        self.meta_steps = s.meta_steps
        self.spm = cfg.search_steps_per_meta_step  # what the search trains per meta-step (search.horizon)
        self.row_steps = cfg.steps_per_meta_step  # what one schedule row spans in a replay
        # the policy, its exploration draws and its updates: the same ask/tell object a user's own loop drives
        self.mixer = Mixer.from_config(cfg, [t.name for t in self.tasks], seed=self.seed,
                                       sizes={t.name: t.n_train for t in tasks})  # the prior: sizes before cross-fitting
        self.round = 0
        self.meta_step = 0  # within the round
        self.log: list[dict[str, Any]] = []
        self.seconds = 0.0
        self.total_steps = 0
        self.reward_evals = 0
        self._new_round()

    # ------------------------------------------------------------------ setup
    def _cross_fit(self, k: int) -> None:
        """The target's train and reward splits joined and cut into ``k`` folds (see ``search.reward_folds``)."""
        from dataclasses import replace

        t = self.tasks[self.target]
        whole = t.train.concat(self.reward_split)
        folds = stratified_folds(whole.y, k, self.seed)
        self.tasks[self.target] = replace(t, train=whole)
        self.folds = [whole.take(f) for f in folds]
        every = np.arange(len(whole))
        # the training rows of meta-steps that reward on fold j: every row outside it
        self._fold_rows = [np.setdiff1d(every, f) for f in folds]

    def _fold(self) -> int:
        """The reward fold of the current meta-step (cross-fitting), counted over rounds."""
        if not self.cfg.search.rotate_folds:
            return 0
        return (self.round * self.meta_steps + self.meta_step) % len(self._fold_rows)

    def _current_reward_split(self) -> Split:
        return self.folds[self._fold()] if self.folds is not None else self.reward_split

    def _draw_examples(self, task_ids: np.ndarray) -> np.ndarray:
        """The example of every draw (the global batch of each step, in order), from the example streams.

        Cross-fitting: the target's draws come from the rows outside the current reward fold.
        """
        eids = self.streams.take_for(task_ids)
        if self.fold_streams is not None:
            at = task_ids == self.target
            f = self._fold()
            eids[at] = self._fold_rows[f][self.fold_streams.take(f, int(at.sum()))]
        return eids

    def _new_round(self, restoring: bool = False) -> None:
        seed = self.seed + 1000 * self.round
        random.seed(seed)
        np.random.seed(seed % 2**32)
        self.trainer = Trainer(self.tasks, self.cfg, seed, self.trunk_factory() if self.trunk_factory else None,
                               total_steps=self.meta_steps * self.spm)  # one round's training (model.lr_decay)
        self.trainer.dist = self.dist
        if self.round > 0 and not restoring:  # (a restore loads the mixer's state next)
            self.mixer.next_round(seed)
        self.probe_rng = np.random.Generator(np.random.PCG64([seed, 0x960B]))
        self.streams = ExampleStreams([t.n_train for t in self.tasks], seed=seed)
        # cross-fitting: one stream per fold over the target rows outside it
        self.fold_streams = ExampleStreams([len(r) for r in self._fold_rows], seed=seed ^ 0xF01D) if self.folds else None

    @property
    def done(self) -> bool:
        """Whether every round of the search has run."""
        return self.round >= self.cfg.search.rounds

    @property
    def policy(self) -> Policy:
        """The sampling policy (held by :attr:`mixer`)."""
        return self.mixer.policy

    # ---------------------------------------------------------------- running
    def step_meta(self) -> dict[str, Any]:
        """Train one meta-step with the policy, reward it, update the policy; return the log row."""
        t0 = time.perf_counter()
        row = self.mixer.row
        bs = self.cfg.train.batch_size
        loss_sum = 0.0
        # The policy is fixed within a meta-step: draw its tasks and examples at once (vectorised).
        tids_by_step = self.mixer.draw(self.spm, bs, per_batch=self.cfg.train.per == "batch")
        all_tids = tids_by_step.reshape(-1)
        all_eids = self._draw_examples(all_tids)
        reward_split = self._current_reward_split()
        eids_by_step = all_eids.reshape(self.spm, bs)
        for s in range(self.spm):
            loss_sum += self.trainer.train_step(*self.dist.shard(tids_by_step[s], eids_by_step[s]))
        self.total_steps += self.spm
        ctx = RewardContext(self.trainer, self.target, reward_split, bs, self.probe_rng, self.meta_step,
                            target_rows=self._fold_rows[self._fold()] if self.folds is not None else None,
                            mixture=self.policy.probs(row))
        rewards = self.dist.mean(self.reward(ctx))
        bad = [t.name for t, r in zip(self.tasks, np.asarray(rewards, dtype=np.float64)) if not np.isfinite(r)]
        if bad:
            raise NonFiniteRewardError(
                f"training step {self.total_steps}: {self.reward.name} reward is non-finite on task(s) {bad} "
                f"(rewards {np.asarray(rewards).tolist()})")
        self.reward_evals += 1
        se = getattr(self.reward, "last_se", None) if self.reward.per_task else None
        parts = getattr(self.reward, "last_se_parts", None) if se is not None else None
        if se is not None:  # the same on every rank (data parallel), like the rewards: the updates stay identical
            se = self.dist.mean(np.asarray(se, dtype=np.float64))
            parts = tuple(self.dist.mean(np.asarray(p, dtype=np.float64)) for p in parts) if parts is not None else None
        # A per-task reward credits every task, so the exact (all-action) policy
        # gradient applies; a scalar reward only informs through the draws.
        if self.reward.per_task:
            told = self.mixer.end_meta_step(rewards=rewards, se=se)
        else:
            told = self.mixer.end_meta_step(reward=float(np.asarray(rewards, dtype=np.float64)[0]))
        shares = np.asarray(told["realised"])
        info = {k: v for k, v in told.items() if k not in ("meta_step", "row", "steps", "realised")}
        if se is not None:
            info["reward_se"] = np.asarray(se, dtype=np.float64).tolist()
        if parts is not None:
            info["reward_se_probe"], info["reward_se_split"] = (np.asarray(p).tolist() for p in parts)
        reward_eval = self.trainer.evaluate(reward_split, self.target)
        dt = time.perf_counter() - t0
        self.seconds += dt
        entry = {
            "round": self.round,
            "meta_step": self.meta_step,
            "step": (self.meta_step + 1) * self.spm,
            "row": row,
            **({"reward_fold": self._fold()} if self.folds is not None else {}),
            "realised": shares.tolist(),
            **info,
            "reward_split_accuracy": reward_eval["accuracy"],
            "reward_split_loss": reward_eval["loss"],
            "train_loss": loss_sum / self.spm,
            "task_train_loss": [None if not np.isfinite(v) else float(v) for v in self.trainer.last_losses],
            "seconds": dt,
        }
        self.log.append(entry)
        self.meta_step += 1
        if self.meta_step == self.meta_steps:
            self.meta_step = 0
            self.round += 1
            if not self.done:
                self._new_round()
        return entry

    def run(self, on_meta_step: Callable[["SearchRun", dict[str, Any]], None] | None = None) -> SearchResult:
        """Run every remaining meta-step (calling ``on_meta_step`` after each) and return the result."""
        result: Any = super().run(on_meta_step)
        return result

    @property
    def shares_trajectory(self) -> bool:
        """Whether the time-variant and the time-invariant search follow the same trajectory.

        With ``time_variant_init: previous`` and one round, row ``m`` of a time-variant policy starts
        from row ``m - 1`` after its update, which is exactly the time-invariant policy after ``m``
        updates: the draws, rewards and updates are identical, and the time-invariant schedule is the
        time-variant one's last row.
        """
        return shares_trajectory(self.cfg)

    def schedules(self) -> dict[str, Schedule]:
        """Both schedules of a time-variant search that :attr:`shares_trajectory` (else only this run's own)."""
        own = self.schedule()
        if not (self.policy.time_variant and self.shares_trajectory):
            return {self.cfg.search.policy: own}
        average = self.cfg.search.time_invariant_weights == "average"
        w = np.asarray(own.weights, dtype=np.float64).mean(axis=0) if average else own.weights[-1]
        prov = {**own.provenance, "method": "learned_time_invariant",
                "from_search": f"time_variant ({'mean of the rows' if average else 'last row'})"}
        return {"time_variant": own, "time_invariant": Schedule.from_weights(own.tasks, w, self.row_steps, prov)}

    def task_effects(self) -> dict[str, dict[str, Any]] | None:
        """Each task's estimated effect on the target (its mean credit) with a 95% interval; None for a scalar reward.

        The credit of task ``i`` in meta-step ``m`` is ``r_i^m`` (for ``gradient_alignment``: the
        first-order drop of the target's reward-split loss per unit step on task ``i``, relative to a
        step on the reward split itself).  Effect = mean over meta-steps.  Its standard error combines
        the spread over meta-steps (fresh probes each time, averages out) with the reward-split part
        of the per-step standard errors, which does not average out (the same reward split each time).
        """
        if not self.reward.per_task or not self.log:
            return None
        r = np.asarray([e["rewards"] for e in self.log], dtype=np.float64)
        m = len(r)
        mean = r.mean(axis=0)
        var = r.var(axis=0, ddof=1) / m if m > 1 else np.zeros_like(mean)
        if all("reward_se_split" in e for e in self.log):
            split_se = np.asarray([e["reward_se_split"] for e in self.log], dtype=np.float64).mean(axis=0)
            var = var + split_se**2
        se = np.sqrt(var)
        out: dict[str, dict[str, Any]] = {}
        for i, t in enumerate(self.tasks):
            lo, hi = mean[i] - 1.96 * se[i], mean[i] + 1.96 * se[i]
            out[t.name] = {"effect": float(mean[i]), "se": float(se[i]), "ci_low": float(lo), "ci_high": float(hi),
                           "verdict": "helps" if lo > 0 else "hurts" if hi < 0 else "unclear"}
        return out

    def schedule(self) -> Schedule:
        """The learned schedule, with the search's settings in its provenance."""
        s = self.cfg.search
        if s.policy == "time_invariant" and s.time_invariant_weights == "average" and self.log:
            last_round = [e for e in self.log if e["round"] == self.log[-1]["round"]]
            w = np.mean([e["probs_after"] for e in last_round], axis=0)
            base = self._policy_schedule()
            return Schedule.from_weights(base.tasks, w, self.row_steps, {**base.provenance, "time_invariant_weights": "average"})
        return self._policy_schedule()

    def _policy_schedule(self) -> Schedule:
        s = self.cfg.search
        return self.policy.to_schedule(
            [t.name for t in self.tasks],
            self.row_steps,
            {
                "method": f"learned_{s.policy}",
                "target": self.tasks[self.target].name,
                "reward": s.reward,
                "epsilon": s.epsilon,
                "gamma": s.gamma,
                "lr": s.lr,
                "sgd_steps": s.sgd_steps,
                "baseline": s.baseline,
                "meta_steps": self.meta_steps,
                "rounds": s.rounds,
                "seed": self.seed,
                "search_steps": self.total_steps,
                "horizon": s.horizon,
                "schedule_steps": self.cfg.schedule_steps,
                "shrink": s.shrink,
                "prior": s.prior,
                "prior_pull": s.prior_pull,
                "reward_folds": max(1, self.reward_folds),
                "task_effects": self.task_effects(),
            },
        )

    def result(self) -> SearchResult:
        """The schedule, log and cost so far."""
        return SearchResult(schedule=self.schedule(), log=list(self.log), seconds=self.seconds, steps=self.total_steps,
                            reward_evals=self.reward_evals)

    # ------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """Every piece of the search's state (model, optimiser, policy, RNGs, streams, counters, log)."""
        counters = ("round", "meta_step", "seconds", "total_steps", "reward_evals")
        return {
            **{k: getattr(self, k) for k in counters},
            "log": self.log,
            "mixer": self.mixer.state_dict(),
            "trainer": self.trainer.state_dict(),
            "probe_rng": self.probe_rng.bit_generator.state,
            "streams": self.streams.state_dict(),
            **({"fold_streams": self.fold_streams.state_dict()} if self.fold_streams is not None else {}),
            "last_losses": self.trainer.last_losses.tolist(),
            **global_rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`; the search then continues bit for bit."""
        self.round = int(state["round"])
        if self.round != 0 and not self.done:
            self._new_round(restoring=True)
        self.meta_step = int(state["meta_step"])
        self.seconds = float(state["seconds"])
        self.total_steps = int(state["total_steps"])
        self.reward_evals = int(state["reward_evals"])
        self.log = list(state["log"])
        self.mixer.load_state_dict(state["mixer"])
        self.trainer.load_state_dict(state["trainer"])
        self.probe_rng.bit_generator.state = state["probe_rng"]
        self.streams.load_state_dict(state["streams"])
        if self.fold_streams is not None:
            self.fold_streams.load_state_dict(state["fold_streams"])
        if "last_losses" in state:
            self.trainer.last_losses[:] = np.asarray(state["last_losses"], dtype=np.float64)
        restore_global_rng(state)


def shares_trajectory(cfg: Config) -> bool:
    """Whether ``cfg``'s time-variant and time-invariant searches are one trajectory (see :attr:`SearchRun.shares_trajectory`)."""
    return cfg.search.time_variant_init == "previous" and cfg.search.rounds == 1


def search(
    tasks: Sequence[Task], target: int, reward_split: Split, cfg: Config, seed: int,
    on_meta_step: Callable[[SearchRun, dict[str, Any]], None] | None = None, **options: Any,
) -> SearchResult:
    """Run a search to the end and return the learned schedule and its log."""
    return SearchRun(tasks, target, reward_split, cfg, seed, **options).run(on_meta_step)
