"""The robust search: variance-aware updates, per-task effects with intervals, one search for both schedules."""

import numpy as np
import pytest
import torch

from taskmix.compare.methods import METHODS
from taskmix.config import builtin_config
from taskmix.data import load_tasks
from taskmix.runs import SearchRun, prepare_job
from taskmix.strategies import Policy

from _tiny import TINY_BUILTIN  # noqa: E402


def _noise_run(shrink: float, seed: int, updates: int = 20, sigma: float = 0.05) -> np.ndarray:
    """A policy fed per-task credits that are pure noise with an honest standard error."""
    rng = np.random.default_rng(seed)
    p = Policy(4, target=0, lr=0.02, sgd_steps=100, shrink=shrink)
    for _ in range(updates):
        p.update(0, p.probs(0), rng.normal(0.1, sigma, size=4), se=np.full(4, sigma))
    return p.probs(0)


def test_variance_aware_update_does_not_move_on_noise():
    prior = np.full(4, 0.25)
    moved = [np.abs(_noise_run(0.0, s) - prior).max() for s in range(5)]
    kept = [np.abs(_noise_run(2.0, s) - prior).max() for s in range(5)]
    assert max(kept) < 0.05, kept
    assert np.mean(moved) > 3 * np.mean(kept), (moved, kept)  # without the shrink, noise moves it


def test_variance_aware_update_still_moves_on_signal():
    p = Policy(3, target=0, lr=0.02, sgd_steps=100, shrink=2.0)
    for _ in range(5):
        p.update(0, p.probs(0), np.array([0.5, 0.5, -0.5]), se=np.full(3, 0.05))
    assert p.probs(0)[2] < 0.1


def test_prior_pull_bounds_the_logits():
    free, pulled = Policy(3, 0, lr=0.02, sgd_steps=100), Policy(3, 0, lr=0.02, sgd_steps=100, prior_pull=1.0)
    for _ in range(30):
        for p in (free, pulled):
            p.update(0, p.probs(0), np.array([1.0, 0.0, 0.0]))
    assert free.probs(0)[0] > pulled.probs(0)[0] > 1 / 3
    assert np.abs(pulled.logits).max() < 3.0


def test_task_effects_signs_on_a_small_family():
    torch.set_num_threads(1)
    cfg = builtin_config(["train.steps=300", "search.meta_steps=5", "synthetic.n_target=300", "synthetic.n_helpful=1000",
                          "synthetic.n_harmful=1000", "synthetic.n_irrelevant=1000", "synthetic.n_test=200"])
    job = prepare_job(cfg, load_tasks(cfg), 0)
    run = SearchRun(job.tasks, job.target, job.reward_split, cfg, 0)
    run.run()
    eff = run.task_effects()
    assert eff["helpful"]["effect"] > 0 > eff["harmful"]["effect"]
    assert eff["helpful"]["ci_low"] < eff["helpful"]["effect"] < eff["helpful"]["ci_high"]
    assert run.schedule().provenance["task_effects"] == eff


def test_one_search_gives_both_schedules_bit_for_bit():
    from taskmix.compare import methods

    methods._SEARCHES.clear()  # other tests in this process may have run this job's search
    cfg = builtin_config(TINY_BUILTIN)
    job = prepare_job(cfg, load_tasks(cfg), 1)
    alone = SearchRun(job.tasks, job.target, job.reward_split, cfg, 1).run().schedule
    ti = METHODS.get("learned_time_invariant")(job)
    tv = METHODS.get("learned_time_variant")(job)
    assert not ti.extra["search_reused"] and tv.extra["search_reused"]
    assert np.array_equal(alone.weights, ti.schedule.weights)
    assert np.array_equal(tv.schedule.weights[-1], ti.schedule.weights[0])
    tv_cfg = cfg.model_copy(update={"search": cfg.search.model_copy(update={"policy": "time_variant"})})
    tv_alone = SearchRun(job.tasks, job.target, job.reward_split, tv_cfg, 1).run().schedule
    assert np.array_equal(tv_alone.weights, tv.schedule.weights)


