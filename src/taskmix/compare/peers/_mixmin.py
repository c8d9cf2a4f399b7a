"""MixMin (Thudi et al., ICML 2025, "MixMin: Finding Data Mixtures via Convex Minimization").

One cheap model per task, trained on that task alone; each one's predictive distribution on the target's
reward split; then the mixture weights ``lam`` on the simplex minimising the reward split's cross-entropy of
the mixture of those distributions, ``-mean_r log sum_i lam_i p_i(y_r | x_r)`` -- a convex problem, solved with
SciPy's SLSQP (bounds and the sum constraint, so a useless task reaches weight exactly 0); the weights are
retrained as a static schedule.  Settings: :class:`~taskmix.compare.peers.settings.MixMinSettings`.

Label spaces.  With one shared head (``model.heads: shared``, one label space) a source's model predicts the
target's labels as it is.  With per-task heads the source's head speaks its own labels: by default
(``per_task_heads: exclude``) every auxiliary gets weight 0 and MixMin keeps the target alone (no proxy is trained);
``probe`` fits the target's head on each source model's frozen trunk (multinomial logistic regression on the
target's training rows, the reward split excluded) and mixes those probes -- which can give the target weight 0,
and a retrain then leaves the target's own head untrained.
The target's own model is trained on the target's training rows minus the reward split, so every model is scored
on rows it never saw (cross-fitted), and none sees the reported split.

Language modelling (``model.regime: lm``).  Every task's model speaks the same byte vocabulary, the paper's
generative case: ``p[i, t]`` is model ``i``'s probability of the reward split's byte ``t`` given its context (every
predicted byte of the held-out target windows), and the fit minimises the mixture's next-byte cross-entropy.

>>> import numpy as np
>>> p = np.array([[0.9, 0.8, 0.1, 0.7], [0.2, 0.3, 0.9, 0.6], [0.01, 0.01, 0.01, 0.01]])
>>> mixture_weights(p).round(3).tolist()   # the third model puts ~0 on every true label: weight exactly 0
[0.636, 0.364, 0.0]
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize

from ...engine.trainer import Trainer
from ...runs.job import Job, MethodResult, replay
from ...schedule import Schedule
from ._common import proxy_steps, train_proxy
from .settings import MixMinSettings, peer_settings

__all__ = ["mixmin_method", "mixture_weights", "target_probabilities"]

_EPS = 1e-12


def mixture_weights(p: np.ndarray, zero_below: float = 1e-6) -> np.ndarray:
    """The simplex weights minimising ``-mean_r log(sum_i w_i p[i, r])``.

    ``p[i, r]``: model ``i``'s probability of row ``r``'s true label.  SLSQP from the uniform mixture, with the
    analytic gradient; weights below ``zero_below`` are set to exactly 0 and the rest renormalised.
    """
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] < 1 or p.shape[1] < 1 or not np.all(np.isfinite(p)) or np.any(p < 0) or np.any(p > 1):
        raise ValueError(f"p: expected probabilities of shape (models, rows), got shape {p.shape}")
    k = p.shape[0]
    if k == 1:
        return np.ones(1)

    def f(w: np.ndarray) -> tuple[float, np.ndarray]:
        q = np.maximum(w @ p, _EPS)
        return float(-np.mean(np.log(q))), -(p / q).mean(axis=1)

    res = minimize(f, np.full(k, 1.0 / k), jac=True, method="SLSQP", bounds=[(0.0, 1.0)] * k,
                   constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones_like(w)}],
                   options={"ftol": 1e-12, "maxiter": 500})
    w = np.clip(res.x, 0.0, None)
    w[w < zero_below] = 0.0
    if not w.sum() > 0:
        w = np.full(k, 1.0 / k)
    return w / w.sum()


@torch.no_grad()
def _trunk_features(tr: Trainer, x: Any) -> torch.Tensor:
    tr.model.eval()
    bs = tr.cfg.train.eval_batch_size
    return torch.cat([tr.model.trunk(x[i:i + bs]) for i in range(0, len(x), bs)])


def _fit_head(h: torch.Tensor, y: torch.Tensor, k: int, steps: int, l2: float, seed: int) -> torch.nn.Linear:
    """Multinomial logistic regression of ``y`` on the features ``h`` (L-BFGS, L2 penalty ``l2``)."""
    torch.manual_seed(seed)
    head = torch.nn.Linear(h.shape[1], k).to(h.device)
    opt = torch.optim.LBFGS(head.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(head(h), y) + l2 * head.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return head


def target_probabilities(tr: Trainer, job: Job, source: int, s: MixMinSettings) -> np.ndarray:
    """The probability model ``tr`` (trained on task ``source`` alone) gives each reward-split row's true label
    (language modelling: each predicted byte of the reward split's windows, flattened)."""
    x = tr.split_inputs(job.reward_split)
    if tr.lm:  # one byte vocabulary: the probability of every predicted byte of the held-out windows
        with torch.no_grad():
            tr.model.eval()
            bs = max(1, tr.cfg.train.eval_batch_size // max(1, int(x.shape[1])))
            nll = torch.cat([tr.model.byte_nll(x[i:i + bs]).reshape(-1) for i in range(0, len(x), bs)])  # type: ignore[operator]
        return torch.exp(-nll.double()).clamp(0.0, 1.0).cpu().numpy()
    y = torch.from_numpy(job.reward_split.y).to(tr.device)
    if source == job.target or tr.model.shared_head:
        with torch.no_grad():
            tr.model.eval()
            bs = tr.cfg.train.eval_batch_size
            logits = torch.cat([tr.model.logits(x[i:i + bs], job.target) for i in range(0, len(x), bs)])
    else:
        tgt = job.tasks[job.target]
        h_train = _trunk_features(tr, tr.split_inputs(tgt.train))
        y_train = torch.from_numpy(tgt.train.y).to(tr.device)
        head = _fit_head(h_train, y_train, int(tgt.num_labels or 2), s.head_steps, s.head_l2, job.seed)
        with torch.no_grad():
            logits = head(_trunk_features(tr, x))
    prob = torch.softmax(logits.double(), dim=-1)
    return prob[torch.arange(len(y), device=prob.device), y].cpu().numpy()


def mixmin_method(job: Job) -> MethodResult:
    """Method ``mixmin``: one model per task on that task alone, the convex fit of the mixture of their predictive
    distributions to the target's reward split, retrained.  Cost: ``n_tasks * proxy_fraction`` plain runs,
    plus the retrain (and, with per-task heads, one small head fit per auxiliary)."""
    s = peer_settings(job.cfg, "mixmin")
    steps = proxy_steps(job, s.proxy_fraction)
    n = len(job.tasks)
    lm = job.cfg.model.regime == "lm"
    shared = job.cfg.model.heads == "shared" or lm
    heads = "one byte vocabulary (language modelling)" if lm else "shared" if shared else f"per-task heads: {s.per_task_heads}"
    used = list(range(n)) if shared or s.per_task_heads == "probe" else [job.target]
    t0 = time.perf_counter()
    rows = []
    if len(used) > 1:  # one source alone needs no fit (and no proxy)
        for i in used:
            tr = train_proxy(job, np.eye(n)[i], steps, seed=job.seed * 7919 + 1 + i)
            rows.append(target_probabilities(tr, job, i, s))
    p = np.stack(rows) if rows else np.zeros((1, len(job.reward_split)))
    w = np.zeros(n)
    w[used] = mixture_weights(p, s.zero_below) if len(used) > 1 else 1.0
    seconds = time.perf_counter() - t0
    runs = len(used) if len(used) > 1 else 0
    excluded = [job.names[i] for i in range(n) if i not in used]
    sched = Schedule.from_weights(job.names, w, provenance={
        "method": "mixmin", "peer": "MixMin (Thudi et al., ICML 2025)", "settings": s.model_dump(),
        "proxy_steps": steps, "heads": heads, "excluded": excluded})
    extra: dict[str, Any] = {
        "search_seconds": seconds, "proxy_steps": steps, "proxy_runs": runs, "excluded": excluded,
        "cost_plain_runs": (steps * runs + job.cfg.train.steps) / job.cfg.train.steps,
    }
    if runs:
        extra["source_loss"] = {job.names[i]: float(-np.mean(np.log(np.maximum(p[r], _EPS)))) for r, i in enumerate(used)}
        extra["mixture_loss"] = float(-np.mean(np.log(np.maximum(w[used] @ p, _EPS))))
    return replay(job, sched, extra_seconds=seconds, extra_steps=steps * runs, evals=runs, extra=extra)
