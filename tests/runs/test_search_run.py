import json

import numpy as np
import pytest
from typer.testing import CliRunner

from taskmix.cli import app
from taskmix.compare.methods import simplex_grid
from taskmix.runs import prepare_job
from taskmix.config import builtin_config
from taskmix.runs import search
from taskmix.data import load_tasks

SMALL = [
    "train.steps=120",
    "search.meta_steps=6",
    "synthetic.n_target=300",
    "synthetic.n_helpful=600",
    "synthetic.n_harmful=600",
    "synthetic.n_irrelevant=600",
    "synthetic.n_test=300",
]


@pytest.fixture(scope="module")
def small():
    cfg = builtin_config(SMALL)
    return cfg, load_tasks(cfg)


def _search(cfg, tasks, seed):
    job = prepare_job(cfg, tasks, seed)
    return search(job.tasks, job.target, job.reward_split, cfg, seed)


def test_small_search_end_to_end(small):
    cfg, tasks = small
    res = _search(cfg, tasks, 0)
    assert res.schedule.tasks == ("target", "helpful", "harmful", "irrelevant")
    assert len(res.log) == 6 and res.steps == cfg.search_steps == 60  # search.horizon 0.5 of train.steps 120
    w = res.schedule.weights[0]
    assert w[1] > w[2]  # the helpful task outweighs the harmful one
    assert res.schedule.provenance["reward"] == "gradient_alignment"


def test_search_is_deterministic_by_seed(small):
    cfg, tasks = small
    a, b, c = _search(cfg, tasks, 1), _search(cfg, tasks, 1), _search(cfg, tasks, 2)
    np.testing.assert_array_equal(a.schedule.weights, b.schedule.weights)
    assert not np.array_equal(a.schedule.weights, c.schedule.weights)


def test_reward_split_is_carved_from_train_and_disjoint(small):
    cfg, tasks = small
    job = prepare_job(cfg, tasks, 0)
    full = tasks[0].train
    assert len(job.tasks[0].train) + len(job.reward_split) == len(full)
    rows = {tuple(r) for r in job.tasks[0].train.x.round(6)}
    assert not any(tuple(r) in rows for r in job.reward_split.x.round(6))
    assert job.tasks[0].test is tasks[0].test  # the reported split is untouched


def test_time_variant_emits_one_row_per_meta_step(small):
    cfg, tasks = small
    cfg = builtin_config(SMALL + ["search.policy=time_variant"])
    res = _search(cfg, tasks, 0)
    assert res.schedule.n_rows == 6 and res.schedule.steps_per_meta_step == 20


@pytest.mark.parametrize("reward", ["accuracy", "loss", "lookahead", "constant", "shuffled:gradient_alignment"])
def test_every_reward_runs(small, reward):
    cfg, tasks = small
    cfg = builtin_config(SMALL + [f"search.reward={reward}", "search.meta_steps=3"])
    res = _search(cfg, tasks, 0)
    assert np.isfinite(res.schedule.weights).all()
    if reward == "constant":  # no information: per-task credits are all equal
        assert all(len(set(e["rewards"])) == 1 for e in res.log)


def test_simplex_grid():
    g = simplex_grid(4, 0.25)
    assert len(g) == 35 and np.allclose(g.sum(1), 1)


def test_cli_search_train_plot(tmp_path):
    r = CliRunner()
    ov = sum((["-o", o] for o in SMALL), [])
    res = r.invoke(app, ["search", "builtin", "--out", str(tmp_path / "s"), *ov])
    assert res.exit_code == 0, res.output
    for f in ("schedule.json", "log.jsonl", "log.csv", "config.resolved.yaml", "versions.json"):
        assert (tmp_path / "s" / f).exists()
    assert json.loads((tmp_path / "s" / "versions.json").read_text())["command"] == "search"
    res = r.invoke(app, ["train", "builtin", "--schedule", str(tmp_path / "s" / "schedule.json"), "--out", str(tmp_path / "t"), *ov])
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "t" / "metrics.json").read_text())
    assert 0.5 < m["test"] <= 1.0 and m["report_split"] == "test"
    assert json.loads((tmp_path / "t" / "versions.json").read_text())["command"] == "train"
    assert "train:" in (tmp_path / "t" / "config.resolved.yaml").read_text()
    res = r.invoke(app, ["plot", str(tmp_path / "s" / "schedule.json"), "--out", str(tmp_path / "p.png")])
    assert res.exit_code == 0 and (tmp_path / "p.png").stat().st_size > 1000


def test_cli_compare_writes_contract(tmp_path):
    r = CliRunner()
    ov = sum((["-o", o] for o in SMALL), [])
    res = r.invoke(app, ["compare", "builtin", "--seeds", "2", "--out", str(tmp_path / "c"), *ov])
    assert res.exit_code == 0, res.output
    d = json.loads((tmp_path / "c" / "results.json").read_text())
    assert d["target"] == "target" and d["metric"] == "accuracy"
    methods = {row["method"] for row in d["rows"]}
    assert {"single_task", "uniform", "proportional", "temperature_2", "learned_time_invariant", "learned_time_variant"} <= methods
    for row in d["rows"]:
        assert set(row) >= {"method", "seed", "test", "seconds", "schedule"}
    assert (tmp_path / "c" / "schedule.json").exists() and (tmp_path / "c" / "schedule.png").exists()


@pytest.mark.parametrize("policy", ["time_invariant", "time_variant"])
def test_search_is_a_user_of_the_mixer(small, policy):
    """The search's policy trajectory is a Mixer's, fed the search's credits: one policy/update code path."""
    from taskmix.runs import SearchRun
    from taskmix.strategies import Mixer

    cfg, tasks = small
    cfg = cfg.model_copy(update={"search": cfg.search.model_copy(update={"policy": policy, "shrink": 1.0})})
    job = prepare_job(cfg, tasks, 3)
    run = SearchRun(job.tasks, job.target, job.reward_split, cfg, 3)
    run.run()
    assert run.policy is run.mixer.policy
    mixer = Mixer.from_config(cfg, [t.name for t in tasks], seed=3)
    for entry in run.log:
        tids = mixer.draw(cfg.search_steps_per_meta_step, cfg.train.batch_size)
        np.testing.assert_allclose(np.bincount(tids.reshape(-1), minlength=4) / tids.size, entry["realised"])
        mixer.end_meta_step(rewards=entry["rewards"], se=entry["reward_se"])
    # the search's emitted schedule is the mixer's with search.min_weight applied (the trajectory is the same)
    kept = mixer.schedule().drop_below(cfg.search.min_weight, keep=[cfg.target])
    np.testing.assert_array_equal(kept.weights, run.schedule().weights)
