"""Replay a schedule over iterable task datasets: streams that cannot be indexed (``datasets.IterableDataset``).

:class:`ScheduleIterableDataset` draws the same tasks as
:class:`taskmix.replay.torch.ScheduleBatchSampler` and reads each task's stream in order.
"""

from __future__ import annotations

import itertools
from collections import deque
from typing import Any, Iterator, Literal, Mapping, Sequence

import numpy as np
from torch.utils.data import IterableDataset

from .sampler import TaskSampler, check_schedule, check_seed, check_step, max_step, positive_int
from ..schedule import Schedule
from .torch import check_replay_args, schedule_digest

__all__ = ["STREAM_STATE_FORMAT", "ScheduleIterableDataset"]

STREAM_STATE_FORMAT = "taskmix.schedule_stream/1"
"""The ``format`` of a :class:`ScheduleIterableDataset` state."""

class ScheduleIterableDataset(IterableDataset):
    """Replay a schedule over *iterable* task datasets (``datasets.IterableDataset``, generators, streams).

    For data that cannot be indexed: each task is a stream read in order.  The
    task draws are exactly those of :class:`ScheduleBatchSampler` with the
    same ``schedule``, ``batch_size``, ``seed`` and ``per`` (one
    :class:`~taskmix.replay.sampler.TaskSampler` stream); position ``k`` of global
    step ``s`` that draws task ``i`` takes the next example of stream ``i``.
    Rank ``r`` of ``world_size`` yields positions ``r, r + world_size, ...``
    of each global batch, one example at a time, so
    ``DataLoader(ds, batch_size=batch_size // world_size)`` gives this rank's
    share of each step (every rank reads every stream whole and keeps its own
    examples, so the shares are disjoint).

    A stream that runs out starts a new pass: ``set_epoch(pass)`` is called on
    it first when it has one (``datasets.IterableDataset`` reshuffles its
    buffer with it), then it is iterated again.  Streams must give the same
    examples in the same order for the same pass, so that resuming reproduces them.

    Args:
        streams: task name -> iterable (or a sequence in schedule task order).
        schedule, batch_size, seed, per, rank, world_size: as for
            :class:`ScheduleBatchSampler` (``batch_size`` is the GLOBAL batch).
        num_steps: steps per epoch (``None``: an endless stream).  Epoch ``e``
            is global steps ``[e * num_steps, (e + 1) * num_steps)``; each
            ``iter()`` runs to the end of the current epoch.
        with_task: yield ``(task_index, example)`` pairs instead of examples.

    Resuming: ``state_dict(step=k)`` after the loop has finished ``k`` steps,
    ``load_state_dict`` on a freshly built dataset; the streams are then
    re-read from their start up to the examples the first ``k`` steps used
    (an iterable cannot seek), and the next example is the one an
    uninterrupted run would have produced.  Use ``num_workers=0`` or ``1``:
    several workers would each replay the whole stream.  Positions are
    bounded as for :class:`ScheduleBatchSampler`: ``set_epoch``,
    ``state_dict(step=...)`` and ``load_state_dict`` take a step below
    ``2**32 / batch_size`` (:data:`taskmix.replay.sampler.MAX_POSITION`).
    """

    def __init__(
        self,
        streams: Mapping[str, Any] | Sequence[Any],
        schedule: Schedule,
        batch_size: int,
        num_steps: int | None = None,
        *,
        seed: int = 0,
        per: Literal["sample", "batch"] = "sample",
        rank: int | None = None,
        world_size: int | None = None,
        with_task: bool = False,
    ) -> None:
        check_schedule(schedule)
        self.schedule = schedule
        if isinstance(streams, Mapping):
            tasks = list(schedule.tasks)
            missing = [t for t in tasks if t not in streams]
            extra = sorted(str(k) for k in streams if k not in tasks)
            if missing or extra:
                raise ValueError(f"streams: keys must be the schedule's tasks {tasks}; missing {missing}, unexpected {extra}")
            self.streams = [streams[t] for t in tasks]
        elif isinstance(streams, (str, bytes)) or not isinstance(streams, Sequence):
            raise TypeError(f"streams must be a mapping task name -> iterable or a list of iterables (one per task), "
                            f"got {type(streams).__name__}")
        else:
            self.streams = list(streams)
            if len(self.streams) != schedule.n_tasks:
                raise ValueError(f"streams: got {len(self.streams)}, expected {schedule.n_tasks} (one per task {list(schedule.tasks)})")
        for t, stream in zip(schedule.tasks, self.streams):
            if isinstance(stream, (str, bytes)) or not hasattr(stream, "__iter__"):
                raise TypeError(f"streams[{t[:40]!r}] must be an iterable of examples, got {type(stream).__name__}")
        self.num_steps = None if num_steps is None else positive_int("num_steps", num_steps)
        self.batch_size, self.seed, self.per, self.rank, self.world_size = check_replay_args(
            batch_size, seed, per, rank, world_size)
        if self.num_steps is not None and self.num_steps > max_step(self.batch_size) + 1:
            raise ValueError(f"num_steps must be at most {max_step(self.batch_size) + 1} (a replay position is below "
                             f"2^32 samples: step x batch_size {self.batch_size}), got {self.num_steps}")
        if not isinstance(with_task, (bool, np.bool_)):
            raise TypeError(f"with_task must be True or False, got {type(with_task).__name__}")
        self.with_task = bool(with_task)
        self._digest = schedule_digest(schedule)
        self._step = 0  # global steps fully produced
        self._counts = np.zeros(schedule.n_tasks, dtype=np.int64)  # examples taken per task (all ranks)
        self._ready = False  # the task sampler and stream iterators match _step (built lazily: picklable until used)
        self._sampler: TaskSampler | None = None
        self._iters: list[Any] = []
        self._passes: list[int] = []

    # ----------------------------------------------------------- position
    @property
    def step(self) -> int:
        """Global steps produced so far: the step the next example belongs to."""
        return self._step

    @property
    def local_batch_size(self) -> int:
        """Examples per step on this rank."""
        return self.batch_size // self.world_size

    def __len__(self) -> int:
        if self.num_steps is None:
            raise TypeError("an endless ScheduleIterableDataset (num_steps=None) has no length")
        return self.num_steps * self.local_batch_size

    def task_counts(self) -> np.ndarray:
        """Examples taken from each task's stream so far (whole global batches, every rank's share)."""
        return self._counts.copy()

    def _open(self, task: int, pass_no: int) -> Any:
        stream = self.streams[task]
        if hasattr(stream, "set_epoch"):
            stream.set_epoch(pass_no)
        return iter(stream)

    def _next_example(self, task: int) -> Any:
        try:
            return next(self._iters[task])
        except StopIteration:
            self._passes[task] += 1
            self._iters[task] = self._open(task, self._passes[task])
            try:
                return next(self._iters[task])
            except StopIteration:
                raise ValueError(f"stream of task {self.schedule.tasks[task]!r} is empty") from None

    def _seek(self, step: int) -> None:
        """Rebuild the draws and the streams so that the next example is the first of global step ``step``."""
        self._sampler = TaskSampler(self.schedule, self.batch_size, None, seed=self.seed, per=self.per)
        counts = self._sampler.skip(step)  # task counts of the first `step` steps (counted, not kept)
        self._passes = [0] * self.schedule.n_tasks
        self._iters = [self._open(i, 0) for i in range(self.schedule.n_tasks)]
        for i, n in enumerate(counts):
            self._skip_examples(i, int(n))
        self._counts, self._step, self._ready = counts, int(step), True

    def _skip_examples(self, task: int, n: int) -> None:
        """Read past the next ``n`` examples of ``task``'s stream (starting new passes as it runs out), at C speed."""
        while n > 0:
            taken = itertools.count()
            deque(zip(itertools.islice(self._iters[task], n), taken), maxlen=0)
            k = next(taken)  # how many the stream gave (zip stops pulling from `taken` when the stream ends)
            n -= k
            if n > 0:  # the stream ran out: start the next pass, as _next_example does
                self._passes[task] += 1
                self._iters[task] = self._open(task, self._passes[task])
                try:
                    next(self._iters[task])
                except StopIteration:
                    raise ValueError(f"stream of task {self.schedule.tasks[task]!r} is empty") from None
                n -= 1

    # ---------------------------------------------------------- iteration
    def __iter__(self) -> Iterator[Any]:
        from torch.utils.data import get_worker_info

        info = get_worker_info()
        if info is not None and info.num_workers > 1:
            raise ValueError(
                f"ScheduleIterableDataset: DataLoader(num_workers={info.num_workers}) would replay the streams "
                "once per worker; use num_workers=0 or 1"
            )
        if not self._ready:  # first use, a partially consumed step, or a fresh copy in a worker
            self._seek(self._step)
        self._ready = False  # until this iteration ends at a step boundary
        end = None if self.num_steps is None else (self._step // self.num_steps + 1) * self.num_steps
        assert self._sampler is not None
        while end is None or self._step < end:
            tasks = self._sampler.next_tasks()
            for k, t in enumerate(tasks):
                ex = self._next_example(int(t))
                if k % self.world_size == self.rank:
                    yield (int(t), ex) if self.with_task else ex
            self._counts += np.bincount(tasks, minlength=self.schedule.n_tasks)
            self._step += 1
        self._ready = True

    def set_epoch(self, epoch: int) -> None:
        """Move to the start of ``epoch`` (needs ``num_steps``); a no-op while inside that epoch."""
        if self.num_steps is None:
            raise ValueError("set_epoch needs num_steps")
        epoch = check_step("epoch", epoch, self.batch_size, per=self.num_steps, unit="epoch")
        if self._step // self.num_steps == epoch and self._step % self.num_steps:
            return
        if self._step != epoch * self.num_steps:
            self._step, self._ready = int(epoch) * self.num_steps, False

    def __getstate__(self) -> dict[str, Any]:  # for DataLoader workers: live iterators are not picklable
        state = dict(self.__dict__)
        state.update(_sampler=None, _iters=[], _passes=[], _ready=False)
        return state

    # --------------------------------------------------------- persistence
    def state_dict(self, step: int | None = None) -> dict[str, Any]:
        """The stream position after ``step`` global steps (default: the steps produced so far); JSON-serialisable."""
        step = self._step if step is None else check_step("step", step, self.batch_size)
        return {"format": STREAM_STATE_FORMAT, "step": int(step), "seed": self.seed, "batch_size": self.batch_size,
                "per": self.per, "tasks": list(self.schedule.tasks), "schedule_digest": self._digest}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue after the saved step (the streams are re-read up to it on the next ``iter()``)."""
        if not isinstance(state, Mapping) or state.get("format") != STREAM_STATE_FORMAT:
            got = state.get("format") if isinstance(state, Mapping) else type(state).__name__
            raise ValueError(f"state: 'format' is {got!r}, expected {STREAM_STATE_FORMAT!r}")
        for key, mine in (("tasks", list(self.schedule.tasks)), ("schedule_digest", self._digest),
                          ("batch_size", self.batch_size), ("per", self.per)):
            if state.get(key) != mine:
                raise ValueError(f"state: {key} is {state.get(key)!r}, but this dataset has {mine!r}")
        step = check_step("state: step", state.get("step"), self.batch_size)
        seed = check_seed("state: seed", state.get("seed"))
        self.seed, self._step, self._ready = seed, step, False

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(tasks={list(self.schedule.tasks)}, batch_size={self.batch_size}, "
                f"num_steps={self.num_steps}, per={self.per!r}, rank={self.rank}, world_size={self.world_size}, "
                f"step={self._step})")


