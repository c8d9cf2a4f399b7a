"""Schedules: the static artifact of a search, and the rule-based mixtures.

A :class:`Schedule` is a table of task weights, one row per meta-step (or a
single row for a time-invariant mixture).  It is the seam between search and
reuse: anyone can replay it with :class:`taskmix.replay.sampler.TaskSampler` (or the
PyTorch / Hugging Face adapters) without any policy optimisation.

File format (JSON)::

    {"format": "taskmix.schedule/1",
     "tasks": ["rte", "mnli"],
     "steps_per_meta_step": 200,
     "weights": [[0.6, 0.4], [0.7, 0.3]],
     "provenance": {...}}

One row of ``weights`` is time-invariant; with several rows, row ``m`` holds
for training steps ``[m*N, (m+1)*N)`` and the last row holds past the end.

Rule-based strategies are small functions that return weights (as in seqio's
``mixing_rate_num_examples``); :meth:`Schedule.from_weights` normalises them in
one place.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import DuplicateKeyError, ScheduleError, unique_keys
from ..files import atomic_write_text, read_input

FORMAT = "taskmix.schedule/1"
TOLERANCE = 1e-6
MAX_STEPS = 2**53
"""The largest run length (``total_steps``) the schedule tools take: steps stay exact in a float."""

__all__ = ["FORMAT", "MAX_STEPS", "TOLERANCE", "Schedule", "check_schedule", "jsonable", "positive_int"]


def _check_rows(weights: Any, n_tasks: int, where: str) -> np.ndarray:
    if not isinstance(weights, (list, tuple, np.ndarray)) or len(weights) == 0:
        raise ScheduleError(f"{where}: 'weights' must be a non-empty list of rows, got {type(weights).__name__}")
    rows = []
    for m, row in enumerate(weights):
        if isinstance(row, np.ndarray):
            row = row.tolist()
        if not isinstance(row, (list, tuple)):
            raise ScheduleError(f"{where}: weights[{m}] must be a list of {n_tasks} numbers, got {type(row).__name__}")
        if len(row) != n_tasks:
            raise ScheduleError(f"{where}: weights[{m}] has {len(row)} entries, expected {n_tasks} (one per task)")
        vals = []
        for i, v in enumerate(row):
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
                raise ScheduleError(f"{where}: weights[{m}][{i}] must be a number, got {v!r}")
            try:
                v = float(v)
            except OverflowError:  # an integer beyond the float range
                raise ScheduleError(f"{where}: weights[{m}][{i}] is too large, expected a weight in [0, 1]") from None
            if not math.isfinite(v):
                raise ScheduleError(f"{where}: weights[{m}][{i}] is {v}, expected a finite number")
            if v < 0:
                raise ScheduleError(f"{where}: weights[{m}][{i}] is {v}, expected a non-negative number")
            vals.append(v)
        try:
            s = math.fsum(vals)
        except OverflowError:
            s = math.inf
        if abs(s - 1.0) > TOLERANCE:
            raise ScheduleError(f"{where}: weights[{m}] sums to {s:.9g}, expected 1 (within {TOLERANCE:g})")
        rows.append(vals)
    return np.asarray(rows, dtype=np.float64)


@dataclass(frozen=True)
class Schedule:
    """Task weights over meta-steps. Validated on construction."""

    tasks: tuple[str, ...]
    weights: np.ndarray  # (n_rows, n_tasks), rows sum to 1
    steps_per_meta_step: int = 1
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = str(self.provenance.get("_source", "schedule")) if isinstance(self.provenance, dict) else "schedule"
        tasks = self.tasks
        if isinstance(tasks, (str, bytes)) or not isinstance(tasks, (list, tuple)) or len(tasks) == 0:
            raise ScheduleError(f"{where}: 'tasks' must be a non-empty list of task names")
        for i, t in enumerate(tasks):
            if not isinstance(t, str) or not t:
                raise ScheduleError(f"{where}: tasks[{i}] must be a non-empty string, got {t!r}")
        if len(set(tasks)) != len(tasks):
            dup = sorted({t for t in tasks if list(tasks).count(t) > 1})
            raise ScheduleError(f"{where}: 'tasks' has duplicate names {dup}")
        spm = self.steps_per_meta_step
        if isinstance(spm, bool) or not isinstance(spm, (int, np.integer)) or spm < 1:
            raise ScheduleError(f"{where}: 'steps_per_meta_step' must be a positive integer, got {spm!r}")
        if not isinstance(self.provenance, dict):
            raise ScheduleError(f"{where}: 'provenance' must be an object, got {type(self.provenance).__name__}")
        w = _check_rows(self.weights, len(tasks), where)
        # rows are stored as given (already within tolerance of 1) so that a JSON round trip is exact
        w.setflags(write=False)
        object.__setattr__(self, "tasks", tuple(tasks))
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "steps_per_meta_step", int(spm))
        prov = {k: v for k, v in self.provenance.items() if k != "_source"}
        object.__setattr__(self, "provenance", prov)

    # ------------------------------------------------------------------ access
    @property
    def n_tasks(self) -> int:
        """Number of tasks."""
        return len(self.tasks)

    @property
    def n_rows(self) -> int:
        """Number of weight rows (1 for a time-invariant schedule)."""
        return int(self.weights.shape[0])

    @property
    def time_invariant(self) -> bool:
        """Whether the schedule has one row."""
        return self.n_rows == 1

    def row_index(self, step: int) -> int:
        """Meta-step row that holds at training step ``step`` (last row past the end)."""
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
            raise TypeError(f"step must be an integer (a training step), got {type(step).__name__}")
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        return int(min(step // self.steps_per_meta_step, self.n_rows - 1))

    def weights_at(self, step: int) -> np.ndarray:
        """The task weights in force at training step ``step``."""
        return self.weights[self.row_index(step)]

    def mean_weights(self, total_steps: int | None = None) -> np.ndarray:
        """Average weights over ``total_steps`` steps (default: all rows equally)."""
        if total_steps is None:
            return self.weights.mean(axis=0)
        if isinstance(total_steps, bool) or not isinstance(total_steps, (int, np.integer)) or not 0 <= total_steps <= MAX_STEPS:
            raise ValueError(f"total_steps must be an integer in [0, 2^53], got {str(total_steps)[:40]}")
        counts = self.row_steps(int(total_steps))
        return (counts[:, None] * self.weights).sum(axis=0) / max(int(total_steps), 1)

    def row_steps(self, total_steps: int) -> np.ndarray:
        """How many of the first ``total_steps`` training steps each row holds for (computed, not enumerated)."""
        n = self.steps_per_meta_step
        starts = np.arange(self.n_rows, dtype=np.int64) * n
        counts = np.clip(int(total_steps) - starts, 0, n)
        counts[-1] = max(int(total_steps) - int(starts[-1]), 0)
        return counts

    def weight_of(self, task: str) -> np.ndarray:
        """``task``'s weight in every row."""
        return self.weights[:, self.index(task)]

    def index(self, task: str) -> int:
        """The position of ``task`` (:class:`ScheduleError` if absent)."""
        try:
            return self.tasks.index(task)
        except ValueError:
            raise ScheduleError(f"schedule: unknown task {task!r}; it has {list(self.tasks)}") from None

    def restrict_to(self, tasks: Sequence[str], source: str = "schedule", allow_missing: bool = False) -> "Schedule":
        """Check that the schedule's tasks match ``tasks`` and reorder to that order.

        A schedule that does not name every task of ``tasks`` is refused unless
        ``allow_missing`` (then the tasks it omits get weight 0).
        """
        unknown = [t for t in self.tasks if t not in tasks]
        if unknown:
            raise ScheduleError(f"{source}: unknown task(s) {_short_list(unknown)}; the config has {_short_list(tasks)}")
        missing = [t for t in tasks if t not in self.tasks]
        if missing and not allow_missing:
            raise ScheduleError(
                f"{source}: names {len(self.tasks)} of the {len(tasks)} tasks, not {_short_list(missing)}; "
                "list every task (weight 0 to leave one out) or pass --allow-missing-tasks"
            )
        idx = [self.tasks.index(t) if t in self.tasks else -1 for t in tasks]
        w = np.zeros((self.n_rows, len(tasks)))
        for j, i in enumerate(idx):
            if i >= 0:
                w[:, j] = self.weights[:, i]
        return Schedule(tuple(tasks), w, self.steps_per_meta_step, dict(self.provenance))

    # ------------------------------------------------------------ persistence
    def drop_below(self, min_weight: float, keep: Sequence[str] = ()) -> "Schedule":
        """This schedule with every weight below ``min_weight`` set to exactly 0, each row renormalised.

        Tasks in ``keep`` (e.g. the target) are never dropped; a row whose weights would all be dropped keeps
        its largest.  ``provenance`` gains ``min_weight`` and ``dropped`` (the tasks at 0 in every row).

        >>> s = Schedule.from_weights(["t", "a", "b"], [0.70, 0.27, 0.03])
        >>> s.drop_below(0.05, keep=["t"]).weights[0].round(3).tolist()
        [0.722, 0.278, 0.0]
        """
        if not (isinstance(min_weight, (int, float)) and not isinstance(min_weight, bool)
                and 0.0 <= float(min_weight) < 1.0):
            raise ValueError(f"min_weight: expected a number in [0, 1), got {min_weight!r}")
        unknown = [k for k in keep if k not in self.tasks]
        if unknown:
            raise ValueError(f"keep: unknown task(s) {unknown}; the schedule's tasks are {list(self.tasks)}")
        if min_weight <= 0.0:
            return self
        w = np.array(self.weights, dtype=np.float64)
        drop = w < min_weight
        for k in keep:
            drop[:, self.tasks.index(k)] = False
        for i in range(len(w)):
            if drop[i].all():
                drop[i, int(np.argmax(w[i]))] = False
        w[drop] = 0.0
        dropped = [t for j, t in enumerate(self.tasks) if bool(np.all(w[:, j] == 0.0))]
        prov = {**self.provenance, "min_weight": float(min_weight), "dropped": dropped}
        return Schedule.from_weights(self.tasks, w, self.steps_per_meta_step, prov)

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-compatible values."""
        return {
            "format": FORMAT,
            "tasks": list(self.tasks),
            "steps_per_meta_step": self.steps_per_meta_step,
            "weights": [[float(v) for v in row] for row in self.weights],
            "provenance": jsonable(self.provenance),
        }

    def to_json(self) -> str:
        """The ``taskmix.schedule/1`` JSON text."""
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def save(self, path: str | os.PathLike) -> Path:
        """Write the schedule as JSON (atomic); returns the path."""
        path = Path(path)
        atomic_write_text(path, self.to_json())
        return path

    @classmethod
    def from_dict(cls, d: Any, source: str = "schedule") -> "Schedule":
        """Validate and build a schedule from its ``taskmix.schedule/1`` mapping; errors name ``source``."""
        if not isinstance(d, dict):
            raise ScheduleError(f"{source}: expected a JSON object at the top level, got {type(d).__name__}")
        fmt = d.get("format")
        if fmt != FORMAT:
            raise ScheduleError(f"{source}: 'format' must be {FORMAT!r}, got {fmt!r}")
        allowed = {"format", "tasks", "steps_per_meta_step", "weights", "provenance"}
        extra = sorted(set(d) - allowed)
        if extra:
            raise ScheduleError(f"{source}: unknown key(s) {extra}; expected only {sorted(allowed)}")
        for key in ("tasks", "steps_per_meta_step", "weights"):
            if key not in d:
                raise ScheduleError(f"{source}: missing key {key!r}")
        prov = d.get("provenance", {})
        if not isinstance(prov, dict):
            raise ScheduleError(f"{source}: 'provenance' must be an object, got {type(prov).__name__}")
        tasks = d["tasks"]
        if not isinstance(tasks, list):
            raise ScheduleError(f"{source}: 'tasks' must be a list of task names, got {type(tasks).__name__}")
        return cls(tuple(tasks), d["weights"], d["steps_per_meta_step"], {**prov, "_source": source})

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "schedule") -> "Schedule":
        """Parse and validate ``taskmix.schedule/1`` JSON text."""
        try:
            d = json.loads(text, object_pairs_hook=unique_keys)
        except DuplicateKeyError as e:
            raise ScheduleError(f"{source}: {e}; each key may appear once") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            line = f":{e.lineno}" if isinstance(e, json.JSONDecodeError) else ""
            why = e.msg if isinstance(e, json.JSONDecodeError) else f"not UTF-8: {e.reason}"
            raise ScheduleError(f"{source}{line}: not valid JSON ({why})") from None
        except RecursionError:
            raise ScheduleError(f"{source}: JSON nested too deeply") from None
        except ValueError as e:  # e.g. an integer literal beyond Python's digit limit
            raise ScheduleError(f"{source}: not valid JSON ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
        return cls.from_dict(d, source)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Schedule":
        """Read and validate a schedule file."""
        path = Path(path)
        data = read_input(path, "schedule file", "a schedule JSON file", ScheduleError)
        return cls.from_json(data, str(path))

    # ----------------------------------------------------------- constructors
    @classmethod
    def from_weights(
        cls,
        tasks: Sequence[str],
        weights: Sequence[float] | Sequence[Sequence[float]] | np.ndarray,
        steps_per_meta_step: int = 1,
        provenance: Mapping[str, Any] | None = None,
    ) -> "Schedule":
        """Build from unnormalised non-negative weights (one row or many)."""
        if isinstance(tasks, (str, bytes)) or not isinstance(tasks, (Sequence, np.ndarray)):
            raise TypeError(f"tasks must be a list of task names, got {type(tasks).__name__}"
                            + (" (a string would be read as one task per character)" if isinstance(tasks, str) else ""))
        try:
            a = np.asarray(weights)
        except ValueError:  # ragged rows
            raise ScheduleError(f"weights: expected shape (rows, {len(tasks)}), got rows of different lengths") from None
        if a.dtype.kind not in "iuf":
            raise TypeError(f"weights must be real numbers (not {'booleans' if a.dtype.kind == 'b' else 'strings' if a.dtype.kind in 'US' else a.dtype})")
        w = a.astype(np.float64)
        if w.ndim == 1:
            w = w[None, :]
        if w.ndim != 2 or w.shape[1] != len(tasks):
            raise ScheduleError(f"weights: expected shape (rows, {len(tasks)}), got {tuple(w.shape)}")
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ScheduleError("weights: expected finite, non-negative numbers")
        s = w.sum(axis=1, keepdims=True)
        if np.any(s <= 0):
            raise ScheduleError("weights: every row needs at least one positive weight")
        return cls(tuple(tasks), w / s, steps_per_meta_step, dict(provenance or {}))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Schedule):
            return NotImplemented
        return (
            self.tasks == other.tasks
            and self.steps_per_meta_step == other.steps_per_meta_step
            and self.weights.shape == other.weights.shape
            and bool(np.array_equal(self.weights, other.weights))
        )

    def __repr__(self) -> str:
        rows = "; ".join(", ".join(f"{t}={v:.3f}" for t, v in zip(self.tasks, r)) for r in self.weights[:3])
        more = f" ... ({self.n_rows} rows)" if self.n_rows > 3 else ""
        return f"Schedule({rows}{more}, steps_per_meta_step={self.steps_per_meta_step})"


def _short_list(items: Sequence[str], n: int = 8, width: int = 40) -> str:
    """A list of names for a message: at most ``n`` of them, each cut to ``width`` characters."""
    shown = [t if len(t) <= width else t[: width - 3] + "..." for t in map(str, list(items)[:n])]
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return f"{shown}{more}"




def jsonable(x: Any) -> Any:
    """``x`` as JSON values: NumPy scalars and arrays to numbers and lists, non-finite floats to ``None``."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)


# -------------------------------------------------- argument checks (every replay adapter and export shares them)


def positive_int(name: str, value: Any) -> int:
    """``value`` as an int, refusing anything but a positive integer (bools included)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_schedule(schedule: Any) -> None:
    """Refuse anything but a :class:`~taskmix.schedule.Schedule`."""
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a taskmix.schedule.Schedule, got {type(schedule).__name__}")
