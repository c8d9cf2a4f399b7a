"""Plots: a schedule's weights over meta-steps (the paper's Figure 1), rewards, average weights, reward-split curves.

Every figure is written atomically through :func:`save_figure`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import OutputError, atomic_write_bytes
from ..schedule import Schedule
from .stats import method_kind

__all__ = ["plot_headline", "plot_reward_split", "plot_rewards", "plot_schedule", "plot_weights", "report_plots", "save_figure"]




FORMATS = ("png", "pdf", "svg", "jpg", "jpeg", "eps", "ps", "tif", "tiff", "webp")
"""The file types a figure is written as, chosen by the output's suffix."""


def figure_format(out: Path) -> str:
    """The format a figure written to ``out`` takes: its suffix (``.pdf`` -> PDF); refused when not a figure type."""
    fmt = out.suffix[1:].lower()
    if fmt not in FORMATS:
        shown = out.suffix[:20] or "no suffix"
        raise OutputError(f"{str(out)[-200:]}: {shown!r} is not a figure type; expected one of {', '.join('.' + f for f in FORMATS)}")
    return fmt


def text(s: Any, limit: int = 80) -> str:
    """A user-given string as literal plot text: ``$`` escaped (no mathtext), at most ``limit`` characters."""
    t = str(s)
    t = t if len(t) <= limit else t[: limit - 1] + "…"
    return t.replace("$", r"\$")


def save_figure(fig: Any, out: Path) -> Path:
    """Write a figure in the format of ``out``'s suffix, atomically, and close it.

    The figure is rendered in memory and written by
    :func:`taskmix.errors.atomic_write_bytes` (a temporary name unique to the
    process, removed on failure; a symbolic link at ``out`` is replaced, never
    written through).
    """
    import io

    import matplotlib.pyplot as plt

    out = Path(out)
    try:
        fmt = figure_format(out)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt)
    finally:
        plt.close(fig)
    atomic_write_bytes(out, buf.getvalue())
    return out


def plot_schedule(schedule: Schedule, out: str | Path, title: str | None = None, log: Sequence[dict[str, Any]] | None = None) -> Path:
    """Task weights over meta-steps (one line per task), as the paper's Figure 1.

    A time-invariant schedule is drawn flat over its meta-steps; with ``log``
    (a search log) the policy's weights after each update are drawn instead.
    Where the schedule's provenance has ``task_effects``, each task's legend
    entry shows its estimated effect on the target with a 95% interval.
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
    effects = schedule.provenance.get("task_effects") if isinstance(schedule.provenance, dict) else None
    for i, name in enumerate(schedule.tasks):
        label = text(name)
        e = (effects or {}).get(name)
        if isinstance(e, dict) and "effect" in e:  # the task's estimated effect on the target, 95% interval
            label = f"{text(name)}: effect {e['effect']:+.3f} [{e['ci_low']:+.3f}, {e['ci_high']:+.3f}]"
        ax.plot(x, w[:, i], marker="o", ms=3, label=label)
    ax.set_xlabel("meta-step")
    ax.set_ylabel("sampling weight")
    ax.set_ylim(0, 1)
    ax.set_xticks(x if len(x) <= 20 else x[:: max(1, len(x) // 10)])
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    ax.set_title(text(title or f"{schedule.provenance.get('method', 'schedule')}", 200))
    fig.tight_layout()
    return save_figure(fig, out)


def plot_rewards(log: Sequence[dict[str, Any]], tasks: Sequence[str], out: str | Path, title: str = "rewards per meta-step") -> Path:
    """Per-task rewards of each meta-step of a run, one line per task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    r = np.asarray([e["rewards"] for e in log])
    x = np.arange(1, len(r) + 1)
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=120)
    for i, name in enumerate(tasks):
        ax.plot(x, r[:, i], marker="o", ms=3, label=text(name))
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("meta-step")
    ax.set_ylabel("reward")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    ax.set_title(text(title, 200))
    fig.tight_layout()
    return save_figure(fig, out)


