"""Text tasks: GLUE / XNLI presets and plain JSONL, JSON, CSV, TSV or Parquet files.

A text task is read through Hugging Face ``datasets`` and becomes a
:class:`taskmix.data.tasks.Task` whose splits hold either

* float32 features from a frozen :class:`taskmix.encoders.SentenceEncoder`
  (``encoder`` given: the frozen regime), or
* the raw ``(text_a, text_b_or_None)`` pairs (``encoder=None``: the fine-tuning
  regime, where :class:`taskmix.encoders.TransformerTrunk` reads the text).

Where the data comes from, per split role (``train``, ``validation``, ``test``):

1. an explicit path in the task spec (``tasks.rte.train: my/train.csv``),
   relative to the config file;
2. else, for a preset with a config ``data_dir``, the file
   ``<data_dir>/<preset>/<stem>.<ext>`` -- the stem is the role (``train``,
   ``validation``, ``test``; MNLI's validation is ``validation_matched``),
   overridable with ``splits`` (``splits: {train: train_9k}``), the extension
   the first of ``.jsonl .json .parquet .csv .tsv`` that exists (or the one of
   ``format``);
3. else, for a preset when the spec names no file at all and there is no
   ``data_dir``, the Hugging Face hub copy:
   ``datasets.load_dataset("nyu-mll/glue", "rte", split=...)`` or
   ``load_dataset("facebook/xnli", "sw", split=...)``.

Which splits are loaded: ``train`` always; every role with an explicit path or
an entry in ``splits``; and, for the *target* task of a preset, its evaluation
splits -- ``validation`` for GLUE (the test labels are not public) and
``validation`` + ``test`` for XNLI (reported on test).  Auxiliary tasks load
only their training data, so no sentence is encoded that training never uses.
Two roles of one task may not read the same file or hub split (that would
train on the reported data).

Columns: ``columns: {text_a: ..., text_b: ..., label: ...}``; presets know the
hub copies' columns, other files default to ``text`` and ``label`` (and no
``text_b``).  Labels: ``labels`` is a list of names (name -> position) or a
mapping name -> integer; presets know their label names.  Integer labels (or
strings of digits) are used as they are; names go through the mapping.

A role mapped to ``null`` in ``splits`` is not loaded: XNLI Hindi and Thai have
no translate-train, so their target trains on XNLI validation and leaves the
validation role out (``splits: {train: validation, validation: null}``), reported
on test.

``max_train: N`` keeps N training rows chosen by a shuffle with a fixed seed
(the same rows for every run seed, kept in file order).

Every problem in the data is a one-line :class:`taskmix.errors.DataError` that
names the file and line (JSONL, CSV, TSV), or row (JSON arrays, Parquet, the
hub), the column, and what was expected.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, DataError
from .presets import PRESETS, ROLES, XNLI_LANGS, LabelMap, Preset, get_preset
from .readers import (
    EXTENSIONS,
    FORMAT_EXTENSIONS,
    MAX_TEXT_CHARS,
    SEARCH_ORDER,
    TEXT_FORMATS,
    RawTable,
    field_too_long,
    load_hub,
    read_text_file,
)
from .tasks import Split, Task

if TYPE_CHECKING:  # pragma: no cover
    from ..config import Config, TaskSpec
    from ..encoders import SentenceEncoder

__all__ = [
    "MAX_TRAIN_SEED",
    "PRESETS",
    "ROLES",
    "TEXT_FORMATS",
    "XNLI_LANGS",
    "LabelMap",
    "Pair",
    "Preset",
    "RawTable",
    "get_preset",
    "is_text_spec",
    "load_text_task",
    "load_text_tasks",
    "max_train_indices",
    "read_text_file",
    "text_task_sources",
]

Pair = tuple[str, str | None]
"""One example's text: ``(text_a, text_b)``; ``text_b`` is ``None`` for single-sentence tasks."""

MAX_TRAIN_SEED = 0
"""Seed of the ``max_train`` subsample (fixed: the same rows for every run seed)."""

