"""Statistics over paired seeds, and the results table.

* per method: mean, std, standard error, 95% Student t confidence interval
  of the mean (``ci_method: "t"``);
* paired difference to the best baseline (same seeds), with its standard
  error, 95% paired t interval and the paired t-test's two-sided p value, and a
  mark where the interval covers 0 (the difference is within noise).

With the handful of seeds a comparison has (5 by default) the percentile
bootstrap is too narrow -- it resamples only the values seen and ignores the
uncertainty in the spread -- so the intervals are t intervals; the bootstrap
(:func:`bootstrap_ci`) is kept for callers that want it.
* where the rows keep their per-example predictions (a comparison's rows do)
  and the report split's labels are given: the same paired difference with an
  interval that also counts the report split's sampling noise -- its examples
  are a sample too, and with a few hundred or thousand of them that noise is
  often larger than the seeds' (``diff_ci_examples_*``, :func:`example_se`);
* cost: training steps, evaluations and wall time per run and in total, and
  their ratio to one plain training run (the ``uniform`` rows).

Few seeds: with one seed there is no spread to estimate, so a summary has no interval, standard deviation, p
value or within-noise mark (``None``; the table shows "—"); with two, the t interval (1 degree of freedom,
12.7 standard errors on each side) is shown but marked "†".  Intervals of a metric with a range
(:data:`METRIC_RANGES`: accuracy and macro-F1 lie in [0, 1]) are clipped to it, differences to
[-1, 1], and marked "‡" where that happened (:func:`interval_notes` words the marks).
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np

from ..data.tasks import METRIC_NAMES, metric_label, metric_sign
from .methods import METHODS
from .predictions import decode_labels

__all__ = ["CI_METHOD", "CLIPPED_MARK", "CONSTANT_SPREAD", "FEW_SEEDS", "FEW_SEEDS_MARK", "METRIC_RANGES", "NO_INTERVAL",
           "ratio_cell", "bootstrap_ci", "by_method", "clip_interval", "combined_ci", "describe", "diff_range", "example_se",
           "examples_interval", "format_table", "interval_notes", "method_kind", "metric_range", "nearly_constant", "paired",
           "paired_t", "summarize", "t_ci", "table_cells"]

CI_METHOD = "t"
"""How ``ci_low`` / ``ci_high`` and the paired ``diff_ci_*`` are computed: Student t intervals."""


METRIC_RANGES: dict[str, tuple[float, float]] = {"accuracy": (0.0, 1.0), "macro_f1": (0.0, 1.0)}
"""The range of each reported metric (``target.metric``); intervals of its values are clipped to it."""

FEW_SEEDS = 3
"""Fewer seeds than this get their intervals marked (:data:`FEW_SEEDS_MARK`); one seed gets none at all."""

NO_INTERVAL = "—"
"""The table's cell for an interval that cannot be computed (one seed)."""

FEW_SEEDS_MARK = "†"
"""Marks an interval from fewer than :data:`FEW_SEEDS` seeds (two: a t interval with 1 degree of freedom)."""

CLIPPED_MARK = "‡"
"""Marks an interval clipped to the metric's range (:data:`METRIC_RANGES`)."""


def metric_range(metric: str | None) -> tuple[float, float] | None:
    """The range of ``metric``'s values (``(0, 1)`` for accuracy and macro-F1); None when unknown (nothing is clipped)."""
    return METRIC_RANGES.get(metric) if metric else None


def diff_range(metric: str | None) -> tuple[float, float] | None:
    """The range of a difference of two ``metric`` values (``(-1, 1)`` for a metric in [0, 1]); None when unknown."""
    r = metric_range(metric)
    return None if r is None else (r[0] - r[1], r[1] - r[0])


def clip_interval(low: float | None, high: float | None, bounds: tuple[float, float] | None) -> tuple[float | None, float | None, bool]:
    """``(low, high, clipped)``: the interval clipped to ``bounds`` (unchanged when None), and whether it reached past them."""
    if low is None or high is None or bounds is None:
        return low, high, False
    lo, hi = max(float(low), bounds[0]), min(float(high), bounds[1])
    return lo, hi, bool(lo != low or hi != high)


