"""Report: statistics over paired seeds, tables, plots and the comparison report.

* per method: mean, std, standard error, 95% bootstrap confidence interval;
* paired difference to the best baseline (same seeds), with its standard
  error and 95% bootstrap interval, and a mark where the interval covers 0
  (the difference is within noise);
* cost: training steps, evaluations and wall time per run and in total, and
  their ratio to one plain training run (the ``uniform`` rows);
* plots: a schedule's task weights over meta-steps (the paper's Figure 1),
  the per-meta-step rewards of a search or an online run, every method's
  average weights, the target's reward-split accuracy along each run;
* :func:`write_report`: ``report.md`` and a self-contained ``report.html``
  (images embedded as base64 data URIs), the PNGs under ``plots/`` and every
  run's per-meta-step log as JSON lines and CSV under ``logs/``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .schedule import Schedule

BASELINES = ("single_task", "uniform", "proportional")
ADAPTIVE = ("exp3", "thompson", "gradient_alignment")


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


def method_kind(method: str) -> str:
    """``baseline`` (rule-based), ``learned``, ``adaptive`` (online), ``adaptive-replay``, ``oracle`` or ``other``."""
    if method in BASELINES or method.startswith("temperature") or method == "examples_proportional":
        return "baseline"
    if method.startswith("learned"):
        return "learned"
    if method == "oracle":
        return "oracle"
    if method.endswith("-replay"):
        return "adaptive-replay"
    if method in ADAPTIVE:
        return "adaptive"
    return "other"


def _median(values: Sequence[float]) -> float | None:
    v = [float(x) for x in values if x is not None]
    return float(np.median(v)) if v else None


def summarize(rows: Sequence[dict[str, Any]], plain_seconds: float | None = None, plain_steps: int | None = None) -> list[dict[str, Any]]:
    """One summary per method: statistics, paired difference to the best baseline, cost.

    Statistics of the per-seed ``test`` values: ``n``, ``mean``, ``std``
    (``ddof=1``), ``sem``, and the 95% percentile-bootstrap interval of the mean
    (``ci_low``, ``ci_high``).  The *best baseline* is the rule-based method
    (``single_task``, ``uniform``, ``proportional``, ``temperature_*``,
    ``examples_proportional``) with the highest mean; every other method gets
    the paired difference ``d_s = test(method, s) - test(best, s)`` over the
    seeds both have (``diff_mean``, ``diff_sem``, ``diff_ci_low``,
    ``diff_ci_high``) and ``within_noise = diff_ci_low <= 0 <= diff_ci_high``.

    Cost per run (median over seeds): ``train_steps`` (every optimiser step,
    searches / online runs / probes / replays included), ``evaluations`` and
    ``seconds``; their totals over seeds (``total_train_steps``,
    ``total_evaluations``, ``total_seconds``); and their ratios to one plain
    training run (``step_ratio``, ``eval_ratio``, ``cost_ratio``).  A plain run
    is ``plain_steps`` steps, one evaluation and ``plain_seconds`` seconds;
    when not given they are the medians of the ``uniform`` rows (if any).
    """
    groups = by_method(rows)
    uniform = list(groups.get("uniform", {}).values())
    if plain_seconds is None:
        plain_seconds = _median([r.get("seconds") for r in uniform])
    if plain_steps is None:
        plain_steps = _median([r.get("train_steps") for r in uniform])  # type: ignore[assignment]
    plain_evals = _median([r.get("evaluations") for r in uniform]) or 1.0
    stats = {m: describe([r["test"] for r in g.values()]) for m, g in groups.items()}
    baselines = [m for m in groups if method_kind(m) == "baseline"]
    best_base = max(baselines, key=lambda m: stats[m]["mean"]) if baselines else None
    out = []
    for m, g in groups.items():
        s = dict(stats[m])
        s["method"] = m
        s["kind"] = method_kind(m)
        secs = [float(r["seconds"]) for r in g.values()]
        steps = [float(r.get("train_steps", 0) or 0) for r in g.values()]
        evals = [float(r.get("evaluations", 0) or 0) for r in g.values()]
        s["seconds"] = float(np.median(secs))
        s["train_steps"] = float(np.median(steps))
        s["evaluations"] = float(np.median(evals))
        s["total_seconds"] = float(np.sum(secs))
        s["total_train_steps"] = float(np.sum(steps))
        s["total_evaluations"] = float(np.sum(evals))
        if plain_seconds:
            s["cost_ratio"] = s["seconds"] / plain_seconds
        if plain_steps:
            s["step_ratio"] = s["train_steps"] / plain_steps
        s["eval_ratio"] = s["evaluations"] / plain_evals
        s["best_baseline"] = m == best_base
        if best_base is not None and m != best_base:
            d = paired(g, groups[best_base])
            if len(d):
                dd = describe(d)
                s["vs"] = best_base
                s["diff_n"] = int(len(d))
                s["diff_mean"] = dd["mean"]
                s["diff_sem"] = dd["sem"]
                s["diff_ci_low"] = dd["ci_low"]
                s["diff_ci_high"] = dd["ci_high"]
                s["within_noise"] = bool(dd["ci_low"] <= 0.0 <= dd["ci_high"])
        out.append(s)
    out.sort(key=lambda s: -s["mean"])
    return out


def _diff_cell(s: dict[str, Any]) -> str:
    if "diff_mean" not in s:
        return "(best baseline)" if s.get("best_baseline") else ""
    mark = " ≈" if s["within_noise"] else ""
    return f"{s['diff_mean']:+.4f} [{s['diff_ci_low']:+.4f}, {s['diff_ci_high']:+.4f}]{mark}"


def _ratio(s: dict[str, Any], key: str) -> str:
    return f"{s[key]:.2f}" if key in s and s[key] is not None and math.isfinite(s[key]) else ""


def table_cells(summary: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the results table (shared by :func:`format_table` and the reports)."""
    head = ["method", "mean ± std", "95% CI", "Δ vs best baseline (95% CI)", "train steps", "steps × plain",
            "evaluations", "seconds", "time × plain"]
    cells = []
    for s in summary:
        cells.append([
            s["method"],
            f"{s['mean']:.4f} ± {s['std']:.4f}",
            f"[{s['ci_low']:.4f}, {s['ci_high']:.4f}]",
            _diff_cell(s),
            f"{s.get('train_steps', 0):.0f}",
            _ratio(s, "step_ratio"),
            f"{s.get('evaluations', 0):.0f}",
            f"{s['seconds']:.2f}",
            _ratio(s, "cost_ratio"),
        ])
    return head, cells


