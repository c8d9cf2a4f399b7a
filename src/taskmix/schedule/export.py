"""Exports of a schedule to other pipelines (stages, seqio, Megatron-LM).

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

from .core import MAX_STEPS, Schedule, check_schedule, positive_int


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


def parse_mapping(items: Sequence[str] | None, what: str) -> dict[str, str]:
    """``["a=x", "b=y"]`` -> ``{"a": "x", "b": "y"}`` (for ``--prefix`` / ``--rename``)."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"{what} {item!r}: expected TASK=VALUE")
        out[key] = value
    return out
