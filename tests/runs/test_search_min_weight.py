"""search.min_weight: the learned schedules can drop a task entirely (exact zeros), never the target."""

import numpy as np
import pytest

from taskmix.config import builtin_config
from taskmix.data import load_tasks
from taskmix.errors import ConfigError
from taskmix.replay.sampler import TaskSampler
from taskmix.runs import SearchRun, prepare_job
from taskmix.schedule import Schedule

from _tiny import SMALL_RUN  # noqa: E402


def _run(*overrides: str) -> SearchRun:
    cfg = builtin_config([*SMALL_RUN, "search.policy=time_variant", *overrides])
    run = SearchRun(prepare_job(cfg, load_tasks(cfg), 0))
    run.run()
    return run


def test_min_weight_zeroes_exactly_the_small_auxiliaries_of_the_same_search():
    plain, sparse = _run("search.min_weight=0"), _run("search.min_weight=0.2")
    for policy in ("time_variant", "time_invariant"):
        a, b = plain.schedules()[policy], sparse.schedules()[policy]
        t = a.index("target")
        small = a.weights < 0.2
        small[:, t] = False
        assert np.all(b.weights[small] == 0.0)  # exactly zero, not small
        assert np.all(b.weights[~small] > 0.0)
        kept = np.where(small, 0.0, a.weights)
        assert np.allclose(b.weights, kept / kept.sum(axis=1, keepdims=True))  # the rest renormalised, row by row
        assert b.provenance["min_weight"] == 0.2
        assert set(b.provenance["dropped"]) == {n for j, n in enumerate(a.tasks) if small[:, j].all()}
    assert np.array_equal(plain.log[-1]["probs_after"], sparse.log[-1]["probs_after"])  # the search itself is the same
    assert "min_weight" not in plain.schedules()["time_variant"].provenance  # 0: off, the schedule untouched
    assert _run().schedules()["time_variant"].provenance["min_weight"] == 0.05  # the default


def test_the_target_is_never_dropped_and_a_dropped_task_is_never_sampled():
    s = Schedule.from_weights(["target", "a", "b"], [[0.04, 0.9, 0.06], [0.01, 0.02, 0.97]])
    d = s.drop_below(0.1, keep=["target"])
    assert d.weights[:, 0].min() > 0 and d.weights[0, 2] == 0.0 and d.weights[1, 1] == 0.0
    sampler = TaskSampler(d.drop_below(0.0), 64, [100, 100, 100], seed=0)
    seen = np.concatenate([sampler.next_batch()[0] for _ in range(1)])
    assert 2 not in seen.tolist()  # row 0 (the first step): task b is at exactly 0
    only = Schedule.from_weights(["t", "a"], [0.01, 0.99]).drop_below(0.5)  # nothing kept: the largest survives
    assert only.weights.tolist() == [[0.0, 1.0]]


@pytest.mark.parametrize("bad", ["-0.1", "0.5", "1"])
def test_a_min_weight_outside_0_to_half_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="min_weight"):
        builtin_config([f"search.min_weight={bad}"])


def test_drop_below_validates_its_arguments():
    s = Schedule.from_weights(["t", "a"], [0.5, 0.5])
    with pytest.raises(ValueError, match="min_weight"):
        s.drop_below(1.5)
    with pytest.raises(ValueError, match="unknown task"):
        s.drop_below(0.1, keep=["nope"])
