"""The contract between a run and a comparison: a :class:`Job` in, a :class:`MethodResult` out.

:func:`prepare_job` carves the reward split out of the target's training data
(the honest protocol: the reported split is never seen), and :func:`replay`
trains a fresh model with a static schedule -- the last step of every
method that produces one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..config import Config
from ..data.tasks import Split, Task, carve_reward_split
from ..engine.trainer import train_with_schedule
from ..schedule import Schedule

__all__ = ["Job", "MetaStepLoop", "MethodResult", "RunResult", "global_rng_state", "prepare_job", "replay", "restore_global_rng"]


@dataclass
class Job:
    """One (config, seed) cell's inputs: tasks with the reward split carved out of the target's train split."""

    cfg: Config
    tasks: list[Task]  # target's train split already reduced
    target: int
    reward_split: Split
    seed: int

    @property
    def names(self) -> list[str]:
        """Task names, in schedule order."""
        return [t.name for t in self.tasks]

    @property
    def sizes(self) -> dict[str, int]:
        """Training examples per task (the target's after the reward split is carved out)."""
        return {t.name: t.n_train for t in self.tasks}


def global_rng_state() -> dict[str, Any]:
    """The process-wide random states a run depends on: torch (and CUDA when in use), NumPy's global, Python's."""
    return {
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
        "numpy_rng": np.random.get_state(),
        "python_rng": random.getstate(),
    }


def restore_global_rng(state: dict[str, Any]) -> None:
    """Restore :func:`global_rng_state` (the CUDA part where CUDA is available)."""
    torch.set_rng_state(state["torch_rng"])
    if state.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    np.random.set_state(state["numpy_rng"])
    random.setstate(state["python_rng"])


class MetaStepLoop:
    """The loop of a run made of meta-steps: subclasses give ``done``, ``step_meta()`` and ``result()``."""

    @property
    def done(self) -> bool:
        """Whether the run is finished."""
        raise NotImplementedError

    def step_meta(self) -> dict[str, Any]:
        """One meta-step; its log entry."""
        raise NotImplementedError

    def result(self) -> Any:
        """The run's result so far."""
        raise NotImplementedError

    def run(self, on_meta_step: Callable[[Any, dict[str, Any]], None] | None = None) -> Any:
        """Run every remaining meta-step (calling ``on_meta_step(run, entry)`` after each) and return the result."""
        while not self.done:
            entry = self.step_meta()
            if on_meta_step is not None:
                on_meta_step(self, entry)
        return self.result()


@dataclass(kw_only=True)
class RunResult:
    """What every finished run records: its per-meta-step log and its cost (seconds, training steps)."""

    log: list[dict[str, Any]]
    seconds: float
    steps: int
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class MethodResult:
    """What a method produced on a job: the reported metric, its schedule and its cost."""

    test: float
    seconds: float
    schedule: Schedule | None
    train_steps: int
    evaluations: int
    log: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    predictions: np.ndarray | None = field(default=None, repr=False)
    """the reported model's predicted label for every row of the target's report split (None: not kept)"""


def prepare_job(cfg: Config, tasks: Sequence[Task], seed: int) -> Job:
    """The job of ``seed``: the target's reward split carved out (stratified, seeded), every other task as given."""
    names = [t.name for t in tasks]
    target = names.index(cfg.target)
    carved, reward = carve_reward_split(tasks[target], cfg.search.reward_fraction, seed)
    tasks = list(tasks)
    tasks[target] = carved
    return Job(cfg, tasks, target, reward, seed)


def replay(
    job: Job,
    sched: Schedule,
    extra_seconds: float = 0.0,
    extra_steps: int = 0,
    evals: int = 0,
    log: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> MethodResult:
    """Train a fresh model on ``job`` with ``sched`` and report it; the ``extra_*`` costs are those spent finding ``sched``.

    ``extra["reward_split"]`` is the retrained model's metric on the reward split (held out from its
    training), which a method may use to choose between schedules without seeing the reported split.
    """
    r = train_with_schedule(job.tasks, job.target, sched, job.cfg, job.seed, eval_splits={"reward_split": job.reward_split})
    return MethodResult(
        test=r.test,
        seconds=r.seconds + extra_seconds,
        schedule=sched,
        train_steps=r.steps + extra_steps,
        evaluations=1 + evals,
        log=log or [],
        extra={"realised": r.realised, "reward_split": r.extra["reward_split"], **(extra or {})},
        predictions=r.predictions,
    )
