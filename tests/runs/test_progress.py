"""Progress (issue 23): the reporters of ``taskmix.runs.progress``, and a search's progress on the CLI and in Python.

A comparison's progress (one line per finished cell) is tested in ``tests/compare/test_compare_progress.py``.
"""

from __future__ import annotations

import io
import logging
import re
import sys

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from taskmix.cli import app
from taskmix.config import builtin_config
from taskmix.data import load_run_tasks
from taskmix.errors import ConfigError
from taskmix.runs import prepare_job, search
from taskmix.runs.progress import (
    BarProgress,
    LineProgress,
    LogProgress,
    ProgressReporter,
    auto_mode,
    format_seconds,
    make_progress,
    mode_env,
)

# the built-in benchmark, small enough that a search takes about a second (tests/_bad_inputs.py's SMALL)
SMALL = ["train.steps=40", "search.meta_steps=4", "train.batch_size=16", "synthetic.n_target=60",
         "synthetic.n_helpful=60", "synthetic.n_harmful=60", "synthetic.n_irrelevant=60", "synthetic.n_test=60"]
SEARCH_LINE = re.compile(r"^\[search\] (\d+)/(\d+) meta-step (\d+): reward split accuracy \d\.\d{4}, "
                         r"weights target=\d\.\d\d helpful=\d\.\d\d harmful=\d\.\d\d irrelevant=\d\.\d\d "
                         r"\(\d+\.\d s; (ETA|done in) [^)]+\)$")


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv("TASKMIX_PROGRESS", raising=False)


def _ov(items: list[str]) -> list[str]:
    return [a for o in items for a in ("-o", o)]


# ------------------------------------------------------------- reporters


def test_a_line_per_finished_cell_with_count_result_time_and_eta():
    clock, out = Clock(), io.StringIO()
    rep = LineProgress(out, clock=clock)
    rep.start("compare", 4, cells=[("uniform", 0), ("learned", 0), ("uniform", 1), ("learned", 1)],
              metric="test accuracy")
    assert out.getvalue() == ""  # nothing until a cell finishes
    for (method, seed), took, test in ((("uniform", 0), 1.0, 0.8123), (("learned", 0), 9.0, 0.85),
                                       (("uniform", 1), 1.0, 0.79), (("learned", 1), 9.0, 0.86)):
        rep.cell_started(method, seed)
        clock.t += took
        rep.cell_finished(method, seed, test=test, seconds=123.0)  # the wall time measured here wins
    assert out.getvalue().splitlines() == [
        "[compare] 1/4 uniform seed 0: test accuracy 0.8123 (1.0 s; ETA 3.0 s)",  # known: uniform's cost only
        "[compare] 2/4 learned seed 0: test accuracy 0.8500 (9.0 s; ETA 10 s)",  # each method at its own cost
        "[compare] 3/4 uniform seed 1: test accuracy 0.7900 (1.0 s; ETA 9.0 s)",
        "[compare] 4/4 learned seed 1: test accuracy 0.8600 (9.0 s; done in 20 s)",
    ]


def test_cells_beyond_the_plan_cost_about_the_cheapest_method():
    """A comparison's recommended cells (not in the plan) reuse a rule's row or retrain once: not a search's cost."""
    clock = Clock()
    rep = LineProgress(io.StringIO(), clock=clock)
    rep.start("compare", 3, cells=[("uniform", 0), ("learned", 0)])
    for method, took in (("uniform", 1.0), ("learned", 9.0)):
        rep.cell_started(method, 0)
        clock.t += took
        rep.cell_finished(method, 0, test=0.5)
    assert rep.eta() == pytest.approx(1.0)


def test_cells_finishing_out_of_order_without_a_start_still_get_one_line_each():
    """The Ray backend: no ``cell_started``, cells finish in any order, each row's own seconds are its cost."""
    clock, out = Clock(), io.StringIO()
    rep = LineProgress(out, clock=clock)
    cells = [("a", 0), ("b", 0), ("a", 1), ("b", 1)]
    rep.start("compare", 4, cells=cells)
    for method, seed in [("b", 1), ("a", 0), ("b", 0), ("a", 1)]:
        clock.t += 0.5  # two workers: half the work's time passes
        rep.cell_finished(method, seed, test=0.5, seconds=1.0)
    lines = out.getvalue().splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["[compare] 1/4 b seed 1", "[compare] 2/4 a seed 0",
                                                  "[compare] 3/4 b seed 0", "[compare] 4/4 a seed 1"]
    assert lines[0].endswith("(1.0 s; ETA 1.5 s)")  # 3 cells of 1 s left, at the 2 cells/s seen so far
    assert lines[-1].endswith("(1.0 s; done in 2.0 s)")


