"""Online adaptive mixing strategies: the peers a user would pick instead of a learned schedule.

Each strategy adapts the task distribution *during* one training run (same
tasks, same budget of ``train.steps`` steps of ``train.batch_size`` samples,
same seeds as every other method of :mod:`taskmix.compare`), and is a small
class with explicit hooks, in the style of an Optuna sampler:

* ``weights(step) -> np.ndarray`` -- the task distribution in force at
  training step ``step`` (pure: calling it twice gives the same answer);
* ``update(meta_step, info) -> None`` -- learn from one meta-step's feedback
  (a :class:`MetaStepInfo`);
* ``rewards(info) -> np.ndarray`` -- the per-task credit the strategy draws
  from ``info`` (logged as ``"rewards"``);
* ``state_dict()`` / ``load_state_dict()`` and ``reseed(seed)``.

:class:`AdaptiveRun` drives a strategy the way :class:`taskmix.search.SearchRun`
drives the policy: meta-steps of ``cfg.steps_per_meta_step`` training steps; at
the start of a meta-step the strategy's weights are read; every sample's task
is drawn with :func:`taskmix.sampler.categorical` (one task per batch with
``train.per: batch``) and its example from :class:`~taskmix.sampler.ExampleStreams`;
at the end the feedback the strategy asks for is computed (``feedback``: the
per-task training loss, free; the target's reward-split metric, one
evaluation; the gradient alignment, one backward pass per probe batch and
task) and ``update`` is called.  The draws use the same random streams as
:func:`taskmix.train.train_with_schedule` (task draws from
``PCG64([seed, 0x7A5C])``, examples from ``ExampleStreams(seed=seed)``, model
initialisation from ``seed``), so **replaying the exported per-meta-step
schedule reproduces the online run bit for bit on CPU**: an online run is a
replay of its own time-variant schedule, whose rows happen to be chosen on the
fly.

Strategies
----------
``exp3``
    :class:`EXP3` -- Online Data Mixing (ODM; Albalak et al., 2023,
    "Efficient Online Data Mixing For Language Model Pre-Training",
    arXiv:2312.02406).  Reward = a task's *training loss* (more loss, more to
    learn), importance weighted.  Not target-aware: ODM optimises the overall
    (all-task) loss, and so does this faithful port.
``thompson``
    :class:`ThompsonSampling` -- AutoSeM stage 1 (Guo, Pasunuru & Bansal,
    NAACL 2019, "AutoSeM: Automatic Task Selection and Mixing in Multi-Task
    Learning"): a Beta-Bernoulli bandit over tasks with Thompson sampling; the
    binary reward says whether the target's reward-split metric improved.
``gradient_alignment``
    :class:`GradientAlignment` -- MultiDDS-like (Wang et al., ACL 2020,
    "Balancing Training for Multilingual Neural Machine Translation"): the
    reward of each task is the cosine between its training gradient and the
    target's reward-split gradient (:class:`taskmix.rewards.GradientAlignmentReward`);
    the sampling logits ascend ``sum_i r_i log p_i`` online.

Methods for :mod:`taskmix.compare` (see :func:`adaptive_methods`)
------------------------------------------------------------------
``<name>``
    the online run's own final model, evaluated once on the target's report
    split (test, else validation).  Its schedule is the per-meta-step weights
    it used (time-variant).
``<name>-replay``
    a fresh model retrained by :func:`taskmix.train.train_with_schedule` with
    the online run's *average* weights as a time-invariant schedule -- the
    static artifact a user would keep from the run.  Cost = online run +
    replay.  :func:`replay_method` with ``schedule="time_variant"`` replays the
    per-meta-step weights instead (which reproduces the online run exactly).

Hyper-parameters are constructor arguments with documented defaults.  When the
config's ``compare`` section has a field ``<strategy>_<argument>`` (e.g.
``compare.exp3_lr``, ``compare.thompson_decay``) that is not ``None``, it
overrides the default; the config schema is owned elsewhere, so such fields
exist only once they are added there.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Sequence

import numpy as np
import torch

from .config import Config
from .rewards import GradientAlignmentReward, RewardContext
from .sampler import ExampleStreams, categorical
from .schedule import Schedule
from .tasks import Split, Task
from .train import Trainer

if TYPE_CHECKING:  # compare imports this module lazily; avoid an import cycle at load time
    from .compare import Job, MethodResult

__all__ = [
    "MetaStepInfo",
    "Strategy",
    "EXP3",
    "ThompsonSampling",
    "GradientAlignment",
    "STRATEGIES",
    "make_strategy",
    "AdaptiveRun",
    "AdaptiveResult",
    "online_method",
    "replay_method",
    "adaptive_methods",
]

FEEDBACK_KINDS = ("task_loss", "reward_metric", "alignment")


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
    """

    step: int
    steps: int
    weights: np.ndarray
    counts: np.ndarray
    task_loss: np.ndarray
    metric: float | None = None
    previous_metric: float | None = None
    alignment: np.ndarray | None = None

    @property
    def shares(self) -> np.ndarray:
        """Realised share of the meta-step's samples per task."""
        total = float(self.counts.sum())
        return self.counts / total if total > 0 else np.zeros_like(self.counts, dtype=np.float64)


