"""The built-in benchmark: synthetic tasks with known ground truth.

Four binary tasks over one input space (R^d), sharing one label space and,
by default, one head (like XNLI languages):

* ``target`` -- the low-resource task: ``y = 1[w . x + a (v . x)^2 > a]`` with
  a few dozen training examples and a large test split.
* ``helpful`` -- the same rule on slightly shifted inputs (a "translate-train"
  copy): thousands of examples that teach the target's rule.  Mixing it in
  raises the target's accuracy.
* ``harmful`` -- inputs from the target's distribution but labels from a
  *conflicting* rule (``w_h`` at 120 degrees from ``w``): a source whose
  labelling convention disagrees.  Through the shared trunk and head it pulls
  the target's decision boundary the wrong way: mixing it in lowers the
  target's accuracy.
* ``irrelevant`` -- inputs from a far-away region (mean shifted by 6 along a
  direction orthogonal to ``w`` and ``v``) with an independent rule: it neither
  teaches nor contradicts the target; it only takes a share of the budget.

Everything is deterministic from ``data_seed``.  The ground truth: the best
static mixture puts most weight on ``helpful``, some on ``target``, and none on
``harmful`` or ``irrelevant``.
"""

from __future__ import annotations

import numpy as np

from ..config import SYNTHETIC_TASKS, SyntheticConfig
from .tasks import Split, Task

TASK_NAMES = SYNTHETIC_TASKS
ROLES = {"target": "target", "helpful": "helpful", "harmful": "harmful", "irrelevant": "irrelevant"}


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def make_tasks(cfg: SyntheticConfig | None = None) -> list[Task]:
    """Generate the four tasks (in :data:`TASK_NAMES` order)."""
    cfg = cfg or SyntheticConfig()
    d = cfg.dim
    rng = np.random.default_rng([cfg.data_seed, 0xB3AC])
    # orthonormal directions: w (rule), v (curvature), o (offset of the irrelevant domain), u (its rule)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    w, v, o, u = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    w_h = _unit(np.cos(np.deg2rad(120)) * w + np.sin(np.deg2rad(120)) * q[:, 4])
    a = 0.5

    def rule(x: np.ndarray, direction: np.ndarray) -> np.ndarray:
        return (x @ direction + a * (x @ v) ** 2 > a).astype(np.int64)

    def noisy(y: np.ndarray, rate: float | None = None) -> np.ndarray:
        flip = rng.random(len(y)) < (cfg.label_noise if rate is None else rate)
        return np.where(flip, 1 - y, y)

    def target_x(n: int) -> np.ndarray:
        return rng.standard_normal((n, d)).astype(np.float32)

    def split(x: np.ndarray, direction: np.ndarray, rate: float | None = None) -> Split:
        return Split(x.astype(np.float32), noisy(rule(x, direction), rate))

    shift = cfg.helpful_shift * _unit(rng.standard_normal(d))
    tasks = [
        Task(
            "target",
            train=split(target_x(cfg.n_target), w, cfg.target_label_noise),
            validation=split(target_x(cfg.n_test), w, cfg.target_label_noise),
            test=split(target_x(cfg.n_test), w, 0.0),
            num_labels=2,
            meta={"role": "target"},
        ),
        Task("helpful", train=split(target_x(cfg.n_helpful) + shift, w), num_labels=2, meta={"role": "helpful"}),
        Task("harmful", train=split(target_x(cfg.n_harmful), w_h), num_labels=2, meta={"role": "harmful"}),
        Task("irrelevant", train=_irrelevant(target_x(cfg.n_irrelevant) + 6.0 * o, u, noisy), num_labels=2,
             meta={"role": "irrelevant"}),
    ]
    return tasks


def _irrelevant(x: np.ndarray, u: np.ndarray, noisy) -> Split:
    return Split(x.astype(np.float32), noisy((x @ u > 0).astype(np.int64)))
