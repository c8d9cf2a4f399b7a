"""Family benchmark: every method on a distribution of generated task families (issue 9).

For each family (:func:`taskmix.data.families.make_family`) and paired seed, every method runs on the
same job (the target's reward split carved out of its train data) and is scored on the target's test
split.  The **test-oracle** of a family is the best static mixture among a fixed candidate set (the
rules, target + each auxiliary 50/50, and random Dirichlet mixtures), each trained on every seed and
scored on the *test* split, averaged over seeds.  It is computed after, and apart from, the methods:
no method receives it or any test score (``tests/test_families.py`` checks that every method's
schedule is unchanged when the test labels are scrambled).

Per method: regret to the test-oracle; win / tie / loss against the family's best rule and against
single-task (paired over seeds, t interval); cells below single-task by more than 2 points; cells with
more weight on a harmful auxiliary than on the most helpful one; across-seed std of the weights; cost
relative to one plain run.

Usage:
  python benchmarks/bench_families.py --quick                       # 4 families x 2 seeds
  python benchmarks/bench_families.py --families 60 --seeds 3 --out /tmp/fam --write
  python benchmarks/bench_families.py --summarize /tmp/fam/rows.jsonl --write
Variants of the learned search: ``--variant NAME:key=value,key=value`` (search settings).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))

from taskmix.compare.methods import METHODS, learned_method  # noqa: E402
from taskmix.data.families import Family, make_family  # noqa: E402
from taskmix.runs import prepare_job, replay  # noqa: E402
from taskmix.runs.job import Job  # noqa: E402
from taskmix.schedule import Schedule  # noqa: E402

RULES = ("single_task", "uniform", "proportional", "temperature_2")
ONLINE = ("exp3", "thompson", "gradient_alignment")
CONTROLS = ("paper", "constant_control")
LEARNED = ("learned_time_invariant", "learned_time_variant")


def mean_weights(sched: Schedule | None) -> list[float] | None:
    if sched is None:
        return None
    return np.asarray(sched.weights, dtype=np.float64).mean(axis=0).tolist()


def parse_variant(spec: str) -> tuple[str, dict[str, Any]]:
    import yaml

    name, _, body = spec.partition(":")
    settings = {}
    for kv in filter(None, body.split(",")):
        k, _, v = kv.partition("=")
        settings[k.strip()] = yaml.safe_load(v)
    return name, settings


def run_methods(job: Job, variants: dict[str, dict[str, Any]], methods: Sequence[str]) -> list[dict[str, Any]]:
    """Every method on one job.  Nothing here sees a test score except through ``res.test`` (reported, not used)."""
    rows = []
    for m in methods:
        res = METHODS.get(m)(job)
        rows.append(_row(m, res))
    for name, settings in variants.items():
        for policy in ("time_invariant", "time_variant"):
            res = learned_method(policy, **settings)(job)
            rows.append(_row(f"{name}/{policy}", res))
    return rows


def _row(method: str, res: Any) -> dict[str, Any]:
    extra = res.extra or {}
    w = extra.get("average_weights") if extra.get("online") else mean_weights(res.schedule)
    prov = res.schedule.provenance if res.schedule is not None else {}
    return {"method": method, "test": res.test, "reward_split": extra.get("reward_split"), "weights": w,
            "seconds": res.seconds, "search_reused": extra.get("search_reused", False),
            "search_seconds": extra.get("search_seconds"), "task_effects": prov.get("task_effects"),
            "kept": prov.get("kept")}


def candidates(fam: Family, n_random: int) -> list[tuple[str, np.ndarray]]:
    """The test-oracle's static mixtures (the rules come from the methods' rows)."""
    n = len(fam.tasks)
    out = []
    for i in range(1, n):
        w = np.zeros(n)
        w[0] = w[i] = 0.5
        out.append((f"target+{fam.names[i]}", w))
    rng = np.random.default_rng([fam.seed, 0x0AC1E])
    for k in range(n_random):
        out.append((f"dirichlet{k}", rng.dirichlet(np.ones(n))))
    return out


def run_family(fam: Family, seeds: Sequence[int], variants: dict[str, dict[str, Any]], methods: Sequence[str],
               n_random: int, oracle: bool = True) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    oracle_cells: dict[str, list[float]] = {}
    for seed in seeds:
        job = prepare_job(fam.config, fam.tasks, seed)
        for r in run_methods(job, variants, methods):
            rows.append({"family": fam.seed, "seed": seed, **r})
        if not oracle:
            continue
        # the test-oracle: evaluation only, after the methods of this seed have run
        for r in rows:
            if r["seed"] == seed and r["method"] in RULES:
                oracle_cells.setdefault(r["method"], []).append(r["test"])
        for name, w in candidates(fam, n_random):
            res = replay(job, Schedule.from_weights(job.names, w, provenance={"method": "test_oracle_candidate"}))
            oracle_cells.setdefault(name, []).append(res.test)
    out = {"family": fam.seed, "roles": fam.roles, "info": fam.info, "rows": rows}
    if oracle_cells:
        means = {k: float(np.mean(v)) for k, v in oracle_cells.items()}
        best = max(means, key=means.get)
        out["oracle"] = {"best": best, "test": means[best], "candidates": means}
    return out


def merge(files: Sequence[Path]) -> list[dict[str, Any]]:
    """Families from several rows files (e.g. shards, or a variants-only run beside a full one), rows joined.

    A (family, seed, method) row found twice keeps the first; a family's oracle comes from the file that
    has one.  Families without an oracle are left out (nothing to measure regret against).
    """
    fams: dict[int, dict[str, Any]] = {}
    for f in files:
        for line in Path(f).read_text().splitlines():
            if not line.strip():
                continue
            fam = json.loads(line)
            have = fams.setdefault(fam["family"], {**fam, "rows": []})
            if "oracle" in fam and "oracle" not in have:
                have["oracle"] = fam["oracle"]
            seen = {(r["seed"], r["method"]) for r in have["rows"]}
            have["rows"] += [r for r in fam["rows"] if (r["seed"], r["method"]) not in seen]
    return [fams[k] for k in sorted(fams) if "oracle" in fams[k]]


# ---------------------------------------------------------------- summary


def _tcrit(n: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.975, n - 1)) if n > 1 else float("inf")


def _wtl(d: np.ndarray) -> str:
    if len(d) < 2:
        return "tie"
    half = _tcrit(len(d)) * d.std(ddof=1) / math.sqrt(len(d))
    lo, hi = d.mean() - half, d.mean() + half
    return "win" if lo > 0 else "loss" if hi < 0 else "tie"


def add_learned(fam_rows: list[dict[str, Any]], prefix: str, out_name: str) -> None:
    """The better of the two learned schedules per seed, chosen on the reward split only (ties: time-invariant)."""
    by_seed: dict[int, dict[str, dict[str, Any]]] = {}
    for r in fam_rows:
        for pol in ("time_invariant", "time_variant"):
            if r["method"] in (f"{prefix}{pol}", f"{prefix}/{pol}"):
                by_seed.setdefault(r["seed"], {})[pol] = r
    for seed, pair in by_seed.items():
        if len(pair) < 2:
            continue
        ti, tv = pair["time_invariant"], pair["time_variant"]
        pick = tv if (tv["reward_split"] or 0) > (ti["reward_split"] or 0) else ti
        # the cost of both schedules: one search + two retrains
        search = ti["search_seconds"] or 0.0
        both = (ti["seconds"] - search) + (tv["seconds"] - (tv["search_seconds"] or 0.0)) + search
        fam_rows.append({**pick, "method": out_name, "seconds": both, "picked": "time_variant" if pick is tv else "time_invariant"})


def add_checked(fam_rows: list[dict[str, Any]], n_reward: int, z: float, name: str) -> None:
    """A final check on the reward split: keep ``learned`` unless a rule beats it there by more than ``z`` SE.

    Uses only reward-split scores of retrained models (each row's ``reward_split``), never the test split.
    SE: of the difference of two accuracies on ``n_reward`` examples, ``sqrt(2 p (1 - p) / n)`` (unpaired,
    so conservative).  Cost: learned + the four rule runs.
    """
    by: dict[int, dict[str, dict[str, Any]]] = {}
    for r in fam_rows:
        by.setdefault(r["seed"], {})[r["method"]] = r
    for seed, rows in by.items():
        if "learned" not in rows or not all(m in rows for m in RULES):
            continue
        learned = rows["learned"]
        best = max(RULES, key=lambda m: rows[m]["reward_split"])
        p = min(max(learned["reward_split"], 1e-3), 1 - 1e-3)
        se = math.sqrt(2 * p * (1 - p) / max(1, n_reward))
        keep = rows[best]["reward_split"] - learned["reward_split"] <= z * se
        pick = learned if keep else rows[best]
        cost = learned["seconds"] + sum(rows[m]["seconds"] for m in RULES)
        fam_rows.append({**pick, "method": name, "seconds": cost, "kept": "learned" if keep else best})


def summarize(families: list[dict[str, Any]], checks: Sequence[float] = (0.0, 1.0, 2.0)) -> dict[str, Any]:
    stats: dict[str, dict[str, Any]] = {}
    for fam in families:
        rows = fam["rows"]
        add_learned(rows, "learned_", "learned")
        for v in {r["method"].split("/")[0] for r in rows if "/" in r["method"]}:
            add_learned(rows, v, v)
        n_reward = int(round(0.1 * fam["info"]["target"]["n"]))
        for z in checks:
            add_checked(rows, n_reward, z, f"learned+check(z={z:g})")
        by = {}
        for r in rows:
            by.setdefault(r["method"], {})[r["seed"]] = r
        seeds = sorted(by["uniform"])
        plain = {s: by["uniform"][s]["seconds"] for s in seeds}
        rule_means = {m: np.mean([by[m][s]["test"] for s in seeds]) for m in RULES}
        best_rule = max(rule_means, key=rule_means.get)
        roles = fam["roles"]
        names = list(roles)
        # a conflicting rule only conflicts through a shared head: with per-task heads a head can absorb the
        # flip and the trunk's features may even help, so the harmful-vs-helpful check counts shared heads only
        shared = fam["info"]["_family"]["heads"] == "shared"
        harmful = [i for i, n in enumerate(names) if roles[n] == "harmful"] if shared else []
        helpful = [i for i, n in enumerate(names) if roles[n] == "helpful"]
        for m, cells in by.items():
            if set(cells) != set(seeds):
                continue
            st = stats.setdefault(m, {"regret": [], "vs_rule": [], "vs_single": [], "below_single_2pt": 0, "cells": 0,
                                      "harm_gt_help": 0, "harm_cells": 0, "w_harm": [], "w_help": [], "spread": [],
                                      "cost": [], "test": [], "search_cost": []})
            t = np.asarray([cells[s]["test"] for s in seeds])
            st["test"].append(float(t.mean()))
            st["regret"].append(fam["oracle"]["test"] - float(t.mean()))
            st["vs_rule"].append(_wtl(t - np.asarray([by[best_rule][s]["test"] for s in seeds])) if m != best_rule else "tie")
            single = np.asarray([by["single_task"][s]["test"] for s in seeds])
            st["vs_single"].append(_wtl(t - single) if m != "single_task" else "tie")
            st["below_single_2pt"] += int(np.sum(t < single - 0.02))
            st["cells"] += len(seeds)
            st["cost"] += [cells[s]["seconds"] / plain[s] for s in seeds]
            st["search_cost"] += [cells[s]["search_seconds"] / plain[s] for s in seeds if cells[s].get("search_seconds")]
            ws = [cells[s]["weights"] for s in seeds if cells[s]["weights"] is not None]
            if ws:
                W = np.asarray(ws)
                if len(W) > 1:
                    st["spread"].append(float(W.std(axis=0, ddof=1).mean()))
                if harmful and helpful:
                    for w in W:
                        st["harm_cells"] += 1
                        st["harm_gt_help"] += int(w[harmful].max() > w[helpful].max())
                if harmful:
                    st["w_harm"] += W[:, harmful].sum(axis=1).tolist()
                if helpful:
                    st["w_help"] += W[:, helpful].sum(axis=1).tolist()
    return stats


def detail(families: list[dict[str, Any]], method: str) -> str:
    """One line per family: size, heads, the oracle, the method's regret and its mean weight per role."""
    lines = []
    for fam in families:
        by: dict[str, dict[int, dict[str, Any]]] = {}
        for r in fam["rows"]:
            by.setdefault(r["method"], {})[r["seed"]] = r
        if method not in by:
            continue
        cells = by[method]
        t = np.mean([c["test"] for c in cells.values()])
        roles = list(fam["roles"].values())
        ws = np.asarray([c["weights"] for c in cells.values() if c["weights"] is not None])
        per_role: dict[str, float] = {}
        for i, role in enumerate(roles):
            per_role[role] = per_role.get(role, 0.0) + (float(ws[:, i].mean()) if len(ws) else float("nan"))
        single = np.mean([c["test"] for c in by["single_task"].values()]) if "single_task" in by else float("nan")
        info = fam["info"]
        lines.append(
            f"{fam['family']:>5} n={info['target']['n']:>4} aux={info['_family']['n_aux']} {info['_family']['heads'][:3]} "
            f"oracle {fam['oracle']['test']:.3f} ({fam['oracle']['best']}) single {single:.3f} {method} {t:.3f} "
            f"regret {100 * (fam['oracle']['test'] - t):+.1f} std {ws.std(axis=0, ddof=1).mean() if len(ws) > 1 else 0:.3f} "
            + " ".join(f"{k}:{v:.2f}" for k, v in per_role.items()))
    return "\n".join(lines)


ORDER = ["learned", "learned_time_invariant", "learned_time_variant", "single_task", "uniform", "proportional",
         "temperature_2", "exp3", "thompson", "gradient_alignment", "paper", "constant_control"]


def table(stats: dict[str, dict[str, Any]], n_fam: int, n_seeds: int) -> str:
    head = ("| method | regret to test-oracle (mean ± std, points) | test (mean) | vs best rule W/T/L | ≥ best rule within noise "
            "| vs single-task W/T/L | cells < single − 2 pt | harmful > most helpful (cells) | w(harmful) / w(helpful) "
            "| across-seed weight std | cost × plain (median) | search alone × plain (median) |")
    lines = [head, "|" + "---|" * 12]
    methods = [m for m in ORDER if m in stats] + sorted(m for m in stats if m not in ORDER)
    for m in methods:
        st = stats[m]
        reg = 100 * np.asarray(st["regret"])
        vr, vs = st["vs_rule"], st["vs_single"]
        ok = sum(v != "loss" for v in vr)
        hh = f"{st['harm_gt_help']}/{st['harm_cells']} ({100 * st['harm_gt_help'] / max(1, st['harm_cells']):.1f}%)" if st["harm_cells"] else "–"
        wh = (f"{np.mean(st['w_harm']):.3f} / {np.mean(st['w_help']):.3f}" if st["w_harm"] and st["w_help"] else "–")
        spread = f"{np.mean(st['spread']):.3f}" if st["spread"] else "–"
        lines.append(
            f"| {m} | {reg.mean():+.2f} ± {reg.std(ddof=1) if len(reg) > 1 else 0:.2f} | {np.mean(st['test']):.4f} "
            f"| {vr.count('win')}/{vr.count('tie')}/{vr.count('loss')} | {ok}/{len(vr)} ({100 * ok / len(vr):.0f}%) "
            f"| {vs.count('win')}/{vs.count('tie')}/{vs.count('loss')} "
            f"| {st['below_single_2pt']}/{st['cells']} ({100 * st['below_single_2pt'] / st['cells']:.1f}%) | {hh} | {wh} "
            f"| {spread} | {np.median(st['cost']):.2f} | {np.median(st['search_cost']) if st['search_cost'] else float('nan'):.2f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--families", type=int, default=60)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--family-seed", type=int, default=0, help="families 1000*S .. 1000*S + N - 1")
    ap.add_argument("--quick", action="store_true", help="4 families x 2 seeds")
    ap.add_argument("--random", type=int, default=4, help="random Dirichlet mixtures in the test-oracle's candidates")
    ap.add_argument("--methods", default=",".join(RULES + LEARNED + ONLINE + CONTROLS))
    ap.add_argument("--variant", action="append", default=[], help="NAME:search.key=value,...")
    ap.add_argument("--out", default=None, help="append one JSON line per family here (resumable)")
    ap.add_argument("--summarize", default=None, help="only summarize these rows files (comma-separated; merged by family)")
    ap.add_argument("--shard", default="0/1", help="I/K: run only the families i with i %% K == I (run K processes, then --summarize their rows)")
    ap.add_argument("--detail", default=None, help="also print one line per family for this method")
    ap.add_argument("--no-oracle", action="store_true", help="skip the test-oracle (variants-only runs merged with a full one)")
    ap.add_argument("--families-only", default=None, help="comma-separated family indices (within --family-seed) to run")
    ap.add_argument("--write", action="store_true", help="write the table into BENCHMARKS.md (section families)")
    ap.add_argument("--section", default="families")
    ap.add_argument("--settings", default=None, help="with --write: the search settings the rows were run with (default: today's defaults)")
    ap.add_argument("--produced-by", default=None, help="with --summarize: the command that produced the rows")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.quick:
        args.families, args.seeds = 4, 2
    variants = dict(parse_variant(v) for v in args.variant)
    if args.summarize:
        fams = merge([Path(f) for f in args.summarize.split(",") if f])
    else:
        methods = [m for m in args.methods.split(",") if m]
        done: dict[int, dict[str, Any]] = {}
        out = Path(args.out) / "rows.jsonl" if args.out else None
        if out is not None and out.exists():
            for line in out.read_text().splitlines():
                if line.strip():
                    f = json.loads(line)
                    done[f["family"]] = f
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
        fams = []
        t0 = time.perf_counter()
        shard, n_shards = (int(v) for v in args.shard.split("/"))
        only = {int(v) for v in args.families_only.split(",")} if args.families_only else None
        for i in range(args.families):
            if i % n_shards != shard or (only is not None and i not in only):
                continue
            fseed = 1000 * args.family_seed + i
            if fseed in done:
                fams.append(done[fseed])
                continue
            fam = make_family(fseed)
            res = run_family(fam, list(range(args.seeds)), variants, methods, args.random, oracle=not args.no_oracle)
            fams.append(res)
            if out is not None:
                with out.open("a") as fh:
                    fh.write(json.dumps(res) + "\n")
            orc = f"oracle {res['oracle']['test']:.3f} ({res['oracle']['best']})" if "oracle" in res else "no oracle"
            print(f"family {fseed}: {orc}, {time.perf_counter() - t0:.0f} s", flush=True)
        fams = [f for f in fams if "oracle" in f]
        if not fams:
            return
    stats = summarize(fams)
    if args.detail:
        print(detail(fams, args.detail))
    n_seeds = len({r["seed"] for f in fams for r in f["rows"]})
    text = table(stats, len(fams), n_seeds)
    print(text)
    if args.write:
        from _md import update_section

        by = f"Rows produced by `{args.produced_by}`.\n\n" if args.produced_by else ""
        ids = sorted(f["family"] for f in fams)
        span = f"{ids[0]}..{ids[-1]}" if ids == list(range(ids[0], ids[-1] + 1)) else ", ".join(map(str, ids))
        settings = args.settings or ("the search's defaults (cross-fitting over `reward_folds: 4`, `horizon: 0.5`: "
                                     "the search trains 25 of each meta-step's 50 steps)")
        body = by + (f"{len(fams)} families (`make_family({span})`) × {n_seeds} paired seeds, nothing set per family; "
                     f"train.steps 500, batch 64; {settings}.\n\n" + text + "\n\n" + NOTES)
        update_section(args.section, body)


NOTES = """Columns: *regret*: test-oracle's mean test accuracy − the method's (both averaged over the seeds), in points;
the test-oracle is the best of the candidate static mixtures (the four rules, target + each auxiliary 50/50,
4 random Dirichlet mixtures) by mean *test* accuracy — evaluation only. *vs best rule* / *vs single-task*:
paired over seeds, win / loss when the 95% t interval of the mean difference is above / below 0, else tie;
*≥ best rule within noise*: families that are not a loss. *harmful > most helpful*: cells (family, seed) of
shared-head families with both roles (with per-task heads a conflicting rule need not hurt: its own head
absorbs the flip) where the largest weight on a harmful auxiliary exceeds the largest on a helpful one.
*w(harmful) / w(helpful)*: mean total weight on the harmful (shared-head families) / helpful auxiliaries. *across-seed weight std*:
std over seeds of each task's weight, mean over tasks, mean over families. *cost*: the method's wall time over
the plain (uniform) run of the same seed; `learned` counts one search + both retrains. `learned`: the better
of `learned_time_invariant` / `learned_time_variant` per seed by the retrained model's reward-split accuracy.
`learned+check(z=Z)`: a final check on the reward split, computed from the same rows — keep `learned` unless
the best rule by reward-split accuracy beats it there by more than Z standard errors (binomial, unpaired);
its cost adds the four rule runs. A `--variant` row (e.g. `full_horizon`: `horizon: 1.0`, the search as long
as the run; `fixed_split`: `reward_folds: 1`, the fixed 10% reward split) is the learned pair with those search
settings. *search alone*: the search's wall time over the plain run — the cost of producing both schedules,
before any retraining; a `learned_time_invariant` / `learned_time_variant` row's cost is its search plus its
own retrain."""


if __name__ == "__main__":
    main()
