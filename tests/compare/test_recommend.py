"""The recommendation: pooled held-out evidence, a learned mixture only beyond noise, no crown on a tie."""

from __future__ import annotations

import numpy as np
import pytest

from taskmix.compare.predictions import decode_losses, encode_labels, encode_losses
from taskmix.compare.recommend import LEARNED_INCUMBENT, UNSTABLE_TV, recommend
from taskmix.schedule import Schedule

KINDS = {"single_task": "baseline", "uniform": "baseline", "proportional": "baseline",
         "learned_time_invariant": "learned", "oracle": "oracle", "exp3": "adaptive"}
TASKS = ["t", "a", "b"]


def _row(method: str, seed: int, held: float, w, test: float = 0.5, preds=None, losses=None) -> dict:
    extra = {"reward_split": held}
    if preds is not None:
        extra["reward_predictions"] = encode_labels(np.asarray(preds))
    if losses is not None:
        extra["reward_losses"] = encode_losses(np.asarray(losses))
    return {"method": method, "seed": seed, "test": test, "extra": extra,
            "schedule": Schedule.from_weights(TASKS, w).to_dict()}


def _rules(seed: int, base: float, noise: float = 0.0) -> list[dict]:
    return [_row("single_task", seed, base + noise, [1, 0, 0]),
            _row("uniform", seed, base + 0.001 - noise, [1, 1, 1]),
            _row("proportional", seed, base - 0.001, [1, 4, 4])]


def test_rules_within_noise_give_a_tie_and_crown_no_row() -> None:
    rng = np.random.default_rng(0)
    rows = [r for s in range(5) for r in _rules(s, 0.7, float(rng.normal(0, 0.02)))]
    rec = recommend(rows, KINDS)
    assert rec is not None
    assert rec.verdict == "tie"
    assert rec.text.startswith("No mixture wins beyond noise")
    assert set(rec.within_noise) >= {"single_task", "uniform", "proportional"} - {rec.source}
    assert rec.schedule.provenance["rule"] == rec.source


def test_a_learned_mixture_is_the_seeds_consensus_and_a_win_within_noise_is_a_tie() -> None:
    rng = np.random.default_rng(1)
    rows, ws = [], []
    for s in range(5):
        rows += _rules(s, 0.70, float(rng.normal(0, 0.005)))
        w = np.asarray([0.3, 0.6, 0.1]) + rng.normal(0, 0.02, 3)
        ws.append(w / w.sum())
        rows.append(_row("learned_time_invariant", s, 0.80 + float(rng.normal(0, 0.005)), ws[-1]))
    rec = recommend(rows, KINDS)
    assert rec is not None and rec.verdict == "learned" and rec.source == "learned_time_invariant"
    assert np.allclose(rec.schedule.weights[0], np.mean(ws, axis=0))
    assert rec.versus_rule is not None and rec.versus_rule["ci_low"] > 0
    assert rec.stable and rec.spread < 0.05 and rec.choice_agreement > 0.9
    assert rec.text.startswith("Recommended: the learned mixture") and "better than every other candidate" in rec.text

    # the same gain with seed-to-seed noise far larger: the better held-out mean still wins by default, but the
    # verdict is a tie (no crown); with a margin of 1.96 standard errors the rule is recommended
    noisy = [dict(r, extra={"reward_split": r["extra"]["reward_split"] + (0.3 if r["seed"] % 2 else -0.3)
                            * (r["method"] == "learned_time_invariant")}) for r in rows]
    rec2 = recommend(noisy, KINDS)
    assert rec2 is not None and rec2.source == "learned_time_invariant" and rec2.verdict == "tie"
    assert rec2.text.startswith("No mixture wins beyond noise")
    rec3 = recommend(noisy, KINDS, z=1.96)
    assert rec3 is not None and rec3.kind == "baseline" and rec3.verdict == "tie"
    with pytest.raises(ValueError, match="z must be"):
        recommend(noisy, KINDS, z=-1)


