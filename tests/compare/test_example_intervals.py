"""Intervals that count the report split's sampling noise: the predictions codec, example_se, combined_ci, and
their place in a comparison's summary, table and rows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from taskmix.compare.predictions import decode_labels, encode_labels
from taskmix.compare.stats import combined_ci, example_se, format_table, paired_t, summarize


# ----------------------------------------------------------------- codec
def test_codec_round_trip_and_refusals():
    a = np.random.default_rng(0).integers(0, 3, size=5010)
    s = encode_labels(a)
    assert s.startswith("u8:") and len(s) < 7000
    np.testing.assert_array_equal(decode_labels(s, n=5010, num_labels=3), a)
    assert decode_labels(encode_labels(np.array([], dtype=np.int64))).size == 0
    for bad, why in ((123, "starting with 'u8:'"), ("AAEC", "starting with 'u8:'"), ("u8:!!", "not valid base64"),
                     ("u8:AAEC", "holds 3 labels, expected 4")):
        with pytest.raises(ValueError, match=why):
            decode_labels(bad, n=4)
    with pytest.raises(ValueError, match="expected labels below 2"):
        decode_labels("u8:AAEC", num_labels=2)
    for bad in (np.array([0, 256]), np.array([-1]), np.array([[0, 1]]), np.array([0.5])):
        with pytest.raises(ValueError, match="integers in 0..255"):
            encode_labels(bad)


# ------------------------------------------------------------ example_se
def _preds(correct: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Predictions that are right where ``correct`` (else the next label of three)."""
    return np.where(correct, y, (y + 1) % 3)


def test_example_se_of_accuracy_is_the_per_example_formula():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 800)
    pa, pb = _preds(rng.random((4, 800)) < 0.7, y), _preds(rng.random((4, 800)) < 0.6, y)
    d = (pa == y).mean(0) - (pb == y).mean(0)
    assert example_se(pa, pb, y) == pytest.approx(d.std(ddof=1) / math.sqrt(800))
    assert example_se(pa, pa, y) == 0.0
    # the same predictions on twice the examples: about 1/sqrt(2) of the error
    y2, pa2, pb2 = np.tile(y, 2), np.tile(pa, 2), np.tile(pb, 2)
    assert example_se(pa2, pb2, y2) == pytest.approx(example_se(pa, pb, y) / math.sqrt(2), rel=0.01)


def test_example_se_of_macro_f1_is_a_seeded_bootstrap_near_the_accuracy_one():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 1000)
    pa, pb = _preds(rng.random((3, 1000)) < 0.7, y), _preds(rng.random((3, 1000)) < 0.6, y)
    f = example_se(pa, pb, y, "macro_f1", 3, n_resamples=500, seed=0)
    assert f == example_se(pa, pb, y, "macro_f1", 3, n_resamples=500, seed=0)  # deterministic by seed
    assert 0.5 < f / example_se(pa, pb, y) < 2.0  # balanced labels: macro-F1 moves about as accuracy does
    with pytest.raises(ValueError, match="do not pair"):
        example_se(pa, pb[:, :10], y)
    with pytest.raises(ValueError, match="unknown metric"):
        example_se(pa, pb, y, "mcc")


# ----------------------------------------------------------- combined_ci
def test_combined_ci_is_never_narrower_than_either_part():
    d = np.array([0.010, 0.014, 0.008, 0.012, 0.011])
    lo_t, hi_t = paired_t(d)["ci_low"], paired_t(d)["ci_high"]
    for se in (0.0, 1e-4, 0.003, 0.02):
        lo, hi = combined_ci(d, se, 5000)
        assert lo <= lo_t + 1e-12 and hi >= hi_t - 1e-12
        assert hi - lo >= 2 * 1.959 * se
        assert (lo + hi) / 2 == pytest.approx(d.mean())
    lo1, hi1 = combined_ci([0.02], 0.005, 5000)  # one seed: the examples' noise alone
    assert (hi1 - lo1) / 2 == pytest.approx(1.96 * 0.005, rel=1e-3)


def test_combined_ci_covers_a_population_tie_that_the_seed_interval_misses():
    """Two methods with the same accuracy over the task's inputs, different per example: on a finite test set
    the seeds' interval (test set held fixed) excludes 0 far more often than 5%; the combined one about 5%."""
    rng = np.random.default_rng(3)
    n, seeds, sims = 400, 5, 300
    miss_seed = miss_comb = 0
    y = np.zeros(n, dtype=np.int64)
    for _ in range(sims):
        # each method mostly right or wrong on an example whatever the seed (60% of inputs each, independently:
        # no difference over the task's inputs); a seed flips 5% of its answers
        typical_a, typical_b = rng.random(n) < 0.6, rng.random(n) < 0.6
        pa = _preds(typical_a ^ (rng.random((seeds, n)) < 0.05), y)
        pb = _preds(typical_b ^ (rng.random((seeds, n)) < 0.05), y)
        d = (pa == y).mean(1) - (pb == y).mean(1)
        t = paired_t(d)
        miss_seed += not (t["ci_low"] <= 0 <= t["ci_high"])
        lo, hi = combined_ci(d, example_se(pa, pb, y), n)
        miss_comb += not (lo <= 0 <= hi)
    assert miss_seed / sims > 0.3
    assert miss_comb / sims < 0.09


# ------------------------------------------------------------- summarize
def _row(method: str, seed: int, pred: np.ndarray | None, y: np.ndarray) -> dict:
    r = {"method": method, "seed": seed, "test": float(np.mean(pred == y)) if pred is not None else 0.5,
         "seconds": 1.0, "train_steps": 100, "evaluations": 1}
    if pred is not None:
        r["predictions"] = encode_labels(pred)
    return r


def test_summary_and_table_gain_the_examples_interval_only_with_predictions():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 600)
    rows = [_row(m, s, _preds(rng.random(600) < acc, y), y)
            for s in range(3) for m, acc in (("uniform", 0.6), ("proportional", 0.62), ("learned_time_invariant", 0.66))]
    plain = summarize(rows)
    assert not any("diff_ci_examples_low" in s for s in plain)
    assert "seeds + test examples" not in format_table(plain)
    full = {s["method"]: s for s in summarize(rows, labels=y, metric="accuracy", num_labels=3)}
    best = next(m for m, s in full.items() if s["best_baseline"])
    for m, s in full.items():
        if m == best:
            assert "diff_ci_examples_low" not in s
            continue
        assert s["diff_ci_examples_low"] <= s["diff_ci_low"] and s["diff_ci_examples_high"] >= s["diff_ci_high"]
        assert s["diff_se_examples"] > 0
        assert s["within_noise_examples"] == (s["diff_ci_examples_low"] <= 0 <= s["diff_ci_examples_high"])
    table = format_table(list(full.values()))
    assert "Δ 95% CI, seeds + test examples" in table and "Welch-Satterthwaite" in table
    # one method's rows without predictions: it gets no such interval, the others still do
    rows2 = [r if r["method"] != "learned_time_invariant" else {k: v for k, v in r.items() if k != "predictions"} for r in rows]
    part = {s["method"]: s for s in summarize(rows2, labels=y)}
    assert "diff_ci_examples_low" not in part["learned_time_invariant"]
    assert any("diff_ci_examples_low" in s for s in part.values())