def _first_rows(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The row of the lowest seed of each method, in first-appearance order."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        m = r["method"]
        if m not in out or int(r["seed"]) < int(out[m]["seed"]):
            out[m] = r
    return out


def mean_weights_by_method(rows: Sequence[dict[str, Any]]) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
    """Per method with schedules: ``(tasks, mean over seeds of the schedule's average weights)``."""
    acc: dict[str, list[np.ndarray]] = {}
    tasks: dict[str, tuple[str, ...]] = {}
    for r in rows:
        d = r.get("schedule")
        if not isinstance(d, dict):
            continue
        s = Schedule.from_dict(d, f"{r['method']}-seed{r['seed']}")
        acc.setdefault(r["method"], []).append(s.mean_weights())
        tasks.setdefault(r["method"], s.tasks)
    return {m: (tasks[m], np.mean(ws, axis=0)) for m, ws in acc.items()}


def plot_weights(rows: Sequence[dict[str, Any]], out: str | Path, title: str = "average task weights per method") -> Path | None:
    """Grouped bars: each method's average sampling weight per task (mean over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mw = mean_weights_by_method(rows)
    if not mw:
        return None
    methods = list(mw)
    tasks = mw[methods[0]][0]
    w = np.asarray([Schedule(mw[m][0], mw[m][1][None, :]).restrict_to(tasks, allow_missing=True).weights[0] for m in methods])
    x = np.arange(len(methods))
    width = 0.8 / len(tasks)
    fig, ax = plt.subplots(figsize=(max(6.4, 0.55 * len(methods) + 2), 3.8), dpi=120)
    for i, t in enumerate(tasks):
        ax.bar(x + (i - (len(tasks) - 1) / 2) * width, w[:, i], width, label=text(t))
    ax.set_xticks(x)
    ax.set_xticklabels([text(m) for m in methods], rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("average sampling weight")
    ax.set_ylim(0, 1)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    ax.set_title(text(title, 200))
    return save_figure(fig, Path(out))


def plot_reward_split(rows: Sequence[dict[str, Any]], out: str | Path, key: str = "reward_split_accuracy",
                      title: str = "target reward-split accuracy during the run (first seed)") -> Path | None:
    """The target's reward-split metric after each meta-step, one line per method with a log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = []
    firsts = _first_rows(rows)
    for m, r in firsts.items():
        if _has_plotted_online(m, list(firsts)):  # a replay row carries its online run's log
            continue
        last_round = max((int(x.get("round", 0)) for x in r.get("log") or []), default=0)
        log = [e for e in (r.get("log") or []) if key in e and int(e.get("round", 0)) == last_round]
        if log:
            series.append((m, [int(e["step"]) for e in log], [float(e[key]) for e in log]))
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=120)
    for m, x, y in series:
        ax.plot(x, y, marker="o", ms=3, label=text(m))
    ax.set_xlabel("training step")
    ax.set_ylabel(key.replace("_", " "))
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=7)
    ax.set_title(text(title, 200))
    return save_figure(fig, Path(out))


