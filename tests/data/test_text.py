"""Text tasks: presets, file formats, column / label mapping, errors, the hub branch."""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("datasets", reason="text tasks need the 'text' extra (pip install 'taskmix[text]')")

from taskmix.config import Config, TaskSpec, config_from_dict, load_config
from taskmix.encoders import SentenceEncoder
from taskmix.errors import ConfigError, DataError, TaskmixError
from taskmix.data.text import is_text_spec, load_text_task, load_text_tasks, read_text_file

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
needs_shared = pytest.mark.skipif(
    not (SHARED / "MANIFEST.tsv").is_file(), reason=f"real GLUE/XNLI data not found at {SHARED} (../shared/data)"
)


# ------------------------------------------------------------------ helpers


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def make_cfg(base: Path, tasks: dict[str, Any], target: str, **extra: Any) -> Config:
    return config_from_dict({"target": target, "tasks": tasks, **extra}, base_dir=base)


def load(base: Path, spec: dict[str, Any], name: str = "t", target: str | None = None, encoder: Any = None, **extra: Any):
    cfg = make_cfg(base, {name: spec}, target or name, **extra)
    return load_text_task(name, cfg.tasks[name], cfg, encoder)


def error_of(fn, *args, exc: type[Exception] = DataError, **kwargs) -> str:
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg, f"error message spans lines: {msg!r}"
    return msg


def fake_rows(cols: list[str], n: int, num_labels: int, tag: str) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        row: dict[str, Any] = {c: f"{tag} {c} number {i}" for c in cols}
        row["label"] = i % num_labels
        row["idx"] = i
        rows.append(row)
    return rows


class FakeBackend:
    """A deterministic stand-in for a sentence model (vectors from a hash of the text)."""

    def __init__(self, identity: str = "fake:v1", dim: int = 6):
        self.identity, self.dim, self.calls = identity, dim, 0

    def _vec(self, s: str) -> np.ndarray:
        h = hashlib.sha1(s.encode()).digest()
        return np.frombuffer(h[: self.dim], dtype=np.uint8).astype(np.float32) / 255.0

    def encode(self, texts):
        self.calls += 1
        return np.stack([self._vec(t) for t in texts])

    def encode_pairs(self, pairs):
        self.calls += 1
        return np.stack([self._vec("pair:" + a + "|" + b) for a, b in pairs])


# ------------------------------------------------------------------ presets

# preset, its columns in the hub copies, its label names, the local stems of its splits
PRESET_CASES = [
    ("glue/rte", ["sentence1", "sentence2"], ("entailment", "not_entailment"), {"validation": "validation"}),
    ("glue/mrpc", ["sentence1", "sentence2"], ("not_equivalent", "equivalent"), {"validation": "validation"}),
    ("glue/qnli", ["question", "sentence"], ("entailment", "not_entailment"), {"validation": "validation"}),
    ("glue/mnli", ["premise", "hypothesis"], ("entailment", "neutral", "contradiction"), {"validation": "validation_matched"}),
    ("glue/cola", ["sentence"], ("unacceptable", "acceptable"), {"validation": "validation"}),
    ("glue/sst2", ["sentence"], ("negative", "positive"), {"validation": "validation"}),
    ("xnli/sw", ["premise", "hypothesis"], ("entailment", "neutral", "contradiction"), {"validation": "validation", "test": "test"}),
    ("xnli/th", ["premise", "hypothesis"], ("entailment", "neutral", "contradiction"), {"validation": "validation", "test": "test"}),
]


@pytest.mark.parametrize("preset,cols,names,eval_stems", PRESET_CASES, ids=[c[0] for c in PRESET_CASES])
def test_preset_reads_its_hub_schema_from_local_files(tmp_path, preset, cols, names, eval_stems):
    data = tmp_path / "data"
    k = len(names)
    rows = {"train": fake_rows(cols, 7, k, "tr")}
    write_jsonl(data / preset / "train.jsonl", rows["train"])
    for role, stem in eval_stems.items():
        rows[role] = fake_rows(cols, 4, k, role[:3])
        write_jsonl(data / preset / f"{stem}.jsonl", rows[role])
    task = load(tmp_path, {"preset": preset}, data_dir="data")

    assert task.num_labels == k and task.label_names == names
    for role in ("train", *eval_stems):
        split = getattr(task, role)
        expect_b = [r[cols[1]] for r in rows[role]] if len(cols) == 2 else [None] * len(rows[role])
        assert list(split.x) == list(zip([r[cols[0]] for r in rows[role]], expect_b))
        assert split.y.tolist() == [r["label"] for r in rows[role]]
        assert split.y.dtype == np.int64
    # GLUE test labels are not public: the target reports on validation; XNLI reports on test
    assert task.test is None if preset.startswith("glue/") else len(task.test) == 4
    assert task.report_split_name == ("validation" if preset.startswith("glue/") else "test")
    assert task.meta["preset"] == preset