def format_table(summary: Sequence[dict[str, Any]], metric: str = "test") -> str:
    """A plain-text (Markdown) table: mean ± std, 95% CI, paired difference, cost."""
    head, cells = table_cells(summary)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(c) + " |" for c in cells]
    lines.append("")
    vs = next((s["vs"] for s in summary if "vs" in s), None)
    lines.append(
        f"n = {summary[0]['n'] if summary else 0} paired seeds; Δ is paired, against the best baseline"
        + (f" ({vs})" if vs else "")
        + "; ≈ marks a difference whose 95% bootstrap CI covers 0 (within noise). "
        "Cost per run (median over seeds); × plain: ratio to one plain training run (the uniform rows)."
    )
    return "\n".join(lines)


# ------------------------------------------------------------------- plots



def _save(fig: Any, out: Path) -> Path:
    """Write a figure atomically (temporary file, then rename) and close it."""
    import matplotlib.pyplot as plt

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    try:
        fig.tight_layout()
        fig.savefig(tmp)
    finally:
        plt.close(fig)
    tmp.replace(out)
    return out

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
    return _save(fig, out)


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
    return _save(fig, out)


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
    w = np.asarray([Schedule(mw[m][0], mw[m][1][None, :]).restrict_to(tasks).weights[0] for m in methods])
    x = np.arange(len(methods))
    width = 0.8 / len(tasks)
    fig, ax = plt.subplots(figsize=(max(6.4, 0.55 * len(methods) + 2), 3.8), dpi=120)
    for i, t in enumerate(tasks):
        ax.bar(x + (i - (len(tasks) - 1) / 2) * width, w[:, i], width, label=t)
    ax.set_xticks(x)
    ax.set_xticklabels(methods, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("average sampling weight")
    ax.set_ylim(0, 1)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    ax.set_title(title)
    return _save(fig, Path(out))


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
        ax.plot(x, y, marker="o", ms=3, label=m)
    ax.set_xlabel("training step")
    ax.set_ylabel(key.replace("_", " "))
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=7)
    ax.set_title(title)
    return _save(fig, Path(out))


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
    p = plot_weights(rows, plots / "weights.png")
    if p is not None:
        out.append(("weights", "average task weights per method (mean over seeds)", p))
    p = plot_reward_split(rows, plots / "reward_split.png")
    if p is not None:
        out.append(("rewards", "target reward-split accuracy along each run (first seed)", p))
    return out


