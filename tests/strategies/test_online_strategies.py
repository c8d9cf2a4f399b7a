"""Online strategies (taskmix.strategies; old alias taskmix.adaptive): EXP3 / ODM, Thompson sampling / AutoSeM, gradient alignment / MultiDDS."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import chisquare

from taskmix.compare.methods import METHODS, replay_method, run_method
from taskmix.runs import AdaptiveRun, prepare_job
from taskmix.strategies import EXP3, GradientAlignment, MetaStepInfo, ThompsonSampling, make_strategy
from taskmix.config import config_from_dict
from taskmix.replay.sampler import TaskSampler
from taskmix.schedule import Schedule
from taskmix.data import Split, Task
from taskmix.engine import train_with_schedule

# ----------------------------------------------------------------- helpers


def _info(w: np.ndarray, loss: np.ndarray, step: int, steps: int = 10, **kw) -> MetaStepInfo:
    counts = np.maximum(np.round(np.asarray(w) * 640), 1.0)
    return MetaStepInfo(step=step, steps=steps, weights=np.asarray(w, dtype=float), counts=counts,
                        task_loss=np.asarray(loss, dtype=float), **kw)


def toy_tasks(seed: int = 0, dim: int = 8) -> list[Task]:
    """target and ``aligned`` share one linear rule; ``opposed`` has the opposite labels."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(dim)

    def split(n: int, sign: float = 1.0) -> Split:
        x = rng.standard_normal((n, dim)).astype(np.float32)
        return Split(x, (sign * (x @ w) > 0).astype(np.int64))

    return [
        Task("t", train=split(200), test=split(400), num_labels=2),
        Task("aligned", train=split(600), num_labels=2),
        Task("opposed", train=split(600, -1.0), num_labels=2),
    ]


def toy_cfg(**over):
    raw = {
        "target": "t",
        "tasks": {"t": {"train": "unused"}, "aligned": {"train": "unused"}, "opposed": {"train": "unused"}},
        "model": {"heads": "shared", "hidden": 16, "lr": 0.01},
        "train": {"steps": 40, "batch_size": 32},
        "search": {"meta_steps": 4, "probe_batches": 2},
    }
    for key, value in over.items():
        section, name = key.split(".")
        raw.setdefault(section, {})[name] = value
    return config_from_dict(raw)


def toy_job(seed: int = 0, **over):
    cfg = toy_cfg(**over)
    return prepare_job(cfg, toy_tasks(), seed)


# -------------------------------------------------------------------- EXP3


def test_exp3_exploration_schedule_is_odm():
    s = EXP3(4)
    assert s.exploration_rate(0) == pytest.approx(0.25)
    for t in (10, 100, 1000):
        assert s.exploration_rate(t) == pytest.approx(min(0.25, math.sqrt(math.log(4) / (4 * t))))
    np.testing.assert_allclose(s.weights(0), np.full(4, 0.25))
    s.R = np.array([5.0, 0.0, 0.0, 0.0])
    w = s.weights(1000)
    assert w.sum() == pytest.approx(1.0)
    assert np.all(w >= s.exploration_rate(1000) - 1e-12)  # the exploration floor
    assert w[0] > w[1]


def test_exp3_reward_is_importance_weighted_loss_and_unseen_tasks_keep_their_estimate():
    s = EXP3(3, smoothing=0.5)
    w = np.array([0.5, 0.3, 0.2])
    info = MetaStepInfo(step=2, steps=2, weights=w, counts=np.array([10.0, 6.0, 0.0]),
                        task_loss=np.array([1.0, 0.6, np.nan]))
    np.testing.assert_allclose(s.rewards(info), [1.0 / 0.5, 0.6 / 0.3, 0.0])
    s.R = np.array([1.0, 1.0, 7.0])
    s.update(0, info)
    a = 0.5**2  # smoothing per training step, two steps
    np.testing.assert_allclose(s.R, [a + (1 - a) * 2.0, a + (1 - a) * 2.0, 7.0])
    per_sample = EXP3(3, estimator="per_sample")
    np.testing.assert_allclose(per_sample.rewards(info), [0.625 * 1.0 / 0.5, 0.375 * 0.6 / 0.3, 0.0])


