"""MLflow tracking (a local file store): every compare cell and a search, no duplicated run or point on resume."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _tiny import TINY_BUILTIN  # noqa: E402

from taskmix.config import builtin_config  # noqa: E402
from taskmix.data import load_run_tasks  # noqa: E402

mlflow = pytest.importorskip("mlflow")


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps the file store in maintenance mode
    return (tmp_path / "mlruns").as_uri()


def _runs(uri: str, experiment: str = "t"):
    from mlflow.tracking import MlflowClient

    c = MlflowClient(tracking_uri=uri)
    exp = c.get_experiment_by_name(experiment)
    return c, list(c.search_runs([exp.experiment_id]))


def test_compare_logs_one_run_per_cell_and_a_resume_adds_nothing(tmp_path, store):
    from taskmix.compare.runner import run_compare

    ov = [*TINY_BUILTIN, "compare.methods=[single_task,uniform,learned_time_invariant]", "compare.recommend=false",
          f"logging.mlflow.tracking_uri={store}", "logging.mlflow.experiment=t"]
    cfg = builtin_config(ov)
    tasks = load_run_tasks(cfg)
    run_compare(cfg, tasks, tmp_path / "c", seeds=2)
    c, runs = _runs(store)
    names = sorted(r.info.run_name for r in runs)
    assert names == sorted(f"{m}-seed{s}" for m in ("single_task", "uniform", "learned_time_invariant") for s in (0, 1))
    by = {r.info.run_name: r for r in runs}
    res_rows = {f"{row['method']}-seed{row['seed']}": row for row in __import__("json").loads(
        (tmp_path / "c" / "results.json").read_text())["rows"]}
    for name, r in by.items():  # baselines included: the final metric of every method
        assert r.data.metrics["final.test_accuracy"] == pytest.approx(res_rows[name]["test"])
        assert r.data.params["method"] == res_rows[name]["method"] and r.info.status == "FINISHED"
    learned = by["learned_time_invariant-seed0"]
    history = c.get_metric_history(learned.info.run_id, "reward_split_accuracy")
    assert len(history) == 3 and len({h.step for h in history}) == 3  # one point per meta-step

    # resume (every cell done) and a changed tracking-only setting: no new run, no new point
    run_compare(builtin_config(ov), tasks, tmp_path / "c", seeds=2, resume=True)
    c, again = _runs(store)
    assert sorted(r.info.run_id for r in again) == sorted(r.info.run_id for r in runs)
    assert len(c.get_metric_history(learned.info.run_id, "reward_split_accuracy")) == 3


def test_search_logs_one_run_and_resume_does_not_duplicate(tmp_path, store):
    from taskmix.runs.search_dir import run_search_dir

    cfg = builtin_config([*TINY_BUILTIN, f"logging.mlflow.tracking_uri={store}", "logging.mlflow.experiment=t"])
    tasks = load_run_tasks(cfg)
    out = tmp_path / "s"
    run_search_dir(cfg, tasks, out)
    (out / "schedule.json").unlink()
    sorted((out / "checkpoints").glob("ckpt-*.ckpt"))[-1].unlink()
    run_search_dir(cfg, tasks, out, resume=True)
    c, runs = _runs(store)
    assert len(runs) == 1 and runs[0].data.params["policy"] == "time_invariant"
    hist = c.get_metric_history(runs[0].info.run_id, "weight.helpful")
    assert [h.step for h in hist] == [10, 20, 30]  # meta-step ends of a search of horizon 0.5
    assert sum(runs[0].data.metrics[f"final.weight.{t}"] for t in cfg.task_names()) == pytest.approx(1.0)
