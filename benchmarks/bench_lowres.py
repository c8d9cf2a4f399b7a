"""The built-in benchmark with a small target (issue 9, acceptance 2): learned against single-task and the rules.

For each target size, ``taskmix compare builtin -o synthetic.n_target=N --seeds S`` with the rules and both
learned schedules (rows kept under ``--out``, so a rerun resumes), then per seed: learned − single-task for
each schedule, and the *better of two* (per seed the schedule whose retrained model scores higher on the reward
split -- never the reported split) paired against the best rule (by mean test accuracy).

Usage: python benchmarks/bench_lowres.py [--sizes 150,50] [--seeds 10] [--out DIR] [--no-write]
Variants of the search: ``--variant NAME:key=value,...`` (search settings, e.g. ``fixed:reward_folds=1``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _md import update_section  # noqa: E402

from taskmix.compare import run_compare  # noqa: E402
from taskmix.config import builtin_config  # noqa: E402
from taskmix.data import load_tasks  # noqa: E402

RULES = ("single_task", "uniform", "proportional", "temperature_2")
LEARNED = ("learned_time_invariant", "learned_time_variant")


def rows_of(out: Path) -> dict[str, dict[int, dict[str, Any]]]:
    by: dict[str, dict[int, dict[str, Any]]] = {}
    for line in (out / "rows.jsonl").read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            by.setdefault(r["method"], {})[int(r["seed"])] = r
    return by


def analyse(by: dict[str, dict[int, dict[str, Any]]]) -> dict[str, Any]:
    seeds = sorted(by["single_task"])
    test = {m: np.array([by[m][s]["test"] for s in seeds]) for m in by}
    single = test["single_task"]
    best_rule = max(RULES, key=lambda m: test[m].mean())
    rs = {m: np.array([(by[m][s].get("extra") or {}).get("reward_split", 0.0) for s in seeds]) for m in LEARNED}
    better = np.where(rs[LEARNED[1]] > rs[LEARNED[0]], test[LEARNED[1]], test[LEARNED[0]])
    d = better - test[best_rule]
    se = d.std(ddof=1) / math.sqrt(len(d))
    harm = {}
    for m in LEARNED:
        w = [np.asarray(by[m][s]["schedule"]["weights"]).mean(axis=0) for s in seeds]
        i = list(by[m][seeds[0]]["schedule"]["tasks"]).index("harmful")
        harm[m] = max(float(x[i]) for x in w)
    return {"seeds": len(seeds), "test": test, "best_rule": best_rule, "better": better, "diff": float(d.mean()),
            "se": float(se), "ok": {m: int(np.sum(test[m] >= single - 0.01)) for m in LEARNED},
            "worst": {m: float((test[m] - single).min()) for m in LEARNED}, "harm": harm}


def ms(v: np.ndarray) -> str:
    return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="150,50")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--out", default="/tmp/taskmix-lowres")
    ap.add_argument("--variant", action="append", default=[], help="NAME:search.key=value,...")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--no-run", action="store_true", help="only analyse the rows already under --out")
    args = ap.parse_args()
    variants = {"default": []}
    for spec in args.variant:
        name, _, body = spec.partition(":")
        variants[name] = [f"search.{kv}" for kv in body.split(",") if kv]
    lines = ["| n_target | search | learned TI | learned TV | single-task | best rule | seeds ≥ single − 0.01 (TI / TV) "
             "| worst learned − single (TI / TV) | largest w(harmful) (TI / TV) | better of two − best rule (paired SE) |",
             "|" + "---|" * 10]
    for n in (int(v) for v in args.sizes.split(",")):
        for name, extra in variants.items():
            methods = "[" + ",".join(RULES + LEARNED) + "]"
            cfg = builtin_config([f"synthetic.n_target={n}", f"compare.methods={methods}", *extra])
            out = Path(args.out) / f"n{n}_{name}"
            if not args.no_run:
                run_compare(cfg, load_tasks(cfg), out, seeds=args.seeds, resume=out.exists())
            a = analyse(rows_of(out))
            t = a["test"]
            lines.append(
                f"| {n} | {name} {' '.join(extra) if extra else ''} | {ms(t[LEARNED[0]])} | {ms(t[LEARNED[1]])} "
                f"| {ms(t['single_task'])} | {a['best_rule']} {ms(t[a['best_rule']])} "
                f"| {a['ok'][LEARNED[0]]}/{a['seeds']} / {a['ok'][LEARNED[1]]}/{a['seeds']} "
                f"| {a['worst'][LEARNED[0]]:+.3f} / {a['worst'][LEARNED[1]]:+.3f} "
                f"| {a['harm'][LEARNED[0]]:.2f} / {a['harm'][LEARNED[1]]:.2f} "
                f"| {a['diff']:+.3f} (SE {a['se']:.3f}, {a['diff'] / a['se'] if a['se'] > 0 else float('inf'):.1f} SE) |")
            print(lines[-1], flush=True)
    text = "\n".join(lines)
    if not args.no_write:
        update_section("builtin-lowres", (
            f"Built-in benchmark with a small target (issue 9, acceptance 2); {args.seeds} paired seeds; methods: the four "
            "rules and both learned schedules; default settings unless noted.\n\n" + text + "\n\n"
            "*better of two*: per seed, the learned schedule whose retrained model scores higher on the reward split "
            "(held out of its training; never the reported split), paired against the best rule by mean test accuracy; "
            "SE: the paired standard error over seeds."))


if __name__ == "__main__":
    main()