CONSTANT_SPREAD = 1e-12
"""Values whose spread (max - min) is at most this fraction of their largest magnitude count as constant: a
difference of two accuracies computed in floating point (``0.7 - 0.65`` vs ``0.6833 - 0.6333``) differs from
its twin by rounding only, and a t statistic of that noise would be meaningless."""


def nearly_constant(values: Sequence[float] | np.ndarray) -> bool:
    """Whether ``values`` are all equal up to floating-point rounding (see :data:`CONSTANT_SPREAD`); True for < 2."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2:
        return True
    return bool(np.ptp(v) <= CONSTANT_SPREAD * np.max(np.abs(v)))


def t_ci(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Student t interval of the mean, ``mean -+ t_{n-1} * sd / sqrt(n)``.

    Degenerate (``(mean, mean)``) for fewer than 2 values and for values equal up to rounding
    (:func:`nearly_constant`).
    """
    v = np.asarray(values, dtype=np.float64)
    m = float(v.mean()) if len(v) else float("nan")
    if nearly_constant(v):
        return m, m
    from scipy.stats import t

    half = float(t.ppf(0.5 + confidence / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return m - half, m + half


def paired_t(differences: Sequence[float] | np.ndarray, confidence: float = 0.95) -> dict[str, float | None]:
    """Paired t analysis of per-seed differences: mean, sem, t interval and the two-sided p value of mean 0.

    ``p`` is ``None`` with fewer than 2 differences; with a constant difference (equal up to rounding,
    :func:`nearly_constant`; two seeds often give one) it is 1 (all zero) or 0 (all the same non-zero
    value), and the interval is the mean alone.  Otherwise ``p = 2 * sf_t(|mean| / sem, n - 1)``, the
    two-sided one-sample t-test, computed here so that no degenerate case warns.
    """
    d = np.asarray(differences, dtype=np.float64)
    n = len(d)
    lo, hi = t_ci(d, confidence)
    sd = float(d.std(ddof=1)) if n > 1 else 0.0
    p: float | None
    if n < 2:
        p = None
    elif nearly_constant(d):
        p = 1.0 if not np.any(d) else 0.0
    else:
        from scipy.stats import t

        z = d / float(np.max(np.abs(d)))  # scaled to at most 1: tiny differences do not underflow to sd 0
        p = min(1.0, float(2.0 * t.sf(abs(float(z.mean())) / (float(z.std(ddof=1)) / math.sqrt(n)), n - 1)))
    return {"n": n, "mean": float(d.mean()) if n else float("nan"), "sem": sd / math.sqrt(n) if n else float("nan"),
            "ci_low": lo, "ci_high": hi, "p": p}


def bootstrap_ci(values: Sequence[float] | np.ndarray, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (degenerate for fewer than 2 values)."""
    v = np.asarray(values, dtype=np.float64)
    if nearly_constant(v):
        m = float(v.mean()) if len(v) else float("nan")
        return m, m
    from scipy.stats import bootstrap

    res = bootstrap((v,), np.mean, confidence_level=confidence, n_resamples=n_resamples, method="percentile",
                    random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def example_se(pred_a: np.ndarray, pred_b: np.ndarray, labels: np.ndarray, metric: str = "accuracy",
               num_labels: int | None = None, n_resamples: int = 1000, seed: int = 0) -> float:
    """Standard error, over the report split's examples, of the seed-averaged paired difference of two methods.

    ``pred_a`` and ``pred_b`` are ``(seeds, examples)`` predicted labels of the two methods on the same seeds
    (row ``s`` of both is seed ``s``); ``labels`` the examples' labels.  The difference estimated is
    ``mean_s metric(pred_a[s]) - mean_s metric(pred_b[s])``; its standard error is what resampling the
    *examples* (the report split is a sample of the task's inputs) would give, keeping the seeds:

    * accuracy: exactly ``std(d_j) / sqrt(n)`` with ``d_j`` example ``j``'s seed-averaged correctness difference
      (the paired, per-example form of McNemar's test, averaged over seeds);
    * macro-F1 (not a mean over examples): the standard deviation over ``n_resamples`` paired bootstrap
      resamples of the examples (the same resample for both methods and every seed).
    """
    pa, pb, y = np.atleast_2d(pred_a), np.atleast_2d(pred_b), np.asarray(labels)
    if pa.shape != pb.shape or pa.shape[1] != len(y):
        raise ValueError(f"predictions of shape {pa.shape} and {pb.shape} do not pair with {len(y)} labels")
    n = len(y)
    if n < 2:
        return 0.0
    if metric == "accuracy":
        d = (pa == y).mean(axis=0) - (pb == y).mean(axis=0)
        return float(d.std(ddof=1) / math.sqrt(n))
    if metric != "macro_f1":
        raise ValueError(f"unknown metric {metric!r}; expected 'accuracy' or 'macro_f1'")
    k = int(num_labels if num_labels is not None else max(int(y.max()), int(pa.max()), int(pb.max())) + 1)
    rng = np.random.default_rng(seed)
    cells_a, cells_b = y * k + pa, y * k + pb  # (seeds, n): confusion cell of each prediction
    onehot = np.eye(k * k, dtype=np.float64)
    diffs = []
    chunk = max(1, min(250, 5_000_000 // n))  # resamples per block: a block's weights stay under ~40 MB
    for start in range(0, n_resamples, chunk):
        w = rng.multinomial(n, np.full(n, 1.0 / n), size=min(chunk, n_resamples - start)).astype(np.float64)  # (B, n)
        f = np.zeros((2, w.shape[0]))
        for m, cells in enumerate((cells_a, cells_b)):
            for row in cells:
                conf = (w @ onehot[row]).reshape(-1, k, k)  # (B, true, pred)
                tp = np.einsum("bii->bi", conf)
                denom = conf.sum(axis=2) + conf.sum(axis=1)  # 2 tp + fp + fn
                present = denom > 0
                f1 = np.where(present, 2 * tp / np.where(present, denom, 1), 0.0)
                f[m] += f1.sum(axis=1) / np.maximum(present.sum(axis=1), 1)
        diffs.append((f[0] - f[1]) / len(cells_a))
    return float(np.concatenate(diffs).std(ddof=1))


def combined_ci(differences: Sequence[float] | np.ndarray, se_examples: float, n_examples: int,
                confidence: float = 0.95) -> tuple[float, float]:
    """Interval of a paired difference counting both the seeds' and the report split's sampling noise.

    ``mean -+ q * sqrt(sem_seeds^2 + se_examples^2)`` with ``sem_seeds`` the per-seed differences' standard
    error, ``se_examples`` :func:`example_se` (from ``n_examples`` examples) and ``q`` Student t's quantile
    with the Welch-Satterthwaite degrees of freedom of the two variances (seeds - 1 and n_examples - 1):
    close to seeds - 1 when the seeds' noise dominates, to the normal quantile when the examples' does.
    With one seed only the examples' noise is known.  The interval is never narrower than the seeds' own
    paired t interval (a second source of noise cannot make the difference surer).  Adding the two variances
    slightly over-counts the seed-by-example interaction (it is in both), so the interval errs wide.
    """
    from scipy.stats import t

    d = np.asarray(differences, dtype=np.float64)
    m = float(d.mean())
    v_seed = 0.0 if nearly_constant(d) else float(d.var(ddof=1) / len(d))  # rounding noise is no spread
    v_ex = float(se_examples) ** 2
    parts = [(v, k - 1) for v, k in ((v_seed, len(d)), (v_ex, int(n_examples))) if v > 0 and k >= 2]
    if not parts:
        return m, m
    total = sum(v for v, _ in parts)
    df = total**2 / sum(v**2 / k for v, k in parts)
    half = float(t.ppf(0.5 + confidence / 2, df)) * math.sqrt(total)
    if v_seed > 0:
        half = max(half, float(t.ppf(0.5 + confidence / 2, len(d) - 1)) * math.sqrt(v_seed))
    return m - half, m + half


def describe(values: Sequence[float] | np.ndarray, metric: str | None = None) -> dict[str, Any]:
    """Mean, std, standard error and a 95% t interval of the values.

    With one value ``std``, ``sem``, ``ci_low`` and ``ci_high`` are ``None`` (no spread can be estimated; never a
    zero-width interval).  With ``metric`` of a known range (:func:`metric_range`) the interval is clipped to it
    (``ci_clipped``).  ``few_seeds``: fewer than :data:`FEW_SEEDS` values.
    """
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    out: dict[str, Any] = {"n": n, "mean": float(v.mean()) if n else float("nan"), "std": None, "sem": None,
                           "ci_low": None, "ci_high": None, "ci_method": CI_METHOD, "ci_clipped": False,
                           "few_seeds": n < FEW_SEEDS}
    if n > 1:
        std = float(v.std(ddof=1))
        lo, hi, clipped = clip_interval(*t_ci(v), metric_range(metric))
        out.update(std=std, sem=std / math.sqrt(n), ci_low=lo, ci_high=hi, ci_clipped=clipped)
    return out


def by_method(rows: Iterable[dict[str, Any]]) -> dict[str, dict[int, dict[str, Any]]]:
    """Rows grouped by method, then by seed."""
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["method"], {})[int(r["seed"])] = r
    return out


def paired(a: dict[int, dict[str, Any]], b: dict[int, dict[str, Any]]) -> np.ndarray:
    """Per-seed differences ``a - b`` of the test metric over the seeds both methods ran."""
    seeds = sorted(set(a) & set(b))
    return np.asarray([a[s]["test"] - b[s]["test"] for s in seeds], dtype=np.float64)


def method_kind(method: str) -> str:
    """The registered kind of ``method`` (:data:`taskmix.compare.methods.METHODS`), ``other`` if unregistered."""
    return METHODS.meta(method, "kind", "other") if method in METHODS else "other"


def _median(values: Sequence[Any]) -> float | None:
    v = [float(x) for x in values if x is not None]
    return float(np.median(v)) if v else None


def _predictions(rows: dict[int, dict[str, Any]], seeds: Sequence[int], n: int) -> np.ndarray | None:
    if not all("predictions" in rows[s] for s in seeds):
        return None
    return np.stack([decode_labels(rows[s]["predictions"], n=n) for s in seeds])


def examples_interval(a: dict[int, dict[str, Any]], b: dict[int, dict[str, Any]], labels: np.ndarray,
                      metric: str = "accuracy", num_labels: int | None = None) -> tuple[float, float, float] | None:
    """``(example_se, low, high)`` of ``a - b`` paired over their shared seeds (rows by seed, as :func:`by_method`
    gives), counting seeds and report-split examples (:func:`combined_ci`); None unless every such row of both
    holds ``predictions``."""
    if metric == "bits_per_byte":  # the language-modelling regime's rows keep no per-example labels
        return None
    seeds = sorted(set(a) & set(b))
    y = np.asarray(labels)
    pa = _predictions(a, seeds, len(y)) if seeds else None
    pb = _predictions(b, seeds, len(y)) if pa is not None else None
    if pa is None or pb is None:
        return None
    se = example_se(pa, pb, y, metric, num_labels)
    lo, hi = combined_ci(paired(a, b), se, len(y))
    return se, lo, hi


def summarize(rows: Sequence[dict[str, Any]], plain_seconds: float | None = None, plain_steps: int | None = None,
              labels: np.ndarray | None = None, metric: str = "accuracy", num_labels: int | None = None) -> list[dict[str, Any]]:
    """One summary per method: statistics, paired difference to the best baseline, cost.

    Statistics of the per-seed ``test`` values (:func:`describe`): ``n``, ``mean``, ``std``
    (``ddof=1``), ``sem``, and the 95% Student t interval of the mean
    (``ci_low``, ``ci_high``; ``ci_method: "t"``), clipped to ``metric``'s range (``ci_clipped``);
    ``few_seeds`` marks ``n < 3``.  The *best baseline* is the rule-based method
    (``single_task``, ``uniform``, ``proportional``, ``temperature_*``,
    ``examples_proportional``) with the best mean (the highest; the lowest for a metric that is better lower,
    :func:`~taskmix.data.tasks.metric_sign`); every other method gets
    the paired difference ``d_s = test(method, s) - test(best, s)`` over the
    seeds both have (``diff_mean``, ``diff_sem``, the 95% paired t interval
    ``diff_ci_low``, ``diff_ci_high``, the paired t-test's two-sided ``diff_p``)
    and ``within_noise = diff_ci_low <= 0 <= diff_ci_high`` (i.e. ``diff_p >= 0.05``); the interval is
    clipped to the difference's range (``diff_ci_clipped``: [-1, 1] for a metric in [0, 1]).  Over one
    shared seed there is no interval, p value or within-noise call: ``diff_sem``, ``diff_ci_low``,
    ``diff_ci_high``, ``diff_p`` and ``within_noise`` are ``None``.

    Cost per run (median over seeds): ``train_steps`` (every optimiser step,
    searches / online runs / probes / replays included), ``evaluations`` and
    ``seconds``; their totals over seeds (``total_train_steps``,
    ``total_evaluations``, ``total_seconds``); and their ratios to one plain
    training run (``step_ratio``, ``eval_ratio``, ``cost_ratio``).  A plain run
    is ``plain_steps`` steps, one evaluation and ``plain_seconds`` seconds;
    when not given they are the medians of the ``uniform`` rows (if any).

    With the report split's ``labels`` (and its ``metric``, ``num_labels``), a method whose rows and the
    best baseline's rows on the shared seeds all hold ``predictions`` also gets the report split's part of
    the noise: ``diff_se_examples`` (:func:`example_se`), the interval ``diff_ci_examples_low`` /
    ``diff_ci_examples_high`` (:func:`combined_ci`: seeds and examples; clipped as above,
    ``diff_ci_examples_clipped``) and ``within_noise_examples`` -- over one shared seed the interval and the
    mark are ``None`` (the seeds' part of the noise is unknown).
    """
    groups = by_method(rows)
    uniform = list(groups.get("uniform", {}).values())
    if plain_seconds is None:
        plain_seconds = _median([r.get("seconds") for r in uniform])
    if plain_steps is None:
        steps_median = _median([r.get("train_steps") for r in uniform])
        plain_steps = int(steps_median) if steps_median is not None else None
    plain_evals = _median([r.get("evaluations") for r in uniform]) or 1.0
    stats = {m: describe([r["test"] for r in g.values()], metric) for m, g in groups.items()}
    drange = diff_range(metric)
    baselines = [m for m in groups if method_kind(m) == "baseline"]
    sign = metric_sign(metric)  # -1 for a metric that is better lower (bits per byte)
    best_base = max(baselines, key=lambda m: sign * stats[m]["mean"]) if baselines else None
    out = []
    for m, g in groups.items():
        s: dict[str, Any] = dict(stats[m])
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
                dd = paired_t(d)
                one = len(d) < 2  # one shared seed: no spread, so no interval, p value or within-noise call
                lo, hi, clipped = clip_interval(dd["ci_low"], dd["ci_high"], drange) if not one else (None, None, False)
                s["vs"] = best_base
                s["diff_n"] = int(len(d))
                s["diff_mean"] = dd["mean"]
                s["diff_sem"] = None if one else dd["sem"]
                s["diff_ci_low"] = lo
                s["diff_ci_high"] = hi
                s["diff_ci_clipped"] = clipped
                s["diff_p"] = dd["p"]
                s["within_noise"] = None if lo is None or hi is None else bool(lo <= 0.0 <= hi)
                ex = examples_interval(g, groups[best_base], labels, metric, num_labels) if labels is not None else None
                if ex is not None:
                    s["diff_se_examples"], raw_lo, raw_hi = ex
                    lo2, hi2, clipped2 = clip_interval(raw_lo, raw_hi, drange) if not one else (None, None, False)
                    s["diff_ci_examples_low"], s["diff_ci_examples_high"] = lo2, hi2
                    s["diff_ci_examples_clipped"] = clipped2
                    s["within_noise_examples"] = None if lo2 is None or hi2 is None else bool(lo2 <= 0.0 <= hi2)
        out.append(s)
    out.sort(key=lambda s: -sign * s["mean"])
    return out


def _has_interval(n: Any, low: Any, high: Any) -> bool:
    return isinstance(n, int) and n >= 2 and low is not None and high is not None


def _marks(n: int, clipped: Any) -> str:
    return (FEW_SEEDS_MARK if n < FEW_SEEDS else "") + (CLIPPED_MARK if clipped else "")


def _interval_cell(n: Any, low: Any, high: Any, clipped: Any, fmt: str) -> str:
    """``[low, high]`` with its marks, or :data:`NO_INTERVAL` (one seed, or none computed)."""
    if not _has_interval(n, low, high):
        return NO_INTERVAL
    return f"[{low:{fmt}}, {high:{fmt}}]{_marks(n, clipped)}"


def _diff_cell(s: dict[str, Any]) -> str:
    if "diff_mean" not in s:
        return "(best baseline)" if s.get("best_baseline") else ""
    n = s.get("diff_n", s.get("n"))
    if not _has_interval(n, s.get("diff_ci_low"), s.get("diff_ci_high")):  # one seed: no interval, p or ≈
        return f"{s['diff_mean']:+.4f} [{NO_INTERVAL}]"
    mark = " ≈" if s.get("within_noise") is True else ""
    p = s.get("diff_p")
    pv = "" if p is None else (f", p={p:.3f}" if p >= 0.001 else ", p<0.001")
    ci = _interval_cell(n, s["diff_ci_low"], s["diff_ci_high"], s.get("diff_ci_clipped"), "+.4f")
    return f"{s['diff_mean']:+.4f} {ci}{pv}{mark}"


def ratio_cell(s: dict[str, Any], key: str) -> str:
    """A cost ratio formatted for the table (empty when unknown)."""
    return f"{s[key]:.2f}" if key in s and s[key] is not None and math.isfinite(s[key]) else ""


def _examples_cell(s: dict[str, Any]) -> str:
    if "diff_ci_examples_low" not in s:
        return "(best baseline)" if s.get("best_baseline") else ""
    n = s.get("diff_n", s.get("n"))
    lo, hi = s.get("diff_ci_examples_low"), s.get("diff_ci_examples_high")
    if not _has_interval(n, lo, hi):
        return NO_INTERVAL
    mark = " ≈" if s.get("within_noise_examples") is True else ""
    return _interval_cell(n, lo, hi, s.get("diff_ci_examples_clipped"), "+.4f") + mark


def _mean_cell(s: dict[str, Any]) -> str:
    if not isinstance(s.get("n"), int) or s["n"] < 2 or s.get("std") is None:
        return f"{s['mean']:.4f} ± {NO_INTERVAL}"
    return f"{s['mean']:.4f} ± {s['std']:.4f}"


def interval_notes(summary: Sequence[dict[str, Any]]) -> list[str]:
    """The notes that go with the table's marks: one seed ("—"), two seeds ("†"), clipped intervals ("‡").

    Empty when every method has 3 or more seeds and no interval was clipped.
    """
    def seeds(s: dict[str, Any]) -> list[int]:
        return [int(k) for k in (s.get("n"), s.get("diff_n") if "diff_mean" in s else None) if isinstance(k, int)]

    notes = []
    one = [s["method"] for s in summary if any(k < 2 for k in seeds(s))]
    two = [s["method"] for s in summary if any(k == 2 for k in seeds(s))]
    if one:
        who = "" if len(one) == len(summary) else f" ({', '.join(one)})"
        notes.append(
            f"{NO_INTERVAL}: one seed{who}, so no spread can be estimated: no interval, standard deviation, p value "
            "or within-noise mark, and a difference is one seed's difference, not a finding. Run 3 or more seeds."
        )
    if two:
        who = "" if len(two) == len(summary) else f" ({', '.join(two)})"
        notes.append(
            f"{FEW_SEEDS_MARK}: fewer than 3 seeds{who}: a 95% t interval from 2 seeds has 1 degree of freedom and "
            "spans ±12.7 standard errors, so intervals are wide and themselves unreliable; use 3 or more seeds."
        )
    if any(s.get(k) for s in summary for k in ("ci_clipped", "diff_ci_clipped", "diff_ci_examples_clipped")):
        notes.append(
            f"{CLIPPED_MARK}: clipped to the metric's range ([0, 1] for accuracy and macro-F1, differences to "
            "[−1, 1]); the t interval reaches past it."
        )
    return notes


def table_cells(summary: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the results table (shared by :func:`format_table` and the reports).

    The column of intervals over seeds *and* report-split examples is there when a summary has them.  An
    interval that cannot be computed (one seed) is "—"; one from two seeds is marked "†", a clipped one "‡"
    (:func:`interval_notes`).
    """
    examples = any("diff_ci_examples_low" in s for s in summary)
    head = ["method", "mean ± std", "95% CI (t)", "Δ vs best baseline (95% paired t CI, p)",
            *(["Δ 95% CI, seeds + test examples"] if examples else []), "train steps", "steps × plain",
            "evaluations", "seconds", "time × plain"]
    cells = []
    for s in summary:
        cells.append([
            s["method"],
            _mean_cell(s),
            _interval_cell(s.get("n"), s.get("ci_low"), s.get("ci_high"), s.get("ci_clipped"), ".4f"),
            _diff_cell(s),
            *([_examples_cell(s)] if examples else []),
            f"{s.get('train_steps', 0):.0f}",
            ratio_cell(s, "step_ratio"),
            f"{s.get('evaluations', 0):.0f}",
            f"{s['seconds']:.2f}",
            ratio_cell(s, "cost_ratio"),
        ])
    return head, cells


def format_table(summary: Sequence[dict[str, Any]], metric: str = "test") -> str:
    """A plain-text (Markdown) table: mean ± std, 95% CI, paired difference, cost (``metric``: a task metric, named
    with its direction above the table, e.g. ``bits per byte (lower is better)``)."""
    head, cells = table_cells(summary)
    lines = [f"{metric_label(metric)} on the report split; Δ < 0 is better" if metric_sign(metric) < 0
             else f"{metric_label(metric)} on the report split", ""] if metric in METRIC_NAMES else []
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(c) + " |" for c in cells]
    lines.append("")
    vs = next((s["vs"] for s in summary if "vs" in s), None)
    n0 = summary[0]["n"] if summary else 0
    lines.append(
        f"n = {n0} paired seed{'' if n0 == 1 else 's'}; Δ is paired, against the best baseline"
        + (f" ({vs})" if vs else "")
        + "; 95% CIs are Student t intervals (paired t for Δ, with the paired t-test's p value); "
        "≈ marks a difference whose CI covers 0 (within noise). "
        + ("Seeds + test examples: the same Δ with an interval that also counts the report split's sampling noise "
           "(the two standard errors combined, t with Welch-Satterthwaite degrees of freedom). "
           if any("diff_ci_examples_low" in s for s in summary) else "")
        + "Cost per run (median over seeds); × plain: ratio to one plain training run (the uniform rows)."
    )
    lines += [f"\n{note}" for note in interval_notes(summary)]
    return "\n".join(lines)