# ---------------------------------------------------------------- strategies


class Strategy:
    """Base class: an online task-sampling strategy over ``n_tasks`` tasks.

    Subclasses set ``name`` and ``feedback`` (the subset of
    :data:`FEEDBACK_KINDS` that :class:`AdaptiveRun` must compute for them) and
    implement :meth:`weights`, :meth:`update`, :meth:`rewards` and the state
    methods.  ``seed`` seeds the strategy's own generator (Thompson draws);
    :meth:`reseed` replaces it without touching what was learned.
    """

    name: ClassVar[str] = "strategy"
    feedback: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, n_tasks: int, target: int = 0, seed: int = 0):
        if n_tasks < 1:
            raise ValueError(f"need at least one task, got n_tasks={n_tasks}")
        if not 0 <= target < n_tasks:
            raise ValueError(f"target index {target} out of range for {n_tasks} tasks")
        self.n_tasks = int(n_tasks)
        self.target = int(target)
        self.seed = int(seed)
        self.rng = np.random.Generator(np.random.PCG64([self.seed, 0xADA9]))
        self.updates = 0

    def reseed(self, seed: int) -> None:
        """Restart the strategy's random stream from ``seed`` (its learned state is kept)."""
        self.seed = int(seed)
        self.rng = np.random.Generator(np.random.PCG64([self.seed, 0xADA9]))

    def weights(self, step: int) -> np.ndarray:
        raise NotImplementedError

    def update(self, meta_step: int, info: MetaStepInfo) -> None:
        raise NotImplementedError

    def rewards(self, info: MetaStepInfo) -> np.ndarray:
        raise NotImplementedError

    def log_extra(self) -> dict[str, Any]:
        """Strategy-specific scalars / vectors for the meta-step log (after the update)."""
        return {}

    def hyper_parameters(self) -> dict[str, Any]:
        return {}

    def _base_state(self) -> dict[str, Any]:
        return {"name": self.name, "n_tasks": self.n_tasks, "seed": self.seed, "updates": self.updates,
                "rng": self.rng.bit_generator.state}

    def _load_base(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name or int(state.get("n_tasks", -1)) != self.n_tasks:
            raise ValueError(
                f"strategy state is for {state.get('name')!r} over {state.get('n_tasks')} tasks, "
                f"not {self.name!r} over {self.n_tasks}"
            )
        self.seed = int(state["seed"])
        self.updates = int(state["updates"])
        self.rng.bit_generator.state = state["rng"]

    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError


def _softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


class EXP3(Strategy):
    r"""EXP3 with ODM's loss reward (Albalak et al., 2023, Algorithm 1), updated per meta-step.

    With ``K`` tasks, ``t`` the training step at which the weights are used and
    ``R_i`` the smoothed reward estimate of task ``i`` (initially 0)::

        eps_t  = min(1/K, sqrt(ln K / (K t)))            exploration rate (eps_0 = 1/K)
        eta_t  = eps_{t-1}                               learning rate (ODM uses the previous eps)
        pi_t   = (1 - K eps_t) softmax(eta_t R) + eps_t  sampling distribution

    and after a meta-step of ``N`` steps, for every task ``i`` drawn in it, with
    ``L_i`` its mean training loss over the meta-step::

        rhat_i = L_i / pi_i                       importance-weighted reward (``estimator="odm"``)
        a      = alpha ** N
        R_i   <- a R_i + (1 - a) rhat_i           moving average (ODM's smoothing alpha)

    Tasks not drawn keep their ``R_i``.  ODM updates every training step with
    one group per batch; here a meta-step of ``N`` steps with per-sample draws
    is one update, so ``alpha`` is read per *training step* (``alpha ** N`` per
    meta-step) and ``t`` counts training steps: the exploration schedule and the
    smoothing horizon live on the same time axis as ODM's.

    ODM's reward is the training loss, so the bandit favours the tasks the model
    fits worst -- whatever their effect on the target.  Its objective is the
    overall loss, not the target's; this port keeps that (the target is only an
    arm like the others).

    Note on the estimator: ODM divides by ``pi_i`` the loss of the one group
    drawn per step, so ``R_i`` tracks ``L_i / pi_i`` (the moving average only
    moves when ``i`` is drawn).  With per-sample draws every task is observed
    almost every meta-step, and ``L_i / pi_i`` is what ODM's rule computes.
    ``estimator="per_sample"`` treats each sample as one EXP3 pull and averages
    the unbiased pull estimates ``L 1[a=i] / pi_i`` over the meta-step, i.e.
    ``rhat_i = (n_i / n) L_i / pi_i`` (about ``L_i``: no inverse-probability
    boost).

    Args:
        n_tasks, target, seed: see :class:`Strategy` (EXP3 uses no randomness itself).
        lr: fixed ``eta`` instead of ODM's ``eps_{t-1}`` (default ``None``: ODM).
        exploration: fixed ``eps`` in ``[0, 1/K]`` instead of ODM's decaying rate (default ``None``: ODM).
        smoothing: ``alpha`` in ``[0, 1)``, per training step (default 0.9).
        estimator: ``"odm"`` (default) or ``"per_sample"``.
    """

    name = "exp3"
    feedback = frozenset({"task_loss"})

    def __init__(
        self,
        n_tasks: int,
        target: int = 0,
        seed: int = 0,
        lr: float | None = None,
        exploration: float | None = None,
        smoothing: float = 0.9,
        estimator: str = "odm",
    ):
        super().__init__(n_tasks, target, seed)
        if lr is not None and not (math.isfinite(lr) and lr >= 0):
            raise ValueError(f"exp3: lr must be a non-negative number, got {lr}")
        if exploration is not None and not 0 <= exploration <= 1.0 / self.n_tasks:
            raise ValueError(f"exp3: exploration must be in [0, 1/K] = [0, {1.0 / self.n_tasks:.4g}], got {exploration}")
        if not 0 <= smoothing < 1:
            raise ValueError(f"exp3: smoothing must be in [0, 1), got {smoothing}")
        if estimator not in ("odm", "per_sample"):
            raise ValueError(f"exp3: estimator must be 'odm' or 'per_sample', got {estimator!r}")
        self.lr = lr
        self.exploration = exploration
        self.smoothing = float(smoothing)
        self.estimator = estimator
        self.R = np.zeros(self.n_tasks)

    def exploration_rate(self, t: int) -> float:
        """``eps_t`` (ODM's ``min(1/K, sqrt(ln K / (K t)))``, or the fixed rate)."""
        if self.exploration is not None:
            return float(self.exploration)
        k = self.n_tasks
        if t <= 0 or k == 1:
            return 1.0 / k
        return min(1.0 / k, math.sqrt(math.log(k) / (k * t)))

    def learning_rate(self, t: int) -> float:
        """``eta_t``: the fixed ``lr``, else ODM's ``eps_{t-1}``."""
        if self.lr is not None:
            return float(self.lr)
        return self.exploration_rate(max(t - 1, 0))

    def weights(self, step: int) -> np.ndarray:
        eps = self.exploration_rate(step)
        p = (1.0 - self.n_tasks * eps) * _softmax(self.learning_rate(step) * self.R) + eps
        return p / p.sum()

    def rewards(self, info: MetaStepInfo) -> np.ndarray:
        seen = info.counts > 0
        out = np.zeros(self.n_tasks)
        p = np.maximum(np.asarray(info.weights, dtype=np.float64), 1e-12)
        loss = np.where(seen, info.task_loss, 0.0)
        if self.estimator == "odm":
            out[seen] = loss[seen] / p[seen]
        else:
            out[seen] = info.shares[seen] * loss[seen] / p[seen]
        return out

    def update(self, meta_step: int, info: MetaStepInfo) -> None:
        r = self.rewards(info)
        seen = info.counts > 0
        a = self.smoothing ** max(int(info.steps), 1)
        self.R[seen] = a * self.R[seen] + (1.0 - a) * r[seen]
        self.updates += 1

    def log_extra(self) -> dict[str, Any]:
        return {"estimate": self.R.tolist()}

    def hyper_parameters(self) -> dict[str, Any]:
        return {"lr": self.lr, "exploration": self.exploration, "smoothing": self.smoothing, "estimator": self.estimator}

    def state_dict(self) -> dict[str, Any]:
        return {**self._base_state(), "R": self.R.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._load_base(state)
        self.R = np.asarray(state["R"], dtype=np.float64)


class ThompsonSampling(Strategy):
    r"""Beta-Bernoulli Thompson sampling over tasks (AutoSeM stage 1, Guo et al., 2019).

    Each task ``i`` has a posterior ``Beta(a_i, b_i)`` over the probability
    that training on it improves the target (prior ``Beta(a0, b0)``).  At the
    start of each meta-step ``theta_i ~ Beta(a_i, b_i)`` is drawn for every task
    and the meta-step trains on ``argmax_i theta_i`` only (``mode="argmax"``,
    AutoSeM: one task at a time; the target is an arm like the others).  At its
    end the binary reward is::

        r = 1[m_t >= m_{t-1}]      (m: the target's metric on the reward split;
                                    ``strict=True``: 1[m_t > m_{t-1}])

    (AutoSeM's released controller counts a tie as a success; ``m_0`` is measured
    before any training), and the posteriors are updated as in AutoSeM's
    non-stationary controller::

        a_j <- (1 - gamma) a_j + gamma a0,  b_j <- (1 - gamma) b_j + gamma b0   for every task j
        a_i <- a_i + r,                     b_i <- b_i + (1 - r)                for the chosen task i

    ``gamma`` (``decay``) forgets old evidence; ``decay=0`` is the stationary
    textbook update (``a_i = a0 + successes_i``, ``b_i = b0 + failures_i``).
    The undiscounted tallies are kept too (``successes``, ``failures``).

    ``mode="mix"`` samples from a mixture instead of one task: the weights are
    the posterior probabilities that each task is the best (``P(theta_i is the
    largest)``, by ``mc_samples`` Monte Carlo draws -- "probability matching"),
    and the binary reward is credited in proportion to the realised shares
    ``c_i``: ``a_i += r c_i``, ``b_i += (1 - r) c_i``.

    Args:
        n_tasks, target, seed: see :class:`Strategy`; ``seed`` drives the Beta draws.
        prior: ``(a0, b0)``, default ``(1, 1)`` (uniform).
        decay: ``gamma`` in ``[0, 1]``, default 0.3 (the default update rate of
            AutoSeM's released non-stationary controller).
        mode: ``"argmax"`` (default) or ``"mix"``.
        strict: count a tie as a failure (default ``False``).
        mc_samples: Monte Carlo draws for ``mode="mix"`` (default 2000).
    """

    name = "thompson"
    feedback = frozenset({"reward_metric"})

    def __init__(
        self,
        n_tasks: int,
        target: int = 0,
        seed: int = 0,
        prior: tuple[float, float] = (1.0, 1.0),
        decay: float = 0.3,
        mode: str = "argmax",
        strict: bool = False,
        mc_samples: int = 2000,
    ):
        super().__init__(n_tasks, target, seed)
        a0, b0 = (float(v) for v in prior)
        if not (a0 > 0 and b0 > 0):
            raise ValueError(f"thompson: prior parameters must be positive, got {prior}")
        if not 0 <= decay <= 1:
            raise ValueError(f"thompson: decay must be in [0, 1], got {decay}")
        if mode not in ("argmax", "mix"):
            raise ValueError(f"thompson: mode must be 'argmax' or 'mix', got {mode!r}")
        if mc_samples < 1:
            raise ValueError(f"thompson: mc_samples must be >= 1, got {mc_samples}")
        self.prior = (a0, b0)
        self.decay = float(decay)
        self.mode = mode
        self.strict = bool(strict)
        self.mc_samples = int(mc_samples)
        self.alpha = np.full(self.n_tasks, a0)
        self.beta = np.full(self.n_tasks, b0)
        self.successes = np.zeros(self.n_tasks)
        self.failures = np.zeros(self.n_tasks)
        self.last_theta = np.zeros(self.n_tasks)
        self._current = self._draw()

    def reseed(self, seed: int) -> None:
        super().reseed(seed)
        self._current = self._draw()

    def _draw(self) -> np.ndarray:
        """Thompson step: the distribution for the next meta-step."""
        if self.mode == "argmax":
            theta = self.rng.beta(self.alpha, self.beta)
            self.last_theta = theta
            best = np.flatnonzero(theta == theta.max())
            i = int(best[0]) if len(best) == 1 else int(self.rng.choice(best))
            w = np.zeros(self.n_tasks)
            w[i] = 1.0
            return w
        theta = self.rng.beta(self.alpha, self.beta, size=(self.mc_samples, self.n_tasks))
        self.last_theta = theta[0]
        w = np.bincount(theta.argmax(axis=1), minlength=self.n_tasks).astype(np.float64)
        return w / w.sum()

    def weights(self, step: int) -> np.ndarray:
        return self._current.copy()

    def success(self, info: MetaStepInfo) -> float:
        """The binary reward of the meta-step (``NaN`` without both metrics)."""
        if info.metric is None or info.previous_metric is None:
            return float("nan")
        if self.strict:
            return float(info.metric > info.previous_metric)
        return float(info.metric >= info.previous_metric)

    def credit(self, info: MetaStepInfo) -> np.ndarray:
        """Share of the meta-step credited to each task: the chosen task, or the realised shares (mix)."""
        if self.mode == "argmax":
            return (np.asarray(info.weights) > 0).astype(np.float64) / max(int(np.count_nonzero(info.weights)), 1)
        return info.shares

    def rewards(self, info: MetaStepInfo) -> np.ndarray:
        r = self.success(info)
        return np.zeros(self.n_tasks) if not math.isfinite(r) else r * self.credit(info)

    def update(self, meta_step: int, info: MetaStepInfo) -> None:
        r = self.success(info)
        if not math.isfinite(r):
            raise ValueError("thompson: update needs the reward-split metric before and after the meta-step")
        c = self.credit(info)
        a0, b0 = self.prior
        self.alpha = (1.0 - self.decay) * self.alpha + self.decay * a0 + r * c
        self.beta = (1.0 - self.decay) * self.beta + self.decay * b0 + (1.0 - r) * c
        self.successes += r * c
        self.failures += (1.0 - r) * c
        self.updates += 1
        self._current = self._draw()

    def posterior_mean(self) -> np.ndarray:
        return self.alpha / (self.alpha + self.beta)

    def log_extra(self) -> dict[str, Any]:
        return {"alpha": self.alpha.tolist(), "beta": self.beta.tolist(), "posterior_mean": self.posterior_mean().tolist(),
                "theta": self.last_theta.tolist()}

    def hyper_parameters(self) -> dict[str, Any]:
        return {"prior": list(self.prior), "decay": self.decay, "mode": self.mode, "strict": self.strict,
                "mc_samples": self.mc_samples}

    def state_dict(self) -> dict[str, Any]:
        return {
            **self._base_state(),
            "alpha": self.alpha.tolist(),
            "beta": self.beta.tolist(),
            "successes": self.successes.tolist(),
            "failures": self.failures.tolist(),
            "current": self._current.tolist(),
            "last_theta": self.last_theta.tolist(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._load_base(state)
        self.alpha = np.asarray(state["alpha"], dtype=np.float64)
        self.beta = np.asarray(state["beta"], dtype=np.float64)
        self.successes = np.asarray(state["successes"], dtype=np.float64)
        self.failures = np.asarray(state["failures"], dtype=np.float64)
        self._current = np.asarray(state["current"], dtype=np.float64)
        self.last_theta = np.asarray(state["last_theta"], dtype=np.float64)


class GradientAlignment(Strategy):
    r"""Online gradient-alignment weighting (MultiDDS-like; Wang et al., 2020).

    Logits ``psi`` (initially 0, i.e. uniform) define ``p = softmax(psi)`` and
    the sampling weights ``w = (1 - floor) p + floor / K``.  At the end of each
    meta-step the reward of task ``i`` is the alignment of its training
    gradient with the target's reward-split gradient on the shared parameters
    (:class:`taskmix.rewards.GradientAlignmentReward`; cosine by default, as in
    MultiDDS)::

        r_i = cos(grad L_target^reward(theta), grad L_i^train(theta))

    and ``psi`` takes one step of MultiDDS's update, gradient ascent on
    ``sum_i r_i log p_i`` (every task is scored, so no sampling is needed)::

        psi <- psi + lr (r - p sum_j r_j)

    With constant rewards, all ``r_i >= 0``, its fixed point is
    ``p_i = r_i / sum_j r_j`` (the maximiser of ``sum_i r_i log p_i``): aligned
    tasks share the budget in proportion to their alignment.  A task with
    ``r_i < 0`` (its gradient opposes the target's) is driven to zero weight,
    and its negative mass sharpens the split among the others (toward the most
    aligned).  The weights used during the run are the adapted ones; the run's
    own final model is the result.

    Args:
        n_tasks, target, seed: see :class:`Strategy` (no randomness of its own;
            the probe batches use :class:`AdaptiveRun`'s probe stream).
        lr: step size on ``psi`` (default 1.0; cosines lie in ``[-1, 1]``).
        similarity: ``"cosine"`` (default, MultiDDS) or ``"dot"`` (normalised by
            the target gradient's squared norm, as in :mod:`taskmix.rewards`).
        probe_batches: training batches per task averaged into its gradient (default 8).
        floor: share of uniform exploration mixed into the weights (default 0).
    """

    name = "gradient_alignment"
    feedback = frozenset({"alignment"})

    def __init__(
        self,
        n_tasks: int,
        target: int = 0,
        seed: int = 0,
        lr: float = 1.0,
        similarity: str = "cosine",
        probe_batches: int = 8,
        floor: float = 0.0,
    ):
        super().__init__(n_tasks, target, seed)
        if not (math.isfinite(lr) and lr >= 0):
            raise ValueError(f"gradient_alignment: lr must be a non-negative number, got {lr}")
        if similarity not in ("cosine", "dot"):
            raise ValueError(f"gradient_alignment: similarity must be 'cosine' or 'dot', got {similarity!r}")
        if probe_batches < 1:
            raise ValueError(f"gradient_alignment: probe_batches must be >= 1, got {probe_batches}")
        if not 0 <= floor <= 1:
            raise ValueError(f"gradient_alignment: floor must be in [0, 1], got {floor}")
        self.lr = float(lr)
        self.similarity = similarity
        self.probe_batches = int(probe_batches)
        self.floor = float(floor)
        self.psi = np.zeros(self.n_tasks)

    def weights(self, step: int) -> np.ndarray:
        w = (1.0 - self.floor) * _softmax(self.psi) + self.floor / self.n_tasks
        return w / w.sum()

    def rewards(self, info: MetaStepInfo) -> np.ndarray:
        if info.alignment is None:
            raise ValueError("gradient_alignment: update needs the per-task gradient alignment")
        return np.asarray(info.alignment, dtype=np.float64)

    def update(self, meta_step: int, info: MetaStepInfo) -> None:
        r = self.rewards(info)
        if not np.all(np.isfinite(r)):
            raise ValueError(f"gradient_alignment: alignment must be finite, got {r.tolist()}")
        p = _softmax(self.psi)
        self.psi = self.psi + self.lr * (r - p * r.sum())
        self.updates += 1

    def log_extra(self) -> dict[str, Any]:
        return {"logits": self.psi.tolist()}

    def hyper_parameters(self) -> dict[str, Any]:
        return {"lr": self.lr, "similarity": self.similarity, "probe_batches": self.probe_batches, "floor": self.floor}

    def state_dict(self) -> dict[str, Any]:
        return {**self._base_state(), "psi": self.psi.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._load_base(state)
        self.psi = np.asarray(state["psi"], dtype=np.float64)


STRATEGIES: dict[str, type[Strategy]] = {
    EXP3.name: EXP3,
    ThompsonSampling.name: ThompsonSampling,
    GradientAlignment.name: GradientAlignment,
}

# constructor arguments that may be set from ``cfg.compare.<strategy>_<argument>``
_CONFIGURABLE: dict[str, tuple[str, ...]] = {
    "exp3": ("lr", "exploration", "smoothing", "estimator"),
    "thompson": ("prior", "decay", "mode", "strict", "mc_samples"),
    "gradient_alignment": ("lr", "similarity", "probe_batches", "floor"),
}


def strategy_kwargs(cfg: Config, name: str) -> dict[str, Any]:
    """Hyper-parameters for strategy ``name`` from the config, where it has them.

    ``compare.<name>_<argument>`` fields (when the schema has them and they are
    not ``None``); for ``gradient_alignment``, ``probe_batches`` defaults to
    ``search.probe_batches`` so that it probes like the learned search.
    """
    out: dict[str, Any] = {}
    if name == "gradient_alignment":
        out["probe_batches"] = int(cfg.search.probe_batches)
    for arg in _CONFIGURABLE.get(name, ()):
        v = getattr(cfg.compare, f"{name}_{arg}", None)
        if v is not None:
            out[arg] = tuple(v) if isinstance(v, list) else v
    return out


def make_strategy(name: str, n_tasks: int, target: int = 0, seed: int = 0, **kwargs: Any) -> Strategy:
    """Build strategy ``name`` (one of :data:`STRATEGIES`)."""
    try:
        cls = STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown adaptive strategy {name!r}; expected one of {sorted(STRATEGIES)}") from None
    return cls(n_tasks, target, seed, **kwargs)


# --------------------------------------------------------------------- runs


@dataclass
class AdaptiveResult:
    """An online run: its per-meta-step and average schedules, log and cost."""

    time_variant: Schedule
    average: Schedule
    log: list[dict[str, Any]]
    seconds: float
    steps: int
    evaluations: int
    extra: dict[str, Any] = field(default_factory=dict)


class AdaptiveRun:
    """One training run whose task distribution a :class:`Strategy` adapts online.

    ``run()`` goes to the end; ``step_meta()`` does one meta-step and returns its
    log row.  The budget is ``cfg.train.steps`` training steps in meta-steps of
    ``cfg.steps_per_meta_step`` (the last one shorter if they do not divide).
    State (model, optimiser, strategy, every random stream, counters, log) is in
    :meth:`state_dict`, so a run can checkpoint between meta-steps and resume.

    Cost accounting (``evaluations``): one per computation of the feedback a
    strategy asks for -- a reward-split evaluation (``reward_metric``, plus one
    before training for the first comparison) or a gradient-alignment
    computation (``alignment``, ``1 + K x probe_batches`` backward passes, no
    optimiser steps).  The reward-split accuracy and loss logged every
    meta-step for every strategy are a diagnostic and, as in
    :class:`taskmix.search.SearchRun`, not counted (``thompson`` reuses that
    evaluation as its feedback, so nothing is evaluated twice).
    """

    def __init__(
        self,
        tasks: Sequence[Task],
        target: int,
        reward_split: Split,
        cfg: Config,
        seed: int,
        strategy: Strategy,
        trunk_factory: Callable[[], torch.nn.Module] | None = None,
    ):
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
        self.meta_step = 0
        self.step = 0
        self.seconds = 0.0
        self.evaluations = 0
        self.log: list[dict[str, Any]] = []
        self.used: list[list[float]] = []  # weights in force during each meta-step
        t0 = time.perf_counter()
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
            self.previous_metric = self.trainer.metric(self.reward_split, self.target)
            self.evaluations += 1
        self.seconds += time.perf_counter() - t0

    @property
    def done(self) -> bool:
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
        metric = diag[self.tasks[self.target].metric]
        info = MetaStepInfo(step=self.step, steps=steps, weights=w, counts=counts, task_loss=task_loss)
        if "reward_metric" in self.strategy.feedback:
            info.metric, info.previous_metric = metric, self.previous_metric
            self.previous_metric = metric
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
            **self.strategy.log_extra(),
        }
        if isinstance(self.strategy, ThompsonSampling):
            entry["success"] = self.strategy.success(info)
        if isinstance(self.strategy, EXP3):
            entry["exploration"] = self.strategy.exploration_rate(self.step)
        self.log.append(entry)
        self.meta_step += 1
        return entry

    def run(self, on_meta_step: Callable[["AdaptiveRun", dict[str, Any]], None] | None = None) -> AdaptiveResult:
        while not self.done:
            entry = self.step_meta()
            if on_meta_step is not None:
                on_meta_step(self, entry)
        return self.result()

    # -------------------------------------------------------------- artifacts
    def provenance(self, kind: str) -> dict[str, Any]:
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
        tgt = self.tasks[self.target]
        return self.trainer.metric(tgt.report_split, self.target)

    def result(self) -> AdaptiveResult:
        return AdaptiveResult(self.time_variant_schedule(), self.average_schedule(), list(self.log), self.seconds,
                              self.step, self.evaluations)

    # ------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
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
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": np.random.get_state(),
            "python_rng": random.getstate(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
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
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(state["numpy_rng"])
        random.setstate(state["python_rng"])


# ---------------------------------------------------------- compare methods


def run_online(job: "Job", name: str, **kwargs: Any) -> tuple[AdaptiveResult, float, float]:
    """Run strategy ``name`` online on ``job``: ``(result, report-split metric, seconds incl. the evaluation)``.

    ``kwargs`` override the strategy's hyper-parameters (after the config's).
    """
    t0 = time.perf_counter()
    hyper = {**strategy_kwargs(job.cfg, name), **kwargs}
    strategy = make_strategy(name, len(job.tasks), job.target, job.seed, **hyper)
    run = AdaptiveRun(job.tasks, job.target, job.reward_split, job.cfg, job.seed, strategy)
    res = run.run()
    test = run.evaluate_report()
    return res, test, time.perf_counter() - t0


def online_method(name: str, **kwargs: Any) -> Callable[["Job"], "MethodResult"]:
    """Method ``<name>``: the online run's own final model on the target's report split.

    The row's schedule is the per-meta-step weights the run used; its cost is
    the run's ``train.steps`` steps, the feedback evaluations plus the final
    one, and its wall time.
    """

    def run(job: "Job") -> "MethodResult":
        from .compare import MethodResult

        res, test, seconds = run_online(job, name, **kwargs)
        return MethodResult(
            test=test,
            seconds=seconds,
            schedule=res.time_variant,
            train_steps=res.steps,
            evaluations=res.evaluations + 1,
            log=res.log,
            extra={
                "online": True,
                "average_weights": res.average.weights[0].tolist(),
                "realised": _realised(res.log),
            },
        )

    return run


def replay_method(name: str, schedule: str = "average", **kwargs: Any) -> Callable[["Job"], "MethodResult"]:
    """Method ``<name>-replay``: run ``name`` online, then retrain a fresh model with its schedule.

    ``schedule="average"`` (default) replays the run's average weights as a
    time-invariant schedule -- the static artifact a user would keep;
    ``"time_variant"`` replays the per-meta-step weights (which, with the same
    seed, reproduces the online run).  Cost = online run + replay; the online
    run's own result is kept in ``extra["online_test"]``.
    """
    if schedule not in ("average", "time_variant"):
        raise ValueError(f"replay schedule must be 'average' or 'time_variant', got {schedule!r}")

    def run(job: "Job") -> "MethodResult":
        from .compare import _replay

        res, online_test, seconds = run_online(job, name, **kwargs)
        sched = res.average if schedule == "average" else res.time_variant
        return _replay(
            job,
            sched,
            extra_seconds=seconds,
            extra_steps=res.steps,
            evals=res.evaluations + 1,
            log=res.log,
            extra={"online_test": online_test, "online_seconds": seconds, "replayed": schedule},
        )

    return run


def _realised(log: Sequence[dict[str, Any]]) -> list[float]:
    if not log:
        return []
    r = np.asarray([e["realised"] for e in log], dtype=np.float64)
    steps = np.diff([0] + [int(e["step"]) for e in log]).astype(np.float64)
    return ((r * steps[:, None]).sum(axis=0) / steps.sum()).tolist()


def adaptive_methods(cfg: Config) -> dict[str, Callable[["Job"], "MethodResult"]]:
    """The adaptive peers for :func:`taskmix.compare.all_methods`.

    ``exp3``, ``thompson``, ``gradient_alignment`` (online run's own model) and
    ``exp3-replay``, ``thompson-replay``, ``gradient_alignment-replay``
    (average weights retrained from scratch).
    """
    out: dict[str, Callable[[Job], MethodResult]] = {}
    for name in STRATEGIES:
        out[name] = online_method(name)
    for name in STRATEGIES:
        out[f"{name}-replay"] = replay_method(name)
    return out