def test_auxiliary_preset_loads_only_its_training_data(tmp_path):
    write_jsonl(tmp_path / "d/glue/rte/train.jsonl", fake_rows(["sentence1", "sentence2"], 5, 2, "r"))
    write_jsonl(tmp_path / "d/glue/mrpc/train.jsonl", fake_rows(["sentence1", "sentence2"], 5, 2, "m"))
    write_jsonl(tmp_path / "d/glue/mrpc/validation.jsonl", fake_rows(["sentence1", "sentence2"], 3, 2, "mv"))
    # rte has no validation file: fine for an auxiliary task
    cfg = make_cfg(tmp_path, {"mrpc": {"preset": "glue/mrpc"}, "rte": {"preset": "glue/rte"}}, "mrpc", data_dir="d")
    aux = load_text_task("rte", cfg.tasks["rte"], cfg)
    assert aux.validation is None and aux.test is None and len(aux.train) == 5
    target = load_text_task("mrpc", cfg.tasks["mrpc"], cfg)
    assert len(target.validation) == 3


def test_split_stems_are_overridable(tmp_path):
    write_jsonl(tmp_path / "d/glue/mnli/train_9k.jsonl", fake_rows(["premise", "hypothesis"], 6, 3, "m"))
    write_jsonl(tmp_path / "d/glue/qnli/validation.jsonl", fake_rows(["question", "sentence"], 4, 2, "q"))
    write_jsonl(tmp_path / "d/glue/rte/train.jsonl", fake_rows(["sentence1", "sentence2"], 4, 2, "r"))
    write_jsonl(tmp_path / "d/glue/rte/validation.jsonl", fake_rows(["sentence1", "sentence2"], 2, 2, "rv"))
    tasks = {
        "rte": {"preset": "glue/rte"},
        "mnli": {"preset": "glue/mnli", "splits": {"train": "train_9k"}},
        "qnli": {"preset": "glue/qnli", "splits": {"train": "validation"}},
    }
    cfg = make_cfg(tmp_path, tasks, "rte", data_dir="d")
    mnli = load_text_task("mnli", cfg.tasks["mnli"], cfg)
    qnli = load_text_task("qnli", cfg.tasks["qnli"], cfg)
    assert len(mnli.train) == 6 and mnli.num_labels == 3 and mnli.train.x[0][0] == "m premise number 0"
    assert len(qnli.train) == 4 and qnli.meta["sources"]["train"].endswith("glue/qnli/validation.jsonl")


def test_xnli_target_trains_on_translate_train_and_reports_on_test(tmp_path):
    cols = ["premise", "hypothesis"]
    write_jsonl(tmp_path / "d/xnli/sw/translate_train_9k.jsonl", fake_rows(cols, 9, 3, "tt"))
    write_jsonl(tmp_path / "d/xnli/sw/validation.jsonl", fake_rows(cols, 3, 3, "v"))
    write_jsonl(tmp_path / "d/xnli/sw/test.jsonl", fake_rows(cols, 6, 3, "te"))
    task = load(tmp_path, {"preset": "xnli/sw", "splits": {"train": "translate_train_9k"}}, name="sw", data_dir="d")
    assert (len(task.train), len(task.validation), len(task.test)) == (9, 3, 6)
    assert task.train.x[0] == ("tt premise number 0", "tt hypothesis number 0")
    assert task.report_split_name == "test" and task.report_split.x[0][0] == "te premise number 0"


def test_a_null_split_is_left_out_so_hindi_trains_on_validation_and_reports_on_test(tmp_path):
    cols = ["premise", "hypothesis"]
    write_jsonl(tmp_path / "d/xnli/hi/validation.jsonl", fake_rows(cols, 6, 3, "v"))
    write_jsonl(tmp_path / "d/xnli/hi/test.jsonl", fake_rows(cols, 9, 3, "te"))
    msg = error_of(load, tmp_path, {"preset": "xnli/hi", "splits": {"train": "validation"}}, name="hi", data_dir="d")
    assert "train and validation both read" in msg and "tasks.hi.splits.validation: null" in msg
    spec = {"preset": "xnli/hi", "splits": {"train": "validation", "validation": None}}
    task = load(tmp_path, spec, name="hi", data_dir="d")
    assert (len(task.train), task.validation, len(task.test)) == (6, None, 9)
    assert task.train.x[0][0] == "v premise number 0" and task.report_split_name == "test"
    assert set(task.meta["sources"]) == {"train", "test"}
    msg = error_of(load, tmp_path, {"preset": "xnli/hi", "splits": {"train": None}}, name="hi", data_dir="d", exc=ConfigError)
    assert "tasks.hi.splits.train" in msg


def test_target_may_not_train_on_its_reported_split(tmp_path):
    write_jsonl(tmp_path / "d/glue/qnli/validation.jsonl", fake_rows(["question", "sentence"], 4, 2, "q"))
    msg = error_of(load, tmp_path, {"preset": "glue/qnli", "splits": {"train": "validation"}}, data_dir="d")
    assert "train and validation both read" in msg and "validation.jsonl" in msg


def test_missing_local_split_file_says_where_it_looked(tmp_path):
    write_jsonl(tmp_path / "d/glue/rte/train.jsonl", fake_rows(["sentence1", "sentence2"], 4, 2, "r"))
    msg = error_of(load, tmp_path, {"preset": "glue/rte"}, data_dir="d")
    assert "glue/rte" in msg and "no validation file" in msg and "validation.jsonl" in msg and "splits.validation" in msg