def write_logs(out_dir: str | Path, rows: Sequence[dict[str, Any]], tensorboard: bool = True) -> list[Path]:
    """Each row's per-meta-step log as ``logs/<method>-seed<s>.jsonl`` and ``.csv`` (and TensorBoard events).

    Uses :class:`taskmix.runlog.RunLogger` (the same flattening as ``taskmix
    search``: ``weight/<task>``, ``reward/<task>``, ``realised/<task>``, ...);
    with ``tensorboard`` (and the package installed) the events go to
    ``logs/tb/<method>-seed<s>`` -- ``tensorboard --logdir DIR/logs/tb``
    overlays every run.  Rewriting replaces a tag's earlier events.
    """
    from .runlog import RunLogger

    written = []
    for r in rows:
        log = r.get("log") or []
        if not log:
            continue
        if r.get("schedule"):
            tasks: Sequence[str] = Schedule.from_dict(r["schedule"], r["method"]).tasks
        else:
            n = max(len(e.get("probs_after") or e.get("rewards") or []) for e in log)
            tasks = [str(i) for i in range(n)]
        tag = f"{r['method']}-seed{r['seed']}"
        tb_dir = Path(out_dir) / "logs" / "tb" / tag
        if tensorboard and tb_dir.is_dir():  # a rewritten report (--resume) must not duplicate the scalars
            for old in tb_dir.glob("events.out.tfevents.*"):
                old.unlink()
        logger = RunLogger(Path(out_dir) / "logs", tasks, tensorboard=tensorboard, prefix=tag)
        logger.extend(log)
        logger.close()
        written.append(Path(out_dir) / "logs" / f"{tag}.csv")
    return written


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.{digits}f}" if math.isfinite(v) else ""
    return str(v)


