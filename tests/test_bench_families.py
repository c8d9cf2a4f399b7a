"""The family benchmark's quick mode, and that its test-oracle never feeds a method."""

import os
import sys
from dataclasses import replace

import numpy as np
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
    torch.set_num_threads(1)
    fam = _family()
    res = bf.run_family(fam, [0, 1], {}, bf.RULES + ("learned_time_invariant", "learned_time_variant"), n_random=1)
    assert res["oracle"]["best"] in res["oracle"]["candidates"]
    stats = bf.summarize([res])
    assert {"learned", "single_task", "uniform"} <= set(stats)
    # the test-oracle is the best candidate, so no rule beats it
    assert all(r >= -1e-12 for m in bf.RULES for r in stats[m]["regret"])
    assert "learned" in bf.table(stats, 1, 2)


def test_final_check_uses_the_reward_split_only():
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
