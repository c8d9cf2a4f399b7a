"""Plots: a schedule's weights over meta-steps (the paper's Figure 1), rewards, average weights, reward-split curves.

Every figure is written atomically through :func:`save_figure`.  Meta-step axes carry integer ticks only
(:func:`integer_ticks`); an axis of a metric stays within the metric's range (:func:`metric_limits`); lines
that coincide stay visible (:func:`line_style`, and a legend entry "identical to ..." from :func:`coinciding`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..data.tasks import metric_label
from ..errors import OutputError
from ..files import atomic_write_bytes
from ..schedule import Schedule
from .stats import FEW_SEEDS, FEW_SEEDS_MARK, clip_interval, method_kind, metric_range

__all__ = ["coinciding", "integer_ticks", "line_style", "metric_limits", "plot_headline", "plot_reward_split", "plot_rewards",
           "plot_schedule", "plot_weights", "report_plots", "save_figure", "set_title"]

LINE_STYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "x", "P", "*")


def line_style(i: int) -> dict[str, Any]:
    """Matplotlib keywords of the ``i``-th line of a plot: a distinct marker and dash pattern, slightly transparent,
    so that a line drawn exactly over another still shows."""
    return {"marker": MARKERS[i % len(MARKERS)], "ms": 4, "ls": LINE_STYLES[i % len(LINE_STYLES)], "alpha": 0.8, "lw": 1.4}


def coinciding(series: Sequence[Any]) -> dict[int, int]:
    """``{i: j}`` for each series ``i`` equal (to 1e-12) to an earlier series ``j``, the first such; series are arrays
    (or ``(x, y)`` pairs) compared element-wise, of the same shape."""
    arrays = [np.asarray(v, dtype=np.float64) for v in series]
    out: dict[int, int] = {}
    for i, a in enumerate(arrays):
        for j in range(i):
            if j not in out and a.shape == arrays[j].shape and np.allclose(a, arrays[j], rtol=0, atol=1e-12, equal_nan=True):
                out[i] = j
                break
    return out


def integer_ticks(ax: Any, axis: str = "x") -> None:
    """Integer tick positions only on ``ax``'s ``axis`` ("x" or "y"): meta-steps and training steps have no halves."""
    from matplotlib.ticker import MaxNLocator

    (ax.xaxis if axis == "x" else ax.yaxis).set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))


def set_title(ax: Any, title: str) -> None:
    """``ax``'s title, in a smaller font when long (a shared plot names two methods), so that it fits the figure."""
    ax.set_title(title, fontsize=12 if len(title) <= 60 else 10 if len(title) <= 72 else 8.5)


def metric_limits(values: Sequence[float | None], bounds: tuple[float, float] | None, pad: float = 0.05) -> tuple[float, float] | None:
    """Axis limits around the finite ``values`` with a margin of ``pad`` of their span, kept within ``bounds`` (a
    metric's range, :func:`taskmix.compare.stats.metric_range`; None: not kept); None without a finite value."""
    v = np.asarray([float(x) for x in values if x is not None], dtype=np.float64)
    v = v[np.isfinite(v)]
    if not len(v):
        return None
    lo, hi = float(v.min()), float(v.max())
    width = (bounds[1] - bounds[0]) if bounds is not None else max(abs(lo), abs(hi), 1.0)
    margin = max((hi - lo) * pad, 0.01 * width)
    lo, hi = lo - margin, hi + margin
    if bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return lo, hi


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
    :func:`taskmix.files.atomic_write_bytes` (a temporary name unique to the
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
    same = coinciding([w[:, i] for i in range(len(schedule.tasks))])
    for i, name in enumerate(schedule.tasks):
        label = text(name)
        e = (effects or {}).get(name)
        if isinstance(e, dict) and "effect" in e:  # the task's estimated effect on the target, 95% interval
            label = f"{text(name)}: effect {e['effect']:+.3f} [{e['ci_low']:+.3f}, {e['ci_high']:+.3f}]"
        if i in same:
            label += f" (identical to {text(schedule.tasks[same[i]])})"
        ax.plot(x, w[:, i], label=label, **line_style(i))
    ax.set_xlabel("meta-step")
    ax.set_ylabel("sampling weight")
    ax.set_ylim(0, 1)
    integer_ticks(ax)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    set_title(ax, text(title or f"{schedule.provenance.get('method', 'schedule')}", 200))
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
    same = coinciding([r[:, i] for i in range(len(tasks))])
    for i, name in enumerate(tasks):
        label = text(name) + (f" (identical to {text(tasks[same[i]])})" if i in same else "")
        ax.plot(x, r[:, i], label=label, **line_style(i))
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("meta-step")
    integer_ticks(ax)
    ax.set_ylabel("reward")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    set_title(ax, text(title, 200))
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
    set_title(ax, text(title, 200))
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
    same = coinciding([(x, y) for _, x, y in series])
    for i, (m, x, y) in enumerate(series):
        label = text(m) + (f" (identical to {text(series[same[i]][0])})" if i in same else "")
        ax.plot(x, y, label=label, **line_style(i))
    ax.set_xlabel("training step")
    ax.set_ylabel(key.replace("_", " "))
    integer_ticks(ax)
    bounds = (0.0, 1.0) if ("accuracy" in key or "f1" in key) else None  # a loss has no upper bound
    lim = metric_limits([v for _, _, y in series for v in y], bounds)
    if lim is not None and bounds is not None:
        ax.set_ylim(*lim)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=7)
    set_title(ax, text(title, 200))
    return save_figure(fig, Path(out))


