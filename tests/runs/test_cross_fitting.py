"""Cross-fitting (``search.reward_folds``): every target example both trains and rewards, never in the same meta-step."""

import numpy as np
import pytest

from taskmix.config import builtin_config
from taskmix.data import load_tasks
from taskmix.data.tasks import stratified_folds
from taskmix.errors import DataError
from taskmix.runs import SearchRun, prepare_job

from _tiny import SMALL_RUN  # noqa: E402


@pytest.mark.parametrize("n, k", [(50, 5), (101, 3), (40, 2)])
def test_folds_partition_the_rows_and_are_stratified(n, k):
    y = np.random.default_rng(n).integers(0, 3, size=n)
    folds = stratified_folds(y, k, seed=7)
    together = np.concatenate(folds)
    assert len(folds) == k and len(together) == n and len(np.unique(together)) == n  # disjoint, covering
    assert max(map(len, folds)) - min(map(len, folds)) <= 1  # even sizes
    for label in np.unique(y):  # each label spread evenly over the folds
        per = [int(np.sum(y[f] == label)) for f in folds]
        assert max(per) - min(per) <= 1, per
    again = stratified_folds(y, k, seed=7)
    assert all(np.array_equal(a, b) for a, b in zip(folds, again))
    assert not all(np.array_equal(a, b) for a, b in zip(folds, stratified_folds(y, k, seed=8)))


def test_too_many_folds_is_a_data_error():
    with pytest.raises(DataError, match=r"search.reward_folds: 6 folds need 2 <= k <= 5 for 10 target rows"):
        stratified_folds(np.zeros(10, dtype=int), 6, seed=0)


def _run(folds: int) -> SearchRun:
    cfg = builtin_config([*SMALL_RUN, f"search.reward_folds={folds}"])
    job = prepare_job(cfg, load_tasks(cfg), 0)
    return SearchRun(job.tasks, job.target, job.reward_split, cfg, 0)


def test_the_target_never_trains_or_probes_on_its_reward_fold(monkeypatch):
    run = _run(3)
    whole = len(run.tasks[run.target].train)
    assert whole == sum(len(f) for f in run.folds)  # the train and reward splits together
    seen: list[tuple[int, set[int]]] = []
    train_step = run.trainer.train_step

    def spy(tids, eids):
        seen.append((run._fold(), {int(e) for t, e in zip(tids, eids) if t == run.target}))
        return train_step(tids, eids)

    monkeypatch.setattr(run.trainer, "train_step", spy)
    probes: list[tuple[int, set[int]]] = []
    batch = run.trainer.batch

    def probe_spy(tids, eids):
        probes.append((run._fold(), {int(e) for t, e in zip(tids, eids) if t == run.target}))
        return batch(tids, eids)

    monkeypatch.setattr(run.trainer, "batch", probe_spy)
    folds_of = [set(np.flatnonzero(np.isin(np.arange(whole), r, invert=True)).tolist()) for r in run._fold_rows]
    run.run()
    assert [e["reward_fold"] for e in run.log] == [0, 1, 2, 0, 1, 2]
    assert seen and probes
    for f, rows in seen + probes:
        assert not rows & folds_of[f], f"the target used its reward fold {f}"
    trained = set().union(*(rows for _, rows in seen))
    assert len(trained) > 0.9 * whole  # and over the run nearly every target row trained
    assert run.schedule().provenance["reward_folds"] == 3


def test_one_fold_is_the_fixed_reward_split():
    run = _run(1)
    assert run.folds is None
    run.run()
    assert "reward_fold" not in run.log[0]


@pytest.mark.parametrize("reward, folds", [("gradient_alignment", 4), ("shuffled:gradient_alignment", 4),
                                           ("constant", 4), ("lookahead", 1), ("accuracy", 1), ("loss", 1)])
def test_auto_folds_cross_fit_only_rewards_that_hold_up_on_a_trained_fold(reward, folds):
    cfg = builtin_config([*SMALL_RUN, f"search.reward={reward}"])
    assert cfg.search.reward_folds == "auto"
    job = prepare_job(cfg, load_tasks(cfg), 0)
    run = SearchRun(job.tasks, job.target, job.reward_split, cfg, 0)
    assert run.reward_folds == folds and (run.folds is None) == (folds == 1)