def test_a_comparison_runs_one_search_for_both_schedules(tmp_path):
    from taskmix.compare import run_compare

    from taskmix.compare import methods

    methods._SEARCHES.clear()
    cfg = builtin_config(TINY_BUILTIN + ["compare.methods=[learned_time_invariant,learned_time_variant]"])
    res = run_compare(cfg, load_tasks(cfg), tmp_path / "c", seeds=1)
    rows = {r["method"]: r for r in res["results"]["rows"]}
    assert rows["learned_time_invariant"]["extra"]["search_reused"] is False
    assert rows["learned_time_variant"]["extra"]["search_reused"] is True


def test_learned_checked_keeps_the_best_candidate_on_the_reward_split():
    cfg = builtin_config(TINY_BUILTIN)
    job = prepare_job(cfg, load_tasks(cfg), 0)
    res = METHODS.get("learned_checked")(job)
    prov = res.schedule.provenance
    check = prov["check"]
    best_learned = max(check["learned_time_invariant"], check["learned_time_variant"])
    if prov["kept"].startswith("learned_"):
        assert check[prov["kept"]] == best_learned
        assert best_learned >= max(v for k, v in check.items() if not k.startswith("learned_"))
    else:
        assert check[prov["kept"]] == max(check.values()) > best_learned
    assert res.extra["reward_split"] == prov["check"][prov["kept"]]