def plot_headline(summary: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]], out: str | Path,
                  metric: str = "accuracy", title: str | None = None) -> Path | None:
    """The headline figure: each method's mean with its 95% interval, and one dot per seed.

    Methods in ``summary`` order (best mean first); the best baseline's mean is
    drawn as a dashed line.  Per-seed dots are jittered horizontally, so
    overlapping seeds stay visible.  A method with one seed gets its mean alone (no interval), one with two a
    "†" after its name (a wide 1-degree-of-freedom interval); intervals and the axis stay within the metric's
    range (:func:`taskmix.compare.stats.metric_range`).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not summary:
        return None
    bounds = metric_range(metric)
    methods = [s["method"] for s in summary]
    per_seed: dict[str, list[float]] = {m: [] for m in methods}
    for r in rows:
        if r["method"] in per_seed:
            per_seed[r["method"]].append(float(r["test"]))
    y = np.arange(len(methods))[::-1]
    fig, ax = plt.subplots(figsize=(6.8, max(2.4, 0.42 * len(methods) + 1.2)), dpi=120)
    rng = np.random.default_rng(0)
    shown: list[float | None] = []
    labelled: set[str] = set()

    def once(label: str) -> str | None:
        if label in labelled:
            return None
        labelled.add(label)
        return label

    names = []
    for yi, s in zip(y, summary):
        pts = per_seed[s["method"]]
        if len(pts) > 1:  # one seed's value is the mean itself
            ax.scatter(pts, yi + rng.uniform(-0.12, 0.12, size=len(pts)), s=12, color="0.55", zorder=2, label=once("per seed"))
        n = int(s["n"]) if isinstance(s.get("n"), int) else len(pts)
        color = "C3" if s.get("best_baseline") else ("C0" if s.get("kind") == "learned" else "C2")
        lo, hi, _ = clip_interval(s.get("ci_low"), s.get("ci_high"), bounds)
        if n >= 2 and lo is not None and hi is not None:
            ax.errorbar([s["mean"]], [yi], xerr=[[max(0.0, s["mean"] - lo)], [max(0.0, hi - s["mean"])]], fmt="o", ms=6,
                        color=color, capsize=3, zorder=3, label=once("mean, 95% t interval"))
            shown += [lo, hi]
        else:  # one seed: the value, no interval
            ax.plot([s["mean"]], [yi], "o", ms=6, mfc="white", color=color, zorder=3, label=once("one seed: no interval"))
        shown += [s["mean"], *pts]
        names.append(s["method"] + (f" {FEW_SEEDS_MARK}" if 2 <= n < FEW_SEEDS else ""))
    best = next((s for s in summary if s.get("best_baseline")), None)
    if best is not None:
        ax.axvline(best["mean"], color="C3", ls="--", lw=0.8, label=f"best baseline ({text(best['method'])})")
    lim = metric_limits(shown, bounds)
    if lim is not None:
        ax.set_xlim(*lim)
    ax.set_yticks(y)
    ax.set_yticklabels([text(m) for m in names], fontsize=8)
    ax.set_xlabel(f"test {text(metric_label(metric))}")  # its name and direction: bits per byte (lower is better)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="best", fontsize=7)
    ns = [int(s["n"]) for s in summary if isinstance(s.get("n"), int)]
    note = ("; one seed: no intervals" if ns and max(ns) < 2 else
            f"; {FEW_SEEDS_MARK} fewer than {FEW_SEEDS} seeds: wide intervals" if any(2 <= k < FEW_SEEDS for k in ns) else "")
    ax.set_title(title or f"test {text(metric)} per method (n = {summary[0].get('n', '?')} seed{'' if summary[0].get('n') == 1 else 's'}{note})", fontsize=10)
    return save_figure(fig, Path(out))


# ------------------------------------------------------------------- report


def _safe_name(method: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in method)


def _has_plotted_online(method: str, methods: Sequence[str]) -> bool:
    return method.endswith("-replay") and method[: -len("-replay")] in methods


LEARNED_PAIR = ("learned_time_invariant", "learned_time_variant")
"""The two learned schedules whose plots coincide when one time-variant search serves both (``schedule_plots_identical``)."""


def _grouped(items: Sequence[tuple[str, dict[str, Any], Any, np.ndarray]], force: Sequence[str] = ()) -> list[list[int]]:
    """Indices of ``(method, row, tasks, data)`` items grouped where the plots of the two learned schedules
    (:data:`LEARNED_PAIR`) would be the same: same seed, tasks and data (to 1e-12), or whatever their data when
    both are in ``force`` (results.json says they coincide).  Every other method keeps its own plot."""
    groups: list[list[int]] = []
    for i, (m, r, tasks, data) in enumerate(items):
        for g in groups:
            m0, r0, tasks0, data0 = items[g[0]]
            if m not in LEARNED_PAIR or m0 not in LEARNED_PAIR:
                continue
            forced = m in force and m0 in force
            if int(r["seed"]) == int(r0["seed"]) and tuple(tasks) == tuple(tasks0) and (forced or coinciding([data0, data]) == {1: 0}):
                g.append(i)
                break
        else:
            groups.append([i])
    return groups


def report_plots(out_dir: str | Path, rows: Sequence[dict[str, Any]], identical: bool | None = None) -> list[tuple[str, str, Path]]:
    """Write the report's PNGs under ``out_dir/plots``; return ``(section, caption, path)`` triples.

    * ``schedule-<method>.png`` for every learned, online-strategy and oracle method
      (its lowest seed): a search's policy after each update (learned), the
      weights used in each meta-step (an online strategy, kind ``adaptive``), the replayed average
      (its ``-replay``, only when the online method is absent), or the
      chosen static mixture (oracle);
    * ``rewards-<method>.png``: the per-task rewards of each meta-step, for
      every method whose log has them;
    * ``weights.png``: every method's average weights per task;
    * ``reward_split.png``: the target's reward-split accuracy along each run.

    The two learned schedules share one schedule plot (and one reward plot), named after the first, titled and
    captioned for both, when their plots would be identical (one time-variant search serves both) or
    ``identical`` (results.json's ``schedule_plots_identical``) says so.
    """
    plots = Path(out_dir) / "plots"
    firsts = _first_rows(rows)
    methods = list(firsts)
    out: list[tuple[str, str, Path]] = []
    force = LEARNED_PAIR if identical else ()

    def names(group: Sequence[str]) -> str:
        return group[0] if len(group) == 1 else ", ".join(group[:-1]) + " and " + group[-1]

    def both(group: Sequence[str], what: str) -> str:
        return "" if len(group) < 2 else f"; one plot stands for {'both' if len(group) == 2 else 'all'}: their {what} are identical"

    def drop_stale(prefix: str, group: Sequence[str]) -> None:
        for m in group[1:]:  # an earlier report (--resume) may have drawn them apart
            (plots / f"{prefix}-{_safe_name(m)}.png").unlink(missing_ok=True)

    scheds: list[tuple[str, dict[str, Any], Any, np.ndarray]] = []
    logs: dict[str, Any] = {}
    for m, r in firsts.items():
        if method_kind(m) not in ("learned", "adaptive", "adaptive-replay", "oracle") or not r.get("schedule"):
            continue
        if _has_plotted_online(m, methods):
            continue
        sched = Schedule.from_dict(r["schedule"], m)
        log = r.get("log") or None
        use_log = log if method_kind(m) == "learned" and log and all("probs_after" in e for e in log) else None
        logs[m] = (sched, use_log)
        data = np.asarray([e["probs_after"] for e in use_log], dtype=np.float64) if use_log else np.asarray(sched.weights)
        scheds.append((m, r, sched.tasks, data))
    for g in _grouped(scheds, force):
        group = [scheds[i][0] for i in g]
        m, r = group[0], scheds[g[0]][1]
        sched, use_log = logs[m]
        p = plot_schedule(sched, plots / f"schedule-{_safe_name(m)}.png", title=f"{' = '.join(group)} (seed {r['seed']})", log=use_log)
        drop_stale("schedule", group)
        out.append(("schedules", f"{names(group)}: task weights per meta-step (seed {r['seed']}){both(group, 'weights')}", p))
    rewards: list[tuple[str, dict[str, Any], Any, np.ndarray]] = []
    for m, r in firsts.items():
        log = r.get("log") or []
        if not log or _has_plotted_online(m, methods) or not all(isinstance(e.get("rewards"), list) for e in log):
            continue
        tasks = Schedule.from_dict(r["schedule"], m).tasks if r.get("schedule") else [str(i) for i in range(len(log[0]["rewards"]))]
        rewards.append((m, r, tasks, np.asarray([e["rewards"] for e in log], dtype=np.float64)))
    for g in _grouped(rewards):
        group = [rewards[i][0] for i in g]
        m, r, tasks, _ = rewards[g[0]]
        p = plot_rewards(r.get("log") or [], tasks, plots / f"rewards-{_safe_name(m)}.png",
                         title=f"{' = '.join(group)}: rewards per meta-step (seed {r['seed']})")
        drop_stale("rewards", group)
        out.append(("rewards", f"{names(group)}: per-task reward of each meta-step (seed {r['seed']}){both(group, 'rewards')}", p))
    w = plot_weights(rows, plots / "weights.png")
    if w is not None:
        out.append(("weights", "average task weights per method (mean over seeds)", w))
    q = plot_reward_split(rows, plots / "reward_split.png")
    if q is not None:
        out.append(("rewards", "target reward-split accuracy along each run (first seed)", q))
    return out
