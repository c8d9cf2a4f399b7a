"""Peers (RegMix, MixMin, UniMax), budget accounting and the equal-compute view; the contract over every method."""

from __future__ import annotations

import numpy as np
import pytest

from taskmix.compare import METHODS, check_config
from taskmix.compare.budget import equal_compute, equal_compute_cells, plain_runs
from taskmix.compare.methods import run_method
from taskmix.compare.peers._mixmin import mixture_weights
from taskmix.compare.peers._regmix import fit_surface, sample_mixtures, search_surface
from taskmix.compare.rows import ROW_DIGEST, RowContext, check_row, row_digest
from taskmix.config import config_from_dict
from taskmix.data.tasks import Split, Task
from taskmix.errors import ConfigError, ScheduleError
from taskmix.runs import prepare_job
from taskmix.schedule import Schedule, jsonable
from taskmix.schedule.rules import unimax


def toy_tasks(seed: int = 0, dim: int = 6, target_labels: int = 2) -> list[Task]:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(dim)

    def split(n: int, sign: float = 1.0, k: int = 2) -> Split:
        x = rng.standard_normal((n, dim)).astype(np.float32)
        z = sign * (x @ w)
        y = (z > 0).astype(np.int64) if k == 2 else np.digitize(z, [-0.5, 0.5]).astype(np.int64)
        return Split(x, y)

    return [
        Task("t", train=split(120, k=target_labels), test=split(200, k=target_labels), num_labels=target_labels),
        Task("aligned", train=split(300), num_labels=2),
        Task("opposed", train=split(300, -1.0), num_labels=2),
    ]


def toy_cfg(heads: str = "shared", **compare):
    return config_from_dict({
        "target": "t",
        "tasks": {"t": {"train": "unused"}, "aligned": {"train": "unused"}, "opposed": {"train": "unused"}},
        "model": {"heads": heads, "hidden": 8, "lr": 0.01},
        "train": {"steps": 16, "batch_size": 16},
        "search": {"meta_steps": 2, "probe_batches": 1},
        "compare": {"oracle_step": 0.5, "peers": {"regmix": {"proxy_runs": 4, "search_samples": 400, "top_k": 10}},
                    **compare},
    })


# ----------------------------------------------------------------- RegMix


def test_regmix_fit_and_search_recovers_the_optimum_of_a_quadratic_surface():
    rng = np.random.default_rng(3)
    best = np.array([0.5, 0.3, 0.2])
    w = rng.dirichlet(np.ones(3), size=30)
    y = 2.0 + ((w - best) ** 2).sum(axis=1)  # lower is better, minimum at `best`
    fit = fit_surface(w, y, "quadratic", ridge=1e-8)
    np.testing.assert_allclose(fit.predict(w), y, atol=1e-6)  # a quadratic is fitted exactly
    got = search_surface(fit, np.ones(3), 20000, 50, rng)
    np.testing.assert_allclose(got, best, atol=0.03)
    # a linear fit of the same surface points to a corner region instead: the quadratic terms matter
    lin = search_surface(fit_surface(w, y, "linear", ridge=1e-8), np.ones(3), 20000, 50, rng)
    assert np.abs(lin - best).max() > 0.1


def test_regmix_samples_give_exact_zeros_where_the_prior_has_none():
    w = sample_mixtures(np.array([1.0, 0.0, 2.0]), 50, np.random.default_rng(0))
    assert np.all(w[:, 1] == 0.0) and np.allclose(w.sum(axis=1), 1.0)


# ----------------------------------------------------------------- MixMin


def test_mixmin_convex_fit_recovers_known_weights_and_zeroes_a_useless_source():
    rng = np.random.default_rng(0)
    n, k = 20000, 3
    p0, p1 = rng.dirichlet(np.ones(k), size=n), rng.dirichlet(np.ones(k), size=n)
    truth = 0.7 * p0 + 0.3 * p1
    bad = (1.0 - truth) ** 4
    bad /= bad.sum(axis=1, keepdims=True)  # mass on the labels the truth finds least likely
    y = np.array([rng.choice(k, p=row) for row in truth])
    p = np.stack([m[np.arange(n), y] for m in (p0, p1, bad)])
    w = mixture_weights(p)
    np.testing.assert_allclose(w[:2], [0.7, 0.3], atol=0.03)
    assert w[2] == 0.0 and w.sum() == pytest.approx(1.0)


