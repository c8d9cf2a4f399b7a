"""DoReMi (Xie et al., 2023): domain weights from a proxy trained with group DRO against a reference model.

Two strategies share one multiplicative-weights update (:class:`_DomainWeights`); they differ in the score that
drives it:

``doremi``
    As published: the score of task ``i`` is its *excess loss* ``max(L_i - L_i^ref, 0)``, the proxy's loss
    minus the reference model's on the same held-out examples -- the worst case over domains, blind to the
    target.  The reference is a plain run on the uniform mixture (the paper's reference uses the natural
    mixture; the authors advise it, sangmichaelxie/doremi#5, to avoid overfitting a small domain):
    :class:`~taskmix.runs.online.OnlineRun` trains it before the proxy, unless ``reference_loss`` is given.
``doremi_target``
    Target-weighted: the score of task ``i`` is the alignment of its training gradient with the target's
    reward-split gradient -- the out-of-domain rule of DoGE (Fan et al., 2024, "DoGE: Domain Reweighting with
    Generalization Estimation", the successor of DoReMi that keeps its proxy, its multiplicative weights, its
    smoothing and its time average, and replaces the worst-case excess loss by each domain's first-order
    effect on the target's loss).  No reference model.

The update after each meta-step (DoReMi's Algorithm 1, one step per meta-step)::

    alpha' = alpha * exp(lr * score)                      (in log space: no overflow)
    alpha  = (1 - c) alpha' / sum(alpha') + c / K         (c: ``smoothing``, the paper's 1e-3)

starting from uniform; the output is the time average of the ``alpha`` after each update
(:meth:`_DomainWeights.average_weights`).

Deviations, stated.  The paper clips the excess loss per token and averages it over the domain's tokens in the
batch; here the per-task mean losses come from :attr:`~taskmix.strategies.MetaStepInfo.heldout_loss` (one probe
per task, the same examples for the proxy and the reference), so the clip is per task.  The paper *reweights*
the proxy's loss by ``alpha`` on batches drawn from the reference mixture; here the proxy *samples* tasks by
``alpha``: :class:`~taskmix.runs.online.OnlineRun` draws every sample's task from the weights, and sampling by
``alpha`` has the reweighted loss's expected gradient (``E_{i~alpha} grad L_i = sum_i alpha_i grad L_i``) with
no per-task loss weight in the trainer (more variance on a low-weight task, none wasted on it).  The
``-replay`` method retrains the run's average of the weights *used* (``alpha_0 .. alpha_{T-1}``); the paper
averages ``alpha_1 .. alpha_T`` (:meth:`average_weights`, logged as ``average``) -- one meta-step apart.

>>> import numpy as np
>>> s = DoReMi(3, reference_loss=(1.0, 1.0, 1.0), lr=1.0, smoothing=0.0)
>>> s.step_weights(np.array([0.0, np.log(2.0), np.log(3.0)]))   # exp(score) = 1, 2, 3
>>> s.alpha.round(4).tolist()
[0.1667, 0.3333, 0.5]
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import numpy as np

from .base import MetaStepInfo, Strategy, choice_arg, int_arg, real_arg, reals_arg

__all__ = ["DoReMi", "DoReMiTarget"]


class _DomainWeights(Strategy):
    """DoReMi's exponentiated update with uniform smoothing and its time average (the score is the subclass's)."""

    state_arrays: ClassVar[tuple[tuple[str, str], ...]] = (("alpha", "alpha"), ("alpha_sum", "alpha_sum"))

    def __init__(self, n_tasks: int, target: int = 0, seed: int = 0, lr: float = 1.0, smoothing: float = 1e-3):
        super().__init__(n_tasks, target, seed)
        self.lr = real_arg(f"{self.name}: lr", lr, 0.0, 1e6)
        self.smoothing = real_arg(f"{self.name}: smoothing", smoothing, 0.0, 1.0)
        self.alpha = np.full(self.n_tasks, 1.0 / self.n_tasks)
        self.alpha_sum = np.zeros(self.n_tasks)  # sum of alpha after each update (for the time average)

    def weights(self, step: int) -> np.ndarray:
        """The domain weights in force (pure)."""
        return self.alpha.copy()

    def step_weights(self, score: np.ndarray) -> None:
        """One update: ``alpha <- (1 - c) normalize(alpha exp(lr score)) + c / K``; adds it to the average."""
        z = np.log(np.maximum(self.alpha, 1e-300)) + self.lr * np.asarray(score, dtype=np.float64)
        z -= z.max()
        a = np.exp(z)
        a /= a.sum()
        self.alpha = (1.0 - self.smoothing) * a + self.smoothing / self.n_tasks
        self.alpha_sum = self.alpha_sum + self.alpha
        self.updates += 1

    def average_weights(self) -> np.ndarray:
        """DoReMi's output: the mean of ``alpha`` over the updates so far (uniform before any)."""
        if self.updates == 0:
            return np.full(self.n_tasks, 1.0 / self.n_tasks)
        return self.alpha_sum / self.alpha_sum.sum()

    def update(self, meta_step: int, info: MetaStepInfo) -> None:
        """One exponentiated step on this meta-step's scores."""
        self.step_weights(self.rewards(info))

    def log_extra(self, info: MetaStepInfo | None = None) -> dict[str, Any]:
        """The time-averaged weights so far (DoReMi's output)."""
        return {"average": self.average_weights().tolist()}

    def hyper_parameters(self) -> dict[str, Any]:
        """The constructor arguments that define this strategy."""
        return {"lr": self.lr, "smoothing": self.smoothing}

    def check_state_dict(self, state: Any, where: str = "strategy") -> None:
        """The base checks, and: ``alpha`` a distribution at least ``c / K`` everywhere, ``alpha_sum`` non-negative
        summing to the update count."""
        super().check_state_dict(state, where)
        a = np.asarray(state["alpha"], dtype=np.float64)
        if np.any(a < self.smoothing / self.n_tasks - 1e-12) or abs(a.sum() - 1.0) > 1e-9:
            raise ValueError(f"{where}.alpha: expected a distribution with every weight >= smoothing / K, got {a.tolist()}")
        s = np.asarray(state["alpha_sum"], dtype=np.float64)
        if np.any(s < 0) or abs(s.sum() - int(state["updates"])) > 1e-6 * max(1, int(state["updates"])):
            raise ValueError(f"{where}.alpha_sum: expected non-negative weights summing to the update count "
                             f"{state['updates']}, got sum {s.sum():.6g}")