def test_seeds_that_disagree_mark_the_learned_answer_unstable() -> None:
    rows = []
    for s in range(4):
        rows += _rules(s, 0.6)
        rows.append(_row("learned_time_invariant", s, 0.9 + 0.001 * s, [0.9, 0.05, 0.05] if s % 2 else [0.05, 0.9, 0.05]))
    rec = recommend(rows, KINDS)
    assert rec is not None and rec.verdict == "learned"
    assert rec.spread > UNSTABLE_TV and not rec.stable and "Unstable" in rec.text


def test_a_far_mixture_within_noise_of_the_choice_marks_the_answer_unstable() -> None:
    # two learned candidates, equally good on the held-out rows, with mixtures 0.4 apart: the seeds of each agree,
    # yet the evidence does not say which weights to use
    rows = []
    for s in range(4):
        rows += _rules(s, 0.6)
        rows.append(_row("learned_time_invariant", s, 0.90 + 0.001 * (s % 2), [0.5, 0.4, 0.1]))
        rows.append(_row("learned_time_variant", s, 0.90 + 0.001 * ((s + 1) % 2), [0.1, 0.8, 0.1]))
    kinds = {**KINDS, "learned_time_variant": "learned"}
    rec = recommend(rows, kinds)
    assert rec is not None and rec.verdict == "learned" and rec.spread < 1e-9
    other = ({"learned_time_invariant", "learned_time_variant"} - {rec.source}).pop()
    assert rec.within_noise == [other] and rec.alternatives == {other: pytest.approx(0.4)}
    assert rec.span == pytest.approx(0.4) and not rec.stable
    assert "Unstable: the mixtures within noise" in rec.text and f"{other} 0.40 from it" in rec.text
    assert rec.to_dict()["alternatives"] == rec.alternatives and rec.to_dict()["span"] == rec.span
    # the same with the second candidate's mixture close to the first: stable, and nothing said
    near = [dict(r, schedule=_row("x", 0, 0, [0.45, 0.45, 0.1])["schedule"]) if r["method"] == "learned_time_variant"
            else r for r in rows]
    rec = recommend(near, kinds)
    assert rec is not None and rec.stable and "Unstable" not in rec.text
    assert max(rec.alternatives.values()) <= rec.span < UNSTABLE_TV


def test_held_out_rows_are_pooled_over_seeds_when_predictions_are_kept() -> None:
    """With the held-out labels, the difference is pooled over 2 x 200 paired held-out rows."""
    rng = np.random.default_rng(2)
    labels = {s: rng.integers(0, 2, 200) for s in range(2)}
    rows = []
    for s, y in labels.items():
        good = np.where(rng.random(200) < 0.9, y, 1 - y)
        bad = np.where(rng.random(200) < 0.7, y, 1 - y)
        for m, p, w in [("single_task", bad, [1, 0, 0]), ("uniform", bad, [1, 1, 1]),
                        ("learned_time_invariant", good, [0.2, 0.8, 0.0])]:
            rows.append(_row(m, s, float((p == y).mean()), w, preds=p))
    assert recommend(rows, KINDS).versus_rule["pooled"] == "seeds (paired t)"  # without the labels: per seed
    rec = recommend(rows, KINDS, labels=labels)
    assert rec is not None and rec.verdict == "learned"
    assert rec.versus_rule["pooled"] == "seeds x held-out rows" and rec.versus_rule["n_rows"] == 400
    assert rec.schedule.weights[0][2] == 0.0  # a task every seed dropped stays exactly zero
    assert "Only 2 seeds" in rec.text


def test_the_oracle_and_online_runs_are_not_candidates_and_one_seed_has_no_interval() -> None:
    rows = _rules(0, 0.5) + [_row("oracle", 0, 0.99, [0, 1, 0]), _row("exp3", 0, 0.99, [0, 0, 1])]
    rec = recommend(rows, KINDS)
    assert rec is not None and rec.source in ("single_task", "uniform", "proportional")
    assert "oracle" not in rec.held_out and "exp3" not in rec.held_out
    assert "Only 1 seed" in rec.text