def test_mixmin_refuses_non_probabilities():
    with pytest.raises(ValueError, match="probabilities"):
        mixture_weights(np.array([[1.5, 0.2]]))


# ----------------------------------------------------------------- UniMax


def test_unimax_spreads_the_budget_uniformly_under_the_epoch_cap():
    sizes = {"t": 50, "a": 1000, "b": 5000}
    # budget 3000, 1 epoch: t is capped at 50; a at 1000 (< 2950 / 2); b takes the rest, 1950
    np.testing.assert_allclose(unimax(list(sizes), sizes, budget=3000).weights[0], np.array([50, 1000, 1950]) / 3000)
    # 2 epochs: t at 100, then a and b split 2900 evenly (1450 < 2000)
    s2 = unimax(list(sizes), sizes, budget=3000, epochs=2)
    np.testing.assert_allclose(s2.weights[0], np.array([100, 1450, 1450]) / 3000)
    assert s2.provenance["capped"] is False
    # every task capped: the caps, i.e. proportional to the sizes
    s3 = unimax(list(sizes), sizes, budget=10**6)
    np.testing.assert_allclose(s3.weights[0], np.array([50, 1000, 5000]) / 6050)
    assert s3.provenance["capped"] is True
    with pytest.raises(ScheduleError, match="budget"):
        unimax(list(sizes), sizes)


def test_unimax_method_uses_the_runs_budget():
    job = prepare_job(toy_cfg(), toy_tasks(), 0)
    res = METHODS.get("unimax_2")(job)
    want = unimax(job.names, job.sizes, budget=16 * 16, epochs=2).weights
    np.testing.assert_allclose(res.schedule.weights, want)
    assert METHODS.meta("unimax", "kind") == "baseline" and "unimax" in METHODS


# --------------------------------------------------------------- contract


def _names() -> list[str]:
    names = [m for m in METHODS if METHODS.meta(m, "kind") != "recommended"]
    return names + ["temperature_3", "unimax_2"]  # one member of each family


@pytest.mark.parametrize("method", _names())
def test_every_method_returns_a_valid_row_on_a_tiny_job(method):
    tasks = toy_tasks()
    cfg = toy_cfg()
    row = jsonable(run_method(cfg, tasks, method, 0))
    row[ROW_DIGEST] = row_digest(row)
    check_row(row, method, RowContext.of(tasks, "t"))  # types, kind, held-out evidence, test == its predictions
    assert row["train_steps"] >= cfg.train.steps and row["evaluations"] >= 1
    if row["schedule"] is not None:
        sched = Schedule.from_dict(row["schedule"])
        assert sched.tasks == ("t", "aligned", "opposed")
        assert Schedule.from_dict(sched.to_dict()).to_dict() == sched.to_dict()  # exportable, replayable


@pytest.mark.parametrize("method,proxies", [("regmix", 4 * 2), ("mixmin", 3 * 4)])
def test_peer_rows_count_their_proxy_runs_and_name_the_peer(method, proxies):
    row = run_method(toy_cfg(), toy_tasks(), method, 0)
    assert row["kind"] == "peer"
    assert row["train_steps"] == 16 + proxies  # regmix: 4 proxies x 2 steps (1/8); mixmin: 3 tasks x 4 steps (1/4)
    assert row["extra"]["cost_plain_runs"] == pytest.approx(row["train_steps"] / 16)
    assert row["schedule"]["provenance"]["method"] == method and "peer" in row["schedule"]["provenance"]


def test_mixmin_with_per_task_heads_and_another_label_count():
    tasks = toy_tasks(target_labels=3)
    row = run_method(toy_cfg(heads="per_task"), tasks, "mixmin", 0)  # default: auxiliaries excluded, no proxy
    assert row["schedule"]["weights"][0] == [1.0, 0.0, 0.0] and row["train_steps"] == 16
    assert row["extra"]["excluded"] == ["aligned", "opposed"]
    cfg = toy_cfg(heads="per_task", peers={"mixmin": {"per_task_heads": "probe"}})
    row = run_method(cfg, tasks, "mixmin", 0)  # the target's head fitted on each auxiliary's frozen trunk
    w = np.asarray(row["schedule"]["weights"][0])
    assert w.shape == (3,) and w.sum() == pytest.approx(1.0) and np.all(w >= 0) and row["train_steps"] == 16 + 12
    assert row["schedule"]["provenance"]["heads"] == "per-task heads: probe"


