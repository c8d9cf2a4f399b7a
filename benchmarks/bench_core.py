"""Core benchmarks (issue: learn a task-sampling schedule end to end on the built-in benchmark).

Sections written to BENCHMARKS.md:
  sampler   -- task draws per second on one core; sampler overhead per training step
  cost      -- search + retrain wall time over one plain training run of the same length
  learned   -- compare on the built-in benchmark with the oracle grid, paired seeds
  rewards   -- the paper's accuracy reward vs per-task rewards vs no-information controls

Usage: python benchmarks/bench_core.py [--only sampler,cost,learned,rewards] [--seeds N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from _md import mean_pm, update_section  # noqa: E402

from taskmix.compare import run_compare  # noqa: E402
from taskmix.runs import prepare_job  # noqa: E402
from taskmix.config import builtin_config  # noqa: E402
from taskmix.replay.sampler import TaskSampler  # noqa: E402
from taskmix.schedule import Schedule, uniform  # noqa: E402
from taskmix.runs import SearchRun  # noqa: E402
from taskmix.data import load_tasks  # noqa: E402
from taskmix.engine import Trainer, train_with_schedule  # noqa: E402

torch.set_num_threads(1)


def bench_sampler(repeats: int = 5) -> str:
    s = Schedule.from_weights(["a", "b", "c", "d"], [0.1, 0.2, 0.3, 0.4])
    bulk, stepwise, batch_rates = [], [], []
    for r in range(repeats):
        ts = TaskSampler(s, 64, seed=r)
        t = time.perf_counter()
        x = ts.draw_many(200_000)
        bulk.append(x.size / (time.perf_counter() - t) / 1e6)
        ts = TaskSampler(s, 64, seed=r)
        t = time.perf_counter()
        for _ in range(20_000):
            ts.next_tasks()
        stepwise.append(64 * 20_000 / (time.perf_counter() - t) / 1e6)
        ts = TaskSampler(s, 4096, seed=r)
        t = time.perf_counter()
        for _ in range(2_000):
            ts.next_tasks()
        batch_rates.append(4096 * 2_000 / (time.perf_counter() - t) / 1e6)
    # overhead against a training step of the built-in benchmark
    cfg = builtin_config()
    tasks = load_tasks(cfg)
    job = prepare_job(cfg, tasks, 0)
    sched = uniform(job.names)
    sampler = TaskSampler(sched, cfg.train.batch_size, [t.n_train for t in job.tasks], seed=0)
    tr = Trainer(job.tasks, cfg, 0)
    batches = [sampler.next_batch() for _ in range(50)]
    for b in batches:
        tr.train_step(*b)  # warm-up
    over, step = [], []
    for r in range(repeats):
        t = time.perf_counter()
        batches = [sampler.next_batch() for _ in range(1000)]
        over.append((time.perf_counter() - t) / 1000)
        t = time.perf_counter()
        for b in batches:
            tr.train_step(*b)
        step.append((time.perf_counter() - t) / 1000)
    pct = [100 * o / s_ for o, s_ in zip(over, step)]
    return "\n".join([
        f"Repeats: {repeats}; numpy PCG64, 4 tasks, one core.",
        "",
        "| measure | value (mean ± std) |",
        "|---|---|",
        f"| task draws/s, bulk `draw_many` (batch 64) | {mean_pm(bulk, '{:.1f}')} M |",
        f"| task draws/s, per step `next_tasks` (batch 64) | {mean_pm(stepwise, '{:.1f}')} M |",
        f"| task draws/s, per step `next_tasks` (batch 4096) | {mean_pm(batch_rates, '{:.1f}')} M |",
        f"| sampler `next_batch` (tasks + examples), batch 64 | {mean_pm([1e6 * o for o in over], '{:.1f}')} µs |",
        f"| one training step of the built-in benchmark (MLP, batch 64) | {mean_pm([1e6 * s_ for s_ in step], '{:.0f}')} µs |",
        f"| sampler overhead per training step | {mean_pm(pct, '{:.2f}')} % |",
    ])


def bench_cost(repeats: int = 5) -> str:
    cfg = builtin_config()
    tasks = load_tasks(cfg)
    rows = []
    for seed in range(repeats):
        job = prepare_job(cfg, tasks, seed)
        plain = train_with_schedule(job.tasks, job.target, uniform(job.names), cfg, seed).seconds
        t = time.perf_counter()
        run = SearchRun(job.tasks, job.target, job.reward_split, cfg, seed)
        res = run.run()
        retrain = train_with_schedule(job.tasks, job.target, res.schedule, cfg, seed).seconds
        total = time.perf_counter() - t
        rows.append((plain, total - retrain, retrain, total / plain))
    ratios = [r[3] for r in rows]
    lines = [
        f"Built-in benchmark, {cfg.train.steps} steps × batch {cfg.train.batch_size}, reward `{cfg.search.reward}` "
        f"({cfg.search.meta_steps} meta-steps, {cfg.search.probe_batches} probe batches), {repeats} repeats (seeds).",
        "",
        "| seed | plain run (s) | search (s) | retrain (s) | (search + retrain) / plain |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {i} | {p:.2f} | {s:.2f} | {r:.2f} | {q:.2f} |" for i, (p, s, r, q) in enumerate(rows)]
    lines += ["", f"**Median ratio {statistics.median(ratios):.2f}** (mean ± std {mean_pm(ratios, '{:.2f}')}); target ≤ 2.5."]
    return "\n".join(lines)


def bench_learned(seeds: int) -> str:
    cfg = builtin_config()
    tasks = load_tasks(cfg)
    gaps: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as d:
        res = run_compare(cfg, tasks, d, seeds=seeds, oracle=True)
        for r in res["results"]["rows"]:
            if r["method"].startswith("learned") and r["schedule"]:
                sched = Schedule.load(os.path.join(d, r["schedule"]))
                w = sched.mean_weights(cfg.train.steps)
                gaps.setdefault(r["method"], []).append(w[sched.index("helpful")] - w[sched.index("harmful")])
    rows = res["results"]["rows"]
    by = {}
    for r in rows:
        by.setdefault(r["method"], {})[r["seed"]] = r["test"]
    lines = [res["table"], ""]
    learned = by["learned_time_invariant"]
    for base in ("uniform", "proportional", "oracle"):
        d = np.array([learned[s] - by[base][s] for s in learned])
        se = d.std(ddof=1) / np.sqrt(len(d))
        lines.append(f"- learned (time-invariant) − {base}: {d.mean():+.4f} (paired SE {se:.4f}, {d.mean() / se:+.1f} SE)")
    tv = by["learned_time_variant"]
    d = np.array([tv[s] - by["oracle"][s] for s in tv])
    lines.append(f"- learned (time-variant) − oracle: {d.mean():+.4f} (paired SE {d.std(ddof=1) / np.sqrt(len(d)):.4f})")
    for m, g in gaps.items():
        g = np.asarray(g)
        lines.append(f"- {m}: helpful outweighs harmful in {int((g > 0).sum())}/{len(g)} seeds "
                     f"(weight gap min {g.min():+.3f}, mean {g.mean():+.3f})")
    oracle_pts = next(r for r in rows if r["method"] == "oracle")["extra"].get("grid_points")
    lines.append(f"- oracle: grid step {cfg.compare.oracle_step} over the simplex = {oracle_pts} mixtures, each trained "
                 "and scored on the reward split (its cost is in the table).")
    return "\n".join(lines)


def bench_rewards(seeds: int) -> str:
    rewards = {
        "accuracy": ["search.reward=accuracy"],
        "accuracy, no baseline (the paper)": ["search.reward=accuracy", "search.baseline=none"],
        "loss": ["search.reward=loss"],
        "gradient_alignment": ["search.reward=gradient_alignment"],
        "lookahead": ["search.reward=lookahead"],
        "constant": ["search.reward=constant"],
        "constant, no baseline": ["search.reward=constant", "search.baseline=none"],
        "shuffled:gradient_alignment": ["search.reward=shuffled:gradient_alignment"],
    }
    base = builtin_config()
    tasks = load_tasks(base)
    names = [t.name for t in tasks]
    lines = [
        f"Built-in benchmark, time-invariant policy, {seeds} seeds, ε={base.search.epsilon}, γ={base.search.gamma}, "
        f"lr={base.search.lr}, {base.search.sgd_steps} SGD steps per update. Final policy weights (mean ± std over seeds) "
        "and the retrained model's test accuracy.",
        "",
        "| reward | " + " | ".join(f"w({n})" for n in names) + " | helpful > harmful (seeds) | test accuracy |",
        "|---|" + "---|" * (len(names) + 2),
    ]
    summary = {}
    for rw, ov in rewards.items():
        cfg = builtin_config(ov)
        W, acc = [], []
        for seed in range(seeds):
            job = prepare_job(cfg, tasks, seed)
            res = SearchRun(job.tasks, job.target, job.reward_split, cfg, seed).run()
            W.append(res.schedule.weights[0])
            acc.append(train_with_schedule(job.tasks, job.target, res.schedule, cfg, seed).test)
        W = np.array(W)
        summary[rw] = (W, np.array(acc))
        wins = int(np.sum(W[:, 1] > W[:, 2]))
        lines.append(f"| {rw} | " + " | ".join(mean_pm(W[:, i]) for i in range(len(names))) + f" | {wins}/{seeds} | {mean_pm(acc, '{:.4f}')} |")
    from scipy.stats import ttest_ind

    lines += ["", "Does each reward learn more than its exploration prior? Welch t-test of the helpful − harmful weight gap against the matching no-information control:", ""]
    for rw, ctrl in (("accuracy", "constant"), ("accuracy, no baseline (the paper)", "constant, no baseline"),
                     ("loss", "constant"), ("gradient_alignment", "shuffled:gradient_alignment"),
                     ("gradient_alignment", "constant"), ("lookahead", "constant")):
        g = summary[rw][0][:, 1] - summary[rw][0][:, 2]
        c = summary[ctrl][0][:, 1] - summary[ctrl][0][:, 2]
        p = ttest_ind(g, c, equal_var=False).pvalue
        verdict = "learns more than the control" if (p < 0.05 and g.mean() > c.mean()) else "no better than the control"
        lines.append(f"- `{rw}` gap {g.mean():+.3f} vs `{ctrl}` {c.mean():+.3f} (p = {p:.3g}): **{verdict}**")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="sampler,cost,learned,rewards")
    ap.add_argument("--seeds", type=int, default=10)
    a = ap.parse_args()
    only = set(a.only.split(","))
    if "sampler" in only:
        update_section("core-sampler", bench_sampler())
    if "cost" in only:
        update_section("core-cost", bench_cost())
    if "learned" in only:
        update_section("core-learned", bench_learned(a.seeds))
    if "rewards" in only:
        update_section("core-rewards", bench_rewards(a.seeds))


if __name__ == "__main__":
    main()
