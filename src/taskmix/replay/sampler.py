"""The sampler: replays any :class:`~taskmix.schedule.Schedule`, vectorised and resumable.

One sampler for every strategy (in contrast to one subclass per strategy, each
recomputing its probabilities and drawing one task at a time): the strategy is
the schedule, the sampler only replays it.

* Task draws: per sample within a batch (the paper), or one task for the whole
  batch (``per="batch"``).  Draws are a pure function of the seed and the
  number of draws made so far, so every data-parallel rank constructed with the
  same seed makes the same draws (ranks then split the global batch; see
  :mod:`taskmix.replay.torch`).
* Examples within a task: shuffled passes without replacement, reshuffled each
  pass.  The permutation of pass ``k`` of task ``i`` is derived from
  ``(seed, i, k)``, so the state is two integers per task.
* ``state_dict()`` / ``load_state_dict()`` capture everything needed to resume
  mid-epoch and reproduce the same stream.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping, Sequence

import numpy as np

from ..errors import check_state_matches, state_int, state_keys
from ..schedule import Schedule, check_schedule, positive_int


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


def category_counts(rng: np.random.Generator, p: np.ndarray, k: int, chunk: int = 2**20) -> np.ndarray:
    """How many of ``k`` draws of :func:`categorical` fall on each category, consuming ``rng`` exactly as
    ``categorical(rng, p, k)`` does (one double per draw), without materialising the draws."""
    cdf = np.cumsum(p, dtype=np.float64)
    cdf /= cdf[-1]
    n = len(p)
    counts = np.zeros(n, dtype=np.int64)
    if n > 16:  # a lookup grid: u in [g/G, (g+1)/G) is category lo[g] unless a cdf entry falls inside the cell
        grid = 4096  # a power of two: u * grid is exact, so its floor is the cell
        edges = np.arange(grid + 1, dtype=np.float64) / grid
        lo = np.minimum(np.searchsorted(cdf, edges[:-1], side="right"), n - 1)
        mixed = lo != np.minimum(np.searchsorted(cdf, edges[1:], side="left"), n - 1)
    while k > 0:
        m = min(k, chunk)
        u = rng.random(m)
        if n <= 16:  # categorical's draw is the number of cdf[:-1] entries <= u: count u >= c per boundary
            above = np.array([m] + [int(np.count_nonzero(u >= c)) for c in cdf[:-1]] + [0], dtype=np.int64)
            counts += above[:-1] - above[1:]
        else:
            cell = (u * grid).astype(np.int64)
            amb = mixed[cell]
            counts += np.bincount(lo[cell[~amb]], minlength=n)
            counts += np.bincount(np.minimum(np.searchsorted(cdf, u[amb], side="right"), n - 1), minlength=n)
        k -= m
    return counts


MAX_POSITION = 2**32
"""Replay positions are below ``MAX_POSITION`` samples: ``step * batch_size < 2**32``.

