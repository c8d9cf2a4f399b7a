"""The answer of a comparison: one recommended mixture, with its evidence and a verdict in plain words.

A comparison trains every method on the same paired seeds.  Each row of a method that replays a static
schedule (the rules, the learned schedules, the replayed online peers) also records its retrained model's
score on the target's **reward split**: rows carved out of the target's *training* data per seed, held
out of every retrained model, and never the reported split.  :func:`recommend` pools that held-out evidence
over seeds and decides:

1. the best rule ``R`` and the best other candidate ``L`` (a learned schedule, ...) by their mean held-out
   score over seeds;
2. ``L`` is recommended when its held-out advantage over ``R`` exceeds :data:`MARGIN_Z` standard errors
   (by default any advantage: chosen on development families), otherwise ``R`` is.  Where the rows keep their
   reward-split predictions and the metric is accuracy, the difference is pooled over every (seed, held-out
   row) pair, and its standard error is the larger of the per-row one and the one over seeds; otherwise it is
   the paired t interval over seeds;
3. with an **incumbent** (``compare.incumbent``: a default rule, e.g. ``proportional``, or ``learned``, the best
   learned candidate of step 1), the choice of step 2 is recommended only when it beats the incumbent on those
   rows by more than ``incumbent_z`` standard errors; otherwise the incumbent is kept.  On flat landscapes (real
   text) the best of several candidates on a few hundred held-out rows is mostly the luckiest one, and a rule as
   incumbent keeps that choice from chasing noise (the text regime's default); feature tasks keep target-only
   (``single_task``) unless a mixture beats it (their default, BENCHMARKS.md, *incumbent-target-dev*).  ``learned``
   is an option: on
   fresh feature families it lost to the best rule more often than no incumbent (BENCHMARKS.md,
   *families-wide-eval-4*);
4. when a rule is within noise (95%) of the recommended candidate (or, for a rule, any other candidate), the
   verdict says that no mixture wins (``"tie"``) and names them, rather than crowning one.

A learned recommendation is the seeds' **consensus**: the mean of the seeds' schedules (row by row when
they share a shape, else of their mean weights), with its spread (the mean total-variation distance of each
seed's schedule to the consensus); a spread above :data:`UNSTABLE_TV` marks the answer ``unstable``, and so
does a ``span`` above it: the largest distance between the mixtures of the choice and the candidates within noise
of it (``alternatives``: each one's distance to the choice).  The held-out rows then show that these mixtures do
about equally well, not which weights to use.  The
choice itself is resampled over seeds (:data:`BOOTSTRAP` draws): ``choice_agreement`` is the share of
resamples that make the same choice.

The comparison then retrains the recommendation on every seed and scores it on the report split like every
other method (the ``recommended`` rows), so the gain it reports was measured on rows the choice never saw.

>>> from taskmix.schedule import Schedule
>>> rows = [{"method": m, "seed": s, "test": t, "extra": {"reward_split": h},
...          "schedule": Schedule.from_weights(["t", "a"], w).to_dict()}
...         for s in range(3)
...         for m, t, h, w in [("single_task", 0.70, 0.70 + 0.01 * s, [1.0, 0.0]),
...                            ("uniform", 0.80, 0.80 + 0.01 * s, [0.5, 0.5])]]
>>> rec = recommend(rows, kinds={"single_task": "baseline", "uniform": "baseline"})
>>> rec.source, rec.verdict
('uniform', 'rule')
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
from scipy import stats as st

from ..config.schema import CONFIRM_ROUNDS, INCUMBENT_MARGIN
from ..data.tasks import metric_label, metric_sign
from ..schedule import Schedule
from .predictions import decode_labels, decode_losses

__all__ = ["BOOTSTRAP", "CANDIDATE_KINDS", "CRITERIA", "confirm", "confirm_round", "confirm_seeds", "INCUMBENT_Z", "LEARNED_INCUMBENT", "RECOMMENDED", "UNSTABLE_TV", "Recommendation",
           "recommend"]

RECOMMENDED = "recommended"
"""The method name of the rows that retrain the recommendation on every seed."""

UNSTABLE_TV = 0.15
"""A consensus whose seeds' schedules lie further than this (mean total variation) from it is ``unstable``."""

BOOTSTRAP = 400
"""Resamples of the seeds for ``choice_agreement``."""

_Z95 = 1.959963984540054

