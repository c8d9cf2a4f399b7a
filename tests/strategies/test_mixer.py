"""The ask/tell Mixer inside a hand-written PyTorch loop: it learns helpful over harmful, and resumes bit for bit."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from taskmix.errors import ConfigError
from taskmix.strategies import Mixer
from taskmix.schedule import Schedule

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "learn_in_torch_loop.py"


def _example():
    spec = importlib.util.spec_from_file_location("learn_in_torch_loop", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_hand_written_loop_recovers_helpful_over_harmful() -> None:
    loop = _example().Loop(meta_steps=6, steps_per_meta_step=30)
    loop.run()
    w = dict(zip(loop.mixer.tasks, loop.mixer.schedule().weights[0]))
    assert w["helpful"] > w["harmful"] + 0.05, w
    assert w["helpful"] > w["irrelevant"], w


def test_kill_and_resume_inside_the_loop_is_bit_identical() -> None:
    mod = _example()
    whole = mod.Loop(meta_steps=4, steps_per_meta_step=10)
    whole.run()
    first = mod.Loop(meta_steps=4, steps_per_meta_step=10)
    for _ in range(25):  # killed mid-meta-step
        first.step()
    state = first.state_dict()
    state["mixer"] = json.loads(json.dumps(state["mixer"]))  # the mixer's state is plain JSON
    resumed = mod.Loop(meta_steps=4, steps_per_meta_step=10, seed=0)
    resumed.load_state_dict(state)
    resumed.run()
    assert resumed.mixer.schedule() == whole.mixer.schedule()
    np.testing.assert_array_equal(resumed.mixer.schedule().weights, whole.mixer.schedule().weights)


def test_example_writes_a_valid_schedule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.argv", ["x", "--out", str(tmp_path), "--meta-steps", "2"])
    _example().main()
    sched = Schedule.load(tmp_path / "schedule.json")
    assert sched.tasks == ("target", "helpful", "harmful", "irrelevant")


def test_exploration_frequencies_follow_the_papers_rule() -> None:
    from scipy.stats import chisquare

    m = Mixer(["a", "b", "c"], target="a", epsilon=0.3, gamma=0.6, meta_steps=1, steps_per_meta_step=10**6, seed=1)
    counts = np.bincount(m.next_tasks(30000), minlength=3)
    expected = 0.3 / 3 + np.array([0.3, 0.0, 0.0]) + 0.4 / 3  # uniform policy at the start
    assert chisquare(counts, expected * counts.sum()).pvalue > 1e-3


def test_scalar_reward_is_credited_through_the_realised_shares() -> None:
    m = Mixer(["a", "b"], target="a", meta_steps=3, steps_per_meta_step=1, baseline="none", normalize=False, seed=0)
    for _ in range(3):
        m.next_tasks(64)
        entry = m.end_meta_step(reward=1.0)
    assert entry["rewards"] == [1.0, 1.0] and m.done


def test_refusals() -> None:
    with pytest.raises(ConfigError, match="target: 'z' is not among"):
        Mixer(["a", "b"], target="z")
    m = Mixer(["a", "b"], target="a", meta_steps=1, steps_per_meta_step=1)
    with pytest.raises(RuntimeError, match="before any next_tasks"):
        m.end_meta_step(rewards=[0, 1])
    m.next_tasks(4)
    with pytest.raises(ValueError, match="exactly one"):
        m.end_meta_step(rewards=[0, 1], reward=1.0)
    with pytest.raises(ValueError, match="one per task"):
        m.end_meta_step(rewards=[0, 1, 2])
    with pytest.raises(ValueError, match="state is for"):
        Mixer(["a", "c"], target="a").load_state_dict(m.state_dict())
