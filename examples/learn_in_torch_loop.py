"""Learn a task schedule inside your own PyTorch training loop with taskmix.Mixer.

    python examples/learn_in_torch_loop.py --out DIR [--meta-steps 10] [--steps 50] [--seed 0]

Your model, optimiser and data handling; taskmix only chooses the task of each
example (``mixer.next_tasks``) and updates its policy at the end of each
meta-step from the gradient alignment of each task with the target
(``Mixer.alignment_rewards``, the default reward of ``taskmix search``).  The
tasks come from the built-in generator (target, helpful, harmful, irrelevant);
the result is ``DIR/schedule.json`` (replay it with ``taskmix train`` or
``taskmix.torch_data.ScheduleBatchSampler``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import taskmix


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--meta-steps", type=int, default=10)
    ap.add_argument("--steps", type=int, default=50, help="training steps per meta-step")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    tasks = taskmix.load_run_tasks(taskmix.builtin_config())
    names = [t.name for t in tasks]
    data = {t.name: (torch.as_tensor(t.train.x, dtype=torch.float32), torch.as_tensor(t.train.y)) for t in tasks}
    x, y = data["target"]
    cut = int(0.9 * len(y))  # hold 10% of the target's training data out: the reward split
    data["target"], reward_split = (x[:cut], y[:cut]), (x[cut:], y[cut:])

    def batch(task: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        bx, by = data[task]
        idx = torch.as_tensor(rng.integers(0, len(by), size=n))
        return bx[idx], by[idx]

    # --- your model and optimiser
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    mixer = taskmix.Mixer(names, target="target", meta_steps=args.meta_steps, steps_per_meta_step=args.steps,
                          seed=args.seed)
    while not mixer.done:
        for _ in range(args.steps):
            counts = np.bincount(mixer.next_tasks(args.batch_size), minlength=len(names))
            xs, ys = zip(*(batch(names[i], int(k)) for i, k in enumerate(counts) if k))
            loss = F.cross_entropy(model(torch.cat(xs)), torch.cat(ys))
            opt.zero_grad()
            loss.backward()
            opt.step()
        target_loss = F.cross_entropy(model(reward_split[0]), reward_split[1])
        task_losses = [F.cross_entropy(model(bx), by) for bx, by in (batch(t, 256) for t in names)]
        rewards = taskmix.Mixer.alignment_rewards(target_loss, task_losses, list(model.parameters()))
        entry = mixer.end_meta_step(rewards)
        print(f"meta-step {entry['meta_step'] + 1}: weights "
              + ", ".join(f"{t}={p:.3f}" for t, p in zip(names, entry["probs_after"]))
              + f"  (rewards {', '.join(f'{r:+.2f}' for r in rewards)})")

    path = mixer.schedule().save(args.out / "schedule.json")
    with torch.no_grad():
        test = tasks[names.index("target")].test
        tx, ty = torch.as_tensor(test.x, dtype=torch.float32), torch.as_tensor(test.y)
        acc = float((model(tx).argmax(1) == ty).float().mean())
    print(f"schedule: {path}; this model's target test accuracy: {acc:.4f}")


if __name__ == "__main__":
    main()
