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

Generators (issue 22).  ``--generator v1`` (default) is the original distribution (``make_family(seed)``;
development sets ``--family-seed 1`` and ``7``, the benchmark ``--family-seed 0``).  ``--generator wide`` adds
auxiliaries on the target's own inputs -- near-copies, weak relatives, orthogonal and moderately conflicting rules,
noisy copies, shifted inputs -- mostly through a shared head (``taskmix.data.families``).  Its seed sets:

  --family-seed 101   development families (``make_family(101000 + i, generator="wide")``): screen and choose
                      defaults here, as often as needed
  --family-seed 102   evaluation families (``make_family(102000 + i, generator="wide")``): score once, with the
                      defaults chosen on 101; never tune on them
  --family-seed 103   a second evaluation set, for a default chosen on the development sets after 102 was scored

  python benchmarks/bench_families.py --generator wide --family-seed 101 --families 30 --seeds 3 --out /tmp/wdev
  python benchmarks/bench_families.py --generator wide --family-seed 102 --families 60 --seeds 3 --out /tmp/weval
  python benchmarks/bench_families.py --summarize /tmp/weval/rows.jsonl --write      # section families-wide-eval

With ``wide`` the test-oracle's candidates also hold target 25% + each auxiliary 75% (``--pair-shares``) and the
target mixed with all its declared relatives (helpful, copy, shifted, noisy_copy; at 50% and 25%), and
the summary adds the families' composition (the share with a same-input conflict or orthogonal task) and each
method's regret by kind of family.  The method list is whatever the rows hold (every rule, single-task, each
learned schedule, any variant or other registered method run with ``--methods``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))

from taskmix.compare.methods import METHODS, learned_method  # noqa: E402
from taskmix.compare.predictions import encode_labels, encode_losses  # noqa: E402
from taskmix.compare.recommend import RECOMMENDED, confirm, recommend  # noqa: E402
from taskmix.compare.runner import next_round  # noqa: E402
from taskmix.data.families import GENERATORS, SAME_INPUT_CONFLICT_ROLES, Family, make_family  # noqa: E402
from taskmix.runs import prepare_job, replay  # noqa: E402
from taskmix.runs.job import Job  # noqa: E402
from taskmix.schedule import Schedule  # noqa: E402

RULES = ("single_task", "uniform", "proportional", "temperature_2")
ONLINE = ("exp3", "thompson", "gradient_alignment")
CONTROLS = ("paper", "constant_control")
LEARNED = ("learned_time_invariant", "learned_time_variant")
HARM_ROLES = ("harmful", "conflict")
"""Roles counted as harmful in the shared-head check (``conflict``: the wide generator's moderate conflicts)."""
HELP_ROLES = ("helpful", "copy")
"""Roles counted as helpful in that check (``copy``: the wide generator's near-copies)."""
RELATIVE_ROLES = ("helpful", "copy", "shifted", "noisy_copy")
"""The target's own rule (or nearly): with ``relatives``, the test-oracle also mixes the target with all of them."""
WIDE_SEEDS = {101: "development", 102: "evaluation", 103: "second evaluation", 104: "third evaluation",
              105: "fourth evaluation", 106: "fifth evaluation", 107: "sixth evaluation",
              108: "seventh evaluation", 109: "eighth evaluation",
              110: "ninth evaluation", 121: "second development", 111: "tenth evaluation",
              112: "eleventh evaluation"}
"""``--family-seed`` sets of the wide generator: choose defaults on 101, score 102 once; 103 scores once a default
chosen on the development sets after 102 was scored (the recommendation's incumbent); 104 scores once the next one
(credit_proportional among the recommendation's candidates); 105 the next (the learned incumbent); 106 the next
(the confirmation on more seeds, compare.confirm_seeds); 107 the next (after the sized confirmation's screen); 108 a
second fresh set with the same defaults; 109 the next (the confirmation's own held-out share,
compare.confirm_fraction); 110 a second fresh set with the same defaults; 121 a second development set (101 and the
v1 set 1 had chosen every default since issue 22 opened and sat near their floor); 111 scores once the next default
chosen on it (target-only as the incumbent, compare.incumbent); 112 a second fresh set with the same defaults."""


def mean_weights(sched: Schedule | None) -> list[float] | None:
    """A schedule's weights averaged over its rows (``None`` without a schedule)."""
    if sched is None:
        return None
    return np.asarray(sched.weights, dtype=np.float64).mean(axis=0).tolist()


def family_overrides(sets: Sequence[str], incumbent: str | None = None) -> dict[str, dict[str, Any]] | None:
    """``["search.credit_window=4", ...]`` (and ``--incumbent``) -> config sections merged over every family's
    config (:func:`taskmix.data.families.make_family`'s ``overrides``); values are read as YAML."""
    import yaml

    out: dict[str, dict[str, Any]] = {}
    for spec in sets:
        key, eq, value = spec.partition("=")
        section, dot, name = key.strip().partition(".")
        if not (eq and dot and section and name and "." not in name):
            raise SystemExit(f"--set {spec!r}: expected SECTION.KEY=VALUE, e.g. search.credit_window=4")
        out.setdefault(section, {})[name] = yaml.safe_load(value)
    if incumbent:
        out.setdefault("compare", {})["incumbent"] = incumbent
    return out or None


def parse_variant(spec: str) -> tuple[str, dict[str, Any]]:
    """``NAME:key=value,...`` -> (NAME, search settings); values are read as YAML."""
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
    rp, rl = extra.get("reward_predictions"), extra.get("reward_losses")
    return {"method": method, "test": res.test, "reward_split": extra.get("reward_split"), "weights": w,
            "seconds": res.seconds, "search_reused": extra.get("search_reused", False),
            "search_seconds": extra.get("search_seconds"), "task_effects": prov.get("task_effects"),
            "kept": prov.get("kept"), "schedule": res.schedule.to_dict() if res.schedule is not None else None,
            "reward_predictions": encode_labels(np.asarray(rp)) if rp is not None else None,
            "reward_losses": encode_losses(np.asarray(rl)) if rl is not None else None}


