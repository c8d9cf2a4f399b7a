"""Streaming replay: ScheduleIterableDataset over iterable task datasets (generators, datasets.IterableDataset)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.stats import chisquare
from torch.utils.data import DataLoader, IterableDataset

from taskmix.schedule import Schedule
from taskmix.replay.streaming import ScheduleIterableDataset
from taskmix.replay.torch import ScheduleBatchSampler, scheduled_proportions

TASKS = ["a", "b", "c"]
SIZES = [40, 25, 60]


class Stream(IterableDataset):
    """Task ``name``'s examples ``(name, pass, j)``, in order; ``set_epoch`` records the pass."""

    def __init__(self, name: str, n: int):
        self.name, self.n, self.epoch = name, n, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        for j in range(self.n):
            yield (self.name, self.epoch, j)


def streams():
    return {t: Stream(t, n) for t, n in zip(TASKS, SIZES)}


@pytest.fixture
def varying():
    return Schedule.from_weights(TASKS, [[0.6, 0.3, 0.1], [0.1, 0.2, 0.7], [0.3, 0.3, 0.4]], 5)


def take(ds, n):
    it = iter(ds)
    return [next(it) for _ in range(n)]


def test_task_draws_are_the_batch_samplers_and_examples_come_in_stream_order(varying):
    ds = ScheduleIterableDataset(streams(), varying, batch_size=8, num_steps=20, seed=3, with_task=True)
    got = list(ds)
    assert len(got) == 160 == len(ds)
    bs = ScheduleBatchSampler(varying, SIZES, batch_size=8, num_steps=20, seed=3)
    tasks = np.concatenate([bs.task_of(b) for b in bs])
    assert [t for t, _ in got] == tasks.tolist()  # the same task at every position
    for i, name in enumerate(TASKS):  # each stream read in order, passes restarting (set_epoch called)
        ex = [e for t, e in got if t == i]
        assert all(e[0] == name for e in ex)
        assert [(p, j) for _, p, j in ex] == [divmod(k, SIZES[i]) for k in range(len(ex))]
    assert ds.task_counts().tolist() == np.bincount(tasks, minlength=3).tolist()


def test_realised_proportions_match_the_schedule_chi_square(varying):
    ds = ScheduleIterableDataset(streams(), varying, batch_size=32, num_steps=300, seed=0, with_task=True)
    tasks = np.array([t for t, _ in ds])
    for lo, hi in ((0, 5), (5, 10), (10, 300)):  # each row's steps
        obs = np.bincount(tasks[lo * 32: hi * 32], minlength=3)
        exp = scheduled_proportions(varying, range(lo, hi)) * obs.sum()
        assert chisquare(obs, exp).pvalue > 1e-3, (lo, hi, obs, exp)


def test_resume_continues_exactly_after_a_json_round_trip(varying):
    full = ScheduleIterableDataset(streams(), varying, batch_size=6, num_steps=30, seed=1)
    ref = list(full)
    ds = ScheduleIterableDataset(streams(), varying, batch_size=6, num_steps=30, seed=1)
    first = take(ds, 7 * 6)  # 7 whole steps
    state = json.loads(json.dumps(ds.state_dict(step=7)))
    resumed = ScheduleIterableDataset(streams(), varying, batch_size=6, num_steps=30, seed=1)
    resumed.load_state_dict(state)
    assert first + list(resumed) == ref
    # a partially read step is yielded whole again by the next iter()
    part = ScheduleIterableDataset(streams(), varying, batch_size=6, num_steps=30, seed=1)
    take(part, 3 * 6 + 2)
    assert part.step == 3
    assert list(part) == ref[3 * 6:]
    with pytest.raises(ValueError, match="batch_size is 6"):
        ScheduleIterableDataset(streams(), varying, batch_size=4).load_state_dict(state)


def test_ranks_split_each_global_batch(varying):
    one = list(ScheduleIterableDataset(streams(), varying, batch_size=8, num_steps=10, seed=0))
    r0 = list(ScheduleIterableDataset(streams(), varying, batch_size=8, num_steps=10, seed=0, rank=0, world_size=2))
    r1 = list(ScheduleIterableDataset(streams(), varying, batch_size=8, num_steps=10, seed=0, rank=1, world_size=2))
    assert r0 == one[0::2] and r1 == one[1::2]


def test_with_a_dataloader_and_a_hugging_face_iterable_dataset(varying):
    datasets = pytest.importorskip("datasets")

    def gen(name, n):
        return datasets.IterableDataset.from_generator(lambda: ({"text": f"{name}{j}", "task": name} for j in range(n)))

    hf = {t: gen(t, n) for t, n in zip(TASKS, SIZES)}
    ds = ScheduleIterableDataset(hf, varying, batch_size=8, num_steps=12, seed=0)
    batches = list(DataLoader(ds, batch_size=8, num_workers=0))
    assert len(batches) == 12 and all(len(b["text"]) == 8 for b in batches)
    seen = [t for b in batches for t in b["task"]]
    bs = ScheduleBatchSampler(varying, SIZES, batch_size=8, num_steps=12, seed=0)
    assert seen == [TASKS[i] for b in bs for i in bs.task_of(b)]
    # resumable through a HF stream too
    again = ScheduleIterableDataset(hf, varying, batch_size=8, num_steps=12, seed=0)
    again.load_state_dict(ds.state_dict(step=5))
    assert [x["text"] for x in again] == [t for b in batches[5:] for t in b["text"]]


def test_bad_arguments(varying):
    with pytest.raises(ValueError, match=r"missing \['c'\]"):
        ScheduleIterableDataset({"a": [], "b": []}, varying, batch_size=4)
    with pytest.raises(ValueError, match="multiple of world_size"):
        ScheduleIterableDataset(streams(), varying, batch_size=5, rank=0, world_size=2)
    with pytest.raises(ValueError, match="stream of task 'b' is empty"):
        list(ScheduleIterableDataset({"a": [1], "b": [], "c": [2]}, varying, batch_size=64, num_steps=2))
    with pytest.raises(TypeError, match="no length"):
        len(ScheduleIterableDataset(streams(), varying, batch_size=4))
    endless = ScheduleIterableDataset(streams(), varying, batch_size=4)
    assert len(take(endless, 1000)) == 1000  # endless: passes restart
    loader = DataLoader(ScheduleIterableDataset(streams(), varying, batch_size=4, num_steps=2), batch_size=4, num_workers=2)
    with pytest.raises(ValueError, match="num_workers=0 or 1"):
        list(loader)


def test_one_worker_gives_the_same_batches_as_none(varying):
    def batches(workers):
        ds = ScheduleIterableDataset(streams(), varying, batch_size=4, num_steps=6, seed=2, with_task=True)
        return [(b[0].tolist(), list(b[1][2].tolist())) for b in DataLoader(ds, batch_size=4, num_workers=workers)]

    assert batches(1) == batches(0)
