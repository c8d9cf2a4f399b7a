"""The family benchmark's quick mode, and that its test-oracle never feeds a method."""

import os
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
import bench_families as bf  # noqa: E402

from taskmix.data.families import make_family  # noqa: E402
from taskmix.data.tasks import Split  # noqa: E402
from taskmix.runs import prepare_job  # noqa: E402

TINY = {"search": {"meta_steps": 2, "probe_batches": 2}}
METHODS = ("single_task", "uniform", "learned_time_invariant", "learned_time_variant", "exp3", "paper")


def _family():
    return make_family(5, n_test=300, train_steps=40, overrides=TINY)


def test_schedules_do_not_depend_on_the_test_split():
    """Scrambling the target's test labels changes the test scores only: no method (and no choice) sees them."""
    torch.set_num_threads(1)
    fam = _family()
    job = prepare_job(fam.config, fam.tasks, 0)
    t0 = job.tasks[0]
    flipped = replace(t0, test=Split(t0.test.x, 1 - t0.test.y))
    job2 = replace(job, tasks=[flipped, *job.tasks[1:]])
    a = bf.run_methods(job, {"v": {"shrink": 2.0}}, METHODS)
    b = bf.run_methods(job2, {"v": {"shrink": 2.0}}, METHODS)
    assert [r["method"] for r in a] == [r["method"] for r in b]
    for ra, rb in zip(a, b):
        assert np.allclose(ra["weights"], rb["weights"], atol=0, rtol=0), ra["method"]
        assert ra["reward_split"] == rb["reward_split"]
        assert abs(ra["test"] - (1 - rb["test"])) < 1e-9  # the flipped labels were the only difference
    # the learned pick (reward side only) is the same for both
    fa = {"rows": [{"seed": 0, **r} for r in a]}
    fb = {"rows": [{"seed": 0, **r} for r in b]}
    bf.add_learned(fa["rows"], "learned_", "learned")
    bf.add_learned(fb["rows"], "learned_", "learned")
    assert fa["rows"][-1]["picked"] == fb["rows"][-1]["picked"]


def test_quick_family_summary():
    """Two seeds of one family: the summary holds the learned pick and the rules, none above the test-oracle."""
    torch.set_num_threads(1)
    fam = _family()
    res = bf.run_family(fam, [0, 1], {}, bf.RULES + ("learned_time_invariant", "learned_time_variant"), n_random=1)
    assert res["oracle"]["best"] in res["oracle"]["candidates"]
    stats = bf.summarize([res])
    assert {"learned", "single_task", "uniform"} <= set(stats)
    # the test-oracle is the best candidate, so no rule beats it
    assert all(r >= -1e-12 for m in bf.RULES for r in stats[m]["regret"])
    assert "learned" in bf.table(stats, 1, 2)


def test_recommendation_from_stored_rows_is_the_one_the_run_made():
    """``recommendation_of`` on a family's stored rows (what ``--stability`` reads) chooses the mixture the run's
    ``recommended`` rows carry, and a seed set it is not given does not enter."""
    torch.set_num_threads(1)
    fam = _family()
    res = bf.run_family(fam, [0, 1], {}, ("single_task", "uniform", "learned_time_invariant"), n_random=0,
                        oracle=False, recommended=True)
    made = [r for r in res["rows"] if r["method"] == "recommended"]
    assert len(made) == 2 and "oracle" not in res
    jobs = {s: prepare_job(fam.config, fam.tasks, s) for s in (0, 1)}
    rec = bf.recommendation_of(res["rows"], jobs)
    assert rec.source == made[0]["source"] and rec.verdict == made[0]["verdict"]
    assert np.allclose(rec.schedule.mean_weights(), made[0]["weights"])
    assert 0.0 <= made[0]["agreement"] <= 1.0
    one = bf.recommendation_of(res["rows"], {0: jobs[0]})
    assert one.seeds == [0]
    # the post hoc screens: a huge margin puts the burden of proof on one side, which then never wins
    bf.add_recommended_screen(res, 100.0, "rec_z100", family=fam)
    bf.add_recommended_screen(res, 100.0, "rec_L100", family=fam, prefer="learned")
    by = {r["method"]: r["source"] for r in res["rows"] if r["method"].startswith("rec_")}
    assert by == {"rec_z100": by["rec_z100"], "rec_L100": "learned_time_invariant"}
    assert by["rec_z100"] in ("single_task", "uniform")
    assert bf.screen_spec("L1.96") == (1.96, "learned", "rec_L1.96", "metric")
    assert bf.screen_spec("0")[1:] == ("rule", "rec_z0", "metric")
    assert bf.screen_spec("X0") == (0.0, "rule", "rec_X0", "loss") and bf.screen_spec("XP1")[1:] == ("incumbent", "rec_XP1", "loss")