def test_explicit_paths_override_preset_files(tmp_path):
    write_jsonl(tmp_path / "d/glue/rte/train.jsonl", fake_rows(["sentence1", "sentence2"], 4, 2, "preset"))
    write_jsonl(tmp_path / "d/glue/rte/validation.jsonl", fake_rows(["sentence1", "sentence2"], 2, 2, "pv"))
    write_jsonl(tmp_path / "mine/rte_small.jsonl", fake_rows(["sentence1", "sentence2"], 3, 2, "mine"))
    task = load(tmp_path, {"preset": "glue/rte", "train": "mine/rte_small.jsonl"}, data_dir="d")
    assert len(task.train) == 3 and task.train.x[0][0] == "mine sentence1 number 0"
    assert len(task.validation) == 2  # still from data_dir


def test_sources_are_relative_to_the_config_file(tmp_path):
    conf_dir = tmp_path / "configs" / "glue"
    conf_dir.mkdir(parents=True)
    write_jsonl(tmp_path / "shared/glue/cola/train.jsonl", fake_rows(["sentence"], 3, 2, "c"))
    (conf_dir / "c.yaml").write_text(
        "target: aux\ndata_dir: ../../shared\ntasks:\n  cola: {preset: glue/cola}\n  aux: {train: ../../a.jsonl}\n"
    )
    write_jsonl(tmp_path / "a.jsonl", [{"text": "x", "label": 0}, {"text": "y", "label": 1}])
    cfg = load_config(conf_dir / "c.yaml")
    cola = load_text_task("cola", cfg.tasks["cola"], cfg)
    assert cola.meta["sources"]["train"] == str(tmp_path / "shared/glue/cola/train.jsonl")
    aux = load_text_task("aux", cfg.tasks["aux"], cfg)
    assert list(aux.train.x) == [("x", None), ("y", None)]


# ------------------------------------------------------------------ formats

ROWS = [
    {"q": "Is it raining, really?", "p": 'He said "no".', "y": "no"},
    {"q": "1998", "p": "NA", "y": "yes"},
    {"q": "a third question", "p": "", "y": "yes"},
]


def write_format(path: Path, fmt: str, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "jsonl":
        write_jsonl(path, rows)
    elif fmt == "json":
        path.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    elif fmt == "csv":
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    elif fmt == "tsv":  # GLUE convention: no quoting, quotes are literal
        cols = list(rows[0])
        lines = ["\t".join(cols)] + ["\t".join(str(r[c]) for c in cols) for r in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.mark.parametrize("fmt,ext", [("jsonl", ".jsonl"), ("json", ".json"), ("csv", ".csv"), ("tsv", ".tsv"), ("parquet", ".parquet")])
def test_formats_with_column_and_label_mapping(tmp_path, fmt, ext):
    f = write_format(tmp_path / f"train{ext}", fmt, ROWS)
    spec = {"train": f.name, "columns": {"text_a": "q", "text_b": "p", "label": "y"}, "labels": ["no", "yes"]}
    task = load(tmp_path, spec)
    assert list(task.train.x) == [(r["q"], r["p"]) for r in ROWS]  # digits and "NA" stay text
    assert task.train.y.tolist() == [0, 1, 1]
    assert task.label_names == ("no", "yes") and task.num_labels == 2


def test_explicit_format_overrides_the_extension(tmp_path):
    f = tmp_path / "data.txt"
    f.write_text("text\tlabel\nhello\t1\nworld\t0\n", encoding="utf-8")
    task = load(tmp_path, {"train": "data.txt", "format": "tsv"})
    assert list(task.train.x) == [("hello", None), ("world", None)] and task.train.y.tolist() == [1, 0]


def test_label_dict_may_merge_classes(tmp_path):
    rows = [{"text": f"s{i}", "label": n} for i, n in enumerate(["entailment", "neutral", "contradiction"])]
    write_jsonl(tmp_path / "a.jsonl", rows)
    task = load(tmp_path, {"train": "a.jsonl", "labels": {"entailment": 0, "neutral": 1, "contradiction": 1}})
    assert task.train.y.tolist() == [0, 1, 1] and task.num_labels == 2 and task.label_names is None


def test_integer_labels_are_used_as_they_are(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"text": "a", "label": 2}, {"text": "b", "label": 0}, {"text": "c", "label": "1"}])
    task = load(tmp_path, {"train": "a.jsonl"})
    assert task.train.y.tolist() == [2, 0, 1] and task.num_labels == 3


