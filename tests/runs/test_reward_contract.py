"""One contract over every registered reward, family members included: shape, finiteness, kind, determinism, no side effects."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from taskmix.config import builtin_config
from taskmix.data import load_run_tasks
from taskmix.engine import Trainer
from taskmix.errors import ConfigError
from taskmix.runs import REWARDS, RewardContext, make_reward, prepare_job

NAMES = list(REWARDS) + [f"shuffled:{n}" for n in REWARDS if REWARDS.meta(n, "per_task")]


@pytest.fixture(scope="module")
def job():
    cfg = builtin_config(["train.steps=20", "search.meta_steps=2", "search.probe_batches=2", "search.probe_steps=2",
                          "synthetic.n_target=200", "synthetic.n_helpful=200", "synthetic.n_harmful=200",
                          "synthetic.n_irrelevant=200", "synthetic.n_test=100"])
    return prepare_job(cfg, load_run_tasks(cfg), seed=0)


def _trained(job) -> Trainer:
    tr = Trainer(job.tasks, job.cfg, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(5):
        tids = rng.integers(0, len(job.tasks), 32)
        tr.train_step(tids, np.asarray([rng.integers(0, job.tasks[t].n_train) for t in tids]))
    return tr


def _reward(job, name: str, tr: Trainer, seed: int = 0) -> np.ndarray:
    ctx = RewardContext(tr, job.target, job.reward_split, 32, np.random.default_rng(seed), 0)
    return np.asarray(make_reward(name, job.cfg.search)(ctx))


@pytest.mark.parametrize("name", NAMES)
def test_one_finite_value_per_task_and_the_declared_kind(job, name: str) -> None:
    r = _reward(job, name, _trained(job))
    assert r.shape == (len(job.tasks),) and np.all(np.isfinite(r))
    reward = make_reward(name, job.cfg.search)
    assert reward.per_task == REWARDS.meta(name, "per_task")
    if not reward.per_task:
        assert np.all(r == r[0])  # a scalar reward is the same number for every task


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_given_the_state_and_without_side_effects(job, name: str) -> None:
    tr = _trained(job)
    before = [p.detach().clone() for p in tr.model.parameters()]
    torch.manual_seed(0)
    a = _reward(job, name, tr, seed=4)
    torch.manual_seed(0)
    b = _reward(job, name, tr, seed=4)
    np.testing.assert_array_equal(a, b)
    for p, q in zip(before, tr.model.parameters()):
        assert torch.equal(p, q), "computing a reward must not train the model"


def test_unknown_and_ill_formed_names_list_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"search\.reward: unknown reward 'nope'; expected one of \['accuracy'"):
        REWARDS.get("nope")
    with pytest.raises(ConfigError, match="needs a per-task reward"):
        REWARDS.get("shuffled:accuracy")
