"""Replaying a schedule with Hugging Face: ScheduleTrainer, TaskProportionCallback, interleave export."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

transformers = pytest.importorskip("transformers")
datasets = pytest.importorskip("datasets")

import torch  # noqa: E402
from scipy.stats import chisquare  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import ConcatDataset, Dataset  # noqa: E402

from taskmix.hf.replay import (  # noqa: E402
    ScheduleTrainer,
    TaskProportionCallback,
    _stage_seed,
    interleave_stages,
    to_interleave_stages,
)
from taskmix.schedule import Schedule  # noqa: E402
from taskmix.replay.torch import ScheduleBatchSampler  # noqa: E402

TASKS = ["a", "b", "c"]
SIZES = [50, 30, 20]


# ------------------------------------------------------------------- Trainer
class ToyTask(Dataset):
    """Example i of task t: features (i, t), label t, and its task id."""

    def __init__(self, task: int, n: int):
        self.task, self.n = task, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, torch.Tensor | int]:
        return {"x": torch.tensor([float(i), float(self.task)]), "labels": self.task, "task_id": self.task}


class RecordingModel(nn.Module):
    """A tiny classifier that records which examples each forward pass consumed."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 3)
        self.consumed: list[tuple[list[int], list[int]]] = []  # (task ids, example ids) per micro-batch

    def forward(self, x: torch.Tensor, labels: torch.Tensor, task_id: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.training:
            self.consumed.append((task_id.tolist(), x[:, 0].long().tolist()))
        logits = self.linear(x)
        return {"loss": nn.functional.cross_entropy(logits, labels), "logits": logits}


def make_trainer(
    tmp_path, schedule, *, steps, per_device, accumulation, callbacks=(), seed=0, task_sizes=SIZES, save_steps=None
):
    pytest.importorskip("accelerate")  # the Trainer needs it
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=per_device,
        gradient_accumulation_steps=accumulation,
        max_steps=steps,
        logging_steps=10,
        learning_rate=1e-3,
        report_to=[],
        use_cpu=True,
        save_strategy="steps" if save_steps else "no",
        save_steps=save_steps or 500,
        disable_tqdm=True,
        seed=seed,
    )
    train = ConcatDataset([ToyTask(t, n) for t, n in enumerate(SIZES)])
    return ScheduleTrainer(
        model=RecordingModel(),
        args=args,
        train_dataset=train,
        schedule=schedule,
        task_sizes=task_sizes,
        callbacks=list(callbacks),
    )


def test_trainer_consumes_the_scheduled_mixture(tmp_path):
    schedule = Schedule.from_weights(TASKS, [0.6, 0.3, 0.1])
    callback = TaskProportionCallback()
    trainer = make_trainer(tmp_path, schedule, steps=40, per_device=16, accumulation=2, callbacks=[callback], seed=7)
    trainer.train()
    consumed = trainer.model.consumed
    assert len(consumed) == 80  # 40 optimiser steps x 2 micro-batches
    task_ids = np.concatenate([t for t, _ in consumed])
    counts = np.bincount(task_ids, minlength=3)
    assert chisquare(counts, schedule.weights[0] * task_ids.size).pvalue > 0.001
    assert chisquare(counts, np.array([0.5, 0.35, 0.15]) * task_ids.size).pvalue < 0.001  # the test has power

    # optimiser step s consumed global batch s (32 examples) of the replayed stream, in order
    ref = ScheduleBatchSampler(schedule, SIZES, batch_size=32, num_steps=40, seed=7)
    offsets = np.array([0, 50, 80])
    global_idx = [offsets[t] + e for micro in consumed for t, e in zip(*micro)]
    assert global_idx == [i for batch in ref for i in batch]

    # the callback reports what was consumed, next to the schedule, in the Trainer's log
    assert np.array_equal(callback.counts, counts)
    assert np.allclose(callback.realised, counts / counts.sum())
    assert np.allclose(callback.scheduled, schedule.weights[0])
    assert callback.steps == 40
    logged = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logged) == 4
    assert all(f"taskmix/realised/{t}" in h and f"taskmix/scheduled/{t}" in h for h in logged for t in TASKS)
    assert logged[-1]["taskmix/realised/a"] == pytest.approx(counts[0] / counts.sum())
    assert [h["step"] for h in callback.history][:4] == [10, 20, 30, 40]