@pytest.mark.parametrize("kw", [{}, {"lr": 0.3}])
def test_exp3_weights_move_toward_the_rewarded_arm(kw):
    s = EXP3(4, **kw)
    loss = np.array([0.5, 0.5, 2.0, 0.5])  # arm 2 has the highest loss: ODM's reward
    step = 0
    for k in range(100):
        w = s.weights(step)
        step += 10
        s.update(k, _info(w, loss, step))
    w = s.weights(step)
    others = np.delete(w, 2)
    assert w[2] > 0.25 + 0.01
    assert w[2] > others.max() + 0.01
    np.testing.assert_allclose(others, others[0])  # the three equal arms stay equal
    if kw:  # a larger learning rate moves further
        assert w[2] > 0.35


def test_exp3_state_roundtrip():
    s = EXP3(3, lr=0.2)
    s.update(0, _info(s.weights(0), [1.0, 2.0, 3.0], 10))
    t = EXP3(3, lr=0.2)
    t.load_state_dict(s.state_dict())
    np.testing.assert_array_equal(t.weights(10), s.weights(10))
    with pytest.raises(ValueError, match="exp3"):
        ThompsonSampling(3).load_state_dict(s.state_dict())


# ---------------------------------------------------------------- Thompson


def _ts_info(ts: ThompsonSampling, step: int, success: bool) -> MetaStepInfo:
    w = ts.weights(step)
    return MetaStepInfo(step=step + 10, steps=10, weights=w, counts=w * 320, task_loss=np.full(ts.n_tasks, 0.5),
                        metric=1.0 if success else 0.0, previous_metric=0.5)


def test_thompson_posterior_counts_are_successes_and_failures():
    ts = ThompsonSampling(3, seed=1, decay=0.0)
    succ, fail = np.zeros(3), np.zeros(3)
    outcomes = [True, False, True, True, False, False, True]
    for k, ok in enumerate(outcomes):
        chosen = int(np.argmax(ts.weights(10 * k)))
        assert ts.weights(10 * k)[chosen] == 1.0 and ts.weights(10 * k).sum() == 1.0  # argmax mode: one task
        info = _ts_info(ts, 10 * k, ok)
        np.testing.assert_array_equal(ts.rewards(info), np.eye(3)[chosen] * float(ok))
        ts.update(k, info)
        (succ if ok else fail)[chosen] += 1
    np.testing.assert_array_equal(ts.alpha, 1.0 + succ)
    np.testing.assert_array_equal(ts.beta, 1.0 + fail)
    np.testing.assert_array_equal(ts.successes, succ)
    np.testing.assert_array_equal(ts.failures, fail)
    state = ts.state_dict()
    assert state["alpha"] == (1.0 + succ).tolist() and state["beta"] == (1.0 + fail).tolist()


def test_thompson_decay_pulls_every_arm_toward_the_prior():
    ts = ThompsonSampling(2, seed=0, decay=0.3, prior=(1.0, 2.0))
    ts.alpha = np.array([5.0, 3.0])
    ts.beta = np.array([4.0, 6.0])
    ts._current = np.array([0.0, 1.0])
    ts.update(0, _ts_info(ts, 0, True))
    np.testing.assert_allclose(ts.alpha, [0.7 * 5 + 0.3 * 1, 0.7 * 3 + 0.3 * 1 + 1])
    np.testing.assert_allclose(ts.beta, [0.7 * 4 + 0.3 * 2, 0.7 * 6 + 0.3 * 2])


