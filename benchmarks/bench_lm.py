"""The language-modelling regime on real multilingual text (issue 24): the mixture landscape, then the learned schedules.

--landscape  for each config (configs/lm/<name>.yaml): target-only, the rules (uniform, proportional, temperature 2
             and 5, UniMax with a one-epoch cap) and a *test-oracle*: ``--oracle-samples`` random Dirichlet(1)
             mixtures trained once (selection seed), the ``--oracle-top`` best on test text re-run on the paired
             seeds.  Every number: bits per byte on the target's test text (lower is better), over ``--seeds``
             paired seeds (selection seed excluded), with 95% t intervals; the room is the paired difference
             between the best rule and the oracle.  Writes BENCHMARKS.md section ``lm-landscape``.
--learned    ``taskmix compare`` on each config over ``--seeds`` paired seeds with every rule, the learned
             schedules, the online peers and the recommendation; the best rule is the one with the lowest
             validation bits per byte (the reward split: held-out target sentences, never the test text); every
             method's paired difference to it (95% t interval) and its cost as a multiple of one plain run.
             Writes BENCHMARKS.md section ``lm-learned``.

Every cell is one JSON file under ``--out`` (landscape) or one comparison directory resumed with ``--resume``
(learned): an interrupted run continues where it stopped.  ``--dry-run``: a tiny model and 30 steps, to check
the plumbing (writes no BENCHMARKS.md section).

Budget of ``--landscape`` at the defaults (4 configs, 3 seeds, 12 oracle samples, top 2): per config 12 + 2 x 3
oracle runs + 6 rules x 3 seeds = 36 plain runs; a plain run of a shipped config is ~20 s of one core (its header
says what was measured), so ~12 min per config and ~50 min for four.

--peers      every rule and every peer (DoReMi and DoReMi-target, retrained; Aioli and Aioli-target, online; MixMin;
             RegMix) in its own comparison (``--out``/peers/<config>, ``--seeds`` 3), shown beside the rows of
             ``--learned`` on the same seeds where ``--out`` holds them; against stratified (uniform) sampling, the
             validation-picked best rule and the best rule the method's cost buys (equal compute); *Aioli's bar*: on
             how many configs each method beats stratified sampling beyond its paired interval.  Writes
             BENCHMARKS.md section ``lm-peers``.

Usage: python benchmarks/bench_lm.py --landscape [--configs sw,ur,tr,vi] [--seeds 3] [--out runs/bench_lm]
       python benchmarks/bench_lm.py --learned [--configs sw,ur,tr,vi] [--seeds 5] [--out runs/bench_lm]
       python benchmarks/bench_lm.py --peers [--configs sw,ur,tr,vi] [--seeds 3] [--out runs/bench_lm]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(__file__))
from _md import ROOT, update_section  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy import stats as st  # noqa: E402

from taskmix.config import load_config  # noqa: E402
from taskmix.data import load_tasks  # noqa: E402
from taskmix.engine import train_with_schedule  # noqa: E402
from taskmix.runs import prepare_job  # noqa: E402
from taskmix.schedule import RULES, Schedule  # noqa: E402

RULE_NAMES = ("single_task", "uniform", "proportional", "temperature_2", "temperature_5", "unimax")
LEARNED_METHODS = [*RULE_NAMES, "learned_time_invariant", "learned_time_variant", "exp3", "thompson", "gradient_alignment",
                   "regmix"]
METHODS_SHOWN = LEARNED_METHODS  # the rows of --learned that --peers shows beside the peers
DRY = ["train.steps=30", "search.meta_steps=3", "train.batch_size=8", "model.lm.layers=1", "model.lm.width=32",
       "model.lm.heads=2", "model.lm.context=32", "model.lm.test_sentences=100", "model.lm.validation_sentences=50"]


def overrides(a) -> list[str]:
    """The config overrides of the run: the dry run's tiny model, and ``--steps`` (meta-steps kept at 10)."""
    out = list(DRY) if a.dry_run else []
    if a.steps is not None:
        out += [f"train.steps={a.steps}", "search.meta_steps=10"]
    return out


def section(name: str, a) -> str:
    return name if a.steps is None else f"{name}-{a.steps}"


