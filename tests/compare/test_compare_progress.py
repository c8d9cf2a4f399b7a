"""A comparison's progress (issue 23): one line per finished (method, seed) cell outside a terminal, the recommended
cells included; silent by default in Python, lines or log records on request; the hooks a reporter receives."""

from __future__ import annotations

import json
import logging
import re

import pytest
from typer.testing import CliRunner

from taskmix.cli import app
from taskmix.compare import run_compare
from taskmix.config import builtin_config
from taskmix.data import load_run_tasks
from taskmix.runs.progress import ProgressReporter

# the built-in benchmark, small enough that a cell takes a fraction of a second (tests/_bad_inputs.py's SMALL)
SMALL = ["train.steps=40", "search.meta_steps=4", "train.batch_size=16", "synthetic.n_target=60",
         "synthetic.n_helpful=60", "synthetic.n_harmful=60", "synthetic.n_irrelevant=60", "synthetic.n_test=60",
         "compare.confirm_seeds=0"]  # the counts below are the comparison's own cells (a confirmation adds its own)
CELL_LINE = re.compile(r"^\[compare\] (\d+)/(\d+) (\w+) seed (\d+): test accuracy (\d\.\d{4}) "
                       r"\(\d+\.\d s; (?:ETA [^)]+|done in [^)]+)\)$")


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv("TASKMIX_PROGRESS", raising=False)


def _ov(items: list[str]) -> list[str]:
    return [a for o in items for a in ("-o", o)]


def _cells(lines: list[str]) -> list[tuple[int, int, str, int, float]]:
    out = []
    for line in lines:
        m = CELL_LINE.match(line)
        assert m, f"not a progress line: {line!r}"
        out.append((int(m[1]), int(m[2]), m[3], int(m[4]), float(m[5])))
    return out


def test_a_non_tty_compare_logs_one_line_per_finished_cell(tmp_path):
    """CliRunner's stderr is not a terminal: the default (auto) writes lines, one per cell, recommended ones too."""
    out = tmp_path / "c"
    r = CliRunner().invoke(app, ["compare", "builtin", "--seeds", "2", "--methods", "uniform,learned_time_invariant",
                                 "--out", str(out), *_ov(SMALL)])
    assert r.exit_code == 0, r.stderr
    cells = _cells(r.stderr.splitlines())  # every stderr line is a cell's line: no meta-step lines inside a compare
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert len(cells) == len(rows) == 6  # 2 methods and the recommendation x 2 seeds
    assert [c[:2] for c in cells] == [(i, 6) for i in range(1, 7)]
    assert [(m, s) for _, _, m, s, _ in cells] == [("uniform", 0), ("learned_time_invariant", 0), ("uniform", 1),
                                                 ("learned_time_invariant", 1), ("recommended", 0), ("recommended", 1)]
    by_cell = {(r["method"], r["seed"]): r["test"] for r in rows}
    for _, _, m, s, test in cells:
        assert test == pytest.approx(by_cell[(m, s)], abs=5e-5)
    assert "done in" in r.stderr.splitlines()[-1]
    assert "[compare]" not in r.stdout  # the table and the outputs stay alone on stdout

    # resumed with a third seed: lines only for the cells that run now, counted on from the ones kept
    r = CliRunner().invoke(app, ["compare", "builtin", "--seeds", "3", "--methods", "uniform,learned_time_invariant",
                                 "--out", str(out), "--resume", *_ov(SMALL)])
    assert r.exit_code == 0, r.stderr
    cells = _cells(r.stderr.splitlines())
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert len(rows) == 9
    assert [(m, s) for _, _, m, s, _ in cells][:2] == [("uniform", 2), ("learned_time_invariant", 2)]
    assert [c[:2] for c in cells][:2] == [(5, 9), (6, 9)]
    assert {m for _, _, m, _, _ in cells[2:]} == {"recommended"} and cells[-1][:2] == (9, 9)
    counts = [c[0] for c in cells]
    assert counts == sorted(set(counts)), counts  # never counts back


