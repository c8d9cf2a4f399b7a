"""The base of every online strategy: the hooks a run calls, and when.

An online strategy adapts the task distribution *during* one training run.
:class:`taskmix.runs.online.OnlineRun` drives it, meta-step by meta-step:

1. at the start of a meta-step it reads :meth:`Strategy.weights` (pure: calling
   it twice gives the same answer) and trains ``cfg.steps_per_meta_step`` steps
   with those task shares;
2. at the end it computes the feedback the strategy asks for (``feedback``, a
   subset of :data:`FEEDBACK_KINDS`) into a :class:`MetaStepInfo`, logs
   :meth:`Strategy.rewards` and :meth:`Strategy.log_extra`, and calls
   :meth:`Strategy.update`;
3. between meta-steps it may checkpoint :meth:`Strategy.state_dict` and later
   restore it with :meth:`Strategy.load_state_dict`.

One small module per strategy (:mod:`.exp3`, :mod:`.thompson`,
:mod:`.gradient_alignment`), each registered in :data:`taskmix.strategies.STRATEGIES`;
its hyper-parameters are constructor arguments, set from the config section
``compare.strategies.<name>``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..errors import check_state_matches, state_int, state_keys
from ..replay.sampler import check_generator_state

__all__ = ["FEEDBACK_KINDS", "MetaStepInfo", "Strategy", "softmax"]

FEEDBACK_KINDS = ("task_loss", "reward_metric", "alignment", "heldout_loss")


def softmax(z: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, computed stably in float64."""
    z = np.asarray(z, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


# ---------------------------------------------------------- argument checks
# Python API misuse is refused at the call: ``TypeError`` for a value of the wrong kind, ``ValueError`` for one out of
# range, each naming the argument.  Bools are not numbers here; numpy integer and float scalars are.

MAX_ABS_REWARD = 1e12
"""The largest reward (or credit, or standard error) magnitude a policy update takes: far beyond any meaningful
credit, and far enough below the float range that the baseline, the running scale and the update stay finite."""


def _shown(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def int_arg(name: str, v: Any, lo: int, hi: int | None = None) -> int:
    """``v`` as an int in ``[lo, hi]`` (not a bool, not a float that would be truncated)."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {_shown(v)} ({type(v).__name__})")
    if v < lo or (hi is not None and v > hi):
        raise ValueError(f"{name} must be an integer in [{lo}, {'inf' if hi is None else hi}], got {_shown(v)}")
    return int(v)


def real_arg(name: str, v: Any, lo: float = -np.inf, hi: float = np.inf, lo_open: bool = False,
             hi_open: bool = False) -> float:
    """``v`` as a finite float in the interval from ``lo`` to ``hi`` (open ends where said); not a bool."""
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {_shown(v)} ({type(v).__name__})")
    try:
        x = float(v)
    except OverflowError:
        x = float("inf")
    below = x <= lo if lo_open else x < lo
    above = x >= hi if hi_open else x > hi
    if not np.isfinite(x) or below or above:
        span = f"{'(' if lo_open or lo == -np.inf else '['}{lo:g}, {hi:g}{')' if hi_open or hi == np.inf else ']'}"
        raise ValueError(f"{name} must be a finite number in {span}, got {_shown(v)}")
    return x


def reals_arg(name: str, v: Any, n: int, bound: float = MAX_ABS_REWARD, lo: float | None = None) -> np.ndarray:
    """``v`` as ``n`` finite floats of magnitude at most ``bound`` (and at least ``lo``), e.g. one reward per task."""
    if isinstance(v, (str, bytes, dict)) or not hasattr(v, "__len__"):
        raise TypeError(f"{name} must be a sequence of {n} real numbers (one per task), got {type(v).__name__}")
    try:
        a = np.asarray(v)
    except (TypeError, ValueError):  # ragged, or not numbers
        raise TypeError(f"{name} must be a sequence of {n} real numbers (one per task), got {_shown(v)}") from None
    if (a.dtype == bool or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating))
            or isinstance(v, (list, tuple)) and any(isinstance(x, (bool, np.bool_)) for x in v)):
        raise TypeError(f"{name} must be real numbers, got {_shown(v)} (dtype {a.dtype})")
    a = a.astype(np.float64)
    if a.shape != (n,):
        raise ValueError(f"{name}: expected {n} values (one per task), got shape {a.shape}")
    low = -bound if lo is None else lo
    bad = ~np.isfinite(a) | (a < low) | (a > bound)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}[{i}] is {a[i]!r}; expected a finite number in [{low:g}, {bound:g}]")
    return a


def bool_arg(name: str, v: Any) -> bool:
    """``v`` as a bool: ``True``/``False`` (numpy's too), nothing else."""
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {_shown(v)} ({type(v).__name__})")
    return bool(v)


def choice_arg(name: str, v: Any, choices: tuple[str, ...]) -> str:
    """``v`` if it is one of the strings ``choices``."""
    if not isinstance(v, str) or v not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {_shown(v)}")
    return v


# ------------------------------------------------------------------ feedback


@dataclass
class MetaStepInfo:
    """What one meta-step produced; the argument of :meth:`Strategy.update`.

    Attributes:
        step: training steps done at the end of the meta-step.
        steps: training steps in this meta-step.
        weights: the task distribution used during the meta-step.
        counts: samples drawn per task during the meta-step.
        task_loss: mean training loss per task over the meta-step's samples
            (each measured before that step's optimiser update; NaN where a task
            was not drawn).
        metric: the target's metric on the reward split at the end of the
            meta-step (``None`` unless the strategy asks for ``reward_metric``).
        previous_metric: the same metric at the end of the previous meta-step
            (before any training for the first one).
        alignment: per-task gradient alignment with the target's reward-split
            gradient (``None`` unless the strategy asks for ``alignment``).
        heldout_loss: per-task mean loss at the end of the meta-step on a fixed
            probe of each task's data -- the target's reward split (held out of
            training), each auxiliary's validation split, else a fixed sample of
            its training rows (``None`` unless the strategy asks for
            ``heldout_loss``; DoReMi, Aioli).
    """

    step: int
    steps: int
    weights: np.ndarray
    counts: np.ndarray
    task_loss: np.ndarray
    metric: float | None = None
    previous_metric: float | None = None
    alignment: np.ndarray | None = None
    heldout_loss: np.ndarray | None = None

    @property
    def shares(self) -> np.ndarray:
        """Realised share of the meta-step's samples per task."""
        total = float(self.counts.sum())
        return self.counts / total if total > 0 else np.zeros_like(self.counts, dtype=np.float64)


# ---------------------------------------------------------------- strategies


class Strategy(ABC):
    """Base class: an online task-sampling strategy over ``n_tasks`` tasks.

    Subclasses set ``name`` and ``feedback`` (the subset of
    :data:`FEEDBACK_KINDS` that :class:`~taskmix.runs.online.OnlineRun` must compute for them) and
    implement :meth:`weights`, :meth:`update`, :meth:`rewards` and the state
    methods.  ``seed`` seeds the strategy's own generator (Thompson draws);
    :meth:`reseed` replaces it without touching what was learned.
    """

    name: ClassVar[str] = "strategy"
    feedback: ClassVar[frozenset[str]] = frozenset()
    state_arrays: ClassVar[tuple[tuple[str, str], ...]] = ()
    """``(key, attribute)`` of every float array the strategy keeps: saved and restored by the state methods."""
    drawn_state: ClassVar[tuple[str, ...]] = ()
    """State keys that are draws from the random stream, not learned (:meth:`reseed` redraws them)."""

    def __init__(self, n_tasks: int, target: int = 0, seed: int = 0):
        n_tasks = int_arg("n_tasks", n_tasks, 1, 2**20)
        if isinstance(target, bool) or not isinstance(target, (int, np.integer)):
            raise TypeError(f"target must be a task index (an integer), got {_shown(target)}")
        if not 0 <= target < n_tasks:
            raise ValueError(f"target index {target} out of range for {n_tasks} tasks")
        self.n_tasks = n_tasks
        self.target = int(target)
        self.seed = int_arg("seed", seed, 0, 2**64 - 1)
        self.rng = np.random.Generator(np.random.PCG64([self.seed, 0xADA9]))
        self.updates = 0

    def reseed(self, seed: int) -> None:
        """Restart the strategy's random stream from ``seed`` (its learned state is kept)."""
        self.seed = int_arg("seed", seed, 0, 2**64 - 1)
        self.rng = np.random.Generator(np.random.PCG64([self.seed, 0xADA9]))

    @abstractmethod
    def weights(self, step: int) -> np.ndarray:
        """The task distribution in force at training step ``step``.

        Called at the start of every meta-step (and once after each update, for
        the log).  Pure: it must not change the strategy's state.
        """

    @abstractmethod
    def update(self, meta_step: int, info: MetaStepInfo) -> None:
        """Learn from meta-step ``meta_step``'s feedback; called once at its end, after :meth:`rewards`."""

    @abstractmethod
    def rewards(self, info: MetaStepInfo) -> np.ndarray:
        """The per-task credit drawn from ``info`` (logged as ``"rewards"``); called before :meth:`update`."""

    def log_extra(self, info: MetaStepInfo | None = None) -> dict[str, Any]:
        """Strategy-specific values for the meta-step log; called after :meth:`update` with the same ``info``."""
        return {}

    def set_budget(self, meta_steps: int) -> None:
        """Told by the run before its first meta-step: how many meta-steps it has (default: ignored; Aioli tiles
        its rounds into it)."""

    def hyper_parameters(self) -> dict[str, Any]:
        """The constructor arguments that define this strategy (stamped into exported schedules)."""
        return {}

    def _base_state(self) -> dict[str, Any]:
        return {"name": self.name, "n_tasks": self.n_tasks, "seed": self.seed, "updates": self.updates,
                "rng": self.rng.bit_generator.state}

    def _load_base(self, state: dict[str, Any]) -> None:
        check_state_matches("strategy", state, name=self.name, n_tasks=self.n_tasks)
        self.seed = int(state["seed"])
        self.updates = int(state["updates"])
        self.rng.bit_generator.state = state["rng"]

    def state_dict(self) -> dict[str, Any]:
        """Everything learned plus the random stream, as JSON-compatible values; called between meta-steps.

        The base state (name, size, seed, update count, random stream) and each
        array of :attr:`state_arrays`.
        """
        return {**self._base_state(), **{key: getattr(self, attr).tolist() for key, attr in self.state_arrays}}

    def check_state_dict(self, state: Any, where: str = "strategy") -> None:
        """Refuse (``ValueError`` naming the field) a state this strategy cannot continue from sanely: another
        strategy or task count, a seed or update count that is not an integer in range, a random stream that is not
        a position of its seed's, an array of :attr:`state_arrays` without this strategy's shape or not finite."""
        check_state_matches("strategy", state, name=self.name, n_tasks=self.n_tasks)
        state_keys(state, where, ("name", "n_tasks", "seed", "updates", "rng", *(k for k, _ in self.state_arrays)))
        seed = state_int(state["seed"], f"{where}.seed", 0, 2**64 - 1)
        state_int(state["updates"], f"{where}.updates", 0, 2**53)
        check_generator_state(state["rng"], f"{where}.rng", np.random.Generator(np.random.PCG64([seed, 0xADA9])), window=None)
        for key, attr in self.state_arrays:
            want = np.shape(getattr(self, attr))
            try:
                a = np.asarray(state[key], dtype=np.float64)
            except (TypeError, ValueError, OverflowError):
                raise ValueError(f"{where}.{key}: expected numbers of shape {want}") from None
            if a.shape != want or not np.all(np.isfinite(a)):
                raise ValueError(f"{where}.{key}: expected finite numbers of shape {want}, got shape {a.shape}")

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; afterwards the strategy continues exactly as the saved one would.

        Checked first (:meth:`check_state_dict`): nothing is restored from a state that fails."""
        self.check_state_dict(state)
        self._load_base(state)
        for key, attr in self.state_arrays:
            setattr(self, attr, np.asarray(state[key], dtype=np.float64))
