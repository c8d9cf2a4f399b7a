"""The comparison report: ``report.md`` and a self-contained ``report.html``, plots under ``plots/``, logs under ``logs/``.

Images are embedded in the HTML as base64 data URIs; every run's
per-meta-step log is written as JSON lines and CSV (and TensorBoard events).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..data.tasks import metric_label
from ..files import atomic_write_text
from ..runs.runlog import RunLogger, clear_events, write_hparams
from ..schedule import Schedule
from .budget import EQUAL_COMPUTE_NOTE, equal_compute, equal_compute_cells
from .plots import plot_headline, report_plots
from .stats import FEW_SEEDS, interval_notes, method_kind, ratio_cell, summarize, table_cells

__all__ = ["per_seed_cells", "provenance_lines", "write_logs", "write_report"]

_NUMERIC = re.compile(r"^[\[(]?[+\-−]?(\d|\.\d)")


def write_logs(out_dir: str | Path, rows: Sequence[dict[str, Any]], tensorboard: bool = True,
               metric: str = "accuracy") -> list[Path]:
    """Each row's per-meta-step log as ``logs/<method>-seed<s>.jsonl`` and ``.csv`` (and TensorBoard events).

    Uses :class:`taskmix.runs.runlog.RunLogger` (the same flattening as ``taskmix
    search``: ``weight/<task>``, ``reward/<task>``, ``realised/<task>``, ...);
    with ``tensorboard`` (and the package installed) the events go to
    ``logs/tb/<method>-seed<s>`` -- ``tensorboard --logdir DIR/logs/tb``
    overlays every run.  Every row, baselines included, also gets TensorBoard
    hparams there (method, kind, seed; ``final/test_<metric>``,
    ``final/seconds``, ``final/train_steps``), so the HParams dashboard
    compares all methods.  Rewriting replaces a run's earlier events.
    """
    written = []
    for r in rows:
        log = r.get("log") or []
        tag = f"{r['method']}-seed{r['seed']}"
        tb_dir = Path(out_dir) / "logs" / "tb" / tag
        hp = {"method": r["method"], "kind": method_kind(r["method"]), "seed": int(r["seed"])}
        final = {f"final/test_{metric}": float(r["test"]), "final/seconds": float(r.get("seconds") or 0.0),
                 "final/train_steps": float(r.get("train_steps") or 0)}
        if tensorboard:
            clear_events(tb_dir)  # a rewritten report (--resume) must not duplicate the scalars
        if not log:
            if tensorboard:
                write_hparams(tb_dir, hp, final)
            continue
        if r.get("schedule"):
            tasks: Sequence[str] = Schedule.from_dict(r["schedule"], r["method"]).tasks
        else:
            n = max(len(e.get("probs_after") or e.get("rewards") or []) for e in log)
            tasks = [str(i) for i in range(n)]
        logger = RunLogger(Path(out_dir) / "logs", tasks, tensorboard=tensorboard, prefix=tag)
        logger.extend(log)
        logger.hparams(hp, final)
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
            s["method"], s.get("kind", method_kind(s["method"])), f"{s.get('train_steps', 0):.0f}", ratio_cell(s, "step_ratio"),
            f"{s.get('evaluations', 0):.0f}", ratio_cell(s, "eval_ratio"), f"{s['seconds']:.2f}", ratio_cell(s, "cost_ratio"),
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
        # numeric cells (numbers, intervals, signed differences) never wrap
        out.append(f"<tr{cls}>" + "".join(
            f'<td class="num">{html.escape(c)}</td>' if _NUMERIC.match(c) else f"<td>{html.escape(c)}</td>" for c in row
        ) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


EFFECTS_NOTE = (
    "Effect: the learned search's per-task credit, averaged over its meta-steps (gradient_alignment: the first-order "
    "drop of the target's reward-split loss per unit step on the task, relative to a step on the reward split itself; "
    "> 0 helps, < 0 hurts), with a 95% interval that counts the reward split's own sampling noise; a scalar reward "
    "(accuracy, loss) gives no per-task effect."
)


def _notes(results: dict[str, Any], summary: Sequence[dict[str, Any]]) -> list[str]:
    notes = []
    n = summary[0]["n"] if summary else 0
    vs = next((s["vs"] for s in summary if "vs" in s), None)
    notes.append(
        f"{n} paired seed{'' if n == 1 else 's'}: every method of a seed shares the reward split, the initialisation and the sampler seed. "
        "mean ± std over seeds; 95% CI: Student t interval of the mean (t with n - 1 degrees of freedom; "
        "with this few seeds a percentile bootstrap would be too narrow)."
    )
    notes += interval_notes(summary)  # one seed: no intervals; two: marked; clipped to the metric's range
    if vs:
        notes.append(
            f"Δ: paired difference to the best baseline ({vs}) over the shared seeds: its mean, 95% paired t "
            "interval and the paired t-test's two-sided p value; ≈ marks a difference whose interval covers 0 "
            "(p ≥ 0.05: within noise). The best baseline is the one with the highest mean on this same split, "
            "which flatters it when baselines are within noise of each other (part of its lead is the pick); "
            "to compare without that, pick the baseline on rows you do not report on."
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
            f"{ratio_cell(oracle, 'step_ratio') or '?'}× the training steps and {ratio_cell(oracle, 'cost_ratio') or '?'}× "
            "the wall time of a plain run."
        )
    if results.get("schedule_plots_identical"):
        notes.append(
            "schedule.png and schedule_time_variant.png are identical (so the Schedules section shows one plot for "
            "learned_time_invariant and learned_time_variant): with search.time_variant_init: "
            f"{results.get('time_variant_init', 'previous')} each meta-step of the time-variant search starts from the "
            "previous meta-step's logits, so with the same seed it draws the same tasks, gets the same rewards and "
            "follows the same policy trajectory as the time-invariant search. The schedules differ in what is "
            "replayed: the time-invariant one keeps only the final weights, the time-variant one every meta-step's."
        )
    if any(s.get("kind") == "adaptive-replay" for s in summary):
        notes.append(
            "<name>: the online strategy's run, its own final model; <name>-replay: a fresh model retrained with the "
            "online run's average weights as a static schedule (cost = online run + replay)."
        )
    return notes


def _headline_caption(summary: Sequence[dict[str, Any]], metric: str) -> str:
    ns = [s["n"] for s in summary if isinstance(s.get("n"), int)]
    if ns and max(ns) < 2:
        return f"test {metric} per method: one seed, so the value alone (no interval)"
    few = f"; † fewer than {FEW_SEEDS} seeds: a wide interval" if ns and min(ns) < FEW_SEEDS else ""
    return f"test {metric} per method: mean and 95% t interval, one dot per seed{few}"


def per_seed_cells(summary: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the per-seed table: one row per method (summary order), one column per seed."""
    seeds = sorted({int(r["seed"]) for r in rows})
    test = {(r["method"], int(r["seed"])): float(r["test"]) for r in rows}
    head = ["method", *[f"seed {s}" for s in seeds]]
    cells = [[s["method"], *[f"{test[(s['method'], k)]:.4f}" if (s["method"], k) in test else "" for k in seeds]]
             for s in summary]
    return head, cells


