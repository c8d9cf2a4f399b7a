"""Replay a :class:`~taskmix.schedule.Schedule` with Hugging Face ``transformers`` and ``datasets``.

Needs the ``text`` extra (``transformers``, ``accelerate``, ``datasets``).  Two routes:

* :class:`ScheduleTrainer`: a ``transformers.Trainer`` whose training sampler
  replays the schedule over the concatenation of the task datasets (in
  schedule task order), plus :class:`TaskProportionCallback`, which puts the
  realised and the scheduled task proportions into the Trainer's log.
* :func:`interleave_stages`: an offline export of the schedule as one
  ``datasets.Dataset`` built with ``datasets.interleave_datasets``, one stage
  per schedule row (see :func:`to_interleave_stages`), for pipelines that
  consume a dataset in order.

What a step is under the Trainer
--------------------------------
One schedule step is one optimiser step of the Trainer.  It consumes one
global batch of ``per_device_train_batch_size x (data-parallel) world size x
gradient_accumulation_steps`` examples (``Trainer.get_total_train_batch_size``),
and the schedule row at ``state.global_step`` decides its tasks.  The sampler
is the whole global stream (rank 0 of 1): ``accelerate`` cuts it into
per-device micro-batches and deals them out round-robin, so optimiser step
``s`` on all ranks together uses exactly global batch ``s``.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any, Literal, Mapping, Sequence

import datasets
import numpy as np
import transformers
from transformers.trainer_utils import has_length

from ..replay.sampler import check_schedule, check_sizes, positive_int
from ..schedule import Schedule
from ..schedule.export import to_stages
from ..replay.torch import (
    ScheduleBatchSampler,
    ScheduleSampler,
    check_dataset_sizes,
    scheduled_proportions,
)

__all__ = [
    "ScheduleTrainer",
    "TaskProportionCallback",
    "to_interleave_stages",
    "interleave_stages",
]

logger = logging.getLogger(__name__)

_EVAL_PREFIXES = ("eval_", "test_", "predict_")


class TaskProportionCallback(transformers.TrainerCallback):
    """Logs realised versus scheduled task proportions.

    Realised proportions count the tasks of the global batches of optimiser
    steps ``[0, state.global_step)`` as drawn by the attached
    :class:`~taskmix.replay.torch.ScheduleSampler` (the stream is identical on
    every rank, so these are the examples all ranks consumed together);
    scheduled proportions average the schedule rows of the same steps.  With
    :class:`ScheduleTrainer` the sampler is attached automatically; with
    another ``Trainer`` call :meth:`attach`.

    Each training log gets ``{prefix}/realised/{task}``,
    ``{prefix}/scheduled/{task}`` and ``{prefix}/tv_distance`` (total
    variation distance between the two).  The latest values stay available as
    :attr:`realised`, :attr:`scheduled`, :attr:`counts` and :attr:`steps`;
    :attr:`history` keeps one dict per log.
    """

    def __init__(self, sampler: ScheduleSampler | ScheduleBatchSampler | None = None, prefix: str = "taskmix"):
        if not isinstance(prefix, str) or not prefix:
            raise ValueError(f"prefix must be a non-empty string, got {prefix!r}")
        self.prefix = prefix
        self.sampler: ScheduleSampler | ScheduleBatchSampler | None = None
        self.tasks: tuple[str, ...] = ()
        self.realised: np.ndarray | None = None
        self.scheduled: np.ndarray | None = None
        self.counts: np.ndarray | None = None
        self.steps = 0
        self.history: list[dict[str, float]] = []
        if sampler is not None:
            self.attach(sampler)

    def attach(self, sampler: ScheduleSampler | ScheduleBatchSampler) -> None:
        """Read task counts from ``sampler`` (which must record them)."""
        if not isinstance(sampler, (ScheduleSampler, ScheduleBatchSampler)):
            raise TypeError(f"sampler must be a ScheduleSampler or ScheduleBatchSampler, got {type(sampler).__name__}")
        sampler.steps_drawn(0, 0)  # raises if built with record=False
        self.sampler = sampler
        self.tasks = sampler.schedule.tasks

    def update(self, global_step: int) -> dict[str, float]:
        """Recompute the proportions over optimiser steps ``[0, global_step)``; returns the log entries."""
        if self.sampler is None:
            return {}
        steps = self.sampler.steps_drawn(0, global_step)
        if steps.size == 0:
            return {}
        counts = self.sampler.task_counts(0, global_step)
        realised = counts / counts.sum()
        scheduled = scheduled_proportions(self.sampler.schedule, steps)
        self.counts, self.realised, self.scheduled, self.steps = counts, realised, scheduled, int(steps.size)
        out: dict[str, float] = {}
        for t, r, s in zip(self.tasks, realised, scheduled):
            out[f"{self.prefix}/realised/{t}"] = float(r)
            out[f"{self.prefix}/scheduled/{t}"] = float(s)
        out[f"{self.prefix}/tv_distance"] = float(0.5 * np.abs(realised - scheduled).sum())
        return out

    def on_train_begin(self, args, state, control, **kwargs):
        """Find the trainer's schedule sampler when none was attached."""
        if self.sampler is None:
            found = _find_schedule_sampler(kwargs.get("train_dataloader"))
            if found is not None:
                self.attach(found)
            else:
                warnings.warn(
                    "TaskProportionCallback: no ScheduleSampler found; use ScheduleTrainer or call attach(sampler)",
                    stacklevel=2,
                )

    def on_log(self, args, state, control, logs=None, **kwargs):
        """Add the realised task proportions to every training log."""
        if logs is None or any(k.startswith(_EVAL_PREFIXES) for k in logs):
            return
        metrics = self.update(state.global_step)
        if not metrics:
            return
        self.history.append({"step": float(state.global_step), **metrics})
        missing = {k: v for k, v in metrics.items() if k not in logs}
        if missing:  # a plain Trainer: add them to this log entry as well
            logs.update(missing)
            if state.log_history and state.log_history[-1].get("step") == state.global_step:
                state.log_history[-1].update(missing)

    def on_train_end(self, args, state, control, **kwargs):
        """Log the final realised proportions."""
        self.update(state.global_step)