@pytest.mark.parametrize("bad", [float("nan"), None, "0.5", True])
def test_a_method_with_a_row_lacking_a_finite_held_out_score_is_left_out(bad) -> None:
    rows = _rules(0, 0.5) + _rules(1, 0.5)
    rows.append(_row("learned_time_invariant", 0, 0.9, [0, 1, 0]))
    rows.append(dict(_row("learned_time_invariant", 1, 0.9, [0, 1, 0]), extra={"reward_split": bad}))
    rec = recommend(rows, KINDS)
    assert rec is not None and "learned_time_invariant" not in rec.held_out


def test_nothing_to_recommend_without_a_replayed_schedule() -> None:
    assert recommend([_row("exp3", 0, 0.9, [1, 1, 1])], KINDS) is None
    assert recommend([], KINDS) is None


def test_two_learned_schedules_within_noise_of_each_other_but_beyond_the_rules_are_no_tie() -> None:
    rng = np.random.default_rng(3)
    rows = []
    for s in range(5):
        rows += _rules(s, 0.70, float(rng.normal(0, 0.005)))
        held = 0.85 + float(rng.normal(0, 0.01))
        rows.append(_row("learned_time_invariant", s, held, [0.3, 0.6, 0.1]))
        rows.append(_row("learned_time_variant", s, held + float(rng.normal(0, 0.01)), [0.32, 0.58, 0.1]))
    kinds = {**KINDS, "learned_time_variant": "learned"}
    rec = recommend(rows, kinds)
    assert rec is not None and rec.verdict == "learned" and rec.kind == "learned"
    other = ({"learned_time_invariant", "learned_time_variant"} - {rec.source}).pop()
    assert rec.within_noise == [other] and "better than every rule beyond noise" in rec.text and other in rec.text


def test_peers_and_replayed_online_strategies_are_shown_but_never_recommended() -> None:
    """They fit their mixtures to the held-out rows themselves: their held-out scores flatter them (CANDIDATE_KINDS)."""
    kinds = {**KINDS, "regmix": "peer", "exp3-replay": "adaptive-replay"}
    rows = [r for s in range(5) for r in _rules(s, 0.6)]
    rows += [_row("regmix", s, 0.95, [1, 2, 0]) for s in range(5)]
    rows += [_row("exp3-replay", s, 0.9, [1, 0, 2]) for s in range(5)]
    rec = recommend(rows, kinds)
    assert rec is not None and rec.source not in ("regmix", "exp3-replay")
    assert "regmix" not in rec.held_out and "exp3-replay" not in rec.held_out
    rows += [_row("learned_time_invariant", s, 0.8, [1, 1, 0]) for s in range(5)]
    assert recommend(rows, kinds).source == "learned_time_invariant"


def _with_predictions(seed: int, n: int, correct: dict[str, float], rng: np.random.Generator) -> list[dict]:
    """Rows whose reward-split predictions are right on a share ``correct[m]`` of ``n`` held-out rows (labels 0)."""
    out = []
    for m, w in (("single_task", [1, 0, 0]), ("uniform", [1, 1, 1]), ("proportional", [1, 4, 4]),
                 ("learned_time_invariant", [0.2, 0.7, 0.1])):
        preds = (rng.random(n) >= correct[m]).astype(np.int64)  # 0 (right) with probability correct[m]
        out.append(_row(m, seed, float(np.mean(preds == 0)), w, preds=preds))
    return out


def _seeds3(correct: dict[str, float], rng: np.random.Generator) -> list[dict]:
    """:func:`_with_predictions` on seeds 0-2, 200 held-out rows each."""
    return [r for s in range(3) for r in _with_predictions(s, 200, correct, rng)]


