"""Replaying a schedule in plain PyTorch: ScheduleBatchSampler / ScheduleSampler."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
from scipy.stats import chisquare
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from taskmix.schedule import Schedule
from taskmix.replay.torch import (
    ScheduleBatchSampler,
    ScheduleSampler,
    realised_proportions,
    scheduled_proportions,
)

SIZES = [40, 25, 60]


class IndexDataset(Dataset):
    """Item i is i: the DataLoader returns the indices the sampler chose."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


class TaggedDataset(Dataset):
    def __init__(self, tag: str, n: int):
        self.tag, self.n = tag, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[str, int]:
        return self.tag, i


@pytest.fixture
def schedule() -> Schedule:
    return Schedule.from_weights(["a", "b", "c"], [0.5, 0.3, 0.2])


@pytest.fixture
def varying() -> Schedule:
    # rows switch every 3 steps; the last row holds past the end
    return Schedule.from_weights(["a", "b", "c"], [[0.6, 0.4, 0.0], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]], 3)


def batches(sampler, n: int | None = None) -> list[list[int]]:
    return [list(b) for b in itertools.islice(iter(sampler), n)]


def tasks_of(indices, sizes=SIZES) -> np.ndarray:
    return np.searchsorted(np.cumsum(sizes), np.asarray(indices), side="right")


# ------------------------------------------------------------------ DataLoader
def test_dataloader_workers_give_the_same_index_sequence(varying):
    ds = IndexDataset(sum(SIZES))
    runs = {}
    for workers in (0, 2):
        sampler = ScheduleBatchSampler(varying, SIZES, batch_size=8, num_steps=12, seed=5)
        loader = DataLoader(ds, batch_sampler=sampler, num_workers=workers)
        runs[workers] = [b.tolist() for epoch in range(2) for b in loader]
        # the batch sampler ran in this (the main) process: its position advanced here
        assert sampler.step == 24 and sampler.epoch == 1
    assert runs[0] == runs[2]
    assert len(runs[0]) == 24 and all(len(b) == 8 for b in runs[0])
    # epoch 2 continues the stream (global steps 12..23), it does not replay epoch 1
    uninterrupted = ScheduleBatchSampler(varying, SIZES, batch_size=8, num_steps=24, seed=5)
    assert runs[0] == batches(uninterrupted)


def test_different_seeds_give_different_streams(schedule):
    a = batches(ScheduleBatchSampler(schedule, SIZES, 8, 10, seed=1))
    b = batches(ScheduleBatchSampler(schedule, SIZES, 8, 10, seed=2))
    assert a != b


# --------------------------------------------------------------------- resume
@pytest.mark.parametrize("per", ["sample", "batch"])
def test_resume_mid_epoch_continues_exactly(varying, per):
    full_sampler = ScheduleBatchSampler(varying, SIZES, batch_size=6, num_steps=10, seed=3, per=per)
    full = batches(full_sampler) + batches(full_sampler)  # two epochs
    for k in (0, 1, 4, 9, 10, 13):
        run = ScheduleBatchSampler(varying, SIZES, batch_size=6, num_steps=10, seed=3, per=per)
        done = batches(run, k) if k <= 10 else batches(run) + batches(run, k - 10)
        assert done == full[:k]
        state = json.loads(json.dumps(run.state_dict()))  # the state is plain JSON
        assert state["step"] == k
        resumed = ScheduleBatchSampler(varying, SIZES, batch_size=6, num_steps=10, seed=3, per=per)
        resumed.load_state_dict(state)
        rest = batches(resumed)
        if k < 10:  # finish the interrupted epoch, then the next one
            rest += batches(resumed)
        assert rest == full[k:], k


def test_resume_after_multiworker_prefetch_uses_the_loop_step(varying):
    ds = IndexDataset(sum(SIZES))
    full = batches(ScheduleBatchSampler(varying, SIZES, 8, 16, seed=9))
    sampler = ScheduleBatchSampler(varying, SIZES, 8, 16, seed=9)
    loader = DataLoader(ds, batch_sampler=sampler, num_workers=2, prefetch_factor=2)
    consumed = [b.tolist() for b in itertools.islice(loader, 5)]
    assert consumed == full[:5]
    assert sampler.step > 5  # the workers were fed ahead of the loop
    state = sampler.state_dict(step=5)
    resumed = ScheduleBatchSampler(varying, SIZES, 8, 16, seed=9)
    resumed.load_state_dict(state)
    assert [b.tolist() for b in DataLoader(ds, batch_sampler=resumed)] == full[5:]


