"""Learn a task-mixing schedule inside a hand-written PyTorch training loop, then save it.

The loop is the user's: its own model (an MLP with one shared head), optimiser and batches.  taskmix's
:class:`~taskmix.strategies.Mixer` only says which task each sample comes from and, at the end of each
meta-step, turns gradient alignment on the model's shared parameters into a policy update.

    python examples/learn_in_torch_loop.py --out DIR      # DIR/schedule.json, replayable anywhere

Data: the built-in benchmark (a target, a helpful, a harmful and an irrelevant task); the learned
schedule should put more weight on ``helpful`` than on ``harmful``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from taskmix.config import SyntheticConfig
from taskmix.data import carve_reward_split, make_tasks
from taskmix.strategies import Mixer


class Loop:
    """Everything the user's loop owns: data, model, optimiser, its batch stream -- and the mixer."""

    def __init__(self, meta_steps: int = 8, steps_per_meta_step: int = 40, batch_size: int = 64, seed: int = 0):
        tasks = make_tasks(SyntheticConfig())
        target, reward = carve_reward_split(tasks[0], 0.2, seed)  # the reward split is held out of training
        tasks[0] = target
        self.x = [torch.from_numpy(t.train.x) for t in tasks]
        self.y = [torch.from_numpy(t.train.y) for t in tasks]
        self.reward_x, self.reward_y = torch.from_numpy(reward.x), torch.from_numpy(reward.y)
        self.test_x, self.test_y = torch.from_numpy(tasks[0].test.x), torch.from_numpy(tasks[0].test.y)
        self.names = [t.name for t in tasks]
        torch.manual_seed(seed)
        self.trunk = nn.Sequential(nn.Linear(self.x[0].shape[1], 64), nn.ReLU())
        self.head = nn.Linear(64, 2)
        self.model = nn.Sequential(self.trunk, self.head)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.batch_size = batch_size
        self.data_rng = np.random.default_rng([seed, 1])
        self.mixer = Mixer(self.names, target="target", meta_steps=meta_steps, steps_per_meta_step=steps_per_meta_step,
                           seed=seed)
        self.loss = nn.CrossEntropyLoss()

    def _batch(self, task: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.from_numpy(self.data_rng.integers(0, len(self.y[task]), k))
        return self.x[task][idx], self.y[task][idx]

    def step(self) -> None:
        """One training step on the tasks the mixer drew; a policy update when a meta-step is over."""
        tids = self.mixer.next_tasks(self.batch_size)
        xs, ys = zip(*(self._batch(int(t), int(c)) for t, c in enumerate(np.bincount(tids, minlength=len(self.names))) if c))
        self.opt.zero_grad()
        self.loss(self.model(torch.cat(xs)), torch.cat(ys)).backward()
        self.opt.step()
        if self.mixer.meta_step_due:
            self.mixer.end_meta_step(
                params=list(self.model.parameters()),
                target_loss=lambda: self.loss(self.model(self.reward_x), self.reward_y),
                task_loss=self._task_loss,
            )

    def _task_loss(self, task: int) -> torch.Tensor:
        x, y = self._batch(task, 256)
        return self.loss(self.model(x), y)

    def run(self) -> None:
        """Train until the mixer has done every meta-step."""
        while not self.mixer.done:
            self.step()

    def state_dict(self) -> dict[str, Any]:
        """The loop's own state plus the mixer's: enough to resume bit for bit."""
        return {"model": self.model.state_dict(), "opt": self.opt.state_dict(), "data_rng": self.data_rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(), "mixer": self.mixer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.data_rng.bit_generator.state = state["data_rng"]
        torch.set_rng_state(state["torch_rng"])
        self.mixer.load_state_dict(state["mixer"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--meta-steps", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    loop = Loop(meta_steps=args.meta_steps, seed=args.seed)
    loop.run()
    sched = loop.mixer.schedule()
    path = sched.save(args.out / "schedule.json")
    print(json.dumps(dict(zip(sched.tasks, np.round(sched.weights[0], 3).tolist()))), "->", path)


if __name__ == "__main__":
    main()