def test_an_incumbent_rule_is_kept_unless_a_candidate_beats_it_beyond_its_margin() -> None:
    rng = np.random.default_rng(7)
    labels = {s: np.zeros(200, dtype=np.int64) for s in range(3)}
    # a learned candidate a hair better than proportional on 3 x 200 held-out rows: the best, not beyond 1 SE
    close = _seeds3({"single_task": 0.60, "uniform": 0.62, "proportional": 0.66, "learned_time_invariant": 0.67}, rng)
    free = recommend(close, KINDS, labels)
    held = {m: np.mean([r["extra"]["reward_split"] for r in close if r["method"] == m]) for m in KINDS if m in
            {"single_task", "uniform", "proportional", "learned_time_invariant"}}
    assert free is not None and free.source == max(held, key=held.get) != "proportional"
    kept = recommend(close, KINDS, labels, incumbent="proportional")
    assert kept is not None and kept.source == "proportional" and kept.kind == "baseline"
    assert kept.incumbent == "proportional" and kept.challenger == free.source
    vi = kept.versus_incumbent
    assert vi is not None and 0 < vi["mean"] <= kept.incumbent_z * vi["se"]
    assert kept.verdict == "tie" and "the default rule" in kept.text and "compare.incumbent" in kept.text
    assert kept.to_dict()["challenger"] == free.source
    # a margin of 0: any advantage replaces the incumbent, as without one
    assert recommend(close, KINDS, labels, incumbent="proportional", incumbent_z=0).source == free.source

    # a candidate far better than the incumbent replaces it, and nothing says "kept"
    far = _seeds3({"single_task": 0.60, "uniform": 0.62, "proportional": 0.62, "learned_time_invariant": 0.85}, rng)
    won = recommend(far, KINDS, labels, incumbent="proportional")
    assert won is not None and won.source == "learned_time_invariant" and won.verdict == "learned"
    assert won.incumbent == "proportional" and won.challenger is None and "default rule" not in won.text
    # a margin no advantage reaches keeps the incumbent even against a clear winner, and the verdict says so
    stuck = recommend(far, KINDS, labels, incumbent="proportional", incumbent_z=100)
    assert stuck is not None and stuck.source == "proportional" and stuck.challenger == "learned_time_invariant"
    assert stuck.versus_incumbent["beyond_noise"] and "compare.incumbent" in stuck.text
    assert "better than every other candidate" not in stuck.text
    # an incumbent that is not among the candidates is left out
    no_prop = [r for r in far if r["method"] != "proportional"]
    assert recommend(no_prop, KINDS, labels, incumbent="proportional").incumbent is None


def test_the_learned_incumbent_is_kept_unless_a_rule_beats_it_beyond_its_margin() -> None:
    rng = np.random.default_rng(11)
    labels = {s: np.zeros(200, dtype=np.int64) for s in range(3)}
    # a rule a little better than the learned candidate on 3 x 200 held-out rows: the best, not beyond 1.96 SE
    close = _seeds3({"single_task": 0.60, "uniform": 0.62, "proportional": 0.69, "learned_time_invariant": 0.66}, rng)
    free = recommend(close, KINDS, labels)
    assert free is not None and free.source == "proportional" and free.kind == "baseline"
    kept = recommend(close, KINDS, labels, incumbent=LEARNED_INCUMBENT, incumbent_z=1.96)
    assert kept is not None and kept.source == "learned_time_invariant" and kept.kind == "learned"
    assert kept.incumbent == "learned_time_invariant" and kept.challenger == "proportional" and kept.incumbent_z == 1.96
    vi = kept.versus_incumbent
    assert vi is not None and 0 < vi["mean"] <= 1.96 * vi["se"]
    assert kept.verdict == "tie" and "compare.incumbent: learned" in kept.text and "best rule there, proportional" in kept.text
    assert kept.weights == pytest.approx(dict(zip(TASKS, [0.2, 0.7, 0.1])))  # the consensus of the learned schedules
    # a rule far better than the learned candidate replaces it
    far = _seeds3({"single_task": 0.60, "uniform": 0.62, "proportional": 0.85, "learned_time_invariant": 0.62}, rng)
    won = recommend(far, KINDS, labels, incumbent=LEARNED_INCUMBENT, incumbent_z=1.96)
    assert won is not None and won.source == "proportional" and won.challenger is None
    assert won.incumbent == "learned_time_invariant" and "kept" not in won.text
    # without a learned candidate there is no incumbent; a learned candidate that wins needs none
    rules_only = [r for r in far if r["method"] != "learned_time_invariant"]
    assert recommend(rules_only, KINDS, labels, incumbent=LEARNED_INCUMBENT).incumbent is None
    ahead = _seeds3({"single_task": 0.60, "uniform": 0.62, "proportional": 0.62, "learned_time_invariant": 0.85}, rng)
    lead = recommend(ahead, KINDS, labels, incumbent=LEARNED_INCUMBENT)
    assert lead.source == "learned_time_invariant" and lead.verdict == "learned" and lead.challenger is None