class ScheduleTrainer(transformers.Trainer):
    """A ``transformers.Trainer`` that draws its training examples by replaying ``schedule``.

    ``train_dataset`` must be the concatenation of the task datasets in
    schedule task order (``datasets.concatenate_datasets`` or
    ``torch.utils.data.ConcatDataset``), with ``task_sizes`` giving the length
    of each part.  Optimiser step ``s`` uses global batch ``s`` of the
    schedule (see the module docstring); ``args.train_sampling_strategy`` is
    ignored.

    Keyword args (besides the ``Trainer``'s):
        schedule: the task weights to replay.
        task_sizes: examples per task, in schedule task order (or a mapping
            task name -> size).
        schedule_seed: seed of the task draws (default ``args.data_seed``, else
            ``args.seed``); the same on every rank.
        per: ``"sample"`` or ``"batch"`` task draws.
        steps_per_epoch: optimiser steps per Trainer epoch (default
            ``args.max_steps`` when set, else enough steps to draw
            ``len(train_dataset)`` examples).  The schedule keeps advancing
            across epochs.
    """

    def __init__(
        self,
        *args: Any,
        schedule: Schedule,
        task_sizes: Sequence[int] | Mapping[str, int],
        schedule_seed: int | None = None,
        per: Literal["sample", "batch"] = "sample",
        steps_per_epoch: int | None = None,
        **kwargs: Any,
    ) -> None:
        check_schedule(schedule)
        self.schedule = schedule
        self.task_sizes = check_sizes(task_sizes, schedule)
        if per not in ("sample", "batch"):
            raise ValueError(f"per must be 'sample' or 'batch', got {per!r}")
        self.per: Literal["sample", "batch"] = per
        self.steps_per_epoch = None if steps_per_epoch is None else positive_int("steps_per_epoch", steps_per_epoch)
        self.schedule_seed = schedule_seed
        self.schedule_sampler: ScheduleSampler | None = None
        super().__init__(*args, **kwargs)
        if self.train_dataset is not None and has_length(self.train_dataset):
            self._check_train_length(self.train_dataset)

    def _check_train_length(self, dataset: Any) -> None:
        from torch.utils.data import ConcatDataset

        total = sum(self.task_sizes)
        if len(dataset) != total:
            raise ValueError(
                f"train_dataset has {len(dataset)} examples, but task_sizes {self.task_sizes} sum to {total}; "
                "expected the task datasets concatenated in schedule task order"
            )
        if isinstance(dataset, ConcatDataset):  # its parts must be the tasks, with exactly these sizes
            try:
                check_dataset_sizes(dataset, self.task_sizes, self.schedule)
            except ValueError as e:
                raise ValueError(f"task_sizes: {e}") from None

    def _get_train_sampler(self, train_dataset: Any = None) -> ScheduleSampler:
        dataset = self.train_dataset if train_dataset is None else train_dataset
        if dataset is None or not has_length(dataset):
            raise ValueError(
                "train_dataset: ScheduleTrainer needs a map-style dataset with a length "
                "(the task datasets concatenated in schedule task order)"
            )
        self._check_train_length(dataset)
        if self.args.train_sampling_strategy != "random":
            logger.warning(
                "ScheduleTrainer ignores train_sampling_strategy=%r: the schedule decides the order",
                self.args.train_sampling_strategy,
            )
        global_batch = self.get_total_train_batch_size(self.args)
        if self.steps_per_epoch is not None:
            num_steps = self.steps_per_epoch
        elif self.args.max_steps > 0:
            num_steps = self.args.max_steps
        else:
            num_steps = max(1, math.ceil(len(dataset) / global_batch))
        seed = self.schedule_seed
        if seed is None:
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        sampler = ScheduleSampler(
            self.schedule,
            self.task_sizes,
            batch_size=global_batch,
            num_steps=num_steps,
            seed=seed,
            per=self.per,
            rank=0,  # the global stream; accelerate deals the micro-batches out to the ranks
            world_size=1,
        )
        self.schedule_sampler = sampler
        for cb in self.callback_handler.callbacks:
            if isinstance(cb, TaskProportionCallback):
                cb.attach(sampler)
        return sampler

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        # Add the proportions before the Trainer records the log, so that every
        # reporter (and state.log_history) sees them.
        """Log ``logs`` with the realised task proportions added."""
        if not any(k.startswith(_EVAL_PREFIXES) for k in logs):
            for cb in self.callback_handler.callbacks:
                if isinstance(cb, TaskProportionCallback) and cb.sampler is not None:
                    logs.update(cb.update(self.state.global_step))
                    break
        super().log(logs, start_time)