def test_a_cells_inner_meta_steps_show_on_the_description_not_as_lines():
    out = io.StringIO()
    rep = LineProgress(out)
    rep.start("compare", 2, cells=[("learned", 0), ("uniform", 0)])
    rep.cell_started("learned", 0)
    assert rep.description == "compare: learned seed 0"
    rep.meta_step(2, 5, label="meta-step 2", accuracy=0.5)
    assert rep.description == "compare: learned seed 0, meta-step 2/5"
    assert out.getvalue() == ""
    rep.cell_finished("learned", 0, test=0.75)
    assert out.getvalue().startswith("[compare] 1/2 learned seed 0: test 0.7500 (")
    assert rep.description == "compare: learned seed 0 (last finished)"


def test_a_resumed_count_starts_where_the_run_left_off_and_can_change():
    out = io.StringIO()
    rep = LineProgress(out)
    rep.start("compare", 6, done=3)
    rep.cell_started("x", 1)
    rep.cell_finished("x", 1, test=0.5)
    rep.set_total(5, done=4)  # fewer recommended cells than planned
    rep.cell_started("recommended", 0)
    rep.cell_finished("recommended", 0, test=0.5)
    assert [" ".join(ln.split()[:3]) for ln in out.getvalue().splitlines()] == [
        "[compare] 4/6 x", "[compare] 5/5 recommended"]


def test_meta_step_lines_name_the_step_accuracy_and_weights_and_cap_many_tasks():
    out = io.StringIO()
    rep = LineProgress(out)
    rep.start("search", 20, done=10)
    weights = {f"t{i}": 0.1 for i in range(10)}
    rep.meta_step(11, 20, label="round 2 meta-step 1", accuracy=0.75, weights=weights, seconds=0.2)
    line = out.getvalue().strip()
    assert line.startswith("[search] 11/20 round 2 meta-step 1: reward split accuracy 0.7500, weights t0=0.10 ")
    assert "t7=0.10 +2 more (0.2 s; ETA " in line and "t8" not in line


@pytest.mark.parametrize("s, text", [(0.04, "0.0 s"), (0.4, "0.4 s"), (12.3, "12 s"), (185, "3 min 05 s"),
                                     (3720, "1 h 02 min")])
def test_format_seconds(s, text):
    assert format_seconds(s) == text


def test_the_bar_names_the_running_method_seed_and_meta_step_with_m_of_n_and_eta():
    """The terminal bar, through the object (its rich task and its rendered columns), not a real terminal."""
    clock = Clock()
    bar = BarProgress(console=Console(file=io.StringIO(), force_terminal=False, width=120), clock=clock)
    try:
        bar.start("compare", 4, cells=[("uniform", 1), ("learned_time_invariant", 1)], metric="test accuracy")
        task = bar.progress.tasks[0]
        bar.cell_started("uniform", 1)
        assert task.description == "compare: uniform seed 1"
        clock.t += 2.0
        bar.cell_finished("uniform", 1, test=0.81)
        bar.cell_started("learned_time_invariant", 1)
        bar.meta_step(3, 10)
        assert task.description == "compare: learned_time_invariant seed 1, meta-step 3/10"
        assert (task.completed, task.total) == (1, 4)
        shown = Console(file=io.StringIO(), width=120, record=True)
        shown.print(bar.progress.make_tasks_table(bar.progress.tasks))
        text = shown.export_text()
        assert "compare: learned_time_invariant seed 1, meta-step 3/10" in text
        assert "1/4" in text and "ETA 6.0 s" in text  # 3 cells at uniform's 2 s (learned: not seen yet)
    finally:
        bar.finish()
    assert bar.progress.tasks[0].description == "compare"  # the bar left on the terminal says what ran


