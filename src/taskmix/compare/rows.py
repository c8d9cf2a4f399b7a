"""The rows of a comparison's ``rows.jsonl``: their checksum, and the one validator every row read back goes through.

A row is what :func:`taskmix.compare.methods.run_method` returns, written by the runner with ``sha256``, the
digest of the rest of the row (:func:`row_digest`).  The digest catches accidents (an edited value, a torn or
mixed-up file); it is not a signature, so a row is never trusted because its digest matches.  :func:`check_row`
checks every field a comparison uses, as the writer produces it:

* types and ranges: ``method`` a registered method and ``kind`` its kind; ``seed`` an integer in
  ``[0, 2^32)``; ``test`` a number in ``[0, 1]`` (accuracy and macro-F1); ``seconds`` a finite number in
  ``[0, 10^9]``; ``train_steps`` and ``evaluations`` integers in ``[0, 2^63)``; every number anywhere in the
  row finite, every integer below ``2^63`` in magnitude, nothing nested deeper than 32 levels;
* ``schedule``: ``null`` or a valid schedule over the run's tasks (its ``provenance.meta_steps`` an integer in
  ``[1, 10^6]``, its ``provenance.task_effects`` well formed);
* ``log``: a list of objects, empty for baselines and the oracle; the per-task lists (``probs_before`` /
  ``probs_after``: one non-negative weight per task summing to 1; ``rewards``, ``advantages``, ``realised``:
  one finite number per task; ``task_train_loss`` and ``reward_se*``: one finite number or ``null`` per task),
  counters (``round``, ``meta_step``, ``step``, ...: integers in ``[0, 2^40)``) and
  ``reward_split_accuracy`` in ``[0, 1]``;
* ``extra``: an object (its ``task_effects`` well formed; a confirmation's row, run with another share of held-out
  target rows, records it as ``reward_fraction``, a number in ``(0, 1)``: :func:`held_out_fraction`);
* with a :class:`RowContext` (a resume): ``predictions`` hold one label per row of the target's report split,
  each below the target's number of labels, and ``test`` is the target's metric of those predictions against
  the report split's labels (within :data:`TEST_TOLERANCE`).

A refusal is one :class:`~taskmix.errors.ConfigError` line naming the file, the line, the field and what was
expected.

>>> row = {"method": "uniform", "kind": "baseline", "seed": 0, "test": 1.5, "seconds": 0.1, "train_steps": 40,
...        "evaluations": 1, "schedule": None, "log": [], "extra": {}, "predictions": "u8:AAE="}
>>> check_row({**row, ROW_DIGEST: row_digest(row)}, "rows.jsonl:1")
Traceback (most recent call last):
...
taskmix.errors.ConfigError: rows.jsonl:1: 'test' is 1.5, expected a number in [0, 1] (accuracy or macro-F1)
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, cast

import numpy as np

from ..config.schema import SEED_LIMIT
from ..data.tasks import Task
from ..engine.trainer import metric_value
from ..errors import ConfigError, ScheduleError, unique_keys
from ..files import MAX_DATA_INPUT_BYTES, read_input_bytes
from ..schedule import TOLERANCE, Schedule
from .methods import METHODS
from .predictions import decode_labels, decode_losses

__all__ = ["FIELDS", "FRACTION", "MAX_SECONDS", "ROW_DIGEST", "RowContext", "TEST_TOLERANCE", "check_row", "held_out_fraction",
           "read_rows", "row_digest"]

FRACTION = "reward_fraction"
"""The ``extra`` field of a confirmation's row run with its own share of held-out target rows
(``compare.confirm_fraction``, where it differs from ``search.reward_fraction``): that share.  Such a row feeds only
the confirmation's choice, never the table, and is never taken for the comparison's row of its (method, seed)."""


def held_out_fraction(row: Mapping[str, Any]) -> float | None:
    """The share of held-out target rows ``row`` was run with where it records one (a confirmation's run with
    ``compare.confirm_fraction``), else None (the comparison's ``search.reward_fraction``)."""
    v = (row.get("extra") or {}).get(FRACTION)
    return None if v is None else float(v)

ROW_DIGEST = "sha256"
"""The field of every ``rows.jsonl`` row holding the sha256 of the rest of the row (see :func:`row_digest`)."""

FIELDS = ("method", "kind", "seed", "test", "seconds", "train_steps", "evaluations", "schedule", "log", "extra",
          "predictions", ROW_DIGEST)
"""The fields of a results row (all required)."""

MAX_SECONDS = 1e9
"""The most seconds a row may report (about 32 years): sums and ratios of them stay finite."""

TEST_TOLERANCE = 1e-9
"""How far a row's ``test`` may be from the metric recomputed from its own predictions."""

MAX_INT = 2**63
"""Integers anywhere in a row are below this in magnitude (what every JSON reader can hold)."""

MAX_COUNTER = 2**40
"""Log counters (``round``, ``step``, ...) are below this: a TensorBoard step ``round * 10^6 + step`` fits in 64 bits."""

MAX_DEPTH = 32
"""The deepest nesting of lists and objects a row may hold."""

_LOG_COUNTERS = ("round", "meta_step", "step", "row", "reward_fold", "steps")
_LOG_WEIGHTS = ("probs_before", "probs_after")
_LOG_PER_TASK = ("rewards", "advantages", "realised")
_LOG_PER_TASK_OR_NULL = ("task_train_loss", "reward_se", "reward_se_probe", "reward_se_split")
_VERDICTS = ("helps", "unclear", "hurts")


NO_LABEL_METRICS = ("bits_per_byte",)
"""Metrics computed from probabilities, not predicted labels (the language-modelling regime): their rows keep no
per-example predictions (an empty ``"u8:"``), and ``test`` lies in ``[0, MAX_BITS_PER_BYTE]``."""

MAX_BITS_PER_BYTE = 64.0
"""The most bits per byte a row may report (a uniform byte model scores 8)."""


def _no_labels(predictions: Any) -> bool:
    """Whether a row's predictions are the empty form (a metric without labels), read without a context."""
    return predictions == "u8:"


def row_digest(row: dict[str, Any]) -> str:
    """sha256 of a results row without its digest field: canonical JSON (sorted keys, no spaces)."""
    body = {k: v for k, v in row.items() if k != ROW_DIGEST}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class RowContext:
    """What rows of one comparison are checked against: its tasks, and the target's metric and report split."""

    tasks: tuple[str, ...]
    """the run's task names"""
    metric: str
    """the target's metric (``accuracy`` or ``macro_f1``)"""
    labels: np.ndarray
    """the labels of the target's report split"""
    num_labels: int
    """the target's number of labels (predictions are below it)"""
    split: str = "test"
    """the report split's name, for messages"""
    reward_labels: Callable[[int, float | None], np.ndarray] | None = None
    """the labels of a seed's reward split (held out of every retrained model), to check ``extra.reward_split``: called
    with the seed and the row's :func:`held_out_fraction` (None: the comparison's)"""

    @classmethod
    def of(cls, tasks: Sequence[Task], target: str,
           reward_labels: Callable[[int, float | None], np.ndarray] | None = None) -> "RowContext":
        """The context of a comparison of ``tasks`` on ``target`` (``reward_labels``: (seed, held-out share or None) ->
        that reward split's labels)."""
        names = tuple(t.name for t in tasks)
        t = tasks[names.index(target)]
        return cls(names, t.metric, np.asarray(t.report_split.y), int(cast(int, t.num_labels)), t.report_split_name,
                   reward_labels)


def _show(v: Any) -> str:
    try:
        s = json.dumps(v)
    except (TypeError, ValueError):
        s = type(v).__name__
    return s if len(s) <= 40 else s[:37] + "..."


def _bad(where: str, field: str, v: Any, want: str) -> ConfigError:
    return ConfigError(f"{where}: {field!r} is {_show(v)}, expected {want}")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


REPLAYED_KINDS = ("baseline", "learned", "oracle", "adaptive-replay", "recommended", "peer")
"""Kinds of method whose rows retrain a schedule and keep its held-out evidence (the recommendation reads it)."""


def _held_out(extra: dict[str, Any], where: str, kind: str, seed: int, context: "RowContext | None") -> None:
    """The retrained model's reward-split metric and its predicted labels: present in every replayed row, consistent."""
    if kind in REPLAYED_KINDS:
        for key in ("reward_split", "reward_predictions"):
            if key not in extra:
                raise ConfigError(f"{where}: no 'extra.{key}'; a row of a {kind} method keeps its held-out evidence")
    lm = context is not None and context.metric in NO_LABEL_METRICS
    if extra.get(FRACTION) is not None:
        _number(extra[FRACTION], where, f"extra.{FRACTION}", 0, 1, "a number in (0, 1)", hi_open=True)
        if extra[FRACTION] == 0:
            raise _bad(where, f"extra.{FRACTION}", extra[FRACTION], "a number in (0, 1)")
    if "reward_split" in extra:
        hi = MAX_BITS_PER_BYTE if lm or (context is None and _no_labels(extra.get("reward_predictions"))) else 1
        _number(extra["reward_split"], where, "extra.reward_split", 0, hi, f"a number in [0, {hi:g}]")
    if "reward_predictions" not in extra:
        if "reward_losses" in extra:
            raise ConfigError(f"{where}: 'extra.reward_losses' without 'extra.reward_predictions'; edited or damaged")
        return
    try:
        pred = decode_labels(extra["reward_predictions"])
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{where}: 'extra.reward_predictions': {e}") from None
    if extra.get("reward_losses") is not None:  # each held-out row's loss: one per prediction (rows before 2026-12-06 have none)
        try:
            decode_losses(extra["reward_losses"], n=len(pred))
        except (ValueError, TypeError) as e:
            raise ConfigError(f"{where}: 'extra.reward_losses': {e}") from None
    if context is None:
        return
    if len(pred) and int(pred.max()) >= context.num_labels:
        raise ConfigError(f"{where}: 'extra.reward_predictions' holds label {int(pred.max())}, expected labels below "
                          f"{context.num_labels} (the target's labels)")
    if lm:  # no labels: bits per byte come from the model's probabilities
        if len(pred):
            raise ConfigError(f"{where}: 'extra.reward_predictions' holds {len(pred)} labels; a {context.metric} row holds none")
        return
    if context.reward_labels is None or "reward_split" not in extra:
        return
    y = context.reward_labels(seed, held_out_fraction({"extra": extra}))
    if len(pred) != len(y):
        raise ConfigError(f"{where}: 'extra.reward_predictions' holds {len(pred)} labels but seed {seed}'s reward split has "
                          f"{len(y)} rows; the data changed since these rows were written: use a new --out")
    value = metric_value(context.metric, y, pred, context.num_labels)
    if abs(value - float(extra["reward_split"])) > TEST_TOLERANCE:
        raise ConfigError(f"{where}: 'extra.reward_split' is {_show(extra['reward_split'])} but the row's own reward-split "
                          f"predictions score {value:.6g}; edited or damaged")


def _number(v: Any, where: str, field: str, lo: float, hi: float, want: str, integer: bool = False,
            hi_open: bool = False) -> Any:
    """``v`` if a finite number (an integer with ``integer``) in ``[lo, hi]`` (``[lo, hi)`` with ``hi_open``)."""
    ok = isinstance(v, int) and not isinstance(v, bool) if integer else _is_number(v)
    if ok and isinstance(v, float):
        ok = math.isfinite(v)
    if ok:  # compared as Python numbers: a huge integer is never converted to a float
        ok = lo <= v and (v < hi if hi_open else v <= hi)
    if not ok:
        raise _bad(where, field, v, want)
    return v


def _json_values(v: Any, where: str, field: str) -> None:
    """Every number in ``v`` finite and every integer below 2^63 in magnitude; nesting at most :data:`MAX_DEPTH`."""
    stack: list[tuple[Any, str, int]] = [(v, field, 0)]
    while stack:
        x, name, depth = stack.pop()
        if isinstance(x, bool) or x is None or isinstance(x, str):
            continue
        if isinstance(x, int):
            if not -MAX_INT < x < MAX_INT:
                raise _bad(where, name, x, "an integer below 2^63 in magnitude")
        elif isinstance(x, float):
            if not math.isfinite(x):
                raise _bad(where, name, x, "a finite number")
        elif isinstance(x, (list, dict)):
            if depth >= MAX_DEPTH:
                raise ConfigError(f"{where}: {name!r} is nested deeper than {MAX_DEPTH} levels")
            items = x.items() if isinstance(x, dict) else enumerate(x)
            stack.extend((y, f"{name}.{k}" if isinstance(x, dict) else f"{name}[{k}]", depth + 1) for k, y in items)
        else:  # not from JSON (a Python caller's row)
            raise ConfigError(f"{where}: {name!r} holds a {type(x).__name__}, expected JSON values")


def _list(v: Any, where: str, field: str, n: int | None, null: bool = False) -> list[Any]:
    """``v`` as a list of ``n`` finite numbers (or ``null`` with ``null``)."""
    what = "finite numbers or null" if null else "finite numbers"
    per = f"{n} {what} (one per task)" if n is not None else f"a list of {what}"
    if not isinstance(v, list) or (n is not None and len(v) != n):
        raise _bad(where, field, v, per)
    for i, x in enumerate(v):
        if not (x is None and null) and not (_is_number(x) and math.isfinite(x)):
            raise _bad(where, f"{field}[{i}]", x, "a finite number" + (" or null" if null else ""))
    return v


def _effects(v: Any, where: str, field: str, tasks: Sequence[str] | None) -> None:
    """``null``, or per-task effects ``{task: {effect, se, ci_low, ci_high, verdict}}`` (reports and plots read them)."""
    if v is None:
        return
    if not isinstance(v, dict):
        raise _bad(where, field, v, "null or an object of per-task effects")
    for name, e in v.items():
        f = f"{field}.{name}"
        if tasks is not None and name not in tasks:
            raise ConfigError(f"{where}: {f[:80]!r}: not a task of this run ({list(tasks)[:8]})")
        if not isinstance(e, dict):
            raise _bad(where, f, e, "an object with effect, se, ci_low, ci_high and verdict")
        for key in ("effect", "se", "ci_low", "ci_high"):
            if key not in e:
                raise ConfigError(f"{where}: {f!r} has no {key!r}; expected effect, se, ci_low, ci_high and verdict")
            _number(e[key], where, f"{f}.{key}", 0.0 if key == "se" else -math.inf, math.inf,
                    "a finite non-negative number" if key == "se" else "a finite number")
        if e.get("verdict") not in _VERDICTS:
            raise _bad(where, f"{f}.verdict", e.get("verdict"), f"one of {list(_VERDICTS)}")


def _schedule(v: Any, where: str, tasks: Sequence[str] | None) -> Schedule | None:
    if v is None:
        return None
    try:
        sched = Schedule.from_dict(v, f"{where}: 'schedule'")
    except ScheduleError as e:
        raise ConfigError(str(e)) from None
    if tasks is not None and sorted(sched.tasks) != sorted(tasks):
        raise ConfigError(f"{where}: 'schedule' names the tasks {list(sched.tasks)[:8]}, expected this run's tasks "
                          f"{list(tasks)[:8]}")
    prov = sched.provenance
    if "meta_steps" in prov:
        _number(prov["meta_steps"], where, "schedule.provenance.meta_steps", 1, 10**6, "an integer in [1, 10^6]",
                integer=True)
    _effects(prov.get("task_effects"), where, "schedule.provenance.task_effects", sched.tasks)
    return sched


def _log(v: Any, where: str, kind: str, n: int | None) -> None:
    if not isinstance(v, list):
        raise _bad(where, "log", v, "a list of meta-step objects")
    if v and kind in ("baseline", "oracle"):
        raise ConfigError(f"{where}: 'log' holds {len(v)} entries, expected none for a {kind} method")
    for i, e in enumerate(v):
        f = f"log[{i}]"
        if not isinstance(e, dict):
            raise _bad(where, f, e, "an object (one meta-step of the run)")
        for key in _LOG_COUNTERS:
            if key in e:
                _number(e[key], where, f"{f}.{key}", 0, MAX_COUNTER, "an integer in [0, 2^40)", integer=True, hi_open=True)
        for key in _LOG_WEIGHTS:
            if key in e:
                w = _list(e[key], where, f"{f}.{key}", n)
                n = len(w)
                for j, x in enumerate(w):
                    if x < 0:
                        raise _bad(where, f"{f}.{key}[{j}]", x, "a non-negative weight")
                if abs(math.fsum(w) - 1.0) > TOLERANCE:
                    raise ConfigError(f"{where}: '{f}.{key}' sums to {math.fsum(w):.9g}, expected 1 (within {TOLERANCE:g})")
        for key in _LOG_PER_TASK + _LOG_PER_TASK_OR_NULL:
            if key in e:
                n = len(_list(e[key], where, f"{f}.{key}", n, null=key in _LOG_PER_TASK_OR_NULL))
        if "reward_split_accuracy" in e:
            _number(e["reward_split_accuracy"], where, f"{f}.reward_split_accuracy", 0, 1, "a number in [0, 1]")


def check_row(row: Any, where: str, context: RowContext | None = None) -> dict[str, Any]:
    """``row`` if it is a results row as the writer produces it (see the module's docstring); else a :class:`ConfigError`.

    ``where`` (``file:line``) starts every message.  With ``context`` (the comparison the row belongs to) the
    schedule's tasks, the log's lengths, the predictions' count and labels and the agreement of ``test`` with
    the predictions are checked too.
    """
    if not isinstance(row, dict):
        raise ConfigError(f"{where}: not a results row (expected a JSON object with method, seed, test and seconds)")
    digest = row.get(ROW_DIGEST)
    if not isinstance(digest, str):
        raise ConfigError(f"{where}: no {ROW_DIGEST!r} checksum (written by an older taskmix, or edited); cannot trust it")
    try:
        ok = digest == row_digest(row)
    except (TypeError, ValueError, RecursionError):  # not JSON values (a Python caller's row), or nested too deeply
        ok = False
    if not ok:
        raise ConfigError(f"{where}: the row does not match its {ROW_DIGEST} checksum (edited or damaged)")
    for key in FIELDS:
        if key not in row:
            raise ConfigError(f"{where}: no {key!r}; expected a results row with the fields {', '.join(FIELDS)}")
    unknown = [k for k in row if k not in FIELDS]
    if unknown:
        raise ConfigError(f"{where}: unknown field {unknown[0][:40]!r}; a results row has {', '.join(FIELDS)}")
    method = row["method"]
    if not isinstance(method, str) or method not in METHODS:
        raise _bad(where, "method", method, "the name of a comparison method (compare.methods)")
    kind = METHODS.meta(method, "kind")
    if row["kind"] != kind:
        raise _bad(where, "kind", row["kind"], f"{kind!r}, the kind of method {method[:60]!r}")
    _number(row["seed"], where, "seed", 0, SEED_LIMIT, "an integer in [0, 2^32)", integer=True, hi_open=True)
    metric = context.metric if context is not None else "accuracy or macro-F1"
    no_labels = context.metric in NO_LABEL_METRICS if context is not None else _no_labels(row.get("predictions"))
    top = MAX_BITS_PER_BYTE if no_labels else 1
    test = _number(row["test"], where, "test", 0, top, f"a number in [0, {top:g}] ({metric})")
    _number(row["seconds"], where, "seconds", 0, MAX_SECONDS, "a finite non-negative number of at most 1e9")
    for key in ("train_steps", "evaluations"):
        _number(row[key], where, key, 0, MAX_INT, "an integer in [0, 2^63)", integer=True, hi_open=True)
    tasks = context.tasks if context is not None else None
    sched = _schedule(row["schedule"], where, tasks)
    _log(row["log"], where, kind, len(tasks) if tasks is not None else sched.n_tasks if sched is not None else None)
    if not isinstance(row["extra"], dict):
        raise _bad(where, "extra", row["extra"], "an object")
    _effects(row["extra"].get("task_effects"), where, "extra.task_effects", tasks)
    _held_out(row["extra"], where, kind, int(row["seed"]), context)
    for key in ("schedule", "log", "extra"):
        _json_values(row[key], where, key)
    try:
        pred = decode_labels(row["predictions"])
    except ValueError as e:
        raise ConfigError(f"{where}: 'predictions': {e}") from None
    if context is not None and no_labels:
        if len(pred):
            raise ConfigError(f"{where}: 'predictions' holds {len(pred)} labels; a {context.metric} row holds none")
    elif context is not None:
        n = len(context.labels)
        if len(pred) != n:
            raise ConfigError(
                f"{where}: 'predictions' holds {len(pred)} labels but the target's report split has {n} rows; "
                "the data changed since these rows were written: use a new --out")
        if len(pred) and int(pred.max()) >= context.num_labels:
            raise ConfigError(f"{where}: 'predictions' holds label {int(pred.max())}, expected labels below "
                              f"{context.num_labels} (the target's labels)")
        score = metric_value(context.metric, context.labels, pred, context.num_labels)
        if abs(test - score) > TEST_TOLERANCE:
            raise ConfigError(f"{where}: 'test' is {_show(test)} but the row's predictions score {score:.6g} "
                              f"({context.metric} on the {context.split} split); expected the metric of its own predictions")
    return row


def read_rows(path: str | Path, context: RowContext | None = None) -> list[dict[str, Any]]:
    """The rows of a ``rows.jsonl``, each checked by :func:`check_row`; duplicates dropped.

    A row seen twice for one (method, seed) with different content is refused (a confirmation's row with its own
    share of held-out rows, :func:`held_out_fraction`, is another key);
    any bad row is a :class:`ConfigError` naming the file and line.  The file
    must be a regular file (a symbolic link is refused) and is never unpickled.
    """
    path = Path(path)
    try:
        data = read_input_bytes(path, "results rows file", MAX_DATA_INPUT_BYTES, ConfigError, follow_symlinks=False)
    except OSError as e:
        raise ConfigError(f"{path}: cannot be read ({e.strerror or e})") from None
    rows: list[dict[str, Any]] = []
    seen: dict[tuple[str, int, float | None], tuple[int, str]] = {}
    for i, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        where = f"{path}:{i}"
        try:
            row = json.loads(raw.decode("utf-8"), object_pairs_hook=unique_keys)
        except (ValueError, RecursionError):  # bad JSON, not UTF-8 (a pickle), a duplicate key, a 5000-digit number
            raise ConfigError(f"{where}: not a results row (expected JSON with method, seed, test and seconds)") from None
        row = check_row(row, where, context)
        key = (row["method"], row["seed"], held_out_fraction(row))
        if key in seen:
            line, digest = seen[key]
            if digest != row[ROW_DIGEST]:
                raise ConfigError(f"{where}: a second, different row for method {key[0][:60]!r} seed {key[1]} (first at line {line})")
            continue
        seen[key] = (i, row[ROW_DIGEST])
        rows.append(row)
    return rows
