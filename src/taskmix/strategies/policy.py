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

from typing import Any, Sequence

import numpy as np

from ..errors import NonFiniteRewardError, state_int, state_keys, state_real, state_reals
from ..schedule import Schedule
from .base import MAX_ABS_REWARD, bool_arg, choice_arg, int_arg, real_arg, reals_arg, softmax


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
        prior: Sequence[float] | np.ndarray | None = None,
    ):
        # every argument is checked here, at the call (bounds as the config's search.* fields)
        n_tasks = int_arg("n_tasks", n_tasks, 1, 2**20)
        target = int_arg("target", target, 0, n_tasks - 1)
        n_rows = int_arg("n_rows", n_rows, 1, 10**6)
        if n_rows * n_tasks > 2**27:
            raise ValueError(f"n_rows x n_tasks must be at most 2^27 logits, got {n_rows} x {n_tasks}")
        epsilon = real_arg("epsilon", epsilon, 0.0, 1.0)
        gamma = real_arg("gamma", gamma, 0.0, 1.0)
        if not epsilon <= gamma:
            raise ValueError(f"need 0 <= epsilon <= gamma <= 1, got epsilon={epsilon}, gamma={gamma}")
        self.n_tasks = n_tasks
        self.target = target
        self.epsilon = epsilon
        self.gamma = gamma
        self.lr = real_arg("lr", lr, 0.0, lo_open=True)
        self.sgd_steps = int_arg("sgd_steps", sgd_steps, 1, 10**5)
        self.baseline_kind = choice_arg("baseline", baseline, ("none", "moving_average"))
        self.baseline_decay = real_arg("baseline_decay", baseline_decay, 0.0, 1.0, hi_open=True)
        self.normalize = bool_arg("normalize", normalize)
        self.entropy = real_arg("entropy", entropy, 0.0, 1e6)
        self.shrink = real_arg("shrink", shrink, 0.0)
        self.prior_pull = real_arg("prior_pull", prior_pull, 0.0)
        if prior is None:
            self.prior = np.full(self.n_tasks, 1.0 / self.n_tasks)
        else:
            if isinstance(prior, (str, bytes, dict)) or not hasattr(prior, "__len__"):
                raise TypeError(f"prior must be a sequence of {self.n_tasks} positive weights, got {type(prior).__name__}")
            try:
                q = np.asarray(prior, dtype=np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"prior must be a sequence of {self.n_tasks} positive weights (numbers)") from None
            with np.errstate(over="ignore"):
                total = q.sum()
            if q.shape != (self.n_tasks,) or not np.all(np.isfinite(q)) or np.any(q <= 0) or not np.isfinite(total):
                raise ValueError(f"prior must be {self.n_tasks} finite positive weights (the policy starts from it), "
                                 f"got {str(q.tolist())[:80]}")
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
        return softmax(self.logits[self._row_arg(row)])

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
        row = self._row_arg(row)
        k = int_arg("k", k, 0, 2**27)
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
        row = self._row_arg(row)
        shares = reals_arg("shares", shares, self.n_tasks, bound=1e300, lo=0.0)
        if not shares.sum() > 0 or not np.isfinite(shares.sum()):
            raise ValueError(f"shares must be {self.n_tasks} finite non-negative numbers with a positive sum")
        shares = shares / shares.sum()
        r = self.rewards_arg(rewards)
        if se is not None:
            se = reals_arg("se", se, self.n_tasks, lo=0.0)
        kept = (self.baseline, self.scale)
        adv = self.advantages(r, shares)
        if self.shrink > 0 and se is not None:
            adv = self.shrink_advantages(adv, shares, se, r)
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
            with np.errstate(over="ignore", invalid="ignore"):  # checked below: a diverging update is refused
                theta += self.lr * g
            if not np.all(np.isfinite(theta)):
                break
        if not np.all(np.isfinite(theta)):  # refused before anything changes: the policy stays as it was
            self.baseline, self.scale = kept
            raise NonFiniteRewardError(
                f"the policy update of row {row} diverged (non-finite logits) with lr={self.lr:g}, "
                f"sgd_steps={self.sgd_steps}, prior_pull={self.prior_pull:g}, entropy={self.entropy:g}; lower lr "
                "(with prior_pull > 0, keep lr x prior_pull below 1)")
        self.logits[row] = theta
        self.updates += 1
        return {
            "rewards": r.tolist(),
            "advantages": adv.tolist(),
            "baseline": self.baseline,
            "probs_before": before.tolist(),
            "probs_after": self.probs(row).tolist(),
        }

    def rewards_arg(self, rewards: Any, name: str = "rewards") -> np.ndarray:
        """``rewards`` (one real number, or one per task) as ``n_tasks`` floats; :class:`TypeError` for anything
        else, :class:`~taskmix.errors.NonFiniteRewardError` (a ``ValueError``) for a value that is not finite or
        beyond :data:`~taskmix.strategies.base.MAX_ABS_REWARD` (1e12) in magnitude."""
        what = f"{name} must be a real number or {self.n_tasks} of them (one per task)"
        if isinstance(rewards, (bool, np.bool_, str, bytes, dict)):
            raise TypeError(f"{what}, got {type(rewards).__name__}")
        if isinstance(rewards, (int, float, np.integer, np.floating)):
            try:
                x = float(rewards)
            except OverflowError:  # an integer beyond the float range
                x = np.inf if rewards > 0 else -np.inf
            a = np.full(self.n_tasks, x)
        elif hasattr(rewards, "__len__"):
            try:
                a = np.asarray(rewards)
            except (TypeError, ValueError):  # ragged, or not numbers
                raise TypeError(f"{what}, got {str(rewards)[:40]!r}") from None
        else:
            raise TypeError(f"{what}, got {type(rewards).__name__}")
        if (a.dtype == bool or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating))
                or isinstance(rewards, (list, tuple)) and any(isinstance(x, (bool, np.bool_)) for x in rewards)):
            raise TypeError(f"{what}, got {str(rewards)[:40]!r}")
        if a.shape != (self.n_tasks,):
            raise ValueError(f"{name}: expected {self.n_tasks} values (one per task), got shape {a.shape}")
        r = a.astype(np.float64)
        if not np.all(np.isfinite(r) & (np.abs(r) <= MAX_ABS_REWARD)):
            raise NonFiniteRewardError(f"{name} must be finite numbers with |r| <= {MAX_ABS_REWARD:g}, got "
                                       f"{str(r.tolist())[:120]}")
        return r

    def _row_arg(self, row: Any) -> int:
        return int_arg("row", row, 0, self.logits.shape[0] - 1)

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

    def check_state_dict(self, state: Any, where: str = "policy") -> None:
        """Refuse (``ValueError`` naming the field) a state this policy cannot continue from: logits that are not
        ``n_rows x n_tasks`` finite numbers, another prior, a baseline or scale that is not a finite number (or is
        missing after an update / present before one), a negative update count."""
        state_keys(state, where, ("logits", "baseline", "scale", "updates"), ("prior",))
        rows, n = self.logits.shape
        logits = state["logits"]
        if not isinstance(logits, list) or len(logits) != rows:
            raise ValueError(f"{where}.logits: expected {rows} row(s) of {n} numbers (policy {rows} x {n} tasks)")
        for i, row in enumerate(logits):
            state_reals(row, f"{where}.logits[{i}]", n)
        if "prior" in state:
            prior = state_reals(state["prior"], f"{where}.prior", n, 0.0, 1.0)
            if not np.allclose(np.asarray(prior, dtype=np.float64), self.prior, rtol=0, atol=1e-12):
                raise ValueError(f"{where}.prior: policy state is for the prior {str(prior)[:80]}; this policy's prior is "
                                 f"{str(self.prior.tolist())[:80]}")
        updates = state_int(state["updates"], f"{where}.updates", 0, 2**53)
        state_real(state["baseline"], f"{where}.baseline", none=True)
        state_real(state["scale"], f"{where}.scale", 0.0, none=True)
        for key, used in (("baseline", self.baseline_kind == "moving_average"), ("scale", self.normalize)):
            if (state[key] is not None) != (used and updates > 0):
                raise ValueError(f"{where}.{key}: {'missing' if state[key] is None else 'set'} after {updates} update(s) "
                                 f"(baseline {self.baseline_kind}, normalize {self.normalize})")

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict` (checked first: :meth:`check_state_dict`)."""
        self.check_state_dict(state)
        logits = np.asarray(state["logits"], dtype=np.float64)
        self.logits = logits
        self.baseline = state["baseline"]
        self.scale = state["scale"]
        self.updates = int(state["updates"])
