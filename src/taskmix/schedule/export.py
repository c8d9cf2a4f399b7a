"""Schedule tooling: a readable summary, the difference of two schedules, and exports to other pipelines.

``taskmix schedule show|diff|export`` are thin wrappers over these functions.

* :func:`to_stages` -- the schedule over a run as constant-probability stages
  (what ``datasets.interleave_datasets`` takes, one call per stage; used by
  :func:`taskmix.hf.to_interleave_stages` and :func:`taskmix.hf.interleave_stages`);
* :func:`seqio_mixtures` -- seqio-style mixing rates, ``seqio.MixtureRegistry.add(name, [(task, rate), ...])``,
  one mixture per stage (seqio mixtures are static);
* :func:`megatron_data_path` -- Megatron-LM's ``--data-path w1 prefix1 w2 prefix2 ...`` blend, one per stage.

A time-invariant schedule is one stage.  ``average=True`` collapses a
time-variant schedule to its step-weighted mean over the run instead.
"""

from __future__ import annotations

import json
import shlex
from typing import Any, Literal, Mapping, Sequence

import numpy as np

from .sampler import check_schedule, positive_int
from .schedule import MAX_STEPS, Schedule

__all__ = ["describe", "diff", "format_diff", "megatron_data_path", "parse_mapping", "provenance_lines", "seqio_mixtures",
           "to_stages",
           "total_steps_of"]


def _steps(total_steps: Any) -> int:
    """``total_steps`` as a positive int of at most 2^53 (the tools compute per row, never per step)."""
    steps = positive_int("total_steps", total_steps)
    if steps > MAX_STEPS:
        raise ValueError(f"total_steps must be a positive integer of at most 2^53, got {steps}")
    return steps


def _label(text: Any) -> str:
    """A name as printed in a summary: as it is when printable, else escaped (a schedule from someone else cannot
    send control characters, such as terminal escapes or line breaks, to the terminal)."""
    text = str(text)
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def total_steps_of(schedule: Schedule) -> int:
    """The run length a schedule was made for: its provenance's ``schedule_steps`` (older files: ``search_steps``),
    else one pass over its rows."""
    for key in ("schedule_steps", "search_steps"):
        s = schedule.provenance.get(key)
        if isinstance(s, int) and not isinstance(s, bool) and 0 < s <= MAX_STEPS:
            return s
    return schedule.n_rows * schedule.steps_per_meta_step


def to_stages(
    schedule: Schedule,
    total_steps: int,
    batch_size: int,
    by: Literal["meta_step", "distinct_row"] = "meta_step",
) -> list[dict[str, Any]]:
    """The schedule over ``total_steps`` steps of ``batch_size`` examples as constant-probability stages.

    Returns a list of ``{"probabilities": [...], "num_examples": int,
    "steps": (start, end)}`` in order, where ``probabilities`` is in schedule
    task order and ``num_examples = (end - start) * batch_size``.
    ``by="meta_step"`` gives one stage per schedule row reached (the last row
    runs to ``total_steps``); ``by="distinct_row"`` merges consecutive rows
    with identical weights.
    """
    check_schedule(schedule)
    total_steps = _steps(total_steps)
    batch_size = positive_int("batch_size", batch_size)
    if by not in ("meta_step", "distinct_row"):
        raise ValueError(f"by must be 'meta_step' or 'distinct_row', got {by!r}")
    n = schedule.steps_per_meta_step
    stages: list[dict[str, Any]] = []
    for m in range(schedule.n_rows):
        start = m * n
        if start >= total_steps:
            break
        end = total_steps if m == schedule.n_rows - 1 else min((m + 1) * n, total_steps)
        probs = [float(p) for p in schedule.weights[m]]
        if by == "distinct_row" and stages and stages[-1]["probabilities"] == probs:
            first = stages[-1]["steps"][0]
            stages[-1]["steps"] = (first, end)
            stages[-1]["num_examples"] = (end - first) * batch_size
            continue
        stages.append({"probabilities": probs, "num_examples": (end - start) * batch_size, "steps": (start, end)})
    return stages


def _rate_stages(schedule: Schedule, total_steps: int | None, average: bool) -> list[tuple[tuple[int, int], np.ndarray]]:
    check_schedule(schedule)
    if not isinstance(average, (bool, np.bool_)):
        raise TypeError(f"average must be True or False, got {type(average).__name__}")
    steps = total_steps_of(schedule) if total_steps is None else _steps(total_steps)
    if average or schedule.time_invariant:
        return [((0, steps), schedule.mean_weights(steps))]
    return [(tuple(s["steps"]), np.asarray(s["probabilities"])) for s in to_stages(schedule, steps, 1, by="distinct_row")]