_DEFAULT_COLUMNS = {"text_a": "text", "label": "label"}
_COLUMN_ROLES = ("text_a", "text_b", "label")


# ------------------------------------------------------------------ sources


@dataclass(frozen=True)
class _Source:
    """Where one split role comes from: a local file, or a hub split."""

    path: Path | None = None
    fmt: str = "auto"
    hub: tuple[str, str, str] | None = None  # (path, config, split)

    def describe(self) -> str:
        if self.path is not None:
            return str(self.path)
        assert self.hub is not None
        return f"hf://{self.hub[0]}/{self.hub[1]}/{self.hub[2]}"

    def read(self, columns: Sequence[str]) -> RawTable:
        if self.path is not None:
            return read_text_file(self.path, self.fmt, columns)
        assert self.hub is not None
        return load_hub(*self.hub, columns)


def is_text_spec(spec: "TaskSpec") -> bool:
    """Whether a task spec describes a text task (a preset, a text format, or a text file extension)."""
    if spec.preset is not None or spec.format in TEXT_FORMATS:
        return True
    if spec.format == "npz":
        return False
    paths = [p for p in (spec.train, spec.validation, spec.test) if p]
    return any(Path(p).suffix.lower() in EXTENSIONS for p in paths)


def _roles(name: str, spec: "TaskSpec", preset: Preset | None, is_target: bool) -> list[str]:
    wanted = {"train"}
    wanted |= {r for r in ROLES if getattr(spec, r)}
    if spec.splits:
        unknown = sorted(set(spec.splits) - set(ROLES))
        if unknown:
            raise ConfigError(f"tasks.{name}.splits: unknown role(s) {unknown}; expected {', '.join(ROLES)}")
        if "train" in spec.splits and spec.splits["train"] is None:
            raise ConfigError(f"tasks.{name}.splits.train: null; every task needs training data")
        wanted |= {r for r, stem in spec.splits.items() if stem is not None}
    if is_target and preset is not None:
        wanted |= set(preset.eval_roles)
    skipped = {r for r, stem in (spec.splits or {}).items() if stem is None}
    return [r for r in ROLES if r in wanted and r not in skipped]


def _find_local(directory: Path, stem: str, fmt: str) -> Path | None:
    exts = FORMAT_EXTENSIONS[fmt] if fmt != "auto" else SEARCH_ORDER
    for ext in exts:
        p = directory / f"{stem}{ext}"
        if p.is_file():
            return p
    return None


def _sources(name: str, spec: "TaskSpec", preset: Preset | None, cfg: "Config", roles: list[str]) -> dict[str, _Source]:
    if spec.format == "npz":
        raise ConfigError(f"tasks.{name}.format: 'npz' is a feature format; a text task needs {'|'.join(TEXT_FORMATS)} or auto")
    explicit = {r: getattr(spec, r) for r in ROLES if getattr(spec, r)}
    data_dir = Path(os.path.abspath(cfg.resolve(cfg.data_dir))) if cfg.data_dir else None
    if preset is None and "train" not in explicit:
        raise ConfigError(f"tasks.{name}: no train file; give train: PATH (jsonl/json/csv/tsv/parquet) or a preset")
    use_hub = preset is not None and data_dir is None and not explicit
    out: dict[str, _Source] = {}
    for role in roles:
        if role in explicit:
            out[role] = _Source(path=Path(os.path.abspath(cfg.resolve(explicit[role]))), fmt=spec.format)
            continue
        if preset is None:
            raise ConfigError(f"tasks.{name}.splits.{role}: needs a preset or an explicit tasks.{name}.{role}: PATH")
        stem = (spec.splits or {}).get(role) or preset.splits[role]
        if use_hub:
            out[role] = _Source(hub=(preset.hub_path, preset.hub_config, stem))
        elif data_dir is not None:
            directory = data_dir / preset.name
            found = _find_local(directory, stem, spec.format)
            if found is None:
                exts = FORMAT_EXTENSIONS[spec.format] if spec.format != "auto" else SEARCH_ORDER
                looked = ", ".join(f"{stem}{e}" for e in exts)
                raise DataError(
                    f"{directory}: no {role} file for tasks.{name} (looked for {looked}); "
                    f"set tasks.{name}.splits.{role} to the file stem or give tasks.{name}.{role}: PATH"
                )
            out[role] = _Source(path=found, fmt=spec.format)
        else:
            raise ConfigError(
                f"tasks.{name}: no {role} file; give tasks.{name}.{role}: PATH or set data_dir "
                "(the hub is used only when a preset task names no files and there is no data_dir)"
            )
    seen: dict[str, str] = {}
    for role, src in out.items():
        key = src.describe()
        if key in seen:
            raise DataError(
                f"tasks.{name}: {seen[key]} and {role} both read {key}; each split must come from its own file "
                f"(tasks.{name}.splits.{role}: null leaves {role} out)"
            )
        seen[key] = role
    return out