def test_progress_off_and_demo_lines(tmp_path):
    r = CliRunner().invoke(app, ["compare", "builtin", "--seeds", "1", "--methods", "uniform", "--progress", "off",
                                 "--out", str(tmp_path / "c"), *_ov(SMALL)])
    assert r.exit_code == 0 and r.stderr == ""
    r = CliRunner().invoke(app, ["demo", "--seeds", "1", "--out", str(tmp_path / "d"), *_ov(SMALL)],
                           env={"TASKMIX_PROGRESS": "1"})  # taskmix 0.2's switch: lines
    assert r.exit_code == 0, r.stderr
    n = len(json.loads((tmp_path / "d" / "results.json").read_text())["rows"])
    assert len(_cells(r.stderr.splitlines())) == n


class Recorder(ProgressReporter):
    def __init__(self):
        self.events: list[tuple] = []

    def start(self, what, total, done=0, **info):
        self.events.append(("start", what, total, done))

    def set_total(self, total, done=None):
        self.events.append(("set_total", total, done))

    def cell_started(self, method, seed):
        self.events.append(("cell_started", method, seed))

    def cell_finished(self, method, seed, test=None, seconds=None):
        assert isinstance(test, float) and isinstance(seconds, float)
        self.events.append(("cell_finished", method, seed))

    def meta_step(self, i, n, **info):
        assert set(info) == {"label", "accuracy", "weights", "seconds"}
        self.events.append(("meta_step", i, n))

    def finish(self):
        self.events.append(("finish",))


@pytest.fixture(scope="module")
def small():
    cfg = builtin_config(SMALL + ["compare.methods=[uniform,learned_time_invariant]"])
    return cfg, load_run_tasks(cfg)


def test_the_hooks_a_reporter_receives(small, tmp_path, monkeypatch):
    import taskmix.compare.methods as methods

    monkeypatch.setattr(methods, "_SEARCHES", {})  # no search kept from an earlier test: this cell runs its own
    cfg, tasks = small
    rec = Recorder()
    run_compare(cfg, tasks, tmp_path / "c", seeds=1, progress=rec)
    assert rec.events == [
        ("start", "compare", 3, 0),
        ("cell_started", "uniform", 0), ("cell_finished", "uniform", 0),
        ("cell_started", "learned_time_invariant", 0),
        *[("meta_step", i, 4) for i in range(1, 5)],  # the cell's own search, inside the cell
        ("cell_finished", "learned_time_invariant", 0),
        ("set_total", 3, 2),
        ("cell_started", "recommended", 0), ("cell_finished", "recommended", 0),
        ("finish",),
    ]


def test_the_python_compare_is_silent_by_default_and_reports_on_request(small, tmp_path, capsys, caplog):
    cfg, tasks = small
    run_compare(cfg, tasks, tmp_path / "a", seeds=1)
    assert capsys.readouterr().err == ""
    assert not [r for r in caplog.records if r.name == "taskmix.progress"]

    run_compare(cfg, tasks, tmp_path / "b", seeds=1, progress="lines")
    assert [(m, s) for _, _, m, s, _ in _cells(capsys.readouterr().err.splitlines())] == [
        ("uniform", 0), ("learned_time_invariant", 0), ("recommended", 0)]

    with caplog.at_level(logging.INFO, logger="taskmix"):
        run_compare(cfg, tasks, tmp_path / "c", seeds=1)
    got = [r.taskmix_progress for r in caplog.records if r.name == "taskmix.progress"]
    assert [(g["method"], g["seed"]) for g in got] == [("uniform", 0), ("learned_time_invariant", 0), ("recommended", 0)]
    assert capsys.readouterr().err == ""

    run_compare(cfg, tasks, tmp_path / "d", seeds=1, progress=False)
    assert capsys.readouterr().err == ""


def test_a_bad_progress_is_refused_before_any_work(small, tmp_path):
    cfg, tasks = small
    with pytest.raises(ValueError, match="progress: expected one of"):
        run_compare(cfg, tasks, tmp_path / "c", seeds=1, progress="verbose")
    assert not (tmp_path / "c").exists()


@pytest.mark.slow
def test_a_ray_compare_logs_one_line_per_cell_as_they_finish(small, tmp_path, capsys):
    pytest.importorskip("ray")
    cfg, tasks = small
    res = run_compare(cfg, tasks, tmp_path / "c", seeds=2, backend="ray", progress="lines")
    cells = _cells([ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("[compare]")])  # Ray's own aside
    assert len(cells) == len(res["results"]["rows"]) == 6
    assert [c[:2] for c in cells] == [(i, 6) for i in range(1, 7)]
    assert sorted((m, s) for _, _, m, s, _ in cells) == sorted((r["method"], r["seed"]) for r in res["results"]["rows"])
