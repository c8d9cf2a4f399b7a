"""Rewards: what the policy learns from at the end of each meta-step.

Every reward returns one number per task (a scalar reward is the same number
for every task) and feeds the same REINFORCE update (:mod:`taskmix.strategies.policy`).

================== ========= ===================================================== =====================================
name               per task  what it measures                                      extra cost per meta-step
================== ========= ===================================================== =====================================
accuracy           no        the paper's: target metric on the reward split          1 evaluation of the reward split
loss               no        minus the target's reward-split loss (smoother)        1 evaluation of the reward split
gradient_alignment yes       ``g_i . g_T / |g_T|^2`` (``search.similarity: dot``,    backward passes over the reward split
                             the default): the first-order drop of the target's      (twice: whole and in credit_groups
                             reward-split loss per unit step on task i (shared       chunks) and n_tasks x probe_batches
                             parameters); ``cosine``: MultiDDS's cosine; with a      batches (in credit_groups groups);
                             standard error per task (``last_se``)                   no optimiser steps
lookahead          yes       for each task, ``probe_steps`` optimiser steps on a      n_tasks x probe_steps training steps
                             copy of the model; reward = drop of the target's        + (n_tasks + 1) reward-split evaluations
                             reward-split loss
mixture_lookahead  yes       the marginal value of each task's share *in the        2 x n_tasks x probe_steps training steps
                             current mixture*: ``probe_steps`` steps on the policy's (n_tasks = 2: 2 x probe_steps)
                             mixture with the task's logit raised and lowered by    + 2 x n_tasks reward-split evaluations
                             ``tilt``, common random numbers; reward = the central
                             difference of the target's reward-split loss drop
constant           no        control: always 1 (no information)                     none
shuffled:NAME      yes       control: NAME's per-task credits, randomly permuted     as NAME
                             across tasks each meta-step (no task identity)
================== ========= ===================================================== =====================================

When to use which: ``gradient_alignment`` is the cheap default and works when
tasks share parameters that matter (trunk, shared head); ``lookahead`` measures
the actual effect of training on each task (including optimiser effects and
non-linear interactions) at a few training steps per task and meta-step, so it
suits few tasks and expensive evaluation less; it rates each task *alone*, so
its policy runs toward the task whose dose helps most (a corner);
``mixture_lookahead`` rates each task's *share in the current mixture* (a
finite-difference gradient of the lookahead objective), so its policy comes to
rest where one more unit of any task's share buys as much as of any other (an
interior mixture when that is best), at lookahead's cost with two tasks and
twice it with more -- measured, its credit is noisier across seeds and it did
not beat ``lookahead`` (BENCHMARKS.md, *xnli-screen*); ``accuracy`` is the paper's and
is kept for comparison -- one scalar per meta-step says little about *which*
task helped (see :mod:`taskmix.strategies.policy`).  Run the controls to check that a
reward learns more than its exploration prior.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol

import numpy as np
import torch

from ..data.tasks import Split, metric_score
from ..engine.trainer import Trainer
from ..errors import ConfigError
from ..registry import Registry


@dataclass
class RewardContext:
    """What a reward sees at the end of a meta-step: the trainer, the target, the reward split, the probe stream."""
    trainer: Trainer
    target: int
    reward_split: Split
    batch_size: int
    rng: np.random.Generator  # for probe batches and controls; part of the search state
    meta_step: int
    target_rows: np.ndarray | None = None  # cross-fitting: the target rows outside the reward fold (probes draw there)
    mixture: np.ndarray | None = None  # the policy's task probabilities of the row being rewarded (before exploration)


class Reward(Protocol):
    """A reward: one value per task from a :class:`RewardContext`.

    ``per_task``: whether the values differ by task.  ``cross_fit``: whether the credit holds up when the
    reward split is a fold the model trained on in earlier meta-steps (``search.reward_folds: auto`` uses
    cross-fitting only then): gradient directions do; a loss or accuracy measured on such a fold is
    flattered by what the model memorised, so a reward built on one does not.
    """
    name: str
    per_task: bool
    cross_fit: bool

    def __call__(self, ctx: RewardContext) -> np.ndarray:
        """The meta-step's reward, one value per task."""
        ...


def _probe_batch(ctx: RewardContext, task: int, size: int | None = None) -> tuple[Any, torch.Tensor, torch.Tensor]:
    rows = ctx.target_rows if task == ctx.target else None
    n = ctx.trainer.tasks[task].n_train if rows is None else len(rows)
    k = min(size or ctx.batch_size, n)
    ex = ctx.rng.choice(n, size=k, replace=False)
    if rows is not None:
        ex = rows[ex]
    tids = np.full(k, task, dtype=np.int64)
    return ctx.trainer.batch(tids, ex)