def provenance_lines(results: dict[str, Any]) -> list[str]:
    """The config/version stamp: command, taskmix, Python, key package versions, the config's key settings."""
    v = results.get("versions") or {}
    pk = v.get("packages") or {}
    lines = []
    if v:
        shown = ", ".join(f"{k} {pk[k]}" for k in ("taskmix", "torch", "numpy", "scipy", "transformers") if pk.get(k))
        lines.append(f"Made by `taskmix {v.get('command', '?')}` with Python {v.get('python', '?')} on "
                     f"{v.get('platform', '?')}; {shown}.")
    cfg = results.get("config") or {}
    if cfg:
        tr, se = cfg.get("train", {}), cfg.get("search", {})
        data = "the built-in benchmark" if cfg.get("synthetic") is not None else f"tasks {sorted(cfg.get('tasks', {}))}"
        lines.append(
            f"Config: {data}, target {cfg.get('target')!r}, train.steps {tr.get('steps')}, batch {tr.get('batch_size')}, "
            f"search {se.get('policy')} / {se.get('reward')} over {se.get('meta_steps')} meta-steps, seed {cfg.get('seed')}."
        )
    lines.append("Full resolved config: `config.resolved.yaml`; package versions: `versions.json`.")
    return lines


def effect_cells(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Per-task effects on the target (from the learned rows' ``extra.task_effects``), pooled over seeds.

    One row per task: the mean over seeds of the search's effect estimate, a 95% interval from the
    per-seed standard errors and the spread over seeds (``sqrt(mean se^2 / n + var / n)``), and how
    many seeds call it helpful / harmful (their own 95% interval above / below 0).
    """
    per_task: dict[str, list[dict[str, float]]] = {}
    for r in rows:
        if r.get("method") != "learned_time_invariant":
            continue
        eff = (r.get("extra") or {}).get("task_effects")
        for name, e in (eff or {}).items():
            per_task.setdefault(name, []).append(e)
    head = ["task", "effect (mean over seeds)", "95% CI", "seeds: helps / unclear / hurts"]
    cells = []
    for name, es in per_task.items():
        v = np.asarray([e["effect"] for e in es], dtype=np.float64)
        se2 = np.asarray([e["se"] for e in es], dtype=np.float64) ** 2
        n = len(v)
        se = float(np.sqrt(se2.mean() / n + (v.var(ddof=1) / n if n > 1 else 0.0)))
        verdicts: list[Any] = [e.get("verdict") for e in es]
        cells.append([name, f"{v.mean():+.4f}", f"[{v.mean() - 1.96 * se:+.4f}, {v.mean() + 1.96 * se:+.4f}]",
                      f"{verdicts.count('helps')} / {verdicts.count('unclear')} / {verdicts.count('hurts')}"])
    return head, cells


def _equal_compute_table(results: dict[str, Any], rows: Sequence[dict[str, Any]],
                         metric: str) -> tuple[list[str], list[list[str]]]:
    """The equal-compute table (:mod:`taskmix.compare.budget`); no cells without rules or a plain run's length."""
    steps = ((results.get("config") or {}).get("train") or {}).get("steps")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps <= 0:
        uniform = sorted(int(r.get("train_steps") or 0) for r in rows if r.get("method") == "uniform")
        steps = uniform[len(uniform) // 2] if uniform else 0
    if not steps or not any(r.get("kind") == "baseline" for r in rows):
        return [], []
    return equal_compute_cells(equal_compute([r for r in rows if r.get("method") != "recommended"], steps, metric))


def write_report(out_dir: str | Path, results: dict[str, Any], rows: Sequence[dict[str, Any]],
                 tensorboard: bool = True) -> dict[str, Path]:
    """Write ``report.md``, a self-contained ``report.html``, ``plots/*.png`` and per-row logs.

    Args:
        out_dir: the comparison's directory.
        results: the ``results.json`` object of :func:`taskmix.compare.runner.run_compare`
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

    out = Path(out_dir)
    target = results.get("target", "target")
    metric = results.get("metric", "metric")
    summary = results.get("summary") or summarize(rows, metric=metric)
    split = results.get("report_split", "test")
    title = f"taskmix comparison: {target} ({metric_label(metric)} on {split})"  # e.g. bits per byte (lower is better)
    head, cells = table_cells(summary)
    chead, ccells = cost_cells(summary)
    notes = _notes(results, summary)
    shead, scells = per_seed_cells(summary, rows)
    stamp = provenance_lines(results)
    headline = plot_headline(summary, rows, out / "plots" / "headline.png", metric=metric) if rows else None
    plots = report_plots(out, rows, identical=bool(results.get("schedule_plots_identical")))
    logs = write_logs(out, rows, tensorboard=tensorboard, metric=metric)

    sections = [("schedules", "Schedules"), ("weights", "Average task weights"), ("rewards", "Rewards per meta-step")]
    md = [f"# {title}", ""]
    answer = results.get("recommendation")
    if answer:
        md += ["## Verdict", "", str(answer["text"]), "", "The recommended schedule: `recommended.json` "
               "(its rows are the `recommended` method below).", ""]
    if results.get("seeds") is not None:
        md.append(f"Seeds: {results['seeds']}.  Rows: {len(rows)}.")
        md.append("")
    md += ["## Results", ""]
    if headline is not None:
        cap = _headline_caption(summary, metric)
        md += [f"![{cap}]({headline.relative_to(out).as_posix()})", "", f"*{cap}*", ""]
    md += [_md_table(head, cells), ""]
    md += [f"- {n}" for n in notes]
    md += ["", "## Per seed", "", f"Test {metric} of every (method, seed) run.", "", _md_table(shead, scells), ""]
    md += ["## Cost", "", _md_table(chead, ccells), ""]
    eq_head, eq_cells = _equal_compute_table(results, rows, metric)
    if eq_cells:
        md += ["## Equal compute", "", _md_table(eq_head, eq_cells), "", "- " + EQUAL_COMPUTE_NOTE, ""]
    ehead, ecells = effect_cells(rows)
    if ecells:
        md += ["## Per-task effects on the target", "", _md_table(ehead, ecells), "",
               "- " + EFFECTS_NOTE, ""]
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
    md += ["## Provenance", ""] + [f"- {line}" for line in stamp] + [""]
    md_path = out / "report.md"
    atomic_write_text(md_path, "\n".join(md) + "\n")

    hl = [bool(s.get("best_baseline")) for s in summary]
    body = [f"<h1>{html.escape(title)}</h1>"]
    if answer:
        body += ["<h2>Verdict</h2>", f"<p><strong>{html.escape(str(answer['text']))}</strong></p>",
                 "<p>The recommended schedule: <code>recommended.json</code> (its rows are the <code>recommended</code> "
                 "method below).</p>"]
    if results.get("seeds") is not None:
        body.append(f"<p>Seeds: {html.escape(str(results['seeds']))}. Rows: {len(rows)}.</p>")
    body.append("<h2>Results</h2>")
    if headline is not None:
        cap = _headline_caption(summary, metric)
        data = base64.b64encode(headline.read_bytes()).decode("ascii")
        body.append(f'<figure><img alt="{html.escape(cap)}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{html.escape(cap)}</figcaption></figure>")
    body += [_html_table(head, cells, hl), "<ul>"]
    body += [f"<li>{html.escape(n)}</li>" for n in notes]
    body += ["</ul>", "<h2>Per seed</h2>", f"<p>Test {html.escape(metric)} of every (method, seed) run.</p>",
             _html_table(shead, scells, hl), "<h2>Cost</h2>", _html_table(chead, ccells)]
    if eq_cells:
        body += ["<h2>Equal compute</h2>", _html_table(eq_head, eq_cells), f"<p>{html.escape(EQUAL_COMPUTE_NOTE)}</p>"]
    if ecells:
        body += ["<h2>Per-task effects on the target</h2>", _html_table(ehead, ecells), f"<p>{html.escape(EFFECTS_NOTE)}</p>"]
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
    body += ["<h2>Provenance</h2>", "<ul>"] + [
        "<li>" + re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(line)) + "</li>" for line in stamp
    ] + ["</ul>"]
    if results.get("config"):
        body.append("<details><summary>resolved config</summary><pre>"
                    + html.escape(json.dumps(results["config"], indent=2)) + "</pre></details>")
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}"
        "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}"
        "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}tr.hl{background:#eef6ff}td.num{white-space:nowrap}"
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
    extra = {"plot:headline.png": headline} if headline is not None else {}
    return {"markdown": md_path, "html": html_path, **extra, **{f"plot:{p.name}": p for _, _, p in plots}}
