"""RegMix (Liu et al., 2024, "RegMix: Data Mixture as Regression for Language Model Pre-training").

Short proxy runs on random mixtures, each scored on the target's reward split; a regression from the mixture to
that score; a search of the fitted surface (many random mixtures, the ``top_k`` best predicted averaged); the
answer retrained as a static schedule.  Settings: :class:`~taskmix.compare.peers.settings.RegMixSettings`.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> W = rng.dirichlet(np.ones(3), size=40)
>>> y = ((W - [0.6, 0.3, 0.1]) ** 2).sum(axis=1)          # a surface with its minimum at (0.6, 0.3, 0.1)
>>> fit = fit_surface(W, y, "quadratic", ridge=1e-6)
>>> search_surface(fit, np.ones(3), 20000, 50, rng).round(1).tolist()
[0.6, 0.3, 0.1]
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import ConfigError
from ...runs.job import Job, MethodResult, replay
from ...schedule import Schedule
from ._common import proxy_objective, proxy_steps, train_proxy
from .settings import RegMixSettings, peer_settings

__all__ = ["Surface", "fit_surface", "regmix_method", "sample_mixtures", "search_surface"]


@dataclass(frozen=True)
class Surface:
    """A fitted ridge regression from a mixture to the score (lower is better)."""

    kind: str  # "quadratic" or "linear"
    coef: np.ndarray  # over the standardised features
    mean: np.ndarray  # feature means and scales of the fit's data
    scale: np.ndarray
    intercept: float

    def predict(self, w: np.ndarray) -> np.ndarray:
        """Predicted scores of the mixtures ``w`` (rows)."""
        return self.intercept + ((features(w, self.kind) - self.mean) / self.scale) @ self.coef


def features(w: np.ndarray, kind: str) -> np.ndarray:
    """The regression's features of mixtures ``w`` (rows): the weights, and with ``quadratic`` their pairwise
    products (squares included)."""
    w = np.atleast_2d(np.asarray(w, dtype=np.float64))
    if kind == "linear":
        return w
    i, j = np.triu_indices(w.shape[1])
    return np.concatenate([w, w[:, i] * w[:, j]], axis=1)


def fit_surface(w: np.ndarray, y: np.ndarray, kind: str = "quadratic", ridge: float = 1e-3) -> Surface:
    """Ridge regression of ``y`` on :func:`features` of ``w`` (standardised; the intercept not penalised)."""
    if kind not in ("quadratic", "linear"):
        raise ValueError(f"kind must be 'quadratic' or 'linear', got {kind!r}")
    y = np.asarray(y, dtype=np.float64)
    x = features(w, kind)
    if x.shape[0] != y.shape[0] or x.shape[0] < 2:
        raise ValueError(f"fit_surface: need as many scores as mixtures (at least 2), got {x.shape[0]} and {y.shape[0]}")
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    z = (x - mean) / scale
    yc = y - y.mean()
    # ridge as least squares on the augmented system [z; sqrt(ridge) I] beta = [yc; 0]
    a = np.concatenate([z, np.sqrt(ridge * len(y)) * np.eye(z.shape[1])])
    b = np.concatenate([yc, np.zeros(z.shape[1])])
    coef = np.linalg.lstsq(a, b, rcond=None)[0]
    return Surface(kind, coef, mean, scale, float(y.mean()))


def sample_mixtures(alpha: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` mixtures drawn from Dirichlet(``alpha``); a task whose ``alpha`` is 0 always gets exactly 0."""
    alpha = np.asarray(alpha, dtype=np.float64)
    on = alpha > 0
    out = np.zeros((n, len(alpha)))
    out[:, on] = rng.dirichlet(alpha[on], size=n)
    return out


def search_surface(fit: Surface, alpha: np.ndarray, samples: int, top_k: int, rng: np.random.Generator) -> np.ndarray:
    """The average of the ``top_k`` lowest-predicted of ``samples`` mixtures drawn from Dirichlet(``alpha``)."""
    cand = sample_mixtures(alpha, samples, rng)
    pred = fit.predict(cand)
    best = np.argsort(pred, kind="stable")[: min(top_k, samples)]
    w = cand[best].mean(axis=0)
    return w / w.sum()


def _alpha(job: Job, s: RegMixSettings) -> np.ndarray:
    n = np.asarray([float(job.sizes[t]) for t in job.names])
    prior = np.ones(len(n)) if s.prior == "uniform" else n
    prior = prior / prior.sum()
    return s.concentration * len(n) * prior


def regmix_method(job: Job) -> MethodResult:
    """Method ``regmix``: proxy runs on Dirichlet mixtures, a ridge fit of the target's reward-split score, the
    fitted surface's best mixtures averaged, retrained.  Cost: ``proxy_runs * proxy_fraction`` plain runs of
    proxies, plus the retrain."""
    s = peer_settings(job.cfg, "regmix")
    if s.top_k > s.search_samples:
        raise ConfigError(f"compare.peers.regmix.top_k: {s.top_k} exceeds search_samples ({s.search_samples})")
    rng = np.random.default_rng([job.seed, 0x8E6A1])
    alpha = _alpha(job, s)
    mixtures = sample_mixtures(alpha, s.proxy_runs, rng)
    steps = proxy_steps(job, s.proxy_fraction)
    t0 = time.perf_counter()
    scores = []
    for i, w in enumerate(mixtures):
        tr = train_proxy(job, w, steps, seed=job.seed * 7919 + 1 + i)
        scores.append(proxy_objective(tr, job, s.score))
    fit = fit_surface(mixtures, np.asarray(scores), s.regression, s.ridge)
    w = search_surface(fit, alpha, s.search_samples, s.top_k, rng)
    seconds = time.perf_counter() - t0
    proxy_total = steps * s.proxy_runs
    sched = Schedule.from_weights(job.names, w, provenance={
        "method": "regmix", "peer": "RegMix (Liu et al., 2024)", "settings": s.model_dump(),
        "proxy_runs": s.proxy_runs, "proxy_steps": steps})
    extra: dict[str, Any] = {
        "search_seconds": seconds, "proxy_steps": steps, "proxy_runs": s.proxy_runs, "score": s.score,
        "proxies": [{"weights": m.tolist(), "score": float(v)} for m, v in zip(mixtures, scores)],
        "predicted": float(fit.predict(w)[0]),
        "cost_plain_runs": (proxy_total + job.cfg.train.steps) / job.cfg.train.steps,
    }
    return replay(job, sched, extra_seconds=seconds, extra_steps=proxy_total, evals=s.proxy_runs, extra=extra)
