"""``taskmix compare --backend ray``: the same rows as the sequential backend, the same one-line errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

ray = pytest.importorskip("ray")

import taskmix.compare.runner as compare_mod  # noqa: E402
from _tiny import TINY_BUILTIN  # noqa: E402
from taskmix.cli import app  # noqa: E402
from taskmix.config import builtin_config  # noqa: E402
from taskmix.errors import ConfigError  # noqa: E402
from taskmix.compare.ray_backend import run_cells_ray  # noqa: E402
from taskmix.data import load_tasks  # noqa: E402

TINY = TINY_BUILTIN


def _ov(items: list[str]) -> list[str]:
    return [a for o in items for a in ("-o", o)]


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray instance for the module (run_cells_ray joins it and leaves it running)."""
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    if started:
        ray.shutdown()


def _rows(out: Path) -> dict[tuple[str, int], dict]:
    res = json.loads((out / "results.json").read_text())
    return {(r["method"], r["seed"]): r for r in res["rows"]}


def _no_sequential(*args, **kwargs):
    raise AssertionError("--backend ray ran the cells sequentially")


def test_ray_rows_match_the_sequential_rows(tmp_path, ray_session, monkeypatch):
    runner = CliRunner()
    for backend in ("sequential", "ray"):
        if backend == "ray":
            monkeypatch.setattr(compare_mod, "run_cells", _no_sequential)
        r = runner.invoke(app, ["compare", "builtin", "--seeds", "2", "--backend", backend,
                                "--out", str(tmp_path / backend), *_ov(TINY)])
        assert r.exit_code == 0, r.output
    seq, par = _rows(tmp_path / "sequential"), _rows(tmp_path / "ray")
    assert set(seq) == set(par) and len(seq) == 16  # 7 default methods (feature tasks) and the recommendation x 2 seeds
    assert {s for _, s in seq} == {0, 1}
    for cell, a in seq.items():
        b = par[cell]
        assert b["test"] == pytest.approx(a["test"], rel=1e-6, abs=1e-9), cell
        assert (b["train_steps"], b["evaluations"]) == (a["train_steps"], a["evaluations"]), cell
        if a["schedule"] is not None:
            wa = json.loads((tmp_path / "sequential" / a["schedule"]).read_text())["weights"]
            wb = json.loads((tmp_path / "ray" / b["schedule"]).read_text())["weights"]
            np.testing.assert_allclose(wb, wa, rtol=1e-6, atol=1e-9, err_msg=str(cell))
    # the seeds differ: a test that compares a backend with itself would pass on identical rows too
    assert seq[("learned_time_invariant", 0)]["test"] != seq[("learned_time_invariant", 1)]["test"]


def test_a_worker_error_is_the_same_one_line_error(tmp_path, ray_session, monkeypatch):
    """A training error raised inside a Ray worker reaches the CLI as on the sequential backend (exit 2)."""
    diverge = TINY + ["model.optimizer=sgd", "model.lr=1e30"]
    runner = CliRunner()
    results = {}
    for backend in ("sequential", "ray"):
        if backend == "ray":
            monkeypatch.setattr(compare_mod, "run_cells", _no_sequential)
        r = runner.invoke(app, ["compare", "builtin", "--seeds", "1", "--methods", "uniform", "--backend", backend,
                                "--out", str(tmp_path / backend), *_ov(diverge)])
        results[backend] = (r.exit_code, r.output.strip().splitlines())
    code, lines = results["sequential"]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: method uniform seed 0: training step "), lines
    assert "(non-finite) on task(s)" in lines[0]
    assert results["ray"] == results["sequential"]


def test_every_row_reaches_on_row_and_a_running_session_is_left_running(ray_session):
    cfg = builtin_config(TINY)
    tasks = load_tasks(cfg)
    cells = [("uniform", 0), ("single_task", 0), ("uniform", 1)]
    rows = []
    run_cells_ray(cfg, tasks, cells, rows.append)
    assert sorted((r["method"], r["seed"]) for r in rows) == sorted(cells)
    assert ray.is_initialized()  # a session it did not start is left running
    run_cells_ray(cfg, tasks, [], rows.append)  # nothing to do: no Ray call at all
    assert len(rows) == 3


def test_missing_ray_is_a_one_line_config_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ConfigError, match=r"^--backend ray: Ray is not installed; install it with pip install"):
        run_cells_ray(builtin_config(TINY), [], [("uniform", 0)], lambda row: None)


@pytest.mark.slow
def test_starts_and_stops_its_own_local_instance(tmp_path):
    """Without a running Ray, the backend starts a local instance and shuts it down afterwards (~10 s)."""
    if ray.is_initialized():
        ray.shutdown()
    cfg = builtin_config(TINY)
    rows = []
    run_cells_ray(cfg, load_tasks(cfg), [("uniform", 0), ("uniform", 1)], rows.append)
    assert sorted(r["seed"] for r in rows) == [0, 1]
    assert not ray.is_initialized()