def test_label_names_without_a_labels_list_are_numbered_in_sorted_order_from_the_training_split(tmp_path):
    write_jsonl(tmp_path / "tr.jsonl", [{"text": "a", "label": "pos"}, {"text": "b", "label": "neg"}, {"text": "c", "label": " pos "}])
    write_jsonl(tmp_path / "te.jsonl", [{"text": "d", "label": "neg"}, {"text": "e", "label": "pos"}])
    task = load(tmp_path, {"train": "tr.jsonl", "test": "te.jsonl"})
    assert task.label_names == ("neg", "pos") and task.num_labels == 2
    assert task.train.y.tolist() == [1, 0, 1] and task.test.y.tolist() == [0, 1]
    # a name the training split never had is refused, naming the file and line and the names it knows
    write_jsonl(tmp_path / "te.jsonl", [{"text": "d", "label": "neg"}, {"text": "e", "label": "maybe"}])
    msg = error_of(load, tmp_path, {"train": "tr.jsonl", "test": "te.jsonl"})
    assert "te.jsonl:2" in msg and "'maybe'" in msg and "one of the 2 label names of the training split" in msg
    write_jsonl(tmp_path / "te.jsonl", [{"text": "d", "label": 1}])  # numbers are not labels once the names are
    assert "is not a label name" in error_of(load, tmp_path, {"train": "tr.jsonl", "test": "te.jsonl"})


def test_too_many_label_names_to_number_automatically_is_one_line(tmp_path):
    write_jsonl(tmp_path / "tr.jsonl", [{"text": "a", "label": f"name{i}"} for i in range(1001)])
    msg = error_of(load, tmp_path, {"train": "tr.jsonl"})
    assert "tr.jsonl" in msg and "1001 distinct label names" in msg and "labels:" in msg


def test_max_train_is_a_deterministic_seeded_subsample(tmp_path):
    rows = [{"text": f"sentence {i}", "label": i % 2} for i in range(100)]
    write_jsonl(tmp_path / "a.jsonl", rows)
    a = load(tmp_path, {"train": "a.jsonl", "max_train": 10})
    b = load(tmp_path, {"train": "a.jsonl", "max_train": 10}, seed=7)  # the run seed does not change the rows
    ids = [int(t.split()[1]) for t, _ in a.train.x]
    assert len(ids) == 10 and ids == sorted(ids) and ids != list(range(10))
    assert list(a.train.x) == list(b.train.x)
    assert a.train.y.tolist() == [i % 2 for i in ids]
    assert a.meta["rows"]["train"] == 100
    whole = load(tmp_path, {"train": "a.jsonl", "max_train": 500})
    assert len(whole.train) == 100


def test_is_text_spec():
    assert is_text_spec(TaskSpec(preset="glue/rte"))
    assert is_text_spec(TaskSpec(train="x/train.csv"))
    assert is_text_spec(TaskSpec(train="x/train.bin", format="jsonl"))
    assert not is_text_spec(TaskSpec(train="x/train.npz"))
    assert not is_text_spec(TaskSpec(train="x/train.jsonl", format="npz"))


# ------------------------------------------------------------------ errors


def test_unknown_label_names_value_line_and_expected_labels(tmp_path):
    f = write_jsonl(tmp_path / "d/glue/rte/train.jsonl", [
        {"sentence1": "a", "sentence2": "b", "label": "entailment"},
        {"sentence1": "c", "sentence2": "d", "label": "maybe"},
    ])
    write_jsonl(tmp_path / "d/glue/rte/validation.jsonl", fake_rows(["sentence1", "sentence2"], 2, 2, "v"))
    msg = error_of(load, tmp_path, {"preset": "glue/rte"}, data_dir="d")
    assert msg.startswith(f"{f}:2:")
    assert "'maybe'" in msg and "'label'" in msg and "['entailment', 'not_entailment']" in msg


def test_null_label_is_reported_with_its_line(tmp_path):
    f = tmp_path / "a.jsonl"
    f.write_text('{"text": "a", "label": 0}\n\n{"text": "b", "label": null}\n', encoding="utf-8")
    msg = error_of(load, tmp_path, {"train": "a.jsonl"})
    assert msg.startswith(f"{f}:3:") and "null" in msg


def test_label_out_of_range_and_unlabelled_rows(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"text": "a", "label": 0}, {"text": "b", "label": 2}])
    msg = error_of(load, tmp_path, {"train": "a.jsonl", "labels": ["neg", "pos"]})
    assert ":2:" in msg and "out of range" in msg and "0..1" in msg
    write_jsonl(tmp_path / "b.jsonl", [{"text": "a", "label": -1}])
    assert "unlabelled" in error_of(load, tmp_path, {"train": "b.jsonl"})


def test_malformed_jsonl_line_is_named(tmp_path):
    f = tmp_path / "a.jsonl"
    f.write_text('{"text": "a", "label": 0}\n{"text": "b", "label": 1}\n{"text": "c", "label": \n', encoding="utf-8")
    msg = error_of(load, tmp_path, {"train": "a.jsonl"})
    assert msg.startswith(f"{f}:3:") and "not valid JSON" in msg
    f.write_text('{"text": "a", "label": 0}\n["b", 1]\n', encoding="utf-8")
    assert error_of(read_text_file, f).startswith(f"{f}:2: expected a JSON object")


def test_csv_line_with_wrong_field_count_is_named(tmp_path):
    f = tmp_path / "a.csv"
    f.write_text("text,label\nhello,1\n\nworld,0,extra\n", encoding="utf-8")
    msg = error_of(load, tmp_path, {"train": "a.csv"})
    assert msg.startswith(f"{f}:4:") and "expected 2" in msg and "found 3" in msg