def _num(x: float) -> str:
    return f"{float(x):.6g}"


def seqio_mixtures(schedule: Schedule, name: str = "taskmix_mixture", total_steps: int | None = None,
                   average: bool = False, tasks: Mapping[str, str] | None = None) -> str:
    """Python source registering the schedule as seqio mixtures: one ``MixtureRegistry.add`` per stage.

    Every name in the source is a JSON string literal (a valid Python literal), so no task name, mixture name or
    ``tasks`` value can add code to it.

    Rates are the schedule's weights (seqio normalises them); zero-weight tasks
    are left out (named in a comment).  ``tasks`` renames taskmix task names to
    seqio task names.  Stage ``k`` of a time-variant schedule is the mixture
    ``f"{name}_stage{k}"``, its steps in a comment: switch mixtures at those
    steps (seqio has no time-varying mixture).
    """
    rename = dict(tasks or {})
    stages = _rate_stages(schedule, total_steps, average)
    lines = ["import seqio", ""]
    for k, ((a, b), w) in enumerate(stages):
        mix = name if len(stages) == 1 else f"{name}_stage{k}"
        kept = [(rename.get(t, t), float(x)) for t, x in zip(schedule.tasks, w) if x > 0]
        dropped = [t for t, x in zip(schedule.tasks, w) if x <= 0]
        what = "step-weighted average over" if average and not schedule.time_invariant else "steps"
        # names in the comment as JSON strings: a task name with a line break cannot end the comment and add code
        left_out = ", ".join(json.dumps(t) for t in dropped)
        lines.append(f"# {what} [{a}, {b})" + (f"; zero weight, left out: {left_out}" if dropped else ""))
        body = ", ".join(f"({json.dumps(t)}, {_num(x)})" for t, x in kept)
        lines.append(f"seqio.MixtureRegistry.add({json.dumps(mix)}, [{body}])")
    return "\n".join(lines) + "\n"


def megatron_data_path(schedule: Schedule, prefixes: Mapping[str, str] | None = None, total_steps: int | None = None,
                       average: bool = False) -> str:
    """Megatron-LM ``--data-path`` blends: ``w1 prefix1 w2 prefix2 ...``, one line per stage.

    ``prefixes`` maps task names to the data prefixes of their indexed
    datasets (default: the task name).  Zero-weight tasks are left out.  A
    time-variant schedule gives one line per stage, each after a comment with
    its steps (Megatron's blend is fixed for a run: train each stage with its
    line, or pass ``average=True`` for one line).

    Each line is meant for a shell command line (``--data-path <line>``): a
    prefix with spaces or shell metacharacters is quoted (:func:`shlex.quote`),
    so it stays one argument and cannot add options or commands; a prefix
    with a control character (a line break, a terminal escape) is refused.
    """
    check_schedule(schedule)
    if prefixes is not None and not isinstance(prefixes, Mapping):
        raise TypeError(f"prefixes must be a mapping task name -> data prefix, got {type(prefixes).__name__}")
    prefixes = dict(prefixes or {})
    unknown = sorted(set(prefixes) - set(schedule.tasks))
    if unknown:
        raise ValueError(f"prefix given for unknown task(s) {unknown}; the schedule has {list(schedule.tasks)}")
    words = {}
    for t in schedule.tasks:
        prefix = prefixes.get(t, t)
        where = f"prefix of task '{_label(t)[:40]}'" + ("" if t in prefixes else " (the task name, no prefix given)")
        if not isinstance(prefix, str) or not prefix:
            raise ValueError(f"{where}: expected a non-empty path, got {str(prefix)[:40]!r}")
        if not prefix.isprintable():
            raise ValueError(f"{where}: '{_label(prefix)[:60]}' has a control character (a line break, a tab, an "
                             "escape); expected a data path on one line")
        words[t] = shlex.quote(prefix)
    stages = _rate_stages(schedule, total_steps, average)
    lines = []
    for (a, b), w in stages:
        if len(stages) > 1:
            lines.append(f"# steps [{a}, {b})")
        lines.append(" ".join(f"{_num(x)} {words[t]}" for t, x in zip(schedule.tasks, w) if x > 0))
    return "\n".join(lines) + "\n"


PROVENANCE_LIST_ITEMS = 8
"""Lists longer than this are shown by their first and last items and their length."""
PROVENANCE_KEYS = 40
"""Keys shown per level of the provenance; the rest are counted (``schedule show --json`` shows them)."""
PROVENANCE_WIDTH = 100
"""A nested dict of plain values that fits in this many characters is shown on one line."""
_PROVENANCE_DEPTH = 6


