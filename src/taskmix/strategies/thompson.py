"""Beta-Bernoulli Thompson sampling over tasks (AutoSeM stage 1, Guo et al., 2019)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .base import MetaStepInfo, Strategy, bool_arg, choice_arg, int_arg, real_arg

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
    state_arrays = (
        ("alpha", "alpha"), ("beta", "beta"), ("successes", "successes"), ("failures", "failures"),
        ("current", "_current"), ("last_theta", "last_theta"),
    )
    drawn_state = ("current", "last_theta")
    feedback = frozenset({"reward_metric"})

    def __init__(
        self, n_tasks: int, target: int = 0, seed: int = 0,  # set by the run
        prior: tuple[float, float] = (1.0, 1.0),
        decay: float = 0.3,
        mode: str = "argmax",
        strict: bool = False,
        mc_samples: int = 2000,
    ):
        super().__init__(n_tasks, target, seed)
        if isinstance(prior, (str, bytes)) or not isinstance(prior, (tuple, list, np.ndarray)) or len(prior) != 2:
            raise TypeError(f"thompson: prior must be a pair (a0, b0) of positive numbers, got {str(prior)[:40]}")
        a0, b0 = (real_arg(f"thompson: prior[{i}]", v, 0.0, 1e12, lo_open=True) for i, v in enumerate(prior))
        self.prior = (a0, b0)
        self.decay = real_arg("thompson: decay", decay, 0.0, 1.0)
        self.mode = choice_arg("thompson: mode", mode, ("argmax", "mix"))
        self.strict = bool_arg("thompson: strict", strict)
        self.mc_samples = int_arg("thompson: mc_samples", mc_samples, 1, max(1, 2**24 // self.n_tasks))
        self.alpha = np.full(self.n_tasks, a0)
        self.beta = np.full(self.n_tasks, b0)
        self.successes = np.zeros(self.n_tasks)
        self.failures = np.zeros(self.n_tasks)
        self.last_theta = np.zeros(self.n_tasks)
        self._current = self._draw()

    def reseed(self, seed: int) -> None:
        """Restart the random stream from ``seed`` (what was learned is kept)."""
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
        """The task distribution in force at training step ``step`` (pure)."""
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
        """The per-task credit drawn from ``info``."""
        r = self.success(info)
        return np.zeros(self.n_tasks) if not math.isfinite(r) else r * self.credit(info)

    def update(self, meta_step: int, info: MetaStepInfo) -> None:
        """Learn from one meta-step's feedback."""
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
        """The Beta posterior's mean success probability per task."""
        return self.alpha / (self.alpha + self.beta)

    def log_extra(self, info: MetaStepInfo | None = None) -> dict[str, Any]:
        """The posterior, the last draw and, given the meta-step's ``info``, its binary reward."""
        out: dict[str, Any] = {"alpha": self.alpha.tolist(), "beta": self.beta.tolist(),
                               "posterior_mean": self.posterior_mean().tolist(), "theta": self.last_theta.tolist()}
        if info is not None:
            out["success"] = self.success(info)
        return out

    def hyper_parameters(self) -> dict[str, Any]:
        """The constructor arguments that define this strategy."""
        return {"prior": list(self.prior), "decay": self.decay, "mode": self.mode, "strict": self.strict,
                "mc_samples": self.mc_samples}