def test_thompson_reward_is_improvement_of_the_reward_split_metric():
    ts = ThompsonSampling(2)
    w = ts.weights(0)
    tie = MetaStepInfo(step=1, steps=1, weights=w, counts=w, task_loss=np.zeros(2), metric=0.7, previous_metric=0.7)
    assert ts.success(tie) == 1.0  # AutoSeM counts a tie as a success
    assert ThompsonSampling(2, strict=True).success(tie) == 0.0
    worse = MetaStepInfo(step=1, steps=1, weights=w, counts=w, task_loss=np.zeros(2), metric=0.6, previous_metric=0.7)
    assert ts.success(worse) == 0.0
    with pytest.raises(ValueError, match="reward-split metric"):
        ts.update(0, MetaStepInfo(step=1, steps=1, weights=w, counts=w, task_loss=np.zeros(2)))


@pytest.mark.parametrize("mode", ["argmax", "mix"])
def test_thompson_concentrates_on_the_better_arm(mode):
    p_true = np.array([0.2, 0.8, 0.35])
    ts = ThompsonSampling(3, seed=3, decay=0.0, mode=mode, mc_samples=500)
    env = np.random.default_rng(7)
    late = []
    for k in range(300):
        w = ts.weights(k)
        arm = int(env.choice(3, p=w))  # argmax mode: w is one-hot
        counts = np.eye(3)[arm] * 64
        ok = env.random() < p_true[arm]
        ts.update(k, MetaStepInfo(step=k + 1, steps=1, weights=w, counts=counts, task_loss=np.zeros(3),
                                  metric=float(ok), previous_metric=0.5))
        if k >= 200:
            late.append(w)
    late = np.mean(late, axis=0)
    assert late[1] > 0.8, late
    assert ts.posterior_mean()[1] == pytest.approx(0.8, abs=0.08)


def test_thompson_state_roundtrip_replays_the_same_draws():
    a = ThompsonSampling(4, seed=11)
    for k in range(3):
        a.update(k, _ts_info(a, 10 * k, k % 2 == 0))
    b = ThompsonSampling(4, seed=99)
    b.load_state_dict(a.state_dict())
    for k in range(3, 8):
        np.testing.assert_array_equal(a.weights(10 * k), b.weights(10 * k))
        a.update(k, _ts_info(a, 10 * k, True))
        b.update(k, _ts_info(b, 10 * k, True))
    np.testing.assert_array_equal(a.alpha, b.alpha)
    # reseeding changes the stream but not the posterior
    c = ThompsonSampling(4, seed=11)
    c.load_state_dict(a.state_dict())
    c.reseed(12345)
    np.testing.assert_array_equal(c.alpha, a.alpha)


# ------------------------------------------------------- gradient alignment


def _ga_run(r: np.ndarray, updates: int, **kw) -> GradientAlignment:
    g = GradientAlignment(len(r), **kw)
    for k in range(updates):
        w = g.weights(k)
        g.update(k, MetaStepInfo(step=k + 1, steps=1, weights=w, counts=w, task_loss=np.zeros(len(r)), alignment=r))
    return g


def test_gradient_alignment_update_is_multidds():
    r = np.array([0.6, 0.2, -0.4])
    g = _ga_run(r, 1, lr=0.5)
    np.testing.assert_allclose(g.psi, 0.5 * (r - r.sum() / 3))  # grad of sum_i r_i log softmax(psi)_i at psi = 0
    # non-negative rewards: the weights settle at p_i = r_i / sum_j r_j
    np.testing.assert_allclose(_ga_run(np.array([0.6, 0.2, 0.2]), 300, lr=0.5).weights(0), [0.6, 0.2, 0.2], atol=1e-3)
    # an opposed task goes to zero weight; the most aligned one gains
    w = _ga_run(r, 300, lr=0.5).weights(0)
    assert w[2] < 1e-6 and w[0] > 0.9
    # the exploration floor keeps every task in play
    w = _ga_run(r, 300, lr=0.5, floor=0.3).weights(0)
    assert w[2] == pytest.approx(0.1, abs=1e-6)