def test_averaged_time_invariant_schedule_is_the_mean_policy_of_either_search():
    """time_invariant_weights: average -- the same mixture from a time-invariant search and from the shared
    time-variant trajectory (the mean of its rows), and the mean of the per-meta-step policies."""
    torch.set_num_threads(1)
    over = [*TINY_BUILTIN, "search.time_invariant_weights=average"]
    cfg = builtin_config(over)
    job = prepare_job(cfg, load_tasks(cfg), 0)
    ti = SearchRun(job.tasks, job.target, job.reward_split, cfg, 0)
    ti.run()
    tv_cfg = builtin_config([*over, "search.policy=time_variant"])
    tv = SearchRun(job.tasks, job.target, job.reward_split, tv_cfg, 0)
    tv.run()
    w = ti.schedule().weights
    np.testing.assert_allclose(w[0], np.mean([e["probs_after"] for e in ti.log], axis=0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(tv.schedules()["time_invariant"].weights, w, rtol=0, atol=1e-12)
    np.testing.assert_allclose(w[0], np.mean(tv.schedule().weights, axis=0), rtol=0, atol=1e-12)
    last = SearchRun(job.tasks, job.target, job.reward_split, builtin_config(TINY_BUILTIN), 0)
    last.run()
    np.testing.assert_allclose(last.schedule().weights[0], last.policy.probs(0), rtol=0, atol=1e-12)  # default: the last policy


# ------------------------------------------------------------------ the prior (search.prior)


def test_the_policy_starts_from_its_prior_and_the_uniform_prior_is_all_zeros():
    q = np.array([0.1, 0.6, 0.3])
    p = Policy(3, 0, n_rows=4, prior=q)
    for row in range(4):
        np.testing.assert_allclose(p.probs(row), q, atol=1e-12)
    assert np.array_equal(Policy(3, 0, prior=np.full(3, 1 / 3)).logits, Policy(3, 0).logits)  # zeros, as before
    for bad in ([0.5, 0.5], [0.0, 0.5, 0.5], [np.nan, 0.5, 0.5], [-0.1, 0.6, 0.5]):
        with pytest.raises(ValueError, match="prior must be 3 finite positive weights"):
            Policy(3, 0, prior=bad)


def test_prior_pull_pulls_toward_the_given_prior():
    """Task 0's gain over its prior weight is bounded by the pull; with no credit the pull returns to the prior."""
    q = np.array([0.1, 0.6, 0.3])
    free = Policy(3, 0, lr=0.02, sgd_steps=100, prior=q)
    pulled = Policy(3, 0, lr=0.02, sgd_steps=100, prior=q, prior_pull=1.0)
    for _ in range(30):
        for p in (free, pulled):
            p.update(0, p.probs(0), np.array([1.0, 0.0, 0.0]))
    assert free.probs(0)[0] > pulled.probs(0)[0] > q[0]
    assert np.abs(pulled.logits - pulled.theta0).max() < 3.0
    # with no credit at all, the pull brings a moved policy back to the prior
    back = Policy(3, 0, lr=0.02, sgd_steps=100, prior=q, prior_pull=1.0)
    back.logits[0] += np.array([2.0, -1.0, -1.0])
    for _ in range(5):
        back.update(0, back.probs(0), np.zeros(3))
    np.testing.assert_allclose(back.probs(0), q, atol=1e-3)


def test_the_prior_is_in_the_policy_state_and_a_different_one_is_refused():
    q = np.array([0.2, 0.8])
    p = Policy(2, 0, prior=q)
    p.update(0, p.probs(0), np.array([0.0, 1.0]))
    twin = Policy(2, 0, prior=q)
    twin.load_state_dict(p.state_dict())
    assert twin.state_dict() == p.state_dict()
    with pytest.raises(ValueError, match="prior"):
        Policy(2, 0).load_state_dict(p.state_dict())


def test_search_prior_by_rule_name_and_its_refusals():
    from taskmix.errors import ConfigError
    from taskmix.schedule import proportional as proportional_rule
    from taskmix.strategies.mixer import Mixer, prior_mixture

    cfg = builtin_config([*TINY_BUILTIN, "search.prior=proportional", "search.policy=time_variant",
                          "search.time_variant_init=uniform"])
    job = prepare_job(cfg, load_tasks(cfg), 0)
    want = proportional_rule(job.names, sizes=job.sizes).weights[0]
    run = SearchRun(job.tasks, job.target, job.reward_split, cfg, 0)
    run.run()
    for entry in run.log:  # every time-variant row starts from the prior
        np.testing.assert_allclose(entry["probs_before"], want, atol=1e-12)
    assert run.schedule().provenance["prior"] == "proportional"
    t2 = prior_mixture("temperature_2", ["a", "b"], "a", {"a": 100, "b": 400})
    np.testing.assert_allclose(t2, [1 / 3, 2 / 3])
    with pytest.raises(ConfigError, match=r"search.prior: 'single_task' gives \['b'\] no weight"):
        prior_mixture("single_task", ["a", "b"], "a", {"a": 1, "b": 1})
    with pytest.raises(ConfigError, match="search.prior: unknown rule 'explicit'"):
        prior_mixture("explicit", ["a", "b"], "a", {"a": 1, "b": 1})
    with pytest.raises(ConfigError, match="search.prior: sizes: no training-set size"):
        Mixer.from_config(cfg)  # a size-based prior needs the tasks' sizes


def test_text_splits_are_keyed_by_content_so_a_comparison_reuses_its_search_for_text_tasks():
    """Each comparison cell carves new split objects: a key by identity never matched for text (the time-variant
    row searched again); by content, equal text and labels share one search and any difference does not."""
    from taskmix.compare.methods import _data_key
    from taskmix.data.tasks import Split

    pairs = [("a premise", "a hypothesis"), ("another", None)]
    a, b = Split(list(pairs), np.array([0, 1])), Split([tuple(p) for p in pairs], np.array([0, 1]))
    assert a.x is not b.x and _data_key(a) == _data_key(b)
    assert _data_key(Split(list(pairs), np.array([1, 1]))) != _data_key(a)
    assert _data_key(Split([("a premise", "other"), ("another", None)], np.array([0, 1]))) != _data_key(a)
    feats = Split(np.zeros((2, 3), np.float32), np.array([0, 1]))
    assert _data_key(feats) == _data_key(Split(np.zeros((2, 3), np.float32), np.array([0, 1])))