def test_missing_column_names_the_available_columns(tmp_path):
    f = write_jsonl(tmp_path / "a.jsonl", [{"sentence1": "a", "sentence2": "b", "label": 0}])
    msg = error_of(load, tmp_path, {"train": "a.jsonl", "columns": {"text_a": "premise"}})
    assert msg.startswith(str(f)) and "'premise'" in msg and "available columns: sentence1, sentence2, label" in msg


def test_null_text_is_reported_with_its_line(tmp_path):
    f = write_jsonl(tmp_path / "a.jsonl", [{"text": "a", "label": 0}, {"label": 1}])
    msg = error_of(load, tmp_path, {"train": "a.jsonl"})
    assert msg.startswith(f"{f}:2:") and "'text'" in msg and "null or missing" in msg and "expected text" in msg


@pytest.mark.parametrize(
    "name,content", [("a.jsonl", ""), ("b.jsonl", "\n\n  \n"), ("c.csv", "text,label\n"), ("d.tsv", ""), ("e.json", " [ ]")]
)
def test_empty_split(tmp_path, name, content):
    (tmp_path / name).write_text(content, encoding="utf-8")
    assert "empty split" in error_of(load, tmp_path, {"train": name})


def test_empty_parquet_split(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": pa.array([], pa.string()), "label": pa.array([], pa.int64())}), tmp_path / "e.parquet")
    assert "empty split" in error_of(load, tmp_path, {"train": "e.parquet"})


def test_unreadable_inputs(tmp_path):
    assert "file not found" in error_of(load, tmp_path, {"train": "nope.jsonl"})
    (tmp_path / "a.xlsx").write_text("x")
    assert "cannot tell the format" in error_of(load, tmp_path, {"train": "a.xlsx"})
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    assert "could not be read as parquet" in error_of(load, tmp_path, {"train": "bad.parquet"})
    (tmp_path / "latin.jsonl").write_bytes(b'{"text": "a", "label": 0}\n{"text": "caf\xe9", "label": 0}\n')
    assert ":2: not UTF-8" in error_of(load, tmp_path, {"train": "latin.jsonl"})


def test_spec_mistakes_are_config_errors(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"text": "a", "label": 0}])
    assert "unknown preset 'glue/nope'" in error_of(load, tmp_path, {"preset": "glue/nope"}, exc=ConfigError)
    assert "unknown key(s) ['txt']" in error_of(load, tmp_path, {"train": "a.jsonl", "columns": {"txt": "text"}}, exc=ConfigError)
    assert "unknown role(s) ['dev']" in error_of(load, tmp_path, {"train": "a.jsonl", "splits": {"dev": "x"}}, exc=ConfigError)
    assert "no train file" in error_of(load, tmp_path, {"validation": "a.jsonl"}, exc=ConfigError)
    assert "duplicate" in error_of(load, tmp_path, {"train": "a.jsonl", "labels": ["x", "x"]}, exc=ConfigError)
    # a preset with some explicit files and no data_dir does not fall back to the hub
    assert "no validation file" in error_of(load, tmp_path, {"preset": "glue/rte", "train": "a.jsonl"}, exc=ConfigError)


def test_all_errors_are_taskmix_errors():
    assert issubclass(DataError, TaskmixError) and issubclass(ConfigError, TaskmixError)


# ------------------------------------------------------------------ hostile or odd files


