"""Report statistics (bootstrap, paired differences, cost) and the Markdown / HTML report."""

from __future__ import annotations

import base64
import csv
import re

import numpy as np
import pytest

from taskmix.compare.report import write_report
from taskmix.compare.stats import bootstrap_ci, format_table, method_kind, summarize
from taskmix.schedule import Schedule

TASKS = ["target", "helpful", "harmful"]


def test_bootstrap_interval_covers_a_known_mean():
    rng = np.random.default_rng(12345)
    trials, covered, widths = 200, 0, []
    for _ in range(trials):
        v = rng.normal(0.7, 0.05, size=20)
        lo, hi = bootstrap_ci(v)
        covered += lo <= 0.7 <= hi
        widths.append(hi - lo)
    assert covered / trials >= 0.90
    # and it is an interval of the right size (2 x 1.96 x 0.05 / sqrt(20) ~ 0.044), not a trivially wide one
    assert 0.03 < float(np.mean(widths)) < 0.055
    # it misses a mean it should not cover
    assert bootstrap_ci(rng.normal(0.8, 0.05, size=20))[0] > 0.7


def test_bootstrap_degenerate_inputs():
    assert bootstrap_ci([0.5]) == (0.5, 0.5)
    assert bootstrap_ci([0.3, 0.3, 0.3]) == (0.3, 0.3)


def _row(method, seed, test, seconds=1.0, steps=100, evals=1, schedule=None, log=None):
    return {"method": method, "seed": seed, "test": test, "seconds": seconds, "train_steps": steps,
            "evaluations": evals, "schedule": schedule, "log": log or []}


def hand_rows():
    base = [0.80, 0.82, 0.78, 0.81, 0.79]
    rows = []
    for s in range(5):
        rows.append(_row("uniform", s, base[s] - 0.05, seconds=2.0 + 0.1 * s))
        rows.append(_row("single_task", s, base[s], seconds=2.0))
        # better than single_task by 0.04 +- 0.005 on every seed
        rows.append(_row("better", s, base[s] + 0.04 + (0.005 if s % 2 else -0.005), seconds=6.0, steps=300, evals=11))
        # the same as single_task up to +-0.01, alternating sign: within noise
        rows.append(_row("same", s, base[s] + (0.01 if s % 2 else -0.01), seconds=4.0, steps=200, evals=2))
    return rows


def test_summarize_paired_difference_and_within_noise_mark():
    summary = {s["method"]: s for s in summarize(hand_rows())}
    assert summary["single_task"]["best_baseline"] and "diff_mean" not in summary["single_task"]
    better, same = summary["better"], summary["same"]
    assert better["vs"] == "single_task" and better["diff_n"] == 5
    assert better["diff_mean"] == pytest.approx(0.04 - 0.001, abs=1e-12)  # 2 of 5 seeds +0.005, 3 of 5 -0.005
    assert better["diff_ci_low"] > 0 and better["within_noise"] is False
    assert same["diff_ci_low"] < 0 < same["diff_ci_high"] and same["within_noise"] is True
    assert summary["uniform"]["diff_mean"] == pytest.approx(-0.05)
    assert summary["uniform"]["within_noise"] is False
    # the paired interval is much narrower than the unpaired spread of the means
    assert better["diff_ci_high"] - better["diff_ci_low"] < better["ci_high"] - better["ci_low"]
    table = format_table(list(summary.values()))
    line = {ln.split("|")[1].strip(): ln for ln in table.splitlines() if ln.startswith("| ") and "method" not in ln}
    assert "≈" in line["same"] and "≈" not in line["better"]
    assert "(best baseline)" in line["single_task"]


