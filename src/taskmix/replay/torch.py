"""Replay a :class:`~taskmix.schedule.Schedule` in a plain PyTorch training loop.

The task datasets are laid end to end, in the schedule's task order, as one
map-style dataset (typically a :class:`torch.utils.data.ConcatDataset`).  The
samplers here yield *global* indices into that concatenation: the offset of the
task plus the index of the example within the task.

* :class:`ScheduleBatchSampler` (a ``Sampler[list[int]]``, for
  ``DataLoader(batch_sampler=...)``) yields, for each training step, this
  rank's share of the step's batch.
* :class:`ScheduleSampler` (a ``Sampler[int]``, for APIs that want a plain
  sampler, such as the Hugging Face ``Trainer``) yields the same indices one by
  one; pair it with ``DataLoader(batch_size=batch_size // world_size)``.
* :class:`ScheduleIterableDataset` replays the same task draws over iterable
  task datasets (streams, ``datasets.IterableDataset``) that cannot be indexed.

Drawing is done by :class:`taskmix.replay.sampler.TaskSampler`: a task per sample (or
per batch), then the next example of that task from a shuffled pass without
replacement.

What a step is
--------------
One *step* is one global batch of ``batch_size`` examples, which is one
optimiser step across all data-parallel ranks.  The schedule row that holds is
indexed by this global step (``schedule.weights_at(step)``), never by a
per-rank or per-micro-batch counter.  Under data parallelism every rank builds
the sampler with the same seed, so every rank draws the identical global
batch; rank ``r`` of ``world_size`` then keeps positions
``r, r + world_size, r + 2 * world_size, ...`` of it.  The shares are disjoint,
their union is the global batch, and ``batch_size`` must be a multiple of
``world_size``.  With gradient accumulation, split the rank's share into
micro-batches yourself (or use the per-index sampler with a micro-batch
``DataLoader``): the schedule still advances once per optimiser step.

Epochs and resuming
-------------------
The samplers are a single stream: epoch ``e`` is global steps
``[e * num_steps, (e + 1) * num_steps)``, so a time-variant schedule keeps
advancing across epochs.  Each ``iter()`` continues from the current position
to the end of the current epoch; ``set_epoch(e)`` moves to the start of epoch
``e`` (a no-op while the sampler is inside epoch ``e``, e.g. after
``load_state_dict``).  The state is a position in the stream: loading the
state saved after ``k`` steps continues with step ``k + 1`` exactly as an
uninterrupted run would, on any rank.  A ``DataLoader`` with workers iterates
the batch sampler in the main process but runs ahead of the training loop by
the prefetched batches, so pass the number of steps the loop has finished:
``sampler.state_dict(step=k)``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterator, Literal, Mapping, Self, Sequence, Sized, cast

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset, Sampler

from .sampler import MAX_BATCH, TaskSampler, check_schedule, check_seed, check_sizes, check_step, positive_int
from .sampler import max_step as max_step_of
from ..schedule import Schedule

__all__ = [
    "ScheduleBatchSampler",
    "ScheduleSampler",
    "realised_proportions",
    "scheduled_proportions",
]

STATE_FORMAT = "taskmix.schedule_sampler/1"
_CHUNK = 4096  # steps per chunk of the recorded task counts


def realised_proportions(task_ids: Sequence[int] | np.ndarray | torch.Tensor, n_tasks: int) -> np.ndarray:
    """Fraction of ``task_ids`` that belongs to each of ``n_tasks`` tasks (length ``n_tasks``, sums to 1)."""
    n_tasks = positive_int("n_tasks", n_tasks)
    if isinstance(task_ids, torch.Tensor):
        task_ids = task_ids.detach().cpu().numpy()
    ids = np.asarray(task_ids).ravel()
    if ids.size == 0:
        raise ValueError("task_ids is empty; expected at least one task id")
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"task_ids must be integers, got dtype {ids.dtype}")
    if ids.min() < 0 or ids.max() >= n_tasks:
        raise ValueError(f"task_ids must lie in [0, {n_tasks}), got values in [{ids.min()}, {ids.max()}]")
    return np.bincount(ids, minlength=n_tasks) / ids.size


def scheduled_proportions(schedule: Schedule, steps: Sequence[int] | np.ndarray | range) -> np.ndarray:
    """Expected task proportions over the given global ``steps``: the mean of their schedule rows."""
    check_schedule(schedule)
    if isinstance(steps, (str, bytes)):
        raise TypeError(f"steps must be integers (global steps), got {type(steps).__name__}")
    s = np.asarray(steps)
    if s.dtype == bool or not (np.issubdtype(s.dtype, np.integer) or s.size == 0):
        raise TypeError(f"steps must be integers (global steps), got dtype {s.dtype}")
    s = s.astype(np.int64).ravel()
    if s.size == 0:
        raise ValueError("steps is empty; expected at least one step")
    if s.min() < 0:
        raise ValueError(f"steps must be >= 0, got {int(s.min())}")
    rows = np.minimum(s // schedule.steps_per_meta_step, schedule.n_rows - 1)
    counts = np.bincount(rows, minlength=schedule.n_rows)
    return (counts[:, None] * schedule.weights).sum(axis=0) / s.size


class _FromDatasets:
    """``from_concat`` / ``from_dict`` for the samplers: build from the task datasets and keep them as ``sampler.dataset``."""

    dataset: ConcatDataset | None

    def __init__(self, schedule: Schedule, sizes: Sequence[int], *args: Any, **kwargs: Any) -> None:  # pragma: no cover
        raise NotImplementedError

    @classmethod
    def from_concat(cls, dataset: ConcatDataset, schedule: Schedule, **kwargs: Any) -> Self:
        """Sampler over a ``ConcatDataset`` whose parts are the tasks, in schedule task order (``sampler.dataset``)."""
        return cls(schedule, _concat_sizes(dataset, schedule), dataset=dataset, **kwargs)

    @classmethod
    def from_dict(cls, datasets: Mapping[str, Dataset], schedule: Schedule, **kwargs: Any) -> Self:
        """Sampler over ``datasets`` (task name -> dataset); their ``ConcatDataset``, in schedule task order, is
        ``sampler.dataset``: ``DataLoader(sampler.dataset, batch_sampler=sampler)`` (``sampler=``, ``batch_size=``
        for :class:`ScheduleSampler`)."""
        return cls.from_concat(_concat_in_schedule_order(datasets, schedule), schedule, **kwargs)


class ScheduleBatchSampler(_FromDatasets, Sampler[list[int]]):
    """Yields this rank's global indices for each step of a replayed schedule.

    Args:
        schedule: the task weights to replay; row ``schedule.row_index(step)``
            holds at global step ``step``.
        sizes: number of examples of each task, in schedule task order (or a
            mapping task name -> size).  Task ``i`` occupies global indices
            ``[sum(sizes[:i]), sum(sizes[:i + 1]))``.
        batch_size: the GLOBAL batch of one step (all ranks together).
        num_steps: steps per epoch; ``len(sampler)``.
        seed: all draws derive from it; use the same seed on every rank.
        per: ``"sample"`` draws a task for every example, ``"batch"`` one task
            for the whole global batch.
        rank, world_size: this process's data-parallel rank and the number of
            ranks; default to ``torch.distributed`` if it is initialised, else
            0 and 1.
        record: keep per-step task counts for :meth:`task_counts`.
        dataset: the dataset the indices address (optional; ``from_dict`` and
            ``from_concat`` set it): ``sizes`` are checked against it -- a
            ``ConcatDataset``'s parts must have exactly these sizes, any other
            dataset's length must be their sum -- so that no task's examples
            are read as another's.  Kept as ``sampler.dataset``.

    Positions are bounded: ``set_epoch``, ``state_dict(step=...)`` and
    ``load_state_dict`` take a step below ``2**32 / batch_size`` (see
    :data:`taskmix.replay.sampler.MAX_POSITION`), since seeking re-draws every earlier step.
    """

    def __init__(
        self,
        schedule: Schedule,
        sizes: Sequence[int] | Mapping[str, int],
        batch_size: int,
        num_steps: int,
        *,
        seed: int = 0,
        per: Literal["sample", "batch"] = "sample",
        rank: int | None = None,
        world_size: int | None = None,
        record: bool = True,
        dataset: Any = None,
    ) -> None:
        check_schedule(schedule)
        self.schedule = schedule
        self.sizes = check_sizes(sizes, schedule)
        self.num_steps = positive_int("num_steps", num_steps)
        self.batch_size, self.seed, self.per, self.rank, self.world_size = check_replay_args(
            batch_size, seed, per, rank, world_size)
        if self.num_steps > max_step_of(self.batch_size) + 1:
            raise ValueError(f"num_steps must be at most {max_step_of(self.batch_size) + 1} (a replay position is below "
                             f"2^32 samples: step x batch_size {self.batch_size}), got {self.num_steps}")
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)
        if not isinstance(record, (bool, np.bool_)):
            raise TypeError(f"record must be True or False, got {type(record).__name__}")
        self.record = bool(record)
        if dataset is not None:
            check_dataset_sizes(dataset, self.sizes, schedule)
        self.dataset = dataset  # the dataset the indices address, when given (from_dict / from_concat give it)
        self._digest = schedule_digest(schedule)
        self._sampler = self._new_task_sampler()
        self._epoch = 0
        self._pos = 0  # steps of the current epoch drawn so far, in [0, num_steps]
        # per-step task counts, in chunks of _CHUNK steps (a seek far ahead does not allocate the steps it skips)
        self._chunks: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # chunk -> (counts (_CHUNK x n), drawn (_CHUNK,))

    # ----------------------------------------------------------- construction

    def _new_task_sampler(self) -> TaskSampler:
        return TaskSampler(self.schedule, self.batch_size, self.sizes, seed=self.seed, per=self.per)

    # -------------------------------------------------------------- position
    @property
    def epoch(self) -> int:
        """The epoch the sampler is in (or has just finished)."""
        return self._epoch

    @property
    def step(self) -> int:
        """Global steps drawn so far: the step the next batch belongs to."""
        return self._epoch * self.num_steps + self._pos

    @property
    def local_batch_size(self) -> int:
        """This rank's share of a step: ``batch_size // world_size``."""
        return self.batch_size // self.world_size

    def __len__(self) -> int:
        return self.num_steps

    def set_epoch(self, epoch: int) -> None:
        """Move to the start of ``epoch``; a no-op while the sampler is inside that epoch."""
        epoch = check_step("epoch", epoch, self.batch_size, per=self.num_steps, unit="epoch")
        if epoch == self._epoch and self._pos < self.num_steps:
            return
        self._seek(epoch * self.num_steps)

    def _seek(self, step: int) -> None:
        """Position the stream so that the next batch drawn is global step ``step``."""
        if step < self._sampler.step:
            self._sampler = self._new_task_sampler()
        # skip() consumes the generator and the example streams exactly as that many next_batch() calls
        self._sampler.skip(step - self._sampler.step)
        self._epoch, self._pos = divmod(step, self.num_steps)

    # ------------------------------------------------------------- iteration
    def __iter__(self) -> Iterator[list[int]]:
        if self._pos >= self.num_steps:
            self._epoch, self._pos = self._epoch + 1, 0
        mine = slice(self.rank, None, self.world_size)
        while self._pos < self.num_steps:
            step = self.step
            tasks, examples = self._sampler.next_batch()
            self._pos += 1
            if self.record:
                self._record(step, tasks)
            yield (self.offsets[tasks[mine]] + examples[mine]).tolist()

    def _record(self, step: int, tasks: np.ndarray) -> None:
        c, i = divmod(step, _CHUNK)
        if c not in self._chunks:
            self._chunks[c] = (np.zeros((_CHUNK, self.schedule.n_tasks), dtype=np.int64), np.zeros(_CHUNK, dtype=bool))
        counts, drawn = self._chunks[c]
        counts[i] = np.bincount(tasks, minlength=self.schedule.n_tasks)
        drawn[i] = True

    def _recorded(self, start: int, end: int | None) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(steps, counts)`` of the recorded steps in ``[start, end)``, chunk by chunk in step order."""
        if not self.record:
            raise ValueError("this sampler was built with record=False; it keeps no per-step task counts")
        for name, v in (("start", start), ("end", end)):
            if (v is not None or name == "start") and (isinstance(v, bool) or not isinstance(v, (int, np.integer))):
                raise TypeError(f"{name} must be an integer (a global step), got {type(v).__name__}")
        out = []
        for c in sorted(self._chunks):
            lo, hi = c * _CHUNK, (c + 1) * _CHUNK
            if (end is not None and lo >= end) or hi <= start:
                continue
            counts, drawn = self._chunks[c]
            keep = drawn.copy()
            keep[: max(int(start) - lo, 0)] = False
            if end is not None and end < hi:
                keep[max(int(end) - lo, 0):] = False
            idx = np.flatnonzero(keep)
            out.append((lo + idx, counts[idx]))
        return out

    # ------------------------------------------------------------ accounting
    def steps_drawn(self, start: int = 0, end: int | None = None) -> np.ndarray:
        """Global steps in ``[start, end)`` that this sampler has drawn (and recorded)."""
        parts = [steps for steps, _ in self._recorded(start, end)]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)

    def task_counts(self, start: int = 0, end: int | None = None) -> np.ndarray:
        """Samples per task over the drawn global steps in ``[start, end)``, counting the whole global batch."""
        total = np.zeros(self.schedule.n_tasks, dtype=np.int64)
        for _, counts in self._recorded(start, end):
            total += counts.sum(axis=0)
        return total

    def task_of(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Task index of each global index."""
        if isinstance(indices, (str, bytes)):
            raise TypeError(f"indices must be integers, got {type(indices).__name__}")
        idx = np.asarray(indices)
        if idx.dtype == bool or not (np.issubdtype(idx.dtype, np.integer) or idx.size == 0):
            raise TypeError(f"indices must be integers (global indices), got dtype {idx.dtype}")
        idx = idx.astype(np.int64)
        total = int(self.offsets[-1] + self.sizes[-1])
        if idx.size and (idx.min() < 0 or idx.max() >= total):
            raise ValueError(f"indices must lie in [0, {total}), got values in [{idx.min()}, {idx.max()}]")
        return np.searchsorted(self.offsets, idx, side="right") - 1

    # ----------------------------------------------------------- persistence
    def state_dict(self, step: int | None = None) -> dict[str, Any]:
        """The stream position after ``step`` global steps (default: the steps drawn so far).

        JSON-serialisable.  With a multi-worker ``DataLoader`` the sampler runs
        ahead of the training loop, so pass the number of steps the loop has
        actually finished.
        """
        step = self.step if step is None else check_step("step", step, self.batch_size)
        return {
            "format": STATE_FORMAT,
            "step": int(step),
            "seed": self.seed,
            "batch_size": self.batch_size,
            "per": self.per,
            "sizes": list(self.sizes),
            "tasks": list(self.schedule.tasks),
            "schedule_digest": self._digest,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a saved position; the next batch is the step after the saved one.

        The state may come from any rank and from a run with another
        ``num_steps``; schedule, task sizes, batch size and ``per`` must match.
        """
        if not isinstance(state, Mapping):
            raise ValueError(f"state must be a mapping from state_dict(), got {type(state).__name__}")
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"state: 'format' is {state.get('format')!r}, expected {STATE_FORMAT!r}")
        for key, mine in (
            ("tasks", list(self.schedule.tasks)),
            ("schedule_digest", self._digest),
            ("sizes", list(self.sizes)),
            ("batch_size", self.batch_size),
            ("per", self.per),
        ):
            if state.get(key) != mine:
                raise ValueError(f"state: {key} is {state.get(key)!r}, but this sampler has {mine!r}")
        step = check_step("state: step", state.get("step"), self.batch_size)
        seed = check_seed("state: seed", state.get("seed"))
        if seed != self.seed:
            self.seed = seed
            self._sampler = self._new_task_sampler()
        self._seek(step)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(tasks={list(self.schedule.tasks)}, sizes={self.sizes}, "
            f"batch_size={self.batch_size}, num_steps={self.num_steps}, per={self.per!r}, "
            f"rank={self.rank}, world_size={self.world_size}, step={self.step})"
        )


class ScheduleSampler(_FromDatasets, Sampler[int]):
    """Per-index variant of :class:`ScheduleBatchSampler`: the same indices, one at a time.

    Step ``s`` contributes ``batch_size // world_size`` consecutive indices
    (this rank's share of global batch ``s``), so a ``DataLoader`` with
    ``batch_size=batch_size // world_size`` (or a divisor of it, for gradient
    accumulation) reproduces the batches.  Takes the same arguments; under the
    Hugging Face ``Trainer`` build it with ``rank=0, world_size=1``, since
    accelerate shards the batches itself (see :mod:`taskmix.hf`).
    """

    def __init__(
        self, schedule: Schedule, sizes: Sequence[int] | Mapping[str, int], batch_size: int, num_steps: int, **options: Any
    ) -> None:
        # options: seed, per, rank, world_size, record -- exactly as ScheduleBatchSampler takes them
        self.batch_sampler = ScheduleBatchSampler(schedule, sizes, batch_size, num_steps, **options)
        self._pending = 0  # indices of the current step not yet yielded
        self.dataset = self.batch_sampler.dataset  # the dataset the indices address, when given


    # Read-only views of the underlying batch sampler.
    schedule = property(lambda self: self.batch_sampler.schedule, doc="The replayed schedule.")
    sizes = property(lambda self: self.batch_sampler.sizes, doc="Task sizes in schedule task order.")
    offsets = property(lambda self: self.batch_sampler.offsets, doc="First global index of each task.")
    batch_size = property(lambda self: self.batch_sampler.batch_size, doc="The global batch of one step.")
    local_batch_size = property(lambda self: self.batch_sampler.local_batch_size, doc="This rank's share of a step.")
    num_steps = property(lambda self: self.batch_sampler.num_steps, doc="Steps per epoch.")
    seed = property(lambda self: self.batch_sampler.seed, doc="The seed all draws derive from.")
    per = property(lambda self: self.batch_sampler.per, doc="'sample' or 'batch'.")
    rank = property(lambda self: self.batch_sampler.rank, doc="This process's data-parallel rank.")
    world_size = property(lambda self: self.batch_sampler.world_size, doc="Number of data-parallel ranks.")
    epoch = property(lambda self: self.batch_sampler.epoch, doc="The epoch the sampler is in.")

    @property
    def step(self) -> int:
        """Global steps whose indices have all been yielded."""
        return self.batch_sampler.step - (1 if self._pending else 0)

    def __len__(self) -> int:
        return self.batch_sampler.num_steps * self.batch_sampler.local_batch_size

    def _rewind_partial(self) -> None:
        # An earlier iteration stopped inside a step: go back to its start, so
        # that the step is yielded whole (and identically) next time.
        if self._pending:
            self.batch_sampler._seek(self.batch_sampler.step - 1)
            self._pending = 0

    def __iter__(self) -> Iterator[int]:
        self._rewind_partial()
        for batch in self.batch_sampler:
            self._pending = len(batch)
            for index in batch:
                self._pending -= 1
                yield index

    def set_epoch(self, epoch: int) -> None:
        """Move to the start of ``epoch``; a no-op while the sampler is inside that epoch."""
        self._rewind_partial()
        self.batch_sampler.set_epoch(epoch)

    def steps_drawn(self, start: int = 0, end: int | None = None) -> np.ndarray:
        """Global steps in ``[start, end)`` that have been drawn (see :meth:`ScheduleBatchSampler.steps_drawn`)."""
        return self.batch_sampler.steps_drawn(start, end)

    def task_counts(self, start: int = 0, end: int | None = None) -> np.ndarray:
        """Samples per task over drawn global steps in ``[start, end)``, whole global batches."""
        return self.batch_sampler.task_counts(start, end)

    def task_of(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Task index of each global index."""
        return self.batch_sampler.task_of(indices)

    def state_dict(self, step: int | None = None) -> dict[str, Any]:
        """The stream position after ``step`` global steps (default: the steps fully yielded)."""
        return self.batch_sampler.state_dict(self.step if step is None else step)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a saved position; the next index is the first of the step after the saved one."""
        self.batch_sampler.load_state_dict(state)
        self._pending = 0

    def __repr__(self) -> str:
        return repr(self.batch_sampler).replace(type(self.batch_sampler).__name__, type(self).__name__, 1)


# ------------------------------------------------------------------- helpers
def check_replay_args(
    batch_size: Any, seed: Any, per: Any, rank: int | None, world_size: int | None
) -> tuple[int, int, Literal["sample", "batch"], int, int]:
    """The checked arguments every replay adapter takes: ``(batch_size, seed, per, rank, world_size)``.

    ``batch_size`` is the global batch and must split evenly across the ranks.
    """
    batch_size = positive_int("batch_size", batch_size)
    if batch_size > MAX_BATCH:
        raise ValueError(f"batch_size must be at most {MAX_BATCH}, got {batch_size}")
    seed = check_seed("seed", seed)
    if per not in ("sample", "batch"):
        raise ValueError(f"per must be 'sample' or 'batch', got {str(per)[:40]!r}")
    rank, world_size = resolve_rank(rank, world_size)
    if batch_size % world_size:
        raise ValueError(
            f"batch_size ({batch_size}) must be a multiple of world_size ({world_size}): "
            "it is the global batch, split evenly across ranks"
        )
    return batch_size, int(seed), per, rank, world_size


def resolve_rank(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """``(rank, world_size)``: as given, else from an initialised ``torch.distributed`` group, else ``(0, 1)``."""
    dist_rank, dist_world = 0, 1
    if rank is None or world_size is None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist_rank, dist_world = dist.get_rank(), dist.get_world_size()
    world_size = dist_world if world_size is None else world_size
    rank = dist_rank if rank is None else rank
    world_size = positive_int("world_size", world_size)
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not 0 <= rank < world_size:
        raise ValueError(f"rank must be an integer in [0, {world_size}), got {rank!r}")
    return int(rank), world_size


def schedule_digest(schedule: Schedule) -> str:
    """A short digest of a schedule (checked when a sampler state is restored)."""
    blob = json.dumps([list(schedule.tasks), schedule.steps_per_meta_step, schedule.weights.tolist()])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def check_dataset_sizes(dataset: Any, sizes: Sequence[int], schedule: Schedule) -> None:
    """Refuse (``ValueError`` naming ``sizes``) task sizes that do not lay ``dataset`` out: a ``ConcatDataset``'s
    parts must have exactly these sizes, any other sized dataset must have their sum as its length."""
    if isinstance(dataset, ConcatDataset):
        parts = [len(cast(Sized, d)) for d in dataset.datasets]
        if parts != list(sizes):
            raise ValueError(f"sizes {_cut(sizes)} do not match the dataset: its parts have sizes {_cut(parts)}; expected "
                             f"one part per schedule task {_cut(list(schedule.tasks))}, in that order")
        return
    try:
        total = len(dataset)
    except TypeError:
        raise TypeError(f"dataset must be a sized dataset (a map-style dataset with len()), got "
                        f"{type(dataset).__name__}") from None
    if total != sum(sizes):
        raise ValueError(f"sizes {_cut(sizes)} sum to {sum(sizes)}, but the dataset has {total} examples; expected the "
                         f"task datasets concatenated in schedule task order {_cut(list(schedule.tasks))}")


def _cut(items: Sequence[Any], n: int = 8) -> str:
    shown = ", ".join(str(x)[:40] for x in list(items)[:n])
    return f"[{shown}{', ...' if len(items) > n else ''}]"


def _concat_sizes(dataset: Any, schedule: Schedule) -> list[int]:
    if not isinstance(dataset, ConcatDataset):
        raise TypeError(f"dataset must be a torch.utils.data.ConcatDataset, got {type(dataset).__name__}")
    sizes = [len(cast(Sized, d)) for d in dataset.datasets]
    if len(sizes) != schedule.n_tasks:
        raise ValueError(
            f"dataset: the ConcatDataset has {len(sizes)} parts, expected {schedule.n_tasks} "
            f"(one per schedule task {list(schedule.tasks)}, in that order)"
        )
    return sizes


def _concat_in_schedule_order(datasets: Any, schedule: Schedule) -> ConcatDataset:
    if not isinstance(datasets, Mapping):
        raise TypeError(f"datasets must be a mapping task name -> dataset, got {type(datasets).__name__}")
    tasks = list(schedule.tasks)
    missing = [t for t in tasks if t not in datasets]
    extra = sorted(str(k) for k in datasets if k not in tasks)
    if missing or extra:
        raise ValueError(f"datasets: keys must be the schedule's tasks {tasks}; missing {missing}, unexpected {extra}")
    return ConcatDataset([datasets[t] for t in tasks])
