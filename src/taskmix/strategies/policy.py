"""The sampling policy: softmax logits over tasks, exploration, and the REINFORCE update.

* Logits: one vector for the whole run (time-invariant) or one per meta-step
  (time-variant), initialised at the *prior*: uniform (all zeros) unless a
  prior mixture ``q`` is given, then ``log q`` (centred); see ``search.prior``.
* Exploration, exactly as in the paper, per sample: draw ``p ~ U(0, 1)``; if
  ``p < epsilon`` a uniformly random task, if ``epsilon <= p < gamma`` the
  primary (target) task, otherwise a task from the policy.
* Update at the end of each meta-step: REINFORCE on the draws of that
  meta-step.  With ``c_i`` the share of the meta-step's draws that picked task
  ``i`` and ``A_i`` the advantage credited to task ``i``, the surrogate
  ``J(theta) = sum_i c_i A_i log softmax(theta)_i`` is maximised by
  ``sgd_steps`` steps of gradient ascent with learning rate ``lr`` (paper:
  100 steps at 0.001).  This is the paper's update, with the per-sample sum of
  ``R * grad log pi(a_k)`` grouped by task and averaged over samples.

  - A *scalar* reward (the paper's target accuracy) gives every task the same
    ``A_i = R - b``; its update is ``(R - b)(c - pi)``: it can only tell the
    tasks apart through the ~1/sqrt(N) deviation of the realised mix ``c`` from
    the policy.
  - A *per-task* reward (gradient alignment, lookahead) gives each task its own
    credit ``A_i = r_i - b``; the update is then ``c_i A_i - pi_i sum_j c_j A_j``:
    tasks with more credit than average gain weight.

  ``b`` is a moving-average baseline (``baseline: none`` is the paper), and with
  ``normalize`` the advantages are divided by their running root-mean-square,
  so that ``lr`` means the same for every reward's scale.

* Robustness (both off by default in this class; see ``search.shrink`` and
  ``search.prior_pull`` for the search's defaults):

  - *variance-aware update* (``shrink = z > 0``, with per-task standard errors
    ``se`` passed to :meth:`update`): each task's credit relative to the
    policy-weighted mean, ``A_i - sum_j w_j A_j``, is soft-thresholded by
    ``z se_i`` (moved toward 0 by that much, and set to 0 if within it), so a
    credit within its noise does not move the policy;
  - *pull toward the prior* (``prior_pull = k > 0``): every SGD step adds
    ``-k (theta - theta_0)`` (an L2 penalty toward the prior's logits
    ``theta_0``), so the logits settle where the credit balances the pull
    instead of running to a corner on a small, persistent credit difference.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import NonFiniteRewardError
from ..schedule import Schedule
from .base import softmax


class Policy:
    """Softmax task-sampling policy with the paper's exploration and REINFORCE update."""

    def __init__(
        self,
        n_tasks: int,
        target: int,
        n_rows: int = 1,
        epsilon: float = 0.1,
        gamma: float = 0.2,
        lr: float = 0.05,
        sgd_steps: int = 100,
        baseline: str = "moving_average",
        baseline_decay: float = 0.9,
        normalize: bool = True,
        entropy: float = 0.0,
        shrink: float = 0.0,
        prior_pull: float = 0.0,
        prior: np.ndarray | list[float] | None = None,
    ):
        if not 0 <= epsilon <= gamma <= 1:
            raise ValueError(f"need 0 <= epsilon <= gamma <= 1, got epsilon={epsilon}, gamma={gamma}")
        if not 0 <= target < n_tasks:
            raise ValueError(f"target index {target} out of range for {n_tasks} tasks")
        if baseline not in ("none", "moving_average"):
            raise ValueError(f"baseline must be 'none' or 'moving_average', got {baseline!r}")
        self.n_tasks = int(n_tasks)
        self.target = int(target)
        self.epsilon = float(epsilon)
        self.gamma = float(gamma)
        self.lr = float(lr)
        self.sgd_steps = int(sgd_steps)
        self.baseline_kind = baseline
        self.baseline_decay = float(baseline_decay)
        self.normalize = bool(normalize)
        self.entropy = float(entropy)
        self.shrink = float(shrink)
        self.prior_pull = float(prior_pull)
        if prior is None:
            self.prior = np.full(self.n_tasks, 1.0 / self.n_tasks)
        else:
            q = np.asarray(prior, dtype=np.float64)
            if q.shape != (self.n_tasks,) or not np.all(np.isfinite(q)) or np.any(q <= 0):
                raise ValueError(f"prior must be {self.n_tasks} finite positive weights (the policy starts from it), got {q.tolist()}")
            self.prior = q / q.sum()
        logq = np.log(self.prior)
        self.theta0 = logq - logq.mean()  # the prior's logits (all zeros for the uniform prior)
        self.logits = np.tile(self.theta0, (int(n_rows), 1))
        self.baseline: float | None = None
        self.scale: float | None = None
        self.updates = 0

    @property
    def time_variant(self) -> bool:
        """Whether the policy has one logit row per meta-step."""
        return self.logits.shape[0] > 1

    def probs(self, row: int = 0) -> np.ndarray:
        """The policy's task probabilities of ``row`` (before exploration)."""
        return softmax(self.logits[row])

    def exploration_mixture(self, row: int = 0) -> np.ndarray:
        """The marginal task distribution of :meth:`sample` (policy mixed with exploration)."""
        q = (1.0 - self.gamma) * self.probs(row)
        q += self.epsilon / self.n_tasks
        q[self.target] += self.gamma - self.epsilon
        return q

    def sample(self, rng: np.random.Generator, row: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``k`` tasks by the paper's rule.

        Returns ``(tasks, branch)`` where ``branch`` is 0 for uniform
        exploration, 1 for the primary task, 2 for the policy.
        """
        p = rng.random(k)
        uni = rng.integers(0, self.n_tasks, size=k)
        cdf = np.cumsum(self.probs(row))
        pol = np.minimum(np.searchsorted(cdf / cdf[-1], rng.random(k), side="right"), self.n_tasks - 1)
        branch = np.where(p < self.epsilon, 0, np.where(p < self.gamma, 1, 2))
        tasks = np.where(branch == 0, uni, np.where(branch == 1, self.target, pol)).astype(np.int64)
        return tasks, branch

    # ----------------------------------------------------------------- update
    def advantages(self, rewards: np.ndarray, shares: np.ndarray) -> np.ndarray:
        """``A = (r - b) / scale`` and the running baseline / scale update."""
        r = np.asarray(rewards, dtype=np.float64)
        mean_r = float(np.dot(shares, r))
        if self.baseline_kind == "moving_average":
            if self.baseline is None:
                self.baseline = mean_r
            adv = r - self.baseline
            self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * mean_r
        else:
            adv = r.copy()
        if self.normalize:
            ms = float(np.mean(adv**2))
            self.scale = ms if self.scale is None else self.baseline_decay * self.scale + (1 - self.baseline_decay) * ms
            if self.scale > 1e-12:
                adv = adv / np.sqrt(self.scale)
        return adv

    @staticmethod
    def surrogate_grad(logits: np.ndarray, shares: np.ndarray, adv: np.ndarray) -> np.ndarray:
        """Gradient of ``sum_i shares_i adv_i log softmax(logits)_i`` w.r.t. the logits."""
        wa = shares * adv
        return wa - softmax(logits) * wa.sum()

    def update(self, row: int, shares: np.ndarray, rewards: np.ndarray | float, se: np.ndarray | None = None) -> dict[str, Any]:
        """REINFORCE update of ``row`` from this meta-step's task shares and rewards.

        Args:
            row: which logit vector (0 for time-invariant).
            shares: fraction of the meta-step's draws that picked each task.
            rewards: one scalar (broadcast to all tasks) or one credit per task.
            se: optional standard error of each task's credit (the variance-aware update uses it).
        """
        shares = np.asarray(shares, dtype=np.float64)
        if shares.shape != (self.n_tasks,) or not np.all(np.isfinite(shares)) or shares.sum() <= 0:
            raise ValueError(f"shares must be {self.n_tasks} finite non-negative numbers with a positive sum")
        shares = shares / shares.sum()
        r = np.broadcast_to(np.asarray(rewards, dtype=np.float64), (self.n_tasks,))
        if not np.all(np.isfinite(r)):
            raise NonFiniteRewardError(f"rewards must be finite, got {r.tolist()}")
        adv = self.advantages(r, shares)
        if self.shrink > 0 and se is not None:
            adv = self.shrink_advantages(adv, shares, np.asarray(se, dtype=np.float64), r)
        before = self.probs(row)
        theta = self.logits[row].copy()
        for _ in range(self.sgd_steps):
            g = self.surrogate_grad(theta, shares, adv)
            if self.entropy:
                p = softmax(theta)
                logp = np.log(np.maximum(p, 1e-300))
                g -= self.entropy * p * (logp - np.dot(p, logp))
            if self.prior_pull:
                g -= self.prior_pull * (theta - self.theta0)
            theta += self.lr * g
        self.logits[row] = theta
        self.updates += 1
        return {
            "rewards": r.tolist(),
            "advantages": adv.tolist(),
            "baseline": self.baseline,
            "probs_before": before.tolist(),
            "probs_after": self.probs(row).tolist(),
        }

    def shrink_advantages(self, adv: np.ndarray, shares: np.ndarray, se: np.ndarray, rewards: np.ndarray) -> np.ndarray:
        """Soft-threshold each task's centred advantage by ``shrink`` x its standard error (same units)."""
        if se.shape != (self.n_tasks,) or not np.all(np.isfinite(se)) or np.any(se < 0):
            raise ValueError(f"se must be {self.n_tasks} finite non-negative numbers")
        raw = rewards - float(np.dot(shares, rewards))
        centred = adv - float(np.dot(shares, adv))
        # the advantage's units: adv = (r - b) / scale, so the credit's se scales the same way
        ratio = np.divide(centred, raw, out=np.ones_like(raw), where=np.abs(raw) > 1e-15)
        unit = float(np.median(np.abs(ratio))) if np.any(np.abs(raw) > 1e-15) else 1.0
        thr = self.shrink * se * unit
        return np.sign(centred) * np.maximum(np.abs(centred) - thr, 0.0)

    def start_row(self, row: int, init: str = "previous") -> None:
        """Before the first visit of a time-variant row: copy the previous row's logits (``init='previous'``);
        with ``init='uniform'`` the row keeps its start, the prior's logits."""
        if init == "previous" and row > 0:
            self.logits[row] = self.logits[row - 1]

    # --------------------------------------------------------------- artifact
    def to_schedule(self, tasks: list[str], steps_per_meta_step: int, provenance: dict[str, Any] | None = None) -> Schedule:
        """The learned schedule: the softmax of every row, ``steps_per_meta_step`` steps each."""
        return Schedule.from_weights(tasks, softmax(self.logits), steps_per_meta_step, provenance)

    def state_dict(self) -> dict[str, Any]:
        """The complete state, for checkpoints; :meth:`load_state_dict` restores it exactly."""
        return {
            "logits": self.logits.tolist(),
            "prior": self.prior.tolist(),
            "baseline": self.baseline,
            "scale": self.scale,
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`."""
        logits = np.asarray(state["logits"], dtype=np.float64)
        if logits.shape != self.logits.shape:
            raise ValueError(f"policy state has logits of shape {logits.shape}, expected {self.logits.shape}")
        if "prior" in state and not np.allclose(np.asarray(state["prior"], dtype=np.float64), self.prior, rtol=0, atol=1e-12):
            raise ValueError(f"policy state is for the prior {state['prior']}; this policy's prior is {self.prior.tolist()}")
        self.logits = logits
        self.baseline = state["baseline"]
        self.scale = state["scale"]
        self.updates = int(state["updates"])
