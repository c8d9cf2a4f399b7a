"""The mixture_lookahead reward: marginal value of each task's share, common random numbers, no side effects."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from taskmix.config import builtin_config
from taskmix.data import load_run_tasks
from taskmix.engine import Trainer
from taskmix.errors import ConfigError
from taskmix.runs import RewardContext, SearchRun, make_reward, prepare_job
from taskmix.runs.rewards import MixtureLookaheadReward

SMALL = ["train.steps=40", "search.meta_steps=2", "search.probe_steps=3", "search.reward=mixture_lookahead",
         "synthetic.n_target=200", "synthetic.n_helpful=300", "synthetic.n_harmful=300",
         "synthetic.n_irrelevant=200", "synthetic.n_test=100"]


@pytest.fixture(scope="module")
def job():
    cfg = builtin_config(SMALL)
    return prepare_job(cfg, load_run_tasks(cfg), seed=0)


def _trained(job, steps: int = 10) -> Trainer:
    tr = Trainer(job.tasks, job.cfg, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        tids = rng.integers(0, len(job.tasks), 32)
        tr.train_step(tids, np.asarray([rng.integers(0, job.tasks[t].n_train) for t in tids]))
    return tr


def _ctx(job, tr, seed=0, mixture=None) -> RewardContext:
    return RewardContext(tr, job.target, job.reward_split, 32, np.random.default_rng(seed), 0, mixture=mixture)


def test_the_training_state_and_the_random_streams_are_untouched(job) -> None:
    tr = _trained(job)
    state = {k: v.clone() for k, v in tr.model.state_dict().items()}
    opt = repr(tr.optimizer.state_dict()["state"])
    torch.manual_seed(123)
    rng_before = torch.get_rng_state()
    MixtureLookaheadReward(probe_steps=3)(_ctx(job, tr))
    assert torch.equal(torch.get_rng_state(), rng_before), "the probes' dropout must not move the training stream"
    for k, v in tr.model.state_dict().items():
        assert torch.equal(v, state[k])
    assert repr(tr.optimizer.state_dict()["state"]) == opt


def test_two_tasks_one_pair_of_probes_and_opposite_gradients(monkeypatch) -> None:
    """With two tasks the logit gradients are exactly opposite (g_2 = -g_1): one pair of probes, pi_1 r_1 = -pi_2 r_2."""
    cfg = builtin_config(SMALL)
    all_tasks = load_run_tasks(cfg)
    two = [t for t in all_tasks if t.name in (cfg.target, "helpful")]
    j2 = prepare_job(cfg, two, seed=0)
    t2 = Trainer(j2.tasks, j2.cfg, seed=0)
    calls = []
    orig = t2.predict
    monkeypatch.setattr(t2, "predict", lambda *a, **k: (calls.append(1), orig(*a, **k))[1])
    pi = np.array([0.3, 0.7])
    r = MixtureLookaheadReward(probe_steps=2)(RewardContext(t2, j2.target, j2.reward_split, 16,
                                                            np.random.default_rng(1), 0, mixture=pi))
    assert len(calls) == 2, "two tasks: one pair of probes"
    assert pi[0] * r[0] == pytest.approx(-pi[1] * r[1])
    assert r[0] != 0


def test_helpful_share_is_worth_more_than_harmful_share(job) -> None:
    """On the built-in family, from a uniform mixture, raising the helpful task's share lowers the target's loss more."""
    tr = _trained(job, steps=20)
    names = [t.name for t in job.tasks]
    h, bad = names.index("helpful"), names.index("harmful")
    r = np.mean([MixtureLookaheadReward(probe_steps=5)(_ctx(job, tr, seed=s)) for s in range(3)], axis=0)
    assert r[h] > r[bad]


def test_common_random_numbers_a_vanishing_tilt_gives_a_vanishing_difference(job) -> None:
    """The probes share their draws: the central difference of a tiny tilt is small (no batch noise in it)."""
    tr = _trained(job)
    big = MixtureLookaheadReward(probe_steps=3, tilt=1.0)(_ctx(job, tr, seed=2))
    tiny = MixtureLookaheadReward(probe_steps=3, tilt=1e-9)(_ctx(job, tr, seed=2))
    # with a 1e-9 logit shift no slot changes task, so both probes of a task train on identical batches
    np.testing.assert_array_equal(tiny, np.zeros_like(tiny))
    assert np.any(big != 0)


def test_the_search_passes_the_policy_mixture_of_the_rewarded_row() -> None:
    cfg = builtin_config(SMALL + ["search.policy=time_variant"])
    j = prepare_job(cfg, load_run_tasks(cfg), seed=0)
    run = SearchRun(j.tasks, j.target, j.reward_split, cfg, 0)
    seen = []
    orig = run.reward

    class Spy:
        name, per_task, cross_fit = orig.name, orig.per_task, orig.cross_fit

        def __call__(self, ctx):
            seen.append((ctx.mixture.copy(), run.policy.probs(run.mixer.row).copy()))
            return orig(ctx)

    run.reward = Spy()
    run.step_meta()
    run.step_meta()
    assert len(seen) == 2
    for mixture, probs in seen:
        np.testing.assert_array_equal(mixture, probs)
    assert not np.allclose(seen[1][0], np.full(len(seen[1][0]), 0.25)), "the second meta-step sees the updated policy"


def test_bad_tilt_and_bad_mixture_are_refused(job) -> None:
    with pytest.raises(ConfigError, match=r"search\.tilt"):
        builtin_config(["search.tilt=0"])
    with pytest.raises(ConfigError, match=r"search\.tilt"):
        MixtureLookaheadReward(tilt=-1)
    tr = _trained(job)
    with pytest.raises(ValueError, match="mixture"):
        MixtureLookaheadReward()(_ctx(job, tr, mixture=np.array([0.5, 0.5])))
    assert make_reward("mixture_lookahead", builtin_config(["search.tilt=0.5"]).search).tilt == 0.5