INCUMBENT_Z = INCUMBENT_MARGIN
"""Standard errors of held-out advantage over the incumbent rule a candidate needs to replace it (with an incumbent).
Chosen on the real-text development families (BENCHMARKS.md, *text-families-dev*: regret to the test-oracle 0.05 /
0.03 / 0.56 points for 0.5 / 1 / 1.96, against 0.65 without an incumbent; *text-families-eval-2*: -0.11 on fresh
families, 0.91 without)."""

LEARNED_INCUMBENT = "learned"
"""``compare.incumbent``'s value for the best learned candidate (by mean held-out score) as the incumbent: a rule
replaces it only when it beats it by more than ``incumbent_z`` standard errors.  Not a default (BENCHMARKS.md,
*recommend-learned-dev*, *families-wide-eval-4*)."""

MARGIN_Z = 0.0
"""Standard errors of held-out advantage over the best rule a learned candidate needs to be recommended: none, the
better held-out score wins.  Chosen on the development families (BENCHMARKS.md, *recommend-margin*): a margin of
0.5, 1 or 1.96 standard errors sent more families to a rule, and the rules are far from the best mixture there
(regret 3.5 / 3.9 / 4.6 / 6.9 points for 0 / 0.5 / 1 / 1.96 on the wide families, 1.0 / 1.1 / 1.6 / 2.2 on v1)."""


CRITERIA = ("metric", "loss")
"""What the held-out rows are scored by: the target's ``metric`` (accuracy: per-row correctness), or each row's
``loss`` (the retrained model's cross-entropy on it: graded, so a few rows carry more information than their
correctness; lower is better).  ``loss`` falls back to the metric where a candidate's rows keep no losses (rows
written before they were kept, or the language-modelling regime, whose metric is a loss already)."""

CANDIDATE_KINDS = ("baseline", "learned")
"""The kinds of method a recommendation chooses between: the rules and the learned schedules.  Not the oracle (it
chose on the same held-out rows), nor an online run's own model (not a replayed schedule), nor the replayed online
strategies and the peers (``adaptive-replay``, ``peer``): they fit their mixtures to the target's held-out rows
directly, so their held-out scores flatter them.  Chosen on the development families (BENCHMARKS.md,
*peers-dev*): with the peers and replayed online strategies as candidates, the recommendation's regret rose from
2.94 to 3.42 points (screened from the stored rows)."""


