"""Statistics with few seeds (issue 23): no interval with one seed, marked with two, clipped to the metric's range;
and the plots' axes: integer meta-step ticks, limits within the metric's range, coinciding lines kept visible."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from scipy import stats as st

import taskmix.compare.plots as plots_mod
from taskmix.compare.plots import (coinciding, integer_ticks, line_style, metric_limits, plot_headline, plot_reward_split,
                                   plot_rewards, plot_schedule)
from taskmix.compare.predictions import encode_labels
from taskmix.compare.stats import (CLIPPED_MARK, FEW_SEEDS_MARK, NO_INTERVAL, clip_interval, describe, diff_range, format_table,
                                   interval_notes, metric_range, summarize, table_cells)
from taskmix.schedule import Schedule


def _row(method: str, seed: int, test: float) -> dict[str, Any]:
    return {"method": method, "seed": seed, "test": test, "seconds": 1.0, "train_steps": 100, "evaluations": 1}


# per-seed test accuracies: with 2 seeds learned's spread (0.35 vs 0.99) gives a t interval far beyond [0, 1]
VALUES = {"uniform": [0.70, 0.98, 0.71, 0.69, 0.72],
          "single_task": [0.72, 0.99, 0.73, 0.70, 0.74],
          "learned_time_invariant": [0.35, 0.99, 0.70, 0.68, 0.69]}


def rows_for(n: int) -> list[dict[str, Any]]:
    return [_row(m, s, v[s]) for m, v in VALUES.items() for s in range(n)]


def lines_by_method(table: str) -> dict[str, str]:
    return {ln.split("|")[1].strip(): ln for ln in table.splitlines() if ln.startswith("| ") and "method" not in ln}


# ------------------------------------------------------------------ helpers
def test_metric_ranges_and_clipping():
    assert metric_range("accuracy") == (0.0, 1.0) and metric_range("macro_f1") == (0.0, 1.0)
    assert metric_range("loss") is None and metric_range(None) is None
    assert diff_range("accuracy") == (-1.0, 1.0) and diff_range("loss") is None
    assert clip_interval(0.1, 1.58, (0.0, 1.0)) == (0.1, 1.0, True)
    assert clip_interval(-1.3, 0.2, (-1.0, 1.0)) == (-1.0, 0.2, True)
    assert clip_interval(0.2, 0.4, (0.0, 1.0)) == (0.2, 0.4, False)
    assert clip_interval(-3.0, 3.0, None) == (-3.0, 3.0, False)
    assert clip_interval(None, None, (0.0, 1.0)) == (None, None, False)


def test_describe_one_two_five_values():
    one = describe([0.8], "accuracy")
    assert one["n"] == 1 and one["mean"] == 0.8 and one["few_seeds"] is True
    assert one["ci_low"] is None and one["ci_high"] is None and one["std"] is None and one["sem"] is None
    two = describe([0.35, 0.99], "accuracy")
    raw = st.t.interval(0.95, 1, loc=0.67, scale=np.std([0.35, 0.99], ddof=1) / np.sqrt(2))
    assert raw[0] < 0 and raw[1] > 1  # the t interval of two seeds runs far past the metric's range ...
    assert (two["ci_low"], two["ci_high"]) == (0.0, 1.0) and two["ci_clipped"] is True and two["few_seeds"] is True
    assert describe([0.35, 0.99])["ci_high"] == pytest.approx(raw[1])  # ... and is kept without a metric
    five = describe(VALUES["uniform"], "accuracy")
    assert five["few_seeds"] is False and five["ci_clipped"] is False and 0 < five["ci_low"] < five["ci_high"] < 1


# ----------------------------------------------------------------- summarize
def test_one_seed_has_no_interval_no_noise_claim_and_a_note():
    summary = summarize(rows_for(1))
    by = {s["method"]: s for s in summary}
    for s in summary:
        assert s["n"] == 1 and s["ci_low"] is None and s["ci_high"] is None and s["std"] is None
    learned = by["learned_time_invariant"]
    assert learned["diff_mean"] == pytest.approx(0.35 - 0.72)
    for key in ("diff_ci_low", "diff_ci_high", "diff_p", "within_noise", "diff_sem"):
        assert learned[key] is None, key
    # results.json's summary: null, never a zero-width interval (strict JSON, as the runner writes it)
    back = json.loads(json.dumps(summary, allow_nan=False))
    assert all(s["ci_low"] is None and s["ci_high"] is None for s in back)
    table = format_table(summary)
    assert "≈" not in table.split("\n\n")[0]  # no within-noise claim in the table's rows
    line = lines_by_method(table)
    assert line["uniform"].split("|")[3].strip() == NO_INTERVAL and f"[{NO_INTERVAL}]" in line["learned_time_invariant"]
    assert "± —" in line["single_task"] and "p=" not in table
    assert "one seed" in table and "Run 3 or more seeds" in table


def test_two_seeds_are_shown_marked_and_clipped():
    summary = summarize(rows_for(2))
    by = {s["method"]: s for s in summary}
    learned = by["learned_time_invariant"]
    assert (learned["ci_low"], learned["ci_high"]) == (0.0, 1.0) and learned["ci_clipped"] is True
    assert (learned["diff_ci_low"], learned["diff_ci_high"]) == (-1.0, 1.0) and learned["diff_ci_clipped"] is True
    assert learned["within_noise"] is True and learned["diff_p"] is not None
    for s in summary:
        assert 0.0 <= s["ci_low"] <= s["ci_high"] <= 1.0
        if "diff_mean" in s:
            assert -1.0 <= s["diff_ci_low"] <= s["diff_ci_high"] <= 1.0
    head, cells = table_cells(summary)
    row = {c[0]: c for c in cells}
    ci, diff = head.index("95% CI (t)"), head.index("Δ vs best baseline (95% paired t CI, p)")
    assert row["learned_time_invariant"][ci] == f"[0.0000, 1.0000]{FEW_SEEDS_MARK}{CLIPPED_MARK}"
    assert f"[-1.0000, +1.0000]{FEW_SEEDS_MARK}{CLIPPED_MARK}" in row["learned_time_invariant"][diff]
    assert all(FEW_SEEDS_MARK in row[m][ci] for m in row)
    table = format_table(summary)
    assert "fewer than 3 seeds" in table and "use 3 or more seeds" in table and "clipped to the metric's range" in table
    assert "one seed" not in table


def test_five_seeds_are_unmarked():
    summary = summarize(rows_for(5))
    assert interval_notes(summary) == []
    table = format_table(summary)
    assert FEW_SEEDS_MARK not in table and CLIPPED_MARK not in table and NO_INTERVAL not in table
    for s in summary:
        assert s["few_seeds"] is False and s["ci_clipped"] is False
        v = VALUES[s["method"]]
        lo, hi = st.t.interval(0.95, 4, loc=np.mean(v), scale=np.std(v, ddof=1) / np.sqrt(5))
        assert (s["ci_low"], s["ci_high"]) == pytest.approx((lo, hi))


def test_a_metric_without_a_known_range_is_not_clipped():
    s = {x["method"]: x for x in summarize(rows_for(2), metric="loss")}["learned_time_invariant"]
    assert s["ci_low"] < 0 and s["ci_high"] > 1 and s["ci_clipped"] is False


def test_mixed_seed_counts_name_the_methods_concerned():
    rows = rows_for(5)[: -4]  # learned_time_invariant keeps its first seed only
    summary = summarize(rows)
    notes = interval_notes(summary)
    assert len(notes) == 1 and "(learned_time_invariant)" in notes[0]
    line = lines_by_method(format_table(summary))
    assert "≈" not in line["learned_time_invariant"] and f"[{NO_INTERVAL}]" in line["learned_time_invariant"]


def test_an_old_summary_with_a_zero_width_one_seed_interval_is_shown_without_one():
    old = [{"method": "uniform", "n": 1, "mean": 0.7, "std": 0.0, "ci_low": 0.7, "ci_high": 0.7, "seconds": 1.0},
           {"method": "x", "n": 1, "mean": 0.8, "std": 0.0, "ci_low": 0.8, "ci_high": 0.8, "seconds": 1.0, "vs": "uniform",
            "diff_n": 1, "diff_mean": 0.1, "diff_ci_low": 0.1, "diff_ci_high": 0.1, "diff_p": None, "within_noise": True}]
    _, cells = table_cells(old)
    assert cells[0][2] == NO_INTERVAL and cells[1][3] == f"+0.1000 [{NO_INTERVAL}]"


def test_one_seed_has_no_examples_interval_either():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 400)
    rows = []
    for m, acc in (("uniform", 0.6), ("learned_time_invariant", 0.7)):
        pred = np.where(rng.random(400) < acc, y, (y + 1) % 3)
        rows.append(_row(m, 0, float(np.mean(pred == y))) | {"predictions": encode_labels(pred)})
    s = {x["method"]: x for x in summarize(rows, labels=y, metric="accuracy", num_labels=3)}["learned_time_invariant"]
    assert s["diff_se_examples"] > 0
    assert s["diff_ci_examples_low"] is None and s["diff_ci_examples_high"] is None and s["within_noise_examples"] is None
    head, cells = table_cells([x for x in summarize(rows, labels=y, metric="accuracy", num_labels=3)])
    col = head.index("Δ 95% CI, seeds + test examples")
    assert {c[0]: c[col] for c in cells}["learned_time_invariant"] == NO_INTERVAL


# --------------------------------------------------------------------- plots
def test_metric_limits_stay_within_the_range():
    assert metric_limits([0.1, 1.58, 0.84], (0.0, 1.0)) == (pytest.approx(0.1 - 0.05 * 1.48), 1.0)
    lo, hi = metric_limits([0.7, 0.72], (0.0, 1.0))
    assert 0.68 < lo < 0.7 and 0.72 < hi < 0.74
    assert metric_limits([0.0, 1.0], (0.0, 1.0)) == (0.0, 1.0)
    assert metric_limits([-5.0, 5.0], None) == (-5.5, 5.5)
    assert metric_limits([None, float("nan")], (0.0, 1.0)) is None


def test_coinciding_and_line_styles():
    a = [0.1, 0.2, 0.3]
    assert coinciding([a, [0.3, 0.2, 0.1], list(a), [0.1, 0.2]]) == {2: 0}
    assert coinciding([(a, a), (a, a)]) == {1: 0}
    styles = [line_style(i) for i in range(4)]
    assert len({(s["ls"], s["marker"]) for s in styles}) == 4 and all(s["alpha"] < 1 for s in styles)


@pytest.fixture
def figures(monkeypatch):
    """The matplotlib figures the plot functions save (they are closed, but their axes can still be read)."""
    seen: list[Any] = []
    original = plots_mod.save_figure

    def keep(fig, out):
        seen.append(fig)
        return original(fig, out)

    monkeypatch.setattr(plots_mod, "save_figure", keep)
    return seen


def _integers(ticks) -> bool:
    return all(float(t).is_integer() for t in ticks)


def test_integer_ticks_helper(figures):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([1, 2], [0.0, 1.0])
    integer_ticks(ax)
    assert _integers(ax.get_xticks()) and not _integers(ax.get_yticks())
    plt.close(fig)


def test_meta_step_axes_have_integer_ticks_and_coinciding_lines_stay_visible(tmp_path, figures):
    log = [{"round": 0, "step": 10 * (m + 1), "rewards": [0.0, 0.5, 0.0], "probs_after": [0.5, 0.25, 0.25],
            "reward_split_accuracy": 0.6 + 0.2 * m} for m in range(2)]  # two meta-steps: matplotlib would tick at 1.5
    plot_rewards(log, ["target", "a", "b"], tmp_path / "r.png")
    sched = Schedule.from_weights(["target", "a", "b"], [0.5, 0.25, 0.25], 10, {"method": "x", "meta_steps": 2})
    plot_schedule(sched, tmp_path / "s.png", log=log)
    rows = [{"method": m, "seed": 0, "test": 0.7, "log": log} for m in ("learned_time_invariant", "learned_time_variant")]
    plot_reward_split(rows, tmp_path / "q.png")
    assert all((tmp_path / f).exists() for f in ("r.png", "s.png", "q.png"))
    rewards, schedule, split = (f.axes[0] for f in figures)
    for ax in (rewards, schedule, split):
        assert _integers(ax.get_xticks()), ax.get_xticks()
    # the identical series are drawn in distinct styles and the legend says they coincide
    for ax, twin, first in ((rewards, "b", "target"), (schedule, "b", "a"), (split, "learned_time_variant", "learned_time_invariant")):
        lines = ax.get_lines()
        labels = [ln.get_label() for ln in lines]
        assert f"{twin} (identical to {first})" in labels, labels
        styled = {(ln.get_linestyle(), ln.get_marker()) for ln in lines if not ln.get_label().startswith("_")}
        assert len(styled) == len([ln for ln in lines if not ln.get_label().startswith("_")])
    lo, hi = split.get_ylim()
    assert 0.0 <= lo and hi <= 1.0
    assert schedule.get_ylim() == (0.0, 1.0)


@pytest.mark.parametrize("n", [1, 2, 5])
def test_headline_axis_stays_within_the_metric_range(tmp_path, figures, n):
    rows = rows_for(n)
    summary = summarize(rows)
    plot_headline(summary, rows, tmp_path / "h.png", metric="accuracy")
    ax = figures[-1].axes[0]
    lo, hi = ax.get_xlim()
    assert 0.0 <= lo < hi <= 1.0
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert all((FEW_SEEDS_MARK in lab) == (n == 2) for lab in labels)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert ("one seed: no interval" in legend) == (n == 1) and ("mean, 95% t interval" in legend) == (n > 1)
