"""Text corpora for the language-modelling regime (``model.regime: lm``; docs/lm.md).

Each task is a corpus: a ``.txt`` file (one sentence or document a line), a ``.jsonl`` file (a ``text``
field a line) or a preset ``lm/<lang>[/<source>]`` built from the XNLI/MNLI files under ``data_dir``
(:data:`taskmix.data.presets.LM_SOURCES`: each row's premise and hypothesis are two sentences).

Clean splits, in this order:

1. sentences are stripped, their whitespace collapsed, and exact duplicates dropped (first kept);
2. the target's **test** text is its XNLI test split where the language has one (``lm/en``, ``ur``, ``sw``,
   ``th``, ``hi``), else ``lm.test_sentences`` rows held out of its training source; its **validation** text is
   ``lm.validation_sentences`` rows held out of the training source.  Rows, not sentences, are held out, so a
   premise never trains while its hypothesis is tested;
3. *parallel rows*: rows of one family (:data:`~taskmix.data.presets.LM_FAMILIES`) are translations of each
   other.  An auxiliary whose source is the family of the target's XNLI test split is refused (all its rows
   translate the test text); from every other training corpus the rows parallel to the target's held-out rows
   are dropped (``meta["parallel_dropped"]``);
4. every training sentence equal to a sentence of the target's validation or test text is dropped, and the
   validation text loses the sentences of the test text;
5. ``max_train`` keeps that many training sentences (seeded), e.g. a low-resource target.

A split becomes one byte stream (its sentences, shuffled once by a fixed seed, joined by newlines, UTF-8) cut
into windows of ``lm.context + 1`` bytes that overlap by one byte, so every byte after the first is predicted
exactly once (a tail shorter than a window is dropped).  The windows are the task's examples: a task's size,
for the proportional and temperature rules, is its number of windows (bytes / context).  Labels are all 0.

>>> win = byte_windows(["ab", "cd"], context=2)
>>> win.tolist()  # b"ab\\ncd": windows of 3 bytes, stride 2
[[97, 98, 10], [10, 99, 100]]
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..errors import ConfigError, DataError
from .presets import LM_FAMILIES, LM_SOURCES, LM_XNLI_EVAL
from .readers import DataFileError, _check_file, _read_lines
from .tasks import Split, Task

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["DATA_SEED", "Corpus", "byte_windows", "load_corpus_tasks", "read_corpus"]

DATA_SEED = 0x1A6
"""The fixed seed of every held-out draw, subsample and shuffle of the corpora (the data do not change with the run seed)."""

_SPACE = re.compile(r"\s+")


@dataclass
class Corpus:
    """Sentences, each with the key of its row (``(family, row)``; ``None`` for files without parallel rows)."""

    name: str
    source: str
    family: str | None
    sentences: list[str]
    keys: list[tuple[str, int] | None]
    meta: dict[str, Any] = field(default_factory=dict)

    def keep(self, mask: Sequence[bool]) -> "Corpus":
        """The sentences where ``mask`` is true."""
        return Corpus(self.name, self.source, self.family, [s for s, m in zip(self.sentences, mask) if m],
                      [k for k, m in zip(self.keys, mask) if m], dict(self.meta))


def _clean(text: Any) -> str:
    return _SPACE.sub(" ", text).strip() if isinstance(text, str) else ""


def _dedup(sentences: list[str], keys: list[Any]) -> tuple[list[str], list[Any]]:
    seen: set[str] = set()
    out_s, out_k = [], []
    for s, k in zip(sentences, keys):
        if s and s not in seen:
            seen.add(s)
            out_s.append(s)
            out_k.append(k)
    return out_s, out_k


def read_corpus(name: str, path: Path, fmt: str = "auto", family: str | None = None, fields: Sequence[str] = ("text",)) -> Corpus:
    """The deduplicated sentences of a ``.txt`` (a line each) or ``.jsonl`` file (the ``fields`` of each object).

    With ``family`` every sentence gets the key ``(family, row)`` (row: the 0-based object or line number).
    """
    _check_file(path)
    kind = fmt if fmt != "auto" else ("jsonl" if path.suffix.lower() == ".jsonl" else "txt" if path.suffix.lower() == ".txt" else "")
    if kind not in ("jsonl", "txt"):
        raise DataError(f"{path}: a corpus is a .txt file (a sentence a line) or a .jsonl file (a 'text' field a line)")
    sentences: list[str] = []
    keys: list[tuple[str, int] | None] = []
    row = 0
    for lineno, line in _read_lines(path):
        if not line.strip():
            continue
        if kind == "txt":
            texts = [line]
        else:
            try:
                obj = json.loads(line)
            except ValueError:
                raise DataError(f"{path}:{lineno}: not JSON; expected one object with a {fields[0]!r} field per line") from None
            if not isinstance(obj, dict) or not all(isinstance(obj.get(f), str) for f in fields):
                raise DataError(f"{path}:{lineno}: expected a JSON object with the string field(s) {list(fields)}")
            texts = [obj[f] for f in fields]
        for t in texts:
            sentences.append(_clean(t))
            keys.append((family, row) if family is not None else None)
        row += 1
    sentences, keys = _dedup(sentences, keys)
    if not sentences:
        raise DataFileError(f"{path}: no text (every line empty)")
    return Corpus(name, str(path), family, sentences, keys)


def byte_windows(sentences: Sequence[str], context: int) -> np.ndarray:
    """The sentences joined by newlines as UTF-8 bytes, cut into windows of ``context + 1`` bytes with stride
    ``context`` (int64, one row per window; the tail shorter than a window is dropped)."""
    data = np.frombuffer("\n".join(sentences).encode("utf-8"), dtype=np.uint8)
    n = (len(data) - 1) // context
    if n <= 0:
        return np.zeros((0, context + 1), dtype=np.int64)
    idx = np.arange(n)[:, None] * context + np.arange(context + 1)[None, :]
    return data[idx].astype(np.int64)


def _preset(name: str, corpus: str, cfg: "Config") -> tuple[str, str, Path, Path | None]:
    """``(lang, source, train file, XNLI test file or None)`` of ``lm/<lang>[/<source>]``."""
    parts = corpus.split("/")
    lang = parts[1] if len(parts) in (2, 3) else ""
    if parts[0] != "lm" or lang not in LM_SOURCES:
        raise ConfigError(f"tasks.{name}.corpus: unknown preset {corpus!r}; expected lm/<lang> with lang in "
                          f"{', '.join(sorted(LM_SOURCES))}, or a .txt/.jsonl file")
    sources = LM_SOURCES[lang]
    source = parts[2] if len(parts) == 3 else next(iter(sources))
    if source not in sources:
        raise ConfigError(f"tasks.{name}.corpus: lm/{lang} has the sources {', '.join(sources)}, not {source!r}")
    if not cfg.data_dir:
        raise ConfigError(f"tasks.{name}.corpus: the preset {corpus} reads <data_dir>/{sources[source]}.jsonl; set data_dir")
    root = cfg.resolve(cfg.data_dir)
    test = root / f"{LM_SOURCES[lang]['test']}.jsonl" if lang in LM_XNLI_EVAL else None
    return lang, source, root / f"{sources[source]}.jsonl", test


def _load(name: str, spec: Any, cfg: "Config") -> tuple[Corpus, Path | None]:
    corpus = spec.corpus
    if corpus.startswith("lm/"):
        lang, source, path, test = _preset(name, corpus, cfg)
        c = read_corpus(name, path, "jsonl", LM_FAMILIES[source], ("premise", "hypothesis"))
        c.meta.update({"corpus": corpus, "lang": lang, "source": source})
        return c, test
    c = read_corpus(name, cfg.resolve(corpus), spec.format if spec.format in ("jsonl",) else "auto")
    c.meta["corpus"] = corpus
    return c, None


def _subsample(c: Corpus, n: int | None, rng: np.random.Generator) -> Corpus:
    if n is None or n >= len(c.sentences):
        return c
    keep = np.zeros(len(c.sentences), dtype=bool)
    keep[rng.choice(len(c.sentences), size=n, replace=False)] = True
    return c.keep(keep.tolist())


def _hold_out_rows(c: Corpus, n_sentences: int, rng: np.random.Generator) -> tuple[Corpus, Corpus]:
    """``(rest, held)``: whole rows (all sentences of a key; a sentence alone without keys) of about
    ``n_sentences`` sentences, drawn at random, and the rest."""
    groups: dict[Any, list[int]] = {}
    for i, k in enumerate(c.keys):
        groups.setdefault(k if k is not None else ("", i), []).append(i)
    order = list(groups.values())
    perm = rng.permutation(len(order))
    held = np.zeros(len(c.sentences), dtype=bool)
    taken = 0
    for j in perm:
        if taken >= n_sentences:
            break
        held[order[j]] = True
        taken += len(order[j])
    if held.all() or not held.any():
        raise DataError(f"tasks.{c.name}: {len(c.sentences)} sentences cannot give {n_sentences} held-out sentences "
                        "and training text; lower model.lm.validation_sentences / test_sentences or give more text")
    return c.keep((~held).tolist()), c.keep(held.tolist())


def _task(c: Corpus, train: list[str], context: int, validation: list[str] | None = None,
          test: list[str] | None = None) -> Task:
    rng = np.random.default_rng([DATA_SEED, 1])
    order = rng.permutation(len(train))
    splits: dict[str, Split | None] = {}
    for role, text in (("train", [train[i] for i in order]), ("validation", validation), ("test", test)):
        if text is None:
            splits[role] = None
            continue
        w = byte_windows(text, context)
        if len(w) == 0:
            raise DataError(f"tasks.{c.name}: its {role} text ({sum(len(s) for s in text)} characters) is shorter than "
                            f"one window of {context + 1} bytes (model.lm.context + 1)")
        splits[role] = Split(w, np.zeros(len(w), dtype=np.int64))
    meta = {**c.meta, "sentences": len(train), "bytes": int(sum(len(s.encode("utf-8")) + 1 for s in train)),
            "windows": len(splits["train"]) if splits["train"] is not None else 0}
    return Task(c.name, splits["train"], splits["validation"], splits["test"], num_labels=2,  # type: ignore[arg-type]
                metric="bits_per_byte", meta=meta)


def load_corpus_tasks(cfg: "Config") -> list[Task]:
    """The corpora of a ``model.regime: lm`` config as tasks of byte windows, with clean splits (module docstring)."""
    lm = cfg.model.lm
    if lm is None:
        raise ConfigError("model.lm: the language-modelling regime needs its model section")
    rng = np.random.default_rng([DATA_SEED, 0])
    loaded = {name: _load(name, spec, cfg) for name, spec in cfg.tasks.items()}
    target, test_file = loaded[cfg.target]
    # the target's test text: its XNLI test split, else rows held out of its training source
    if test_file is not None:
        test_c = read_corpus(cfg.target, test_file, "jsonl", LM_FAMILIES["test"], ("premise", "hypothesis"))
        reserved_family: str | None = LM_FAMILIES["test"]  # every row of that family translates test text
        test_c = _subsample(test_c, lm.test_sentences, rng)
    else:
        target, test_c = _hold_out_rows(target, lm.test_sentences, rng)
        reserved_family = None
    target, val_c = _hold_out_rows(target, lm.validation_sentences, rng)
    held_keys = {k for k in test_c.keys + val_c.keys if k is not None}
    held_text = set(test_c.sentences) | set(val_c.sentences)
    test_set = set(test_c.sentences)
    val_sentences = [s for s in val_c.sentences if s not in test_set]
    tasks: list[Task] = []
    for name, spec in cfg.tasks.items():
        c = target if name == cfg.target else loaded[name][0]
        if name != cfg.target and reserved_family is not None and c.family == reserved_family:
            raise DataError(
                f"tasks.{name}.corpus: {c.meta.get('corpus')} is XNLI test text, row-parallel to the target's test text "
                f"({test_file}): its rows are translations of the reported sentences, so it cannot train an auxiliary; "
                f"use lm/<lang> (its training source) or lm/<lang>/validation")
        parallel = [k is not None and (k in held_keys or k[0] == reserved_family) for k in c.keys]
        same = [s in held_text for s in c.sentences]
        c = c.keep([not (p or q) for p, q in zip(parallel, same)])
        c.meta.update({"parallel_dropped": int(sum(parallel)), "duplicates_of_held_out_dropped": int(sum(
            q and not p for p, q in zip(parallel, same)))})
        if not c.sentences:
            raise DataError(f"tasks.{name}.corpus: no training text is left once the sentences parallel to or equal to "
                            f"the target's held-out text are dropped")
        c = _subsample(c, spec.max_train, rng)
        if name == cfg.target:
            tasks.append(_task(c, c.sentences, lm.context, val_sentences, test_c.sentences))
        else:
            tasks.append(_task(c, c.sentences, lm.context))
    return tasks