def test_an_incumbent_must_be_a_rule_and_its_margin_a_finite_non_negative_number() -> None:
    rows = [r for s in range(3) for r in _rules(s, 0.7)]
    with pytest.raises(ValueError, match="incumbent must be the name of a rule .*'learned' or None"):
        recommend(rows, KINDS, incumbent="learned_time_invariant")
    for bad in (-1.0, float("nan"), True, "1"):
        with pytest.raises(ValueError, match="incumbent_z must be"):
            recommend(rows, KINDS, incumbent="proportional", incumbent_z=bad)  # type: ignore[arg-type]


def test_compare_incumbent_is_checked_before_any_work() -> None:
    from taskmix.compare import check_config
    from taskmix.config import builtin_config
    from taskmix.errors import ConfigError

    with pytest.raises(ConfigError, match=r"compare\.incumbent: expected the name of a rule .*'learned' .*got 'learned_time_invariant'"):
        check_config(builtin_config(["compare.incumbent=learned_time_invariant"]))
    with pytest.raises(ConfigError, match=r"compare\.incumbent: 'learned' needs a learned method among the compared"):
        check_config(builtin_config(["compare.incumbent=learned", "compare.methods=[uniform,proportional]"]))
    check_config(builtin_config(["compare.methods=[uniform,proportional]"]))  # feature tasks: no incumbent by default
    with pytest.raises(ConfigError, match=r"compare\.incumbent: 'unimax' is not among the compared methods"):
        check_config(builtin_config(["compare.incumbent=unimax", "compare.methods=[uniform,proportional]"]))
    check_config(builtin_config(["compare.incumbent=proportional", "compare.methods=[uniform,proportional]"]))
    with pytest.raises(ConfigError, match="incumbent_margin"):
        builtin_config(["compare.incumbent_margin=-1"])


def _graded(seed: int, rng: np.random.Generator, n: int = 20) -> list[dict]:
    """Rows where the rules and a learned candidate are right on the same held-out rows (a tie in accuracy), but
    the learned model is more confident where it is right and less sure where it is wrong: a lower cross-entropy."""
    preds = (rng.random(n) < 0.3).astype(np.int64)  # 70% right, the same rows for every candidate
    right = preds == 0
    acc = float(right.mean())
    out = []
    for m, w, p_right, p_wrong in (("single_task", [1, 0, 0], 0.55, 0.3), ("uniform", [1, 1, 1], 0.6, 0.3),
                                   ("proportional", [1, 4, 4], 0.6, 0.3), ("learned_time_invariant", [0.2, 0.7, 0.1], 0.9, 0.45)):
        p_true = np.where(right, p_right, p_wrong) + rng.normal(0, 0.01, n)  # the true label's probability
        out.append(_row(m, seed, acc, w, preds=preds, losses=-np.log(np.clip(p_true, 1e-3, 1))))
    return out