def _probe_step(tr: Trainer, x: Any, y: torch.Tensor, t: torch.Tensor) -> None:
    """One optimiser step of a probe on the trainer's model (no step count, no loss bookkeeping)."""
    tr.model.train()
    loss = tr.model.per_sample_loss(x, y, t).mean()
    tr.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    tr.optimizer.step()


@contextmanager
def _training_rng_kept() -> Iterator[None]:
    """Probes must not change the training stream (dropout): torch's CPU and CUDA RNG states are put back."""
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def _reward_batch(ctx: RewardContext) -> tuple[Any, torch.Tensor, torch.Tensor]:
    s = ctx.reward_split
    x = ctx.trainer.split_inputs(s)
    y = torch.from_numpy(s.y).to(ctx.trainer.device)
    t = torch.full((len(s),), ctx.target, dtype=torch.long, device=ctx.trainer.device)
    return x, y, t


class AccuracyReward:
    """The paper's reward: the target's metric on the reward split."""

    name = "accuracy"
    per_task = False
    cross_fit = False

    def __call__(self, ctx: RewardContext) -> np.ndarray:
        """The target's metric on the reward split, for every task."""
        m = metric_score(ctx.trainer.tasks[ctx.target].metric, ctx.trainer.metric(ctx.reward_split, ctx.target))
        return np.full(len(ctx.trainer.tasks), m)


class LossReward:
    """Minus the target's mean cross-entropy on the reward split."""

    name = "loss"
    per_task = False
    cross_fit = False

    def __call__(self, ctx: RewardContext) -> np.ndarray:
        """Minus the target's reward-split loss, for every task."""
        _, loss = ctx.trainer.predict(ctx.reward_split, ctx.target)
        return np.full(len(ctx.trainer.tasks), -loss)


class GradientAlignmentReward:
    """Alignment of each task's training gradient with the target's reward-split gradient, with its standard error.

    ``credit_i = g_i . g_T / |g_T|^2`` (``similarity: dot``; the first-order drop of the target's
    reward-split loss per unit step on task ``i``, relative to a step on the reward split itself) or the
    cosine.  ``g_i`` is the mean gradient of ``probe_batches x batch_size`` examples of task ``i``.

    Standard error (``last_se``, one per task): the probe examples are taken in ``groups`` equal groups
    and the reward split in up to ``groups`` equal chunks; the credit's variance is estimated by the
    delta method from the spread of the group credits ``g_i^b . g_T`` (probe noise) and of the chunk
    credits ``g_i . g_T^j`` (reward-split noise, which does *not* average out over meta-steps: the
    reward split is the same every time).  ``last_se_parts`` keeps the two parts apart.
    """

    name = "gradient_alignment"
    per_task = True
    cross_fit = True

    def __init__(self, probe_batches: int = 4, similarity: str = "dot", groups: int = 4):
        self.probe_batches = probe_batches
        self.similarity = similarity
        self.groups = max(1, int(groups))
        self.last_se: np.ndarray | None = None
        self.last_se_parts: tuple[np.ndarray, np.ndarray] | None = None

    def __call__(self, ctx: RewardContext) -> np.ndarray:
        """Each task's gradient alignment with the target's reward-split gradient (the training stream is untouched)."""
        with _training_rng_kept():
            return self._credit(ctx)

    def _credit(self, ctx: RewardContext) -> np.ndarray:
        tr = ctx.trainer
        params = tr.model.shared_parameters()
        xr, yr, tr_ids = _reward_batch(ctx)
        g_target = tr.flat_grad(xr, yr, tr_ids, params)
        chunks = _chunks(len(yr), self.groups)
        g_chunks = [tr.flat_grad(_index(xr, c), _index(yr, c), _index(tr_ids, c), params) for c in chunks] if len(chunks) > 1 else []
        n = len(tr.tasks)
        out, var_probe, var_target = np.zeros(n), np.zeros(n), np.zeros(n)
        gt_sq = float(g_target.norm() ** 2)
        for i in range(n):
            # the same probe examples as one batch of probe_batches x batch_size, taken in equal groups
            x, y, t = _probe_batch(ctx, i, self.probe_batches * ctx.batch_size)
            groups = _chunks(len(y), self.groups)
            if len(groups) > 1:
                gs = [tr.flat_grad(_index(x, c), _index(y, c), _index(t, c), params) for c in groups]
                sizes = torch.tensor([len(c) for c in groups], dtype=gs[0].dtype, device=gs[0].device)
                g = (torch.stack(gs) * sizes[:, None]).sum(0) / sizes.sum()
            else:
                gs, g = [], tr.flat_grad(x, y, t, params)
            if self.similarity == "cosine":
                denom = float(g.norm()) * float(g_target.norm())
            else:  # first-order drop of the target's reward-split loss per unit step, relative to its own
                denom = gt_sq
            if denom <= 0:
                continue
            out[i] = float(g @ g_target) / denom
            if len(gs) > 1:
                v = np.asarray([float(gb @ g_target) / denom for gb in gs])
                var_probe[i] = v.var(ddof=1) / len(v)
            if len(g_chunks) > 1:
                v = np.asarray([float(g @ gj) / denom for gj in g_chunks])
                var_target[i] = v.var(ddof=1) / len(v)
        self.last_se_parts = (np.sqrt(var_probe), np.sqrt(var_target))
        self.last_se = np.sqrt(var_probe + var_target)
        return out