def plot_headline(summary: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]], out: str | Path,
                  metric: str = "accuracy", title: str | None = None) -> Path | None:
    """The headline figure: each method's mean with its 95% interval, and one dot per seed.

    Methods in ``summary`` order (best mean first); the best baseline's mean is
    drawn as a dashed line.  Per-seed dots are jittered horizontally, so
    overlapping seeds stay visible.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not summary:
        return None
    methods = [s["method"] for s in summary]
    per_seed: dict[str, list[float]] = {m: [] for m in methods}
    for r in rows:
        if r["method"] in per_seed:
            per_seed[r["method"]].append(float(r["test"]))
    y = np.arange(len(methods))[::-1]
    fig, ax = plt.subplots(figsize=(6.8, max(2.4, 0.42 * len(methods) + 1.2)), dpi=120)
    rng = np.random.default_rng(0)
    for yi, s in zip(y, summary):
        pts = per_seed[s["method"]]
        ax.scatter(pts, yi + rng.uniform(-0.12, 0.12, size=len(pts)), s=12, color="0.55", zorder=2,
                   label="per seed" if yi == y[0] else None)
        lo, hi = s.get("ci_low", s["mean"]), s.get("ci_high", s["mean"])
        color = "C3" if s.get("best_baseline") else ("C0" if s.get("kind") == "learned" else "C2")
        ax.errorbar([s["mean"]], [yi], xerr=[[s["mean"] - lo], [hi - s["mean"]]], fmt="o", ms=6, color=color,
                    capsize=3, zorder=3, label="mean, 95% t interval" if yi == y[0] else None)
    best = next((s for s in summary if s.get("best_baseline")), None)
    if best is not None:
        ax.axvline(best["mean"], color="C3", ls="--", lw=0.8, label=f"best baseline ({best['method']})")
    ax.set_yticks(y)
    ax.set_yticklabels(methods, fontsize=8)
    ax.set_xlabel(f"test {metric}")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="best", fontsize=7)
    ax.set_title(title or f"test {metric} per method (n = {summary[0].get('n', '?')} seeds)")
    return save_figure(fig, Path(out))


# ------------------------------------------------------------------- report


def _safe_name(method: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in method)


def _has_plotted_online(method: str, methods: Sequence[str]) -> bool:
    return method.endswith("-replay") and method[: -len("-replay")] in methods


def report_plots(out_dir: str | Path, rows: Sequence[dict[str, Any]]) -> list[tuple[str, str, Path]]:
    """Write the report's PNGs under ``out_dir/plots``; return ``(section, caption, path)`` triples.

    * ``schedule-<method>.png`` for every learned, adaptive and oracle method
      (its lowest seed): a search's policy after each update (learned), the
      weights used in each meta-step (adaptive, online), the replayed average
      (adaptive ``-replay``, only when the online method is absent), or the
      chosen static mixture (oracle);
    * ``rewards-<method>.png``: the per-task rewards of each meta-step, for
      every method whose log has them;
    * ``weights.png``: every method's average weights per task;
    * ``reward_split.png``: the target's reward-split accuracy along each run.
    """
    plots = Path(out_dir) / "plots"
    firsts = _first_rows(rows)
    methods = list(firsts)
    out: list[tuple[str, str, Path]] = []
    for m, r in firsts.items():
        if method_kind(m) not in ("learned", "adaptive", "adaptive-replay", "oracle") or not r.get("schedule"):
            continue
        if _has_plotted_online(m, methods):
            continue
        sched = Schedule.from_dict(r["schedule"], m)
        log = r.get("log") or None
        use_log = log if method_kind(m) == "learned" and log and all("probs_after" in e for e in log) else None
        p = plot_schedule(sched, plots / f"schedule-{_safe_name(m)}.png", title=f"{m} (seed {r['seed']})", log=use_log)
        out.append(("schedules", f"{m}: task weights per meta-step (seed {r['seed']})", p))
    for m, r in firsts.items():
        log = r.get("log") or []
        if not log or _has_plotted_online(m, methods) or not all(isinstance(e.get("rewards"), list) for e in log):
            continue
        tasks = Schedule.from_dict(r["schedule"], m).tasks if r.get("schedule") else [str(i) for i in range(len(log[0]["rewards"]))]
        p = plot_rewards(log, tasks, plots / f"rewards-{_safe_name(m)}.png", title=f"{m}: rewards per meta-step (seed {r['seed']})")
        out.append(("rewards", f"{m}: per-task reward of each meta-step (seed {r['seed']})", p))
    w = plot_weights(rows, plots / "weights.png")
    if w is not None:
        out.append(("weights", "average task weights per method (mean over seeds)", w))
    q = plot_reward_split(rows, plots / "reward_split.png")
    if q is not None:
        out.append(("rewards", "target reward-split accuracy along each run (first seed)", q))
    return out
