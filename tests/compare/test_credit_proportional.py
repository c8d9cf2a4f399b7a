"""``credit_proportional``: each task weighted by its size and its early credit; negative credit -> exactly 0."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from taskmix.compare import METHODS, check_config, default_methods, select_methods
from taskmix.compare.methods import _SEARCHES, FEATURE_METHODS, credit_weights
from taskmix.config import config_from_dict, load_config
from taskmix.data.tasks import Split, Task
from taskmix.errors import ConfigError
from taskmix.runs import prepare_job


def test_weights_are_credit_times_size_and_drop_every_task_that_does_not_help():
    credits = [[0.4, 0.2, -0.5, 0.0], [0.2, 0.4, -0.1, 0.0]]  # means 0.3, 0.3, -0.3, 0
    w = credit_weights(credits, [100, 300, 5000, 800], target=0)
    assert w.tolist() == pytest.approx([0.25, 0.75, 0.0, 0.0])  # 0.3 x 100 : 0.3 x 300
    assert w[2] == 0.0 and w[3] == 0.0  # exactly zero, not a small share


def test_temperature_tempers_the_sizes_and_a_large_one_weighs_by_credit_alone():
    w2 = credit_weights([[0.2, 0.1]], [100, 400], target=0, temperature=2.0)
    assert w2.tolist() == pytest.approx([0.2 * 10 / (0.2 * 10 + 0.1 * 20), 0.1 * 20 / (0.2 * 10 + 0.1 * 20)])
    assert credit_weights([[0.2, 0.1]], [100, 400], target=0, temperature=1e9) == pytest.approx([2 / 3, 1 / 3])


def test_a_target_without_positive_credit_or_no_helpful_auxiliary_gives_the_target_alone():
    assert credit_weights([[-0.1, 0.5]], [100, 100], target=0).tolist() == [1.0, 0.0]
    assert credit_weights([[0.3, -0.5, 0.0]], [100, 100, 100], target=0).tolist() == [1.0, 0.0, 0.0]
    assert credit_weights([[0.5, 0.3]], [100, 100], target=1).tolist() == pytest.approx([0.625, 0.375])


@pytest.mark.parametrize("credits, sizes, target, temperature, match", [
    ([[0.1, 0.2]], [10, 10, 10], 0, 1.0, "credits: expected meta-steps x 3"),
    ([], [10, 10], 0, 1.0, "credits: expected"),
    ([[0.1, float("nan")]], [10, 10], 0, 1.0, "finite"),
    ([[0.1, 0.2]], [10, 0], 0, 1.0, "sizes"),
    ([[0.1, 0.2]], [10, 10], 2, 1.0, "target"),
    ([[0.1, 0.2]], [10, 10], 0, 0.0, "temperature"),
    ([[0.1, 0.2]], [10, 10], 0, float("inf"), "temperature"),
])
def test_bad_arguments_are_refused_at_the_call(credits, sizes, target, temperature, match):
    with pytest.raises(ValueError, match=match):
        credit_weights(credits, sizes, target, temperature)


def _tasks(seed: int = 0, dim: int = 6) -> list[Task]:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(dim)

    def split(n: int, sign: float) -> Split:
        x = rng.standard_normal((n, dim)).astype(np.float32)
        return Split(x, (sign * (x @ w) > 0).astype(np.int64))

    return [Task("t", train=split(80, 1.0), test=split(200, 1.0)), Task("copy", train=split(600, 1.0)),
            Task("flipped", train=split(600, -1.0))]


def _cfg(**search):
    return config_from_dict({
        "target": "t", "tasks": {n: {"train": f"{n}.npz"} for n in ("t", "copy", "flipped")},  # feature tasks
        "model": {"heads": "shared", "hidden": 8, "lr": 0.05}, "train": {"steps": 40, "batch_size": 16},
        "search": {"meta_steps": 4, "probe_batches": 2, **search},
    })


def test_the_method_drops_the_task_that_hurts_and_reads_the_same_credit_alone_or_from_the_learned_search():
    _SEARCHES.clear()
    job = prepare_job(_cfg(), _tasks(), 0)
    assert job.cfg.regime == "features" and job.cfg.search.reward == "gradient_alignment"
    alone = METHODS.get("credit_proportional")(job)
    prov = alone.schedule.provenance
    assert prov["method"] == "credit_proportional" and prov["credit_window"] == 2
    assert prov["credit"]["flipped"] < 0 < prov["credit"]["copy"]
    w = dict(zip(job.names, alone.schedule.mean_weights()))
    assert w["flipped"] == 0.0 and w["copy"] > 0 and w["t"] > 0 and prov["kept"] == ["t", "copy"]
    assert not alone.extra["search_shared"]
    # its cost: the search's first two meta-steps (of 4, half-length search: 5 steps each) and one retrain
    assert alone.train_steps == 40 + 2 * 5 and alone.evaluations == 1 + 2
    METHODS.get("learned_time_variant")(job)  # the full search, cached for the comparison's other methods
    shared = METHODS.get("credit_proportional")(job)
    assert shared.extra["search_shared"] and shared.schedule.provenance["credit"] == prov["credit"]
    assert shared.schedule.to_dict() == alone.schedule.to_dict() and shared.test == alone.test
    _SEARCHES.clear()


def test_the_window_is_capped_by_the_search_and_the_temperature_is_read_from_the_config():
    job = prepare_job(_cfg(credit_window=50, credit_temperature=3.0), _tasks(), 0)
    prov = METHODS.get("credit_proportional")(job).schedule.provenance
    assert prov["credit_window"] == 4 and prov["credit_temperature"] == 3.0


@pytest.mark.parametrize("key, value", [("credit_window", 0), ("credit_temperature", 0.0), ("credit_window", 1.5)])
def test_bad_settings_are_refused_naming_the_field(key, value):
    with pytest.raises(ConfigError, match=f"search.{key}"):
        _cfg(**{key: value})


def test_feature_tasks_compare_it_by_default_and_text_tasks_do_not(tmp_path: Path):
    builtin = load_config(None)
    assert select_methods(builtin) == default_methods(builtin) and FEATURE_METHODS[0] in select_methods(builtin)
    text = config_from_dict({"target": "t", "tasks": {"t": {"train": "t.csv", "test": "t.csv"}, "a": {"train": "t.csv"}}},
                            "c.yaml", tmp_path)
    assert text.regime == "text" and "credit_proportional" not in select_methods(text)
    tuned = config_from_dict({"target": "t", "tasks": {"t": {"train": "t.csv", "test": "t.csv"}, "a": {"train": "t.csv"}},
                              "model": {"regime": "finetune"}}, "c.yaml", tmp_path)
    assert "credit_proportional" not in select_methods(tuned)
    chosen = load_config(None, ["compare.methods=[uniform,single_task]"])
    assert select_methods(chosen) == ["uniform", "single_task"]  # a list the user gives is kept as given


def test_a_scalar_reward_is_refused_before_any_work_when_the_method_is_compared():
    cfg = load_config(None, ["search.reward=accuracy"])
    with pytest.raises(ConfigError, match=r"search.reward: credit_proportional needs a per-task reward"):
        check_config(cfg)
    check_config(load_config(None, ["search.reward=accuracy", "compare.methods=[uniform,learned_time_invariant]"]))