def test_final_check_uses_the_reward_split_only():
    """The final check picks on reward-split scores only."""
    rows = [{"seed": 0, "method": m, "test": 0.5, "reward_split": 0.7, "seconds": 1.0, "weights": None} for m in bf.RULES]
    rows.append({"seed": 0, "method": "learned", "test": 0.9, "reward_split": 0.6, "seconds": 3.0, "weights": None})
    rows[1] = {**rows[1], "reward_split": 0.95}  # uniform wins on the reward split by far
    bf.add_checked(rows, n_reward=200, z=2.0, name="checked")
    assert rows[-1]["kept"] == "uniform" and rows[-1]["test"] == 0.5 and rows[-1]["seconds"] == 7.0
    few = rows[:-1]
    bf.add_checked(few, n_reward=5, z=2.0, name="checked")  # 5 examples: within noise, learned is kept
    assert few[-1]["kept"] == "learned" and few[-1]["test"] == 0.9


def test_rows_files_merge_by_family(tmp_path):
    """Shards and variant-only runs join by family; a row seen twice keeps the first; no oracle, no family."""
    import json

    full = {"family": 1, "roles": {}, "info": {}, "oracle": {"best": "uniform", "test": 0.9, "candidates": {}},
            "rows": [{"seed": 0, "method": "uniform", "test": 0.8}]}
    extra = {"family": 1, "roles": {}, "info": {}, "rows": [{"seed": 0, "method": "v/time_invariant", "test": 0.85},
                                                         {"seed": 0, "method": "uniform", "test": 0.1}]}
    orphan = {"family": 2, "roles": {}, "info": {}, "rows": [{"seed": 0, "method": "uniform", "test": 0.5}]}
    (tmp_path / "a.jsonl").write_text(json.dumps(full) + "\n")
    (tmp_path / "b.jsonl").write_text(json.dumps(extra) + "\n" + json.dumps(orphan) + "\n")
    fams = bf.merge([tmp_path / "a.jsonl", tmp_path / "b.jsonl"])
    assert [f["family"] for f in fams] == [1]
    assert {(r["method"], r["test"]) for r in fams[0]["rows"]} == {("uniform", 0.8), ("v/time_invariant", 0.85)}


def test_set_options_become_family_config_overrides():
    assert bf.family_overrides([]) is None
    got = bf.family_overrides(["search.credit_window=4", "search.credit_temperature=2.5", "compare.methods=[uniform]"],
                              incumbent="proportional")
    assert got == {"search": {"credit_window": 4, "credit_temperature": 2.5},
                   "compare": {"methods": ["uniform"], "incumbent": "proportional"}}
    fam = make_family(101000, generator="wide", overrides=got)
    assert fam.config.search.credit_window == 4 and fam.config.compare.incumbent == "proportional"
    for bad in ("credit_window=4", "search.=4", "search.credit_window", "a.b.c=1"):
        with pytest.raises(SystemExit, match="expected SECTION.KEY=VALUE"):
            bf.family_overrides([bad])


def test_a_variants_rows_take_the_place_of_the_learned_ones():
    """--as-learned: the screen sees the variant's rows as learned_time_invariant / learned_time_variant; the old
    learned rows, other variants and the stored recommendation (made from the old rows) are gone."""
    rows = [{"seed": s, "method": m, "test": t} for s in (0, 1) for m, t in (
        ("uniform", 0.8), ("single_task", 0.7), ("learned_time_invariant", 0.1), ("learned_time_variant", 0.2),
        ("recommended", 0.3), ("v/time_invariant", 0.91), ("v/time_variant", 0.92), ("w/time_variant", 0.5))]
    fam = {"family": 7, "rows": rows}
    got = bf.as_learned(fam, "v")
    assert sorted((r["seed"], r["method"], r["test"]) for r in got["rows"]) == sorted(
        [(s, m, t) for s in (0, 1) for m, t in (("uniform", 0.8), ("single_task", 0.7), ("learned_time_invariant", 0.91),
                                               ("learned_time_variant", 0.92))])
    assert fam["rows"] == rows  # the input is left as it was
    with pytest.raises(SystemExit, match="lacks its rows"):
        bf.as_learned({"family": 7, "rows": [r for r in rows if (r["seed"], r["method"]) != (1, "v/time_variant")]}, "v")


