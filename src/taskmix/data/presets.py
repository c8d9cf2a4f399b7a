"""Text presets (GLUE, XNLI: columns, labels, splits) and label maps (label names or ids to integers)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, DataError
from .npz import MAX_LABEL

__all__ = ["PRESETS", "ROLES", "XNLI_LANGS", "LabelMap", "Preset", "get_preset"]

ROLES = ("train", "validation", "test")



@dataclass(frozen=True)
class Preset:
    """A known dataset: its hub copy, columns, labels and splits.

    ``splits`` maps a role to the hub split name, which is also the stem of the
    local file under ``<data_dir>/<name>/``.  ``eval_roles`` are the splits a
    *target* task loads besides ``train``.
    """

    name: str
    hub_path: str
    hub_config: str
    text_a: str
    text_b: str | None
    label_names: tuple[str, ...]
    eval_roles: tuple[str, ...]
    splits: Mapping[str, str] = field(default_factory=lambda: {r: r for r in ROLES})

    @property
    def num_labels(self) -> int:
        """Number of labels."""
        return len(self.label_names)

    @property
    def columns(self) -> dict[str, str]:
        """Column names by role (``text_a``, ``text_b``, ``label``)."""
        cols = {"text_a": self.text_a, "label": "label"}
        if self.text_b is not None:
            cols["text_b"] = self.text_b
        return cols


def _glue(config: str, text_a: str, text_b: str | None, labels: tuple[str, ...], **splits: str) -> Preset:
    return Preset(
        name=f"glue/{config}",
        hub_path="nyu-mll/glue",
        hub_config=config,
        text_a=text_a,
        text_b=text_b,
        label_names=labels,
        eval_roles=("validation",),
        splits={**{r: r for r in ROLES}, **splits},
    )


_NLI3 = ("entailment", "neutral", "contradiction")
_NLI2 = ("entailment", "not_entailment")

XNLI_LANGS = ("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh")

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        _glue("rte", "sentence1", "sentence2", _NLI2),
        _glue("mrpc", "sentence1", "sentence2", ("not_equivalent", "equivalent")),
        _glue("qnli", "question", "sentence", _NLI2),
        _glue("mnli", "premise", "hypothesis", _NLI3, validation="validation_matched", test="test_matched"),
        _glue("cola", "sentence", None, ("unacceptable", "acceptable")),
        _glue("sst2", "sentence", None, ("negative", "positive")),
        _glue("qqp", "question1", "question2", ("not_duplicate", "duplicate")),
        _glue("wnli", "sentence1", "sentence2", ("not_entailment", "entailment")),
        *(
            Preset(
                name=f"xnli/{lang}",
                hub_path="facebook/xnli",
                hub_config=lang,
                text_a="premise",
                text_b="hypothesis",
                label_names=_NLI3,
                eval_roles=("validation", "test"),
            )
            for lang in XNLI_LANGS
        ),
    )
}


def get_preset(name: str) -> Preset:
    """The preset called ``name`` (``glue/rte``, ``xnli/sw``, ...); :class:`ConfigError` if unknown."""
    try:
        return PRESETS[name]
    except KeyError:
        glue = sorted(p for p in PRESETS if p.startswith("glue/"))
        raise ConfigError(
            f"unknown preset {name!r}; expected one of {', '.join(glue)} or xnli/<lang> with lang in {', '.join(XNLI_LANGS)}"
        ) from None


# ------------------------------------------------------------------ labels


@dataclass(frozen=True)
class LabelMap:
    """How label values in a file become class indices.

    ``to_index`` maps label names to indices (from ``labels`` in the spec or
    the preset); integers, and strings of digits, are used as indices
    directly.  ``num_labels`` is ``None`` when nothing fixes it (it is then
    inferred from the data by :class:`Task`).
    """

    to_index: Mapping[str, int] | None
    names: tuple[str, ...] | None
    num_labels: int | None
    inferred_from: str | None = None
    """where the names were found (:meth:`inferred`); only those names are labels then, and messages name
    that file rather than list its values (it may lie outside the config's folder, whose content is withheld)"""

    @classmethod
    def from_spec(cls, labels: list[str] | dict[str, int] | None, preset: Preset | None, where: str) -> "LabelMap":
        """The label mapping from a task spec's ``labels`` (or the preset's); ``where`` names the field in errors."""
        if labels is None:
            if preset is None:
                return cls(None, None, None)
            names = preset.label_names
            return cls({n: i for i, n in enumerate(names)}, names, len(names))
        if isinstance(labels, list):
            if not labels:
                raise ConfigError(f"{where}.labels: empty list; expected the label names in index order")
            dup = sorted({n for n in labels if labels.count(n) > 1})
            if dup:
                raise ConfigError(f"{where}.labels: duplicate name(s) {dup}; each label name must appear once")
            names = tuple(str(n) for n in labels)
            return cls({n: i for i, n in enumerate(names)}, names, len(names))
        if not labels:
            raise ConfigError(f"{where}.labels: empty mapping; expected name: index pairs")
        bad = {k: v for k, v in labels.items() if isinstance(v, bool) or not isinstance(v, int) or v < 0}
        if bad:
            raise ConfigError(f"{where}.labels: indices must be integers >= 0, got {bad}")
        k = max(labels.values()) + 1
        inverse: dict[int, str] = {}
        for name, idx in labels.items():
            inverse.setdefault(idx, name)
        one_to_one = len(inverse) == len(labels) == k
        names_t = tuple(inverse[i] for i in range(k)) if one_to_one else None
        return cls(dict(labels), names_t, k)

    def inferred(self, values: Sequence[Any], where: str) -> "LabelMap":
        """This map, or -- when nothing names the labels and a training split's ``values`` hold label *names*
        (strings that are not integers) -- one numbering those names in sorted order.

        So ``positive`` / ``negative`` become 1 / 0 without a ``labels:`` list; the list fixes another order
        (e.g. to line tasks up under one shared head).  At most :data:`MAX_INFERRED_LABELS` names.
        """
        if self.to_index is not None:
            return self
        names = sorted({v.strip() for v in values if isinstance(v, str) and v.strip() and not _INTEGER.fullmatch(v.strip())})
        if not names:
            return self
        if len(names) > MAX_INFERRED_LABELS:
            raise DataError(f"{where}: {len(names)} distinct label names in the training split (e.g. {_shown(names[0])}); "
                            f"at most {MAX_INFERRED_LABELS} are numbered automatically: give 'labels:' in the config")
        return LabelMap({n: i for i, n in enumerate(names)}, tuple(names), len(names), inferred_from=where)

    def expected(self) -> str:
        """What a valid label looks like, for error messages."""
        if self.inferred_from is not None:
            return f"one of the {self.num_labels} label names of the training split ({self.inferred_from})"
        parts = []
        if self.to_index:
            parts.append(f"one of {sorted(self.to_index, key=lambda n: (self.to_index[n], n))}")  # type: ignore[index]
        if self.num_labels is not None:
            parts.append(f"an integer in 0..{self.num_labels - 1}")
        else:
            parts.append("an integer >= 0")
        return " or ".join(parts)

    def encode(self, value: Any, where: str, column: str) -> int:
        """The class index of one label value; :class:`DataError` naming ``where`` if invalid."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            raise DataError(f"{where}: label (column {column!r}) is null; expected {self.expected()}")
        if isinstance(value, str):
            s = value.strip()
            if self.to_index is not None and s in self.to_index:
                return int(self.to_index[s])
            if self.inferred_from is not None:
                raise DataError(f"{where}: unknown label {_shown(value)} in column {column!r}; expected {self.expected()}")
            if _INTEGER.fullmatch(s):  # ASCII digits only: int() would also take '²' (and fail) or '٣'
                digits = len(s.lstrip("-").lstrip("0"))
                if digits > _MAX_DIGITS:  # never int() a 5,000-digit string
                    raise DataError(f"{where}: label {_shown(s)} in column {column!r} is out of range ({digits} digits); "
                                    f"expected {self.expected()}")
                return self._check_int(int(s), value, where, column)
            if not s:
                raise DataError(f"{where}: label (column {column!r}) is empty; expected {self.expected()}")
            raise DataError(f"{where}: unknown label {_shown(value)} in column {column!r}; expected {self.expected()}")
        if self.inferred_from is not None:  # the training split named its labels: numbers are not labels here
            raise DataError(f"{where}: label {_shown(value)} in column {column!r} is not a label name; expected {self.expected()}")
        if isinstance(value, (bool, int, np.integer)):
            return self._check_int(int(value), value, where, column)
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return self._check_int(int(value), value, where, column)
        raise DataError(
            f"{where}: label {_shown(value)} in column {column!r} is a {type(value).__name__}; expected {self.expected()}"
        )

    def _check_int(self, i: int, raw: Any, where: str, column: str) -> int:
        if self.num_labels is None and i >= MAX_LABEL:
            raise DataError(f"{where}: label {_shown(i)} in column {column!r} is too large; expected integers below "
                            f"{MAX_LABEL} (one output per label)")
        if i < 0 or (self.num_labels is not None and i >= self.num_labels):
            hint = " (-1 marks unlabelled rows, e.g. a GLUE test split)" if i == -1 else ""
            raise DataError(f"{where}: label {_shown(raw)} in column {column!r} is out of range{hint}; "
                            f"expected {self.expected()}")
        return i


_INTEGER = re.compile(r"-?[0-9]+")
_MAX_DIGITS = 18  # label strings of more digits are out of range whatever their value
MAX_INFERRED_LABELS = 1000
"""The most label names a task's training split may hold when they are numbered automatically."""


def _shown(value: Any) -> str:
    """A label value for a message: the ``repr`` of a string, the number itself; cut short when long."""
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else repr(value[:37] + "...")
    try:
        text = str(value)
    except ValueError:  # an int beyond sys.get_int_max_str_digits()
        return "(a number of thousands of digits)"
    return text if len(text) <= 40 else f"{text[:37]}... ({len(text)} digits)"


# ------------------------------------------------------- language modelling

LM_SOURCES: dict[str, dict[str, str]] = {
    **{lang: {"translate_train": f"xnli/{lang}/translate_train_9k"} for lang in ("sw", "ur", "de", "es", "fr", "tr", "vi", "zh")},
    "en": {"mnli": "glue/mnli/train_9k"},
    "th": {}, "hi": {},
}
"""The language-modelling presets ``lm/<lang>[/<source>]``: each language's training sources (files under
``data_dir`` without ``.jsonl``; the first is the default).  Every language with XNLI validation and test text
(:data:`LM_XNLI_EVAL`) also has ``validation`` and ``test`` sources; Hindi and Thai train on XNLI validation."""

LM_XNLI_EVAL = ("en", "ur", "sw", "th", "hi")
"""Languages with XNLI validation and test text: a target among them is reported on its XNLI test text."""

for _lang in LM_XNLI_EVAL:
    LM_SOURCES[_lang].update({"validation": f"xnli/{_lang}/validation", "test": f"xnli/{_lang}/test"})

LM_FAMILIES = {"translate_train": "mnli9k", "mnli": "mnli9k", "validation": "xnli-validation", "test": "xnli-test"}
"""Which rows are translations of each other: row i of every source of one family is the same sentence pair in
another language (translate-train is row-parallel to MNLI-9k; XNLI's validation and test splits each across
languages)."""