def _scalar(v: Any) -> str:
    """One plain value: floats to 4 significant digits, JSON's true/false/null, text without control characters."""
    if isinstance(v, bool) or v is None:
        return {True: "true", False: "false", None: "null"}[v]
    if isinstance(v, float):
        s = format(v, ".4g")
        return s if any(c in s for c in ".ena") else s + ".0"  # 2.0 stays a float: "2.0", not "2"
    if isinstance(v, int):
        return str(v)
    s = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(v))
    return s if len(s) <= PROVENANCE_WIDTH else s[: PROVENANCE_WIDTH - 3] + "..."


def _inline(v: Any, depth: int = 0) -> str:
    """A value on one line: ``[a, b, ..., z] (N items)`` for long lists, ``{k: v, ...}`` for dicts."""
    if isinstance(v, dict):
        if depth >= _PROVENANCE_DEPTH:
            return "{...}"
        items = list(v.items())
        parts = [f"{_scalar(k)}: {_inline(x, depth + 1)}" for k, x in items[:PROVENANCE_LIST_ITEMS]]
        more = len(items) - PROVENANCE_LIST_ITEMS
        return "{" + ", ".join(parts + ([f"... {more} more"] if more > 0 else [])) + "}"
    if isinstance(v, (list, tuple)):
        if depth >= _PROVENANCE_DEPTH:
            return "[...]"
        n = len(v)
        shown = list(v) if n <= PROVENANCE_LIST_ITEMS else [*v[:3], ..., *v[-2:]]
        text = "[" + ", ".join("..." if x is ... else _inline(x, depth + 1) for x in shown) + "]"
        return text + (f" ({n} items)" if n > PROVENANCE_LIST_ITEMS else "")
    return _scalar(v)


def provenance_lines(prov: dict[str, Any], indent: int = 2, depth: int = 0) -> list[str]:
    """A schedule's provenance as readable ``key: value`` lines (``provenance:`` first, when at the top).

    Nested dicts are indented below their key, or on one line (``{k: v, ...}``) when they hold only plain
    values and fit; floats have 4 significant digits; long lists and long texts are shortened.
    """
    if not prov:
        return []
    pad = " " * indent
    lines = ["provenance:"] if depth == 0 else []
    items = list(prov.items())
    for k, v in items[:PROVENANCE_KEYS]:
        key = _scalar(k)
        if isinstance(v, dict) and v:
            flat = not any(isinstance(x, (dict, list, tuple)) for x in v.values())
            one_line = f"{pad}{key}: {_inline(v)}"
            if (flat and len(one_line) <= PROVENANCE_WIDTH) or depth + 1 >= _PROVENANCE_DEPTH:
                lines.append(one_line)
            else:
                lines.append(f"{pad}{key}:")
                lines += provenance_lines(v, indent + 2, depth + 1)
        else:
            lines.append(f"{pad}{key}: {_inline(v)}")
    if len(items) > PROVENANCE_KEYS:
        lines.append(f"{pad}... {len(items) - PROVENANCE_KEYS} more keys (schedule show --json shows them all)")
    return lines


