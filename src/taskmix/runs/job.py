"""The contract between a run and a comparison: a :class:`Job` in, a :class:`MethodResult` out.

:func:`prepare_job` carves the reward split out of the target's training data
(the honest protocol: the reported split is never seen), and :func:`replay`
trains a fresh model with a static schedule -- the last step of every
method that produces one.
"""

from __future__ import annotations

import random
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence, cast

import numpy as np
import torch

from ..config import Config
from ..data.tasks import Split, Task, carve_reward_split
from ..devices import check_device
from ..engine.trainer import train_with_schedule
from ..errors import ConfigError, state_int, state_real
from ..schedule import Schedule
from ..strategies import check_settings
from ..strategies.mixer import prior_mixture
from .rewards import REWARDS

__all__ = ["Job", "MetaStepLoop", "as_job", "check_run_config", "MethodResult", "RunResult", "check_global_rng_state", "global_rng_state", "prepare_job", "replay",
           "restore_global_rng"]


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


_OLD_JOB_ARGS = ("target", "reward_split", "cfg", "seed")


def as_job(first: Any, args: Sequence[Any], kw: dict[str, Any], what: str) -> tuple[Job, list[Any], dict[str, Any]]:
    """``(job, the positional arguments after it, the other keywords)`` of a call ``what(job, ...)``.

    ``first`` is a :class:`Job`, or -- the old form, with a :class:`DeprecationWarning` -- the tasks, followed
    (positionally or by keyword) by ``target, reward_split, cfg, seed``, which become the job.
    """
    if isinstance(first, Job):
        given = [k for k in _OLD_JOB_ARGS if k in kw]
        if given:
            raise TypeError(f"{what}(job, ...): {given[0]} comes from the job (dataclasses.replace(job, {given[0]}=...))")
        return first, list(args), dict(kw)
    warnings.warn(f"{what}(tasks, target, reward_split, cfg, seed, ...) is deprecated; pass the job: "
                  f"{what}(prepare_job(cfg, tasks, seed), ...)", DeprecationWarning, stacklevel=3)
    kw = dict(kw)
    vals = list(args[:4])
    for name in _OLD_JOB_ARGS[len(vals):]:
        if name not in kw:
            raise TypeError(f"{what}() missing argument {name!r}")
        vals.append(kw.pop(name))
    target, reward_split, cfg, seed = vals
    return Job(cfg, list(first), int(target), reward_split, int(seed)), list(args[4:]), kw


def global_rng_state() -> dict[str, Any]:
    """The process-wide random states a run depends on: torch (and CUDA when in use), NumPy's global, Python's."""
    return {
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
        "numpy_rng": np.random.get_state(),
        "python_rng": random.getstate(),
    }


GLOBAL_RNG_KEYS = ("torch_rng", "cuda_rng", "numpy_rng", "python_rng")


def check_global_rng_state(state: dict[str, Any], where: str = "state") -> None:
    """Refuse (``ValueError`` naming the field) :func:`global_rng_state` parts that are not of the generators' form:
    torch's byte state of its length, CUDA's (or none), NumPy's ``('MT19937', 624 uint32 words, position,
    has_gauss, gaussian)``, Python's ``(3, 624 words + position, gaussian)``."""
    t = state["torch_rng"]
    ref = torch.get_rng_state()
    if not (isinstance(t, torch.Tensor) and t.dtype == torch.uint8 and t.shape == ref.shape):
        raise ValueError(f"{where}.torch_rng: expected torch's RNG state, a uint8 tensor of shape {tuple(ref.shape)}")
    cuda = state["cuda_rng"]
    if cuda is not None and not (isinstance(cuda, list) and all(
            isinstance(c, torch.Tensor) and c.dtype == torch.uint8 and c.dim() == 1 for c in cuda)):
        raise ValueError(f"{where}.cuda_rng: expected none or a list of uint8 tensors (one per CUDA device)")
    npr = state["numpy_rng"]
    if not (isinstance(npr, tuple) and len(npr) == 5 and npr[0] == "MT19937" and isinstance(npr[1], np.ndarray)
            and npr[1].dtype == np.uint32 and npr[1].shape == (624,)):
        raise ValueError(f"{where}.numpy_rng: expected ('MT19937', 624 uint32 words, position, has_gauss, gaussian)")
    state_int(npr[2], f"{where}.numpy_rng[2]", 0, 624)
    state_int(npr[3], f"{where}.numpy_rng[3]", 0, 1)
    state_real(npr[4], f"{where}.numpy_rng[4]")
    pyr = state["python_rng"]
    if not (isinstance(pyr, tuple) and len(pyr) == 3 and pyr[0] == 3 and type(pyr[0]) is int
            and isinstance(pyr[1], tuple) and len(pyr[1]) == 625):
        raise ValueError(f"{where}.python_rng: expected (3, 624 words and a position, gaussian)")
    if not all(type(w) is int and 0 <= w < 2**32 for w in pyr[1][:624]):
        raise ValueError(f"{where}.python_rng[1]: expected 624 integers in 0..2^32-1")
    state_int(pyr[1][624], f"{where}.python_rng[1][624]", 0, 624)
    state_real(pyr[2], f"{where}.python_rng[2]", none=True)


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


def check_run_config(cfg: Config) -> None:
    """Check the registry names a run of ``cfg`` uses before any work: the reward, the prior, the online
    strategies' settings, the device (what ``taskmix search`` and ``train`` need; ``compare`` adds its
    methods: :func:`taskmix.compare.methods.check_config`).

    Errors name the config's source and the field, as the config's own validation does.
    """
    try:
        REWARDS.entry(cfg.search.reward)
        names = cfg.task_names()
        prior_mixture(cfg.search.prior, names, cfg.target, {n: 1 for n in names}, cfg.compare.cap)  # the name; no zero weight
        check_settings(cfg)
        check_device(cfg.train.device, "train.device")  # a device this machine has
    except ConfigError as e:
        raise ConfigError(f"{cfg.source}: {e}") from None


def prepare_job(cfg: Config, tasks: Sequence[Task], seed: int) -> Job:
    """The job of ``seed``: the target's reward split carved out (stratified, seeded), every other task as given.

    Language modelling (``model.regime: lm``): the reward split is the target's validation text (whole sentences
    held out of its training text, :mod:`taskmix.data.corpora`), the same for every seed; nothing is carved."""
    names = [t.name for t in tasks]
    target = names.index(cfg.target)
    if cfg.model.regime == "lm" and tasks[target].validation is not None:
        return Job(cfg, list(tasks), target, cast(Split, tasks[target].validation), seed)
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
    training), which a method may use to choose between schedules without seeing the reported split;
    ``extra["reward_predictions"]`` its predicted label for each reward-split row, ``extra["reward_losses"]`` each
    row's cross-entropy (both empty in the language-modelling regime).
    """
    r = train_with_schedule(job.tasks, job.target, sched, job.cfg, job.seed, eval_splits={"reward_split": job.reward_split})
    return MethodResult(
        test=r.test,
        seconds=r.seconds + extra_seconds,
        schedule=sched,
        train_steps=r.steps + extra_steps,
        evaluations=1 + evals,
        log=log or [],
        extra={"realised": r.realised, "reward_split": r.extra["reward_split"],
               "reward_predictions": r.extra["reward_split_predictions"], "reward_losses": r.extra["reward_split_losses"],
               **(extra or {})},
        predictions=r.predictions,
    )