def test_trainer_schedule_row_follows_the_optimiser_step(tmp_path):
    # rows switch every 3 optimiser steps; with accumulation 2 that is every 6 micro-batches
    schedule = Schedule.from_weights(TASKS, [[1, 0, 0], [0, 0, 1], [0, 1, 0]], steps_per_meta_step=3)
    trainer = make_trainer(tmp_path, schedule, steps=8, per_device=4, accumulation=2)
    trainer.train()
    per_micro = [set(t) for t, _ in trainer.model.consumed]
    assert len(per_micro) == 16
    expected = [{0}] * 6 + [{2}] * 6 + [{1}] * 4
    assert per_micro == expected


def test_trainer_resume_from_checkpoint_continues_the_stream(tmp_path):
    schedule = Schedule.from_weights(TASKS, [[0.6, 0.3, 0.1], [0.1, 0.1, 0.8]], steps_per_meta_step=4)
    first = make_trainer(tmp_path / "first", schedule, steps=8, per_device=4, accumulation=2, save_steps=3)
    first.train()
    proportions = TaskProportionCallback()
    again = make_trainer(tmp_path / "again", schedule, steps=8, per_device=4, accumulation=2, callbacks=[proportions])
    again.train(resume_from_checkpoint=str(tmp_path / "first" / "out" / "checkpoint-3"))
    # steps 3..7 (micro-batches 6..15) are exactly those of the uninterrupted run
    assert again.model.consumed == first.model.consumed[6:]
    consumed = np.concatenate([t for t, _ in first.model.consumed])
    assert np.array_equal(proportions.counts, np.bincount(consumed, minlength=3)) and proportions.steps == 8


def test_trainer_rejects_a_train_set_that_does_not_match_task_sizes(tmp_path):
    schedule = Schedule.from_weights(TASKS, [0.6, 0.3, 0.1])
    with pytest.raises(ValueError, match=r"train_dataset has 100 examples, but task_sizes \[50, 30, 21\] sum to 101"):
        make_trainer(tmp_path, schedule, steps=2, per_device=2, accumulation=1, task_sizes=[50, 30, 21])


# ---------------------------------------------------------------- interleave
def task_datasets(sizes=(60, 40, 30)) -> list:
    return [
        datasets.Dataset.from_dict({"text": [f"{name}{i}" for i in range(n)], "label": [k] * n})
        for k, (name, n) in enumerate(zip(TASKS, sizes))
    ]


def test_to_interleave_stages():
    s = Schedule.from_weights(TASKS, [[0.5, 0.5, 0], [0.5, 0.5, 0], [0.2, 0.2, 0.6]], steps_per_meta_step=4)
    stages = to_interleave_stages(s, total_steps=10, batch_size=8)
    assert [st["steps"] for st in stages] == [(0, 4), (4, 8), (8, 10)]
    assert [st["num_examples"] for st in stages] == [32, 32, 16]
    assert stages[2]["probabilities"] == pytest.approx([0.2, 0.2, 0.6])
    merged = to_interleave_stages(s, total_steps=10, batch_size=8, by="distinct_row")
    assert [(st["steps"], st["num_examples"]) for st in merged] == [((0, 8), 64), ((8, 10), 16)]
    # rows past total_steps are not reached; the last row runs to the end
    assert [st["steps"] for st in to_interleave_stages(s, 3, 8)] == [(0, 3)]
    assert [st["steps"] for st in to_interleave_stages(s, 20, 1)][-1] == (8, 20)
    with pytest.raises(ValueError, match="by must be 'meta_step' or 'distinct_row', got 'row'"):
        to_interleave_stages(s, 10, 8, by="row")
    with pytest.raises(ValueError, match="total_steps must be a positive integer, got 0"):
        to_interleave_stages(s, 0, 8)


def test_interleave_export_realises_the_schedule_and_switches_stages():
    s = Schedule.from_weights(TASKS, [[0.7, 0.3, 0.0], [0.0, 0.2, 0.8], [0.3, 0.3, 0.4]], steps_per_meta_step=25)
    batch, total = 16, 100
    out = interleave_stages(task_datasets(), s, total, batch, seed=3, task_column="task")
    assert len(out) == total * batch
    task = np.asarray(out["task"])
    assert np.array_equal(task, np.asarray(out["label"]))  # the task column names the rows' source
    for row, (start, end) in enumerate([(0, 25), (25, 50), (50, 100)]):
        part = task[start * batch : end * batch]
        expected = s.weights[row] * part.size
        counts = np.bincount(part, minlength=3)
        assert (counts[expected == 0] == 0).all()  # a zero-weight task is absent from its stage
        keep = expected > 0
        assert chisquare(counts[keep], expected[keep]).pvalue > 0.001, row
    # the switches happen at the exact example counts
    assert task[25 * batch - 400 : 25 * batch].max() <= 1 and task[25 * batch : 50 * batch].min() >= 1
    assert 2 not in task[: 25 * batch] and 0 not in task[25 * batch : 50 * batch]


