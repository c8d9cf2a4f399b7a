"""Aioli (Chen et al., ICLR 2025, "Aioli: A Unified Optimization Framework for Language Model Data Mixing").

Training in rounds.  Each round first *sweeps*: it trains one meta-step on each perturbed mixture
``W_k = f e_k + (1 - f)/(K - 1) (1 - e_k)`` (``f``: ``one_hot_factor``; the order a random permutation,
repeated ``sweep_repeats`` times) and records how every task's held-out loss moved::

    G[:, k] += L_before - L_after           (averaged over the repeats)

then estimates the linear mixing law ``G = A W^T`` -- ``A[i, j]``: how much training on task ``j`` lowers task
``i``'s loss -- by solving ``A[i] = W^{-1} G[i]``, normalises ``A`` (shifted to be non-negative, then divided by
its sum: the released code's ``aioli_normalize_A``, which its README says to always set), and takes one
exponentiated-gradient step on the proportions::

    p <- normalize(p * exp(eta * s))        s_j = sum_i A[i, j]   (``objective="average"``: every task's loss)
                                            s_j = A[target, j]     (``objective="target"``: the target's only)

(with ``ema``: ``s`` is smoothed, ``s~ = (1 - ema) s + ema s~``, and ``p = prior * exp(eta s~)``, as the released
code does).  The rest of the round (``exploit_meta_steps``) trains at ``p``.  Before the first round
``warmup_meta_steps`` train at the prior, giving the first sweep its starting loss (the released code's
``aioli_prior`` / ``prior_steps``).  Rounds tile the run (:meth:`Aioli.set_budget`, told by the run): a last round
too short for its sweep and one meta-step at ``p`` trains at ``p``, so the run never ends on a swept mixture.

What taskmix does, against the paper and HazyResearch/aioli:

* The sweep trains the run's own model and is *not* undone: the released LearnParams trains the perturbed
  mixtures in sequence on the live model (no restore), and counts their steps in the run.  So does taskmix: the
  sweep's meta-steps are training steps of the run's budget, so Aioli trains fewer steps at its chosen mixture.
* A sweep piece is one meta-step (``steps_per_meta_step`` steps; paper: ``lp_steps`` = 4 steps of 8 sequences).
  The held-out loss is :attr:`~taskmix.strategies.MetaStepInfo.heldout_loss` (the target's reward split; an
  auxiliary's validation split, else a fixed probe of its training rows).
* The target-weighted form (``objective="target"``; strategy ``aioli_target``) keeps only the target's row of ``A``: the mixing law fitted
  to the one loss the user reports, as Skill-It's targeted setting (Chen et al., 2023), which the Aioli paper
  casts in the same framework, uses its skills graph.

Defaults: the paper's ``eta`` 0.2 and ``one_hot_factor`` 0.625 (its 2-3-task SlimPajama runs; 0.75 and eta 1 for
7 tasks), ``normalize`` on, no ``ema`` (the README: "recommended to not set this at first").  Scale: the paper
runs ``lp_rounds`` 4 sweeps of ``lp_steps`` 4 per round, 20 rounds of 250 steps in 5000; taskmix's budgets are a
few dozen meta-steps, so one sweep (``sweep_repeats`` 1) and 4 meta-steps at ``p`` per round.

>>> import numpy as np
>>> s = Aioli(2, one_hot_factor=1.0, normalize=False, eta=1.0)
>>> G = np.array([[0.2, 0.0], [0.1, 0.3]])            # training on task 0 lowers L0 by 0.2 and L1 by 0.1, ...
>>> s.estimate(G).tolist()                             # with one-hot sweeps A is G itself
[[0.2, 0.0], [0.1, 0.3]]
>>> s.eg_step(np.array([[0.2, 0.0], [0.1, 0.3]])).round(4).tolist()   # p * exp(A.sum(0)) = (e^0.3, e^0.3) / ...
[0.5, 0.5]
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import numpy as np

from .base import MetaStepInfo, Strategy, bool_arg, choice_arg, int_arg, real_arg, reals_arg

__all__ = ["Aioli", "AioliTarget"]


class Aioli(Strategy):
    """Aioli: rounds of a mixing-law sweep and an exponentiated-gradient step (see the module docstring).

    Args:
        n_tasks, target, seed: see :class:`Strategy`; ``seed`` draws the sweep orders.
        eta: the exponentiated-gradient step size (paper: 0.2 for 2-3 tasks).
        one_hot_factor: ``f``, the swept task's share in a perturbed mixture, in ``(1/K, 1]`` (paper: 0.625).
        sweep_repeats: sweeps through the tasks per round (paper ``lp_rounds``: 4; taskmix 1).
        exploit_meta_steps: meta-steps at ``p`` after each sweep (paper: the round's 250 steps less the sweep;
            taskmix 4).
        warmup_meta_steps: meta-steps at the prior before the first round (at least 1: the first sweep's
            starting loss).
        normalize: shift ``A`` to be non-negative and divide by its sum before the step (paper: always).
        ema: ``None`` or the smoothing of the score across rounds, in ``[0, 1)`` (paper's option; off).
        objective: ``"average"`` (every task's loss, as published) or ``"target"`` (the target's loss only).
        prior: ``None`` (uniform) or the initial proportions.
    """

    name = "aioli"
    feedback = frozenset({"heldout_loss"})
    state_arrays: ClassVar[tuple[tuple[str, str], ...]] = (
        ("p", "p"), ("gain", "G"), ("last_loss", "last_loss"), ("score", "score"), ("A", "A"), ("order", "order"))
    drawn_state = ("order",)

    def __init__(
        self, n_tasks: int, target: int = 0, seed: int = 0,  # set by the run
        eta: float = 0.2,
        one_hot_factor: float = 0.625,
        sweep_repeats: int = 1,
        exploit_meta_steps: int = 4,
        warmup_meta_steps: int = 1,
        normalize: bool = True,
        ema: float | None = None,
        objective: str = "average",
        prior: Sequence[float] | None = None,
    ):
        super().__init__(n_tasks, target, seed)
        k = self.n_tasks
        self.eta = real_arg("aioli: eta", eta, 0.0, 1e6)
        lo = 1.0 / k if k > 1 else 0.0
        self.one_hot_factor = real_arg("aioli: one_hot_factor", one_hot_factor, lo, 1.0, lo_open=True)
        self.sweep_repeats = int_arg("aioli: sweep_repeats", sweep_repeats, 1, 1000)
        self.exploit_meta_steps = int_arg("aioli: exploit_meta_steps", exploit_meta_steps, 0, 10**6)
        self.warmup_meta_steps = int_arg("aioli: warmup_meta_steps", warmup_meta_steps, 1, 10**6)
        self.normalize = bool_arg("aioli: normalize", normalize)
        self.ema = None if ema is None else real_arg("aioli: ema", ema, 0.0, 1.0, hi_open=True)
        self.objective = choice_arg("aioli: objective", objective, ("average", "target"))
        if prior is None:
            self.prior = np.full(k, 1.0 / k)
        else:
            pr = reals_arg("aioli: prior", prior, k, lo=0.0)
            if not pr.sum() > 0 or np.any(pr <= 0):
                raise ValueError(f"aioli: prior must be {k} positive numbers, got {pr.tolist()}")
            self.prior = pr / pr.sum()
        self.W = self.perturbations()
        self.p = self.prior.copy()
        self.G = np.zeros((k, k))
        self.A = np.zeros((k, k))
        self.score = np.zeros(k)
        self.last_loss = np.zeros(k)
        self.order = self._draw_order()
        self.total_meta_steps: int | None = None

    def set_budget(self, meta_steps: int) -> None:
        """The run's meta-steps: no sweep starts that would leave no meta-step at ``p`` after it (the paper's rounds
        tile the run; a last partial round trains at ``p``)."""
        self.total_meta_steps = int_arg("aioli: meta_steps", meta_steps, 1)

    # ------------------------------------------------------------ the round
    @property
    def sweep_length(self) -> int:
        """Meta-steps of one sweep: ``sweep_repeats * K``."""
        return self.sweep_repeats * self.n_tasks

    @property
    def round_length(self) -> int:
        """Meta-steps of one round: the sweep and the meta-steps at ``p``."""
        return self.sweep_length + self.exploit_meta_steps

    def _final_round(self, index: int) -> bool:
        """Whether round ``index`` would not fit its sweep and one meta-step at ``p`` in the run's budget."""
        if self.total_meta_steps is None:
            return False
        start = self.warmup_meta_steps + index * self.round_length
        return start + self.sweep_length + 1 > self.total_meta_steps  # the round's exploit may be cut short

    def phase(self, meta_step: int) -> tuple[str, int]:
        """``("warmup", i)``, ``("sweep", position in the sweep)``, ``("exploit", i)`` or ``("final", i)`` (a last
        round too short for its sweep: at ``p``) of meta-step ``meta_step``."""
        if meta_step < self.warmup_meta_steps:
            return "warmup", meta_step
        index, r = divmod(meta_step - self.warmup_meta_steps, self.round_length)
        if self._final_round(index):
            return "final", r
        return ("sweep", r) if r < self.sweep_length else ("exploit", r - self.sweep_length)

    def rounds_done(self) -> int:
        """Completed sweeps (exponentiated-gradient steps taken)."""
        m = self.updates - self.warmup_meta_steps
        if m < 0:
            return 0
        index, r = divmod(m, self.round_length)
        return index + (1 if r >= self.sweep_length and not self._final_round(index) else 0)

    def perturbations(self) -> np.ndarray:
        """``W[k]``: the mixture swept for task ``k`` (``f`` on ``k``, the rest spread evenly)."""
        k, f = self.n_tasks, self.one_hot_factor
        if k == 1:
            return np.ones((1, 1))
        w = np.full((k, k), (1.0 - f) / (k - 1))
        np.fill_diagonal(w, f)
        return w

    def _draw_order(self) -> np.ndarray:
        return np.concatenate([self.rng.permutation(self.n_tasks) for _ in range(self.sweep_repeats)]).astype(np.float64)

    # -------------------------------------------------------------- the law
    def estimate(self, gain: np.ndarray) -> np.ndarray:
        """``A`` from the averaged loss drops ``gain[i, k]`` (task ``i``'s, sweeping ``k``): ``A[i] = W^-1 gain[i]``."""
        gain = np.asarray(gain, dtype=np.float64)
        if gain.shape != (self.n_tasks, self.n_tasks) or not np.all(np.isfinite(gain)):
            raise ValueError(f"aioli: gain must be finite of shape {(self.n_tasks, self.n_tasks)}, got shape {gain.shape}")
        return np.linalg.solve(self.W, gain.T).T

    def step_score(self, A: np.ndarray) -> np.ndarray:
        """The score of each task from ``A``: normalised (if set), then column sums or the target's row."""
        a = np.asarray(A, dtype=np.float64)
        a = a if self.objective == "average" else a[self.target : self.target + 1]
        if self.normalize:
            a = a - min(float(a.min()), 0.0)
            total = float(a.sum())
            a = a / total if total > 0 else a
        return a.sum(axis=0)

    def eg_step(self, A: np.ndarray) -> np.ndarray:
        """The exponentiated-gradient step on ``p`` from ``A`` (also sets ``score``); returns the new ``p``."""
        s = self.step_score(A)
        if self.ema is not None:
            s = s if self.rounds_done() == 0 else (1.0 - self.ema) * s + self.ema * self.score
            z = np.log(self.prior) + self.eta * s
        else:
            z = np.log(np.maximum(self.p, 1e-300)) + self.eta * s
        z -= z.max()
        p = np.exp(z)
        self.score = s
        self.p = p / p.sum()
        return self.p.copy()

    # ----------------------------------------------------------- the hooks
    def weights(self, step: int) -> np.ndarray:
        """The mixture of the next meta-step (pure): the prior, a swept mixture or ``p``."""
        kind, i = self.phase(self.updates)
        if kind == "warmup":
            return self.prior.copy()
        if kind == "sweep":
            return self.W[int(self.order[i])].copy()
        return self.p.copy()  # exploit, final

    def rewards(self, info: MetaStepInfo) -> np.ndarray:
        """During a sweep, the drop of every task's held-out loss over the meta-step; else zeros."""
        loss = self._loss(info)
        kind, _ = self.phase(self.updates)
        return self.last_loss - loss if kind == "sweep" else np.zeros(self.n_tasks)

    def _loss(self, info: MetaStepInfo) -> np.ndarray:
        if info.heldout_loss is None:
            raise ValueError("aioli: update needs the per-task held-out loss (feedback 'heldout_loss')")
        return reals_arg("aioli: heldout_loss", info.heldout_loss, self.n_tasks, lo=0.0)

    def update(self, meta_step: int, info: MetaStepInfo) -> None:
        """Record the sweep piece's loss drops; at the sweep's end estimate ``A`` and step ``p``."""
        loss = self._loss(info)
        kind, i = self.phase(self.updates)
        if kind == "sweep":
            k = int(self.order[i])
            self.G[:, k] += self.last_loss - loss
            if i == self.sweep_length - 1:
                self.A = self.estimate(self.G / self.sweep_repeats)
                self.eg_step(self.A)
                self.G = np.zeros_like(self.G)
        self.last_loss = loss
        if (kind == "sweep" and self.exploit_meta_steps == 0 and i == self.sweep_length - 1) or (
                kind == "exploit" and i == self.exploit_meta_steps - 1):
            self.order = self._draw_order()  # the next round's sweep order
        self.updates += 1

    def reseed(self, seed: int) -> None:
        """Restart the random stream; the pending sweep order is redrawn unless a sweep is under way."""
        super().reseed(seed)
        kind, i = self.phase(self.updates)
        if not (kind == "sweep" and i > 0):
            self.order = self._draw_order()

    def log_extra(self, info: MetaStepInfo | None = None) -> dict[str, Any]:
        """The phase of the meta-step just done, ``p``, the last ``A`` and score."""
        kind, i = self.phase(max(self.updates - 1, 0))
        return {"phase": kind, "proportions": self.p.tolist(), "mixing_law": self.A.tolist(),
                "score": self.score.tolist(), "rounds": self.rounds_done()}

    def hyper_parameters(self) -> dict[str, Any]:
        """The constructor arguments that define this strategy."""
        return {"eta": self.eta, "one_hot_factor": self.one_hot_factor, "sweep_repeats": self.sweep_repeats,
                "exploit_meta_steps": self.exploit_meta_steps, "warmup_meta_steps": self.warmup_meta_steps,
                "normalize": self.normalize, "ema": self.ema, "objective": self.objective,
                "prior": self.prior.tolist()}

    def check_state_dict(self, state: Any, where: str = "strategy") -> None:
        """The base checks, and: ``p`` a positive distribution, ``order`` ``sweep_repeats`` permutations of the
        tasks, ``last_loss`` non-negative."""
        super().check_state_dict(state, where)
        p = np.asarray(state["p"], dtype=np.float64)
        if np.any(p <= 0) or abs(p.sum() - 1.0) > 1e-9:
            raise ValueError(f"{where}.p: expected positive proportions summing to 1, got {p.tolist()}")
        order = np.asarray(state["order"], dtype=np.float64)
        perms = order.reshape(self.sweep_repeats, self.n_tasks)
        if not np.array_equal(np.sort(perms, axis=1), np.tile(np.arange(self.n_tasks, dtype=np.float64), (self.sweep_repeats, 1))):
            raise ValueError(f"{where}.order: expected {self.sweep_repeats} permutation(s) of the {self.n_tasks} task indices")
        if np.any(np.asarray(state["last_loss"], dtype=np.float64) < 0):
            raise ValueError(f"{where}.last_loss: expected non-negative losses")


class AioliTarget(Aioli):
    """Aioli's target-weighted form: the exponentiated-gradient step reads only the target's row of the mixing law
    (``objective="target"``; see the module docstring).  Settings as :class:`Aioli`'s, less ``objective``."""

    name = "aioli_target"

    def __init__(
        self, n_tasks: int, target: int = 0, seed: int = 0,  # set by the run
        eta: float = 0.2,
        one_hot_factor: float = 0.625,
        sweep_repeats: int = 1,
        exploit_meta_steps: int = 4,
        warmup_meta_steps: int = 1,
        normalize: bool = True,
        ema: float | None = None,
        prior: Sequence[float] | None = None,
    ):
        super().__init__(n_tasks, target, seed, eta, one_hot_factor, sweep_repeats, exploit_meta_steps,
                         warmup_meta_steps, normalize, ema, "target", prior)
