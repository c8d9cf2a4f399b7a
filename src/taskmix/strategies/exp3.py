"""EXP3 with Online Data Mixing's loss reward (Albalak et al., 2023)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .base import MetaStepInfo, Strategy, choice_arg, real_arg, softmax

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
    state_arrays = (("R", "R"),)
    feedback = frozenset({"task_loss"})

    def __init__(
        self, n_tasks: int, target: int = 0, seed: int = 0,  # set by the run
        lr: float | None = None,
        exploration: float | None = None,
        smoothing: float = 0.9,
        estimator: str = "odm",
    ):
        super().__init__(n_tasks, target, seed)
        if lr is not None:
            lr = real_arg("exp3: lr", lr, 0.0)
        if exploration is not None:
            real_arg("exp3: exploration", exploration, 0.0)
            if not 0 <= exploration <= 1.0 / self.n_tasks:
                raise ValueError(f"exp3: exploration must be in [0, 1/K] = [0, {1.0 / self.n_tasks:.4g}], got {exploration}")
            exploration = float(exploration)
        self.lr = lr
        self.exploration = exploration
        self.smoothing = real_arg("exp3: smoothing", smoothing, 0.0, 1.0, hi_open=True)
        self.estimator = choice_arg("exp3: estimator", estimator, ("odm", "per_sample"))
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
        """The task distribution in force at training step ``step`` (pure)."""
        eps = self.exploration_rate(step)
        p = (1.0 - self.n_tasks * eps) * softmax(self.learning_rate(step) * self.R) + eps
        return p / p.sum()

    def rewards(self, info: MetaStepInfo) -> np.ndarray:
        """The per-task credit drawn from ``info``."""
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
        """Learn from one meta-step's feedback."""
        r = self.rewards(info)
        seen = info.counts > 0
        a = self.smoothing ** max(int(info.steps), 1)
        self.R[seen] = a * self.R[seen] + (1.0 - a) * r[seen]
        self.updates += 1

    def log_extra(self, info: MetaStepInfo | None = None) -> dict[str, Any]:
        """The reward estimates and, given the meta-step's ``info``, the exploration rate now in force."""
        out: dict[str, Any] = {"estimate": self.R.tolist()}
        if info is not None:
            out["exploration"] = self.exploration_rate(info.step)
        return out

    def hyper_parameters(self) -> dict[str, Any]:
        """The constructor arguments that define this strategy."""
        return {"lr": self.lr, "exploration": self.exploration, "smoothing": self.smoothing, "estimator": self.estimator}
