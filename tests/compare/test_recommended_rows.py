"""A comparison ends with its answer: recommended.json, the verdict atop stdout and the reports, `recommended` rows."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _bad_inputs import OUT, SMALL, invoke  # noqa: E402

METHODS = "single_task,uniform,learned_time_invariant,learned_support"


def _compare(d: Path, *more: str):
    return invoke(["compare", "builtin", "--methods", METHODS, "--out", OUT, *SMALL, *more], d)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("rec")
    o = _compare(d, "--seeds", "2")
    assert o.exit_code == 0, o.stderr
    return d


def _rows(d: Path) -> list[dict]:
    return [json.loads(line) for line in (d / OUT / "rows.jsonl").read_text().splitlines()]


def test_the_answer_is_written_first_and_retrained_on_every_seed(finished: Path) -> None:
    out = finished / OUT
    rec = json.loads((out / "recommended.json").read_text())
    results = json.loads((out / "results.json").read_text())
    assert results["recommendation"] == rec
    assert rec["verdict"] in ("learned", "rule", "tie") and rec["text"]
    assert rec["source"] in METHODS.split(",") and set(rec["held_out"]) == set(METHODS.split(","))
    assert abs(sum(rec["weights"].values()) - 1) < 1e-9
    rows = [r for r in _rows(finished) if r["method"] == "recommended"]
    assert sorted(r["seed"] for r in rows) == [0, 1]
    for r in rows:  # the recommended schedule, scored on the report split like every method
        assert np.allclose(r["schedule"]["weights"], rec["schedule"]["weights"])
        assert r["extra"]["source"] == rec["source"] and 0 <= r["test"] <= 1
    summary = {s["method"]: s for s in results["summary"]}
    assert "recommended" in summary and "report_split" in rec
    assert rec["report_split"]["mean"] == pytest.approx(summary["recommended"]["mean"])
    md = (out / "report.md").read_text()
    assert md.index("## Verdict") < md.index("## Results") and rec["text"] in md
    assert "<h2>Verdict</h2>" in (out / "report.html").read_text()


def test_a_rule_recommendation_reuses_the_rule_rows_and_costs_every_candidate(finished: Path) -> None:
    rows = _rows(finished)
    rec = json.loads((finished / OUT / "recommended.json").read_text())
    for s in (0, 1):
        mine = next(r for r in rows if r["method"] == "recommended" and r["seed"] == s)
        cands = [r for r in rows if r["seed"] == s and r["method"] in rec["held_out"]]
        assert mine["train_steps"] >= sum(r["train_steps"] for r in cands)
        if rec["kind"] == "baseline":
            src = next(r for r in cands if r["method"] == rec["source"])
            assert (mine["test"], mine["predictions"]) == (src["test"], src["predictions"])


def test_resume_keeps_the_answer_and_more_seeds_renew_it(finished: Path, tmp_path: Path) -> None:
    import shutil

    shutil.copytree(finished / OUT, tmp_path / OUT)
    before = (tmp_path / OUT / "rows.jsonl").read_text()
    o = _compare(tmp_path, "--seeds", "2", "--resume")
    assert o.exit_code == 0, o.stderr
    assert (tmp_path / OUT / "rows.jsonl").read_text() == before  # nothing left to run, nothing rewritten
    o = _compare(tmp_path, "--seeds", "3", "--resume")
    assert o.exit_code == 0, o.stderr
    rec = json.loads((tmp_path / OUT / "recommended.json").read_text())
    if rec["confirmed"]:  # the choice was within noise of others: they ran on seeds 3-5 (and on, for this small
        # target's few held-out rows) too, and it was made again
        assert rec["confirmed"]["first_seeds"] == [0, 1, 2] and rec["confirmed"]["seeds"][:3] == [3, 4, 5]
        assert rec["seeds"] == [0, 1, 2, *rec["confirmed"]["seeds"]]
    else:
        assert rec["seeds"] == [0, 1, 2]
    rows = [r for r in _rows(tmp_path) if r["method"] == "recommended"]
    assert sorted(r["seed"] for r in rows) == [0, 1, 2]
    assert all(np.allclose(r["schedule"]["weights"], rec["schedule"]["weights"]) for r in rows)


def test_recommended_is_not_a_method_to_list_and_can_be_switched_off(tmp_path: Path) -> None:
    o = invoke(["compare", "builtin", "--methods", "uniform,recommended", "--out", OUT, *SMALL], tmp_path)
    assert o.exit_code == 2 and "recommended: not a method to list" in o.stderr
    o = invoke(["compare", "builtin", "--seeds", "1", "--methods", "uniform", "--out", OUT, *SMALL,
                "-o", "compare.recommend=false"], tmp_path)
    assert o.exit_code == 0, o.stderr
    assert not (tmp_path / OUT / "recommended.json").exists()
    assert "recommendation" not in json.loads((tmp_path / OUT / "results.json").read_text())


def test_an_incumbent_rule_is_the_answer_unless_beaten_and_a_bad_one_is_refused_before_any_work(tmp_path: Path) -> None:
    o = invoke(["compare", "builtin", "--seeds", "2", "--methods", METHODS, "--out", OUT, *SMALL,
                "-o", "compare.incumbent=uniform", "-o", "compare.incumbent_margin=10"], tmp_path)
    assert o.exit_code == 0, o.stderr
    rec = json.loads((tmp_path / OUT / "recommended.json").read_text())
    assert rec["source"] == "uniform" and rec["incumbent"] == "uniform" and rec["incumbent_z"] == 10
    best = max(rec["held_out"], key=lambda m: rec["held_out"][m]["mean"])
    assert best != "uniform"  # kept over a better-scoring candidate (on these seeds): the verdict says so, and by how much
    assert rec["challenger"] == best and "compare.incumbent" in rec["text"]
    assert rec["versus_incumbent"]["mean"] > 0
    o = invoke(["compare", "builtin", "--methods", "uniform,single_task", "--out", "bad", *SMALL,
                "-o", "compare.incumbent=proportional"], tmp_path)
    assert o.exit_code == 2 and "compare.incumbent: 'proportional' is not among the compared methods" in o.stderr
    assert not (tmp_path / "bad").exists()


def test_resume_may_add_a_method_and_keeps_every_row_it_has(finished: Path, tmp_path: Path) -> None:
    import shutil

    shutil.copytree(finished / OUT, tmp_path / OUT)
    before = {(r["method"], r["seed"]): r for r in _rows(tmp_path)}
    o = invoke(["compare", "builtin", "--methods", METHODS + ",proportional", "--out", OUT, *SMALL, "--seeds", "2",
                "--resume"], tmp_path)
    assert o.exit_code == 0, o.stderr
    after = {(r["method"], r["seed"]): r for r in _rows(tmp_path)}
    assert {k for k in after if k[0] == "proportional" and k[1] < 2} == {("proportional", 0), ("proportional", 1)}
    conf = json.loads((tmp_path / OUT / "recommended.json").read_text())["confirmed"] or {"seeds": [], "candidates": []}
    assert all(m in conf["candidates"] and s in conf["seeds"] for m, s in after if s >= 2)  # a confirmation's rows only
    for k, r in before.items():  # the rows it had are kept as they were (a recommendation may be renewed)
        if k[0] != "recommended":
            assert after[k] == r
    # any other setting still blocks the resume, and says which
    o = invoke(["compare", "builtin", "--methods", METHODS, "--out", OUT, *SMALL, "--seeds", "2", "--resume",
                "-o", "search.epsilon=0.2"], tmp_path)
    assert o.exit_code == 2 and "search.epsilon" in o.stderr and "compare.methods" not in o.stderr


def test_a_choice_within_noise_is_confirmed_on_more_seeds_whose_rows_feed_only_the_choice(tmp_path: Path) -> None:
    # temperature_1 is proportional's mixture: the two are always within noise of each other, so the choice is confirmed
    o = invoke(["compare", "builtin", "--methods", "proportional,temperature_1", "--seeds", "2", "--out", OUT, *SMALL,
                "-o", "compare.confirm_seeds=2", "-o", "compare.confirm_rows=0"], tmp_path)  # one round
    assert o.exit_code == 0, o.stderr
    rec = json.loads((tmp_path / OUT / "recommended.json").read_text())
    conf = rec["confirmed"]
    assert conf["first_seeds"] == [0, 1] and conf["seeds"] == [2, 3] and rec["seeds"] == [0, 1, 2, 3]
    assert sorted(conf["candidates"]) == ["proportional", "temperature_1"] and conf["first_choice"] in conf["candidates"]
    assert rec["text"].startswith("Confirmed on 2 more seeds") and rec["source"] in conf["candidates"]
    rows = _rows(tmp_path)
    extra = [r for r in rows if r["seed"] >= 2]
    assert sorted((r["method"], r["seed"]) for r in extra) == [("proportional", 2), ("proportional", 3),
                                                               ("temperature_1", 2), ("temperature_1", 3)]
    results = json.loads((tmp_path / OUT / "results.json").read_text())
    assert results["seeds"] == [0, 1] and {r["seed"] for r in results["rows"]} == {0, 1}  # the table never sees them
    for s in (0, 1):  # the recommendation's cost: its seed's candidates and an equal share of the confirmation
        mine = next(r for r in rows if r["method"] == "recommended" and r["seed"] == s)
        cands = sum(r["train_steps"] for r in rows if r["seed"] == s and r["method"] in conf["candidates"])
        assert mine["train_steps"] == cands + sum(r["train_steps"] for r in extra) // 2
    # the setting only shapes the choice: a resume may change it, runs nothing and keeps every row
    before = (tmp_path / OUT / "rows.jsonl").read_text()
    o = invoke(["compare", "builtin", "--methods", "proportional,temperature_1", "--seeds", "2", "--out", OUT, *SMALL,
                "-o", "compare.confirm_seeds=0", "--resume"], tmp_path)
    assert o.exit_code == 0, o.stderr
    rec = json.loads((tmp_path / OUT / "recommended.json").read_text())
    assert rec["confirmed"] is None and rec["seeds"] == [0, 1]
    kept = {(r["method"], r["seed"]) for r in _rows(tmp_path) if r["method"] != "recommended"}
    assert kept == {(json.loads(x)["method"], json.loads(x)["seed"]) for x in before.splitlines()
                    if json.loads(x)["method"] != "recommended"}


def test_a_confirmation_runs_more_rounds_while_its_seeds_hold_few_held_out_rows(tmp_path: Path) -> None:
    # proportional and temperature_1 are the same mixture: within noise on every round, so the rounds run out
    o = invoke(["compare", "builtin", "--methods", "proportional,temperature_1", "--seeds", "2", "--out", OUT, *SMALL,
                "-o", "compare.confirm_seeds=1", "-o", "compare.confirm_rows=1000000"], tmp_path)
    assert o.exit_code == 0, o.stderr
    rec = json.loads((tmp_path / OUT / "recommended.json").read_text())
    conf = rec["confirmed"]
    assert conf["seeds"] == [2, 3, 4] and rec["seeds"] == [0, 1, 2, 3, 4]  # CONFIRM_ROUNDS rounds of one seed
    assert [r["seeds"] for r in conf["rounds"]] == [[2], [3], [4]]
    assert all(sorted(r["candidates"]) == ["proportional", "temperature_1"] for r in conf["rounds"])
    assert rec["text"].startswith("Confirmed on 3 more seeds") and "compare.confirm_rows" in rec["text"]
    assert {(r["method"], r["seed"]) for r in _rows(tmp_path) if r["seed"] >= 2} == {
        (m, s) for m in ("proportional", "temperature_1") for s in (2, 3, 4)}
    # a goal the first seeds' held-out rows already meet: one round; a resume may change it and reruns nothing
    o = invoke(["compare", "builtin", "--methods", "proportional,temperature_1", "--seeds", "2", "--out", OUT, *SMALL,
                "-o", "compare.confirm_seeds=1", "-o", "compare.confirm_rows=1", "--resume"], tmp_path)
    assert o.exit_code == 0, o.stderr
    rec = json.loads((tmp_path / OUT / "recommended.json").read_text())
    assert rec["confirmed"]["seeds"] == [2] and len(rec["confirmed"]["rounds"]) == 1 and rec["seeds"] == [0, 1, 2]


def test_a_confirmation_holds_out_its_own_share_and_never_lends_its_rows_to_the_table(tmp_path: Path) -> None:
    from taskmix.compare.predictions import decode_labels

    args = ["compare", "builtin", "--methods", "proportional,temperature_1", "--out", OUT, *SMALL,
            "-o", "compare.confirm_rows=0", "-o", "compare.confirm_fraction=0.5"]
    o = invoke([*args, "--seeds", "2", "-o", "compare.confirm_seeds=1"], tmp_path)
    assert o.exit_code == 0, o.stderr
    rows = _rows(tmp_path)
    held = {(r["method"], r["seed"]): len(decode_labels(r["extra"]["reward_predictions"])) for r in rows}
    conf = [r for r in rows if r["seed"] == 2]
    assert len(conf) == 2 and all(r["extra"]["reward_fraction"] == 0.5 for r in conf)
    assert all("reward_fraction" not in r["extra"] for r in rows if r["seed"] < 2)
    assert held[("proportional", 2)] > 4 * held[("proportional", 0)]  # half the target's rows against a tenth
    rec = json.loads((tmp_path / OUT / "recommended.json").read_text())
    assert rec["held_out_rows"] == held[("proportional", 0)] + held[("proportional", 1)] + held[("proportional", 2)]
    # a resume on three seeds runs seed 2's comparison rows beside the confirmation's: those never enter the table
    o = invoke([*args, "--seeds", "3", "-o", "compare.confirm_seeds=0", "--resume"], tmp_path)
    assert o.exit_code == 0, o.stderr
    rows = _rows(tmp_path)
    assert sorted(r.get("extra", {}).get("reward_fraction") or 0 for r in rows
                  if r["seed"] == 2 and r["method"] == "proportional") == [0, 0.5]
    results = json.loads((tmp_path / OUT / "results.json").read_text())
    assert results["seeds"] == [0, 1, 2] and all("reward_fraction" not in r["extra"] for r in results["rows"])
    # the share shapes the confirmation's rows: a resume may not change it
    o = invoke([*args[:-1], "compare.confirm_fraction=0.4", "--seeds", "3", "--resume"], tmp_path)
    assert o.exit_code == 2 and "compare.confirm_fraction" in o.stderr


def test_confirm_seeds_defaults_by_regime_and_is_refused_out_of_range(tmp_path: Path) -> None:
    from taskmix.config import config_from_dict, load_config
    from taskmix.config.schema import CONFIRM_FRACTION, CONFIRM_ROWS, CONFIRM_SEEDS
    from taskmix.errors import ConfigError

    assert load_config(None).confirm_seeds == CONFIRM_SEEDS == 3  # feature tasks: the built-in benchmark
    assert load_config(None, ["compare.confirm_seeds=0"]).confirm_seeds == 0
    text = {"target": "t", "tasks": {"t": {"train": "t.csv", "test": "t.csv"}, "a": {"train": "t.csv"}}}
    assert config_from_dict(text, "c.yaml", tmp_path).confirm_seeds == 0
    assert config_from_dict({**text, "model": {"regime": "finetune"}}, "c.yaml", tmp_path).confirm_seeds == 0
    assert config_from_dict({**text, "compare": {"confirm_seeds": 2}}, "c.yaml", tmp_path).confirm_seeds == 2
    for bad in ("-1", "33", "1.5"):
        with pytest.raises(ConfigError, match="compare.confirm_seeds"):
            load_config(None, [f"compare.confirm_seeds={bad}"])
    assert load_config(None).confirm_rows == CONFIRM_ROWS == 60 and load_config(None, ["compare.confirm_rows=0"]).confirm_rows == 0
    assert config_from_dict(text, "c.yaml", tmp_path).confirm_rows == 0  # text: one round where it confirms at all
    for bad in ("-1", "1.5", "true"):
        with pytest.raises(ConfigError, match="compare.confirm_rows"):
            load_config(None, [f"compare.confirm_rows={bad}"])
    assert load_config(None).confirm_fraction == CONFIRM_FRACTION  # feature tasks: the confirmation's own share
    assert config_from_dict(text, "c.yaml", tmp_path).confirm_fraction == 0.1  # elsewhere: search.reward_fraction
    assert load_config(None, ["compare.confirm_fraction=0.1"]).for_confirmation().search.reward_fraction == 0.1
    assert load_config(None).for_confirmation().search.reward_fraction == CONFIRM_FRACTION
    for bad in ("0", "1", "-0.2", "x"):
        with pytest.raises(ConfigError, match="compare.confirm_fraction"):
            load_config(None, [f"compare.confirm_fraction={bad}"])


def test_a_resume_may_change_the_incumbent_and_reruns_nothing(tmp_path: Path) -> None:
    """The incumbent only shapes the choice from the rows: a run made without one (e.g. before the feature regime's
    default became single_task) resumes under another, keeps every row and answers with the new burden of proof."""
    args = ["compare", "builtin", "--methods", "single_task,proportional", "--seeds", "2", "--out", OUT, *SMALL,
            "-o", "compare.confirm_seeds=0"]
    o = invoke([*args, "-o", "compare.incumbent=proportional", "-o", "compare.incumbent_margin=10"], tmp_path)
    assert o.exit_code == 0, o.stderr
    assert json.loads((tmp_path / OUT / "recommended.json").read_text())["source"] == "proportional"
    before = sorted((r["method"], r["seed"], r["test"]) for r in _rows(tmp_path) if r["method"] != "recommended")
    o = invoke([*args, "-o", "compare.incumbent_margin=10", "--resume"], tmp_path)  # the regime's default: single_task
    assert o.exit_code == 0, o.stderr
    rec = json.loads((tmp_path / OUT / "recommended.json").read_text())
    assert rec["source"] == "single_task" and rec["incumbent"] == "single_task"
    assert sorted((r["method"], r["seed"], r["test"]) for r in _rows(tmp_path) if r["method"] != "recommended") == before
