"""Aioli (taskmix.strategies.aioli): the mixing-law estimate and the exponentiated-gradient step against
hand-computed numbers, the round schedule, cost in the budget, resume and refusals."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from taskmix.compare.methods import METHODS, run_method
from taskmix.runs import AdaptiveRun
from taskmix.strategies import Aioli, MetaStepInfo, make_strategy

sys.path.insert(0, str(Path(__file__).parent))
from test_online_strategies import toy_cfg, toy_job, toy_tasks  # noqa: E402

A_TRUE = np.array([[0.4, 0.1], [0.0, 0.2]])  # A[i, j]: drop of task i's loss per unit of training on task j


def _info(loss, k: int = 2) -> MetaStepInfo:
    return MetaStepInfo(step=10, steps=10, weights=np.full(k, 1.0 / k), counts=np.full(k, 10.0),
                        task_loss=np.ones(k), heldout_loss=np.asarray(loss, dtype=float))


def test_parameter_estimate_inverts_the_smoothed_one_hot_sweeps():
    s = Aioli(2, one_hot_factor=0.75)
    np.testing.assert_allclose(s.perturbations(), [[0.75, 0.25], [0.25, 0.75]])
    gain = A_TRUE @ s.W.T  # the loss drops the linear law predicts: G[i, k] = sum_j A[i, j] W[k, j]
    np.testing.assert_allclose(gain, [[0.325, 0.175], [0.05, 0.15]], atol=1e-15)
    np.testing.assert_allclose(s.estimate(gain), A_TRUE, atol=1e-12)


def test_eg_step_exact_numbers():
    s = Aioli(2, eta=0.2, normalize=True)
    p = s.eg_step(A_TRUE)  # A / 0.7, column sums (4/7, 3/7); p ∝ exp(0.2 * (4/7, 3/7))
    expected = 1.0 / (1.0 + math.exp(-0.2 / 7))
    np.testing.assert_allclose(p, [expected, 1 - expected], atol=1e-12)
    np.testing.assert_allclose(p, [0.507142, 0.492858], atol=1e-6)
    np.testing.assert_allclose(s.score, [4 / 7, 3 / 7], atol=1e-12)
    # the second step multiplies the current proportions
    p2 = s.eg_step(A_TRUE)
    e = 1.0 / (1.0 + math.exp(-0.4 / 7))
    np.testing.assert_allclose(p2, [e, 1 - e], atol=1e-12)
    # normalisation shifts a negative matrix: [[-0.1, 0.3]] -> [[0, 0.4]] / 0.4
    t = Aioli(2, target=1, eta=1.0, objective="target")
    np.testing.assert_allclose(t.step_score([[5.0, 5.0], [-0.1, 0.3]]), [0.0, 1.0], atol=1e-12)
    # the target form reads only the target's row: [0, 0.2] -> [0, 1]; p ∝ (1, e)
    p = t.eg_step(A_TRUE)
    np.testing.assert_allclose(p, [1 / (1 + math.e), math.e / (1 + math.e)], atol=1e-12)
    # no normalisation, ema: p = prior * exp(eta * s~), s~ = (1 - ema) s + ema s~_prev
    u = Aioli(2, eta=1.0, normalize=False, ema=0.5)
    u.eg_step(A_TRUE)  # first round: s~ = s = (0.4, 0.3)
    u.updates = u.warmup_meta_steps + u.round_length  # one round done
    p = u.eg_step(2 * A_TRUE)  # s~ = 0.5 (0.8, 0.6) + 0.5 (0.4, 0.3) = (0.6, 0.45)
    e = 1.0 / (1.0 + math.exp(-0.15))
    np.testing.assert_allclose(p, [e, 1 - e], atol=1e-12)


def test_a_round_sweeps_each_task_then_holds_the_new_proportions():
    s = Aioli(2, eta=0.2, one_hot_factor=0.75, exploit_meta_steps=2, warmup_meta_steps=1, seed=3)
    assert s.weights(0).tolist() == [0.5, 0.5]  # warm-up at the prior
    loss = np.array([2.0, 2.0])
    s.update(0, _info(loss))
    order = [int(k) for k in s.order]
    assert sorted(order) == [0, 1]
    gain = A_TRUE @ s.W.T
    for m, k in enumerate(order, start=1):
        np.testing.assert_allclose(s.weights(0), s.W[k])  # the swept mixture
        new = loss - gain[:, k]
        np.testing.assert_allclose(s.rewards(_info(new)), gain[:, k], atol=1e-12)
        s.update(m, _info(new))
        loss = new
    np.testing.assert_allclose(s.A, A_TRUE, atol=1e-12)  # estimated from the sweep
    expected = 1.0 / (1.0 + math.exp(-0.2 / 7))
    for m in (3, 4):  # the rest of the round at p
        np.testing.assert_allclose(s.weights(0), [expected, 1 - expected], atol=1e-12)
        s.update(m, _info(loss))
    assert s.phase(s.updates) == ("sweep", 0) and s.rounds_done() == 1


def test_rounds_tile_the_budget():
    s = Aioli(2, exploit_meta_steps=2, warmup_meta_steps=1)  # rounds of 4 meta-steps after 1 warm-up
    assert [s.phase(m)[0] for m in range(10)] == ["warmup"] + ["sweep", "sweep", "exploit", "exploit"] * 2 + ["sweep"]
    s.set_budget(11)  # round 2 starts at 9: 9 + 2 + 1 > 11
    assert [s.phase(m)[0] for m in range(11)] == (["warmup"] + ["sweep", "sweep", "exploit", "exploit"] * 2
                                                   + ["final", "final"])
    s.updates = 11
    assert s.rounds_done() == 2


def test_a_round_whose_exploit_is_cut_short_still_sweeps():
    """Six tasks in ten meta-steps (the shipped LM configs): warm-up, the sweep, then three of the four meta-steps at
    ``p`` -- the last round needs its sweep and one meta-step at ``p``, not its whole exploit phase."""
    s = Aioli(6, exploit_meta_steps=4, warmup_meta_steps=1)
    s.set_budget(10)
    assert [s.phase(m)[0] for m in range(10)] == ["warmup"] + ["sweep"] * 6 + ["exploit"] * 3
    s.set_budget(7)  # no meta-step at p would follow the sweep: the whole run at the prior
    assert [s.phase(m)[0] for m in range(7)] == ["warmup"] + ["final"] * 6


def test_refusals_name_the_argument():
    with pytest.raises(ValueError, match="aioli: one_hot_factor"):
        Aioli(4, one_hot_factor=0.2)  # not above 1/K: the sweeps would not be invertible
    with pytest.raises(ValueError, match="aioli: eta"):
        Aioli(3, eta=-0.1)
    with pytest.raises(ValueError, match="aioli: objective"):
        Aioli(3, objective="worst")
    with pytest.raises(ValueError, match="aioli: warmup_meta_steps"):
        Aioli(3, warmup_meta_steps=0)
    with pytest.raises(ValueError, match="aioli: prior"):
        Aioli(3, prior=[1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="held-out loss"):
        Aioli(2).update(0, MetaStepInfo(step=1, steps=1, weights=np.ones(2) / 2, counts=np.ones(2), task_loss=np.ones(2)))


def test_state_is_checked_on_load():
    s = Aioli(3, seed=1)
    s.update(0, _info([1.0, 1.0, 1.0], k=3))
    good = json.loads(json.dumps(s.state_dict()))
    for key, bad, msg in [("p", [0.5, 0.5, 0.5], r"\.p"), ("order", [0.0, 0.0, 1.0], "order"),
                          ("last_loss", [1.0, -1.0, 1.0], "last_loss"), ("gain", [[0.0] * 3] * 2, "gain")]:
        with pytest.raises(ValueError, match=msg):
            Aioli(3).load_state_dict({**good, key: bad})
    t = Aioli(3, seed=9)
    t.load_state_dict(good)
    assert np.array_equal(t.weights(0), s.weights(0)) and np.array_equal(t.order, s.order)


def test_run_spends_its_sweeps_inside_the_budget_and_resumes_bit_for_bit():
    job = toy_job(seed=4, **{"train.steps": 80, "search.meta_steps": 8})

    def fresh():
        return AdaptiveRun(job, make_strategy("aioli", 3, job.target, job.seed, exploit_meta_steps=1))

    full = fresh()
    res = full.run()
    assert res.steps == 80 and res.evaluations == 8  # the sweeps are training steps of the run
    phases = [e["phase"] for e in res.log]
    # the second round (from meta-step 5) cannot fit its sweep and a meta-step at p in 8: it trains at p
    assert phases == ["warmup", "sweep", "sweep", "sweep", "exploit", "final", "final", "final"]
    # the run renormalises the strategy's weights, which may move the last bit (summation order is the CPU's)
    np.testing.assert_allclose(res.log[-1]["probs_before"], full.strategy.p, rtol=1e-12, atol=0)  # type: ignore[attr-defined]
    assert any(np.allclose(res.log[1]["probs_before"], w, rtol=1e-12, atol=0)
               for w in full.strategy.W)  # type: ignore[attr-defined]
    part = fresh()
    for _ in range(3):  # mid-sweep
        part.step_meta()
    state = part.state_dict()
    resumed = fresh()
    resumed.load_state_dict(state)
    resumed.run()
    assert resumed.evaluate_report() == full.evaluate_report()
    assert resumed.time_variant_schedule() == full.time_variant_schedule()
    np.testing.assert_array_equal(resumed.strategy.p, full.strategy.p)  # type: ignore[attr-defined]


def test_methods_cost_and_export():
    cfg = toy_cfg(**{"train.steps": 20, "search.meta_steps": 2})
    tasks = toy_tasks()
    assert METHODS.meta("aioli", "kind") == "adaptive" and METHODS.meta("aioli-replay", "kind") == "adaptive-replay"
    online = run_method(cfg, tasks, "aioli", 0)
    replay = run_method(cfg, tasks, "aioli-replay", 0)
    assert online["train_steps"] == 20 and replay["train_steps"] == 40  # 1 and 2 plain runs
    assert online["extra"]["cost_plain_runs"] == 1 and replay["extra"]["cost_plain_runs"] == 2
    assert len(replay["schedule"]["weights"]) == 1 and replay["schedule"]["provenance"]["aioli_eta"] == 0.2