# --------------------------------------------------------------- settings


@pytest.mark.parametrize("peers,field", [
    ({"regmix": {"proxy_runs": 1}}, "compare.peers.regmix.proxy_runs"),
    ({"regmix": {"proxy_runz": 8}}, "compare.peers.regmix.proxy_runz"),
    ({"mixmin": {"proxy_fraction": 0}}, "compare.peers.mixmin.proxy_fraction"),
    ({"mixmin": {"zero_below": "x"}}, "compare.peers.mixmin.zero_below"),
    ({"nope": {}}, "compare.peers.nope"),
])
def test_peer_settings_are_checked_when_a_comparison_starts(peers, field):
    cfg = toy_cfg()
    cfg = cfg.model_copy(update={"compare": cfg.compare.model_copy(update={"peers": peers})})
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        check_config(cfg)


def test_default_peer_settings_pass():
    check_config(toy_cfg(methods=["regmix", "mixmin", "unimax"]))


# ---------------------------------------------------------- equal compute


def _row(method, kind, seed, test, held_out, steps):
    return {"method": method, "kind": kind, "seed": seed, "test": test, "train_steps": steps,
            "extra": {"reward_split": held_out}}


def test_equal_compute_sets_each_method_against_the_rules_its_cost_buys():
    rows = [
        _row("uniform", "baseline", 0, 0.60, 0.50, 100), _row("uniform", "baseline", 1, 0.62, 0.70, 100),
        _row("single_task", "baseline", 0, 0.70, 0.60, 100), _row("single_task", "baseline", 1, 0.66, 0.65, 100),
        _row("proportional", "baseline", 0, 0.90, 0.90, 100), _row("proportional", "baseline", 1, 0.90, 0.90, 100),
        _row("peer", "peer", 0, 0.75, 0.8, 250), _row("peer", "peer", 1, 0.61, 0.8, 299),
    ]
    view = {v["method"]: v for v in equal_compute(rows, 100)}
    assert plain_runs(rows[-1], 100) == pytest.approx(2.99)
    peer = view["peer"]
    # 2.5 and 2.99 plain runs buy 2 rules (uniform, single_task); picked on the reward split: single_task on seed 0,
    # uniform on seed 1 -- not proportional (not bought), and never by the test score
    assert peer["rules"] == ["uniform", "single_task"] and peer["picked"] == ["single_task", "uniform"]
    assert peer["rule_test"] == pytest.approx((0.70 + 0.62) / 2)
    assert peer["diff"] == pytest.approx(((0.75 - 0.70) + (0.61 - 0.62)) / 2)
    assert peer["ahead"] == 1 and peer["n"] == 2
    assert view["proportional"]["rules"] == ["uniform"]  # one plain run buys the first rule
    # a lower-is-better metric picks the lowest held-out value
    low = {v["method"]: v for v in equal_compute(rows, 100, metric="bits_per_byte")}
    assert low["peer"]["picked"] == ["uniform", "single_task"]
    head, cells = equal_compute_cells(list(view.values()))
    assert len(cells) == 4 and len(cells[0]) == len(head)


def test_the_report_gets_an_equal_compute_table():
    from taskmix.compare.report import _equal_compute_table

    rows = [_row("uniform", "baseline", 0, 0.6, 0.5, 100), _row("peer", "peer", 0, 0.7, 0.9, 300)]
    head, cells = _equal_compute_table({"config": {"train": {"steps": 100}}}, rows, "accuracy")
    assert [c[0] for c in cells] == ["uniform", "peer"] and cells[1][1] == "3.00" and cells[1][5] == "+0.1000"
    assert _equal_compute_table({}, [_row("peer", "peer", 0, 0.7, 0.9, 300)], "accuracy") == ([], [])  # no rules