# ---------------------------------------------------------------- issue 22: the wide generator, the text families


def test_oracle_candidates_pair_shares():
    """v1's oracle candidates keep their names; other shares add target@S+AUX mixtures."""
    fam = make_family(3)  # target, helpful, harmful
    assert [n for n, _ in bf.candidates(fam, 0)] == ["target+helpful", "target+harmful"]  # v1's names, unchanged
    wide = bf.candidates(fam, 1, shares=(0.25, 0.5))
    assert [n for n, _ in wide][:4] == ["target@0.25+helpful", "target@0.25+harmful", "target+helpful", "target+harmful"]
    assert np.allclose(wide[0][1], [0.25, 0.75, 0.0]) and len(wide) == 5
    # a wide family with two or more declared relatives also gets target + all of them
    fam = next(f for f in (make_family(101000 + i, generator="wide") for i in range(40))
               if sum(r in bf.RELATIVE_ROLES for r in f.roles.values()) >= 2)
    got = dict(bf.candidates(fam, 0, shares=(0.25, 0.5), relatives=True))
    w = got["target@0.25+relatives"]
    rel = [i for i, n in enumerate(fam.names) if fam.roles[n] in bf.RELATIVE_ROLES]
    assert w[0] == 0.25 and np.allclose(w[rel], 0.75 / len(rel)) and abs(w.sum() - 1) < 1e-12
    assert "target+relatives" in got and "target+relatives" not in dict(bf.candidates(fam, 0, shares=(0.5,)))


def test_wide_family_summary_and_composition():
    """A wide family runs, and the summary reports its composition and the regret by kind of family."""
    torch.set_num_threads(1)
    fam = make_family(101000, n_test=300, train_steps=40, overrides=TINY, generator="wide")
    res = bf.run_family(fam, [0, 1], {}, bf.RULES, n_random=0, shares=(0.25, 0.5))
    assert res["generator"] == "wide"
    assert any(k.startswith("target@0.25+") for k in res["oracle"]["candidates"])
    stats = bf.summarize([res])
    assert set(bf.RULES) <= set(stats) and "learned" not in stats  # the methods are whatever the rows hold
    text = bf.composition([res])
    assert "same-input conflict or orthogonal task: 1/1 (100%)" in text  # family 101000 holds a conflict
    kinds = bf.kind_table(stats, [res])
    assert "same-input conflict/orthogonal (1)" in kinds and "| uniform |" in kinds


def test_summarize_old_rows_file(tmp_path, capsys):
    """A rows file written before issue 22 (no generator key) summarizes as before: the v1 table, nothing added."""
    import json

    torch.set_num_threads(1)
    res = bf.run_family(_family(), [0, 1], {}, bf.RULES, n_random=1)
    assert "generator" not in res
    f = tmp_path / "rows.jsonl"
    f.write_text(json.dumps(res) + "\n")
    bf.main(["--summarize", str(f)])
    out = capsys.readouterr().out
    assert out.startswith("| method | regret to test-oracle") and "| single_task |" in out
    assert "Families:" not in out and "by kind of family" not in out


def _text_sources():
    import bench_text_families as tf

    def src(preset, stem, rows):
        lang = preset.split("/")[1] if preset.startswith("xnli/") else "en"
        return tf.Source(preset, stem, rows, lang, tf.parallel_group(preset, stem))

    out = [src("glue/rte", "train", 2490), src("glue/rte", "validation", 277), src("glue/mrpc", "train", 3668),
           src("glue/mrpc", "validation", 408), src("glue/qnli", "validation", 5463), src("glue/mnli", "train_9k", 9000),
           src("glue/cola", "train", 8551), src("glue/cola", "validation", 1043), src("glue/sst2", "validation", 872)]
    for lang in ("en", "ur", "sw", "th", "hi"):
        out += [src(f"xnli/{lang}", "validation", 2490), src(f"xnli/{lang}", "test", 5010)]
    for lang in ("sw", "ur", "de", "es", "fr", "tr", "vi", "zh"):
        out.append(src(f"xnli/{lang}", "translate_train_9k", 9000))
    return tf, {s.key: s for s in out}