def test_scored_by_loss_the_rows_cross_entropy_separates_what_accuracy_ties() -> None:
    rng = np.random.default_rng(5)
    rows = [r for s in range(3) for r in _graded(s, rng)]
    labels = {s: np.zeros(20, dtype=np.int64) for s in range(3)}
    by_metric = recommend(rows, KINDS, labels)
    assert by_metric is not None and by_metric.verdict == "tie" and by_metric.scored_by == "accuracy"
    by_loss = recommend(rows, KINDS, labels, criterion="loss")
    assert by_loss is not None and by_loss.source == "learned_time_invariant" and by_loss.verdict == "learned"
    assert by_loss.scored_by == "loss" and by_loss.to_dict()["scored_by"] == "loss"
    assert by_loss.versus_rule["pooled"] == "seeds x held-out rows" and by_loss.versus_rule["n_rows"] == 60
    assert by_loss.versus_rule["ci_low"] > 0  # positive: the learned rows' cross-entropy is lower
    ho = by_loss.held_out["learned_time_invariant"]
    assert ho["loss"] < by_loss.held_out["uniform"]["loss"] and ho["mean"] == by_metric.held_out["learned_time_invariant"]["mean"]
    assert "cross-entropy" in by_loss.text
    # a candidate whose rows keep no losses: the choice falls back to the metric, and says so
    bare = [dict(r, extra={k: v for k, v in r["extra"].items() if k != "reward_losses"})
            if r["method"] == "uniform" else r for r in rows]
    fallback = recommend(bare, KINDS, labels, criterion="loss")
    assert fallback is not None and fallback.scored_by == "accuracy" and "cross-entropy" not in fallback.text
    with pytest.raises(ValueError, match="criterion must be one of"):
        recommend(rows, KINDS, labels, criterion="auc")


def test_losses_round_trip_and_refuse_what_is_not_a_loss() -> None:
    x = np.array([0.0, 0.5, 3.25, 17.0])
    assert decode_losses(encode_losses(x)).tolist() == x.tolist()
    assert decode_losses(encode_losses(np.zeros(0))).tolist() == []
    for bad in (np.array([-1.0]), np.array([np.nan]), np.zeros((2, 2))):
        with pytest.raises(ValueError, match="losses must be"):
            encode_losses(bad)
    for text, msg in (("u8:AAE=", "starting with 'f32:'"), ("f32:AAE=", "whole number"), ("f32:@@", "base64"),
                      (encode_losses(np.ones(3)), "expected 2")):
        with pytest.raises(ValueError, match=msg):
            decode_losses(text, n=2)
    import base64
    neg = "f32:" + base64.b64encode(np.array([-2.0], dtype="<f4").tobytes()).decode()
    with pytest.raises(ValueError, match="finite losses >= 0"):
        decode_losses(neg)


def test_a_confirmation_chooses_again_among_the_contenders_and_says_so() -> None:
    from taskmix.compare.recommend import confirm, confirm_seeds

    rng = np.random.default_rng(5)
    first_rows = [r for s in range(3) for r in _rules(s, 0.7, float(rng.normal(0, 0.02)))]
    first = recommend(first_rows, KINDS)
    assert first is not None and first.contenders[0] == first.source and len(first.contenders) >= 2
    extra = confirm_seeds(first.seeds, 3)
    assert extra == [3, 4, 5]
    # on the extra seeds uniform is clearly the best: the choice made again on all six seeds moves to it
    more = [r for s in extra for r in (_row("single_task", s, 0.60, [1, 0, 0]), _row("uniform", s, 0.80, [1, 1, 1]),
                                       _row("proportional", s, 0.60, [1, 4, 4]))]
    mine = [r for r in first_rows + more if r["method"] in first.contenders]
    final = confirm(first, recommend(mine, KINDS), extra)
    assert final.source == "uniform" and final.seeds == [0, 1, 2, 3, 4, 5]
    assert final.confirmed == {"first_choice": first.source, "candidates": first.contenders, "seeds": extra,
                               "first_seeds": [0, 1, 2], "first_held_out": first.held_out,
                               "first_best_rule": first.best_rule,
                               "rounds": [{"seeds": extra, "candidates": first.contenders}]}
    assert final.text.startswith("Confirmed on 3 more seeds") and final.to_dict()["confirmed"] == final.confirmed
    other = recommend([r for r in first_rows if r["method"] == "single_task"] + first_rows[:0], KINDS)
    assert other is not None and other.contenders == []  # one candidate: a clear choice, nothing to confirm
    with pytest.raises(ValueError, match="contenders"):
        confirm(other, recommend(first_rows, KINDS), extra)