@pytest.mark.parametrize(
    "name,content",
    [
        ("b.csv", b"\xef\xbb\xbftext,label\na,0\nb,1\n"),
        ("b.tsv", b"\xef\xbb\xbftext\tlabel\na\t0\nb\t1\n"),
        ("b.jsonl", b'\xef\xbb\xbf{"text": "a", "label": 0}\n{"text": "b", "label": 1}\n'),
        ("b.json", b'\xef\xbb\xbf[{"text": "a", "label": 0}, {"text": "b", "label": 1}]'),
    ],
)
def test_a_utf8_byte_order_mark_is_accepted(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    task = load(tmp_path, {"train": name})
    assert task.train.x == [("a", None), ("b", None)] and task.train.y.tolist() == [0, 1]


def test_csv_line_ends_and_quoted_line_breaks_keep_their_line_numbers(tmp_path):
    (tmp_path / "cr.csv").write_bytes(b"text,label\ra,0\rb,1\r")  # old Mac line ends
    assert read_text_file(tmp_path / "cr.csv").lines == [2, 3]
    (tmp_path / "ml.csv").write_bytes(b'text,label\r\n"two\r\nlines ""q""",0\r\nb,1\r\nc,2,x\r\n')
    assert error_of(read_text_file, tmp_path / "ml.csv").startswith(f"{tmp_path / 'ml.csv'}:5: expected 2")
    (tmp_path / "ml.csv").write_bytes(b'text,label\r\n"two\r\nlines ""q""",0\r\nb,1\r\n')
    table = read_text_file(tmp_path / "ml.csv")
    assert table.lines == [2, 4] and table.columns["text"] == ['two\r\nlines "q"', "b"]


def test_an_unclosed_quote_is_reported_where_it_opens(tmp_path):
    f = tmp_path / "q.csv"
    f.write_text('text,label\na,0\n"it says ""hi"" and\nnever,1\ncloses,0\nb,1\n', encoding="utf-8")
    msg = error_of(read_text_file, f)
    assert msg.startswith(f"{f}:3: a quoted field starts on this line and is not closed") and "line 6" in msg
    # a later quote closes it wrongly: still the line where it opened
    f.write_text('text,label\na,0\n"open,0\nb,1\n"c" d,1\n', encoding="utf-8")
    assert error_of(read_text_file, f).startswith(f"{f}:3: a quoted field starts on this line")


@pytest.mark.parametrize(
    "name,content,where",
    [
        ("l.csv", "text,label\na,0\ncaf\u00e9,1\n".encode("latin-1"), ":3: not UTF-8 text (invalid continuation byte at byte 4 "),
        ("l.tsv", "text\tlabel\na\t0\ncaf\u00e9\t1\n".encode("latin-1"), ":3: not UTF-8 text (invalid continuation byte at byte 4 "),
        ("l.json", '[{"text": "a", "label": 0},\n {"text": "\u00e9", "label": 1}]'.encode("latin-1"),
         ":2: not UTF-8 text (invalid continuation byte at byte 12 "),
    ],
)
def test_bytes_that_are_not_utf8_name_the_line_and_byte(tmp_path, name, content, where):
    (tmp_path / name).write_bytes(content)
    msg = error_of(read_text_file, tmp_path / name)
    assert msg.startswith(f"{tmp_path / name}{where}") and "data files must be UTF-8" in msg


def test_another_separator_in_a_one_field_header_is_named(tmp_path):
    (tmp_path / "s.csv").write_text("text;label\na;0\n", encoding="utf-8")
    assert "looks semicolon-separated; taskmix reads .csv as comma-separated values" in error_of(read_text_file, tmp_path / "s.csv")
    (tmp_path / "c.tsv").write_text("text,label\na,0\n", encoding="utf-8")
    assert "looks comma-separated; taskmix reads .tsv as tab-separated values: name the file .csv or set format: csv" in (
        error_of(load, tmp_path, {"train": "c.tsv"})
    )
    # a one-column file whose column is wanted is read as it is
    (tmp_path / "one.csv").write_text("a;b\nx;y\n", encoding="utf-8")
    assert read_text_file(tmp_path / "one.csv", columns=["a;b"]).columns == {"a;b": ["x;y"]}


def test_a_field_or_line_over_the_caps_is_refused_before_anything_reads_it_whole(tmp_path, monkeypatch):
    from taskmix.data import readers, text

    monkeypatch.setattr(readers, "MAX_TEXT_CHARS", 100)
    monkeypatch.setattr(text, "MAX_TEXT_CHARS", 100)
    long = "x" * 101
    write_jsonl(tmp_path / "a.jsonl", [{"text": "a", "label": 0}, {"text": long, "label": 1}])
    msg = error_of(load, tmp_path, {"train": "a.jsonl"})
    assert msg == f"{tmp_path / 'a.jsonl'}:2: column 'text' holds 101 characters, more than the 100 allowed per field; shorten or split the example"
    write_jsonl(tmp_path / "b.jsonl", [{"sentence": "a", "other": long, "label": 0}])  # a column not read is not checked
    assert load(tmp_path, {"train": "b.jsonl", "columns": {"text_a": "sentence"}}).train.x == [("a", None)]
    (tmp_path / "a.csv").write_text(f"text,label\na,0\n{long},1\n", encoding="utf-8")
    assert error_of(load, tmp_path, {"train": "a.csv"}).startswith(f"{tmp_path / 'a.csv'}:3: a field of more than 100 characters")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": ["a", "b"], "text2": ["c", long], "label": [0, 1]}), tmp_path / "a.parquet")
    msg = error_of(load, tmp_path, {"train": "a.parquet", "columns": {"text_b": "text2"}})
    assert msg.startswith(f"{tmp_path / 'a.parquet'}: row 2: column 'text2' holds 101 characters")

    monkeypatch.setattr(readers, "MAX_LINE_BYTES", 50)
    (tmp_path / "c.jsonl").write_text('{"text": "a", "label": 0}\n{"text": "' + "y" * 60 + '", "label": 0}\n')
    assert error_of(load, tmp_path, {"train": "c.jsonl"}).startswith(f"{tmp_path / 'c.jsonl'}:2: a line of more than 50 bytes")
    monkeypatch.setattr(readers, "MAX_TEXT_DATA_BYTES", 20)
    msg = error_of(load, tmp_path, {"train": "a.parquet"})
    assert msg.startswith(f"{tmp_path / 'a.parquet'}: ") and "bytes, more than the 20 bytes allowed for a text data file" in msg


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "loop"])
def test_a_data_file_that_is_not_a_regular_file_is_refused_without_reading(tmp_path, kind):
    import os

    f = tmp_path / "d.jsonl"
    if kind == "fifo":
        os.mkfifo(f)
    elif kind == "dev-zero":
        os.symlink("/dev/zero", f)
    else:
        os.symlink(tmp_path / "e.jsonl", f)
        os.symlink(f, tmp_path / "e.jsonl")
    msg = error_of(load, tmp_path, {"train": "d.jsonl"})
    expected = {"fifo": "is a FIFO, expected a regular file", "dev-zero": "is a character device, expected a regular file",
                "loop": "a symbolic link loop"}[kind]
    assert msg.startswith(f"{f}: {expected}")


