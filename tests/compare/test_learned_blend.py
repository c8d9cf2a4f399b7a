"""``learned_blend``: the mean of the learned time-invariant, time-variant and credit-proportional mixtures."""

from __future__ import annotations

import numpy as np
import pytest

from taskmix.compare import METHODS, check_config
from taskmix.compare.methods import _SEARCHES, BLEND_PARTS, blend_weights
from taskmix.config import load_config
from taskmix.errors import ConfigError
from taskmix.runs import prepare_job

from test_credit_proportional import _cfg, _tasks  # noqa: E402  (the same toy tasks)


def test_the_blend_is_the_renormalised_mean_and_keeps_a_zero_every_part_has():
    w = blend_weights([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [2.0, 2.0, 0.0]])  # rows renormalised first
    assert w.tolist() == pytest.approx([2 / 3, 1 / 3, 0.0]) and w[2] == 0.0
    assert blend_weights([[0.2, 0.8]]).tolist() == pytest.approx([0.2, 0.8])  # one part: itself


@pytest.mark.parametrize("parts, match", [
    ([], "one row of task weights"),
    ([[0.5, -0.1, 0.6]], "non-negative"),
    ([[0.0, 0.0]], "positive sum"),
    ([[0.5, float("nan")]], "finite"),
])
def test_bad_parts_are_refused_at_the_call(parts, match):
    with pytest.raises(ValueError, match=match):
        blend_weights(parts)


def test_the_method_averages_the_three_schedules_of_one_search():
    _SEARCHES.clear()
    job = prepare_job(_cfg(), _tasks(), 0)
    lti = METHODS.get("learned_time_invariant")(job)
    ltv = METHODS.get("learned_time_variant")(job)
    cp = METHODS.get("credit_proportional")(job)
    blend = METHODS.get("learned_blend")(job)
    assert blend.extra["search_shared"] and blend.extra["search_reused"]
    total = job.cfg.train.steps
    expected = np.mean([r.schedule.mean_weights(total) for r in (lti, ltv, cp)], axis=0)
    got = blend.schedule.mean_weights()
    assert blend.schedule.time_invariant and got == pytest.approx(expected / expected.sum(), abs=1e-12)
    parts = blend.schedule.provenance["parts"]
    assert list(parts) == list(BLEND_PARTS)
    assert parts["credit_proportional"] == pytest.approx(cp.schedule.mean_weights().tolist())
    # the flipped task: credit_proportional drops it, so its blend share is at most 2/3 of the learned ones'
    i = job.names.index("flipped")
    assert got[i] <= (lti.schedule.mean_weights()[i] + ltv.schedule.mean_weights(total)[i]) / 3 + 1e-12
    # cost: the full search (as the learned methods report it) and one retrain; a fresh process gives the same
    assert blend.train_steps == lti.train_steps
    _SEARCHES.clear()
    again = METHODS.get("learned_blend")(job)
    assert not again.extra["search_reused"] and again.schedule.to_dict() == blend.schedule.to_dict()
    assert again.test == blend.test
    _SEARCHES.clear()


def test_a_scalar_reward_is_refused_when_the_blend_is_compared():
    cfg = load_config(None, ["search.reward=accuracy", "compare.methods=[uniform,learned_blend]"])
    with pytest.raises(ConfigError, match=r"search.reward: learned_blend needs a per-task reward"):
        check_config(cfg)
