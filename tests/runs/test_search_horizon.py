"""search.horizon: a shorter search plans the whole run (its rows are stretched over it)."""

import numpy as np
import pytest

from taskmix.config import builtin_config
from taskmix.errors import ConfigError
from taskmix.data import load_tasks
from taskmix.runs import SearchRun, prepare_job
from taskmix.schedule.export import total_steps_of

from _tiny import SMALL_RUN  # noqa: E402


def _run(*overrides: str) -> SearchRun:
    cfg = builtin_config([*SMALL_RUN, *overrides])
    job = prepare_job(cfg, load_tasks(cfg), 0)
    return SearchRun(job.tasks, job.target, job.reward_split, cfg, 0)


def test_a_half_horizon_trains_half_the_steps_and_its_rows_span_the_whole_run():
    full, half = _run("search.horizon=1"), _run("search.horizon=0.5")
    assert half.cfg.search_steps * 2 == full.cfg.search_steps == full.cfg.train.steps
    rf, rh = full.run(), half.run()
    assert rh.steps * 2 == rf.steps
    assert [e["step"] for e in half.log] == [(m + 1) * half.spm for m in range(half.meta_steps)]
    for run in (full, half):
        for sched in run.schedules().values():
            assert sched.steps_per_meta_step == run.cfg.steps_per_meta_step
            assert total_steps_of(sched) == run.cfg.train.steps
            assert sched.provenance["horizon"] == run.cfg.search.horizon


def test_a_half_horizon_time_variant_replay_reaches_every_row():
    run = _run("search.horizon=0.5", "search.policy=time_variant")
    run.run()
    sched = run.schedules()["time_variant"]
    steps = run.cfg.train.steps
    rows = np.minimum(np.arange(steps) // sched.steps_per_meta_step, sched.n_rows - 1)
    # every row is in force for the same number of replay steps: none is cut off, the last is not stretched
    assert np.bincount(rows, minlength=sched.n_rows).tolist() == [run.cfg.steps_per_meta_step] * sched.n_rows


def test_a_tiny_horizon_still_trains_a_step_per_meta_step():
    run = _run("search.horizon=0.001")
    assert run.spm == 1


@pytest.mark.parametrize("bad", ["0", "1.5", "-0.2"])
def test_a_horizon_outside_0_1_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="search.horizon"):
        builtin_config([*SMALL_RUN, f"search.horizon={bad}"])


def test_the_paper_method_searches_as_long_as_the_run_on_a_fixed_split():
    from taskmix.compare.methods import METHODS

    cfg = builtin_config(SMALL_RUN)
    assert cfg.search.horizon == 0.5  # the library default is the half-length search ...
    res = METHODS.get("paper")(prepare_job(cfg, load_tasks(cfg), 0))
    prov = res.schedule.provenance
    # ... the paper's exact method is not: its search trains the whole run, on the fixed reward split
    assert prov["horizon"] == 1.0 and prov["search_steps"] == cfg.train.steps and prov["reward_folds"] == 1
    assert (prov["reward"], prov["baseline"], prov["lr"], prov["sgd_steps"]) == ("accuracy", "none", 0.001, 100)