def describe(schedule: Schedule, total_steps: int | None = None, max_rows: int = 20) -> str:
    """A readable summary: tasks, rows, step layout, provenance, the weights per row and their average."""
    check_schedule(schedule)
    steps = total_steps_of(schedule) if total_steps is None else _steps(total_steps)
    max_rows = positive_int("max_rows", max_rows)
    kind = "time-invariant" if schedule.time_invariant else f"time-variant, {schedule.n_rows} rows"
    names = [_label(t) for t in schedule.tasks]
    width = max(8, *(len(t) for t in names))
    out = [f"schedule: {schedule.n_tasks} tasks, {kind}, {schedule.steps_per_meta_step} steps per meta-step"]
    out += provenance_lines(schedule.provenance)
    head = "row  steps".ljust(22) + "".join(t.rjust(width + 2) for t in names)
    out += ["", head]
    n = schedule.steps_per_meta_step
    rows = list(range(schedule.n_rows))
    shown = rows if len(rows) <= max_rows else rows[: max_rows // 2] + [-1] + rows[-max_rows // 2:]
    for m in shown:
        if m < 0:
            out.append("...")
            continue
        span = f"[{m * n}, {(m + 1) * n})" if m < schedule.n_rows - 1 else f"[{m * n}, end)"
        out.append(f"{m:<4} {span:<16}" + "".join(f"{w:.4f}".rjust(width + 2) for w in schedule.weights[m]))
    out.append(f"{'mean over ' + str(steps) + ' steps':<21}" + "".join(f"{w:.4f}".rjust(width + 2)
                                                                        for w in schedule.mean_weights(steps)))
    return "\n".join(out) + "\n"


def diff(a: Schedule, b: Schedule, total_steps: int | None = None) -> dict[str, Any]:
    """How two schedules differ: tasks, layout, per-task mean weights and the largest per-step difference.

    Tasks are compared by name (a task missing from one schedule has weight 0
    there).  ``mean_a`` / ``mean_b`` are step-weighted means over
    ``total_steps`` (default: the longer of the two schedules' runs);
    ``total_variation`` is half the L1 distance of the means; ``max_step_diff``
    the largest absolute weight difference at any step.
    """
    check_schedule(a)
    check_schedule(b)
    tasks = list(a.tasks) + [t for t in b.tasks if t not in a.tasks]
    steps = _steps(total_steps) if total_steps is not None else max(total_steps_of(a), total_steps_of(b))

    def rows(s: Schedule) -> np.ndarray:  # each row's weights over `tasks` (0 for a task it does not have)
        w = np.zeros((s.n_rows, len(tasks)))
        for j, t in enumerate(tasks):
            if t in s.tasks:
                w[:, j] = s.weights[:, s.tasks.index(t)]
        return w

    # the per-step weights are constant between row boundaries: work segment by segment (never per step)
    ra, rb = rows(a), rows(b)
    cuts = {0, steps}
    for s in (a, b):
        cuts.update(m * s.steps_per_meta_step for m in range(1, s.n_rows) if m * s.steps_per_meta_step < steps)
    bounds = sorted(cuts)
    ma, mb = np.zeros(len(tasks)), np.zeros(len(tasks))
    worst_value, worst = -1.0, (0, 0)
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        wa, wb = ra[a.row_index(lo)], rb[b.row_index(lo)]
        ma += (hi - lo) * wa
        mb += (hi - lo) * wb
        seg = np.abs(wa - wb)
        if seg.max() > worst_value:  # the first step and task of the largest difference, as argmax would find it
            worst_value, worst = float(seg.max()), (lo, int(np.argmax(seg)))
    ma, mb = ma / steps, mb / steps
    return {
        "tasks": tasks,
        "only_in_a": [t for t in a.tasks if t not in b.tasks],
        "only_in_b": [t for t in b.tasks if t not in a.tasks],
        "rows": (a.n_rows, b.n_rows),
        "steps_per_meta_step": (a.steps_per_meta_step, b.steps_per_meta_step),
        "total_steps": steps,
        "mean_a": ma.tolist(),
        "mean_b": mb.tolist(),
        "total_variation": float(0.5 * np.abs(ma - mb).sum()),
        "max_step_diff": max(worst_value, 0.0),
        "max_step_diff_at": {"step": int(worst[0]), "task": tasks[int(worst[1])]},
        "identical": bool(a == b),
    }


def format_diff(d: Mapping[str, Any], name_a: str = "a", name_b: str = "b") -> str:
    """:func:`diff` as text."""
    name_a, name_b = _label(name_a), _label(name_b)
    if d["identical"]:
        return f"{name_a} and {name_b} are identical\n"
    out = []
    if d["only_in_a"] or d["only_in_b"]:
        out.append(f"tasks only in {name_a}: {d['only_in_a'] or '-'}; only in {name_b}: {d['only_in_b'] or '-'}")
    (ra, rb), (sa, sb) = d["rows"], d["steps_per_meta_step"]
    out.append(f"rows: {ra} vs {rb}; steps per meta-step: {sa} vs {sb}")
    width = max(8, *(len(_label(t)) for t in d["tasks"]))
    col = max(10, len(name_a), len(name_b)) + 2
    out.append(f"mean weights over {d['total_steps']} steps:")
    out.append("task".ljust(width) + name_a.rjust(col) + name_b.rjust(col) + "difference".rjust(12))
    for t, x, y in zip(d["tasks"], d["mean_a"], d["mean_b"]):
        out.append(_label(t).ljust(width) + f"{x:.4f}".rjust(col) + f"{y:.4f}".rjust(col) + f"{y - x:+.4f}".rjust(12))
    at = d["max_step_diff_at"]
    out.append(f"total variation of the means: {d['total_variation']:.4f}; largest per-step difference: "
               f"{d['max_step_diff']:.4f} ({_label(at['task'])} at step {at['step']})")
    return "\n".join(out) + "\n"


def parse_mapping(items: Sequence[str] | None, what: str) -> dict[str, str]:
    """``["a=x", "b=y"]`` -> ``{"a": "x", "b": "y"}`` (for ``--prefix`` / ``--rename``)."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"{what} {item!r}: expected TASK=VALUE")
        out[key] = value
    return out