def test_a_data_file_outside_the_config_folder_is_not_echoed(tmp_path):
    from taskmix.data import load_tasks

    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "cfg").mkdir()
    write_jsonl(tmp_path / "cfg" / "test.jsonl", [{"text": "a", "label": 0}, {"text": "b", "label": 1}])

    def refusal(train: str) -> str:
        cfg = make_cfg(tmp_path / "cfg", {"t": {"train": train, "test": "test.jsonl"}}, "t", model={"regime": "finetune"})
        return error_of(load_tasks, cfg)

    secret = "hunter2-the-secret"
    for name, body, shown in [
        ("a.jsonl", f'{{"text": "a", "label": ["{secret}"]}}\n', secret),  # a label that is a list: quoted when inside
        ("b.csv", f"text,{secret}\na,0\n", secret),  # a missing column: the header is listed when inside
        ("c.jsonl", f'{{"text": "a", "label": 0}}\n{{"{secret}": \n', "c.jsonl:2: not valid JSON"),  # bad JSON
    ]:
        (tmp_path / "elsewhere" / name).write_text(body, encoding="utf-8")
        msg = refusal(f"../elsewhere/{name}")
        assert secret not in msg and "details withheld" in msg and f"--data-dir {tmp_path / 'elsewhere'}" in msg
        cfg = make_cfg(tmp_path / "cfg", {"t": {"train": f"../elsewhere/{name}", "test": "test.jsonl"}}, "t",
                       model={"regime": "finetune"}, data_dir="../elsewhere")
        assert shown in error_of(load_tasks, cfg)  # data_dir names the folder: the details are shown
    # label names found in an outside training split are numbered but never listed in another file's message
    (tmp_path / "elsewhere" / "n.jsonl").write_text(f'{{"text": "a", "label": "{secret}"}}\n', encoding="utf-8")
    msg = refusal("../elsewhere/n.jsonl")
    assert secret not in msg and "test.jsonl:1" in msg and "label names of the training split" in msg
    # a refusal that quotes no content is shown as it is
    (tmp_path / "elsewhere" / "e.jsonl").write_text("")
    assert refusal("../elsewhere/e.jsonl") == f"{tmp_path / 'elsewhere' / 'e.jsonl'}: empty split (no rows)"


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=30), st.from_regex(r"-{0,3}[0-9\u00b2\u0663]{0,40}", fullmatch=True),
                 st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none()))
def test_any_label_value_is_an_index_or_a_one_line_data_error(value):
    from taskmix.data.presets import LabelMap

    for labels in (None, ["no", "yes"]):
        lm = LabelMap.from_spec(labels, None, "tasks.t")
        try:
            i = lm.encode(value, "f.jsonl:2", "label")
        except DataError as e:
            assert "\n" not in str(e) and len(str(e)) < 300 and str(e).startswith("f.jsonl:2: ")
        else:
            assert isinstance(i, int) and 0 <= i < (lm.num_labels or 2**20)


# ------------------------------------------------------------------ hub


@pytest.fixture
def fake_hub(monkeypatch):
    import datasets

    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    schemas = {
        ("nyu-mll/glue", "rte"): (["sentence1", "sentence2"], 2),
        ("nyu-mll/glue", "mnli"): (["premise", "hypothesis"], 3),
        ("facebook/xnli", "sw"): (["premise", "hypothesis"], 3),
    }

    def fake_load_dataset(path, name=None, *args, split=None, **kwargs):
        calls.append(((path, name, *args), {"split": split, **kwargs}))
        cols, k = schemas[(path, name)]
        rows = fake_rows(cols, 5, k, f"{name}-{split}")
        return datasets.Dataset.from_list(rows)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    return calls


def test_hub_branch_glue(tmp_path, fake_hub):
    task = load(tmp_path, {"preset": "glue/rte"}, name="rte")
    assert [(a, k["split"]) for a, k in fake_hub] == [(("nyu-mll/glue", "rte"), "train"), (("nyu-mll/glue", "rte"), "validation")]
    assert task.train.x[0] == ("rte-train sentence1 number 0", "rte-train sentence2 number 0")
    assert task.meta["sources"]["validation"] == "hf://nyu-mll/glue/rte/validation"


def test_hub_branch_xnli_loads_test(tmp_path, fake_hub):
    task = load(tmp_path, {"preset": "xnli/sw"}, name="sw")
    assert [(a, k["split"]) for a, k in fake_hub] == [
        (("facebook/xnli", "sw"), "train"),
        (("facebook/xnli", "sw"), "validation"),
        (("facebook/xnli", "sw"), "test"),
    ]
    assert task.report_split_name == "test" and task.test.x[0][0] == "sw-test premise number 0"


def test_hub_branch_auxiliary_and_mnli_split_names(tmp_path, fake_hub):
    cfg = make_cfg(tmp_path, {"rte": {"preset": "glue/rte"}, "mnli": {"preset": "glue/mnli"}}, "rte")
    load_text_task("mnli", cfg.tasks["mnli"], cfg)
    assert [(a, k["split"]) for a, k in fake_hub] == [(("nyu-mll/glue", "mnli"), "train")]
    fake_hub.clear()
    load(tmp_path, {"preset": "glue/mnli"}, name="mnli")
    assert [k["split"] for _, k in fake_hub] == ["train", "validation_matched"]