def _chunks(n: int, k: int) -> list[torch.Tensor]:
    """``min(k, n // 2)`` contiguous, near-equal index chunks of ``range(n)`` (one chunk if that is < 2)."""
    k = min(int(k), n // 2)
    if k < 2:
        return [torch.arange(n)]
    return [c for c in torch.tensor_split(torch.arange(n), k)]


def _index(x: Any, idx: torch.Tensor) -> Any:
    if isinstance(x, torch.Tensor):
        return x.index_select(0, idx.to(x.device))
    return [x[int(i)] for i in idx]


class LookaheadReward:
    """For each task: a few optimiser steps on it from the current state; reward = target loss drop."""

    name = "lookahead"
    per_task = True
    cross_fit = False

    def __init__(self, probe_steps: int = 5):
        self.probe_steps = probe_steps

    def __call__(self, ctx: RewardContext) -> np.ndarray:
        """Each task's drop of the target's reward-split loss after ``probe_steps`` steps on a copy of the model."""
        tr = ctx.trainer
        snapshot = copy.deepcopy(tr.state_dict())
        _, base = tr.predict(ctx.reward_split, ctx.target)
        out = np.zeros(len(tr.tasks))
        with _training_rng_kept():
            for i in range(len(tr.tasks)):
                for _ in range(self.probe_steps):
                    _probe_step(tr, *_probe_batch(ctx, i))
                _, after = tr.predict(ctx.reward_split, ctx.target)
                out[i] = base - after
                tr.load_state_dict(copy.deepcopy(snapshot))
        return out


class MixtureLookaheadReward:
    """The marginal value of each task's share in the policy's mixture, by central differences in logit space.

    With ``pi = softmax(theta)`` the policy's mixture (``ctx.mixture``) and ``D(q)`` the drop of the
    target's reward-split loss after ``probe_steps`` optimiser steps on batches drawn from mixture ``q``
    (from a copy of the model), the reward estimates ``g_k = dD/dtheta_k`` by
    ``(D(softmax(theta + tilt e_k)) - D(softmax(theta - tilt e_k))) / (2 tilt)`` and returns
    ``g_k / pi_k``: the marginal value of task ``k``'s share, ``dD/dpi_k`` minus its ``pi``-weighted mean.
    The REINFORCE update (:mod:`taskmix.strategies.policy`) then moves the logits along ``g``: the policy
    stops where every task's marginal value is the same, which is an interior mixture when the best one
    is interior -- unlike :class:`LookaheadReward`, which rates each task alone.

    Common random numbers: every probe of a meta-step uses the same uniform draw per batch slot (a slot's
    task is the inverse CDF of the probe's mixture at it), the same example per slot and task, and the
    same dropout seed, so two probes differ only in the slots whose task their mixtures assign
    differently.  With two tasks, ``g_2 = -g_1`` exactly, so one pair of probes is run.
    """

    name = "mixture_lookahead"
    per_task = True
    cross_fit = False

    def __init__(self, probe_steps: int = 5, tilt: float = 1.0):
        if not tilt > 0:
            raise ConfigError(f"search.tilt: expected a positive logit shift, got {tilt}")
        self.probe_steps = int(probe_steps)
        self.tilt = float(tilt)

    def __call__(self, ctx: RewardContext) -> np.ndarray:
        """Each task's marginal value ``g_k / pi_k`` (see the class docstring); the training stream is untouched."""
        tr = ctx.trainer
        n = len(tr.tasks)
        pi = np.full(n, 1.0 / n) if ctx.mixture is None else np.asarray(ctx.mixture, dtype=np.float64)
        if pi.shape != (n,) or not np.all(np.isfinite(pi)) or np.any(pi < 0) or pi.sum() <= 0:
            raise ValueError(f"mixture_lookahead: the context's mixture must be {n} non-negative numbers, got {pi}")
        pi = np.maximum(pi / pi.sum(), 1e-12)
        theta = np.log(pi)
        steps, bs = self.probe_steps, ctx.batch_size
        # common random numbers: one uniform per slot, one example per slot and task, one dropout seed
        u = ctx.rng.random((steps, bs))
        ex = np.empty((n, steps, bs), dtype=np.int64)
        for i in range(n):
            rows = ctx.target_rows if i == ctx.target else None
            size = tr.tasks[i].n_train if rows is None else len(rows)
            e = ctx.rng.integers(0, size, size=(steps, bs))
            ex[i] = e if rows is None else rows[e]
        torch_seed = int(ctx.rng.integers(0, 2**62))
        snapshot = copy.deepcopy(tr.state_dict())

        def drop(q: np.ndarray) -> float:
            cdf = np.cumsum(q)
            cdf /= cdf[-1]
            torch.manual_seed(torch_seed)
            for s in range(steps):
                tids = np.minimum(np.searchsorted(cdf, u[s], side="right"), n - 1).astype(np.int64)
                _probe_step(tr, *tr.batch(tids, ex[tids, s, np.arange(bs)]))
            _, after = tr.predict(ctx.reward_split, ctx.target)
            tr.load_state_dict(copy.deepcopy(snapshot))
            return -float(after)  # the base loss cancels in the difference

        def tilted(k: int, sign: float) -> np.ndarray:
            th = theta.copy()
            th[k] += sign * self.tilt
            e = np.exp(th - th.max())
            return e / e.sum()

        g = np.zeros(n)
        with _training_rng_kept():
            for k in range(1 if n == 2 else n):
                g[k] = (drop(tilted(k, +1.0)) - drop(tilted(k, -1.0))) / (2 * self.tilt)
        if n == 2:
            g[1] = -g[0]
        return g / pi


class ConstantReward:
    """Control: the same reward every meta-step -- the policy learns nothing but drift."""

    name = "constant"
    per_task = False
    cross_fit = True

    def __call__(self, ctx: RewardContext) -> np.ndarray:
        """1 for every task."""
        return np.ones(len(ctx.trainer.tasks))


class ShuffledReward:
    """Control: a per-task reward with the task identities randomly permuted each meta-step."""

    per_task = True

    def __init__(self, base: Reward):
        if not base.per_task:
            raise ConfigError(f"search.reward: 'shuffled:{base.name}' needs a per-task reward; {base.name!r} is scalar")
        self.base = base
        self.name = f"shuffled:{base.name}"
        self.cross_fit = base.cross_fit

    def __call__(self, ctx: RewardContext) -> np.ndarray:
        """The base reward's credits, permuted across tasks."""
        r = self.base(ctx)
        return r[ctx.rng.permutation(len(r))]


REWARDS: Registry[Callable[[Any], Reward]] = Registry("reward", field="search.reward")
"""Every reward, by its ``search.reward`` name: a factory taking the ``search`` config section.

Metadata ``per_task``: whether the reward credits each task (the exact policy
gradient applies) or is one scalar for all.
"""
REWARDS.register("accuracy", lambda s: AccuracyReward(), per_task=False)
REWARDS.register("loss", lambda s: LossReward(), per_task=False)
REWARDS.register("gradient_alignment", lambda s: GradientAlignmentReward(s.probe_batches, s.similarity, s.credit_groups),
                 per_task=True)
REWARDS.register("lookahead", lambda s: LookaheadReward(s.probe_steps), per_task=True)
REWARDS.register("mixture_lookahead", lambda s: MixtureLookaheadReward(s.probe_steps, s.tilt), per_task=True)
REWARDS.register("constant", lambda s: ConstantReward(), per_task=False)


def _shuffled(base: str) -> Callable[[Any], Reward]:
    """The ``shuffled:<base>`` control of a per-task reward ``base``."""
    if base not in REWARDS or not REWARDS.meta(base, "per_task"):
        per_task = [n for n in REWARDS if REWARDS.meta(n, "per_task")]
        raise ValueError(f"shuffled: needs a per-task reward, one of {per_task}")
    build = REWARDS.get(base)
    return lambda s: ShuffledReward(build(s))


REWARDS.register_family("shuffled:", _shuffled, placeholder="per-task reward", per_task=True)


def make_reward(name: str, search_cfg: Any) -> Reward:
    """Build a reward from its config name (``search.reward``); unknown names list the valid ones."""
    return REWARDS.get(name)(search_cfg)
