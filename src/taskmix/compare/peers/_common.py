"""What the peers share: a short proxy run on a mixture, scored on the target's reward split, in one direction.

Every score a peer minimises goes through :func:`proxy_objective`: the target's reward-split loss, or its metric
signed by :func:`taskmix.data.tasks.metric_sign` (so a lower-is-better metric needs no change here).
"""

from __future__ import annotations

import math

import numpy as np

from ...data.tasks import metric_sign
from ...engine.trainer import Trainer
from ...replay.sampler import TaskSampler
from ...runs.job import Job
from ...schedule import Schedule

__all__ = ["proxy_objective", "proxy_steps", "train_proxy"]


def proxy_steps(job: Job, fraction: float) -> int:
    """Optimiser steps of a proxy run that is ``fraction`` of a plain run (at least 1)."""
    return max(1, int(math.ceil(fraction * job.cfg.train.steps)))


def train_proxy(job: Job, weights: np.ndarray, steps: int, seed: int) -> Trainer:
    """A fresh model trained ``steps`` steps at ``train.batch_size`` on the job's tasks mixed by ``weights``."""
    cfg = job.cfg
    sched = Schedule.from_weights(job.names, weights, provenance={"method": "proxy"})
    tr = Trainer(job.tasks, cfg, seed, total_steps=steps)
    sampler = TaskSampler(sched, cfg.train.batch_size, [t.n_train for t in job.tasks], seed=seed, per=cfg.train.per)
    for _ in range(steps):
        tr.train_step(*sampler.next_batch())
    return tr


def proxy_objective(tr: Trainer, job: Job, score: str) -> float:
    """What a peer minimises on the target's reward split (never the reported split): ``loss`` (cross-entropy)
    or ``metric`` (the task's metric, negated when higher is better)."""
    ev = tr.evaluate(job.reward_split, job.target)
    if score == "loss":
        return float(ev["loss"])
    metric = job.tasks[job.target].metric
    return -metric_sign(metric) * float(ev[metric])