def test_set_epoch_positions_the_stream(varying):
    full = batches(ScheduleBatchSampler(varying, SIZES, 4, 5, seed=0, per="sample"), None)
    two = ScheduleBatchSampler(varying, SIZES, 4, 5, seed=0)
    epochs = []
    for e in range(3):
        two.set_epoch(e)
        epochs.append(batches(two))
    ref = ScheduleBatchSampler(varying, SIZES, 4, 15, seed=0)
    assert sum(epochs, []) == batches(ref)
    assert epochs[0] == full
    jump = ScheduleBatchSampler(varying, SIZES, 4, 5, seed=0)
    jump.set_epoch(2)
    assert batches(jump) == epochs[2]
    jump.set_epoch(0)  # going back replays epoch 0
    assert batches(jump) == epochs[0]
    # inside an epoch (e.g. after load_state_dict) set_epoch of that epoch keeps the position
    mid = ScheduleBatchSampler(varying, SIZES, 4, 5, seed=0)
    mid.load_state_dict(jump.state_dict(step=7))
    mid.set_epoch(1)
    assert batches(mid) == epochs[1][2:]


def test_load_state_rejects_a_different_stream(schedule, varying):
    state = ScheduleBatchSampler(schedule, SIZES, 8, 10).state_dict()
    with pytest.raises(ValueError, match="schedule_digest"):
        other = Schedule.from_weights(["a", "b", "c"], [0.4, 0.4, 0.2])
        ScheduleBatchSampler(other, SIZES, 8, 10).load_state_dict(state)
    with pytest.raises(ValueError, match="sizes"):
        ScheduleBatchSampler(schedule, [40, 25, 61], 8, 10).load_state_dict(state)
    with pytest.raises(ValueError, match="batch_size"):
        ScheduleBatchSampler(schedule, SIZES, 16, 10).load_state_dict(state)
    with pytest.raises(ValueError, match="format"):
        ScheduleBatchSampler(schedule, SIZES, 8, 10).load_state_dict({"step": 3})


# ------------------------------------------------------------ data parallel
def test_two_ranks_split_one_global_batch(varying):
    sizes = [400, 300, 500]  # no task wraps around within a step, so examples never repeat in a step
    glob = ScheduleBatchSampler(varying, sizes, 16, 20, seed=11, rank=0, world_size=1)
    r0 = ScheduleBatchSampler(varying, sizes, 16, 20, seed=11, rank=0, world_size=2)
    r1 = ScheduleBatchSampler(varying, sizes, 16, 20, seed=11, rank=1, world_size=2)
    for g, a, b in zip(batches(glob), batches(r0), batches(r1), strict=True):
        assert len(a) == len(b) == 8
        assert not set(a) & set(b)
        assert sorted(a + b) == sorted(g)
        assert a == g[0::2] and b == g[1::2]
    # both ranks drew the identical task sequence (whole global batches)
    for s in range(20):
        assert np.array_equal(r0.task_counts(s, s + 1), r1.task_counts(s, s + 1))
        assert np.array_equal(r0.task_counts(s, s + 1), glob.task_counts(s, s + 1))
    # a rank can resume from another rank's state
    r1b = ScheduleBatchSampler(varying, sizes, 16, 20, seed=11, rank=1, world_size=2)
    r1b.load_state_dict(r0.state_dict(step=7))
    ref = ScheduleBatchSampler(varying, sizes, 16, 20, seed=11, rank=1, world_size=2)
    assert batches(r1b) == batches(ref)[7:]


def test_rank_defaults_without_a_process_group(schedule):
    assert not torch.distributed.is_initialized()
    s = ScheduleBatchSampler(schedule, SIZES, 8, 3)
    assert (s.rank, s.world_size, s.local_batch_size) == (0, 1, 8)