def compare_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored method rows in the form ``taskmix compare`` gives :func:`~taskmix.compare.recommend.recommend`."""
    return [{"method": r["method"], "seed": r["seed"], "schedule": r.get("schedule"),
             "extra": {"reward_split": r["reward_split"], "reward_predictions": r.get("reward_predictions"),
                       "reward_losses": r.get("reward_losses")}} for r in rows]


def recommendation_of(rows: Sequence[dict[str, Any]], jobs: dict[int, Any]) -> Any:
    """The comparison's recommendation (:func:`taskmix.compare.recommend.recommend`) from a family's stored method
    rows, pooled over the seeds of ``jobs`` (each seed's prepared job gives its reward-split labels); None when no
    candidate replays a schedule.  The incumbent rule, if any, is the jobs' config's (``compare.incumbent``)."""
    kinds = {r["method"]: METHODS.meta(r["method"], "kind") for r in rows
             if r["method"] in METHODS and r["method"] != RECOMMENDED}
    as_compare = compare_rows([r for r in rows if r["method"] in kinds and r["seed"] in jobs])
    cc = next(iter(jobs.values())).cfg.compare
    return recommend(as_compare, kinds, {s: np.asarray(j.reward_split.y) for s, j in jobs.items()}, "accuracy",
                     incumbent=cc.incumbent, incumbent_z=cc.incumbent_margin, criterion=cc.choose_by)


def add_recommended(fam: Family, rows: list[dict[str, Any]], seeds: Sequence[int]) -> list[dict[str, Any]]:
    """The comparison's recommendation (:func:`taskmix.compare.recommend.recommend`) from this family's rows, pooled
    over its seeds, retrained on each seed (a rule's: that rule's own row) -- as ``taskmix compare`` does, with its
    confirmation (``compare.confirm_seeds``: the candidates within noise of the choice rerun on more seeds, the
    choice made again, their runs holding out ``compare.confirm_fraction`` of the target's rows; more rounds while the
    seeds hold fewer than ``compare.confirm_rows`` held-out rows).  Returns the confirmation's rows (kept apart from the family's: they feed only the choice)."""
    jobs = {s: prepare_job(fam.config, fam.tasks, s) for s in seeds}
    rec = recommendation_of(rows, jobs)
    if rec is None:
        return []
    confirm_rows: list[dict[str, Any]] = []
    names = set(rec.held_out)
    first = rec
    extra: list[int] = []
    rounds: list[dict[str, Any]] = []
    while round_seeds := next_round(fam.config, rec, list(seeds)):
        for s in round_seeds:
            jobs[s] = prepare_job(fam.config.for_confirmation(), fam.tasks, s)  # compare.confirm_fraction held out
            confirm_rows += [{"family": fam.seed, "seed": s, **r} for r in run_methods(jobs[s], {}, rec.contenders)]
        extra += round_seeds
        rounds.append({"seeds": round_seeds, "candidates": rec.contenders})
        mine = [r for r in rows + confirm_rows if r["method"] in rec.contenders]
        rec = recommendation_of(mine, jobs)
        assert rec is not None
    if extra:
        rec = confirm(first, rec, extra, rounds)
    share = sum(float(r["seconds"]) for r in confirm_rows) / len(seeds)
    for s in seeds:
        same = [r for r in rows if r["seed"] == s and r["method"] in names]
        cost = sum(float(r["seconds"]) for r in same) + share
        src = next((r for r in same if r["method"] == rec.source), None)
        if rec.kind == "baseline" and src is not None:
            test, held = src["test"], src["reward_split"]
        else:
            res = replay(jobs[s], rec.schedule)
            test, held, cost = res.test, res.extra["reward_split"], cost + res.seconds
        rows.append({"family": fam.seed, "seed": s, "method": RECOMMENDED, "test": test, "reward_split": held,
                     "weights": [float(v) for v in rec.schedule.mean_weights()], "seconds": cost,
                     "source": rec.source, "verdict": rec.verdict, "spread": rec.spread,
                     "agreement": rec.choice_agreement, "confirmed": rec.confirmed is not None})
    return confirm_rows


def candidates(fam: Family, n_random: int, shares: Sequence[float] = (0.5,), relatives: bool = False) -> list[tuple[str, np.ndarray]]:
    """The test-oracle's static mixtures (the rules come from the methods' rows).

    For each share ``s`` in ``shares``, the target at ``s`` and each auxiliary at ``1 - s`` (named
    ``target+AUX`` for 0.5, ``target@S+AUX`` otherwise); with ``relatives`` and at least two auxiliaries of
    :data:`RELATIVE_ROLES` (declared ground truth: the oracle is evaluation only), the target at ``s`` and
    those at ``1 - s`` in equal parts (``target+relatives``, ``target@S+relatives``); then ``n_random``
    Dirichlet mixtures.
    """
    n = len(fam.tasks)
    out = []
    rel = [i for i in range(1, n) if fam.roles[fam.names[i]] in RELATIVE_ROLES] if relatives else []
    for share in shares:
        for i in range(1, n):
            w = np.zeros(n)
            w[0], w[i] = share, 1.0 - share
            out.append((f"target+{fam.names[i]}" if share == 0.5 else f"target@{share:g}+{fam.names[i]}", w))
        if len(rel) >= 2:
            w = np.zeros(n)
            w[0], w[rel] = share, (1.0 - share) / len(rel)
            out.append(("target+relatives" if share == 0.5 else f"target@{share:g}+relatives", w))
    rng = np.random.default_rng([fam.seed, 0x0AC1E])
    for k in range(n_random):
        out.append((f"dirichlet{k}", rng.dirichlet(np.ones(n))))
    return out


def run_family(fam: Family, seeds: Sequence[int], variants: dict[str, dict[str, Any]], methods: Sequence[str],
               n_random: int, oracle: bool = True, shares: Sequence[float] = (0.5,),
               cands: Sequence[tuple[str, np.ndarray]] | None = None, relatives: bool = False,
               recommended: bool = False) -> dict[str, Any]:
    """Every method on every seed of ``fam``, then the test-oracle (evaluation only).

    With ``recommended``, the comparison's recommendation too (:func:`add_recommended`), after every seed ran.

    The oracle's candidates are the rules' rows and :func:`candidates` (``n_random``, ``shares``, ``relatives``), or ``cands``
    when given (e.g. a simplex grid); each is trained on every seed and scored on the test split.
    """
    rows: list[dict[str, Any]] = []
    cand_list = list(cands) if cands is not None else candidates(fam, n_random, shares, relatives)
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
        for name, w in cand_list:
            res = replay(job, Schedule.from_weights(job.names, w, provenance={"method": "test_oracle_candidate"}))
            oracle_cells.setdefault(name, []).append(res.test)
    confirm_rows = add_recommended(fam, rows, seeds) if recommended else []
    out: dict[str, Any] = {"family": fam.seed, "roles": fam.roles, "info": fam.info, "rows": rows}
    if confirm_rows:
        out["confirm_rows"] = confirm_rows
    if fam.generator != "v1":
        out["generator"] = fam.generator
    if oracle_cells:
        means = {k: float(np.mean(v)) for k, v in oracle_cells.items()}
        best = max(means, key=means.get)
        out["oracle"] = {"best": best, "test": means[best], "candidates": means}
    return out


def add_recommended_screen(fam_out: dict[str, Any], z: float, name: str, family: Family | None = None,
                           prefer: str = "rule", criterion: str = "metric") -> None:
    """A development screen of the recommendation's margin ``z`` from a family's stored rows, without retraining.

    The choice is made exactly as :func:`add_recommended` makes it (held-out rows only); where it picks a learned
    method, the row's test score is that method's own score on each seed -- the consensus of the seeds' schedules
    is not retrained, so this approximates the ``recommended`` rows (exact for rules, and for ``learned_support``
    whenever every seed kept the same tasks).  ``family``: the family the rows came from (default: rebuilt with
    :func:`make_family`).  ``prefer="learned"`` screens the opposite burden of proof: the best learned candidate
    unless the best rule beats it on the held-out rows by more than ``z`` standard errors; ``prefer="incumbent"``:
    :data:`INCUMBENT` (a default rule) unless the best candidate beats it by more than ``z`` standard errors.
    """
    if prefer not in ("rule", "learned", "incumbent"):
        raise ValueError(f"prefer: expected 'rule', 'learned' or 'incumbent', got {prefer!r}")
    rows = fam_out["rows"]
    kinds = {r["method"]: METHODS.meta(r["method"], "kind") for r in rows if r["method"] in METHODS and r["method"] != RECOMMENDED}
    if not all(r.get("schedule") is not None for r in rows if r["method"] in kinds):
        raise SystemExit("the rows hold no schedules: rerun them with this version of bench_families.py")
    seeds = sorted({r["seed"] for r in rows})
    fam = family if family is not None else make_family(fam_out["family"], generator=fam_out.get("generator", "v1"))
    labels = {s: np.asarray(prepare_job(fam.config, fam.tasks, s).reward_split.y) for s in seeds}
    as_compare = compare_rows([r for r in rows if r["method"] in kinds])
    rec = recommend(as_compare, kinds, labels, "accuracy", bootstrap=0, z=z if prefer == "rule" else 0.0,
                    incumbent=INCUMBENT if prefer == "incumbent" else None, incumbent_z=z if prefer == "incumbent" else 0.0,
                    criterion=criterion)
    if rec is None:
        return
    source = rec.source
    d = rec.versus_rule  # best learned - best rule on the held-out rows
    if prefer == "learned" and rec.kind == "baseline" and rec.best_other is not None and d and d.get("se") is not None:
        if d["mean"] > -z * float(d["se"]):  # the rule does not win beyond z SE: keep the learned candidate
            source = rec.best_other
    for s in seeds:
        same = [r for r in rows if r["seed"] == s and r["method"] in rec.held_out]
        src = next(r for r in same if r["method"] == source)
        rows.append({**src, "method": name, "seconds": sum(float(r["seconds"]) for r in same),
                     "weights": [float(v) for v in (rec.schedule.mean_weights() if source == rec.source
                                                    else np.mean([r["weights"] for r in rows if r["method"] == source], axis=0))],
                     "source": source})


INCUMBENT = "proportional"
"""The default rule of the ``P<z>`` screen (:func:`add_recommended_screen` with ``prefer="incumbent"``)."""


def screen_spec(spec: str) -> tuple[float, str, str, str]:
    """``"1.96"`` -> ``(1.96, "rule", "rec_z1.96", "metric")``; ``"L1"`` -> ``(1.0, "learned", "rec_L1", "metric")``;
    ``"P1"`` -> ``(1.0, "incumbent", "rec_P1", "metric")``; an ``X`` before any of them scores the held-out rows by
    their loss: ``"X0"`` -> ``(0.0, "rule", "rec_X0", "loss")`` (a screen's margin, which side carries the burden
    of proof, its rows' name, the recommendation's criterion)."""
    criterion, body = ("loss", spec[1:]) if spec[:1] == "X" else ("metric", spec)
    prefer = {"L": "learned", "P": "incumbent"}.get(body[:1], "rule")
    try:
        z = float(body[1:] if prefer != "rule" else body)
    except ValueError:
        raise SystemExit(f"--screen-recommend {spec!r}: expected a margin z, L<z> or P<z>, each optionally after X") from None
    return z, prefer, (f"rec_{spec}" if prefer != "rule" or criterion == "loss" else f"rec_z{spec}"), criterion


def add_candidate_screen(fam_out: dict[str, Any], methods: Sequence[str], name: str, z: float = 0.0,
                         criterion: str = "metric") -> None:
    """:func:`add_recommended_screen` with only ``methods`` (and the rules) as the recommendation's candidates:
    which candidates a comparison should weigh, screened post hoc on development rows (rows ``name``)."""
    keep = set(methods) | set(RULES)
    sub = {**fam_out, "rows": [r for r in fam_out["rows"] if r["method"] in keep]}
    n = len(sub["rows"])
    add_recommended_screen(sub, z, name, criterion=criterion)
    fam_out["rows"].extend(sub["rows"][n:])


def add_confirm_screen(fam_out: dict[str, Any], n_first: int, name: str = "rec_confirm",
                       plan: Sequence[int] | None = None, min_rows: int | None = None,
                       later_fraction: float | None = None, incumbent: str | None = None,
                       incumbent_z: float = 1.0) -> None:
    """A development screen of the confirmation (``compare.confirm_seeds``) from rows of more seeds than the
    comparison's: the choice on the first ``n_first`` seeds (``rec_z0``'s), then, where it is within noise of other
    candidates, made again among those on every seed's rows (as :func:`add_recommended` does).  The rows of the later
    seeds are dropped afterwards: every method, the screen's rows (``name``) included, is scored on the first seeds.
    Like :func:`add_recommended_screen`, a learned choice scores its own rows (the consensus is not retrained).
    ``plan``: the seeds each round of confirmation adds (default: one round, every later seed); a round reruns only
    the candidates still within noise of the choice after the previous one; with ``min_rows``, a round after the
    first runs only while the seeds used so far hold fewer held-out target rows than that (a confirmation sized by
    the target's held-out rows).  ``later_fraction``: the later seeds' rows were run with that
    ``search.reward_fraction`` (``--set``), their held-out labels are carved with it (default: the family's).
    ``incumbent``: every round's choice keeps that rule unless a candidate beats it by more than ``incumbent_z``
    standard errors (``compare.incumbent`` / ``compare.incumbent_margin``, as the runner passes them)."""
    rows = fam_out["rows"]
    seeds = sorted({r["seed"] for r in rows})
    every = {m for m in {r["method"] for r in rows} if {r["seed"] for r in rows if r["method"] == m} == set(seeds)}
    kinds = {m: METHODS.meta(m, "kind") for m in every if m in METHODS and m != RECOMMENDED}  # candidates on every seed
    first = [s for s in seeds if s < n_first]
    if len(first) != n_first or len(seeds) == n_first:
        raise SystemExit(f"--screen-confirm {n_first}: family {fam_out['family']} needs rows of seeds 0..{n_first - 1} "
                         "and of later ones (a --first-seed run beside the comparison's)")
    fam = make_family(fam_out["family"], generator=fam_out.get("generator", "v1"))
    labels = {s: np.asarray(prepare_job(fam.config, fam.tasks, s).reward_split.y) for s in seeds}
    if later_fraction is not None:
        later_cfg = fam.config.with_reward_fraction(later_fraction)
        labels.update({s: np.asarray(prepare_job(later_cfg, fam.tasks, s).reward_split.y) for s in seeds if s >= n_first})
    as_compare = compare_rows([r for r in rows if r["method"] in kinds])
    rec = recommend([r for r in as_compare if r["seed"] in first], kinds, {s: labels[s] for s in first}, "accuracy",
                    bootstrap=0, z=0.0, incumbent=incumbent, incumbent_z=incumbent_z)
    if rec is None:
        return
    later = [s for s in seeds if s not in first]
    plan = list(plan) if plan is not None else [len(later)]
    if sum(plan) > len(later):
        raise SystemExit(f"--screen-confirm: a plan of {sum(plan)} more seeds, the rows hold {len(later)}")
    used, ran = list(first), set()
    cur = rec
    for i, k in enumerate(plan):
        if not cur.contenders:
            break
        if i and min_rows is not None and sum(len(labels[s]) for s in used) >= min_rows:
            break
        ran |= set(cur.contenders)
        used += later[len(used) - len(first):len(used) - len(first) + k]
        cur = recommend([r for r in as_compare if r["method"] in cur.contenders and r["seed"] in used], kinds,
                        {s: labels[s] for s in used}, "accuracy", bootstrap=0, z=0.0, incumbent=incumbent,
                        incumbent_z=incumbent_z)
        assert cur is not None
    source = cur.source
    extra_seeds = set(used) - set(first)
    fam_out["rows"] = kept = [r for r in rows if r["seed"] in first]
    for s in first:
        src = next(r for r in kept if r["seed"] == s and r["method"] == source)
        cost = sum(float(r["seconds"]) for r in kept if r["seed"] == s and r["method"] in kinds) + sum(
            float(r["seconds"]) for r in rows if r["seed"] in extra_seeds and r["method"] in ran) / len(first)
        kept.append({**src, "method": name, "seconds": cost, "source": source})


def as_learned(fam_out: dict[str, Any], variant: str) -> dict[str, Any]:
    """``fam_out`` with the variant's rows (``VARIANT/time_invariant``, ``VARIANT/time_variant``) as the learned
    methods' rows; the learned methods' own rows, every other variant's and a stored ``recommended`` row (made from
    the old learned rows) are dropped.  A variant missing on some seed is refused."""
    rows = fam_out["rows"]
    picked = [{**r, "method": "learned_" + r["method"].partition("/")[2]} for r in rows
              if r["method"] in (f"{variant}/time_invariant", f"{variant}/time_variant")]
    seeds = {r["seed"] for r in rows if r["method"] in RULES}
    if {(r["seed"], r["method"]) for r in picked} != {(s, m) for s in seeds for m in LEARNED}:
        raise SystemExit(f"--as-learned {variant}: family {fam_out['family']} lacks its rows on some seed")
    keep = [r for r in rows if "/" not in r["method"] and r["method"] not in LEARNED and r["method"] != RECOMMENDED]
    return {**fam_out, "rows": keep + picked}


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
    """Per method: regret to the test-oracle, paired verdicts, cells below single-task, weights, costs (adds the derived rows)."""
    stats: dict[str, dict[str, Any]] = {}
    for fam in families:
        rows = fam["rows"]
        add_learned(rows, "learned_", "learned")
        for v in {r["method"].split("/")[0] for r in rows if "/" in r["method"]}:
            add_learned(rows, v, v)
        n_reward = int(round(0.1 * fam["info"]["target"]["n"]))
        for z in checks:
            add_checked(rows, n_reward, z, f"learned+check(z={z:g})")
        by: dict[str, dict[int, dict[str, Any]]] = {}
        for r in rows:
            by.setdefault(r["method"], {})[r["seed"]] = r
        # the reference run (cost ratios, the seed set): the plain uniform run, else the first rule present
        ref = "uniform" if "uniform" in by else next(m for m in (*RULES, *by) if m in by)
        seeds = sorted(by[ref])
        plain = {s: by[ref][s]["seconds"] for s in seeds}
        rule_means = {m: np.mean([by[m][s]["test"] for s in seeds]) for m in RULES if m in by and set(seeds) <= set(by[m])}
        best_rule = max(rule_means, key=rule_means.get) if rule_means else None
        roles = fam["roles"]
        names = list(roles)
        # a conflicting rule only conflicts through a shared head: with per-task heads a head can absorb the
        # flip and the trunk's features may even help, so the harmful-vs-helpful check counts shared heads only
        shared = fam["info"]["_family"]["heads"] == "shared"
        harmful = [i for i, n in enumerate(names) if roles[n] in HARM_ROLES] if shared else []
        helpful = [i for i, n in enumerate(names) if roles[n] in HELP_ROLES]
        has_single = "single_task" in by and set(seeds) <= set(by["single_task"])
        for m, cells in by.items():
            if set(cells) != set(seeds):
                continue
            st = stats.setdefault(m, {"regret": [], "vs_rule": [], "vs_single": [], "below_single_2pt": 0, "cells": 0,
                                      "harm_gt_help": 0, "harm_cells": 0, "w_harm": [], "w_help": [], "spread": [],
                                      "cost": [], "test": [], "search_cost": [], "family": []})
            t = np.asarray([cells[s]["test"] for s in seeds])
            st.setdefault("family", []).append(fam["family"])
            st["test"].append(float(t.mean()))
            st["regret"].append(fam["oracle"]["test"] - float(t.mean()))
            if best_rule is not None:
                st["vs_rule"].append(_wtl(t - np.asarray([by[best_rule][s]["test"] for s in seeds])) if m != best_rule else "tie")
            if has_single:
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
    """The summary table, one row per method (the known ones first, then the rest by name)."""
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
        within = f"{ok}/{len(vr)} ({100 * ok / len(vr):.0f}%)" if vr else "–"
        below = (f"{st['below_single_2pt']}/{st['cells']} ({100 * st['below_single_2pt'] / st['cells']:.1f}%)"
                 if st["cells"] else "–")
        hh = f"{st['harm_gt_help']}/{st['harm_cells']} ({100 * st['harm_gt_help'] / max(1, st['harm_cells']):.1f}%)" if st["harm_cells"] else "–"
        wh = (f"{np.mean(st['w_harm']):.3f} / {np.mean(st['w_help']):.3f}" if st["w_harm"] and st["w_help"] else "–")
        spread = f"{np.mean(st['spread']):.3f}" if st["spread"] else "–"
        lines.append(
            f"| {m} | {reg.mean():+.2f} ± {reg.std(ddof=1) if len(reg) > 1 else 0:.2f} | {np.mean(st['test']):.4f} "
            f"| {vr.count('win')}/{vr.count('tie')}/{vr.count('loss')} | {within} "
            f"| {vs.count('win')}/{vs.count('tie')}/{vs.count('loss')} "
            f"| {below} | {hh} | {wh} "
            f"| {spread} | {np.median(st['cost']):.2f} | {np.median(st['search_cost']) if st['search_cost'] else float('nan'):.2f} |"
        )
    return "\n".join(lines)


EQUAL_RULES = (*RULES, "unimax")
"""The rules a budget buys, in this order (the first k for k plain runs)."""


def equal_compute_table(families: list[dict[str, Any]]) -> str:
    """Each method against the best rule its cost buys (``taskmix.compare.budget``'s view, on the family rows).

    A (family, seed) row that took ``c`` times the seed's plain (uniform) run's wall time buys ``k = max(1, floor(c))``
    rules: the first ``k`` of :data:`EQUAL_RULES`, the best on the reward split picked per seed (never on test).
    Δ: the method's test accuracy − that pick's, in points, mean over families; W/T/L paired over seeds per family.
    """
    acc: dict[str, dict[str, list[Any]]] = {}
    for fam in families:
        by: dict[tuple[str, int], dict[str, Any]] = {(r["method"], r["seed"]): r for r in fam["rows"]}
        methods = list(dict.fromkeys(r["method"] for r in fam["rows"]))
        for m in methods:
            d, ks = [], []
            for seed in sorted({r["seed"] for r in fam["rows"]}):
                row, plain = by.get((m, seed)), by.get(("uniform", seed))
                if row is None or plain is None or not plain["seconds"]:
                    continue
                k = max(1, int(math.floor(float(row["seconds"]) / float(plain["seconds"]) + 1e-9)))
                pool = [by[(r, seed)] for r in EQUAL_RULES[:k] if (r, seed) in by and by[(r, seed)].get("reward_split") is not None]
                if not pool:
                    continue
                pick = max(pool, key=lambda r: float(r["reward_split"]))
                d.append(float(row["test"]) - float(pick["test"]))
                ks.append(k)
            if d:
                a = acc.setdefault(m, {"diff": [], "wtl": [], "k": []})
                a["diff"].append(float(np.mean(d)))
                a["wtl"].append(_wtl(np.asarray(d)))
                a["k"] += ks
    lines = ["| method | plain runs bought (median) | Δ vs best bought rule (points, mean over families) | W/T/L |",
             "|---|---|---|---|"]
    order = [m for m in ORDER if m in acc] + sorted(m for m in acc if m not in ORDER)
    for m in order:
        a = acc[m]
        lines.append(f"| {m} | {np.median(a['k']):.0f} | {100 * np.mean(a['diff']):+.2f} | "
                     f"{a['wtl'].count('win')}/{a['wtl'].count('tie')}/{a['wtl'].count('loss')} |")
    return "\n".join(lines)


def has_same_input_conflict(fam: dict[str, Any]) -> bool:
    """Whether a family (a rows-file line) holds a same-input ``conflict`` or ``orthogonal`` auxiliary."""
    return any(r in SAME_INPUT_CONFLICT_ROLES for r in fam["roles"].values())


def composition(families: list[dict[str, Any]]) -> str:
    """One paragraph: how many families, the share with same-input conflicts or orthogonal tasks, heads, kinds."""
    n = len(families)
    conf = sum(has_same_input_conflict(f) for f in families)
    shared = sum(f["info"]["_family"].get("heads") == "shared" for f in families)
    roles: dict[str, int] = {}
    for f in families:
        for name, role in f["roles"].items():
            if role != "target":
                roles[role] = roles.get(role, 0) + 1
    sizes = [f["info"]["target"]["n"] for f in families]
    text = (f"Families: {n}; with a same-input conflict or orthogonal task: {conf}/{n} ({100 * conf / max(1, n):.0f}%); "
            f"shared head: {shared}/{n}; target size {min(sizes)}–{max(sizes)} (median {int(np.median(sizes))}); "
            "auxiliaries by role: " + ", ".join(f"{k} {v}" for k, v in sorted(roles.items(), key=lambda kv: -kv[1])) + ".")
    for key in ("scenario", "kind"):
        vals = [f["info"]["_family"][key] for f in families if key in f["info"]["_family"]]
        if vals:
            text += f" By {key}: " + ", ".join(f"{k} {vals.count(k)}" for k in sorted(set(vals), key=lambda k: -vals.count(k))) + "."
    return text


def family_kinds(fam: dict[str, Any], wide: bool) -> list[str]:
    """The groups a family is counted in by :func:`kind_table` (``wide``: the set has the wide generator's roles)."""
    f = fam["info"]["_family"]
    out = []
    if wide:
        out.append("same-input conflict/orthogonal" if has_same_input_conflict(fam) else "no same-input conflict")
    for key in ("scenario", "kind"):
        if key in f:
            out.append(f"{key} {f[key]}")
    out.append("shared head" if f.get("heads") == "shared" else "per-task heads")
    out.append("target n < 200" if fam["info"]["target"]["n"] < 200 else "target n ≥ 200")
    return out


def kind_table(stats: dict[str, dict[str, Any]], families: list[dict[str, Any]]) -> str:
    """Each method's mean regret to the test-oracle (points) by kind of family, and its share within noise of the best rule."""
    wide = any(f.get("generator", "v1") == "wide" or has_same_input_conflict(f) for f in families)
    kinds_of = {f["family"]: family_kinds(f, wide) for f in families}
    order: list[str] = []
    for ks in kinds_of.values():
        order += [k for k in ks if k not in order]
    lead = [k for k in ("same-input conflict/orthogonal", "no same-input conflict") if k in order]
    order = lead + sorted(k for k in order if k not in lead)
    counts = {k: sum(k in ks for ks in kinds_of.values()) for k in order}
    head = "| method | all | " + " | ".join(f"{k} ({counts[k]})" for k in order) + " |"
    lines = ["Mean regret to the test-oracle (points) by kind of family; in brackets, families ≥ the best rule within noise.\n",
             head, "|" + "---|" * (len(order) + 2)]
    methods = [m for m in ORDER if m in stats] + sorted(m for m in stats if m not in ORDER)
    for m in methods:
        st = stats[m]
        fams = st.get("family", [])
        vr = st["vs_rule"] if len(st["vs_rule"]) == len(fams) else [None] * len(fams)

        def cell(sel: list[int]) -> str:
            if not sel:
                return "–"
            reg = 100 * np.mean([st["regret"][i] for i in sel])
            ok = [vr[i] != "loss" for i in sel if vr[i] is not None]
            return f"{reg:+.2f}" + (f" ({100 * np.mean(ok):.0f}%)" if ok else "")

        cells = [cell(list(range(len(fams))))]
        cells += [cell([i for i, fid in enumerate(fams) if k in kinds_of.get(fid, [])]) for k in order]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Run (or summarize) the family benchmark."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--families", type=int, default=60)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0,
                    help="the seeds are FIRST..FIRST+SEEDS-1 (e.g. more seeds beside a run's, with --no-oracle)")
    ap.add_argument("--generator", choices=GENERATORS, default="v1",
                    help="family generator: v1 (the original families) or wide (issue 22; see the docstring)")
    ap.add_argument("--family-seed", type=int, default=None,
                    help="families 1000*S .. 1000*S + N - 1 (default 0 for v1; 101, the development set, for wide; "
                         "102 is wide's evaluation set)")
    ap.add_argument("--pair-shares", default=None,
                    help="test-oracle candidates: the target's shares in target + one auxiliary (comma-separated; "
                         "default 0.5 for v1, 0.25,0.5 for wide)")
    ap.add_argument("--quick", action="store_true", help="4 families x 2 seeds")
    ap.add_argument("--random", type=int, default=4, help="random Dirichlet mixtures in the test-oracle's candidates")
    ap.add_argument("--methods", default=",".join(RULES + LEARNED + ONLINE + CONTROLS))
    ap.add_argument("--variant", action="append", default=[], help="NAME:search.key=value,...")
    ap.add_argument("--screen-recommend", default=None,
                    help="with --summarize: comma-separated margins z; adds rows 'rec_z<z>', the recommendation's choice "
                         "with that margin from the stored rows (add_recommended_screen; a development screen); 'L<z>': "
                         "rows 'rec_L<z>', the best learned candidate unless a rule beats it by more than z SE; 'P<z>': rows "
                         "'rec_P<z>', proportional unless the best candidate beats it by more than z SE")
    ap.add_argument("--equal-compute", action="store_true",
                    help="also the equal-compute view: each method against the best rule its wall-time cost buys")
    ap.add_argument("--screen-candidates", default=None,
                    help="with --summarize: NAME=m1+m2;NAME2=...: adds rows 'rec_NAME', the recommendation's choice (margin "
                         "0) when only those methods and the rules are its candidates (add_candidate_screen)")
    ap.add_argument("--screen-confirm", default=None,
                    help="with --summarize over rows of more seeds (a --first-seed run beside the comparison's): N, the "
                         "comparison's seeds 0..N-1; adds rows 'rec_confirm', the choice confirmed on the later seeds "
                         "(add_confirm_screen), then scores every method on the first N seeds only; N:P1,P2+P3: rows "
                         "'rec_cP' per plan, each a '+'-list of the seeds its rounds add, optionally ending in 'rR': a round after the "
                         "first only while the seeds used hold fewer than R held-out target rows")
    ap.add_argument("--confirm-fraction", type=float, default=None,
                    help="with --screen-confirm: the later seeds' rows were run with this search.reward_fraction (--set)")
    ap.add_argument("--confirm-incumbent", default=None,
                    help="with --screen-confirm N:PLANS: comma-separated RULE:Z (or none): one rows name per plan and "
                         "incumbent, 'rec_c<plan>_<RULE><Z>', every round keeping RULE unless a candidate beats it by "
                         "more than Z standard errors (compare.incumbent, compare.incumbent_margin)")
    ap.add_argument("--set", action="append", default=[], dest="settings_over",
                    help="SECTION.KEY=VALUE (repeatable): set a config key in every family (e.g. search.credit_window=4), "
                         "merged over the family's drawn config; values are read as YAML")
    ap.add_argument("--as-learned", default=None,
                    help="with --summarize: the variant NAME's rows (NAME/time_invariant, NAME/time_variant) take the "
                         "place of the learned methods' before anything is summarized or screened (as_learned): the "
                         "comparison as if its search had that variant's settings")
    ap.add_argument("--incumbent", default=None,
                    help="with --recommend: the recommendation's compare.incumbent (a rule's name; default: the "
                         "library's, none for feature tasks)")
    ap.add_argument("--recommend", action="store_true",
                    help="also the comparison's recommended mixture (method 'recommended'), from the methods' rows")
    ap.add_argument("--out", default=None, help="append one JSON line per family here (resumable)")
    ap.add_argument("--summarize", default=None, help="only summarize these rows files (comma-separated; merged by family)")
    ap.add_argument("--shard", default="0/1", help="I/K: run only the families i with i %% K == I (run K processes, then --summarize their rows)")
    ap.add_argument("--detail", default=None, help="also print one line per family for this method")
    ap.add_argument("--no-oracle", action="store_true", help="skip the test-oracle (variants-only runs merged with a full one)")
    ap.add_argument("--families-only", default=None, help="comma-separated family indices (within --family-seed) to run")
    ap.add_argument("--write", action="store_true", help="write the table into BENCHMARKS.md (section families)")
    ap.add_argument("--section", default=None,
                    help="BENCHMARKS.md section (default: families for v1, families-wide-dev / families-wide-eval for wide)")
    ap.add_argument("--settings", default=None, help="with --write: the search settings the rows were run with (default: today's defaults)")
    ap.add_argument("--produced-by", default=None, help="with --summarize: the command that produced the rows")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.quick:
        args.families, args.seeds = 4, 2
    if args.family_seed is None:
        args.family_seed = 101 if args.generator == "wide" else 0
    shares = tuple(float(v) for v in (args.pair_shares or ("0.25,0.5" if args.generator == "wide" else "0.5")).split(",") if v)
    variants = dict(parse_variant(v) for v in args.variant)
    if args.summarize:
        fams = merge([Path(f) for f in args.summarize.split(",") if f])
        if args.as_learned:
            fams = [as_learned(f, args.as_learned) for f in fams]
        if args.screen_confirm is not None:
            n_first, _, plans = args.screen_confirm.partition(":")
            for f in fams:
                if plans:  # one rows name per plan, every plan from the same rows, then the later seeds dropped
                    for spec in plans.split(","):
                        for inc in (args.confirm_incumbent or "none").split(","):
                            rule, _, iz = inc.partition(":")
                            try:
                                float(iz or 1)
                            except ValueError:
                                raise SystemExit(f"--confirm-incumbent {inc!r}: expected RULE:Z (Z a number of standard "
                                                 "errors) or none") from None
                            name = f"rec_c{spec}" + ("" if rule == "none" else f"_{rule}{iz or '1'}")
                            sub = {**f, "rows": list(f["rows"])}
                            rounds, _, rows_goal = spec.partition("r")
                            add_confirm_screen(sub, int(n_first), name, [int(k) for k in rounds.split("+")],
                                               int(rows_goal) if rows_goal else None, args.confirm_fraction,
                                               None if rule == "none" else rule, float(iz or 1))
                            f.setdefault("_screens", []).extend(r for r in sub["rows"] if r["method"] == name)
                    f["rows"] = [r for r in f["rows"] if r["seed"] < int(n_first)] + f.pop("_screens")
                else:
                    add_confirm_screen(f, int(n_first), later_fraction=args.confirm_fraction)
        for zs in (args.screen_recommend or "").split(","):
            if zs:
                z, prefer, name, criterion = screen_spec(zs)
                for f in fams:
                    add_recommended_screen(f, z, name, prefer=prefer, criterion=criterion)
        for spec in filter(None, (args.screen_candidates or "").split(";")):
            cname, _, ms = spec.partition("=")
            for f in fams:
                add_candidate_screen(f, [m for m in ms.split("+") if m], f"rec_{cname}")
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
        if args.generator == "wide":
            which = WIDE_SEEDS.get(args.family_seed, "ad hoc (neither a development set, 101 or 121, nor an evaluation set, 102-112)")
            print(f"wide families {1000 * args.family_seed}..{1000 * args.family_seed + args.families - 1}: {which}", flush=True)
            if which.endswith("evaluation"):
                print("evaluation families: score them once, with defaults chosen on the development sets (101, 121)", flush=True)
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
            fam = make_family(fseed, generator=args.generator, overrides=family_overrides(args.settings_over, args.incumbent))
            res = run_family(fam, list(range(args.first_seed, args.first_seed + args.seeds)), variants, methods, args.random, oracle=not args.no_oracle,
                             shares=shares, relatives=args.generator == "wide", recommended=args.recommend)
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
    generator = fams[0].get("generator", "v1")
    extra = ""
    if generator != "v1" or any(has_same_input_conflict(f) for f in fams):
        extra = composition(fams) + "\n\n" + kind_table(stats, fams)
    if args.equal_compute:
        extra += ("\n\n*Equal compute*: a (family, seed) row that took c times the seed's plain (uniform) run's wall "
                  "time buys k = max(1, floor(c)) rules, the first k of " + ", ".join(EQUAL_RULES) + "; the best of them "
                  "on the reward split is picked per seed (never on test). Δ: the method's test accuracy − the pick's, in "
                  "points, mean over families; W/T/L paired over seeds per family.\n\n" + equal_compute_table(fams))
    print(text)
    if extra:
        print("\n" + extra)
    if args.write:
        from _md import update_section

        by = f"Rows produced by `{args.produced_by}`.\n\n" if args.produced_by else ""
        ids = sorted(f["family"] for f in fams)
        span = f"{ids[0]}..{ids[-1]}" if ids == list(range(ids[0], ids[-1] + 1)) else ", ".join(map(str, ids))
        settings = args.settings or ("the search's defaults (cross-fitting over `reward_folds: 4`, `horizon: 0.5`: "
                                     "the search trains 25 of each meta-step's 50 steps)")
        call = f"make_family({span})" if generator == "v1" else f"make_family({span}, generator=\"{generator}\")"
        which = ""
        if generator == "wide":
            sets = {WIDE_SEEDS.get(i // 1000, "ad hoc") for i in ids}
            which = f"the {' + '.join(sorted(sets))} families; "
        section = args.section or (f"families-wide-{'eval' if ids[0] // 1000 == 102 else 'dev' if ids[0] // 1000 == 101 else ids[0] // 1000}"
                                   if generator == "wide" else "families")
        if generator == "v1":  # the v1 sections' wording, unchanged
            body = by + (f"{len(fams)} families (`{call}`) × {n_seeds} paired seeds, nothing set per family; "
                         f"train.steps 500, batch 64; {settings}.\n\n" + text + "\n\n" + NOTES)
        else:
            body = by + (f"{len(fams)} families (`{call}`; {which}{n_seeds} paired seeds), nothing set per family; "
                         f"train.steps 500, batch 64; {settings}.\n\n" + text + "\n\n" + extra + "\n\n" + NOTES + WIDE_NOTES)
        update_section(section, body)


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

WIDE_NOTES = """

Wide families (issue 22): the test-oracle's candidates also hold the target at 25% with each auxiliary at 75%
(`target@0.25+AUX`) and, where a family has two or more, the target at 50% / 25% with its declared relatives
(`helpful`, `copy`, `shifted`, `noisy_copy`) sharing the rest equally (`target+relatives`, `target@0.25+relatives`);
*harmful > most helpful* counts `conflict` tasks as harmful and `copy` tasks as helpful too.
*Same-input conflict/orthogonal*: the family holds a `conflict` (cos −0.8 to −0.3) or `orthogonal` auxiliary on
the target's own inputs. The by-kind table splits each method's regret by these and the generator's scenario
(`copy_among_conflicts`: a strong near-copy next to conflicting tasks, shared head; `harms_only`: no helpful
relative), the heads and the target's size."""


if __name__ == "__main__":
    main()
