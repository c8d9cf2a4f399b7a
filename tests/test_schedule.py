import json

import numpy as np
import pytest

from taskmix import schedule as rules
from taskmix.errors import ScheduleError
from taskmix.schedule import FORMAT, Schedule

TASKS = ["rte", "mnli", "qnli"]


def test_round_trip(tmp_path):
    s = Schedule.from_weights(TASKS, [[1, 2, 3], [3, 2, 1]], steps_per_meta_step=50, provenance={"method": "x"})
    p = s.save(tmp_path / "s.json")
    t = Schedule.load(p)
    assert t == s
    assert t.provenance == {"method": "x"}
    assert json.loads(p.read_text())["format"] == FORMAT


def test_time_variant_rows_and_last_row_holds():
    s = Schedule.from_weights(TASKS, [[1, 0, 0], [0, 1, 0]], steps_per_meta_step=10)
    assert s.row_index(0) == 0 and s.row_index(9) == 0 and s.row_index(10) == 1
    assert s.row_index(10_000) == 1  # the last row holds past the end
    np.testing.assert_allclose(s.mean_weights(30), [1 / 3, 2 / 3, 0])


def _doc(**kw):
    d = {"format": FORMAT, "tasks": TASKS, "steps_per_meta_step": 10, "weights": [[0.2, 0.3, 0.5]], "provenance": {}}
    d.update(kw)
    return json.dumps(d)


@pytest.mark.parametrize(
    "doc, needle",
    [
        ("{not json", "not valid JSON"),
        ("[]", "JSON object"),
        (_doc(format="other/1"), "'format'"),
        (_doc(weights=[[0.2, 0.3]]), "2 entries, expected 3"),
        (_doc(weights=[[0.2, -0.3, 1.1]]), "non-negative"),
        (_doc(weights=[[0.2, 0.3, 0.6]]), "sums to"),
        (_doc(weights=[["a", 0.5, 0.5]]), "must be a number"),
        (_doc(weights=[]), "non-empty"),
        (_doc(tasks=["rte", "rte", "qnli"]), "duplicate"),
        (_doc(steps_per_meta_step=0), "positive integer"),
        (_doc(extra=1), "unknown key"),
        (_doc().replace('"weights": [[0.2, 0.3, 0.5]]', '"weights": [[NaN, 0.5, 0.5]]'), "finite"),
        (_doc().replace('"weights": [[0.2, 0.3, 0.5]]', '"weights": [[Infinity, 0.5, 0.5]]'), "finite"),
    ],
)
def test_rejects_malformed(doc, needle):
    with pytest.raises(ScheduleError, match=needle) as e:
        Schedule.from_json(doc, "s.json")
    assert str(e.value).startswith("s.json")
    assert "\n" not in str(e.value)


def test_unknown_task_against_config():
    s = Schedule.from_weights(["rte", "sst2"], [1, 1])
    with pytest.raises(ScheduleError, match="unknown task"):
        s.restrict_to(TASKS)
    # a subset only when asked for: missing tasks get weight 0
    with pytest.raises(ScheduleError, match="names 1 of the 3 tasks"):
        Schedule.from_weights(["rte"], [1]).restrict_to(TASKS)
    sub = Schedule.from_weights(["rte"], [1]).restrict_to(TASKS, allow_missing=True)
    np.testing.assert_allclose(sub.weights[0], [1, 0, 0])


def test_rules():
    sizes = {"rte": 100, "mnli": 10000, "qnli": 1000}
    np.testing.assert_allclose(rules.single_task(TASKS, "rte").weights[0], [1, 0, 0])
    np.testing.assert_allclose(rules.uniform(TASKS).weights[0], [1 / 3] * 3)
    np.testing.assert_allclose(rules.proportional(TASKS, sizes).weights[0], np.array([100, 10000, 1000]) / 11100)
    t2 = rules.temperature(TASKS, sizes, 2.0).weights[0]
    np.testing.assert_allclose(t2, np.sqrt([100, 10000, 1000]) / np.sqrt([100, 10000, 1000]).sum())
    assert np.allclose(rules.temperature(TASKS, sizes, 1e9).weights[0], 1 / 3, atol=1e-6)  # T -> inf is uniform
    cap = rules.examples_proportional(TASKS, sizes, cap=1000).weights[0]
    np.testing.assert_allclose(cap, np.array([100, 1000, 1000]) / 2100)
    np.testing.assert_allclose(rules.explicit(TASKS, {"rte": 3, "qnli": 1}).weights[0], [0.75, 0, 0.25])
    with pytest.raises(ScheduleError, match="not among"):
        rules.single_task(TASKS, "cola")
    np.testing.assert_allclose(rules.auxiliary_only(TASKS, "rte").weights[0], [0, 0.5, 0.5])
    with pytest.raises(ScheduleError, match="auxiliary_only"):
        rules.auxiliary_only(["rte"], "rte")
    with pytest.raises(ScheduleError, match="positive"):
        rules.temperature(TASKS, sizes, 0)