# ------------------------------------------------------------- proportions
def test_realised_proportions_match_the_schedule(schedule):
    sampler = ScheduleBatchSampler(schedule, SIZES, batch_size=32, num_steps=300, seed=0)
    ids = np.concatenate([tasks_of(b) for b in sampler])
    counts = np.bincount(ids, minlength=3)
    assert chisquare(counts, schedule.weights[0] * ids.size).pvalue > 0.001
    # the test has power: a nearby wrong mixture is rejected
    assert chisquare(counts, np.array([0.45, 0.35, 0.2]) * ids.size).pvalue < 0.001
    # the recorded counts are those of the yielded indices
    assert np.array_equal(sampler.task_counts(), counts)
    assert np.allclose(realised_proportions(ids, 3), counts / ids.size)


def test_per_batch_draws_one_task_per_step(schedule):
    sampler = ScheduleBatchSampler(schedule, SIZES, batch_size=8, num_steps=600, seed=4, per="batch")
    step_tasks = []
    for b in sampler:
        t = tasks_of(b)
        assert (t == t[0]).all()
        step_tasks.append(t[0])
    counts = np.bincount(step_tasks, minlength=3)
    assert chisquare(counts, schedule.weights[0] * len(step_tasks)).pvalue > 0.001


def test_time_variant_schedule_switches_rows_at_the_right_step():
    s = Schedule.from_weights(["a", "b", "c"], [[1, 0, 0], [0, 0, 1], [0, 1, 0]], steps_per_meta_step=5)
    # num_steps=4: the switches fall inside epochs 2 and 3; the row is indexed by the global step
    sampler = ScheduleBatchSampler(s, SIZES, batch_size=6, num_steps=4, seed=2)
    per_step = [tasks_of(b) for _ in range(4) for b in sampler]
    assert len(per_step) == 16
    for step, t in enumerate(per_step):
        assert (t == (0 if step < 5 else 2 if step < 10 else 1)).all(), step


def test_time_variant_proportions_per_row(varying):
    sampler = ScheduleBatchSampler(varying, SIZES, batch_size=64, num_steps=60, seed=8)
    steps = [tasks_of(b) for b in sampler]
    for row, span in ((0, range(0, 3)), (1, range(3, 6)), (2, range(6, 60))):
        ids = np.concatenate([steps[i] for i in span])
        expected = varying.weights[row] * ids.size
        keep = expected > 0
        counts = np.bincount(ids, minlength=3)
        assert counts[~keep].sum() == 0
        assert chisquare(counts[keep], expected[keep]).pvalue > 0.001
        assert np.allclose(scheduled_proportions(varying, span), varying.weights[row])


def test_examples_are_passes_without_replacement(schedule):
    one = Schedule.from_weights(["a", "b", "c"], [0, 1, 0])
    sampler = ScheduleBatchSampler(one, SIZES, batch_size=5, num_steps=10, seed=1)
    flat = sum(batches(sampler), [])
    first, second = flat[:25], flat[25:50]
    assert sorted(first) == sorted(second) == list(range(40, 65))  # task b occupies [40, 65)


def test_realised_proportions_helper():
    assert realised_proportions([0, 1, 1, 3], 4).tolist() == [0.25, 0.5, 0.0, 0.25]
    assert realised_proportions(torch.tensor([[2, 2], [0, 2]]), 3).tolist() == [0.25, 0.0, 0.75]
    with pytest.raises(ValueError, match=r"task_ids must lie in \[0, 2\)"):
        realised_proportions([0, 2], 2)
    with pytest.raises(ValueError, match="empty"):
        realised_proportions([], 2)
    with pytest.raises(ValueError, match="n_tasks"):
        realised_proportions([0], 0)


