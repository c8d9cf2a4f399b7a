"""taskmix.Mixer driven from a hand-written PyTorch loop on the built-in generator."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from taskmix.config import builtin_config
from taskmix.data import load_run_tasks
from taskmix.runs.mixer import Mixer
from taskmix.schedule import Schedule

SMALL = ["synthetic.n_target=400", "synthetic.n_helpful=1500", "synthetic.n_harmful=1500",
         "synthetic.n_irrelevant=1500", "synthetic.n_test=400"]


class UserLoop:
    """A user's own model, optimiser and data handling: only the task choice comes from the Mixer."""

    def __init__(self, seed: int = 0):
        tasks = load_run_tasks(builtin_config(SMALL))
        self.names = [t.name for t in tasks]
        self.data = {t.name: (torch.as_tensor(t.train.x, dtype=torch.float32), torch.as_tensor(t.train.y)) for t in tasks}
        tx, ty = self.data["target"]
        self.data["target"] = (tx[:300], ty[:300])
        self.held_out = (tx[300:], ty[300:])  # the target's reward split, never trained on
        torch.manual_seed(seed)
        self.model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
        self.opt = torch.optim.Adam(self.model.parameters(), lr=3e-3)
        self.rng = np.random.default_rng(seed)

    def batch(self, task: str, n: int):
        x, y = self.data[task]
        idx = torch.as_tensor(self.rng.integers(0, len(y), size=n))
        return x[idx], y[idx]

    def train_step(self, tasks: np.ndarray) -> None:
        xs, ys = zip(*(self.batch(self.names[i], int(k)) for i, k in enumerate(np.bincount(tasks, minlength=4)) if k))
        loss = torch.nn.functional.cross_entropy(self.model(torch.cat(xs)), torch.cat(ys))
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()

    def rewards(self) -> list[float]:
        f = torch.nn.functional.cross_entropy
        target_loss = f(self.model(self.held_out[0]), self.held_out[1])
        task_losses = [f(self.model(x), y) for x, y in (self.batch(t, 256) for t in self.names)]
        return Mixer.alignment_rewards(target_loss, task_losses, list(self.model.parameters()))

    def meta_step(self, mixer: Mixer) -> None:
        for _ in range(mixer.steps_per_meta_step):
            self.train_step(mixer.next_tasks(32))
        mixer.end_meta_step(self.rewards())


def _mixer(**kw) -> Mixer:
    return Mixer(["target", "helpful", "harmful", "irrelevant"], "target", meta_steps=8, steps_per_meta_step=25, **kw)


def test_mixer_in_a_hand_written_loop_learns_helpful_over_harmful(tmp_path):
    loop, mixer = UserLoop(), _mixer()
    while not mixer.done:
        loop.meta_step(mixer)
    sched = mixer.schedule()
    w = dict(zip(sched.tasks, sched.mean_weights()))
    assert w["helpful"] > w["target"] > w["harmful"] and w["helpful"] > 0.4 and w["harmful"] < 0.15, w
    sched.save(tmp_path / "schedule.json")
    assert Schedule.load(tmp_path / "schedule.json") == sched and sched.provenance["source"] == "taskmix.Mixer"
    assert len(mixer.log) == 8 and mixer.log[-1]["step"] == 200


def test_state_dict_resumes_bit_identically_inside_the_loop():
    loop, mixer = UserLoop(), _mixer(policy="time_variant")
    while not mixer.done:
        loop.meta_step(mixer)
    reference = mixer.schedule()

    # "killed" after meta-step 3: the user saved their model, optimiser and RNGs, and the Mixer's state (as JSON)
    loop, mixer = UserLoop(), _mixer(policy="time_variant")
    for _ in range(3):
        loop.meta_step(mixer)
    saved = json.dumps({"mixer": mixer.state_dict()})
    user = {"model": {k: v.clone() for k, v in loop.model.state_dict().items()},
            "opt": __import__("copy").deepcopy(loop.opt.state_dict()), "rng": loop.rng.bit_generator.state}

    loop2, mixer2 = UserLoop(seed=1), _mixer(policy="time_variant")  # fresh objects, another init
    loop2.model.load_state_dict(user["model"])
    loop2.opt.load_state_dict(user["opt"])
    loop2.rng.bit_generator.state = user["rng"]
    mixer2.load_state_dict(json.loads(saved)["mixer"])
    while not mixer2.done:
        loop2.meta_step(mixer2)
    resumed = mixer2.schedule()
    assert np.array_equal(resumed.weights, reference.weights)  # bit for bit
    assert resumed.n_rows == 8


def test_scalar_rewards_mappings_and_bad_input():
    m = Mixer(["a", "b"], "a", meta_steps=2, steps_per_meta_step=1, seed=3)
    with pytest.raises(ValueError, match="call next_tasks"):
        m.end_meta_step(1.0)
    t = m.next_tasks(100)
    assert t.shape == (100,) and set(np.unique(t)) <= {0, 1}
    entry = m.end_meta_step(0.7)  # the paper's scalar reward
    assert entry["realised"] == pytest.approx(np.bincount(t, minlength=2) / 100)
    m.next_task_names(5)
    with pytest.raises(ValueError, match=r"missing tasks \['b'\]"):
        m.end_meta_step({"a": 1.0})
    with pytest.raises(ValueError, match="expected one number or 2"):
        m.end_meta_step([1.0, 2.0, 3.0])
    m.end_meta_step({"a": 0.1, "b": 0.9})
    assert m.done
    with pytest.raises(ValueError, match="the search is over"):
        m.end_meta_step(1.0)
    with pytest.raises(ValueError, match="target 'z' is not among the tasks"):
        Mixer(["a"], "z")
    with pytest.raises(ValueError, match="tasks is"):
        Mixer(["a", "c"], "a", meta_steps=2).load_state_dict(m.state_dict())


def test_example_learn_in_torch_loop_writes_a_valid_schedule(tmp_path, monkeypatch, capsys):
    import runpy
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "examples" / "learn_in_torch_loop.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--out", str(tmp_path), "--meta-steps", "2", "--steps", "5"])
    runpy.run_path(str(script), run_name="__main__")
    sched = Schedule.load(tmp_path / "schedule.json")
    assert sched.tasks == ("target", "helpful", "harmful", "irrelevant") and sched.provenance["meta_steps_done"] == 2
    assert "target test accuracy" in capsys.readouterr().out
