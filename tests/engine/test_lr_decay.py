"""model.lr_decay: the learning rate over a run (constant, linear or cosine to 0 at the run's end)."""

import math

import numpy as np
import pytest
import torch

from taskmix.config import builtin_config
from taskmix.data import load_tasks
from taskmix.engine import train_with_schedule
from taskmix.engine.trainer import Trainer
from taskmix.runs import SearchRun, prepare_job
from taskmix.schedule import uniform

from _tiny import SMALL_RUN  # noqa: E402


@pytest.fixture(scope="module")
def small():
    cfg = builtin_config(SMALL_RUN)
    return cfg, load_tasks(cfg)


def _with(cfg, decay: str):
    return cfg.model_copy(update={"model": cfg.model.model_copy(update={"lr_decay": decay})})


def test_the_rate_of_each_step(small):
    cfg, tasks = small
    steps = 40
    for decay, half, want_last in (("none", 1.0, 1.0), ("linear", 0.5, 1 / steps),
                                   ("cosine", 0.5, 0.5 * (1 + math.cos(math.pi * (steps - 1) / steps)))):
        tr = Trainer(tasks, _with(cfg, decay), 0, total_steps=steps)
        assert tr.lr_factor(0) == 1.0
        assert tr.lr_factor(steps // 2) == pytest.approx(half)
        assert tr.lr_factor(steps - 1) == pytest.approx(want_last)
        assert tr.lr_factor(10 * steps) == pytest.approx(0.0 if decay != "none" else 1.0)  # never below 0
        factors = [tr.lr_factor(s) for s in range(steps)]
        assert all(a >= b for a, b in zip(factors, factors[1:]))  # non-increasing


def test_training_steps_at_the_decayed_rate_and_the_last_steps_barely_move(small):
    cfg, tasks = small
    job = prepare_job(cfg, tasks, 0)
    steps = 30
    moves: dict[str, float] = {}
    for decay in ("none", "linear"):
        c = _with(cfg, decay)
        seen: list[float] = []
        params: list[torch.Tensor] = []

        def on(step, trainer, seen=seen, params=params):
            seen.append(trainer.optimizer.param_groups[0]["lr"])
            if step >= steps - 1:
                params.append(torch.cat([p.detach().reshape(-1).clone() for p in trainer.model.parameters()]))

        train_with_schedule(job.tasks, job.target, uniform(job.names), c, 0, steps=steps, on_step=on)
        want = [c.model.lr * (1.0 if decay == "none" else 1 - s / steps) for s in range(steps)]
        np.testing.assert_allclose(seen, want, rtol=1e-12)
        moves[decay] = float((params[1] - params[0]).norm())
    assert moves["linear"] < 0.2 * moves["none"], moves  # the last step at 1/30 of the rate


def test_a_search_round_decays_over_its_own_steps(small):
    cfg, tasks = small
    c = _with(cfg, "linear").model_copy(update={"search": cfg.search.model_copy(update={"horizon": 0.5})})
    job = prepare_job(c, tasks, 0)
    run = SearchRun(job.tasks, job.target, job.reward_split, c, 0)
    assert run.trainer.total_steps == c.search.meta_steps * c.search_steps_per_meta_step
    run.run()
    assert run.trainer.optimizer.param_groups[0]["lr"] == pytest.approx(c.model.lr / run.trainer.total_steps)