def test_a_search_bar_counts_meta_steps():
    bar = BarProgress(console=Console(file=io.StringIO(), force_terminal=False))
    bar.start("search", 10, done=2)
    bar.meta_step(3, 10, label="meta-step 3", accuracy=0.5)
    task = bar.progress.tasks[0]
    assert (task.completed, task.total) == (3, 10)
    assert task.description == "search: meta-step 3, reward split accuracy 0.5000"
    bar.finish()


def test_log_progress_is_silent_unless_logging_takes_info(caplog):
    rep = LogProgress()
    with caplog.at_level(logging.WARNING, logger="taskmix"):
        rep.start("compare", 1)
        rep.cell_finished("uniform", 0, test=0.5, seconds=1.0)
    assert caplog.records == []
    with caplog.at_level(logging.INFO, logger="taskmix"):
        rep.start("compare", 1)
        rep.cell_finished("uniform", 0, test=0.5, seconds=1.0)
    (rec,) = caplog.records
    assert rec.name == "taskmix.progress" and rec.getMessage().startswith("[compare] 1/1 uniform seed 0: test 0.5000")
    assert rec.taskmix_progress["method"] == "uniform" and rec.taskmix_progress["seed"] == 0


# ---------------------------------------------------------------- choice


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("env, tty, mode", [
    (None, False, "lines"), (None, True, "bar"), ("lines", True, "lines"), ("bar", False, "bar"),
    ("off", True, "off"), ("1", True, "lines"), ("0", False, "off"), ("auto", True, "bar"), (" Lines ", True, "lines"),
])
def test_auto_is_the_environment_else_bar_on_a_terminal_else_lines(monkeypatch, env, tty, mode):
    if env is not None:
        monkeypatch.setenv("TASKMIX_PROGRESS", env)
    monkeypatch.setattr(sys, "stderr", _Tty() if tty else io.StringIO())
    assert auto_mode() == mode
    want = {"lines": LineProgress, "bar": BarProgress, "off": ProgressReporter}[mode]
    assert type(make_progress(True)) is want and type(make_progress("auto")) is want


def test_a_bad_environment_value_or_argument_is_refused_naming_it(monkeypatch):
    monkeypatch.setenv("TASKMIX_PROGRESS", "loud")
    with pytest.raises(ConfigError, match="TASKMIX_PROGRESS: expected bar, lines, off or auto .*'loud'"):
        make_progress(True)
    assert type(make_progress("lines")) is LineProgress  # an explicit choice does not read it
    with pytest.raises(ConfigError, match="progress: expected one of auto, bar, lines, log, off, got 'yes'"):
        make_progress("yes")
    with pytest.raises(TypeError, match="progress: expected .* got int"):
        make_progress(3)


def test_what_progress_accepts():
    assert type(make_progress(None)) is LogProgress and type(make_progress("log")) is LogProgress
    assert type(make_progress(False)) is ProgressReporter and type(make_progress("off")) is ProgressReporter
    mine = LineProgress(io.StringIO())
    assert make_progress(mine) is mine

    class Hooks:  # only some hooks, not a ProgressReporter
        def __init__(self):
            self.seen = []

        def cell_finished(self, method, seed, test, seconds):
            self.seen.append((method, seed, test))

    hooks = Hooks()
    rep = make_progress(hooks)
    rep.start("compare", 1)
    rep.cell_started("uniform", 0)
    rep.cell_finished("uniform", 0, 0.5, 1.0)
    rep.finish()
    assert hooks.seen == [("uniform", 0, 0.5)]


def test_a_rich_progress_still_works_as_before():
    """``progress=rich.progress.Progress(...)`` (the 0.2 API): entered, one task, advanced per finished item."""
    from rich.progress import Progress

    p = Progress(console=Console(file=io.StringIO(), force_terminal=False))
    rep = make_progress(p)
    rep.start("search", 3)
    rep.meta_step(1, 3)
    rep.meta_step(2, 3)
    rep.finish()
    (task,) = p.tasks
    assert (task.completed, task.total) == (2, 3)


def test_mode_env_sets_the_variable_for_the_encoder_and_restores_it(monkeypatch):
    import os

    monkeypatch.setenv("TASKMIX_PROGRESS", "bar")
    with mode_env("off"):
        assert os.environ["TASKMIX_PROGRESS"] == "off"
    assert os.environ["TASKMIX_PROGRESS"] == "bar"
    with mode_env("auto"):
        assert os.environ["TASKMIX_PROGRESS"] == "bar"
    monkeypatch.delenv("TASKMIX_PROGRESS")
    with mode_env("lines"):
        assert os.environ["TASKMIX_PROGRESS"] == "lines"
    assert "TASKMIX_PROGRESS" not in os.environ