@dataclass
class Recommendation:
    """The recommended mixture, where it comes from, and the evidence for it (``to_dict`` for JSON)."""

    schedule: Schedule
    source: str  # the candidate method it comes from (a rule's name, or a learned method's)
    verdict: str  # "learned" / "rule": better than the rules (every other candidate) beyond noise; "tie": a rule within noise
    kind: str  # the source's kind: "baseline" for a rule (its own rows are the recommendation's), else a consensus
    text: str  # the verdict in plain words
    seeds: list[int]
    best_rule: str | None
    best_other: str | None
    held_out: dict[str, dict[str, Any]]  # per candidate: mean held-out score, per-seed scores
    versus_rule: dict[str, Any] | None  # L - R on held-out rows: mean, se, ci, how it was pooled
    within_noise: list[str]  # candidates whose held-out score is within noise of the recommended one
    spread: float  # mean TV distance of the seeds' schedules to the consensus (0 for a rule)
    stable: bool
    choice_agreement: float  # share of seed resamples that make the same choice
    weights: dict[str, float] = field(default_factory=dict)  # mean weight per task of the recommended schedule
    incumbent: str | None = None  # the method a candidate had to beat by incumbent_z SE (a rule, or the best learned
    # candidate with compare.incumbent: learned; None: no incumbent)
    incumbent_z: float | None = None
    challenger: str | None = None  # the best candidate when the incumbent was kept over it
    versus_incumbent: dict[str, Any] | None = None  # challenger - incumbent on held-out rows (when kept)
    scored_by: str = "accuracy"  # what the held-out rows were scored by: the target's metric, or "loss" (cross-entropy)
    confirmed: dict[str, Any] | None = None  # the first choice and the candidates rerun on more seeds (confirm)
    alternatives: dict[str, float] = field(default_factory=dict)  # per candidate within noise: the total variation
    # between its mean mixture and the recommended one's
    span: float = 0.0  # the largest total variation between two of those mixtures and the recommended one (above
    # UNSTABLE_TV: the evidence does not pin the weights down)
    held_out_rows: int = 0  # the target's held-out rows over ``seeds`` (one candidate's; 0 without their labels)

    @property
    def contenders(self) -> list[str]:
        """The candidates a confirmation reruns on more seeds: the choice and those within noise of it (none when the
        choice is clear)."""
        return [self.source, *self.within_noise] if self.within_noise else []

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON values (``recommended.json``)."""
        return {
            "verdict": self.verdict, "kind": self.kind, "text": self.text, "source": self.source, "seeds": self.seeds,
            "weights": self.weights, "schedule": self.schedule.to_dict(), "best_rule": self.best_rule,
            "best_other": self.best_other, "held_out": self.held_out, "versus_rule": self.versus_rule,
            "within_noise": self.within_noise, "spread": self.spread, "stable": self.stable,
            "choice_agreement": self.choice_agreement, "incumbent": self.incumbent, "incumbent_z": self.incumbent_z,
            "challenger": self.challenger, "versus_incumbent": self.versus_incumbent, "scored_by": self.scored_by,
            "confirmed": self.confirmed, "alternatives": self.alternatives, "span": self.span,
            "held_out_rows": self.held_out_rows,
        }


def confirm_seeds(seeds: Sequence[int], k: int) -> list[int]:
    """The ``k`` seeds a confirmation runs: the ones after the comparison's largest.

    >>> confirm_seeds([0, 1, 2], 3)
    [3, 4, 5]
    """
    if not seeds or isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"expected the comparison's seeds and a count k >= 0, got {list(seeds)!r} and {k!r}")
    start = max(int(s) for s in seeds) + 1
    return list(range(start, start + k))


def confirm_round(current: Recommendation, first: Sequence[int], k: int, rows_goal: int, held_rows: int) -> list[int]:
    """The seeds of a confirmation's next round (none: it is done).

    ``current`` is the latest choice (the comparison's, or the last round's on every seed so far: its ``seeds``),
    ``first`` the comparison's own seeds, ``k`` the seeds a round adds (``compare.confirm_seeds``), ``held_rows`` the
    held-out target rows of ``current.seeds`` (one candidate's).  A first round runs whenever ``current`` is within
    noise of other candidates; a later one only while it still is, the seeds so far hold fewer than ``rows_goal``
    held-out rows (``compare.confirm_rows``) and fewer than :data:`~taskmix.config.schema.CONFIRM_ROUNDS` rounds ran.

    >>> from taskmix.schedule import Schedule
    >>> rows = [{"method": m, "seed": s, "test": 0.7, "extra": {"reward_split": 0.7 + 0.01 * (s % 2)},
    ...          "schedule": Schedule.from_weights(["t", "a"], w).to_dict()}
    ...         for s in range(3) for m, w in [("single_task", [1.0, 0.0]), ("uniform", [0.5, 0.5])]]
    >>> rec = recommend(rows, kinds={"single_task": "baseline", "uniform": "baseline"})
    >>> rec.contenders  # the two rules are within noise of each other
    ['single_task', 'uniform']
    >>> confirm_round(rec, [0, 1, 2], 3, rows_goal=60, held_rows=3 * 8)
    [3, 4, 5]
    """
    for name, v in (("k", k), ("rows_goal", rows_goal), ("held_rows", held_rows)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"{name}: expected a count >= 0, got {v!r}")
    if not first or not set(first) <= set(current.seeds):
        raise ValueError(f"first: expected the comparison's seeds, among the choice's {current.seeds}, got {list(first)!r}")
    if not current.contenders or k == 0:
        return []
    rounds = (len(current.seeds) - len(first)) // k
    if rounds and (rounds >= CONFIRM_ROUNDS or held_rows >= rows_goal):
        return []
    return confirm_seeds(current.seeds, k)


def confirm(first: Recommendation, final: Recommendation, extra: Sequence[int],
            rounds: Sequence[Mapping[str, Any]] | None = None) -> Recommendation:
    """``final`` (the choice among ``first``'s :attr:`~Recommendation.contenders` on their rows of every seed, the
    ``extra`` ones included), saying so: ``confirmed`` holds the first choice, its held-out scores and the seeds.
    ``rounds``: each round's ``seeds`` and ``candidates`` (default: one round, ``extra`` for every contender)."""
    if set(final.held_out) - set(first.contenders):
        raise ValueError("final: expected a choice among the first recommendation's contenders")
    rounds = [{"seeds": list(extra), "candidates": first.contenders}] if rounds is None else [
        {"seeds": [int(s) for s in r["seeds"]], "candidates": list(r["candidates"])} for r in rounds]
    if [s for r in rounds for s in r["seeds"]] != list(extra) or any(
            set(r["candidates"]) - set(first.contenders) for r in rounds):
        raise ValueError("rounds: expected the extra seeds in order, each round among the first choice's contenders")
    final.confirmed = {"first_choice": first.source, "candidates": first.contenders, "seeds": list(extra),
                       "first_seeds": list(first.seeds), "first_held_out": first.held_out,
                       "first_best_rule": first.best_rule, "rounds": rounds}
    same = "kept" if final.source == first.source else f"replaced by {final.source}"
    later = "".join(f"; those still within noise on seeds {', '.join(map(str, r['seeds']))}" for r in rounds[1:])
    if later:
        later += " (fewer held-out target rows than compare.confirm_rows on the seeds before)"
    final.text = (f"Confirmed on {len(extra)} more seed{'s' if len(extra) != 1 else ''}: on the first {len(first.seeds)} "
                  f"seeds' held-out rows {first.source} was within noise of {', '.join(first.within_noise)} (every other candidate "
                  "was behind it beyond noise); those "
                  f"candidates were rerun on seeds {', '.join(map(str, rounds[0]['seeds']))}{later}, and chosen again on "
                  f"every seed's held-out rows: {first.source} {same}. " + final.text)
    return final


def _candidates(rows: Sequence[Mapping[str, Any]], kinds: Mapping[str, str]) -> dict[str, dict[int, Mapping[str, Any]]]:
    """Methods whose every row has a schedule and a finite held-out score, by method then seed."""
    out: dict[str, dict[int, Mapping[str, Any]]] = {}
    bad: set[str] = set()
    for r in rows:
        m = str(r["method"])
        if m == RECOMMENDED or kinds.get(m) not in CANDIDATE_KINDS:
            continue  # see CANDIDATE_KINDS
        h = (r.get("extra") or {}).get("reward_split")
        if r.get("schedule") is None or not isinstance(h, (int, float)) or isinstance(h, bool) or not math.isfinite(h):
            bad.add(m)
            continue
        out.setdefault(m, {})[int(r["seed"])] = r
    return {m: g for m, g in out.items() if m not in bad}


def _difference(a: Mapping[int, Mapping[str, Any]], b: Mapping[int, Mapping[str, Any]], seeds: Sequence[int],
                labels: Mapping[int, np.ndarray] | None, metric: str) -> dict[str, Any]:
    """Held-out advantage of ``a`` over ``b`` over ``seeds`` (``a - b``; ``b - a`` for a metric that is better lower,
    :func:`~taskmix.data.tasks.metric_sign`): mean, standard error, 95% interval and how it was pooled."""
    sign = _sign(metric)
    per_seed = np.asarray([sign * (a[s]["extra"]["reward_split"] - b[s]["extra"]["reward_split"]) for s in seeds],
                          dtype=np.float64)
    mean = float(per_seed.mean())
    n = len(per_seed)
    se_seeds = float(per_seed.std(ddof=1) / math.sqrt(n)) if n > 1 else math.inf
    out: dict[str, Any] = {"mean": mean, "n_seeds": n, "se_seeds": se_seeds if math.isfinite(se_seeds) else None}
    ex = (_example_differences(a, b, seeds, labels) if metric == "accuracy" and labels is not None else
          _loss_differences(a, b, seeds) if metric == LOSS else None)
    if ex is not None:
        se_ex = float(ex.std(ddof=1) / math.sqrt(len(ex))) if len(ex) > 1 else math.inf
        se = max(se_ex, se_seeds if n >= 3 else 0.0)
        lo, hi = mean - _Z95 * se, mean + _Z95 * se
        out.update(pooled="seeds x held-out rows", n_rows=int(len(ex)), se_rows=se_ex, se=se)
    else:
        if n < 2 or not math.isfinite(se_seeds):
            lo, hi, se = -math.inf, math.inf, math.inf
        elif se_seeds == 0.0:
            lo = hi = mean
            se = 0.0
        else:
            t = float(st.t.ppf(0.975, n - 1))
            lo, hi, se = mean - t * se_seeds, mean + t * se_seeds, se_seeds
        out.update(pooled="seeds (paired t)", se=se if math.isfinite(se) else None)
    out["ci_low"] = lo if math.isfinite(lo) else None
    out["ci_high"] = hi if math.isfinite(hi) else None
    out["beyond_noise"] = bool(math.isfinite(lo) and math.isfinite(hi) and (lo > 0 or hi < 0))
    return out


def _example_differences(a: Mapping[int, Mapping[str, Any]], b: Mapping[int, Mapping[str, Any]], seeds: Sequence[int],
                         labels: Mapping[int, np.ndarray]) -> np.ndarray | None:
    """Per held-out row, ``correct(a) - correct(b)``, over every seed; None when a row lacks its predictions."""
    parts = []
    for s in seeds:
        pa, pb = (a[s].get("extra") or {}).get("reward_predictions"), (b[s].get("extra") or {}).get("reward_predictions")
        y = labels.get(s)
        if pa is None or pb is None or y is None:
            return None
        ya, yb = decode_labels(pa), decode_labels(pb)
        if len(ya) != len(y) or len(yb) != len(y):
            return None
        parts.append((ya == y).astype(np.float64) - (yb == y).astype(np.float64))
    return np.concatenate(parts) if parts else None


def _loss_differences(a: Mapping[int, Mapping[str, Any]], b: Mapping[int, Mapping[str, Any]],
                      seeds: Sequence[int]) -> np.ndarray:
    """Per held-out row, ``loss(b) - loss(a)`` (positive: ``a`` better), over every seed (rows of :func:`_by_loss`)."""
    return np.concatenate([b[s]["extra"][_LOSSES] - a[s]["extra"][_LOSSES] for s in seeds])


LOSS = "loss"
_LOSSES = "_row_losses"


def _sign(metric: str) -> float:
    """:func:`~taskmix.data.tasks.metric_sign`, with the held-out ``loss`` (cross-entropy) better lower."""
    return -1.0 if metric == LOSS else metric_sign(metric)


def _by_loss(cands: Mapping[str, Mapping[int, Mapping[str, Any]]]) -> dict[str, dict[int, Mapping[str, Any]]] | None:
    """The candidates with each row's held-out score replaced by its rows' mean cross-entropy (their losses kept for
    the per-row differences); None when a row keeps no losses, or the seeds' rows differ in number between candidates."""
    out: dict[str, dict[int, Mapping[str, Any]]] = {}
    sizes: dict[int, int] = {}
    for m, g in cands.items():
        for s, r in g.items():
            text = (r.get("extra") or {}).get("reward_losses")
            try:
                losses = decode_losses(text)
            except (ValueError, TypeError):
                return None
            if not len(losses) or sizes.setdefault(s, len(losses)) != len(losses):
                return None
            out.setdefault(m, {})[s] = {**r, "extra": {**r["extra"], "reward_split": float(losses.mean()),
                                                       _LOSSES: losses}}
    return out


def _consensus(group: Mapping[int, Mapping[str, Any]], seeds: Sequence[int], source: str) -> tuple[Schedule, float]:
    """The mean of the seeds' schedules, and the mean TV distance of each seed's schedule to it."""
    scheds = [Schedule.from_dict(group[s]["schedule"], f"{source}-seed{s}") for s in seeds]
    tasks = scheds[0].tasks
    if any(s.tasks != tasks for s in scheds):
        raise ValueError(f"{source}: the seeds' schedules name different tasks")
    same_shape = all(s.weights.shape == scheds[0].weights.shape and s.steps_per_meta_step == scheds[0].steps_per_meta_step
                     for s in scheds)
    if same_shape:
        w = np.mean([s.weights for s in scheds], axis=0)
        spm = scheds[0].steps_per_meta_step
        spread = float(np.mean([0.5 * np.abs(s.weights - w).sum(axis=1).mean() for s in scheds]))
    else:
        means = np.asarray([s.mean_weights() for s in scheds])
        w = means.mean(axis=0)[None, :]
        spm = 1
        spread = float(np.mean(0.5 * np.abs(means - w).sum(axis=1)))
    prov = {"method": RECOMMENDED, "from": source, "consensus_of_seeds": list(seeds), "spread_tv": spread}
    return Schedule.from_weights(tasks, w, spm, prov), spread


def _alternatives(cands: Mapping[str, Mapping[int, Mapping[str, Any]]], chosen: str, within: Sequence[str],
                  seeds: Sequence[int], schedule: Schedule) -> tuple[dict[str, float], float]:
    """Per candidate within noise of ``chosen``: the total variation between its mixture (its schedules' mean weights,
    averaged over ``seeds``) and the recommended ``schedule``'s; and the span, the largest such distance between any
    two of them and the recommended mixture (candidates over other tasks are left out)."""
    mixes = {chosen: schedule.mean_weights()}
    for m in within:
        scheds = [Schedule.from_dict(cands[m][s]["schedule"], f"{m}-seed{s}") for s in seeds]
        if all(x.tasks == schedule.tasks for x in scheds):
            mixes[m] = np.mean([x.mean_weights() for x in scheds], axis=0)
    tv = {(a, b): float(0.5 * np.abs(mixes[a] - mixes[b]).sum()) for a in mixes for b in mixes}
    return {m: tv[(m, chosen)] for m in mixes if m != chosen}, max(tv.values())


def _choose(cands: Mapping[str, Mapping[int, Mapping[str, Any]]], kinds: Mapping[str, str], seeds: Sequence[int],
            labels: Mapping[int, np.ndarray] | None, metric: str,
            z: float, incumbent: str | None = None, incumbent_z: float = INCUMBENT_Z,
            ) -> tuple[str, str | None, str | None, dict[str, Any] | None, str]:
    """``(chosen, best_rule, best_other, other - rule difference, the choice before the incumbent)`` on the held-out
    scores of ``seeds``.

    The best other candidate is chosen over the best rule when its held-out advantage exceeds ``z`` standard
    errors (``z = 0``: any advantage); then, with an ``incumbent`` among the candidates, that choice replaces the
    incumbent only when it beats it by more than ``incumbent_z`` standard errors.
    """
    best, best_rule, best_other, d = _choose_best(cands, kinds, seeds, labels, metric, z)
    chosen = best
    if incumbent == LEARNED_INCUMBENT:  # the best learned candidate on these seeds
        incumbent = best_other
    if incumbent is not None and incumbent in cands and best != incumbent:
        di = _difference(cands[best], cands[incumbent], seeds, labels, metric)
        se = di.get("se")
        if se is None or not math.isfinite(se) or not di["mean"] > incumbent_z * se:
            chosen = incumbent
    return chosen, best_rule, best_other, d, best


def _choose_best(cands: Mapping[str, Mapping[int, Mapping[str, Any]]], kinds: Mapping[str, str], seeds: Sequence[int],
                 labels: Mapping[int, np.ndarray] | None, metric: str,
                 z: float) -> tuple[str, str | None, str | None, dict[str, Any] | None]:
    """:func:`_choose` without an incumbent."""
    sign = _sign(metric)  # scores where higher is better
    mean = {m: sign * float(np.mean([g[s]["extra"]["reward_split"] for s in seeds])) for m, g in cands.items()}
    rules = [m for m in cands if kinds.get(m) == "baseline"]
    others = [m for m in cands if kinds.get(m) != "baseline"]
    best_rule = max(rules, key=lambda m: (mean[m], m == "single_task")) if rules else None
    best_other = max(others, key=lambda m: mean[m]) if others else None
    if best_rule is None:
        return str(best_other), None, best_other, None
    if best_other is None:
        return best_rule, best_rule, None, None
    d = _difference(cands[best_other], cands[best_rule], seeds, labels, metric)
    se = d.get("se")
    margin = 0.0 if z == 0 else (z * se if se is not None and math.isfinite(se) else math.inf)
    chosen = best_other if d["mean"] > margin else best_rule
    return chosen, best_rule, best_other, d


def recommend(rows: Sequence[Mapping[str, Any]], kinds: Mapping[str, str], labels: Mapping[int, np.ndarray] | None = None,
              metric: str = "accuracy", bootstrap: int = BOOTSTRAP, z: float | None = None,
              incumbent: str | None = None, incumbent_z: float = INCUMBENT_Z,
              criterion: str = "metric") -> Recommendation | None:
    """The recommended mixture of a comparison's ``rows`` (None when no method replays a schedule).

    ``kinds``: each method's kind (``baseline`` for the rules); ``labels``: each seed's reward-split labels,
    to pool the held-out evidence over rows (accuracy only).  Seeds are those every candidate has.  ``z``: how many
    standard errors of held-out advantage a learned candidate needs over the best rule (default :data:`MARGIN_Z`).
    ``incumbent``: a rule kept unless the choice beats it by more than ``incumbent_z`` standard errors (ignored when
    it is not among the candidates), or :data:`LEARNED_INCUMBENT` (``"learned"``): the best learned candidate, kept
    unless a rule beats it by more than ``incumbent_z`` standard errors (ignored without a learned candidate).
    ``criterion``: what the held-out rows are scored by (:data:`CRITERIA`): the ``metric``, or each row's ``loss``
    (the rows' cross-entropy; the metric where a candidate's rows keep no losses).
    """
    z = MARGIN_Z if z is None else float(z)
    if not (math.isfinite(z) and z >= 0):
        raise ValueError(f"z must be a finite number >= 0, got {z!r}")
    if isinstance(incumbent_z, bool) or not isinstance(incumbent_z, (int, float)) or not (
            math.isfinite(incumbent_z) and incumbent_z >= 0):
        raise ValueError(f"incumbent_z must be a finite number >= 0, got {incumbent_z!r}")
    if incumbent is not None and incumbent != LEARNED_INCUMBENT and (
            not isinstance(incumbent, str) or kinds.get(incumbent, "baseline") != "baseline"):
        raise ValueError(f"incumbent must be the name of a rule (a method of kind 'baseline'), {LEARNED_INCUMBENT!r} or "
                         f"None, got {incumbent!r}")
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {list(CRITERIA)}, got {criterion!r}")
    scored = _candidates(rows, kinds)
    if not scored:
        return None
    seeds = sorted(set.intersection(*(set(g) for g in scored.values())))
    if not seeds:
        return None
    by_loss = _by_loss({m: {s: g[s] for s in seeds} for m, g in scored.items()}) if criterion == LOSS else None
    cands = by_loss if by_loss is not None else scored
    if by_loss is not None:
        metric = LOSS  # the choice, its intervals and the verdict below are on the rows' cross-entropy
    if incumbent == LEARNED_INCUMBENT:  # left out without a learned candidate
        inc = incumbent if any(kinds.get(m) != "baseline" for m in cands) else None
    else:
        inc = incumbent if incumbent in cands else None  # an incumbent not among the candidates is left out
    chosen, best_rule, best_other, d, best = _choose(cands, kinds, seeds, labels, metric, z, inc, incumbent_z)
    challenger = best if inc is not None and best != chosen else None
    inc_method = best_other if inc == LEARNED_INCUMBENT else inc
    held_out: dict[str, dict[str, Any]] = {m: {"mean": float(np.mean([g[s]["extra"]["reward_split"] for s in seeds])),
                    "per_seed": [float(g[s]["extra"]["reward_split"]) for s in seeds], "kind": kinds.get(m)}
                for m, g in scored.items()}
    if by_loss is not None:
        for m, g in by_loss.items():
            held_out[m]["loss"] = float(np.mean([g[s]["extra"]["reward_split"] for s in seeds]))
            held_out[m]["loss_per_seed"] = [float(g[s]["extra"]["reward_split"]) for s in seeds]
    within = []
    for m in cands:
        if m == chosen:
            continue
        dm = _difference(cands[chosen], cands[m], seeds, labels, metric)
        held_out[m]["versus_recommended"] = dm
        if not dm["beyond_noise"]:
            within.append(m)
    if kinds.get(chosen) == "baseline":
        first = cands[chosen][seeds[0]]
        base = Schedule.from_dict(first["schedule"], f"{chosen}-seed{seeds[0]}")
        schedule = Schedule(base.tasks, base.weights, base.steps_per_meta_step,
                            {"method": RECOMMENDED, "from": chosen, "rule": chosen})
        spread = 0.0
    else:
        schedule, spread = _consensus(cands[chosen], seeds, chosen)
    alternatives, span = _alternatives(cands, chosen, within, seeds, schedule)
    rng = np.random.default_rng(0)
    agree = 0
    draws = bootstrap if len(seeds) > 1 else 0
    for _ in range(draws):  # resample the seeds with replacement (a seed drawn twice counts twice)
        sample = sorted(rng.choice(seeds, size=len(seeds), replace=True).tolist())
        agree += _choose(cands, kinds, sample, labels, metric, z, inc, incumbent_z)[0] == chosen
    agreement = agree / draws if draws else 1.0
    stable = spread <= UNSTABLE_TV and span <= UNSTABLE_TV
    rule_chosen = kinds.get(chosen) == "baseline"
    if within if rule_chosen else any(kinds.get(m) == "baseline" for m in within):
        verdict = "tie"  # a rule is within noise of the choice: no mixture wins
    else:
        verdict = "rule" if rule_chosen else "learned"
    weights = {t: float(w) for t, w in zip(schedule.tasks, schedule.mean_weights())}
    rec = Recommendation(schedule, chosen, verdict, str(kinds.get(chosen)), "", seeds, best_rule, best_other, held_out, d, sorted(within),
                         spread, stable, agreement, weights, inc_method, float(incumbent_z) if inc is not None else None,
                         challenger, _difference(cands[challenger], cands[chosen], seeds, labels, metric) if challenger else None,
                         metric, alternatives=alternatives, span=span,
                         held_out_rows=sum(len(labels[s]) for s in seeds if s in labels) if labels is not None else 0)
    rec.text = _text(rec, metric)
    return rec


def _mix(weights: Mapping[str, float]) -> str:
    return ", ".join(f"{t} {w:.2f}" for t, w in weights.items())


def _interval(d: Mapping[str, Any] | None) -> str:
    if not d:
        return "no comparison"
    lo, hi = d.get("ci_low"), d.get("ci_high")
    ci = f"[{lo:+.3f}, {hi:+.3f}]" if lo is not None and hi is not None else "[no interval: too few seeds]"
    return f"{d['mean']:+.3f} {ci}"


def _unit(metric: str) -> str:
    """The unit of a held-out advantage: the metric, and which way is better."""
    if metric == LOSS:
        return " in cross-entropy (nats; positive: lower)"
    if metric_sign(metric) > 0:
        return f" in {metric}"
    return f" advantage in {metric_label(metric)}, positive: lower"


def _text(rec: Recommendation, metric: str) -> str:
    """The verdict in plain words (a few sentences, no table)."""
    n = len(rec.seeds)
    where = f"held-out target rows (the reward split, {n} seed{'s' if n != 1 else ''}; never the reported split)"
    if metric == LOSS:
        where += ", scored by their cross-entropy"
    learned = rec.kind != "baseline"
    what = (f"the learned mixture {rec.source} (the mean of {n} seeds' schedules): {_mix(rec.weights)}" if learned
            else f"the rule {rec.source} ({_mix(rec.weights)})")
    kept = ""
    if rec.challenger is not None:
        who = ("the default rule (compare.incumbent), kept because the best candidate on those rows" if not learned else
               "the best learned candidate on those rows (compare.incumbent: learned), kept because the best rule there")
        kept = (f"{who}, {rec.challenger}, "
                f"does not beat it by more than {rec.incumbent_z:g} standard error{'' if rec.incumbent_z == 1 else 's'}: "
                f"{_interval(rec.versus_incumbent)}{_unit(metric)}")
    if rec.verdict == "tie":
        s = (f"No mixture wins beyond noise: on {where}, {', '.join(rec.within_noise)} "
             f"{'is' if len(rec.within_noise) == 1 else 'are'} within noise of {rec.source}. "
             f"Recommended by default: {what}, " + (f"{kept}; not a clear winner." if kept else
                                                   "the best of them on those rows, not a clear winner."))
    elif kept:  # an incumbent kept over a challenger that beats it beyond noise, short of its margin
        s = f"Recommended: {what}, {kept} (on {where})."
    elif rec.within_noise:  # a learned choice within noise of other learned candidates only
        s = (f"Recommended: {what}, better than every rule beyond noise on {where} "
             f"({', '.join(rec.within_noise)} {'is' if len(rec.within_noise) == 1 else 'are'} within noise of it).")
    else:
        s = f"Recommended: {what}, better than every other candidate beyond noise on {where}."
    if learned and rec.best_rule is not None:
        s += f" Against the best rule, {rec.best_rule}: {_interval(rec.versus_rule)}{_unit(metric)} on those rows."
    elif not learned and rec.best_other is not None:
        ref = "it" if rec.best_rule == rec.source else f"the best rule there, {rec.best_rule},"
        s += f" The best learned candidate, {rec.best_other}: {_interval(rec.versus_rule)} against {ref} on those rows."
    if rec.span > UNSTABLE_TV:
        s += (f" Unstable: the mixtures within noise on those rows ({rec.source}, {', '.join(rec.alternatives)}) lie up to "
              f"{rec.span:.2f} apart in total variation ("
              + ", ".join(f"{m} {d:.2f} from it" for m, d in rec.alternatives.items())
              + "): the evidence shows that they do about equally well, not which weights to use.")
    if learned:
        if rec.spread > UNSTABLE_TV:
            s += (f" Unstable: the seeds' schedules lie {rec.spread:.2f} (total variation) from their mean on average; "
                  "run more seeds before relying on the exact weights.")
        else:
            s += f" The seeds agree (mean total-variation distance {rec.spread:.2f} to the consensus)."
    if n > 1 and rec.choice_agreement < 0.7:
        s += f" The choice is uncertain: {rec.choice_agreement:.0%} of resamples of the seeds make it."
    if n < 3:
        s += f" Only {n} seed{'s' if n != 1 else ''}: intervals are wide or missing; use 3 or more."
    return s
