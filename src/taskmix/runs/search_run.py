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

import math
import random
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from ..config import Config
from ..data.tasks import Split, stratified_folds
from ..engine.parallel import LOCAL
from ..engine.trainer import Trainer
from ..errors import NonFiniteRewardError, state_int, state_keys, state_real, state_reals
from ..replay.sampler import ExampleStreams, check_generator_state
from ..schedule import Schedule
from ..strategies.mixer import Mixer
from ..strategies.policy import Policy
from .job import GLOBAL_RNG_KEYS, Job, MetaStepLoop, RunResult, as_job, check_global_rng_state, global_rng_state, restore_global_rng
from .progress import current as current_progress, make_progress
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

    def __init__(self, job: Job, *args: Any, trunk_factory: Callable[[], torch.nn.Module] | None = None,
                 dist: Any = None, **kw: Any):
        """``SearchRun(job)`` (the old ``SearchRun(tasks, target, reward_split, cfg, seed)`` still works, deprecated)."""
        job, rest, kw = as_job(job, args, kw, "SearchRun")
        if kw:
            raise TypeError(f"SearchRun() got an unexpected keyword argument {next(iter(kw))!r}")
        if rest:  # the old positional trunk_factory, dist
            trunk_factory, dist = rest[0], rest[1] if len(rest) > 1 else dist
        self.job = job
        tasks, target, reward_split, cfg, seed = job.tasks, job.target, job.reward_split, job.cfg, job.seed
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

    def run(self, on_meta_step: Callable[["SearchRun", dict[str, Any]], None] | None = None,
            progress: Any = None) -> SearchResult:
        """Run every remaining meta-step (calling ``on_meta_step`` after each) and return the result.

        ``progress``: ``"lines"``, ``"bar"``, ``True`` (auto), a reporter, ... (:mod:`taskmix.runs.progress`);
        ``None``: the meta-steps go to the comparison running this search, if any
        (:func:`taskmix.runs.progress.current`), else nowhere.
        """
        rep = make_progress(progress) if progress is not None else current_progress()
        if rep is None:
            result: Any = super().run(on_meta_step)
            return result
        total = self.cfg.search.rounds * self.meta_steps

        def report(run: "SearchRun", entry: dict[str, Any]) -> None:
            assert rep is not None
            rep.meta_step(len(self.log), total, **self.meta_step_report(entry))
            if on_meta_step is not None:
                on_meta_step(run, entry)

        if progress is not None:
            rep.start("search", total, len(self.log))
        try:
            result = super().run(report)
        finally:
            if progress is not None:
                rep.finish()
        return result

    def meta_step_report(self, entry: dict[str, Any]) -> dict[str, Any]:
        """What a progress reporter shows of a finished meta-step's log ``entry`` (the keywords of
        :meth:`taskmix.runs.progress.ProgressReporter.meta_step`)."""
        label = f"meta-step {entry['meta_step'] + 1}"
        if self.cfg.search.rounds > 1:
            label = f"round {entry['round'] + 1} {label}"
        probs = entry.get("probs_after")
        return {
            "label": label,
            "accuracy": entry.get("reward_split_accuracy"),
            "weights": dict(zip((t.name for t in self.tasks), map(float, probs))) if probs is not None else None,
            "seconds": entry.get("seconds"),
        }

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
        own = self._learned_schedule()
        if not (self.policy.time_variant and self.shares_trajectory):
            return {self.cfg.search.policy: self._drop_small(own)}
        average = self.cfg.search.time_invariant_weights == "average"
        w = np.asarray(own.weights, dtype=np.float64).mean(axis=0) if average else own.weights[-1]
        prov = {**own.provenance, "method": "learned_time_invariant",
                "from_search": f"time_variant ({'mean of the rows' if average else 'last row'})"}
        ti = Schedule.from_weights(own.tasks, w, self.row_steps, prov)
        return {"time_variant": self._drop_small(own), "time_invariant": self._drop_small(ti)}

    def _drop_small(self, sched: Schedule) -> Schedule:
        """``sched`` with the auxiliaries below ``search.min_weight`` at exactly 0 (the target kept)."""
        return sched.drop_below(self.cfg.search.min_weight, keep=[self.tasks[self.target].name])

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
        """The learned schedule, with the search's settings in its provenance (auxiliaries below
        ``search.min_weight`` dropped to exactly 0)."""
        return self._drop_small(self._learned_schedule())

    def _learned_schedule(self) -> Schedule:
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

    _STATE_KEYS = ("round", "meta_step", "seconds", "total_steps", "reward_evals", "log", "mixer", "trainer", "probe_rng",
                   "streams", "last_losses", *GLOBAL_RNG_KEYS)
    _ENTRY_KEYS = ("round", "meta_step", "step", "row", "realised", "rewards", "advantages", "baseline", "probs_before",
                   "probs_after", "reward_split_accuracy", "reward_split_loss", "train_loss", "task_train_loss", "seconds")
    _SHARED = ("realised", "rewards", "advantages", "baseline", "probs_before", "probs_after", "row")  # also in the mixer's log

    def check_state_dict(self, state: Any, where: str = "state") -> None:
        """Refuse (``ValueError`` naming the field) a state this search cannot continue from exactly.

        A checkpoint's checksum proves it is intact, not that it is sane: every piece is checked against the
        config and against the rest of the state before anything is restored.  Counters, steps and the log's
        length agree with each other and with the search's length; every log entry has its fields, finite and
        in range, and agrees with the mixer's log; the policy, its baseline and scale agree with the logged
        updates (:meth:`taskmix.strategies.Mixer.check_state_dict`); the model and optimiser have this model's
        shapes, dtypes and the config's hyper-parameters (:meth:`taskmix.engine.Trainer.check_state_dict`); the
        task and example streams are where the logged draws leave them; the global RNG states have their form.
        """
        state_keys(state, where, self._STATE_KEYS, ("fold_streams",) if self.folds is not None else ())
        if self.folds is not None and "fold_streams" not in state:
            raise ValueError(f"{where}: missing fold_streams (cross-fitting, search.reward_folds {self.reward_folds})")
        s, n, ms, spm = self.cfg.search, len(self.tasks), self.meta_steps, self.spm
        rnd = state_int(state["round"], f"{where}.round", 0, s.rounds)
        meta_step = state_int(state["meta_step"], f"{where}.meta_step", 0, 0 if rnd == s.rounds else ms - 1)
        done = rnd * ms + meta_step  # meta-steps finished
        log = state["log"]
        if not isinstance(log, list) or len(log) != done:
            got = f"{len(log)} entries" if isinstance(log, list) else type(log).__name__
            raise ValueError(f"{where}.log: expected {done} entries (round {rnd}, meta-step {meta_step}), got {got}")
        for key, want in (("total_steps", done * spm), ("reward_evals", done)):
            if state_int(state[key], f"{where}.{key}", 0, 2**53) != want:
                raise ValueError(f"{where}.{key}: {state[key]}, but {done} finished meta-step(s) give {want}")
        state_real(state["seconds"], f"{where}.seconds", 0.0)
        state_reals(state["last_losses"], f"{where}.last_losses", n, 0.0, nan=True)
        check_global_rng_state(state, where)
        # the round in progress (the last one when the search is done)
        cur = min(rnd, s.rounds - 1)
        in_round = done - cur * ms
        seed = self.seed + 1000 * cur
        self.mixer.check_state_dict(state["mixer"], f"{where}.mixer", per_task=self.reward.per_task)
        mixer = state["mixer"]
        if (mixer.get("round", 0), mixer["meta_step"], mixer["step"]) != (cur, in_round, 0):
            raise ValueError(f"{where}.mixer: at round {mixer.get('round', 0)}, meta-step {mixer['meta_step']}, step "
                             f"{mixer['step']}; the search is at round {cur}, meta-step {in_round}, step 0")
        self.trainer.check_state_dict(state["trainer"], f"{where}.trainer")
        if state["trainer"]["step"] != in_round * spm:
            raise ValueError(f"{where}.trainer.step: {state['trainer']['step']}, but {in_round} meta-step(s) of this "
                             f"round give {in_round * spm}")
        # the draws of each meta-step, from the realised shares; where they leave the example streams
        draws = spm * self.cfg.train.batch_size
        taken = np.zeros(n, dtype=np.int64)
        by_fold = np.zeros(len(self._fold_rows), dtype=np.int64)
        keys = set(self._ENTRY_KEYS) | ({"reward_fold"} if self.folds is not None else set())
        for i, e in enumerate(log):
            at = f"{where}.log[{i}]"
            optional = ("reward_se", "reward_se_probe", "reward_se_split")
            state_keys(e, at, keys, optional)
            r, m = divmod(i, ms)
            pos = tuple(state_int(e[k], f"{at}.{k}", 0, 2**53) for k in ("round", "meta_step", "step"))
            if pos != (r, m, (m + 1) * spm):
                raise ValueError(f"{at}: round/meta_step/step {pos}, expected {(r, m, (m + 1) * spm)}")
            state_int(e["row"], f"{at}.row", 0, ms)
            state_real(e["baseline"], f"{at}.baseline", none=True)
            for key in ("realised", "rewards", "advantages", "probs_before", "probs_after"):
                state_reals(e[key], f"{at}.{key}", n)
            mixed = mixer["log"][i]
            if mixed["steps"] != spm:
                raise ValueError(f"{where}.mixer.log[{i}].steps: {mixed['steps']}, but a meta-step is {spm} steps")
            for key in self._SHARED:
                if e[key] != mixed[key]:
                    raise ValueError(f"{at}.{key}: differs from the mixer's log")
            if self.folds is not None:
                fold = (r * ms + m) % len(self._fold_rows) if s.rotate_folds else 0
                if state_int(e["reward_fold"], f"{at}.reward_fold", 0, 2**31) != fold:
                    raise ValueError(f"{at}.reward_fold: {e['reward_fold']}, expected {fold}")
            counts = np.asarray(e["realised"], dtype=np.float64) * draws
            whole = np.rint(counts)
            if np.any(np.abs(counts - whole) > 1e-6 * max(draws, 1)) or int(whole.sum()) != draws:
                raise ValueError(f"{at}.realised: not the shares of {draws} draws")
            if r == cur:
                taken += whole.astype(np.int64)
                if self.folds is not None:
                    by_fold[e["reward_fold"]] += int(whole[self.target])
            state_real(e["reward_split_accuracy"], f"{at}.reward_split_accuracy", 0.0, 1.0)
            state_real(e["reward_split_loss"], f"{at}.reward_split_loss", 0.0)
            state_real(e["train_loss"], f"{at}.train_loss", 0.0)
            state_real(e["seconds"], f"{at}.seconds", 0.0)
            state_reals(e["task_train_loss"], f"{at}.task_train_loss", n, 0.0, none=True)
            se = {k: state_reals(e[k], f"{at}.{k}", n, 0.0) for k in optional if k in e}
            if len(se) == 2 or (se and "reward_se" not in se) or (se and not self.reward.per_task):
                raise ValueError(f"{at}: reward standard errors {sorted(se)} do not go together")
            if len(se) == 3:  # se = sqrt(probe^2 + split^2) on one process; a mean of such over data-parallel ranks
                for j, (a, b, c) in enumerate(zip(se["reward_se"], se["reward_se_probe"], se["reward_se_split"])):
                    if not math.hypot(b, c) * (1 - 1e-9) <= a <= (b + c) * (1 + 1e-9) + 1e-300:
                        raise ValueError(f"{at}.reward_se[{j}]: {a!r} does not combine its parts {b!r} and {c!r}")
        # the streams: reseeded every round, then advanced by every draw of the round
        rng_start = np.random.Generator(np.random.PCG64([seed, 0xD4A7]))
        k = spm if self.cfg.train.per == "batch" else draws
        for _ in range(in_round):
            for fn in ("random", "integers", "random"):
                for lo in range(0, k, 2**20):
                    c = min(2**20, k - lo)
                    rng_start.random(c) if fn == "random" else rng_start.integers(0, n, size=c)
        if mixer["rng"] != rng_start.bit_generator.state:
            raise ValueError(f"{where}.mixer.rng: not where this round's {in_round} meta-step(s) of task draws leave it")
        check_generator_state(state["probe_rng"], f"{where}.probe_rng", np.random.Generator(np.random.PCG64([seed, 0x960B])))
        _check_streams(self.streams, state["streams"], f"{where}.streams", seed, taken)
        if self.folds is not None:
            _check_streams(ExampleStreams([len(f) for f in self._fold_rows], seed=seed ^ 0xF01D), state["fold_streams"],
                           f"{where}.fold_streams", seed ^ 0xF01D, by_fold)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`; the search then continues bit for bit.

        The whole state is checked first (:meth:`check_state_dict`); a state that fails is refused with a
        ``ValueError`` naming the field, and nothing is restored.
        """
        self.check_state_dict(state)
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


def _check_streams(streams: ExampleStreams, state: Any, where: str, seed: int, taken: np.ndarray) -> None:
    """``state`` is ``streams``' after ``taken[i]`` draws of task ``i`` from seed ``seed``."""
    streams.check_state_dict(state, where)
    if state["seed"] != seed:
        raise ValueError(f"{where}.seed: {state['seed']}, but this round's streams are seeded with {seed}")
    sizes = np.asarray(streams.sizes, dtype=np.int64)
    if state["passes"] != (taken // sizes).tolist() or state["cursors"] != (taken % sizes).tolist():
        raise ValueError(f"{where}: passes and cursors are not where the logged draws leave them")


def shares_trajectory(cfg: Config) -> bool:
    """Whether ``cfg``'s time-variant and time-invariant searches are one trajectory (see :attr:`SearchRun.shares_trajectory`)."""
    return cfg.search.time_variant_init == "previous" and cfg.search.rounds == 1


def search(
    job: Job, *args: Any, on_meta_step: Callable[[SearchRun, dict[str, Any]], None] | None = None, progress: Any = None,
    **options: Any,
) -> SearchResult:
    """Run a search to the end and return the learned schedule and its log.

    ``progress``: ``None`` logs one ``INFO`` record per meta-step on the ``taskmix.progress`` logger (silent
    unless logging is set up), ``"lines"`` writes one line per meta-step to stderr, ``"bar"`` draws a bar,
    ``False`` reports nothing (:mod:`taskmix.runs.progress`).
    """
    job, rest, options = as_job(job, args, options, "search")
    if rest:  # the old positional on_meta_step, progress
        on_meta_step, progress = rest[0], rest[1] if len(rest) > 1 else progress
    return SearchRun(job, **options).run(on_meta_step, progress=make_progress(progress))
