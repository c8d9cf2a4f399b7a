"""DoReMi (taskmix.strategies.doremi): the group-DRO step against hand-computed numbers, its time average, its
reference run, its cost, resume and refusals."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from taskmix.compare.methods import METHODS, run_method
from taskmix.runs import AdaptiveRun
from taskmix.strategies import DoReMi, DoReMiTarget, MetaStepInfo, make_strategy

sys.path.insert(0, str(Path(__file__).parent))
from test_online_strategies import toy_cfg, toy_job, toy_tasks  # noqa: E402


def _info(loss=None, alignment=None, k: int = 3) -> MetaStepInfo:
    w = np.full(k, 1.0 / k)
    return MetaStepInfo(step=10, steps=10, weights=w, counts=np.full(k, 100.0), task_loss=np.ones(k),
                        heldout_loss=None if loss is None else np.asarray(loss, dtype=float),
                        alignment=None if alignment is None else np.asarray(alignment, dtype=float))


def test_dro_step_is_the_papers_update_by_hand():
    # excess = max(L - ref, 0) = (0.5, 0, 0.2); eta = 2, c = 0.1, K = 3, alpha = uniform
    s = DoReMi(3, reference_loss=[1.0, 2.0, 0.3], lr=2.0, smoothing=0.1)
    info = _info([1.5, 1.0, 0.5])
    np.testing.assert_allclose(s.rewards(info), [0.5, 0.0, 0.2], atol=1e-15)
    s.update(0, info)
    e = np.array([math.exp(1.0), 1.0, math.exp(0.4)])  # exp(eta * excess)
    expected = 0.9 * e / e.sum() + 0.1 / 3
    np.testing.assert_allclose(s.weights(10), expected, rtol=0, atol=1e-12)
    # explicit numbers: e / sum(e) = (0.5217, 0.1919, 0.2863)
    np.testing.assert_allclose(s.weights(10), [0.502893, 0.206075, 0.291033], atol=1e-6)
    # the second step multiplies the smoothed weights, not the uniform ones
    s.update(1, _info([1.0, 2.5, 0.3]))  # excess (0, 0.5, 0)
    a = expected * np.array([1.0, math.exp(1.0), 1.0])
    np.testing.assert_allclose(s.weights(20), 0.9 * a / a.sum() + 0.1 / 3, atol=1e-12)


def test_output_is_the_time_average_of_the_updated_weights():
    s = DoReMi(2, reference_loss=[0.0, 0.0], lr=1.0, smoothing=0.0)
    np.testing.assert_array_equal(s.average_weights(), [0.5, 0.5])  # before any update
    s.update(0, _info([math.log(3.0), 0.0], k=2))   # alpha_1 = (3, 1) / 4
    s.update(1, _info([0.0, math.log(3.0)], k=2))   # alpha_2 = (3, 3) / 6
    np.testing.assert_allclose(s.average_weights(), [(0.75 + 0.5) / 2, (0.25 + 0.5) / 2], atol=1e-12)
    assert s.log_extra()["average"] == pytest.approx([0.625, 0.375])


def test_smoothing_keeps_every_weight_at_least_c_over_k_and_worst_domain_rises():
    s = DoReMi(4, reference_loss=[1.0] * 4, lr=1.0, smoothing=1e-3)
    for m in range(60):
        s.update(m, _info([5.0, 1.0, 1.0, 1.0], k=4))  # task 0 always has excess 4, the others none
    w = s.weights(0)
    assert w[0] > 0.99 and np.all(w >= 1e-3 / 4 - 1e-15)  # near one-hot (sangmichaelxie/doremi#5), floored by c
    assert w.sum() == pytest.approx(1.0)


def test_target_form_moves_toward_the_aligned_task():
    s = DoReMiTarget(3, target=0, lr=1.0, smoothing=0.0)
    s.update(0, _info(alignment=[1.0, 0.5, -0.5]))
    e = np.exp([1.0, 0.5, -0.5])
    np.testing.assert_allclose(s.weights(0), e / e.sum(), atol=1e-12)
    with pytest.raises(ValueError, match="alignment"):
        s.update(1, _info([1.0, 1.0, 1.0]))


def test_refusals_name_the_argument():
    with pytest.raises(ValueError, match="doremi: smoothing"):
        DoReMi(3, smoothing=1.5)
    with pytest.raises(ValueError, match="doremi: lr"):
        DoReMi(3, lr=-1.0)
    with pytest.raises(ValueError, match=r"reference_loss\[1\]"):
        DoReMi(3, reference_loss=[1.0, float("nan"), 1.0])
    with pytest.raises(ValueError, match="no reference"):
        DoReMi(3).update(0, _info([1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="held-out loss"):
        DoReMi(3, reference_loss=[1.0] * 3).update(0, _info())
    with pytest.raises(ValueError, match="doremi_target: similarity"):
        DoReMiTarget(3, similarity="l2")


def test_state_is_checked_on_load():
    s = DoReMi(3, reference_loss=[1.0, 1.0, 1.0])
    s.update(0, _info([2.0, 1.0, 1.0]))
    good = json.loads(json.dumps(s.state_dict()))
    for key, bad, msg in [("alpha", [0.5, 0.5, 0.5], "alpha"), ("alpha", [1.0, 0.0, 0.0], "alpha"),
                          ("alpha_sum", [5.0, 0.0, 0.0], "alpha_sum"), ("reference", [1.0, -1.0, 1.0], "reference"),
                          ("reference", [1.0, 1.0], "reference")]:
        with pytest.raises(ValueError, match=msg):
            DoReMi(3, reference_loss=[1.0] * 3).load_state_dict({**good, key: bad})
    t = DoReMi(3)
    t.load_state_dict(good)
    assert t.has_reference and np.array_equal(t.weights(0), s.weights(0))
    with pytest.raises(ValueError, match="no reference"):
        DoReMi(3).state_dict()


def test_run_trains_the_reference_first_and_counts_it():
    job = toy_job(seed=1, **{"train.steps": 30, "search.meta_steps": 3})
    run = AdaptiveRun(job, make_strategy("doremi", 3, job.target, job.seed))
    assert run.strategy.has_reference and run.reference_steps == 30  # type: ignore[attr-defined]
    res = run.run()
    assert res.steps == 60 and res.reference_steps == 30
    assert res.evaluations == 3  # one held-out evaluation per meta-step
    ref = run.strategy.reference  # type: ignore[attr-defined]
    assert ref.shape == (3,) and np.all(np.isfinite(ref)) and np.all(ref > 0)
    # a given reference is used as is: no reference run
    given = AdaptiveRun(job, make_strategy("doremi", 3, job.target, job.seed, reference_loss=[0.1, 0.2, 0.3]))
    assert given.reference_steps == 0 and given.run().steps == 30


def test_run_resumes_bit_for_bit():
    job = toy_job(seed=4, **{"train.steps": 40, "search.meta_steps": 4})

    def fresh():
        return AdaptiveRun(job, make_strategy("doremi", 3, job.target, job.seed, reference_loss=[0.3, 0.3, 0.3]))

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
    np.testing.assert_array_equal(resumed.strategy.alpha_sum, full.strategy.alpha_sum)  # type: ignore[attr-defined]


def test_methods_cost_in_plain_runs_and_export_the_average():
    cfg = toy_cfg(**{"train.steps": 20, "search.meta_steps": 2})
    tasks = toy_tasks()
    assert METHODS.meta("doremi-replay", "kind") == "adaptive-replay"
    online = run_method(cfg, tasks, "doremi", 0)
    replay = run_method(cfg, tasks, "doremi-replay", 0)
    assert online["train_steps"] == 40 and replay["train_steps"] == 60  # reference + proxy (+ retrain)
    assert online["extra"]["cost_plain_runs"] == 2 and replay["extra"]["cost_plain_runs"] == 3
    assert replay["extra"]["reference_steps"] == 20
    assert online["evaluations"] == 2 + 1
    avg = replay["schedule"]
    assert len(avg["weights"]) == 1 and avg["provenance"]["method"] == "doremi"
    assert avg["provenance"]["doremi_reference_loss"] is not None
    target = run_method(cfg, tasks, "doremi_target-replay", 0)
    assert target["train_steps"] == 40  # no reference