def test_summarize_cost_ratios_to_a_plain_run():
    summary = {s["method"]: s for s in summarize(hand_rows())}
    b = summary["better"]
    plain_seconds = 2.2  # median of the uniform rows 2.0 .. 2.4
    assert b["seconds"] == 6.0 and b["cost_ratio"] == pytest.approx(6.0 / plain_seconds)
    assert b["train_steps"] == 300 and b["step_ratio"] == pytest.approx(3.0)
    assert b["evaluations"] == 11 and b["eval_ratio"] == pytest.approx(11.0)
    assert b["total_train_steps"] == 1500 and b["total_evaluations"] == 55 and b["total_seconds"] == pytest.approx(30.0)
    assert summary["uniform"]["cost_ratio"] == pytest.approx(1.0)
    # explicit plain-run figures (compare passes train.steps) still win
    s2 = {s["method"]: s for s in summarize(hand_rows(), plain_seconds=3.0, plain_steps=150)}
    assert s2["better"]["cost_ratio"] == pytest.approx(2.0) and s2["better"]["step_ratio"] == pytest.approx(2.0)


def test_method_kinds():
    assert [method_kind(m) for m in ("uniform", "temperature_2", "learned_time_variant", "exp3", "exp3-replay",
                                      "oracle", "mine")] == ["baseline", "baseline", "learned", "adaptive",
                                                             "adaptive-replay", "oracle", "other"]


def _sched(weights, spm=10, method="x"):
    return Schedule.from_weights(TASKS, weights, spm, {"method": method, "meta_steps": 3}).to_dict()


def _log(n=3):
    rng = np.random.default_rng(0)
    out = []
    for m in range(n):
        w = rng.dirichlet(np.ones(3))
        out.append({"round": 0, "meta_step": m, "step": 10 * (m + 1), "probs_before": w.tolist(), "probs_after": w.tolist(),
                    "rewards": rng.normal(size=3).tolist(), "realised": w.tolist(),
                    "reward_split_accuracy": 0.6 + 0.1 * m, "reward_split_loss": 0.7 - 0.1 * m})
    return out


def report_rows():
    rows = []
    for s in range(3):
        rows.append(_row("uniform", s, 0.70 + 0.01 * s, schedule=_sched([1, 1, 1])))
        rows.append(_row("single_task", s, 0.75 + 0.01 * s, schedule=_sched([1, 0, 0])))
        rows.append(_row("learned_time_variant", s, 0.80 + 0.01 * s, steps=200, evals=4,
                         schedule=_sched([[0.5, 0.4, 0.1], [0.3, 0.6, 0.1], [0.2, 0.8, 0.0]]), log=_log()))
        rows.append(_row("exp3", s, 0.72 + 0.01 * s, evals=1,
                         schedule=_sched([[0.3, 0.3, 0.4], [0.3, 0.4, 0.3], [0.4, 0.3, 0.3]]), log=_log()))
        rows.append(_row("exp3-replay", s, 0.71 + 0.01 * s, steps=200, evals=2,
                         schedule=_sched([1 / 3, 1 / 3, 1 / 3]), log=_log()))
        rows.append(_row("oracle", s, 0.82 + 0.01 * s, steps=3600, evals=37, seconds=40.0, schedule=_sched([0.3, 0.7, 0])))
    return rows