def test_hub_failure_is_one_clear_line(tmp_path, monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'nyu-mll/glue' on the Hub (LocalEntryNotFoundError)\nmore detail")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    msg = error_of(load, tmp_path, {"preset": "glue/rte"})
    assert "nyu-mll/glue[rte] split 'train'" in msg and "ConnectionError" in msg and "data_dir" in msg


# ------------------------------------------------------------------ regimes


def test_frozen_regime_gives_features_of_one_size_for_pair_and_single_tasks(tmp_path):
    write_jsonl(tmp_path / "d/glue/rte/train.jsonl", fake_rows(["sentence1", "sentence2"], 5, 2, "r"))
    write_jsonl(tmp_path / "d/glue/rte/validation.jsonl", fake_rows(["sentence1", "sentence2"], 3, 2, "rv"))
    write_jsonl(tmp_path / "d/glue/cola/train.jsonl", fake_rows(["sentence"], 4, 2, "c"))
    cfg = make_cfg(tmp_path, {"rte": {"preset": "glue/rte"}, "cola": {"preset": "glue/cola"}}, "rte", data_dir="d")
    enc = SentenceEncoder("fake", cache_dir=tmp_path / "cache", backend=FakeBackend())
    tasks = load_text_tasks(cfg, enc)
    assert list(tasks) == ["rte", "cola"]
    for t in tasks.values():
        assert t.train.x.dtype == np.float32 and t.dim == 24
        assert t.meta["encoder"] == "fake:v1" and t.meta["pair"] == "concat"
    assert tasks["rte"].validation.x.shape == (3, 24)
    # the texts behind the features: the first rte row is the pair (sentence1 0, sentence2 0)
    u, v = enc.encode(["r sentence1 number 0", "r sentence2 number 0"])
    np.testing.assert_allclose(tasks["rte"].train.x[0], np.concatenate([u, v, np.abs(u - v), u * v]))


def test_finetune_regime_keeps_text(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"text": "a", "label": 0}, {"text": "b", "label": 1}])
    cfg = make_cfg(tmp_path, {"t": {"train": "a.jsonl"}}, "t", model={"regime": "finetune"})
    tasks = load_text_tasks(cfg)
    assert list(tasks["t"].train.x) == [("a", None), ("b", None)] and tasks["t"].dim is None


# ------------------------------------------------------------------ real data


def _label_counts(split) -> dict[int, int]:
    return dict(sorted(Counter(split.y.tolist()).items()))


@needs_shared
def test_shipped_configs_validate_and_read_the_real_data():
    expected = {
        "glue/rte_mnli.yaml": ("rte", "glue/rte", "mnli", "per_task", (2490, 277, None), 9000),
        "glue/rte_qnli.yaml": ("rte", "glue/rte", "qnli", "per_task", (2490, 277, None), 5463),
        "glue/mrpc_mnli.yaml": ("mrpc", "glue/mrpc", "mnli", "per_task", (3668, 408, None), 9000),
        "glue/mrpc_qnli.yaml": ("mrpc", "glue/mrpc", "qnli", "per_task", (3668, 408, None), 5463),
        "xnli/sw.yaml": ("sw", "xnli/sw", "mnli", "shared", (9000, 2490, 5010), 9000),
    }
    for rel, (target, preset, aux, heads, sizes, aux_rows) in expected.items():
        cfg = load_config(REPO / "configs" / rel)
        assert cfg.target == target and list(cfg.tasks) == [target, aux] and cfg.model.heads == heads
        assert cfg.tasks[target].preset == preset and cfg.model.regime == "frozen"
        assert Path(cfg.resolve(cfg.data_dir)).resolve() == SHARED.resolve()
        t = load_text_task(target, cfg.tasks[target], cfg)
        got = tuple(len(s) if s is not None else None for s in (t.train, t.validation, t.test))
        assert got == sizes, rel
        a = load_text_task(aux, cfg.tasks[aux], cfg)
        assert len(a.train) == aux_rows and a.validation is None
    # label counts as in MANIFEST.tsv
    cfg = load_config(REPO / "configs/glue/rte_mnli.yaml")
    rte = load_text_task("rte", cfg.tasks["rte"], cfg)
    assert _label_counts(rte.train) == {0: 1249, 1: 1241} and _label_counts(rte.validation) == {0: 146, 1: 131}
    cfg = load_config(REPO / "configs/xnli/sw.yaml")
    sw = load_text_task("sw", cfg.tasks["sw"], cfg)
    assert _label_counts(sw.test) == {0: 1670, 1: 1670, 2: 1670}
    assert sw.label_names == ("entailment", "neutral", "contradiction")


@needs_shared
def test_data_dir_override_on_the_command_line(tmp_path):
    cfg = load_config(REPO / "configs/glue/rte_mnli.yaml", [f"data_dir={tmp_path}"])
    msg = error_of(load_text_task, "rte", cfg.tasks["rte"], cfg)
    assert str(tmp_path / "glue" / "rte") in msg and "no train file" in msg