def rule_schedule(rule: str, tasks, cfg) -> Schedule:
    """A rule's schedule on the tasks' sizes (windows); UniMax with the run's budget in windows."""
    names = [t.name for t in tasks]
    sizes = {t.name: t.n_train for t in tasks}
    base, _, suffix = rule.partition("_")
    if rule == "single_task":
        return RULES.get("single_task")(names, target=cfg.target)
    if base == "temperature":
        return RULES.get("temperature")(names, sizes=sizes, temperature=float(suffix))
    if rule == "unimax":
        return RULES.get("unimax")(names, sizes=sizes, budget=cfg.train.steps * cfg.train.batch_size)
    return RULES.get(rule)(names, sizes=sizes, target=cfg.target)


def oracle_candidates(n: int, k: int) -> np.ndarray:
    """``k`` mixtures over ``n`` tasks (the target first): half Dirichlet(1) over all tasks, half with a target share
    uniform in [0.3, 0.95] and the rest Dirichlet(1) over the auxiliaries (low-resource optima sit near the target)."""
    rng = np.random.default_rng([0x1A6, n])
    flat = rng.dirichlet(np.ones(n), size=k - k // 2)
    share = rng.uniform(0.3, 0.95, size=k // 2)
    near = np.column_stack([share, (1 - share)[:, None] * rng.dirichlet(np.ones(n - 1), size=k // 2)])
    return np.concatenate([flat, near])


def ci(values) -> tuple[float, float, float]:
    """Mean and 95% t interval."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2 or np.ptp(v) == 0:
        return float(v.mean()), float(v.mean()), float(v.mean())
    half = float(st.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half)


def _tag(w: np.ndarray) -> str:
    return hashlib.sha256(np.round(np.asarray(w, dtype=np.float64), 9).tobytes()).hexdigest()[:8]


def cell(path: Path, run) -> dict:
    """One resumable cell: its JSON if present, else ``run()`` written atomically."""
    if path.is_file():
        return json.loads(path.read_text())
    out = run()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out))
    tmp.replace(path)
    return out


def train_cell(cfg, tasks, sched: Schedule, seed: int) -> dict:
    job = prepare_job(cfg, tasks, seed)
    t0 = time.process_time()
    r = train_with_schedule(job.tasks, job.target, sched, cfg, seed, eval_splits={"validation": job.reward_split})
    return {"test": r.test, "validation": r.extra["validation"], "cpu_seconds": time.process_time() - t0,
            "weights": sched.mean_weights().tolist()}


def landscape(a, names) -> None:
    lines = [
        "Bits per byte on the target's test text (lower is better), mean [95% t interval] over "
        f"{a.seeds} paired seeds; the oracle: {a.oracle_samples} random Dirichlet(1) mixtures trained on a selection "
        f"seed (half of them with a target share in [0.3, 0.95]), the {a.oracle_top} best *on test* re-run on the "
        "paired seeds; the oracle is the best of those and the rules on test (a bound no method reaches honestly). "
        "*room*: best rule - oracle, paired (positive: the oracle is better; 0 when a rule is the best mixture tried).",
        "",
        "| config | target-only | uniform | proportional | T=2 | T=5 | UniMax | oracle | best rule | room (paired) | oracle mixture |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    cpu = 0.0
    for name in names:
        cfg = load_config(ROOT / "configs" / "lm" / f"{name}.yaml", overrides(a))
        tasks = load_tasks(cfg)
        plain = {k: v for k, v in cfg.fingerprint().items() if k not in ("search", "compare")}  # plain runs only
        key = hashlib.sha256(json.dumps(plain, sort_keys=True).encode()).hexdigest()[:10]
        d = Path(a.out) / "landscape" / f"{name}-{key}"  # a changed config starts afresh
        d.mkdir(parents=True, exist_ok=True)
        seeds = list(range(1, a.seeds + 1))  # seed 0 selects the oracle's candidates
        res: dict[str, list[float]] = {}
        for rule in RULE_NAMES:
            sched = rule_schedule(rule, tasks, cfg)
            cells = [cell(d / f"{rule}-s{s}.json", lambda s=s: train_cell(cfg, tasks, sched, s)) for s in seeds]
            res[rule] = [c["test"] for c in cells]
            cpu += sum(c["cpu_seconds"] for c in cells)
        cands = oracle_candidates(len(tasks), a.oracle_samples)
        first = []
        for k, w in enumerate(cands):
            sched = Schedule.from_weights([t.name for t in tasks], w)
            c = cell(d / f"oracle{k}-{_tag(w)}-s0.json", lambda sched=sched: train_cell(cfg, tasks, sched, 0))
            first.append(c["test"])
            cpu += c["cpu_seconds"]
        top = np.argsort(first)[: a.oracle_top]
        oracle: dict[int, list[float]] = {}
        for k in top:
            sched = Schedule.from_weights([t.name for t in tasks], cands[k])
            cells = [cell(d / f"oracle{k}-{_tag(cands[k])}-s{s}.json", lambda s=s, sched=sched: train_cell(cfg, tasks, sched, s))
                     for s in seeds]
            oracle[int(k)] = [c["test"] for c in cells]
            cpu += sum(c["cpu_seconds"] for c in cells)
        best_k = min(oracle, key=lambda k: np.mean(oracle[k]))
        best_rule = min(RULE_NAMES, key=lambda r: np.mean(res[r]))
        if np.mean(res[best_rule]) < np.mean(oracle[best_k]):  # the oracle is the best mixture tried, rules included
            oracle_test, mix = res[best_rule], f"the rule {best_rule}"
        else:
            oracle_test = oracle[best_k]
            mix = ", ".join(f"{t.name} {w:.2f}" for t, w in zip(tasks, cands[best_k]))
        room = ci(np.asarray(res[best_rule]) - np.asarray(oracle_test))

        def fmt(v):
            m, lo, hi = ci(v)
            return f"{m:.3f} [{lo:.3f}, {hi:.3f}]"

        lines.append(f"| {name} | " + " | ".join(fmt(res[r]) for r in RULE_NAMES) + f" | {fmt(oracle_test)} | {best_rule} | "
                     f"{room[0]:+.3f} [{room[1]:+.3f}, {room[2]:+.3f}] | {mix} |")
        print(lines[-1], flush=True)
    lines += ["", f"CPU time of the cells: {cpu / 60:.1f} min (cells resumed from --out count as they were measured)."]
    text = "\n".join(lines)
    print(text)
    if not (a.dry_run or a.no_md):
        update_section(section("lm-landscape", a), f"## {section('lm-landscape', a)}: the mixture landscape of the language-modelling regime (issue 24)\n\n" + text)


PEER_METHODS = [*RULE_NAMES, "doremi-replay", "doremi_target-replay", "aioli", "aioli_target", "mixmin", "regmix"]
"""The ``--peers`` comparison: every rule beside every peer (UniMax is a rule), so its table stands without --learned."""


def landscape_dir(a, name: str, cfg) -> Path:
    """The ``--landscape`` cells of a config (the key: its plain-run settings, as ``landscape`` computes it)."""
    plain = {k: v for k, v in cfg.fingerprint().items() if k not in ("search", "compare")}
    key = hashlib.sha256(json.dumps(plain, sort_keys=True).encode()).hexdigest()[:10]
    return Path(a.out) / "landscape" / f"{name}-{key}"


def landscape_oracle(a, name: str, cfg) -> dict[int, float] | None:
    """The test-oracle of ``--landscape`` (the best on test of its re-run mixtures and the rules), seed -> bits per
    byte, on its paired seeds (1, 2, ...; seed 0 selected the candidates); ``None`` before the landscape ran."""
    d = landscape_dir(a, name, cfg)
    if not d.is_dir():
        return None
    runs: dict[str, dict[int, float]] = {}
    for f in d.glob("*-s*.json"):
        stem, _, seed = f.stem.rpartition("-s")
        if int(seed) > 0:
            runs.setdefault(stem, {})[int(seed)] = json.loads(f.read_text())["test"]
    n = max(len(v) for v in runs.values())
    full = {k: v for k, v in runs.items() if len(v) == n}
    best = min(full, key=lambda k: np.mean(list(full[k].values())))
    return full[best]


def compare_rows(out: Path, methods, seeds: int, first: int) -> dict[str, dict[int, dict]]:
    """method -> seed -> row of a comparison directory, for ``methods`` and the seeds ``first .. first + seeds - 1``."""
    by: dict[str, dict[int, dict]] = {}
    if not (out / "rows.jsonl").is_file():
        return by
    for r in map(json.loads, filter(str.strip, (out / "rows.jsonl").read_text().splitlines())):
        if r["method"] in methods and first <= int(r["seed"]) < first + seeds:
            by.setdefault(r["method"], {})[int(r["seed"])] = r
    return by


def run_dir(a, kind: str, name: str) -> Path:
    """The comparison directory of a config: ``--out``/<kind>/<config>[-<steps>]."""
    return Path(a.out) / kind / (name if a.steps is None else f"{name}-{a.steps}")


def _interval(d) -> str:
    return f"{d[0]:+.4f} [{d[1]:+.4f}, {d[2]:+.4f}]"


def _sign(d) -> int:
    """+1: better (lower bits per byte) beyond the 95% interval, -1: worse beyond it, 0: within noise."""
    return 1 if d[2] < 0 else (-1 if d[1] > 0 else 0)


def _vs_oracle(rows: dict[int, dict], oracle: dict[int, float] | None) -> str:
    """A method's mean bits per byte relative to the oracle's, on the seeds both have ("–" without an oracle)."""
    common = sorted(set(oracle or {}) & set(rows))
    if not (oracle and common):
        return "–"
    return f"{100 * (np.mean([rows[s]['test'] for s in common]) / np.mean([oracle[s] for s in common]) - 1):+.1f}%"


def _tally_rows(tally: dict[str, list[int]], more: dict[str, str] | None = None) -> list[str]:
    """One table row per method: how many configs it is better / tied / worse (``_sign``), most wins first."""
    return [f"| {m} | {v.count(1)} | {v.count(0)} | {v.count(-1)} |" + (f" {more[m]} |" if more else "")
            for m, v in sorted(tally.items(), key=lambda kv: (-kv[1].count(1), kv[1].count(-1)))]


def _bought(by: dict[str, dict[int, dict]], m: str, seeds) -> str:
    """The equal-compute view: the method's bits per byte minus the best rule its cost buys, mean over seeds.  A run
    that took ``c`` plain runs buys the first ``k = max(1, floor(c))`` rules of :data:`RULE_NAMES`, the best of them
    picked on validation per seed (never on test)."""
    d = []
    for s in seeds:
        k = max(1, int(math.floor(by[m][s]["seconds"] / by["uniform"][s]["seconds"] + 1e-9)))
        pool = [by[r][s] for r in RULE_NAMES[:k] if r in by]
        if pool:
            d.append(by[m][s]["test"] - min(pool, key=lambda r: r["extra"]["reward_split"])["test"])
    k = min(len(RULE_NAMES), max(1, int(np.median([by[m][s]["seconds"] / by["uniform"][s]["seconds"] for s in seeds]))))
    return f"{np.mean(d):+.4f} ({k} rule{'s' if k > 1 else ''})" if d else "–"


def learned(a, names) -> None:
    """``taskmix compare`` on every config with the rules, the learned schedules, the online strategies and RegMix
    (resumed where ``--out`` has rows), then the table against the validation-picked best rule and the oracle."""
    from taskmix.compare import run_compare

    methods = a.methods.split(",")
    lines = [
        f"Bits per byte on the target's test text (lower is better), {a.seeds} paired seeds. The best rule is the rule "
        "with the lowest *validation* bits per byte (the reward split: held-out target sentences, never the test "
        "text); Δ: paired difference to it, 95% t interval (negative: better). *vs oracle*: mean bits per byte "
        "relative to *lm-landscape*'s test-oracle, paired on its seeds 1-3 (the goal: within +1%). Cost: median CPU "
        "seconds per run as a multiple of one plain run (the uniform rows); a learned row's cost is its search plus "
        "its retrain, the recommended row's every candidate it weighed plus its retrain.",
        "",
    ]
    tally: dict[str, list[int]] = {}
    for name in names:
        cfg = load_config(ROOT / "configs" / "lm" / f"{name}.yaml", overrides(a) + [f"compare.methods={json.dumps(methods)}"])
        tasks = load_tasks(cfg)
        out = run_dir(a, "learned", name)
        res = run_compare(cfg, tasks, out, seeds=a.seeds, resume=(out / "rows.jsonl").is_file())
        by = compare_rows(out, set(methods) | {"recommended"}, a.seeds, cfg.seed)
        seeds = sorted(set.intersection(*(set(g) for g in by.values())))
        val = {m: np.mean([by[m][s]["extra"]["reward_split"] for s in seeds]) for m in RULE_NAMES if m in by}
        best = min(val, key=val.get)
        plain = np.median([by["uniform"][s]["seconds"] for s in seeds])
        oracle = None if a.dry_run else landscape_oracle(a, name, cfg)
        lines += [f"### {name} (best rule on validation: {best})", "",
                  "| method | bits per byte [95% CI] | Δ vs best rule [95% paired CI] | vs oracle | cost × plain |",
                  "|---|---|---|---|---|"]
        order = sorted(by, key=lambda m: np.mean([by[m][s]["test"] for s in seeds]))
        for m in order:
            test = [by[m][s]["test"] for s in seeds]
            mean, lo, hi = ci(test)
            d = ci(np.asarray(test) - np.asarray([by[best][s]["test"] for s in seeds]))
            tally.setdefault(m, []).append(0 if m == best else _sign(d))
            cost = np.median([by[m][s]["seconds"] for s in seeds]) / plain
            rel = _vs_oracle(by[m], oracle)
            dcell = "(best rule)" if m == best else _interval(d)
            lines.append(f"| {m} | {mean:.4f} [{lo:.4f}, {hi:.4f}] | {dcell} | {rel} | {cost:.2f} |")
        verdict = (res.get("verdict") or "").split(" On the report split")[0]
        lines += ["", f"Verdict of the comparison: {verdict}", ""]
        print("\n".join(lines[-(len(order) + 6):]), flush=True)
    lines += ["### Over the configs", "",
              "Configs where each method is better than the validation-picked best rule beyond its paired interval "
              "(better) / within it (tie) / worse beyond it (worse):", "",
              "| method | better | tie | worse |", "|---|---|---|---|"]
    lines += _tally_rows(tally)
    text = "\n".join(lines)
    print("\n".join(lines[-(len(tally) + 5):]))
    if not (a.dry_run or a.no_md):
        update_section(section("lm-learned", a), f"## {section('lm-learned', a)}: learned and recommended schedules in the language-modelling regime (issue 24)\n\n" + text)


def peers(a, names) -> None:
    """Every peer on every config (issue 25): the peers' own comparison (``--out``/peers/<config>, no recommendation)
    beside the rows of ``--learned`` (rules, learned, online strategies, RegMix, recommended) on the same seeds;
    Aioli's bar: on how many configs each method beats stratified (uniform) sampling beyond its paired interval."""
    from taskmix.compare import run_compare

    methods = a.methods.split(",")
    lines = [
        f"Bits per byte on the target's test text (lower is better), {a.seeds} paired seeds: the peers' own comparison "
        "(`--peers`: every rule, DoReMi as published and in its target-weighted form, Aioli and its target form, MixMin, "
        "RegMix), with the rows of *lm-learned* on the same seeds where `--out` holds them. Δ vs stratified: paired "
        "difference to uniform sampling, 95% t interval (negative: better); Δ vs best rule: to the rule with the lowest "
        "*validation* bits per byte (held-out target sentences, never the test text); Δ vs best bought rule: the "
        "equal-compute view, to the best (on validation) of the first k rules in the order single_task, uniform, "
        "proportional, temperature 2, temperature 5, UniMax, where k is the method's cost in plain runs (rounded down), "
        "mean over seeds; *vs oracle*: relative to *lm-landscape*'s test-oracle on its seeds (– where `--out` lacks it); "
        "cost: CPU seconds as a multiple of one plain (uniform) run, counting reference and proxy models and sweeps.",
        "",
    ]
    bar: dict[str, list[int]] = {}
    vs_best: dict[str, list[int]] = {}
    cost_all: dict[str, list[float]] = {}
    for name in names:
        cfg = load_config(ROOT / "configs" / "lm" / f"{name}.yaml", overrides(a) + [f"compare.methods={json.dumps(methods)}",
                                                                                     "compare.recommend=false"])
        tasks = load_tasks(cfg)
        out = run_dir(a, "peers", name)
        run_compare(cfg, tasks, out, seeds=a.seeds, resume=(out / "rows.jsonl").is_file())
        by = compare_rows(run_dir(a, "learned", name), set(METHODS_SHOWN) | {"recommended"}, a.seeds, cfg.seed)
        by.update(compare_rows(out, set(methods), a.seeds, cfg.seed))  # the peers' own rows win where both have one
        by = {m: g for m, g in by.items() if len(g) == a.seeds}
        seeds = sorted(by["uniform"])
        plain = np.median([by["uniform"][s]["seconds"] for s in seeds])
        oracle = None if a.dry_run else landscape_oracle(a, name, cfg)
        val = {m: np.mean([by[m][s]["extra"]["reward_split"] for s in seeds]) for m in RULE_NAMES if m in by}
        best = min(val, key=val.get)
        lines += [f"### {name} (best rule on validation: {best})", "",
                  "| method | bits per byte [95% CI] | Δ vs stratified [95% paired CI] | Δ vs best rule [95% paired CI] "
                  "| Δ vs best bought rule | vs oracle | cost × plain |", "|---|---|---|---|---|---|---|"]
        for m in sorted(by, key=lambda m: np.mean([by[m][s]["test"] for s in seeds])):
            test = [by[m][s]["test"] for s in seeds]
            mean, lo, hi = ci(test)
            d = ci(np.asarray(test) - np.asarray([by["uniform"][s]["test"] for s in seeds]))
            db = ci(np.asarray(test) - np.asarray([by[best][s]["test"] for s in seeds]))
            cost = float(np.median([by[m][s]["seconds"] for s in seeds]) / plain)
            if m != "uniform":
                bar.setdefault(m, []).append(_sign(d))
                cost_all.setdefault(m, []).append(cost)
            vs_best.setdefault(m, []).append(0 if m == best else _sign(db))
            rel = _vs_oracle({k: by[m][k] for k in seeds}, oracle)
            lines.append(f"| {m} | {mean:.4f} [{lo:.4f}, {hi:.4f}] | {'(stratified)' if m == 'uniform' else _interval(d)} "
                         f"| {'(best rule)' if m == best else _interval(db)} | {_bought(by, m, seeds)} | {rel} | {cost:.2f} |")
        lines.append("")
        print("\n".join(lines[-(len(by) + 4):]), flush=True)
    lines += ["### Aioli's bar: configs where each method beats stratified sampling", "",
              f"Out of {len(names)} configs: better than uniform beyond the paired interval / within it / worse beyond it; "
              "cost: median over the configs.", "",
              "| method | beats stratified | tie | worse | cost × plain |", "|---|---|---|---|---|"]
    lines += _tally_rows(bar, {m: f"{np.median(c):.2f}" for m, c in cost_all.items()})
    lines += ["", "### Against the validation-picked best rule", "",
              f"Out of {len(names)} configs: better than the best rule (picked per config on validation text) beyond the "
              "paired interval / within it / worse beyond it.", "", "| method | better | tie | worse |", "|---|---|---|---|"]
    lines += _tally_rows(vs_best)
    text = "\n".join(lines)
    print("\n".join(lines[-(len(bar) + len(vs_best) + 12):]))
    if not (a.dry_run or a.no_md):
        update_section(section("lm-peers", a), f"## {section('lm-peers', a)}: every peer in the language-modelling regime, and Aioli's bar (issue 25)\n\n" + text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--landscape", action="store_true")
    mode.add_argument("--learned", action="store_true")
    mode.add_argument("--peers", action="store_true")
    ap.add_argument("--configs", default="sw,ur,tr,vi")
    ap.add_argument("--seeds", type=int, default=None, help="paired seeds (default: 3 landscape, 5 learned)")
    ap.add_argument("--oracle-samples", type=int, default=12)
    ap.add_argument("--oracle-top", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench_lm"))
    ap.add_argument("--dry-run", action="store_true", help="a tiny model, 30 steps; no BENCHMARKS.md section")
    ap.add_argument("--steps", type=int, default=None, help="train.steps of every run (how the landscape moves with "
                    "the budget; the section's name gets the suffix -<steps>)")
    ap.add_argument("--no-md", action="store_true", help="print the table, leave BENCHMARKS.md alone")
    ap.add_argument("--methods", default=None, help="the comparison's methods (--learned default: every rule, both "
                    "learned schedules, the online strategies, RegMix; --peers: uniform and the offline peers)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.seeds is None:
        a.seeds = 5 if a.learned else 3
    if a.methods is None:
        a.methods = ",".join(PEER_METHODS if a.peers else LEARNED_METHODS)
    if a.dry_run:
        a.seeds, a.oracle_samples, a.oracle_top = min(a.seeds, 2), min(a.oracle_samples, 3), min(a.oracle_top, 1)
        a.out = str(Path(a.out) / "dry-run")
    names = a.configs.split(",")
    (landscape if a.landscape else learned if a.learned else peers)(a, names)


if __name__ == "__main__":
    main()