# ------------------------------------------------------------ construction
def test_from_dict_orders_by_schedule_and_indexes_the_right_task(schedule):
    data = {"c": TaggedDataset("c", 60), "a": TaggedDataset("a", 40), "b": TaggedDataset("b", 25)}
    sampler = ScheduleBatchSampler.from_dict(data, schedule, batch_size=8, num_steps=20, seed=0)
    assert isinstance(sampler, ScheduleBatchSampler)  # the sampler itself, not a (sampler, dataset) tuple
    concat = sampler.dataset
    assert isinstance(concat, ConcatDataset)
    assert sampler.sizes == SIZES and len(concat) == 125
    per_index = ScheduleSampler.from_dict(data, schedule, batch_size=8, num_steps=2)
    assert isinstance(per_index, ScheduleSampler) and len(per_index.dataset) == 125
    for b in sampler:
        for i, task in zip(b, tasks_of(b)):
            tag, j = concat[i]
            assert tag == "abc"[task] and 0 <= j < SIZES[task]
    with pytest.raises(ValueError, match=r"missing \['c'\], unexpected \['d'\]"):
        ScheduleBatchSampler.from_dict({"a": data["a"], "b": data["b"], "d": data["c"]}, schedule, batch_size=8, num_steps=2)


def test_from_concat(schedule):
    concat = ConcatDataset([IndexDataset(n) for n in SIZES])
    sampler = ScheduleSampler.from_concat(concat, schedule, batch_size=4, num_steps=3)
    assert sampler.sizes == SIZES and len(sampler) == 12 and sampler.dataset is concat
    with pytest.raises(ValueError, match="has 2 parts, expected 3"):
        ScheduleBatchSampler.from_concat(ConcatDataset([IndexDataset(3), IndexDataset(4)]), schedule, batch_size=4, num_steps=3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sizes": [40, 25]}, r"sizes has 2 entries, expected 3"),
        ({"sizes": [40, 0, 60]}, r"task 'b' has size 0, expected a positive integer"),
        ({"sizes": {"a": 1, "b": 2}}, r"missing \['c'\]"),
        ({"batch_size": 0}, r"batch_size must be a positive integer, got 0"),
        ({"num_steps": 2.5}, r"num_steps must be a positive integer, got 2.5"),
        ({"per": "task"}, r"per must be 'sample' or 'batch', got 'task'"),
        ({"batch_size": 9, "world_size": 2}, r"batch_size \(9\) must be a multiple of world_size \(2\)"),
        ({"rank": 2, "world_size": 2}, r"rank must be an integer in \[0, 2\), got 2"),
        ({"seed": -1}, r"seed must be a non-negative integer, got -1"),
    ],
)
def test_bad_arguments_raise_one_line_value_errors(schedule, kwargs, message):
    args = {"sizes": SIZES, "batch_size": 8, "num_steps": 3, **kwargs}
    with pytest.raises(ValueError, match=message) as info:
        ScheduleBatchSampler(schedule, **args)
    assert "\n" not in str(info.value)


def test_schedule_must_be_a_schedule():
    with pytest.raises(TypeError, match="schedule must be a taskmix.schedule.Schedule"):
        ScheduleBatchSampler([0.5, 0.5], [3, 3], 2, 2)  # type: ignore[arg-type]


# ------------------------------------------------------------ per-index variant
def test_per_index_sampler_flattens_the_batches(varying):
    ref = batches(ScheduleBatchSampler(varying, SIZES, 6, 7, seed=1, rank=1, world_size=2))
    flat = ScheduleSampler(varying, SIZES, 6, 7, seed=1, rank=1, world_size=2)
    assert len(flat) == 21
    assert list(flat) == sum(ref, [])
    loader = DataLoader(IndexDataset(sum(SIZES)), sampler=ScheduleSampler(varying, SIZES, 6, 7, seed=1, rank=1,
                                                                            world_size=2), batch_size=3)
    assert [b.tolist() for b in loader] == ref


def test_per_index_sampler_resume_and_partial_steps(varying):
    full = list(ScheduleSampler(varying, SIZES, 4, 6, seed=2))
    s = ScheduleSampler(varying, SIZES, 4, 6, seed=2)
    head = list(itertools.islice(iter(s), 10))  # two whole steps and half of the third
    assert head == full[:10] and s.step == 2
    state = s.state_dict()
    assert state["step"] == 2
    assert list(s) == full[8:]  # an abandoned step is yielded again, whole
    resumed = ScheduleSampler(varying, SIZES, 4, 6, seed=2)
    resumed.load_state_dict(state)
    assert list(resumed) == full[8:]