def test_gradient_alignment_raises_the_weight_of_the_aligned_task_on_a_toy_model():
    tasks = toy_tasks()
    rng = np.random.default_rng(5)
    x = rng.standard_normal((600, tasks[0].dim)).astype(np.float32)
    tasks.append(Task("noise", train=Split(x, rng.integers(0, 2, 600)), num_labels=2))  # random labels
    cfg = toy_cfg(**{"train.steps": 60, "search.meta_steps": 6})
    cfg = cfg.model_copy(update={"tasks": {**cfg.tasks, "noise": cfg.tasks["t"]}})
    job = prepare_job(cfg, tasks, 0)
    strategy = make_strategy("gradient_alignment", 4, job.target, job.seed, probe_batches=2)
    run = AdaptiveRun(job.tasks, job.target, job.reward_split, job.cfg, job.seed, strategy)
    res = run.run()
    aligned, opposed, noise = (job.names.index(n) for n in ("aligned", "opposed", "noise"))
    after = np.asarray([e["probs_after"] for e in res.log])
    assert after[0, aligned] > 0.25 + 0.05  # up from uniform after the first update
    assert after[-1, aligned] > 10 * max(after[-1, opposed], after[-1, noise])
    mean_r = np.mean([e["rewards"] for e in res.log], axis=0)
    assert mean_r[aligned] > 0.1 and mean_r[opposed] < -0.1
    assert res.average.weights[0, aligned] > res.average.weights[0, opposed] + 0.2
    assert res.evaluations == 6  # one alignment computation per meta-step


# -------------------------------------------------------------- the runner


@pytest.mark.parametrize("name", ["exp3", "thompson", "gradient_alignment", "doremi", "aioli"])
def test_online_run_is_a_replay_of_its_time_variant_schedule(name):
    job = toy_job(seed=2, **{"train.steps": 30, "search.meta_steps": 3})
    run = AdaptiveRun(job.tasks, job.target, job.reward_split, job.cfg, job.seed,
                      make_strategy(name, 3, job.target, job.seed))
    res = run.run()
    online = run.evaluate_report()
    rep = train_with_schedule(job.tasks, job.target, res.time_variant, job.cfg, job.seed)
    assert rep.test == online
    np.testing.assert_allclose(rep.final_train_loss, run.trainer.last_losses, equal_nan=True)
    assert res.time_variant.n_rows == 3 and res.time_variant.steps_per_meta_step == 10


def test_exported_average_schedule_is_the_mean_of_the_logged_weights_and_replays_them():
    # 50 steps in meta-steps of 15: the last meta-step has 5 steps and counts a third as much
    job = toy_job(seed=1, **{"train.steps": 50, "search.steps_per_meta_step": 15})
    strategy = make_strategy("gradient_alignment", 3, job.target, job.seed, probe_batches=1, lr=2.0)
    run = AdaptiveRun(job.tasks, job.target, job.reward_split, job.cfg, job.seed, strategy)
    res = run.run()
    assert [e["step"] for e in res.log] == [15, 30, 45, 50]
    used = np.asarray([e["probs_before"] for e in res.log])
    steps = np.array([15, 15, 15, 5], dtype=float)
    expected = (used * steps[:, None]).sum(axis=0) / steps.sum()
    np.testing.assert_allclose(res.average.weights[0], expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.time_variant.weights, used, rtol=0, atol=1e-12)
    assert res.average.time_invariant and not np.allclose(expected, 1 / 3, atol=0.02)
    # the sampler's realised draws under the exported schedule follow the exported weights
    draws = TaskSampler(res.average, batch_size=64, seed=5).draw_many(1500).ravel()
    counts = np.bincount(draws, minlength=3)
    assert chisquare(counts, res.average.weights[0] * counts.sum()).pvalue > 1e-3
    # ... and a strategy whose weights were far from these would fail the same check
    assert chisquare(counts, np.full(3, counts.sum() / 3)).pvalue < 1e-6
    # the schedule file round-trips
    assert Schedule.from_json(res.average.to_json()) == res.average


