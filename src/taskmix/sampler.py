"""The sampler: replays any :class:`~taskmix.schedule.Schedule`, vectorised and resumable.

One sampler for every strategy (in contrast to one subclass per strategy, each
recomputing its probabilities and drawing one task at a time): the strategy is
the schedule, the sampler only replays it.

* Task draws: per sample within a batch (the paper), or one task for the whole
  batch (``per="batch"``).  Draws are a pure function of the seed and the
  number of draws made so far, so every data-parallel rank constructed with the
  same seed makes the same draws (ranks then split the global batch; see
  :mod:`taskmix.torch_data`).
* Examples within a task: shuffled passes without replacement, reshuffled each
  pass.  The permutation of pass ``k`` of task ``i`` is derived from
  ``(seed, i, k)``, so the state is two integers per task.
* ``state_dict()`` / ``load_state_dict()`` capture everything needed to resume
  mid-epoch and reproduce the same stream.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping, Sequence

import numpy as np

from .errors import check_state_matches
from .schedule import Schedule


def categorical(rng: np.random.Generator, p: np.ndarray, k: int) -> np.ndarray:
    """Draw ``k`` indices from the categorical distribution ``p`` (vectorised inverse CDF)."""
    cdf = np.cumsum(p, dtype=np.float64)
    cdf /= cdf[-1]
    u = rng.random(k)
    n = len(p)
    if n <= 16:  # a few comparisons per draw beat a binary search for few tasks
        out = np.zeros(k, dtype=np.int64)
        for c in cdf[:-1]:
            out += u >= c
    else:
        out = np.searchsorted(cdf, u, side="right").astype(np.int64)
    # guard against u == cdf[-1] rounding and zero-weight trailing tasks
    np.minimum(out, n - 1, out=out)
    return out


class ExampleStreams:
    """Per-task example indices: shuffled passes without replacement, reshuffled each pass."""

    def __init__(self, sizes: Sequence[int], seed: int = 0, shuffle: bool = True):
        self.sizes = [int(n) for n in sizes]
        if any(n <= 0 for n in self.sizes):
            raise ValueError(f"every task needs at least one example, got sizes {self.sizes}")
        self.seed = int(seed)
        self.shuffle = shuffle
        self.passes = [0] * len(self.sizes)  # number of the current pass per task
        self.cursors = [0] * len(self.sizes)  # position within the current pass
        self._perm_cache: dict[int, tuple[int, np.ndarray]] = {}

    def _perm(self, task: int, pass_no: int) -> np.ndarray:
        cached = self._perm_cache.get(task)
        if cached is not None and cached[0] == pass_no:
            return cached[1]
        n = self.sizes[task]
        if self.shuffle:
            # a counter-based generator keyed by (seed, task, pass): cheap to create, no state to carry
            key = np.array([self.seed & 0xFFFFFFFFFFFFFFFF, ((task & 0xFFFFFFFF) << 32) | (pass_no & 0xFFFFFFFF)], dtype=np.uint64)
            perm = np.random.Generator(np.random.Philox(key=key)).permutation(n)
        else:
            perm = np.arange(n)
        self._perm_cache[task] = (pass_no, perm)
        return perm

    def take(self, task: int, k: int) -> np.ndarray:
        """Next ``k`` example indices of ``task``."""
        out = np.empty(k, dtype=np.int64)
        filled = 0
        n = self.sizes[task]
        while filled < k:
            perm = self._perm(task, self.passes[task])
            c = self.cursors[task]
            m = min(k - filled, n - c)
            out[filled : filled + m] = perm[c : c + m]
            filled += m
            c += m
            if c == n:
                self.passes[task] += 1
                c = 0
            self.cursors[task] = c
        return out

    def take_for(self, task_ids: np.ndarray) -> np.ndarray:
        """Example index for each entry of ``task_ids`` (same length), in order."""
        out = np.empty(len(task_ids), dtype=np.int64)
        counts = np.bincount(task_ids, minlength=len(self.sizes))
        present = np.flatnonzero(counts)
        if len(present) == 1:
            out[:] = self.take(int(present[0]), len(task_ids))
            return out
        # positions grouped by task, in order (a stable radix sort for small integer types)
        small = task_ids.astype(np.int16 if len(self.sizes) < 2**15 else np.int64, copy=False)
        order = np.argsort(small, kind="stable")
        ends = np.cumsum(counts)
        for t in present:
            out[order[ends[t] - counts[t] : ends[t]]] = self.take(int(t), int(counts[t]))
        return out

    def state_dict(self) -> dict[str, Any]:
        """The complete state, for checkpoints; :meth:`load_state_dict` restores it exactly."""
        return {"seed": self.seed, "sizes": list(self.sizes), "passes": list(self.passes), "cursors": list(self.cursors)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`."""
        if list(state["sizes"]) != self.sizes:
            raise ValueError(f"example-stream state is for task sizes {state['sizes']}, not {self.sizes}")
        self.seed = int(state["seed"])
        self.passes = [int(v) for v in state["passes"]]
        self.cursors = [int(v) for v in state["cursors"]]
        self._perm_cache.clear()


