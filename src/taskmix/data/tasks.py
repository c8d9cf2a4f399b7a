"""Tasks: a name, train / validation / test data, a label space and a metric.

A :class:`Task` holds feature arrays (``x``: float32, n x d; ``y``: int64, n).
Feature tasks come from NumPy ``.npz`` files (arrays ``x`` and ``y``) or from
the built-in synthetic benchmark (:mod:`taskmix.data.synthetic`); text tasks
(:mod:`taskmix.data.text`) are turned into the same arrays by a cached encoder, or
keep their text for the fine-tuning regime (``x`` is then a sequence of
``(text_a, text_b)`` pairs).

The *honest protocol* lives here too: :func:`carve_reward_split` takes the
reward split out of the target's training data, so that neither the search nor
model selection ever sees the reported split (test, else validation).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np

from ..errors import DataError

METRICS = ("accuracy", "macro_f1", "bits_per_byte")

HIGHER_IS_BETTER: dict[str, bool] = {"accuracy": True, "macro_f1": True, "bits_per_byte": False}
"""Each metric's direction: accuracy and macro-F1 are better higher, bits per byte (a language model's held-out
loss, :mod:`taskmix.data.corpora`) lower.  Every comparison of metric values goes through :func:`metric_sign`."""

METRIC_NAMES: dict[str, str] = {"accuracy": "accuracy", "macro_f1": "macro-F1", "bits_per_byte": "bits per byte"}
"""Each metric's name in reports."""


def metric_sign(metric: str | None) -> float:
    """``+1`` for a metric that is better higher (accuracy, macro-F1, unknown), ``-1`` for one that is better lower
    (bits per byte): ``sign * value`` is a score where higher is always better."""
    return -1.0 if metric is not None and not HIGHER_IS_BETTER.get(metric, True) else 1.0


def metric_score(metric: str | None, value: float) -> float:
    """``value`` of ``metric`` as a score in [0, 1] where higher is better: accuracy and macro-F1 as they are,
    bits per byte as ``2 ** -value`` (the geometric-mean probability of a byte).  What searches and online
    strategies that read the metric itself (the ``accuracy`` reward, Thompson sampling) are given."""
    return 2.0 ** -float(value) if metric == "bits_per_byte" else float(value)


def metric_label(metric: str | None) -> str:
    """The metric's name and direction for reports, e.g. ``bits per byte (lower is better)``."""
    if metric is None:
        return "metric (higher is better)"
    name = METRIC_NAMES.get(metric, metric)
    return f"{name} ({'higher' if metric_sign(metric) > 0 else 'lower'} is better)"


@dataclass(frozen=True)
class Split:
    """Inputs and integer labels of one split."""

    x: Any  # np.ndarray (n, d) float32, or a sequence of text pairs
    y: np.ndarray  # (n,) int64

    def __post_init__(self) -> None:
        y = np.asarray(self.y)
        object.__setattr__(self, "y", y.astype(np.int64, copy=False))
        if len(self.x) != len(y):
            raise DataError(f"split: x has {len(self.x)} rows but y has {len(y)}")

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def take(self, idx: np.ndarray) -> "Split":
        """The rows ``idx`` of this split."""
        if isinstance(self.x, np.ndarray):
            return Split(self.x[idx], self.y[idx])
        return Split([self.x[int(i)] for i in idx], self.y[idx])

    def concat(self, other: "Split") -> "Split":
        """This split's rows followed by ``other``'s (both feature arrays or both text)."""
        if isinstance(self.x, np.ndarray) != isinstance(other.x, np.ndarray):
            raise DataError("split: cannot join feature rows with text rows")
        x = np.concatenate([self.x, other.x]) if isinstance(self.x, np.ndarray) else [*self.x, *other.x]
        return Split(x, np.concatenate([self.y, other.y]))