def test_write_report_writes_markdown_html_with_embedded_images_plots_and_logs(tmp_path):
    rows = report_rows()
    results = {"target": "target", "metric": "accuracy", "report_split": "test", "seeds": [0, 1, 2],
               "plain_run_seconds": 1.0, "summary": summarize(rows)}
    paths = write_report(tmp_path, results, rows)
    md = (tmp_path / "report.md").read_text()
    page = (tmp_path / "report.html").read_text()
    assert paths["markdown"] == tmp_path / "report.md" and paths["html"] == tmp_path / "report.html"
    # the results table, with the paired difference and the cost columns, in both
    for text in (md, page):
        for m in ("uniform", "single_task", "learned_time_variant", "exp3", "exp3-replay", "oracle"):
            assert m in text
        assert "time × plain" in text and "Δ vs best baseline" in text and "single_task" in text
        assert "oracle: grid search" in text
        # the reader is told that the best baseline was picked on the split it is measured on
        assert "highest mean on this same split" in text
    # PNGs under plots/, linked from the Markdown ...
    plots = sorted(p.name for p in (tmp_path / "plots").glob("*.png"))
    for name in ("schedule-learned_time_variant.png", "schedule-exp3.png", "schedule-oracle.png",
                 "rewards-learned_time_variant.png", "rewards-exp3.png", "weights.png", "reward_split.png"):
        assert name in plots
        assert f"(plots/{name})" in md
    assert "schedule-exp3-replay.png" not in plots  # its online run is plotted already
    # ... and embedded in the HTML, which references no external file
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == sum(1 for p in plots)
    for data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    assert "plots/" not in re.sub(r"<p>Per-meta-step logs.*?</p>", "", page)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    # per-meta-step logs as CSV with the runlog columns
    with open(tmp_path / "logs" / "exp3-seed0.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 3 and "weight/helpful" in table[0] and "reward/harmful" in table[0]
    assert (tmp_path / "logs" / "exp3-seed0.jsonl").exists()
    pytest.importorskip("tensorboard")
    events = list((tmp_path / "logs" / "tb" / "exp3-seed0").glob("events.out.tfevents.*"))
    assert len(events) == 1
    write_report(tmp_path, results, rows)  # rewriting (resume) replaces the events instead of adding to them
    assert len(list((tmp_path / "logs" / "tb" / "exp3-seed0").glob("events.out.tfevents.*"))) == 1


def test_write_report_without_summary_or_uniform_rows(tmp_path):
    rows = [r for r in report_rows() if r["method"] not in ("uniform",)]
    write_report(tmp_path, {"target": "target"}, rows)
    md = (tmp_path / "report.md").read_text()
    assert "no uniform rows" in md and "learned_time_variant" in md


# ------------------------------------------------------- t intervals (issue 12)
def test_t_interval_for_five_seeds_is_wider_than_the_percentile_bootstrap_and_covers():
    from scipy import stats as st

    from taskmix.compare.stats import t_ci

    rng = np.random.default_rng(7)
    trials, covered_t, covered_b = 400, 0, 0
    for _ in range(trials):
        v = rng.normal(0.7, 0.05, size=5)
        lo, hi = t_ci(v)
        covered_t += lo <= 0.7 <= hi
        blo, bhi = bootstrap_ci(v, n_resamples=300)
        covered_b += blo <= 0.7 <= bhi
        half = st.t.ppf(0.975, 4) * v.std(ddof=1) / np.sqrt(5)
        assert (lo, hi) == pytest.approx((v.mean() - half, v.mean() + half))
    assert covered_t / trials >= 0.92  # nominal 0.95
    assert covered_b / trials < covered_t / trials  # the bootstrap under-covers with 5 seeds


def test_paired_difference_uses_a_paired_t_interval_and_p_value():
    from scipy import stats as st

    from taskmix.compare.stats import paired_t

    summary = {s["method"]: s for s in summarize(hand_rows())}
    rows = {(r["method"], r["seed"]): r["test"] for r in hand_rows()}
    d = np.array([rows[("same", s)] - rows[("single_task", s)] for s in range(5)])
    same = summary["same"]
    ref = st.ttest_rel([rows[("same", s)] for s in range(5)], [rows[("single_task", s)] for s in range(5)])
    assert same["diff_p"] == pytest.approx(ref.pvalue)
    lo, hi = st.t.interval(0.95, 4, loc=d.mean(), scale=d.std(ddof=1) / np.sqrt(5))
    assert (same["diff_ci_low"], same["diff_ci_high"]) == pytest.approx((lo, hi))
    assert same["within_noise"] is (same["diff_p"] >= 0.05) and same["ci_method"] == "t"
    assert summary["better"]["diff_p"] < 0.001
    assert paired_t([0.1])["p"] is None and paired_t([0.0, 0.0])["p"] == 1.0 and paired_t([0.02, 0.02])["p"] == 0.0
    table = format_table(list(summary.values()))
    assert "t interval" in table and "bootstrap" not in table and "p=" in table


def test_report_has_headline_plot_per_seed_table_stamp_and_unwrapped_numbers(tmp_path):
    rows = report_rows()
    results = {"target": "target", "metric": "accuracy", "report_split": "test", "seeds": [0, 1, 2],
               "plain_run_seconds": 1.0, "summary": summarize(rows),
               "config": {"target": "target", "synthetic": {}, "seed": 0, "train": {"steps": 60, "batch_size": 64},
                          "search": {"policy": "time_invariant", "reward": "gradient_alignment", "meta_steps": 3}},
               "versions": {"command": "compare", "python": "3.11.9", "platform": "Linux",
                            "packages": {"taskmix": "0.1.0", "torch": "2.13.0"}},
               "schedule_plots_identical": True, "time_variant_init": "previous"}
    paths = write_report(tmp_path, results, rows)
    md, page = (tmp_path / "report.md").read_text(), (tmp_path / "report.html").read_text()
    assert paths["plot:headline.png"] == tmp_path / "plots" / "headline.png"
    assert "(plots/headline.png)" in md and md.index("headline.png") < md.index("| method |")
    # per-seed table: every (method, seed) value
    seed_table = md.split("## Per seed", 1)[1].split("## Cost", 1)[0]
    assert "| seed 0 | seed 1 | seed 2 |" in seed_table
    for r in rows:
        assert f"{r['test']:.4f}" in seed_table
    # config / version stamp
    for text in (md, page):
        assert "Provenance" in text and "torch 2.13.0" in text and "Python 3.11.9" in text
        assert "config.resolved.yaml" in text and "versions.json" in text and "train.steps 60" in text
        assert "schedule_time_variant.png are identical" in text and "time_variant_init" in text
        assert "paired t" in text and "percentile bootstrap of the mean" not in text
    # numbers never wrap inside cells
    assert "td.num{white-space:nowrap}" in page
    cells = re.findall(r"<td( class=\"num\")?>([^<]*)</td>", page)
    numeric = [(cls, c) for cls, c in cells if re.match(r"^[\[(]?[+\-]?\d", c)]
    assert numeric and all(cls for cls, _ in numeric)
    assert all(not cls for cls, c in cells if c in ("uniform", "baseline", "(best baseline)"))


def _events(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_tensorboard_hparams_and_final_metric_for_every_method_without_duplicates(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.plugins.hparams import plugin_data_pb2

    rows = report_rows()
    results = {"target": "target", "metric": "accuracy", "seeds": [0, 1, 2], "summary": summarize(rows)}
    for _ in range(2):  # rewriting (resume) must not add a second copy of any point
        write_report(tmp_path, results, rows)
    for r in rows:  # baselines (no log) included
        run = tmp_path / "logs" / "tb" / f"{r['method']}-seed{r['seed']}"
        assert len(list(run.glob("events.out.tfevents.*"))) == 1
        acc = _events(run)
        final = acc.Scalars("final/test_accuracy")
        assert [(e.step, e.value) for e in final] == [(0, pytest.approx(r["test"]))]
        for tag in acc.Tags()["scalars"]:
            steps = [e.step for e in acc.Scalars(tag)]
            assert len(steps) == len(set(steps)), f"duplicated steps for {tag} in {run.name}"
        # the hparams plugin's session start info names the method and seed
        content = acc.PluginTagToContent("hparams")
        infos = [plugin_data_pb2.HParamsPluginData.FromString(v) for v in content.values()]
        start = next(i.session_start_info for i in infos if i.HasField("session_start_info"))
        assert start.hparams["method"].string_value == r["method"] and start.hparams["seed"].number_value == r["seed"]


# ------------------------------------------- few seeds and identical plots (issue 23)
def test_report_with_one_seed_has_no_interval_and_says_why(tmp_path):
    rows = [r for r in report_rows() if r["seed"] == 0]
    results = {"target": "target", "metric": "accuracy", "report_split": "test", "seeds": [0],
               "plain_run_seconds": 1.0, "summary": summarize(rows)}
    write_report(tmp_path, results, rows)
    md, page = (tmp_path / "report.md").read_text(), (tmp_path / "report.html").read_text()
    for text in (md, page):
        assert "one seed, so no spread can be estimated" in text and "Run 3 or more seeds" in text
        assert "± —" in text and "[—]" in text
        assert "one seed, so the value alone (no interval)" in text  # the headline's caption
    results_table = md.split("## Results", 1)[1].split("\n- ", 1)[0]
    assert "≈" not in results_table and "p=" not in results_table
    assert "≈" not in re.sub(r"<li>.*?</li>", "", page)  # only the notes' explanation of the mark


def test_report_with_two_seeds_marks_its_intervals(tmp_path):
    rows = [r for r in report_rows() if r["seed"] < 2]
    results = {"target": "target", "metric": "accuracy", "seeds": [0, 1], "summary": summarize(rows)}
    write_report(tmp_path, results, rows)
    md, page = (tmp_path / "report.md").read_text(), (tmp_path / "report.html").read_text()
    for text in (md, page):
        assert "]†" in text and "fewer than 3 seeds" in text and "use 3 or more seeds" in text
        assert "one seed, so no spread" not in text
    for s in results["summary"]:
        assert 0.0 <= s["ci_low"] <= s["ci_high"] <= 1.0


def _learned_pair_rows(same: bool):
    rows = [r for r in report_rows() if r["method"] in ("uniform", "single_task", "learned_time_variant")]
    for r in [r for r in rows if r["method"] == "learned_time_variant"]:
        twin = dict(r, method="learned_time_invariant", log=_log() if same else _log(2))
        rows.append(twin)
    return rows


@pytest.mark.parametrize("flag", [True, None])
def test_identical_learned_schedules_are_shown_once(tmp_path, flag):
    rows = _learned_pair_rows(same=True)
    results = {"target": "target", "metric": "accuracy", "seeds": [0, 1, 2], "summary": summarize(rows)}
    if flag:
        results |= {"schedule_plots_identical": True, "time_variant_init": "previous"}
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "schedule-learned_time_invariant.png").write_bytes(b"stale")  # from an earlier report
    write_report(tmp_path, results, rows)
    md, page = (tmp_path / "report.md").read_text(), (tmp_path / "report.html").read_text()
    schedules = md.split("## Schedules", 1)[1].split("\n## ", 1)[0]
    assert schedules.count("![") == 1 and "(plots/schedule-learned_time_variant.png)" in schedules
    assert "learned_time_variant and learned_time_invariant" in schedules and "one plot stands for both" in schedules
    assert not (tmp_path / "plots" / "schedule-learned_time_invariant.png").exists()
    rewards = md.split("## Rewards per meta-step", 1)[1].split("\n## ", 1)[0]
    assert "(plots/rewards-learned_time_variant.png)" in rewards and "rewards-learned_time_invariant" not in rewards
    assert "one plot stands for both" in page
    images = re.findall(r'src="data:image/png;base64,', page)
    assert len(images) == len(list((tmp_path / "plots").glob("*.png")))


def test_different_learned_schedules_keep_their_own_plots(tmp_path):
    rows = _learned_pair_rows(same=False)
    write_report(tmp_path, {"target": "target", "metric": "accuracy", "summary": summarize(rows)}, rows)
    schedules = (tmp_path / "report.md").read_text().split("## Schedules", 1)[1].split("\n## ", 1)[0]
    assert schedules.count("![") == 2 and "stands for both" not in schedules
