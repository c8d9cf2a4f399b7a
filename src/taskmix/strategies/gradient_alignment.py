"""Online gradient-alignment weighting (MultiDDS-like; Wang et al., 2020)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import MetaStepInfo, Strategy, choice_arg, int_arg, real_arg, softmax

class GradientAlignment(Strategy):
    r"""Online gradient-alignment weighting (MultiDDS-like; Wang et al., 2020).

    Logits ``psi`` (initially 0, i.e. uniform) define ``p = softmax(psi)`` and
    the sampling weights ``w = (1 - floor) p + floor / K``.  At the end of each
    meta-step the reward of task ``i`` is the alignment of its training
    gradient with the target's reward-split gradient on the shared parameters
    (:class:`taskmix.runs.rewards.GradientAlignmentReward`; cosine by default, as in
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
            the probe batches use :class:`~taskmix.runs.online.OnlineRun`'s probe stream).
        lr: step size on ``psi`` (default 1.0; cosines lie in ``[-1, 1]``).
        similarity: ``"cosine"`` (default, MultiDDS) or ``"dot"`` (normalised by
            the target gradient's squared norm, as in :mod:`taskmix.runs.rewards`).  The
            search's ``gradient_alignment`` reward defaults to ``dot`` instead; docs/method.md
            (*Two gradient alignments*) says why the two defaults differ.
        probe_batches: training batches per task averaged into its gradient (default 8).
        floor: share of uniform exploration mixed into the weights (default 0).
    """

    name = "gradient_alignment"
    state_arrays = (("psi", "psi"),)
    feedback = frozenset({"alignment"})

    def __init__(
        self, n_tasks: int, target: int = 0, seed: int = 0,  # set by the run
        lr: float = 1.0,
        similarity: str = "cosine",
        probe_batches: int = 8,
        floor: float = 0.0,
    ):
        super().__init__(n_tasks, target, seed)
        self.lr = real_arg("gradient_alignment: lr", lr, 0.0)
        self.similarity = choice_arg("gradient_alignment: similarity", similarity, ("cosine", "dot"))
        self.probe_batches = int_arg("gradient_alignment: probe_batches", probe_batches, 1, 10**4)
        self.floor = real_arg("gradient_alignment: floor", floor, 0.0, 1.0)
        self.psi = np.zeros(self.n_tasks)

    def weights(self, step: int) -> np.ndarray:
        """The task distribution in force at training step ``step`` (pure)."""
        w = (1.0 - self.floor) * softmax(self.psi) + self.floor / self.n_tasks
        return w / w.sum()

    def rewards(self, info: MetaStepInfo) -> np.ndarray:
        """The per-task credit drawn from ``info``."""
        if info.alignment is None:
            raise ValueError("gradient_alignment: update needs the per-task gradient alignment")
        return np.asarray(info.alignment, dtype=np.float64)

    def update(self, meta_step: int, info: MetaStepInfo) -> None:
        """Learn from one meta-step's feedback."""
        r = self.rewards(info)
        if not np.all(np.isfinite(r)):
            raise ValueError(f"gradient_alignment: alignment must be finite, got {r.tolist()}")
        p = softmax(self.psi)
        self.psi = self.psi + self.lr * (r - p * r.sum())
        self.updates += 1

    def log_extra(self, info: MetaStepInfo | None = None) -> dict[str, Any]:
        """The sampling logits after the update."""
        return {"logits": self.psi.tolist()}

    def hyper_parameters(self) -> dict[str, Any]:
        """The constructor arguments that define this strategy."""
        return {"lr": self.lr, "similarity": self.similarity, "probe_batches": self.probe_batches, "floor": self.floor}
