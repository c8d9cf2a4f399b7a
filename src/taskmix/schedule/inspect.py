"""A schedule for people: a readable summary (:func:`describe`), the difference of two (:func:`diff`), provenance lines.

``taskmix schedule show|diff`` are thin wrappers over these functions.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .core import Schedule, check_schedule, positive_int

from .export import _label, _steps, total_steps_of


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