def _columns(name: str, spec: "TaskSpec", preset: Preset | None) -> dict[str, str]:
    cols = dict(preset.columns) if preset is not None else dict(_DEFAULT_COLUMNS)
    if spec.columns:
        unknown = sorted(set(spec.columns) - set(_COLUMN_ROLES))
        if unknown:
            raise ConfigError(f"tasks.{name}.columns: unknown key(s) {unknown}; expected {', '.join(_COLUMN_ROLES)}")
        cols.update(spec.columns)
    return cols


def _extract(table: RawTable, cols: Mapping[str, str], labels: LabelMap) -> tuple[list[Pair], np.ndarray]:
    """Text pairs and label indices of every row; :class:`DataError` on a bad cell.

    A text (or label) of more than :data:`~taskmix.data.readers.MAX_TEXT_CHARS`
    characters is refused here, before anything is tokenized.
    """
    ca, cb, cl = cols["text_a"], cols.get("text_b"), cols["label"]
    a_vals, l_vals = table.columns[ca], table.columns[cl]
    b_vals = table.columns[cb] if cb is not None else None
    pairs: list[Pair] = []
    y = np.empty(len(table), dtype=np.int64)
    for i in range(len(table)):
        a = a_vals[i]
        if not isinstance(a, str):
            raise DataError(f"{table.where(i)}: column {ca!r} is {_describe_cell(a)}; expected text")
        if len(a) > MAX_TEXT_CHARS:
            raise field_too_long(table.where(i), ca, len(a))
        b = None
        if b_vals is not None:
            b = b_vals[i]
            if not isinstance(b, str):
                raise DataError(f"{table.where(i)}: column {cb!r} is {_describe_cell(b)}; expected text")
            if len(b) > MAX_TEXT_CHARS:
                raise field_too_long(table.where(i), str(cb), len(b))
        if isinstance(l_vals[i], str) and len(l_vals[i]) > MAX_TEXT_CHARS:
            raise field_too_long(table.where(i), cl, len(l_vals[i]))
        pairs.append((a, b))
        y[i] = labels.encode(l_vals[i], table.where(i), cl)
    return pairs, y


def _describe_cell(v: Any) -> str:
    if v is None:
        return "null or missing"
    shown = repr(v)
    return f"{shown if len(shown) <= 40 else shown[:37] + '...'} (a {type(v).__name__})"


def max_train_indices(n: int, k: int) -> np.ndarray:
    """The rows ``max_train: k`` keeps of ``n``: the first ``k`` after a shuffle with
    :data:`MAX_TRAIN_SEED`, returned sorted (file order).  Deterministic and
    independent of the run seed; unlike "the first k rows" it does not inherit
    the file's order (the MNLI-9k file, for one, is sorted by label)."""
    rng = np.random.default_rng([MAX_TRAIN_SEED, 0x7E47])
    return np.sort(rng.permutation(n)[:k])


# ------------------------------------------------------------------ tasks