@pytest.mark.parametrize("seeds, k", [([], 3), ([0, 1], -1), ([0, 1], True), ([0, 1], 1.5)])
def test_confirm_seeds_refuses_what_is_not_a_count(seeds, k) -> None:
    from taskmix.compare.recommend import confirm_seeds

    with pytest.raises(ValueError, match="count k >= 0"):
        confirm_seeds(seeds, k)


def test_a_confirmation_runs_later_rounds_only_while_the_held_out_rows_are_few() -> None:
    from taskmix.compare.recommend import confirm, confirm_round
    from taskmix.config.schema import CONFIRM_ROUNDS

    rng = np.random.default_rng(5)
    rows = [r for s in range(12) for r in _rules(s, 0.7, float(rng.normal(0, 0.02)))]
    first = recommend([r for r in rows if r["seed"] < 3], KINDS)
    assert first is not None and first.contenders  # the rules are within noise of each other
    assert confirm_round(first, [0, 1, 2], 3, rows_goal=0, held_rows=0) == [3, 4, 5]  # a first round always runs
    assert confirm_round(first, [0, 1, 2], 0, rows_goal=60, held_rows=0) == []  # k = 0: no confirmation
    after = recommend([r for r in rows if r["seed"] < 6 and r["method"] in first.contenders], KINDS)
    assert after is not None and after.seeds == [0, 1, 2, 3, 4, 5] and after.contenders
    assert confirm_round(after, [0, 1, 2], 3, rows_goal=60, held_rows=6 * 9) == [6, 7, 8]  # 54 rows < 60: again
    assert confirm_round(after, [0, 1, 2], 3, rows_goal=60, held_rows=6 * 10) == []  # 60 rows: enough
    assert confirm_round(after, [0, 1, 2], 3, rows_goal=0, held_rows=0) == []  # confirm_rows 0: one round
    last = recommend([r for r in rows if r["seed"] < 3 + 3 * CONFIRM_ROUNDS and r["method"] in first.contenders], KINDS)
    assert last is not None and last.contenders
    assert confirm_round(last, [0, 1, 2], 3, rows_goal=10**6, held_rows=1) == []  # the rounds are spent
    clear = recommend([r for r in rows if r["method"] == "uniform"], KINDS)
    assert clear is not None and confirm_round(clear, [0, 1, 2], 3, 60, 0) == []  # a clear choice: nothing to confirm
    for bad in ({"k": -1}, {"rows_goal": 1.5}, {"held_rows": True}):
        args = {"k": 3, "rows_goal": 60, "held_rows": 0, **bad}
        with pytest.raises(ValueError, match="expected a count >= 0"):
            confirm_round(first, [0, 1, 2], **args)
    with pytest.raises(ValueError, match="first: expected the comparison's seeds"):
        confirm_round(first, [7], 3, 60, 0)
    # the final choice says which seeds each round ran, and refuses rounds that do not add up to the extra seeds
    rounds = [{"seeds": [3, 4, 5], "candidates": first.contenders}, {"seeds": [6, 7, 8], "candidates": after.contenders}]
    final = recommend([r for r in rows if r["seed"] < 9 and r["method"] in after.contenders], KINDS)
    assert final is not None
    done = confirm(first, final, [3, 4, 5, 6, 7, 8], rounds)
    assert done.confirmed is not None and done.confirmed["rounds"] == rounds
    assert done.text.startswith("Confirmed on 6 more seeds") and "those still within noise on seeds 6, 7, 8" in done.text
    with pytest.raises(ValueError, match="rounds: expected the extra seeds in order"):
        confirm(first, final, [3, 4, 5, 6, 7, 8], rounds[:1])