@dataclass(frozen=True)
class Task:
    """One classification task."""

    name: str
    train: Split
    validation: Split | None = None
    test: Split | None = None
    num_labels: int | None = None
    label_names: tuple[str, ...] | None = None
    metric: str = "accuracy"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name:
            raise DataError("task: empty name")
        if self.metric not in METRICS:
            raise DataError(f"task {self.name!r}: metric must be one of {METRICS}, got {self.metric!r}")
        if len(self.train) == 0:
            raise DataError(f"task {self.name!r}: the train split is empty")
        for split_name in ("validation", "test"):
            s = getattr(self, split_name)
            if s is not None and len(s) == 0:
                raise DataError(f"task {self.name!r}: the {split_name} split is empty")
        ys = [s.y for s in (self.train, self.validation, self.test) if s is not None]
        ymin = min(int(y.min()) for y in ys)
        ymax = max(int(y.max()) for y in ys)
        if ymin < 0:
            raise DataError(f"task {self.name!r}: labels must be integers >= 0, found {ymin}")
        k = self.num_labels if self.num_labels is not None else max(ymax + 1, 2)
        if ymax >= k:
            raise DataError(f"task {self.name!r}: label {ymax} is out of range for {k} labels")
        object.__setattr__(self, "num_labels", int(k))
        if self.label_names is not None and len(self.label_names) != k:
            raise DataError(f"task {self.name!r}: {len(self.label_names)} label names for {k} labels")
        if isinstance(self.train.x, np.ndarray):
            d = self.train.x.shape[1] if self.train.x.ndim == 2 else None
            for split_name in ("train", "validation", "test"):
                s = getattr(self, split_name)
                if s is None:
                    continue
                if not isinstance(s.x, np.ndarray) or s.x.ndim != 2 or s.x.shape[1] != d:
                    raise DataError(f"task {self.name!r}: {split_name} features must be a 2-D array with {d} columns")
                if not np.all(np.isfinite(s.x)):
                    bad = int(np.argwhere(~np.isfinite(s.x))[0][0])
                    raise DataError(f"task {self.name!r}: {split_name} row {bad} has a non-finite feature")

    @property
    def n_train(self) -> int:
        """Training examples."""
        return len(self.train)

    @property
    def dim(self) -> int | None:
        """Feature dimension (``None`` for text inputs)."""
        x = self.train.x
        return int(x.shape[1]) if isinstance(x, np.ndarray) else None

    @property
    def report_split_name(self) -> str:
        """The split the target is reported on: ``test``, else ``validation``."""
        if self.test is not None:
            return "test"
        if self.validation is not None:
            return "validation"
        raise DataError(f"task {self.name!r}: the target needs a test or a validation split to report on")

    @property
    def report_split(self) -> Split:
        """The split the target is reported on (never seen by a search)."""
        return getattr(self, self.report_split_name)


def carve_reward_split(task: Task, fraction: float, seed: int) -> tuple[Task, Split]:
    """Split ``fraction`` of ``task.train`` off as the reward split (stratified by label).

    Returns the task with the reduced train split, and the reward split.  The
    reported split (test / validation) is untouched and never used for search.
    """
    if not 0.0 < fraction < 1.0:
        raise DataError(f"search.reward_fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng([int(seed), 0x5EED])
    y = task.train.y
    held: list[np.ndarray] = []
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        k = int(round(fraction * len(idx)))
        held.append(idx[:k])
    held_idx = np.sort(np.concatenate(held)) if held else np.array([], dtype=np.int64)
    if len(held_idx) == 0 or len(held_idx) == len(y):
        raise DataError(
            f"task {task.name!r}: train split of {len(y)} rows is too small to carve a reward split of {fraction:.0%}"
        )
    mask = np.ones(len(y), dtype=bool)
    mask[held_idx] = False
    keep_idx = np.flatnonzero(mask)
    return replace(task, train=task.train.take(keep_idx)), task.train.take(held_idx)



def stratified_folds(y: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """``k`` disjoint folds of ``range(len(y))`` covering it, each label dealt round-robin (stratified, seeded).

    Sorted index arrays; fold sizes differ by at most one per label.  :class:`DataError` when ``k`` is
    below 2 or above half the rows (a fold and its complement both need examples).
    """
    y = np.asarray(y)
    if k < 2 or 2 * k > len(y):
        raise DataError(f"search.reward_folds: {k} folds need 2 <= k <= {len(y) // 2} for {len(y)} target rows")
    rng = np.random.default_rng([int(seed), 0xF01D5])
    folds: list[list[np.ndarray]] = [[] for _ in range(k)]
    offset = 0
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        for j in range(k):  # continue the round-robin across labels so that fold sizes stay even
            folds[(j + offset) % k].append(idx[j::k])
        offset += len(idx) % k
    return [np.sort(np.concatenate(f)) for f in folds]


def check_same_dim(tasks: Sequence[Task]) -> int | None:
    """The common feature dimension of the tasks (``None`` for text); :class:`DataError` if they differ."""
    dims = {t.name: t.dim for t in tasks}
    distinct = {d for d in dims.values()}
    if len(distinct) > 1:
        raise DataError(f"tasks have different feature dimensions {dims}; all tasks must share one input space")
    return next(iter(distinct))