def text_task_sources(name: str, spec: "TaskSpec", cfg: "Config") -> dict[str, str]:
    """Which file (or hub split) each split of a text task would read, checked but not read.

    Raises the errors :func:`load_text_task` would for an unknown preset or role,
    a missing file, or two roles reading one file; reads and encodes nothing.
    """
    preset = get_preset(spec.preset) if spec.preset else None
    roles = _roles(name, spec, preset, is_target=(name == cfg.target))
    return {r: s.describe() for r, s in _sources(name, spec, preset, cfg, roles).items()}


def load_text_task(
    name: str,
    spec: "TaskSpec",
    cfg: "Config",
    encoder: "SentenceEncoder | None" = None,
) -> Task:
    """Read one text task (see the module docstring for where data comes from).

    Args:
        name: the task's name in the config (``cfg.target`` decides whether the
            preset's evaluation splits are loaded).
        spec: its entry under ``tasks``.
        cfg: the config (``data_dir``, ``target``, and paths resolved with
            :meth:`Config.resolve`).
        encoder: a frozen sentence encoder: splits hold its float32 features;
            ``None``: splits hold ``(text_a, text_b_or_None)`` pairs.

    Returns:
        A :class:`Task`; its ``meta`` records where each split came from,
        row counts, the columns, and the encoder identity.
    """
    preset = get_preset(spec.preset) if spec.preset else None
    roles = _roles(name, spec, preset, is_target=(name == cfg.target))
    sources = _sources(name, spec, preset, cfg, roles)
    cols = _columns(name, spec, preset)
    labels = LabelMap.from_spec(spec.labels, preset, f"tasks.{name}")
    needed = list(dict.fromkeys(cols[r] for r in _COLUMN_ROLES if r in cols))

    data: dict[str, tuple[list[Pair], np.ndarray]] = {}
    rows: dict[str, int] = {}
    tables = {role: src.read(needed) for role, src in sorted(sources.items(), key=lambda kv: kv[0] != "train")}
    if "train" in tables:  # label names without a labels: list are numbered in sorted order
        labels = labels.inferred(tables["train"].columns[cols["label"]], f"{tables['train'].where(0)} (tasks.{name})")
    for role in sources:
        pairs, y = _extract(tables[role], cols, labels)
        rows[role] = len(y)
        if role == "train" and spec.max_train is not None and len(y) > spec.max_train:
            idx = max_train_indices(len(y), spec.max_train)
            pairs, y = [pairs[int(i)] for i in idx], y[idx]
        data[role] = (pairs, y)

    meta: dict[str, Any] = {
        "preset": preset.name if preset else None,
        "sources": {r: s.describe() for r, s in sources.items()},
        "rows": rows,
        "columns": cols,
        "max_train": spec.max_train,
    }
    splits: dict[str, Split] = {}
    if encoder is not None:
        all_pairs = [p for pairs, _ in data.values() for p in pairs]
        feats = encoder.features(all_pairs)
        start = 0
        for role, (pairs, y) in data.items():
            splits[role] = Split(feats[start : start + len(pairs)], y)
            start += len(pairs)
        meta["encoder"] = encoder.identity
        meta["pair"] = encoder.pair
    else:
        for role, (pairs, y) in data.items():
            splits[role] = Split(pairs, y)
    return Task(
        name,
        train=splits["train"],
        validation=splits.get("validation"),
        test=splits.get("test"),
        num_labels=labels.num_labels,
        label_names=labels.names,
        metric=spec.metric,
        meta=meta,
    )


def load_text_tasks(cfg: "Config", encoder: "SentenceEncoder | None" = None) -> dict[str, Task]:
    """Every text task of ``cfg``, in config order.

    In the frozen regime (``cfg.model.regime == "frozen"``) one
    :class:`~taskmix.encoders.SentenceEncoder` is built from ``cfg.encoder``
    when ``encoder`` is not given, so all tasks share one feature space; in the
    fine-tuning regime the tasks keep their text.
    """
    specs = {n: s for n, s in cfg.tasks.items() if is_text_spec(s)}
    if encoder is None and cfg.model.regime == "frozen" and specs:
        from ..encoders import SentenceEncoder

        encoder = SentenceEncoder.from_config(cfg)
    return {n: load_text_task(n, s, cfg, encoder) for n, s in specs.items()}


