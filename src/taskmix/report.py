"""Report: statistics over paired seeds, tables and plots.

* per method: mean, std, standard error, 95% bootstrap confidence interval;
* paired difference to the best baseline (same seeds), with its standard
  error and 95% bootstrap interval, and a mark where the interval covers 0
  (the difference is within noise);
* cost: training steps, evaluations and wall time, and their ratio to one
  plain training run;
* plots: a schedule's task weights over meta-steps (the paper's Figure 1),
  and the per-meta-step rewards of a search.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .schedule import Schedule

BASELINES = ("single_task", "uniform", "proportional")


def bootstrap_ci(values: Sequence[float], confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (degenerate for fewer than 2 values)."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2 or np.all(v == v[0]):
        m = float(v.mean()) if len(v) else float("nan")
        return m, m
    from scipy.stats import bootstrap

    res = bootstrap((v,), np.mean, confidence_level=confidence, n_resamples=n_resamples, method="percentile",
                    random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def describe(values: Sequence[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    std = float(v.std(ddof=1)) if n > 1 else 0.0
    lo, hi = bootstrap_ci(v)
    return {"n": n, "mean": float(v.mean()), "std": std, "sem": std / math.sqrt(n) if n else float("nan"), "ci_low": lo, "ci_high": hi}


def by_method(rows: Iterable[dict[str, Any]]) -> dict[str, dict[int, dict[str, Any]]]:
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["method"], {})[int(r["seed"])] = r
    return out


def paired(a: dict[int, dict[str, Any]], b: dict[int, dict[str, Any]]) -> np.ndarray:
    seeds = sorted(set(a) & set(b))
    return np.asarray([a[s]["test"] - b[s]["test"] for s in seeds], dtype=np.float64)


def summarize(rows: Sequence[dict[str, Any]], plain_seconds: float | None = None, plain_steps: int | None = None) -> list[dict[str, Any]]:
    """One summary per method: statistics, paired difference to the best baseline, cost."""
    groups = by_method(rows)
    stats = {m: describe([r["test"] for r in g.values()]) for m, g in groups.items()}
    baselines = [m for m in groups if m in BASELINES or m.startswith("temperature") or m == "examples_proportional"]
    best_base = max(baselines, key=lambda m: stats[m]["mean"]) if baselines else None
    out = []
    for m, g in groups.items():
        s = dict(stats[m])
        s["method"] = m
        secs = [r["seconds"] for r in g.values()]
        s["seconds"] = float(np.median(secs))
        s["train_steps"] = float(np.median([r.get("train_steps", 0) for r in g.values()]))
        s["evaluations"] = float(np.median([r.get("evaluations", 0) for r in g.values()]))
        if plain_seconds:
            s["cost_ratio"] = s["seconds"] / plain_seconds
        if plain_steps:
            s["step_ratio"] = s["train_steps"] / plain_steps
        if best_base is not None and m != best_base:
            d = paired(g, groups[best_base])
            if len(d):
                dd = describe(d)
                s["vs"] = best_base
                s["diff_mean"] = dd["mean"]
                s["diff_sem"] = dd["sem"]
                s["diff_ci_low"] = dd["ci_low"]
                s["diff_ci_high"] = dd["ci_high"]
                s["within_noise"] = bool(dd["ci_low"] <= 0.0 <= dd["ci_high"])
        out.append(s)
    out.sort(key=lambda s: -s["mean"])
    return out


def format_table(summary: Sequence[dict[str, Any]], metric: str = "test") -> str:
    """A plain-text (Markdown) table: mean ± std, 95% CI, paired difference, cost."""
    head = "| method | mean ± std | 95% CI | Δ vs best baseline (95% CI) | seconds | cost × plain |"
    lines = [head, "|---|---|---|---|---|---|"]
    for s in summary:
        diff = ""
        if "diff_mean" in s:
            mark = " ≈" if s["within_noise"] else ""
            diff = f"{s['diff_mean']:+.4f} [{s['diff_ci_low']:+.4f}, {s['diff_ci_high']:+.4f}]{mark}"
        cost = f"{s['cost_ratio']:.2f}" if "cost_ratio" in s else ""
        lines.append(
            f"| {s['method']} | {s['mean']:.4f} ± {s['std']:.4f} | [{s['ci_low']:.4f}, {s['ci_high']:.4f}] "
            f"| {diff} | {s['seconds']:.2f} | {cost} |"
        )
    lines.append("")
    lines.append(f"n = {summary[0]['n'] if summary else 0} paired seeds; ≈ marks a paired difference whose 95% bootstrap CI covers 0.")
    return "\n".join(lines)


# ------------------------------------------------------------------- plots


def plot_schedule(schedule: Schedule, out: str | Path, title: str | None = None, log: Sequence[dict[str, Any]] | None = None) -> Path:
    """Task weights over meta-steps (one line per task), as the paper's Figure 1.

    A time-invariant schedule is drawn flat over its meta-steps; with ``log``
    (a search log) the policy's weights after each update are drawn instead.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    if log:
        w = np.asarray([e["probs_after"] for e in log])
    else:
        n_meta = max(schedule.n_rows, int(schedule.provenance.get("meta_steps", 1)) if isinstance(schedule.provenance.get("meta_steps", 1), int) else 1)
        w = np.asarray([schedule.weights[min(m, schedule.n_rows - 1)] for m in range(n_meta)])
    x = np.arange(1, len(w) + 1)
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=120)
    for i, name in enumerate(schedule.tasks):
        ax.plot(x, w[:, i], marker="o", ms=3, label=name)
    ax.set_xlabel("meta-step")
    ax.set_ylabel("sampling weight")
    ax.set_ylim(0, 1)
    ax.set_xticks(x if len(x) <= 20 else x[:: max(1, len(x) // 10)])
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    ax.set_title(title or f"{schedule.provenance.get('method', 'schedule')}")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(out)
    return out


def plot_rewards(log: Sequence[dict[str, Any]], tasks: Sequence[str], out: str | Path, title: str = "rewards per meta-step") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    r = np.asarray([e["rewards"] for e in log])
    x = np.arange(1, len(r) + 1)
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=120)
    for i, name in enumerate(tasks):
        ax.plot(x, r[:, i], marker="o", ms=3, label=name)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("meta-step")
    ax.set_ylabel("reward")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(out)
    return out