class TaskSampler:
    """Replays a schedule: which task (and which example) each sample of each step uses.

    Args:
        schedule: the weights to replay.
        batch_size: samples per training step (the global batch under data parallelism).
        sizes: training-set size of each task (in schedule order); needed for
            :meth:`next_batch`, not for :meth:`next_tasks`.
        seed: all randomness derives from it.
        per: ``"sample"`` draws a task per sample (the paper); ``"batch"`` one task per batch.
        prefetch: steps drawn at once (tasks and examples, vectorised); the
            draws are the same for any value, only the cost per step changes.

    Draws are made ``prefetch`` steps at a time; the state records where the
    current block started and how far it has been served, so a resumed
    sampler regenerates the block and continues exactly.
    """

    def __init__(
        self,
        schedule: Schedule,
        batch_size: int,
        sizes: Sequence[int] | None = None,
        seed: int = 0,
        per: Literal["sample", "batch"] = "sample",
        prefetch: int = 1024,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if per not in ("sample", "batch"):
            raise ValueError(f"per must be 'sample' or 'batch', got {per!r}")
        if prefetch < 1:
            raise ValueError(f"prefetch must be >= 1, got {prefetch}")
        if sizes is not None and len(sizes) != schedule.n_tasks:
            raise ValueError(f"{len(sizes)} sizes for {schedule.n_tasks} tasks")
        self.schedule = schedule
        self.batch_size = int(batch_size)
        self.per = per
        self.seed = int(seed)
        self.prefetch = int(prefetch)
        self._rng = np.random.Generator(np.random.PCG64([self.seed, 0x7A5C]))
        self.examples = ExampleStreams(sizes, seed=self.seed) if sizes is not None else None
        self._drawn = 0  # steps drawn from the RNG
        self._block: tuple[np.ndarray, np.ndarray | None] | None = None
        self._block_start: dict[str, Any] | None = None
        self._pos = 0

    @property
    def step(self) -> int:
        """Number of steps served so far (the schedule row follows it)."""
        if self._block is None:
            return self._drawn
        return self._drawn - len(self._block[0]) + self._pos

    def _draw(self, n_steps: int) -> np.ndarray:
        out = np.empty((n_steps, self.batch_size), dtype=np.int64)
        s = 0
        while s < n_steps:
            row = self.schedule.row_index(self._drawn)
            if row == self.schedule.n_rows - 1:
                span = n_steps - s
            else:
                span = min(n_steps - s, (row + 1) * self.schedule.steps_per_meta_step - self._drawn)
            p = self.schedule.weights[row]
            if self.per == "batch":
                out[s : s + span] = categorical(self._rng, p, span)[:, None]
            else:
                out[s : s + span] = categorical(self._rng, p, span * self.batch_size).reshape(span, self.batch_size)
            s += span
            self._drawn += span
        return out

    def _refill(self) -> None:
        self._block_start = {
            "drawn": self._drawn,
            "rng": self._rng.bit_generator.state,
            "examples": self.examples.state_dict() if self.examples is not None else None,
        }
        tasks = self._draw(self.prefetch)
        ex = None
        if self.examples is not None:
            ex = self.examples.take_for(tasks.ravel()).reshape(tasks.shape)
        self._block = (tasks, ex)
        self._pos = 0

    def _next(self) -> tuple[np.ndarray, np.ndarray | None]:
        block = self._block
        if block is None or self._pos == len(block[0]):
            self._refill()
            block = self._block
        i = self._pos
        self._pos = i + 1
        t, e = block  # type: ignore[misc]
        return t[i], (e[i] if e is not None else None)

    def next_tasks(self) -> np.ndarray:
        """Task index of each sample of the next step (length ``batch_size``); advances the step."""
        return self._next()[0]

    def next_batch(self) -> tuple[np.ndarray, np.ndarray]:
        """``(task_ids, example_ids)`` for the next step."""
        if self.examples is None:
            raise ValueError("TaskSampler needs the task sizes to draw examples")
        t, e = self._next()
        assert e is not None
        return t, e

    def draw_many(self, n_steps: int) -> np.ndarray:
        """Task draws for the next ``n_steps`` steps at once, shape (n_steps, batch_size).

        Only the task draws advance (the example streams do not): the fastest
        way to replay a schedule's task sequence.  Use :meth:`skip` to advance both.
        """
        out = np.empty((n_steps, self.batch_size), dtype=np.int64)
        k = 0
        if self._block is not None:  # serve what is left of the current block first
            rest = self._block[0][self._pos : self._pos + n_steps]
            out[: len(rest)] = rest
            self._pos += len(rest)
            k = len(rest)
        if k < n_steps:
            out[k:] = self._draw(n_steps - k)
            self._block, self._pos = None, 0
        return out

    def skip(self, n_steps: int) -> None:
        """Advance by ``n_steps`` steps exactly as that many :meth:`next_batch` calls would."""
        while n_steps > 0 and self._block is not None and self._pos < len(self._block[0]):
            self._pos += 1
            n_steps -= 1
        while n_steps > 0:
            k = min(n_steps, max(1, 2**20 // self.batch_size))
            tasks = self._draw(k)
            if self.examples is not None:
                self.examples.take_for(tasks.ravel())
            self._block, self._pos = None, 0
            n_steps -= k

    def __iter__(self):
        while True:
            yield self.next_batch()

    def set_schedule(self, schedule: Schedule) -> None:
        """Replace the schedule; draws already prefetched are discarded and redrawn from the same state."""
        if schedule.tasks != self.schedule.tasks:
            raise ValueError(f"new schedule has tasks {schedule.tasks}, expected {self.schedule.tasks}")
        state = self.state_dict()
        self.schedule = schedule
        self.load_state_dict(state)

    # ------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """The complete state, for checkpoints; :meth:`load_state_dict` restores it exactly."""
        if self._block is not None and self._block_start is not None:
            base, pos = self._block_start, self._pos
        else:
            base = {
                "drawn": self._drawn,
                "rng": self._rng.bit_generator.state,
                "examples": self.examples.state_dict() if self.examples is not None else None,
            }
            pos = 0
        return {
            "seed": self.seed,
            "per": self.per,
            "batch_size": self.batch_size,
            "drawn": base["drawn"],
            "rng": base["rng"],
            "examples": base["examples"],
            "served_in_block": pos,
            "step": base["drawn"] + pos,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`."""
        check_state_matches("sampler", state, batch_size=self.batch_size, per=self.per)
        self.seed = int(state["seed"])
        self._drawn = int(state["drawn"])
        self._rng.bit_generator.state = state["rng"]
        if self.examples is not None and state.get("examples") is not None:
            self.examples.load_state_dict(state["examples"])
        self._block, self._block_start, self._pos = None, None, 0
        pos = int(state.get("served_in_block", 0))
        if pos:
            self._refill()
            self._pos = pos


# -------------------------------------------------- argument checks (replay adapters share them)


def positive_int(name: str, value: Any) -> int:
    """``value`` as an int, refusing anything but a positive integer (bools included)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_schedule(schedule: Any) -> None:
    """Refuse anything but a :class:`~taskmix.schedule.Schedule`."""
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a taskmix.schedule.Schedule, got {type(schedule).__name__}")


def check_sizes(sizes: Any, schedule: Schedule) -> list[int]:
    """Task sizes in schedule order, from a list or a mapping task -> size; refuses anything else."""
    tasks = list(schedule.tasks)
    if isinstance(sizes, Mapping):
        missing = [t for t in tasks if t not in sizes]
        extra = sorted(str(k) for k in sizes if k not in tasks)
        if missing or extra:
            raise ValueError(f"sizes: keys must be the schedule's tasks {tasks}; missing {missing}, unexpected {extra}")
        sizes = [sizes[t] for t in tasks]
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, (Sequence, np.ndarray)):
        raise ValueError(f"sizes must be a list of {len(tasks)} task sizes, got {type(sizes).__name__}")
    if len(sizes) != len(tasks):
        raise ValueError(f"sizes has {len(sizes)} entries, expected {len(tasks)} (one per schedule task {tasks})")
    out = []
    for t, n in zip(tasks, sizes):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"sizes: task {t!r} has size {n!r}, expected a positive integer")
        out.append(int(n))
    return out