def test_text_families_draws_never_train_on_parallel_rows():
    """Targets, sizes and heads as documented; no training split is (parallel to) the reported one; the oracle grid is small."""
    tf, sources = _text_sources()
    fams = tf.draw_families(range(201000, 201060), sources)
    assert {f.kind for f in fams} == set(tf.KINDS)
    for f in fams:
        assert 100 <= len(f.target_rows) <= 1000 and 2 <= len(f.aux) <= 4
        assert all(1000 <= len(r) <= 3000 or len(r) == s.rows for _, s, r in f.aux)
        assert len({n for n, _, _ in f.aux}) == len(f.aux) and f.target.key not in {s.key for _, s, _ in f.aux}
        assert all(s.group != "xnli-test" for _, s, _ in f.training)  # nothing trains on an XNLI test split
        if f.kind == "glue":
            assert f.report.key == f.target.key.replace(":train", ":validation") and f.encoder == "minilm"
        else:
            assert f.report.stem == "test" and f.report.lang == f.target.lang and f.encoder == "e5-small-multilingual"
            assert len({f.target.labels, *(s.labels for _, s, _ in f.aux)}) == 1  # 3-way NLI throughout
        tf.check_no_leak(f)
        assert (f.target_rows < f.target.rows).all() and len(np.unique(f.target_rows)) == len(f.target_rows)
    assert tf.draw_family(201007, sources).describe() == tf.draw_family(201007, sources).describe()  # deterministic
    # the leak check bites: a family reporting on XNLI validation rows that an auxiliary translates
    f = fams[[g.kind for g in fams].index("translate_train")]
    bad = tf.TextFamily(f.fid, f.kind, f.encoder, f.heads, f.target, f.target_rows, sources["xnli/hi:validation"],
                        np.arange(100), [("val_ur", sources["xnli/ur:validation"], np.arange(50, 150))])
    with pytest.raises(AssertionError, match="parallel"):
        tf.check_no_leak(bad)
    assert [len(tf.grid_candidates(n, 35)) for n in (3, 4, 5)] == [28, 35, 35]


def test_text_families_dry_run(tmp_path, capsys):
    """--dry-run lists the families and counts the sentences to encode, encoding nothing."""
    import bench_text_families as tf

    if not (tf.DEFAULT_DATA / "MANIFEST.tsv").is_file():
        pytest.skip(f"the shared data folder {tf.DEFAULT_DATA} is absent (it holds the GLUE / XNLI files)")
    tf.main(["--families", "3", "--seeds", "1", "--family-seed", "201", "--dry-run", "--cache-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "3 text families (development)" in out and out.count(" -> ") == 3
    assert "distinct sentences to encode" in out and "the whole benchmark" in out and "training runs" in out


def test_the_confirm_screen_needs_rows_of_later_seeds():
    rows = [{"method": "uniform", "seed": s, "test": 0.5, "reward_split": 0.5, "seconds": 1.0, "schedule": None}
            for s in (0, 1, 2)]
    with pytest.raises(SystemExit, match="--screen-confirm 3: family 7 needs rows"):
        bf.add_confirm_screen({"family": 7, "rows": rows}, 3)


def test_the_confirm_screen_keeps_its_incumbent_unless_beaten():
    """With an incumbent and a huge margin, every round of the confirmation screen keeps that rule; the screen's rows
    are scored on the comparison's seeds only."""
    torch.set_num_threads(1)
    fam = _family()
    res = bf.run_family(fam, [0, 1, 2, 3], {}, ("single_task", "uniform", "learned_time_invariant"), n_random=0,
                        oracle=False)
    kept = {**res, "rows": list(res["rows"])}
    bf.add_confirm_screen(kept, 2, "rec_inc", [2], incumbent="single_task", incumbent_z=100.0)
    mine = [r for r in kept["rows"] if r["method"] == "rec_inc"]
    assert sorted(r["seed"] for r in mine) == [0, 1] and {r["source"] for r in mine} == {"single_task"}
    assert {r["seed"] for r in kept["rows"]} == {0, 1}  # the later seeds' rows are dropped
    own = {r["seed"]: r["test"] for r in kept["rows"] if r["method"] == "single_task"}
    assert all(r["test"] == own[r["seed"]] for r in mine)
    other = {**res, "rows": list(res["rows"])}  # another incumbent: the same rows now keep that one
    bf.add_confirm_screen(other, 2, "rec_inc", [2], incumbent="uniform", incumbent_z=100.0)
    assert {r["source"] for r in other["rows"] if r["method"] == "rec_inc"} == {"uniform"}