class DoReMi(_DomainWeights):
    r"""DoReMi as published: group DRO on the per-task excess loss over a reference model (worst case over tasks).

    ``score_i = max(L_i - L_i^ref, 0)`` with ``L_i`` the proxy's held-out loss on task ``i`` at the end of the
    meta-step and ``L^ref`` the reference model's on the same examples; see the module docstring.

    Args:
        n_tasks, target, seed: see :class:`Strategy` (no randomness of its own; the target plays no part).
        lr: the step size ``eta`` (paper: 1.0).
        smoothing: ``c``, the uniform share mixed into every update (paper: 1e-3).
        reference_loss: the reference model's per-task held-out losses; default ``None``:
            :class:`~taskmix.runs.online.OnlineRun` trains the reference (a plain uniform run of ``train.steps``
            steps, counted in the run's cost) and sets them with :meth:`set_reference`.
    """

    name = "doremi"
    feedback = frozenset({"heldout_loss"})
    needs_reference: ClassVar[bool] = True
    state_arrays = (("alpha", "alpha"), ("alpha_sum", "alpha_sum"), ("reference", "reference"))

    def __init__(self, n_tasks: int, target: int = 0, seed: int = 0, lr: float = 1.0, smoothing: float = 1e-3,
                 reference_loss: Sequence[float] | None = None):
        super().__init__(n_tasks, target, seed, lr, smoothing)
        self.reference = np.zeros(self.n_tasks)
        self.has_reference = False
        if reference_loss is not None:
            self.set_reference(reference_loss)

    def set_reference(self, loss: Sequence[float] | np.ndarray) -> None:
        """The reference model's per-task held-out losses (finite, non-negative)."""
        self.reference = reals_arg("doremi: reference_loss", loss, self.n_tasks, lo=0.0)
        self.has_reference = True

    def rewards(self, info: MetaStepInfo) -> np.ndarray:
        """The per-task excess loss ``max(L_i - L_i^ref, 0)``."""
        if not self.has_reference:
            raise ValueError("doremi: no reference losses; give reference_loss or let OnlineRun train the reference")
        if info.heldout_loss is None:
            raise ValueError("doremi: update needs the per-task held-out loss (feedback 'heldout_loss')")
        loss = reals_arg("doremi: heldout_loss", info.heldout_loss, self.n_tasks, lo=0.0)
        return np.maximum(loss - self.reference, 0.0)

    def state_dict(self) -> dict[str, Any]:
        """The base state, ``alpha``, its running sum and the reference losses (refused before they are set)."""
        if not self.has_reference:
            raise ValueError("doremi: no reference losses to save yet")
        return super().state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (checked first)."""
        super().load_state_dict(state)
        self.has_reference = True

    def check_state_dict(self, state: Any, where: str = "strategy") -> None:
        """The shared checks, and non-negative reference losses."""
        super().check_state_dict(state, where)
        if np.any(np.asarray(state["reference"], dtype=np.float64) < 0):
            raise ValueError(f"{where}.reference: expected non-negative losses")

    def log_extra(self, info: MetaStepInfo | None = None) -> dict[str, Any]:
        """The time average so far and the reference losses."""
        return {**super().log_extra(info), "reference": self.reference.tolist()}

    def hyper_parameters(self) -> dict[str, Any]:
        """The constructor arguments (the reference losses too, once set)."""
        return {**super().hyper_parameters(), "reference_loss": self.reference.tolist() if self.has_reference else None}


class DoReMiTarget(_DomainWeights):
    r"""DoReMi's update driven by the target: the score of task ``i`` is the alignment of its gradient with the
    target's reward-split gradient (DoGE's out-of-domain rule, Fan et al., 2024); no reference model.

    Args:
        n_tasks, target, seed: see :class:`Strategy`.
        lr: the step size ``eta`` (DoReMi: 1.0).
        smoothing: ``c`` (DoReMi: 1e-3).
        similarity: ``"dot"`` (default: the gradients' inner product over the target gradient's squared norm,
            DoGE's inner product made scale-free) or ``"cosine"``.
        probe_batches: training batches per task averaged into its gradient (default 8).
    """

    name = "doremi_target"
    feedback = frozenset({"alignment"})

    def __init__(self, n_tasks: int, target: int = 0, seed: int = 0, lr: float = 1.0, smoothing: float = 1e-3,
                 similarity: str = "dot", probe_batches: int = 8):
        super().__init__(n_tasks, target, seed, lr, smoothing)
        self.similarity = choice_arg("doremi_target: similarity", similarity, ("dot", "cosine"))
        self.probe_batches = int_arg("doremi_target: probe_batches", probe_batches, 1, 10**4)

    def rewards(self, info: MetaStepInfo) -> np.ndarray:
        """The per-task alignment with the target's reward-split gradient."""
        if info.alignment is None:
            raise ValueError("doremi_target: update needs the per-task gradient alignment (feedback 'alignment')")
        return reals_arg("doremi_target: alignment", info.alignment, self.n_tasks)

    def hyper_parameters(self) -> dict[str, Any]:
        """The constructor arguments that define this strategy."""
        return {**super().hyper_parameters(), "similarity": self.similarity, "probe_batches": self.probe_batches}