@pytest.mark.parametrize("env, shown", [("1", True), ("lines", True), ("bar", True), ("off", False), ("0", False)])
def test_the_encoders_lines_follow_the_same_switch(tmp_path, monkeypatch, env, shown):
    from taskmix.encoders.encoder import SentenceEncoder

    class Backend:
        identity, dim = "fake:v1", 4

        def encode(self, texts):
            return np.zeros((len(texts), 4), dtype=np.float32)

    monkeypatch.setenv("TASKMIX_PROGRESS", env)
    monkeypatch.setattr(sys, "stderr", _Tty())  # a terminal: "off" and "0" still silence it
    assert SentenceEncoder("fake", cache_dir=tmp_path, backend=Backend()).progress is shown


# ---------------------------------------------------------------- search


def test_a_non_tty_search_logs_one_line_per_meta_step(tmp_path):
    r = CliRunner().invoke(app, ["search", "builtin", "--out", str(tmp_path / "s"), *_ov(SMALL)])
    assert r.exit_code == 0, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 4, lines
    for i, line in enumerate(lines, 1):
        m = SEARCH_LINE.match(line)
        assert m, line
        assert m.groups()[:3] == (str(i), "4", str(i))
    assert lines[-1].endswith(")") and "done in" in lines[-1]
    assert "[search]" not in r.stdout  # stdout keeps the schedule's lines only


def test_a_resumed_search_counts_on_and_progress_off_is_silent(tmp_path):
    out = tmp_path / "s"
    r = CliRunner().invoke(app, ["search", "builtin", "--out", str(out), "--progress", "off", "--keep-checkpoints", "4",
                                 *_ov(SMALL)])
    assert r.exit_code == 0 and r.stderr == ""
    for i in (3, 4):  # as if killed after meta-step 2
        (out / "checkpoints" / f"ckpt-{i:06d}.ckpt").unlink()
    r = CliRunner().invoke(app, ["search", "builtin", "--out", str(out), "--resume", *_ov(SMALL)])
    assert r.exit_code == 0, r.stderr
    assert [line.split(":")[0] for line in r.stderr.splitlines()] == ["[search] 3/4 meta-step 3", "[search] 4/4 meta-step 4"]


def test_the_cli_option_is_checked_and_wins_over_the_environment(tmp_path):
    r = CliRunner().invoke(app, ["search", "builtin", "--out", str(tmp_path / "a"), "--progress", "loud", *_ov(SMALL)])
    assert r.exit_code == 2 and "--progress" in r.stderr and "expected auto, bar, lines or off" in r.stderr
    r = CliRunner().invoke(app, ["search", "builtin", "--out", str(tmp_path / "b"), *_ov(SMALL)],
                           env={"TASKMIX_PROGRESS": "nope"})
    assert r.exit_code == 2 and r.stderr.startswith("error: TASKMIX_PROGRESS: expected")
    assert not (tmp_path / "b").exists()  # refused before any work
    r = CliRunner().invoke(app, ["search", "builtin", "--out", str(tmp_path / "c"), "--progress", "lines",
                                 *_ov(SMALL)], env={"TASKMIX_PROGRESS": "off"})
    assert r.exit_code == 0 and len(r.stderr.splitlines()) == 4


@pytest.fixture(scope="module")
def job():
    cfg = builtin_config(SMALL)
    return cfg, prepare_job(cfg, load_run_tasks(cfg), seed=0)


def test_the_python_search_is_silent_by_default_and_logs_on_request(job, capsys, caplog):
    _, j = job
    search(j)
    assert capsys.readouterr().err == "" and not [r for r in caplog.records if r.name == "taskmix.progress"]

    search(j, progress="lines")
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 4 and all(SEARCH_LINE.match(line) for line in err), err

    with caplog.at_level(logging.INFO, logger="taskmix"):
        search(j)
    assert [r.taskmix_progress["i"] for r in caplog.records if r.name == "taskmix.progress"] == [1, 2, 3, 4]
    assert capsys.readouterr().err == ""  # through logging only (pytest's handler), not written by taskmix