Seeking to a position (:meth:`TaskSampler.skip`; ``set_epoch`` and ``load_state_dict`` of the replay
samplers and :class:`~taskmix.replay.streaming.ScheduleIterableDataset`) re-draws the task of every earlier
sample, as it must to know where each task's examples stand, at some 10 ns a sample: a seek ends within
about a minute, and a larger one is refused with a ``ValueError`` naming the argument and the range."""


def max_step(batch_size: int) -> int:
    """The last global step a replay of ``batch_size`` samples per step can seek to (:data:`MAX_POSITION`)."""
    return (MAX_POSITION - 1) // batch_size


def check_step(name: str, value: Any, batch_size: int, per: int = 1, unit: str = "step") -> int:
    """``value`` as an int in ``[0, max_step(batch_size) // per]``; ``ValueError`` naming ``name`` and the range
    otherwise (``per``: steps per ``unit``, e.g. ``num_steps`` for an epoch)."""
    hi = max_step(batch_size) // per
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= hi:
        what = "" if unit == "step" else f" x {per} steps per {unit}"
        raise ValueError(f"{name} must be an integer in [0, {hi}] (a replay position is below 2^32 samples: "
                         f"{unit}{what} x batch_size {batch_size}), got {_shown(value)}")
    return int(value)


def _shown(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def check_seed(name: str, value: Any) -> int:
    """``value`` as an int seed in ``[0, 2**64)``: not a bool, not a float (which would be truncated)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < 2**64:
        raise ValueError(f"{name} must be a non-negative integer, got {_shown(value)} (a seed is an integer in [0, 2^64))")
    return int(value)


_PCG_MULT = (2549297995355413924 << 64) + 4865540595714422341  # numpy's PCG64 (PCG_DEFAULT_MULTIPLIER_128)
_M128, _M64 = (1 << 128) - 1, (1 << 64) - 1
_PCG_MULT_INV = pow(_PCG_MULT, -1, 1 << 128)


def pcg64_distance(start: int, end: int, inc: int) -> int:
    """How many steps of numpy's PCG64 (one per 64-bit output) lead from state ``start`` to ``end`` (mod 2^128)."""
    mult, bit, d = _PCG_MULT, 1, 0
    while (start ^ end) & _M128:
        if (start ^ end) & bit:
            start = (start * mult + inc) & _M128
            d |= bit
        inc = ((mult + 1) * inc) & _M128
        mult = (mult * mult) & _M128
        bit <<= 1
    return d


def _pcg64_output(state: int) -> int:
    hi, lo = state >> 64, state & _M64
    x, r = hi ^ lo, hi >> 58
    return ((x >> r) | (x << ((64 - r) & 63))) & _M64


def check_generator_state(state: Any, where: str, start: np.random.Generator | None = None, max_draws: int = 2**40,
                          window: int | None = 4096) -> int | None:
    """Refuse (``ValueError`` naming the field) a ``Generator.bit_generator.state`` that is not a position of the
    stream ``start`` begins (a fresh generator from the same seed); return its distance (64-bit draws) from there.

    The state must be PCG64's, with ``start``'s increment (which the seed fixes), reachable from ``start`` within
    ``max_draws`` draws (a forged or damaged state is one with probability about ``max_draws / 2^128``), and a
    buffered 32-bit half (``has_uint32``) must be the upper half of one of the last ``window`` outputs
    (``window=None``: not checked).  Without ``start`` only the form is checked (``None`` is returned).
    """
    st = state_keys(state, where, ("bit_generator", "state", "has_uint32", "uinteger"))
    if st["bit_generator"] != "PCG64":
        raise ValueError(f"{where}.bit_generator: expected 'PCG64', got {str(st['bit_generator'])[:40]!r}")
    inner = state_keys(st["state"], f"{where}.state", ("state", "inc"))
    s = state_int(inner["state"], f"{where}.state.state", 0, _M128)
    inc = state_int(inner["inc"], f"{where}.state.inc", 0, _M128)
    if inc % 2 == 0:
        raise ValueError(f"{where}.state.inc: {inc} is even; a PCG64 increment is odd")
    has = state_int(st["has_uint32"], f"{where}.has_uint32", 0, 1)
    half = state_int(st["uinteger"], f"{where}.uinteger", 0, 2**32 - 1)
    if start is None:
        return None
    ref = start.bit_generator.state["state"]
    if inc != ref["inc"]:
        raise ValueError(f"{where}.state.inc: not the increment of this run's seed (another stream, or forged)")
    d = pcg64_distance(ref["state"], s, inc)
    if d > max_draws:
        raise ValueError(f"{where}.state.state: not a position of this run's random stream (forged or damaged)")
    if has and window is not None:
        for _ in range(min(window, d)):
            if _pcg64_output(s) >> 32 == half:
                break
            s = ((s - inc) * _PCG_MULT_INV) & _M128
        else:
            raise ValueError(f"{where}.uinteger: not a value this random stream produced (forged or damaged)")
    return d


class ExampleStreams:
    """Per-task example indices: shuffled passes without replacement, reshuffled each pass."""

    def __init__(self, sizes: Sequence[int], seed: int = 0, shuffle: bool = True):
        if isinstance(sizes, (str, bytes, Mapping)) or not isinstance(sizes, (Sequence, np.ndarray)) or len(sizes) == 0:
            raise TypeError(f"sizes must be a non-empty list of task sizes, got {type(sizes).__name__}")
        for i, n in enumerate(sizes):
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n < 2**63:
                raise ValueError(f"sizes[{i}] is {_shown(n)}; every task needs a positive integer number of examples")
        self.sizes = [int(n) for n in sizes]
        self.seed = check_seed("seed", seed)
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

    def advance(self, counts: Sequence[int] | np.ndarray) -> None:
        """Move past ``counts[i]`` examples of each task ``i``, exactly as :meth:`take` would (without drawing them)."""
        for i, k in enumerate(counts):
            n, total = self.sizes[i], self.cursors[i] + int(k)
            self.passes[i] += total // n
            self.cursors[i] = total % n

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

    def check_state_dict(self, state: Any, where: str = "streams") -> None:
        """Refuse (``ValueError`` naming the field) a state that :meth:`load_state_dict` cannot restore sanely:
        other task sizes, a seed, pass or cursor that is not an integer in range, lists of the wrong length."""
        state_keys(state, where, ("seed", "sizes", "passes", "cursors"))
        if state["sizes"] != self.sizes:
            raise ValueError(f"{where}.sizes: example-stream state is for task sizes {str(state['sizes'])[:80]}, not {self.sizes}")
        state_int(state["seed"], f"{where}.seed", -(2**63), 2**64 - 1)
        for key, his in (("passes", [2**32 - 1] * len(self.sizes)), ("cursors", [n - 1 for n in self.sizes])):
            v = state[key]
            if not isinstance(v, list) or len(v) != len(self.sizes):
                raise ValueError(f"{where}.{key}: expected a list of {len(self.sizes)} integers (one per task)")
            for i, (x, hi) in enumerate(zip(v, his)):
                state_int(x, f"{where}.{key}[{i}]", 0, hi)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict` (checked first: :meth:`check_state_dict`)."""
        self.check_state_dict(state)
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
        check_schedule(schedule)
        batch_size = positive_int("batch_size", batch_size)
        if batch_size > MAX_BATCH:
            raise ValueError(f"batch_size must be at most {MAX_BATCH}, got {batch_size}")
        if per not in ("sample", "batch"):
            raise ValueError(f"per must be 'sample' or 'batch', got {_shown(per)}")
        prefetch = positive_int("prefetch", prefetch)
        if prefetch * batch_size > 2**27:
            raise ValueError(f"prefetch x batch_size must be at most 2^27 draws held at once, got {prefetch} x {batch_size}")
        if sizes is not None:
            sizes = check_sizes(sizes, schedule)
        self.schedule = schedule
        self.batch_size = batch_size
        self.per = per
        self.seed = check_seed("seed", seed)
        self.prefetch = prefetch
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
        if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or not 0 <= n_steps * self.batch_size <= 2**27:
            raise ValueError(f"n_steps must be an integer in [0, {2**27 // self.batch_size}] (at most 2^27 draws at once: "
                             f"n_steps x batch_size {self.batch_size}), got {_shown(n_steps)}")
        n_steps = int(n_steps)
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

    def skip(self, n_steps: int) -> np.ndarray:
        """Advance by ``n_steps`` steps exactly as that many :meth:`next_batch` calls would; return how many samples
        of each task they drew.

        The draws are counted, not kept (the example streams move on by the counts), so a skip costs some 10 ns a
        sample; the position it reaches must stay below :data:`MAX_POSITION` samples.
        """
        hi = max_step(self.batch_size) - self.step
        if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or not 0 <= n_steps <= max(hi, 0):
            raise ValueError(f"n_steps must be an integer in [0, {max(hi, 0)}] (the position after it is below 2^32 "
                             f"samples: step x batch_size {self.batch_size}), got {_shown(n_steps)}")
        n_steps = int(n_steps)
        counts = np.zeros(self.schedule.n_tasks, dtype=np.int64)
        if n_steps > 0 and self._block is not None and self._pos < len(self._block[0]):
            served = self._block[0][self._pos : self._pos + n_steps]
            counts += np.bincount(served.ravel(), minlength=self.schedule.n_tasks)
            self._pos += len(served)
            n_steps -= len(served)
        if n_steps > 0:
            drawn = self._count_draws(n_steps)
            counts += drawn
            if self.examples is not None:
                self.examples.advance(drawn)
            self._block, self._pos = None, 0
        return counts

    def _count_draws(self, n_steps: int) -> np.ndarray:
        """Samples per task of the next ``n_steps`` steps' draws (the generator moves exactly as :meth:`_draw`'s)."""
        counts = np.zeros(self.schedule.n_tasks, dtype=np.int64)
        while n_steps > 0:
            row = self.schedule.row_index(self._drawn)
            if row == self.schedule.n_rows - 1:
                span = n_steps
            else:
                span = min(n_steps, (row + 1) * self.schedule.steps_per_meta_step - self._drawn)
            p = self.schedule.weights[row]
            if self.per == "batch":
                counts += category_counts(self._rng, p, span) * self.batch_size
            else:
                counts += category_counts(self._rng, p, span * self.batch_size)
            self._drawn += span
            n_steps -= span
        return counts

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

MAX_BATCH = 2**27
"""The largest ``batch_size`` a sampler takes (the draws of one step are held at once)."""



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
