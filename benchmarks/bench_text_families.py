"""Real-text family benchmark (issue 22, item 3): every method on task families drawn from ``../shared/data``.

A family is drawn from one seed (``draw_family``):

* **a target**, one of three kinds --
  ``glue``: RTE, MRPC or CoLA, trained on a subsample of its train split, reported on its validation split
  (GLUE test labels are not public); ``xnli``: an XNLI language (en, ur, sw, th, hi) trained on a subsample of
  its XNLI *validation* split, reported on its XNLI *test* split; ``translate_train``: English MNLI-9k or the
  Swahili / Urdu XNLI-MT translate-train, reported on the language's XNLI test split.  The target keeps 100--1,000
  training rows (log-uniform), drawn by the family's seed from the file's first 3,000 rows in the ``max_train``
  order (``taskmix.data.text.max_train_indices``), so every family draws from one small pool per file;
* **2--4 auxiliaries** from the rest, each with ``max_train`` rows (1,000--3,000, log-uniform; the rows
  ``max_train`` keeps are a prefix of one fixed order, so all families together read at most 3,000 rows of
  a file).  English GLUE families (target RTE / MRPC / CoLA; auxiliaries RTE, MRPC, CoLA, QNLI, SST-2,
  MNLI-9k) are encoded with MiniLM and have per-task heads (their label spaces differ; a head is shared only
  when every task has the same label names).  NLI families (``xnli``, ``translate_train``; auxiliaries MNLI-9k,
  the eight translate-trains and the other XNLI validation splits, all entailment / neutral / contradiction)
  are encoded with ``e5-small-multilingual`` and share one head in 75% of families (per-task heads otherwise).

**Parallel data.**  XNLI's validation (and test) splits are translations of each other row by row, and every
translate-train file is row-parallel to MNLI-9k; a sentence's translation in a training split would leak the
reported split.  Every file belongs to a *parallel group* (``xnli-validation``, ``xnli-test``, ``mnli-9k``, or
itself); a training row and a reported row may never share (group, row index).  The reported split is XNLI
test (nothing trains on any XNLI test file) or a GLUE validation file (no auxiliary reads it), and
``check_no_leak`` asserts the rule for every family.  Translate-train is parallel to MNLI-9k, not to XNLI
validation / test: a target trained on Urdu translate-train may take MNLI-9k (its English originals) as an
auxiliary.

**Frozen regime, cached encodings.**  Every distinct sentence of the benchmark is encoded once (the
on-disk cache: ``--cache-dir``, default ``$TASKMIX_CACHE`` or ``~/.cache/taskmix``).  ``--dry-run`` lists the
families and counts the distinct sentences each encoder needs (and how many are cached already) without
encoding anything; ``--encode-only`` fills the cache and stops.

**Test-oracle.**  A simplex grid over all tasks' weights (step 1/k, the finest with at most ``--grid-max``
(35) mixtures: 1/6 for three tasks, 1/4 for four, 1/3 for five), each trained on every seed and scored on the
reported split, together with the rules' rows; the best by mean test accuracy.  Evaluation only: no method
sees it (``bench_families.run_family``, whose test-split blindness ``tests/test_bench_families.py`` checks).
Scoring and the summary are ``bench_families``'s (regret to the test-oracle, paired verdicts against the best
rule and single-task, cells more than 2 points below single-task, costs).

Model: the shipped text configs' MLP (hidden 256, one layer, dropout 0.1, lr 1e-3) with a linearly decayed
rate (steadier final models, docs/text.md), 1,000 steps of 64; the search with the library's defaults unless
``--variant`` / ``-o`` say otherwise (the tasks are in memory, so the text regime's search defaults do not apply);
the recommendation with the text regime's (``TEXT_COMPARE_DEFAULTS``: the incumbent ``proportional``) since
2026-12-06 -- the development rows of *text-families-dev* and the evaluation rows of *text-families-eval* (202)
predate it (their ``recommended`` rows had no incumbent; its screen is the ``rec_P<z>`` rows).

Family-seed sets, as for the wide synthetic families: ``--family-seed 201`` is the **development** set (choose
defaults here), ``--family-seed 202`` the **evaluation** set (score once, with the defaults chosen on 201);
``--family-seed 203`` a second evaluation set, for a default chosen on 201 after 202 was scored.

Usage:
  python benchmarks/bench_text_families.py --families 24 --seeds 3 --family-seed 202 --dry-run
  python benchmarks/bench_text_families.py --families 24 --family-seed 202 --encode-only --encoder-threads 2
  python benchmarks/bench_text_families.py --families 16 --seeds 3 --family-seed 201 --out /tmp/tdev
  python benchmarks/bench_text_families.py --families 24 --seeds 3 --family-seed 202 --shard I/2 --out /tmp/teval/sI
  python benchmarks/bench_text_families.py --summarize /tmp/teval/s0/rows.jsonl,/tmp/teval/s1/rows.jsonl --write
  # stability of the answer (issue 22): the same families on disjoint seeds, then the two recommendations
  python benchmarks/bench_text_families.py --families 24 --seeds 3 --seed-offset 3 --no-oracle --family-seed 202 \
      --methods single_task,uniform,proportional,temperature_2,unimax,learned_time_invariant,learned_time_variant \
      --recommend --out /tmp/tstab
  python benchmarks/bench_text_families.py --families 24 --family-seed 202 \
      --stability /tmp/teval/s0/rows.jsonl+/tmp/teval/s1/rows.jsonl,/tmp/tstab/rows.jsonl --write
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402

import bench_families as bf  # noqa: E402
from _md import ROOT  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data"
POOL = 3000
"""Rows of a file any family may read: the first ``POOL`` in the ``max_train`` order."""
TARGET_ROWS = (100, 1000)
AUX_ROWS = (1000, 3000)
KINDS = ("glue", "xnli", "translate_train")
KIND_P = (0.3, 0.4, 0.3)
NLI_SHARED_P = 0.75
TEXT_SEEDS = {201: "development", 202: "evaluation", 203: "second evaluation"}
"""``--family-seed`` sets: choose defaults on 201, score 202 once; 203 scores once a default chosen on 201 after 202
was scored (the text regime's incumbent)."""
WHOLE = {201: 16, 202: 24, 203: 20}
"""The whole benchmark, for the encoding estimate: 16 development and 24 evaluation families."""
ENCODERS = {"glue": "minilm", "xnli": "e5-small-multilingual", "translate_train": "e5-small-multilingual"}
RATES = {"minilm": (45, 160), "e5-small-multilingual": (10, 50)}
"""Sentences per second on 2 cores (docs/text.md), for the encoding estimate."""
GLUE_TARGETS = ("rte", "mrpc", "cola")
GLUE_AUX = ("glue/rte:train", "glue/mrpc:train", "glue/cola:train", "glue/qnli:validation", "glue/sst2:validation",
            "glue/mnli:train_9k")
XNLI_LANGS = ("en", "ur", "sw", "th", "hi")
TT_TARGETS = (("en", "glue/mnli:train_9k"), ("sw", "xnli/sw:translate_train_9k"), ("ur", "xnli/ur:translate_train_9k"))
GLUE_ROLE = {"rte": "nli2", "qnli": "nli2", "mnli": "nli3", "mrpc": "paraphrase", "cola": "acceptability", "sst2": "sentiment"}
MODEL = {"hidden": 256, "layers": 1, "dropout": 0.1, "lr": 1.0e-3, "lr_decay": "linear"}


# ---------------------------------------------------------------- sources


@dataclass(frozen=True)
class Source:
    """One data file: ``preset`` + file ``stem`` (``glue/rte`` + ``train``), its rows and parallel group."""

    preset: str
    stem: str
    rows: int
    lang: str
    group: str

    @property
    def key(self) -> str:
        """``preset:stem``, e.g. ``xnli/ur:test``."""
        return f"{self.preset}:{self.stem}"

    @property
    def short(self) -> str:
        """A task name: ``rte``, ``mnli``, ``tt_de`` (translate-train), ``val_ur`` (XNLI validation), ``test_ur``."""
        ds = self.preset.split("/")[1]
        if self.preset.startswith("glue/"):
            return ds
        return {"translate_train_9k": "tt", "validation": "val", "test": "test"}.get(self.stem, self.stem) + "_" + ds

    @property
    def labels(self) -> tuple[str, ...]:
        """The preset's label names."""
        from taskmix.data.presets import get_preset

        return tuple(get_preset(self.preset).label_names)


def parallel_group(preset: str, stem: str) -> str:
    """Files whose row *i* are translations of one another share a group (see the module docstring)."""
    if stem == "translate_train_9k" or (preset == "glue/mnli" and stem == "train_9k"):
        return "mnli-9k"
    if preset.startswith("xnli/") and stem in ("validation", "test"):
        return f"xnli-{stem}"
    return f"{preset}:{stem}"


def read_manifest(data: Path) -> dict[str, Source]:
    """The sources of ``data/MANIFEST.tsv`` whose files exist."""
    out: dict[str, Source] = {}
    with (data / "MANIFEST.tsv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            path = row["file"]
            if not (data / path).is_file() or not path.endswith(".jsonl"):
                continue
            parts = path[: -len(".jsonl")].split("/")
            preset, stem = "/".join(parts[:2]), parts[2]
            lang = parts[1] if parts[0] == "xnli" else "en"
            src = Source(preset, stem, int(row["rows"]), lang, parallel_group(preset, stem))
            out[src.key] = src
    return out


def max_train_rows(n: int, k: int) -> np.ndarray:
    """The rows ``max_train: k`` keeps of ``n`` (sorted); all ``n`` when ``k >= n``."""
    from taskmix.data.text import max_train_indices

    return np.arange(n) if k >= n else max_train_indices(n, k)


# ---------------------------------------------------------------- families


@dataclass
class TextFamily:
    """A drawn family: which rows of which files, before any text is read."""

    fid: int
    kind: str
    encoder: str
    heads: str
    target: Source
    target_rows: np.ndarray
    report: Source
    report_rows: np.ndarray
    aux: list[tuple[str, Source, np.ndarray]] = field(default_factory=list)

    @property
    def training(self) -> list[tuple[str, Source, np.ndarray]]:
        """Every training split: the target's and the auxiliaries'."""
        return [("target", self.target, self.target_rows), *self.aux]

    def role(self, src: Source) -> str:
        """An auxiliary's relation to the target, as far as the data says (not a ground truth)."""
        if self.kind == "glue":
            return GLUE_ROLE.get(src.preset.split("/")[1], "glue")
        if src.lang == self.target.lang:
            return "same_language"
        return "english" if src.lang == "en" else "other_language"

    def describe(self) -> str:
        """One line for ``--dry-run``."""
        aux = ", ".join(f"{n}={s.key}[{len(r)}]" for n, s, r in self.aux)
        return (f"{self.fid}: {self.kind:<15} {self.encoder:<21} {self.heads:<8} target {self.target.key}[{len(self.target_rows)}] "
                f"-> {self.report.key}[{len(self.report_rows)}]; aux {aux}")


def _log_uniform(rng: np.random.Generator, lo: int, hi: int) -> int:
    return int(round(math.exp(rng.uniform(math.log(lo), math.log(hi)))))


def draw_family(fid: int, sources: dict[str, Source], target_rows: tuple[int, int] = TARGET_ROWS,
                aux_rows: tuple[int, int] = AUX_ROWS, report_max: int | None = None,
                kinds_allowed: Sequence[str] = KINDS) -> TextFamily:
    """Family ``fid`` (deterministic given the files present); raises ``ValueError`` if the data cannot form one.

    ``kinds_allowed``: draw the target only from these kinds (``glue``, ``xnli``, ``translate_train``); a
    restricted draw is a family set of its own (the same ``fid`` may give another family).
    """
    rng = np.random.default_rng([int(fid), 0x7E47F])
    targets: dict[str, list[tuple[str, str]]] = {
        "glue": [(f"glue/{t}:train", f"glue/{t}:validation") for t in GLUE_TARGETS],
        "xnli": [(f"xnli/{lang}:validation", f"xnli/{lang}:test") for lang in XNLI_LANGS],
        "translate_train": [(src, f"xnli/{lang}:test") for lang, src in TT_TARGETS],
    }
    avail = {k: [tr for tr in v if tr[0] in sources and tr[1] in sources] for k, v in targets.items()}
    bad = [k for k in kinds_allowed if k not in KINDS]
    if bad or not kinds_allowed:
        raise ValueError(f"kinds {list(kinds_allowed)}: expected a non-empty subset of {list(KINDS)}")
    kinds = [k for k in KINDS if avail[k] and k in kinds_allowed]
    if not kinds:
        raise ValueError("no target can be formed from the files present")
    p = np.asarray([KIND_P[KINDS.index(k)] for k in kinds])
    kind = str(rng.choice(kinds, p=p / p.sum()))
    train_key, report_key = avail[kind][int(rng.integers(len(avail[kind])))]
    target, report = sources[train_key], sources[report_key]
    if kind == "glue":
        pool_keys = [k for k in GLUE_AUX if k in sources and sources[k].preset != target.preset]
    else:
        pool_keys = sorted(k for k, s in sources.items()
                           if s.group in ("mnli-9k", "xnli-validation") and k != train_key)
    pool_keys = [k for k in pool_keys if sources[k].group != report.group]  # nothing parallel to the report split
    if len(pool_keys) < 2:
        raise ValueError(f"family {fid}: fewer than 2 auxiliaries available for target {train_key}")
    n_aux = min(int(rng.integers(2, 5)), len(pool_keys))
    chosen = [pool_keys[int(i)] for i in rng.choice(len(pool_keys), size=n_aux, replace=False)]
    pool = max_train_rows(target.rows, POOL)
    n_target = min(_log_uniform(rng, *target_rows), len(pool))
    t_rows = np.sort(rng.choice(pool, size=n_target, replace=False))
    aux = []
    for k in chosen:
        s = sources[k]
        aux.append((s.short, s, max_train_rows(s.rows, min(_log_uniform(rng, *aux_rows), s.rows))))
    r_rows = max_train_rows(report.rows, report_max) if report_max else np.arange(report.rows)
    labels = {target.labels, *(s.labels for _, s, _ in aux)}
    if kind == "glue":
        heads = "shared" if len(labels) == 1 else "per_task"
    else:
        assert len(labels) == 1, labels
        heads = "shared" if rng.random() < NLI_SHARED_P else "per_task"
    fam = TextFamily(int(fid), kind, ENCODERS[kind], heads, target, t_rows, report, r_rows, aux)
    check_no_leak(fam)
    return fam


def check_no_leak(fam: TextFamily) -> None:
    """No training row is (a translation of) a reported row: no shared (parallel group, row index)."""
    reported = set(fam.report_rows.tolist())
    for name, src, rows in fam.training:
        if src.key == fam.report.key or (src.group == fam.report.group and reported & set(rows.tolist())):
            raise AssertionError(f"family {fam.fid}: {name} ({src.key}) trains on rows parallel to the reported {fam.report.key}")


def draw_families(ids: Sequence[int], sources: dict[str, Source], **kw: Any) -> list[TextFamily]:
    """The families ``ids``."""
    return [draw_family(i, sources, **kw) for i in ids]


# ---------------------------------------------------------------- text and features


class TextStore:
    """Reads each file once (taskmix's own reader: the texts a config would encode); features come through the cache."""

    def __init__(self, data: Path, cache_dir: str | None = None, threads: int | None = 1):
        self.data = data
        self.cache_dir = cache_dir
        self.threads = threads
        self._text: dict[str, tuple[list[tuple[str, str | None]], np.ndarray]] = {}
        self._enc: dict[str, Any] = {}

    def text(self, src: Source) -> tuple[list[tuple[str, str | None]], np.ndarray]:
        """All rows of ``src``: (text_a, text_b) pairs and labels."""
        if src.key not in self._text:
            from taskmix.config import config_from_dict
            from taskmix.data.text import load_text_task

            raw = {"target": "x", "data_dir": str(self.data),
                   "tasks": {"x": {"preset": src.preset, "splits": {"train": src.stem, "validation": None, "test": None}}}}
            cfg = config_from_dict(raw, source=f"<{src.key}>")
            task = load_text_task("x", cfg.tasks["x"], cfg, encoder=None)
            pairs = [(str(a), None if b is None else str(b)) for a, b in task.train.x]
            self._text[src.key] = (pairs, np.asarray(task.train.y))
        return self._text[src.key]

    def encoder(self, model: str) -> Any:
        """The cached sentence encoder ``model`` (built once; the model loads only when a sentence is missing)."""
        if model not in self._enc:
            from taskmix.encoders import SentenceEncoder

            self._enc[model] = SentenceEncoder(model, pair="concat", cache_dir=self.cache_dir, threads=self.threads)
        return self._enc[model]

    def features(self, model: str, src: Source, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Features (encoded through the cache) and labels of ``rows`` of ``src``."""
        pairs, y = self.text(src)
        return self.encoder(model).features([pairs[int(i)] for i in rows]), y[rows]

    def encode_all(self, fams: Sequence["TextFamily"]) -> None:
        """Encode every row ``fams`` use, one call per (encoder, file): fills the cache."""
        need: dict[tuple[str, str], tuple[Source, set[int]]] = {}
        for fam in fams:
            for _, src, rows in [*fam.training, ("report", fam.report, fam.report_rows)]:
                need.setdefault((fam.encoder, src.key), (src, set()))[1].update(rows.tolist())
        for (model, key), (src, rows) in sorted(need.items()):
            t0 = time.perf_counter()
            self.features(model, src, np.asarray(sorted(rows)))
            print(f"  {model} {key}: {len(rows)} rows, {time.perf_counter() - t0:.0f} s", flush=True)


def sentences(store: TextStore, fams: Sequence[TextFamily]) -> dict[str, set[str]]:
    """Distinct sentences each encoder needs for ``fams`` (what the cache is keyed by)."""
    out: dict[str, set[str]] = {}
    for fam in fams:
        got = out.setdefault(fam.encoder, set())
        for _, src, rows in [*fam.training, ("report", fam.report, fam.report_rows)]:
            pairs = store.text(src)[0]
            for i in rows:
                a, b = pairs[int(i)]
                got.add(a)
                if b is not None:
                    got.add(b)
    return out


def cached_count(store: TextStore, model: str, texts: set[str]) -> int | None:
    """How many of ``texts`` the cache holds for ``model`` already (``None`` if the encoder cannot be set up)."""
    try:
        enc = store.encoder(model)
        keys = [enc._key(b"s", t) for t in texts]
        return len(enc.cache.get_many(keys, enc.cache.get_dim(enc.identity)))
    except Exception as e:  # a missing encoder package must not stop a dry run
        print(f"  (cache not checked for {model}: {e})", file=sys.stderr)
        return None


# ---------------------------------------------------------------- running


def build(fam: TextFamily, store: TextStore, steps: int, overrides: dict[str, Any]) -> Any:
    """The :class:`taskmix.data.families.Family` of ``fam``: tasks on cached features and a config to run them."""
    from taskmix.config import config_from_dict
    from taskmix.config.schema import TEXT_COMPARE_DEFAULTS
    from taskmix.data.families import Family
    from taskmix.data.tasks import Split, Task

    x, y = store.features(fam.encoder, fam.target, fam.target_rows)
    xr, yr = store.features(fam.encoder, fam.report, fam.report_rows)
    tasks = [Task("target", train=Split(x, y), test=Split(xr, yr), num_labels=len(fam.target.labels),
                  label_names=fam.target.labels, meta={"source": fam.target.key, "report": fam.report.key})]
    roles = {"target": "target"}
    info: dict[str, dict[str, Any]] = {"target": {"n": len(fam.target_rows), "source": fam.target.key, "lang": fam.target.lang,
                                                  "report": fam.report.key, "report_rows": len(fam.report_rows)}}
    for name, src, rows in fam.aux:
        xa, ya = store.features(fam.encoder, src, rows)
        tasks.append(Task(name, train=Split(xa, ya), num_labels=len(src.labels), label_names=src.labels,
                          meta={"source": src.key}))
        roles[name] = fam.role(src)
        info[name] = {"n": len(rows), "source": src.key, "lang": src.lang}
    info["_family"] = {"kind": fam.kind, "encoder": fam.encoder, "heads": fam.heads, "n_aux": len(fam.aux),
                       "generator": "text"}
    raw: dict[str, Any] = {"target": "target", "tasks": {t.name: {} for t in tasks}, "seed": 0,
                           "model": {**MODEL, "heads": fam.heads},
                           "train": {"steps": steps, "batch_size": 64, "threads": 1},
                           "compare": dict(TEXT_COMPARE_DEFAULTS)}  # in-memory tasks: the text regime's answer, said here
    for dotted, value in overrides.items():
        section, _, key = dotted.partition(".")
        raw[section] = {**raw.get(section, {}), key: value} if key else value
    cfg = config_from_dict(raw, source=f"<text family {fam.fid}>")
    return Family(fam.fid, tasks, cfg, roles, {}, info, generator="text")


def grid_candidates(n: int, grid_max: int) -> list[tuple[str, np.ndarray]]:
    """The test-oracle's simplex grid: step 1/k, the finest k with at most ``grid_max`` points (k >= 1)."""
    from taskmix.compare.methods import simplex_grid

    k = 1
    while math.comb(k + 1 + n - 1, n - 1) <= grid_max:
        k += 1
    grid = simplex_grid(n, 1.0 / k)
    return [("grid:" + "/".join(f"{w:.2f}" for w in pt), pt) for pt in grid]


def headline(stats: dict[str, dict[str, Any]], families: list[dict[str, Any]]) -> str:
    """Mean regret to the test-oracle of each learned schedule beside the best rule's (and the per-family best rule's)."""
    rules = {m: 100 * np.mean(stats[m]["regret"]) for m in bf.RULES if m in stats}
    if not rules:
        return ""
    best = min(rules, key=lambda m: rules[m])
    per_family = []
    for fam in families:
        by: dict[str, list[float]] = {}
        for r in fam["rows"]:
            if r["method"] in bf.RULES:
                by.setdefault(r["method"], []).append(r["test"])
        if by:
            per_family.append(fam["oracle"]["test"] - max(np.mean(v) for v in by.values()))
    others = [m for m in stats if m not in bf.RULES and not m.startswith("learned+check")]
    parts = [f"{m} {100 * np.mean(stats[m]['regret']):+.2f}" for m in others]
    return (f"Mean regret to the test-oracle (points): best rule overall {best} {rules[best]:+.2f}; the per-family best "
            f"rule (picked on the test split, so flattered) {100 * np.mean(per_family):+.2f}"
            + ("; " + "; ".join(parts) if parts else "") + ".")


def text_composition(families: list[dict[str, Any]]) -> str:
    """Kinds, targets, heads and sizes of the families."""
    kinds = [f["info"]["_family"]["kind"] for f in families]
    targets = [f["info"]["target"]["source"] for f in families]
    shared = sum(f["info"]["_family"]["heads"] == "shared" for f in families)
    sizes = [f["info"]["target"]["n"] for f in families]
    naux = [f["info"]["_family"]["n_aux"] for f in families]
    return (f"Families: {len(families)} ({', '.join(f'{k} {kinds.count(k)}' for k in KINDS if k in kinds)}); targets: "
            + ", ".join(f"{t} {targets.count(t)}" for t in sorted(set(targets))) + f"; shared head {shared}/{len(families)}; "
            f"target size {min(sizes)}–{max(sizes)} (median {int(np.median(sizes))}); auxiliaries {min(naux)}–{max(naux)}.")


NOTES = """Families from `../shared/data` (`benchmarks/bench_text_families.py`, its docstring): a GLUE target (RTE,
MRPC, CoLA; reported on GLUE validation), an XNLI language (trained on XNLI validation rows, reported on XNLI test)
or a translate-train target (MNLI-9k, Swahili / Urdu XNLI-MT; reported on XNLI test), 100–1,000 target rows and 2–4
auxiliaries of 1,000–3,000 rows on frozen cached encodings (MiniLM for GLUE families, e5-small-multilingual for NLI
families); no training row is parallel to a reported row. The test-oracle is the best of a simplex grid over all
tasks (≤ 35 mixtures) and the rules, by mean test accuracy (evaluation only). Columns as in *families*; metric:
accuracy."""


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``-o section.key=value`` (values read as YAML)."""
    import yaml

    out = {}
    for it in items:
        k, sep, v = it.partition("=")
        if not sep or "." not in k:
            raise SystemExit(f"-o {it!r}: expected section.key=value")
        out[k.strip()] = yaml.safe_load(v)
    return out


def merged(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The rows files of ``--summarize``, merged by family; with ``--as-learned``, a variant's rows as the learned ones."""
    fams = bf.merge([Path(f) for f in args.summarize.split(",") if f])
    return [bf.as_learned(f, args.as_learned) for f in fams] if args.as_learned else fams


def main(argv: Sequence[str] | None = None) -> None:
    """Draw, encode, run (or summarize) the real-text family benchmark."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--families", type=int, default=24)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--seed-offset", type=int, default=0, help="seeds OFFSET .. OFFSET + SEEDS - 1 (a disjoint seed set "
                    "for --stability)")
    ap.add_argument("--no-oracle", action="store_true", help="skip the test-oracle's grid (for --stability runs)")
    ap.add_argument("--family-seed", type=int, default=201, help="families 1000*S .. 1000*S + N - 1 (201: development, 202: evaluation)")
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="the shared data folder (MANIFEST.tsv)")
    ap.add_argument("--cache-dir", default=os.environ.get("TASKMIX_CACHE"), help="embedding cache (default $TASKMIX_CACHE or ~/.cache/taskmix)")
    ap.add_argument("--encoder-threads", type=int, default=1)
    ap.add_argument("--dry-run", action="store_true", help="list the families and the sentences to encode; encode nothing")
    ap.add_argument("--encode-only", action="store_true", help="encode every sentence of these families (fill the cache) and stop")
    ap.add_argument("--methods", default=",".join(bf.RULES + bf.LEARNED))
    ap.add_argument("--variant", action="append", default=[], help="NAME:search.key=value,... (as bench_families)")
    ap.add_argument("-o", "--override", action="append", default=[], help="section.key=value for every family's config")
    ap.add_argument("--steps", type=int, default=1000, help="train.steps")
    ap.add_argument("--grid-max", type=int, default=35, help="the most mixtures in the test-oracle's simplex grid")
    ap.add_argument("--target-rows", default=f"{TARGET_ROWS[0]},{TARGET_ROWS[1]}", help="LO,HI target training rows")
    ap.add_argument("--aux-rows", default=f"{AUX_ROWS[0]},{AUX_ROWS[1]}", help="LO,HI auxiliary rows (max_train)")
    ap.add_argument("--report-max", type=int, default=None, help="report on at most this many rows (default: the whole split)")
    ap.add_argument("--kinds", default=",".join(KINDS), help="comma-separated target kinds to draw from (default all: "
                    + ", ".join(KINDS) + "); e.g. 'glue' for the English GLUE families only (MiniLM encodings, minutes)")
    ap.add_argument("--recommend", action="store_true",
                    help="also the comparison's recommended mixture (method 'recommended'), from the methods' rows")
    ap.add_argument("--out", default=None, help="append one JSON line per family to OUT/rows.jsonl (resumable)")
    ap.add_argument("--shard", default="0/1", help="I/K: only families i with i %% K == I")
    ap.add_argument("--stability", default=None, help="A,B: rows files of the same families on disjoint seeds (shards "
                    "joined with '+'); compare the two recommendations (issue 22, acceptance 3)")
    ap.add_argument("--screen-recommend", default=None,
                    help="with --summarize: margins to screen post hoc, as bench_families (z: a learned candidate needs z "
                         "SE over the best rule; L<z>: a rule needs z SE over the best learned candidate)")
    ap.add_argument("--summarize", default=None, help="only summarize these rows files (comma-separated)")
    ap.add_argument("--as-learned", default=None,
                    help="with --summarize: the variant NAME's rows take the place of the learned methods' (as bench_families)")
    ap.add_argument("--detail", default=None, help="also print one line per family for this method")
    ap.add_argument("--write", action="store_true", help="write the tables into BENCHMARKS.md")
    ap.add_argument("--section", default=None, help="default text-families-dev / text-families-eval")
    ap.add_argument("--produced-by", default=None, help="with --summarize: the command that produced the rows")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    if args.summarize and not args.screen_recommend:
        fams = merged(args)
        return report(fams, args)
    data = Path(args.data)
    if not (data / "MANIFEST.tsv").is_file():
        raise SystemExit(f"{data}: no MANIFEST.tsv (the shared data folder; --data DIR)")
    sources = read_manifest(data)
    kw = {"target_rows": tuple(int(v) for v in args.target_rows.split(",")),
          "aux_rows": tuple(int(v) for v in args.aux_rows.split(",")), "report_max": args.report_max,
          "kinds_allowed": tuple(k for k in args.kinds.split(",") if k)}
    shard, n_shards = (int(v) for v in args.shard.split("/"))
    ids = [1000 * args.family_seed + i for i in range(args.families) if i % n_shards == shard]
    if args.summarize:  # with --screen-recommend: the families the rows hold, rebuilt for their held-out labels
        fams = merged(args)
        ids = [int(f["family"]) for f in fams]
    drawn = draw_families(ids, sources, **kw)
    which = TEXT_SEEDS.get(args.family_seed, "ad hoc (neither the development set 201 nor an evaluation set, 202 or 203)")
    store = TextStore(data, args.cache_dir, args.encoder_threads)
    if args.summarize:
        by_id = {tf.fid: tf for tf in drawn}
        for spec in args.screen_recommend.split(","):
            if spec:
                z, prefer, name, criterion = bf.screen_spec(spec)
                for f in fams:
                    fam = build(by_id[int(f["family"])], store, args.steps, parse_overrides(args.override))
                    bf.add_recommended_screen(f, z, name, family=fam, prefer=prefer, criterion=criterion)
        return report(fams, args)
    if args.stability:
        return stability(drawn, store, args)
    if args.dry_run or args.encode_only:
        print(f"{len(drawn)} text families ({which}), {args.seeds} seeds:")
        for f in drawn:
            print("  " + f.describe())
        t0 = time.perf_counter()
        sents = sentences(store, drawn)
        print(f"distinct sentences to encode (read in {time.perf_counter() - t0:.1f} s):")
        total = 0
        for model, texts in sorted(sents.items()):
            cached = cached_count(store, model, texts)
            new = len(texts) - (cached or 0)
            lo, hi = RATES.get(model, (20, 100))
            total += len(texts)
            print(f"  {model}: {len(texts)} distinct"
                  + (f", {cached} cached already, {new} to encode" if cached is not None else "")
                  + f" (~{new / hi / 60:.0f}–{new / lo / 60:.0f} min at {lo}–{hi} sentences/s on 2 cores)")
        print(f"  all encoders: {total} distinct sentences")
        whole = draw_families([1000 * s_ + i for s_, n in WHOLE.items() for i in range(n)], sources, **kw)
        every = sentences(store, whole)
        print("the whole benchmark (" + " + ".join(f"{n} {TEXT_SEEDS[s_]} families ({s_})" for s_, n in WHOLE.items())
              + "): " + ", ".join(f"{m} {len(t)}" for m, t in sorted(every.items()))
              + f"; {sum(len(t) for t in every.values())} distinct sentences, encoded once")
        n_tasks = [1 + len(f.aux) for f in drawn]
        runs = sum(len(grid_candidates(n, args.grid_max)) + 4 + 3 for n in n_tasks) * args.seeds
        print(f"training runs: ~{runs} (per family and seed: the grid, 4 rules, one search and 2 retrains)")
        if args.dry_run:
            return None
        store.encode_all(drawn)
        for model, enc in store._enc.items():
            print(f"{model}: {enc.stats()}")
        return None
    methods = [m for m in args.methods.split(",") if m]
    variants = dict(bf.parse_variant(v) for v in args.variant)
    overrides = parse_overrides(args.override)
    out = Path(args.out) / "rows.jsonl" if args.out else None
    done: dict[int, dict[str, Any]] = {}
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            for line in out.read_text().splitlines():
                if line.strip():
                    f = json.loads(line)
                    done[f["family"]] = f
    print(f"{len(drawn)} text families ({which})", flush=True)
    t0 = time.perf_counter()
    rows = []
    for tf in drawn:
        if tf.fid in done:
            rows.append(done[tf.fid])
            continue
        fam = build(tf, store, args.steps, overrides)
        res = bf.run_family(fam, list(range(args.seed_offset, args.seed_offset + args.seeds)), variants, methods, 0,
                            oracle=not args.no_oracle, cands=grid_candidates(len(fam.tasks), args.grid_max),
                            recommended=args.recommend)
        res["family_spec"] = tf.describe()
        rows.append(res)
        if out is not None:
            with out.open("a") as fh:
                fh.write(json.dumps(res) + "\n")
        orc = f"oracle {res['oracle']['test']:.3f} ({res['oracle']['best']})" if "oracle" in res else "no oracle"
        print(f"family {tf.fid} ({tf.kind}, {tf.target.key}): {orc}, {time.perf_counter() - t0:.0f} s", flush=True)
    return report([f for f in rows if "oracle" in f], args)


def _load_rows(files: str) -> dict[int, list[dict[str, Any]]]:
    """Every stored method row of comma-separated rows files, by family (with or without an oracle)."""
    out: dict[int, list[dict[str, Any]]] = {}
    for f in (f for f in files.split(",") if f):
        for line in Path(f).read_text().splitlines():
            if line.strip():
                fam = json.loads(line)
                out.setdefault(int(fam["family"]), []).extend(fam["rows"])
    return out


def stability(drawn: Sequence[TextFamily], store: TextStore, args: argparse.Namespace) -> None:
    """Issue 22, acceptance 3 on real text: the recommendations of two comparisons on disjoint seed sets.

    ``--stability A,B``: two rows files (or ``+``-joined shard lists) holding the same families on disjoint seeds.
    Each side's recommendation is recomputed from its stored rows exactly as the comparison makes it (the rules and
    the learned schedules as candidates, held-out rows pooled over that side's seeds), and the two mixtures'
    total-variation distance is reported per family.  A family passes when they lie within ``UNSTABLE_TV``, or when
    a verdict says unstable (a spread of the seeds' schedules, or a span of the within-noise mixtures, above
    ``UNSTABLE_TV``: ``stable`` is false; the acceptance's fallback); the other warnings (a tie with a rule, a choice
    fewer than 70% of seed resamples make) are counted apart.
    """
    from taskmix.compare.recommend import UNSTABLE_TV
    from taskmix.runs import prepare_job

    sides = [_load_rows(part.replace("+", ",")) for part in args.stability.split(",")]
    if len(sides) != 2:
        raise SystemExit("--stability A,B: two rows files (shards joined with '+')")
    lines, tvs, stats = [], [], {"close": 0, "unstable": 0, "flagged": 0, "silent": 0}
    for tf in drawn:
        if not all(tf.fid in side for side in sides):
            continue
        fam = build(tf, store, args.steps, parse_overrides(args.override))
        recs = []
        for side in sides:
            seeds = sorted({int(r["seed"]) for r in side[tf.fid]})
            recs.append((seeds, bf.recommendation_of(side[tf.fid], {s: prepare_job(fam.config, fam.tasks, s) for s in seeds})))
        (sa, a), (sb, b) = recs
        if a is None or b is None:
            continue
        if set(sa) & set(sb):
            raise SystemExit(f"family {tf.fid}: the two sides share seeds {sorted(set(sa) & set(sb))}")
        tv = 0.5 * float(np.abs(a.schedule.mean_weights() - b.schedule.mean_weights()).sum())
        tvs.append(tv)
        warned = [r for r in (a, b) if r.verdict == "tie" or not r.stable or r.choice_agreement < 0.7]
        kind = ("close" if tv <= UNSTABLE_TV else "unstable" if any(not r.stable for r in (a, b))
                else "flagged" if warned else "silent")
        stats[kind] += 1

        def cell(r: Any) -> str:
            flag = "" if r.stable else f", unstable: span {r.span:.2f}"
            return (f"{r.source} ({r.verdict}, agreement {r.choice_agreement:.0%}, spread {r.spread:.2f}{flag}): "
                    + "/".join(f"{w:.2f}" for w in r.schedule.mean_weights()))
        label = {"close": "within", "unstable": "beyond, verdict says unstable", "flagged": "beyond, verdict warns",
                 "silent": "beyond, no warning"}[kind]
        lines.append(f"| {tf.fid} | {tf.target.key} ({len(tf.target_rows)}) | {cell(a)} | {cell(b)} | {tv:.3f} | {label} |")
    if not tvs:
        raise SystemExit("--stability: no family is in both rows files")
    n = len(tvs)
    seeds_text = [f"{min(sd)}–{max(sd)}" for sd, _ in recs]
    body = ("| family | target (rows) | seeds " + seeds_text[0] + ": recommended (verdict), weights target/aux… | seeds "
            + seeds_text[1] + ": recommended | TV | ≤ " + f"{UNSTABLE_TV:g}" + " |\n|---|---|---|---|---|---|\n"
            + "\n".join(lines)
            + f"\n\n{n} families: the two recommendations lie within total variation {UNSTABLE_TV:g} in **{stats['close']}/{n}**"
            f" (median TV {np.median(tvs):.3f}, mean {np.mean(tvs):.3f}); beyond it with a verdict that says unstable (the"
            f" seeds' spread or the span of the mixtures within noise above {UNSTABLE_TV:g}, shown) in {stats['unstable']};"
            f" with another warning (a tie with a rule or a choice fewer than 70% of seed resamples make) in"
            f" {stats['flagged']}; beyond it with no warning in **{stats['silent']}**.")
    print(body)
    if args.write:
        from _md import update_section

        by = f"Rows produced by `{args.produced_by}`.\n\n" if args.produced_by else ""
        update_section(args.section or "text-families-stability", by + body)


def report(fams: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """Print (and with ``--write`` record) the summary of ``fams``."""
    if not fams:
        return
    stats = bf.summarize(fams)
    if args.detail:
        print(bf.detail(fams, args.detail))
    n_seeds = len({r["seed"] for f in fams for r in f["rows"]})
    text = bf.table(stats, len(fams), n_seeds)
    extra = "\n\n".join(s for s in (headline(stats, fams), text_composition(fams), bf.kind_table(stats, fams)) if s)
    extra += ("\n\n*Equal compute*: a (family, seed) row that took c times the seed's plain (uniform) run's wall time buys "
              "k = max(1, floor(c)) rules, the first k of " + ", ".join(bf.EQUAL_RULES) + "; the best of them on the reward "
              "split is picked per seed (never on test). Δ: the method's test accuracy − the pick's, in points, mean over "
              "families; W/T/L paired over seeds per family.\n\n" + bf.equal_compute_table(fams))
    print(text + "\n\n" + extra)
    if args.write:
        from _md import update_section

        ids = sorted(f["family"] for f in fams)
        sets = sorted({TEXT_SEEDS.get(i // 1000, "ad hoc") for i in ids})
        section = args.section or ("text-families-eval" if ids[0] // 1000 == 202 else "text-families-dev"
                                   if ids[0] // 1000 == 201 else f"text-families-{ids[0] // 1000}")
        by = f"Rows produced by `{args.produced_by}`.\n\n" if args.produced_by else ""
        body = by + (f"{len(fams)} text families ({', '.join(sets)}; ids {ids[0]}..{ids[-1]}) × {n_seeds} paired seeds; "
                     f"the search's defaults unless the command says otherwise.\n\n" + text + "\n\n" + extra + "\n\n" + NOTES)
        update_section(section, body)


if __name__ == "__main__":
    main()
