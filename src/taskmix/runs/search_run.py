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
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..config import Config
from ..data.tasks import Split, Task
from ..engine.parallel import LOCAL
from ..engine.trainer import Trainer
from ..sampler import ExampleStreams
from ..schedule import Schedule
from ..strategies.policy import Policy
from .rewards import RewardContext, make_reward


@dataclass
class SearchResult:
    schedule: Schedule
    log: list[dict[str, Any]]
    seconds: float
    steps: int
    reward_evals: int
    extra: dict[str, Any] = field(default_factory=dict)


class SearchRun:
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
        self.trunk_factory = trunk_factory
        self.dist = dist if dist is not None else LOCAL  # data parallel: taskmix.engine.parallel
        s = cfg.search
        self.meta_steps = s.meta_steps
        self.spm = cfg.steps_per_meta_step
        self.policy = Policy(
            len(self.tasks),
            self.target,
            n_rows=self.meta_steps if s.policy == "time_variant" else 1,
            epsilon=s.epsilon,
            gamma=s.gamma,
            lr=s.lr,
            sgd_steps=s.sgd_steps,
            baseline=s.baseline,
            baseline_decay=s.baseline_decay,
            normalize=s.normalize,
            entropy=s.entropy,
        )
        self.reward = make_reward(s.reward, s)
        self.round = 0
        self.meta_step = 0  # within the round
        self.log: list[dict[str, Any]] = []
        self.seconds = 0.0
        self.total_steps = 0
        self.reward_evals = 0
        self._new_round()

    # ------------------------------------------------------------------ setup
    def _new_round(self) -> None:
        seed = self.seed + 1000 * self.round
        random.seed(seed)
        np.random.seed(seed % 2**32)
        self.trainer = Trainer(self.tasks, self.cfg, seed, self.trunk_factory() if self.trunk_factory else None)
        self.trainer.dist = self.dist
        self.draw_rng = np.random.Generator(np.random.PCG64([seed, 0xD4A7]))
        self.probe_rng = np.random.Generator(np.random.PCG64([seed, 0x960B]))
        self.streams = ExampleStreams([t.n_train for t in self.tasks], seed=seed)

    @property
    def done(self) -> bool:
        return self.round >= self.cfg.search.rounds

    def _row(self) -> int:
        return self.meta_step if self.policy.time_variant else 0

    # ---------------------------------------------------------------- running
    def step_meta(self) -> dict[str, Any]:
        """Train one meta-step with the policy, reward it, update the policy; return the log row."""
        t0 = time.perf_counter()
        row = self._row()
        if self.policy.time_variant and self.round == 0:
            self.policy.start_row(row, self.cfg.search.time_variant_init)
        n = len(self.tasks)
        counts = np.zeros(n)
        bs = self.cfg.train.batch_size
        per_batch = self.cfg.train.per == "batch"
        loss_sum = 0.0
        # The policy is fixed within a meta-step: draw its tasks and examples at once (vectorised).
        if per_batch:
            t1, _ = self.policy.sample(self.draw_rng, row, self.spm)
            all_tids = np.repeat(t1, bs)
        else:
            all_tids, _ = self.policy.sample(self.draw_rng, row, self.spm * bs)
        all_eids = self.streams.take_for(all_tids)
        counts += np.bincount(all_tids, minlength=n)
        tids_by_step = all_tids.reshape(self.spm, bs)
        eids_by_step = all_eids.reshape(self.spm, bs)
        for s in range(self.spm):
            loss_sum += self.trainer.train_step(*self.dist.shard(tids_by_step[s], eids_by_step[s]))
        self.total_steps += self.spm
        ctx = RewardContext(self.trainer, self.target, self.reward_split, bs, self.probe_rng, self.meta_step)
        rewards = self.dist.mean(self.reward(ctx))
        self.reward_evals += 1
        shares = counts / counts.sum()
        # A per-task reward credits every task, so the exact (all-action) policy
        # gradient applies; a scalar reward only informs through the draws.
        weights = self.policy.probs(row) if self.reward.per_task else shares
        info = self.policy.update(row, weights, rewards)
        reward_eval = self.trainer.evaluate(self.reward_split, self.target)
        dt = time.perf_counter() - t0
        self.seconds += dt
        entry = {
            "round": self.round,
            "meta_step": self.meta_step,
            "step": (self.meta_step + 1) * self.spm,
            "row": row,
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
        while not self.done:
            entry = self.step_meta()
            if on_meta_step is not None:
                on_meta_step(self, entry)
        return self.result()

    def schedule(self) -> Schedule:
        s = self.cfg.search
        return self.policy.to_schedule(
            [t.name for t in self.tasks],
            self.spm,
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
            },
        )

    def result(self) -> SearchResult:
        return SearchResult(self.schedule(), list(self.log), self.seconds, self.total_steps, self.reward_evals)

    # ------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """Every piece of the search's state (model, optimiser, policy, RNGs, streams, counters, log)."""
        counters = ("round", "meta_step", "seconds", "total_steps", "reward_evals")
        return {
            **{k: getattr(self, k) for k in counters},
            "log": self.log,
            "policy": self.policy.state_dict(),
            "trainer": self.trainer.state_dict(),
            "draw_rng": self.draw_rng.bit_generator.state,
            "probe_rng": self.probe_rng.bit_generator.state,
            "streams": self.streams.state_dict(),
            "last_losses": self.trainer.last_losses.tolist(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
            "numpy_rng": np.random.get_state(),
            "python_rng": random.getstate(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.round = int(state["round"])
        if self.round != 0 and not self.done:
            self._new_round()
        self.meta_step = int(state["meta_step"])
        self.seconds = float(state["seconds"])
        self.total_steps = int(state["total_steps"])
        self.reward_evals = int(state["reward_evals"])
        self.log = list(state["log"])
        self.policy.load_state_dict(state["policy"])
        self.trainer.load_state_dict(state["trainer"])
        self.draw_rng.bit_generator.state = state["draw_rng"]
        self.probe_rng.bit_generator.state = state["probe_rng"]
        self.streams.load_state_dict(state["streams"])
        if "last_losses" in state:
            self.trainer.last_losses[:] = np.asarray(state["last_losses"], dtype=np.float64)
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        np.random.set_state(state["numpy_rng"])
        random.setstate(state["python_rng"])


def search(
    tasks: Sequence[Task], target: int, reward_split: Split, cfg: Config, seed: int,
    on_meta_step: Callable[[SearchRun, dict[str, Any]], None] | None = None, **options: Any,
) -> SearchResult:
    """Run a search to the end and return the learned schedule and its log."""
    return SearchRun(tasks, target, reward_split, cfg, seed, **options).run(on_meta_step)
