"""Budget accounting and the equal-compute view: every method against the best rule that as many plain runs buy.

A *plain run* is ``train.steps`` optimiser steps at ``train.batch_size``.  A row's cost in plain runs is its
``train_steps`` (every step it took: searches, proxy runs, reference models, sweeps, the retrain) over
``train.steps``.  A budget of ``k`` plain runs buys ``k`` rules: train the first ``k`` rules of the comparison
(in its ``compare.methods`` order), keep the one best on the reward split (held out of every model; never the
reported split), report it.  :func:`equal_compute` sets each method against that pick, seed by seed.

>>> rows = [
...     {"method": "uniform", "kind": "baseline", "seed": 0, "test": 0.70, "train_steps": 100, "extra": {"reward_split": 0.6}},
...     {"method": "single_task", "kind": "baseline", "seed": 0, "test": 0.80, "train_steps": 100, "extra": {"reward_split": 0.7}},
...     {"method": "peer", "kind": "peer", "seed": 0, "test": 0.75, "train_steps": 300, "extra": {"reward_split": 0.7}},
... ]
>>> [(v["method"], v["plain_runs"], v["rules"], v["rule_test"]) for v in equal_compute(rows, 100)]
[('uniform', 1.0, ['uniform'], 0.7), ('single_task', 1.0, ['uniform'], 0.7), ('peer', 3.0, ['uniform', 'single_task'], 0.8)]
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..data.tasks import metric_sign

__all__ = ["EQUAL_COMPUTE_NOTE", "equal_compute", "equal_compute_cells", "plain_runs"]

EQUAL_COMPUTE_NOTE = (
    "Equal compute: each method against the best rule that its cost buys. A method that spent k plain runs "
    "(train steps / train.steps, rounded down, at least 1) is set against the first k rules of the comparison "
    "(compare.methods order), the one best on the reward split picked per seed (never the reported split); "
    "Δ = method − pick, on the report split, paired over seeds."
)


def plain_runs(row: dict[str, Any], plain_steps: int) -> float:
    """The row's cost in plain runs: its ``train_steps`` over ``plain_steps`` (``train.steps``)."""
    if not (isinstance(plain_steps, (int, float)) and plain_steps > 0):
        raise ValueError(f"plain_steps must be a positive number of steps, got {plain_steps!r}")
    return float(row.get("train_steps") or 0) / float(plain_steps)


def _held_out(row: dict[str, Any]) -> float | None:
    v = (row.get("extra") or {}).get("reward_split")
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def equal_compute(rows: Sequence[dict[str, Any]], plain_steps: int, metric: str = "accuracy") -> list[dict[str, Any]]:
    """Per method (in the rows' order): its cost in plain runs (median over seeds), the rules that buys, and its
    mean report-split score against the mean of the best of those rules picked on the reward split per seed.

    Keys: ``method``, ``plain_runs``, ``rules`` (the rules its budget buys, on the first seed), ``n`` (paired
    seeds), ``test``, ``rule_test``, ``diff`` (``test - rule_test``: better when its sign matches the metric's
    direction), ``ahead`` (seeds where the method beats the pick in the metric's direction), ``picked`` (the
    rule picked on each seed).  Methods with no paired seed are left out.
    """
    sign = metric_sign(metric)
    rules: list[str] = []
    for r in rows:
        if r.get("kind") == "baseline" and r["method"] not in rules:
            rules.append(str(r["method"]))
    by: dict[str, dict[int, dict[str, Any]]] = {}
    for r in rows:
        by.setdefault(str(r["method"]), {})[int(r["seed"])] = r
    out = []
    for m, g in by.items():
        mine, picks, picked, budgets, bought = [], [], [], [], None
        for s in sorted(g):
            k = max(1, int(math.floor(plain_runs(g[s], plain_steps) + 1e-9)))
            pool = [rule for rule in rules[:k] if s in by[rule] and _held_out(by[rule][s]) is not None]
            if not pool:
                continue
            best = max(pool, key=lambda rule: sign * float(_held_out(by[rule][s]) or 0.0))  # first on ties
            mine.append(float(g[s]["test"]))
            picks.append(float(by[best][s]["test"]))
            picked.append(best)
            budgets.append(plain_runs(g[s], plain_steps))
            bought = bought if bought is not None else rules[:k]
        if not mine:
            continue
        d = np.asarray(mine) - np.asarray(picks)
        out.append({"method": m, "plain_runs": float(np.median(budgets)), "rules": bought, "n": len(mine),
                    "test": float(np.mean(mine)), "rule_test": float(np.mean(picks)), "diff": float(d.mean()),
                    "ahead": int(np.sum(sign * d > 0)), "picked": picked})
    return out


def equal_compute_cells(view: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the equal-compute table."""
    head = ["method", "plain runs", "rules bought", "test", "best bought rule (picked on reward split)", "Δ",
            "seeds ahead"]
    cells = [[v["method"], f"{v['plain_runs']:.2f}", str(len(v["rules"] or [])), f"{v['test']:.4f}",
              f"{v['rule_test']:.4f} ({', '.join(sorted(set(v['picked'])))})", f"{v['diff']:+.4f}",
              f"{v['ahead']}/{v['n']}"] for v in view]
    return head, cells