def test_run_resumes_bit_for_bit_from_its_state():
    job = toy_job(seed=4, **{"train.steps": 40, "search.meta_steps": 4})

    def fresh():
        return AdaptiveRun(job.tasks, job.target, job.reward_split, job.cfg, job.seed,
                           make_strategy("thompson", 3, job.target, job.seed))

    full = fresh()
    full.run()
    part = fresh()
    part.step_meta()
    part.step_meta()
    state = part.state_dict()
    resumed = fresh()
    resumed.load_state_dict(state)
    resumed.run()
    assert resumed.evaluate_report() == full.evaluate_report()
    assert resumed.time_variant_schedule() == full.time_variant_schedule()
    np.testing.assert_array_equal(resumed.strategy.alpha, full.strategy.alpha)


def test_per_batch_draws_one_task_per_step():
    job = toy_job(seed=0, **{"train.per": "batch", "train.steps": 20, "search.meta_steps": 2})
    run = AdaptiveRun(job.tasks, job.target, job.reward_split, job.cfg, job.seed, EXP3(3))
    res = run.run()
    rep = train_with_schedule(job.tasks, job.target, res.time_variant, job.cfg, job.seed)
    assert rep.test == run.evaluate_report()
    shares = np.asarray([e["realised"] for e in res.log]) * 20 * 32 / 2
    np.testing.assert_allclose(shares % 32, 0, atol=1e-9)  # whole batches


# ------------------------------------------------------- compare methods


def test_adaptive_methods_are_registered_with_their_exact_names():
    online = {n for n in METHODS if METHODS.meta(n, "kind") == "adaptive"}
    replays = {n for n in METHODS if METHODS.meta(n, "kind") == "adaptive-replay"}
    strategies = {"exp3", "thompson", "gradient_alignment", "doremi", "doremi_target", "aioli", "aioli_target"}
    assert online == strategies
    assert replays == {f"{n}-replay" for n in strategies}


def test_method_rows_report_cost_schedule_and_log():
    cfg = toy_cfg(**{"train.steps": 20, "search.meta_steps": 2})
    tasks = toy_tasks()
    online = run_method(cfg, tasks, "thompson", 0)
    replay = run_method(cfg, tasks, "thompson-replay", 0)
    assert online["train_steps"] == 20 and replay["train_steps"] == 40
    assert online["evaluations"] == 1 + 2 + 1  # m_0, one per meta-step, the final evaluation
    assert replay["evaluations"] == online["evaluations"] + 1
    assert replay["extra"]["online_test"] == online["test"]
    tv = Schedule.from_dict(online["schedule"])
    avg = Schedule.from_dict(replay["schedule"])
    assert tv.n_rows == 2 and avg.time_invariant
    np.testing.assert_allclose(avg.weights[0], tv.mean_weights(20))
    for e in online["log"]:
        assert {"probs_after", "rewards", "realised", "step", "meta_step", "round"} <= set(e)
    for key in ("exp3", "gradient_alignment"):
        row = run_method(cfg, tasks, key, 0)
        assert row["evaluations"] == (1 if key == "exp3" else 3) and row["seconds"] > 0
    # the per-meta-step replay reproduces the online result
    job = prepare_job(cfg, tasks, 0)
    assert replay_method("exp3", schedule="time_variant")(job).test == run_method(cfg, tasks, "exp3", 0)["test"]


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown strategy .nope."):
        make_strategy("nope", 3)
    with pytest.raises(ValueError, match="exploration"):
        EXP3(4, exploration=0.5)
    with pytest.raises(ValueError, match="mode"):
        ThompsonSampling(3, mode="greedy")
    with pytest.raises(ValueError, match="similarity"):
        GradientAlignment(3, similarity="l2")
    with pytest.raises(ValueError, match="replay schedule"):
        replay_method("exp3", schedule="last")