def test_interleave_reads_each_task_as_one_stream_across_stages():
    s = Schedule.from_weights(TASKS, [[0.5, 0.5, 0.0], [0.5, 0.0, 0.5]], steps_per_meta_step=5)
    out = interleave_stages(task_datasets((60, 40, 30)), s, total_steps=30, batch_size=8, seed=0)
    by_task: dict[str, list[int]] = {t: [] for t in TASKS}
    for text in out["text"]:
        by_task[text[0]].append(int(text[1:]))
    for t, n in zip(TASKS, (60, 40, 30)):
        seq = by_task[t]
        # consecutive examples, wrapping around at the end of the dataset, never restarting per stage
        assert seq == [i % n for i in range(len(seq))], t
    assert len(by_task["a"]) > 60  # task a wrapped around


def test_single_stage_export_equals_interleave_datasets():
    s = Schedule.from_weights(TASKS, [0.5, 0.3, 0.2])
    data = task_datasets((30, 20, 10))
    ref = list(
        datasets.interleave_datasets(
            data, probabilities=[0.5, 0.3, 0.2], seed=_stage_seed(5, 0, 0), stopping_strategy="all_exhausted"
        )["text"]
    )
    # shorter than one interleave_datasets call (and than the largest task)
    short = interleave_stages(data, s, total_steps=2, batch_size=10, seed=5)
    assert list(short["text"]) == ref[:20]
    # longer: the first call's rows, then a fresh call continues the stage
    long = list(interleave_stages(data, s, total_steps=12, batch_size=10, seed=5)["text"])
    assert len(ref) < 120 and len(long) == 120
    assert long[: len(ref)] == ref


def test_interleave_datasets_rejects_zero_probability_under_all_exhausted():
    # why interleave_stages drops zero-weight tasks from a stage
    with pytest.raises(ValueError, match="probability 0"):
        datasets.interleave_datasets(task_datasets()[:2], probabilities=[1.0, 0.0], stopping_strategy="all_exhausted")


def test_first_exhausted_never_repeats_and_stops_early():
    s = Schedule.from_weights(TASKS, [[0.5, 0.5, 0.0], [0.2, 0.2, 0.6]], steps_per_meta_step=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = interleave_stages(task_datasets((60, 40, 30)), s, 40, 8, seed=1, stopping_strategy="first_exhausted")
    assert len(out) < 40 * 8
    texts = list(out["text"])
    assert len(set(texts)) == len(texts)
    assert any("first_exhausted ran out of task" in str(w.message) for w in caught)
    # stage 0 is complete and the stream starts each task at its first example
    assert len(out) > 32 and all(t[0] != "c" for t in texts[:32])


def test_interleave_stages_argument_errors():
    s = Schedule.from_weights(TASKS, [0.5, 0.3, 0.2])
    data = task_datasets()
    with pytest.raises(ValueError, match="has 2 datasets, expected 3"):
        interleave_stages(data[:2], s, 4, 4)
    with pytest.raises(ValueError, match="stopping_strategy must be 'all_exhausted' or 'first_exhausted'"):
        interleave_stages(data, s, 4, 4, stopping_strategy="all_exhausted_without_replacement")
    with pytest.raises(ValueError, match=r"missing \['c'\]"):
        interleave_stages({"a": data[0], "b": data[1]}, s, 4, 4)
    with pytest.raises(ValueError, match="task_column 'label' already exists"):
        interleave_stages(data, s, 4, 4, task_column="label")
    with pytest.raises(TypeError, match="expected a map-style datasets.Dataset"):
        interleave_stages([data[0], data[1], data[2].to_iterable_dataset()], s, 4, 4)
    # a mapping is put in schedule order
    ordered = interleave_stages({"c": data[2], "a": data[0], "b": data[1]}, s, 4, 4, seed=2)
    assert list(ordered["text"]) == list(interleave_stages(data, s, 4, 4, seed=2)["text"])