def cost_cells(summary: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the cost table (per run and in total, with ratios to a plain run)."""
    head = ["method", "kind", "train steps / run", "× plain", "evaluations / run", "× plain", "seconds / run",
            "× plain", "total steps", "total evaluations", "total seconds"]
    cells = []
    for s in sorted(summary, key=lambda s: (s.get("cost_ratio") or 0.0, s["method"])):
        cells.append([
            s["method"], s.get("kind", method_kind(s["method"])), f"{s.get('train_steps', 0):.0f}", _ratio(s, "step_ratio"),
            f"{s.get('evaluations', 0):.0f}", _ratio(s, "eval_ratio"), f"{s['seconds']:.2f}", _ratio(s, "cost_ratio"),
            f"{s.get('total_train_steps', 0):.0f}", f"{s.get('total_evaluations', 0):.0f}", f"{s.get('total_seconds', 0):.1f}",
        ])
    return head, cells


def _md_table(head: Sequence[str], cells: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
    return "\n".join(lines)


def _html_table(head: Sequence[str], cells: Sequence[Sequence[str]], highlight: Sequence[bool] | None = None) -> str:
    import html

    out = ["<table>", "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr></thead>", "<tbody>"]
    for i, row in enumerate(cells):
        cls = ' class="hl"' if highlight is not None and highlight[i] else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _notes(results: dict[str, Any], summary: Sequence[dict[str, Any]]) -> list[str]:
    notes = []
    n = summary[0]["n"] if summary else 0
    vs = next((s["vs"] for s in summary if "vs" in s), None)
    notes.append(
        f"{n} paired seeds: every method of a seed shares the reward split, the initialisation and the sampler seed. "
        "mean ± std over seeds; 95% CI: percentile bootstrap of the mean (2000 resamples)."
    )
    if vs:
        notes.append(
            f"Δ: paired difference to the best baseline ({vs}), its mean and 95% bootstrap CI over seeds; "
            "≈ marks a difference whose CI covers 0 (within noise). With few seeds the bootstrap CI is optimistic."
        )
    plain = results.get("plain_run_seconds")
    notes.append(
        "Cost: median per run over seeds. train steps count every optimiser step (searches, online runs, "
        "probe steps, replays, oracle grid points); evaluations count reward-split evaluations / reward "
        "computations plus the final one; × plain = ratio to one plain training run "
        f"(the uniform rows: {plain:.2f} s)." if isinstance(plain, (int, float)) else
        "Cost: median per run over seeds; no uniform rows, so no wall-time ratio to a plain run."
    )
    oracle = next((s for s in summary if s["method"] == "oracle"), None)
    if oracle is not None:
        notes.append(
            f"oracle: grid search over static mixtures, selected on the reward split -- an upper reference, at "
            f"{_ratio(oracle, 'step_ratio') or '?'}× the training steps and {_ratio(oracle, 'cost_ratio') or '?'}× "
            "the wall time of a plain run."
        )
    if any(s.get("kind") == "adaptive-replay" for s in summary):
        notes.append(
            "<name>: the online adaptive run's own final model; <name>-replay: a fresh model retrained with the "
            "online run's average weights as a static schedule (cost = online run + replay)."
        )
    return notes


def write_report(out_dir: str | Path, results: dict[str, Any], rows: Sequence[dict[str, Any]],
                 tensorboard: bool = True) -> dict[str, Path]:
    """Write ``report.md``, a self-contained ``report.html``, ``plots/*.png`` and per-row logs.

    Args:
        out_dir: the comparison's directory.
        results: the ``results.json`` object of :func:`taskmix.compare.run_compare`
            (``summary``, ``target``, ``metric``, ``report_split``, ``seeds``,
            ``plain_run_seconds``); a missing ``summary`` is computed from ``rows``.
        rows: the full result rows (with ``schedule`` dicts and ``log`` lists).
        tensorboard: also write TensorBoard events of every row's log (when
            the ``tensorboard`` package is installed; about 30 ms a run).

    The Markdown file links the PNGs under ``plots/``; the HTML file embeds
    them as base64 data URIs, so it can be mailed or archived alone.
    """
    import base64
    import html

    from .errors import atomic_write_text

    out = Path(out_dir)
    summary = results.get("summary") or summarize(rows)
    target = results.get("target", "target")
    metric = results.get("metric", "metric")
    split = results.get("report_split", "test")
    title = f"taskmix comparison: {target} ({metric} on {split})"
    head, cells = table_cells(summary)
    chead, ccells = cost_cells(summary)
    notes = _notes(results, summary)
    plots = report_plots(out, rows)
    logs = write_logs(out, rows, tensorboard=tensorboard)

    sections = [("schedules", "Schedules"), ("weights", "Average task weights"), ("rewards", "Rewards per meta-step")]
    md = [f"# {title}", ""]
    if results.get("seeds") is not None:
        md.append(f"Seeds: {results['seeds']}.  Rows: {len(rows)}.")
        md.append("")
    md += ["## Results", "", _md_table(head, cells), ""]
    md += [f"- {n}" for n in notes]
    md += ["", "## Cost", "", _md_table(chead, ccells), ""]
    for key, name in sections:
        items = [p for p in plots if p[0] == key]
        if not items:
            continue
        md += [f"## {name}", ""]
        for _, caption, path in items:
            md += [f"![{caption}]({path.relative_to(out).as_posix()})", "", f"*{caption}*", ""]
    if logs:
        md += ["## Logs", "", f"Per-meta-step logs of {len(logs)} runs: `logs/<method>-seed<s>.jsonl` and `.csv`"
               + ("; TensorBoard: `tensorboard --logdir logs/tb`." if (out / "logs" / "tb").is_dir() else "."), ""]
    md_path = out / "report.md"
    atomic_write_text(md_path, "\n".join(md) + "\n")

    hl = [bool(s.get("best_baseline")) for s in summary]
    body = [f"<h1>{html.escape(title)}</h1>"]
    if results.get("seeds") is not None:
        body.append(f"<p>Seeds: {html.escape(str(results['seeds']))}. Rows: {len(rows)}.</p>")
    body += ["<h2>Results</h2>", _html_table(head, cells, hl), "<ul>"]
    body += [f"<li>{html.escape(n)}</li>" for n in notes]
    body += ["</ul>", "<h2>Cost</h2>", _html_table(chead, ccells)]
    for key, name in sections:
        items = [p for p in plots if p[0] == key]
        if not items:
            continue
        body.append(f"<h2>{html.escape(name)}</h2>")
        for _, caption, path in items:
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            body.append(
                f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
    if logs:
        body.append(f"<p>Per-meta-step logs of {len(logs)} runs: <code>logs/&lt;method&gt;-seed&lt;s&gt;.jsonl</code> and <code>.csv</code>.</p>")
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}"
        "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}"
        "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}tr.hl{background:#eef6ff}"
        "figure{margin:1em 0}img{max-width:100%}figcaption{font-size:0.85em;color:#555}"
    )
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{style}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
    html_path = out / "report.html"
    atomic_write_text(html_path, page)
    return {"markdown": md_path, "html": html_path, **{f"plot:{p.name}": p for _, _, p in plots}}
