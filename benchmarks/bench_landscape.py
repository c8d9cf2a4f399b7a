"""The mixture landscape of a two-task text config: static mixtures on a grid, scored on the reward split
(what a search can see) and on the reported split (what it is judged on), over paired seeds.

Shows whether the landscape is flat at this model size and whether the reward split ranks mixtures as
the reported split does -- the evidence for rows where a learned schedule does not beat a rule.

Usage: python benchmarks/bench_landscape.py --configs mrpc_mnli,mrpc_qnli [--seeds 5] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, os.path.dirname(__file__))
from _md import ROOT, update_section  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from taskmix.runs import prepare_job  # noqa: E402
from taskmix.config import load_config  # noqa: E402
from taskmix.sampler import TaskSampler  # noqa: E402
from taskmix.schedule import Schedule  # noqa: E402
from taskmix.data import load_run_tasks  # noqa: E402
from taskmix.engine import Trainer  # noqa: E402

from bench_text import CONFIGS  # noqa: E402

SHARES = [0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", default="mrpc_mnli,mrpc_qnli")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--cache-dir", default=os.environ.get("TASKMIX_CACHE"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    out = [
        f"Target share of a static two-task mixture (the rest is the auxiliary), {a.seeds} paired seeds, 1,000 steps × 64, "
        "frozen MiniLM features. *reward split*: the target's carved 10% of train (all a search sees); *reported*: "
        "GLUE validation. Mean ± std over seeds.",
        "",
    ]
    for key in a.configs.split(","):
        path, label = CONFIGS[key]
        cfg = load_config(ROOT / path, [f"encoder.cache_dir={a.cache_dir}"] if a.cache_dir else [])
        tasks = load_run_tasks(cfg)
        names = [t.name for t in tasks]
        ti = names.index(cfg.target)
        rew = np.zeros((len(SHARES), a.seeds))
        rep = np.zeros((len(SHARES), a.seeds))
        for seed in range(a.seeds):
            job = prepare_job(cfg, tasks, seed)
            for k, share in enumerate(SHARES):
                w = np.full(len(names), (1 - share) / (len(names) - 1))
                w[ti] = share
                tr = Trainer(job.tasks, cfg, seed)
                s = TaskSampler(Schedule.from_weights(names, w), cfg.train.batch_size, [t.n_train for t in job.tasks], seed=seed)
                for _ in range(cfg.train.steps):
                    tr.train_step(*s.next_batch())
                rew[k, seed] = tr.metric(job.reward_split, job.target)
                rep[k, seed] = tr.metric(job.tasks[job.target].report_split, job.target)
        rho = spearmanr(rew.mean(1), rep.mean(1)).statistic
        out += [f"**{label}** (`{path}`)", "", "| target share | reward split | reported |", "|---|---|---|"]
        out += [f"| {s:.1f} | {rew[k].mean():.3f} ± {rew[k].std(ddof=1):.3f} | {rep[k].mean():.3f} ± {rep[k].std(ddof=1):.3f} |"
                for k, s in enumerate(SHARES)]
        best_rew, best_rep = SHARES[int(rew.mean(1).argmax())], SHARES[int(rep.mean(1).argmax())]
        out += ["", f"Best share on the reward split: {best_rew}; on the reported split: {best_rep}; Spearman ρ between the "
                f"two mean curves: {rho:.2f}; range of the reported means: {rep.mean(1).max() - rep.mean(1).min():.3f} "
                f"(seed std ≈ {rep.std(axis=1, ddof=1).mean():.3f}).", ""]
        print("\n".join(out), flush=True)
    update_section("text-landscape", "\n".join(out))


if __name__ == "__main__":
    main()