# ---------------------------------------------------------------- interleave
def to_interleave_stages(
    schedule: Schedule,
    total_steps: int,
    batch_size: int,
    by: Literal["meta_step", "distinct_row"] = "meta_step",
) -> list[dict[str, Any]]:
    """The schedule as constant-probability stages for ``datasets.interleave_datasets``: :func:`taskmix.schedule.export.to_stages`."""
    return to_stages(schedule, total_steps, batch_size, by)  # also behind `taskmix schedule export --format interleave`


def interleave_stages(
    datasets_in_task_order: Sequence[datasets.Dataset] | Mapping[str, datasets.Dataset],
    schedule: Schedule,
    total_steps: int,
    batch_size: int,
    seed: int = 0,
    stopping_strategy: Literal["all_exhausted", "first_exhausted"] = "all_exhausted",
    by: Literal["meta_step", "distinct_row"] = "meta_step",
    task_column: str | None = None,
) -> datasets.Dataset:
    """Export the schedule as one ``datasets.Dataset`` to be read in order, ``batch_size`` rows per step.

    Stage ``k`` of :func:`to_interleave_stages` becomes the rows
    ``[start * batch_size, end * batch_size)``, drawn by
    ``datasets.interleave_datasets(probabilities=stage probabilities,
    seed=<derived from seed and k>, stopping_strategy=stopping_strategy)``.
    Tasks with zero weight in a stage are left out of that stage
    (``interleave_datasets`` rejects a zero probability under
    ``"all_exhausted"``, since such a source can never be exhausted).

    What ``interleave_datasets`` does (``datasets`` 5.x, map-style): the source
    of every row is drawn independently from ``probabilities`` (with
    replacement); each source is read in its stored order, never shuffled
    (shuffle the task datasets first if you want that).  Under
    ``"first_exhausted"`` the output ends right after the row that takes the
    last example of some source (undersampling; nothing repeats).  Under
    ``"all_exhausted"`` a source that runs out restarts from its first example
    and the output ends once every source has been used up at least once
    (oversampling: small sources repeat).  ``"all_exhausted_without_replacement"``
    skips exhausted sources, which shifts the proportions, so it is not offered.

    On top of that, each task's dataset is read as ONE stream across stages:
    stage ``k`` continues each task where stage ``k - 1`` stopped (rather
    than restarting every source at its first example in every stage).

    * ``"all_exhausted"`` (default): the stream wraps around at the end of the
      dataset, and every stage has exactly its ``num_examples`` rows; when one
      ``interleave_datasets`` call ends early, another (fresh seed) continues
      the stage.  A call draws about ``min(len(task), num_examples) /
      probability`` rows for its rarest task before it stops.
    * ``"first_exhausted"``: no example is used twice in the whole export.
      The export ends inside a stage when ``interleave_datasets`` stops (right
      after it uses some task's last example) before the stage is full, or at
      the start of a stage that would draw from a task already used up;
      the result is then shorter than ``total_steps * batch_size`` (with a
      warning).  The stages it does contain start at their scheduled rows.

    The draws are those of ``interleave_datasets``, run on light index
    datasets of the same lengths; the rows are then gathered with one
    ``select`` over ``datasets.concatenate_datasets(datasets_in_task_order)``,
    which is what interleaving the datasets themselves gives, without copying
    them per stage.  ``task_column``, if given, adds a column with each row's
    task index (this copies any dataset that has an indices mapping).
    """
    check_schedule(schedule)
    parts = _task_datasets(datasets_in_task_order, schedule)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if stopping_strategy not in ("all_exhausted", "first_exhausted"):
        raise ValueError(
            f"stopping_strategy must be 'all_exhausted' or 'first_exhausted', got {stopping_strategy!r}"
            + (" (it skips exhausted sources, which shifts the proportions)" if "without" in str(stopping_strategy) else "")
        )
    if task_column is not None:
        if not isinstance(task_column, str) or not task_column:
            raise ValueError(f"task_column must be a non-empty string or None, got {task_column!r}")
        clash = [schedule.tasks[i] for i, d in enumerate(parts) if task_column in d.column_names]
        if clash:
            raise ValueError(f"task_column {task_column!r} already exists in the dataset(s) of task(s) {clash}")
    stages = to_interleave_stages(schedule, total_steps, batch_size, by=by)

    sizes = np.array([len(d) for d in parts], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    wrap = stopping_strategy == "all_exhausted"
    cursors = np.zeros(len(parts), dtype=np.int64)  # next unread example of each task
    chosen: list[np.ndarray] = []
    ended_at: tuple[int, int, str] | None = None  # (stage, rows short, task) when first_exhausted ran out

    for k, stage in enumerate(stages):
        probs = np.asarray(stage["probabilities"])
        active = np.flatnonzero(probs > 0)
        need, chunk = stage["num_examples"], 0
        while need > 0:
            if not wrap:
                empty = [int(i) for i in active if cursors[i] >= sizes[i]]
                if empty:
                    ended_at = (k, need, schedule.tasks[empty[0]])
                    break
            sources = []
            for i in active:
                if wrap:  # rows cursor, cursor+1, ... cyclically; more than `need` are never reached
                    rows = (cursors[i] + np.arange(min(sizes[i], need))) % sizes[i]
                else:
                    rows = np.arange(cursors[i], sizes[i])
                sources.append(datasets.Dataset.from_dict({"task": np.full(len(rows), i), "row": rows}))
            p = probs[active] / probs[active].sum()
            mixed = datasets.interleave_datasets(
                sources,
                probabilities=p.tolist(),
                seed=_stage_seed(int(seed), k, chunk),
                stopping_strategy=stopping_strategy,
            )
            take = min(need, len(mixed))
            got = mixed.select(range(take)).with_format("numpy")
            tasks, rows = np.asarray(got["task"], dtype=np.int64), np.asarray(got["row"], dtype=np.int64)
            chosen.append(offsets[tasks] + rows)
            used = np.bincount(tasks, minlength=len(parts))
            cursors = (cursors + used) % sizes if wrap else cursors + used
            need -= take
            chunk += 1
            if need > 0 and not wrap:
                gone = [schedule.tasks[int(i)] for i in active if cursors[i] >= sizes[i]]
                ended_at = (k, need, gone[0] if gone else "?")
                break
        if ended_at is not None:
            break

    if ended_at is not None:
        k, short, task = ended_at
        start, end = stages[k]["steps"]
        warnings.warn(
            f"interleave_stages: first_exhausted ran out of task {task!r} {short} rows before the end of stage {k} "
            f"(steps {start}-{end}); the export stops there. Use stopping_strategy='all_exhausted' to repeat examples",
            stacklevel=2,
        )
    if task_column is not None:
        parts = [d.add_column(task_column, np.full(len(d), i, dtype=np.int64)) for i, d in enumerate(parts)]
    indices = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    return datasets.concatenate_datasets(parts).select(indices)


def _stage_seed(seed: int, stage: int, chunk: int) -> int:
    """Seed of the ``chunk``-th ``interleave_datasets`` call of stage ``stage``."""
    return int(np.random.SeedSequence([seed, stage, chunk]).generate_state(1)[0])


def _task_datasets(data: Any, schedule: Schedule) -> list[datasets.Dataset]:
    tasks = list(schedule.tasks)
    if isinstance(data, Mapping):
        missing = [t for t in tasks if t not in data]
        extra = sorted(str(k) for k in data if k not in tasks)
        if missing or extra:
            raise ValueError(
                f"datasets_in_task_order: keys must be the schedule's tasks {tasks}; "
                f"missing {missing}, unexpected {extra}"
            )
        data = [data[t] for t in tasks]
    if isinstance(data, (str, bytes)) or not isinstance(data, Sequence):
        raise TypeError(f"datasets_in_task_order must be a list of datasets.Dataset, got {type(data).__name__}")
    if len(data) != len(tasks):
        raise ValueError(f"datasets_in_task_order has {len(data)} datasets, expected {len(tasks)} (tasks {tasks})")
    for t, d in zip(tasks, data):
        if not isinstance(d, datasets.Dataset):
            raise TypeError(
                f"datasets_in_task_order: task {t!r} is a {type(d).__name__}, expected a map-style datasets.Dataset"
            )
        if len(d) == 0:
            raise ValueError(f"datasets_in_task_order: task {t!r} has no examples")
    return list(data)


def _find_schedule_sampler(obj: Any, depth: int = 0) -> ScheduleSampler | ScheduleBatchSampler | None:
    """Look for a taskmix sampler inside a (possibly accelerate-wrapped) DataLoader."""
    if isinstance(obj, (ScheduleSampler, ScheduleBatchSampler)):
        return obj
    if obj is None or depth > 4:
        return None
    for name in ("sampler", "batch_sampler", "base_dataloader"):
        inner = getattr(obj, name, None)
        if inner is not None and inner is not obj:
            found = _find_schedule_sampler(inner, depth + 1)
            if found is not None:
                return found
    return None
