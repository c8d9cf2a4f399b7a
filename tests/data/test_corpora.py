"""Corpora of the language-modelling regime: byte windows, deduplication, held-out text disjoint from training,
rows parallel to the target's held-out rows dropped, and a parallel XNLI split refused as auxiliary text."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from taskmix.config import config_from_dict
from taskmix.data import load_tasks
from taskmix.data.corpora import byte_windows, read_corpus
from taskmix.errors import ConfigError, DataError

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def _stream(windows: np.ndarray) -> str:
    """The text a split's windows cover (they overlap by one byte)."""
    return bytes(np.concatenate([windows[0], windows[1:, 1:].ravel()]).astype(np.uint8).tolist()).decode("utf-8", "replace")


def _cfg(base: Path, tasks: dict, target: str, **lm) -> object:
    lm = {"layers": 1, "width": 16, "heads": 2, "context": 8, "validation_sentences": 6, "test_sentences": 6} | lm
    return config_from_dict({"target": target, "data_dir": str(base), "tasks": tasks, "model": {"regime": "lm", "lm": lm},
                             "train": {"steps": 4, "batch_size": 2}, "search": {"meta_steps": 2}}, base_dir=str(base))


def test_byte_windows_predict_every_byte_after_the_first_exactly_once() -> None:
    sentences = ["héllo wörld", "ab", "a longer sentence here"]
    data = "\n".join(sentences).encode("utf-8")
    w = byte_windows(sentences, context=5)
    assert w.shape == ((len(data) - 1) // 5, 6)
    np.testing.assert_array_equal(w[:, 1:].ravel(), np.frombuffer(data, np.uint8)[1 : 1 + 5 * len(w)])
    np.testing.assert_array_equal(w[1:, 0], w[:-1, -1])  # consecutive windows share one byte
    assert byte_windows(["ab"], context=5).shape == (0, 6)


def test_read_corpus_cleans_and_deduplicates(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("one  two\n\n one two \nthree\tfour\nthree four\nfive\n", encoding="utf-8")
    assert read_corpus("a", tmp_path / "a.txt").sentences == ["one two", "three four", "five"]
    (tmp_path / "b.jsonl").write_text('{"text": "x y"}\n{"text": "x y"}\n{"text": "z"}\n', encoding="utf-8")
    assert read_corpus("b", tmp_path / "b.jsonl").sentences == ["x y", "z"]
    (tmp_path / "c.jsonl").write_text('{"body": "x"}\n', encoding="utf-8")
    with pytest.raises(DataError, match="'text'"):
        read_corpus("c", tmp_path / "c.jsonl")
    (tmp_path / "d.csv").write_text("x\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"\.txt file"):
        read_corpus("d", tmp_path / "d.csv")


def test_held_out_text_is_disjoint_from_every_training_corpus(tmp_path: Path) -> None:
    target = [f"target sentence number {i} ends here" for i in range(60)]
    (tmp_path / "t.txt").write_text("\n".join(target + target[:10]) + "\n", encoding="utf-8")  # duplicates too
    aux = [f"aux line {i}" for i in range(40)] + target  # an auxiliary that copies the target's text
    (tmp_path / "a.txt").write_text("\n".join(aux) + "\n", encoding="utf-8")
    cfg = _cfg(tmp_path, {"t": {"corpus": "t.txt", "max_train": 20}, "a": {"corpus": "a.txt"}}, "t")
    t, a = load_tasks(cfg)
    assert t.metric == a.metric == "bits_per_byte"
    found = {role: set(re.findall(r"number (\d+) ", _stream(getattr(t, role).x))) for role in ("train", "validation", "test")}
    assert found["test"] and found["validation"]
    assert not found["test"] & found["validation"] and not found["train"] & (found["test"] | found["validation"])
    assert t.meta["sentences"] == 20  # max_train counts sentences
    aux_numbers = set(re.findall(r"number (\d+) ", _stream(a.train.x)))
    assert not aux_numbers & (found["test"] | found["validation"])  # copies of held-out sentences dropped
    assert a.meta["duplicates_of_held_out_dropped"] == 12
    assert a.validation is None and a.test is None
    # a fixed data seed: the same splits whatever the run seed
    t2, _ = load_tasks(cfg.model_copy(update={"seed": 7}))
    np.testing.assert_array_equal(t2.test.x, t.test.x)


def _fake_xnli(root: Path, n: int = 40) -> None:
    """A miniature of the shared data: row i of every file is the 'translation' of row i (tagged with i)."""
    def write(rel: str, lang: str, kind: str) -> None:
        p = root / f"{rel}.jsonl"
        p.parent.mkdir(parents=True, exist_ok=True)
        rows = [{"premise": f"{lang} {kind} premise {i} .", "hypothesis": f"{lang} {kind} hypothesis {i} .", "label": i % 3}
                for i in range(n)]
        p.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")

    write("glue/mnli/train_9k", "en", "mt")
    for lang in ("sw", "tr"):
        write(f"xnli/{lang}/translate_train_9k", lang, "mt")
    for lang in ("sw", "th", "en"):
        write(f"xnli/{lang}/validation", lang, "val")
        write(f"xnli/{lang}/test", lang, "test")


def test_a_split_parallel_to_the_targets_test_text_is_refused(tmp_path: Path) -> None:
    _fake_xnli(tmp_path)
    tasks = {"sw": {"corpus": "lm/sw"}, "th": {"corpus": "lm/th/test"}}
    with pytest.raises(DataError, match=r"tasks\.th\.corpus: lm/th/test is XNLI test text, row-parallel"):
        load_tasks(_cfg(tmp_path, tasks, "sw"))
    # its validation text is not parallel to the test rows: allowed
    sw, th = load_tasks(_cfg(tmp_path, {"sw": {"corpus": "lm/sw"}, "th": {"corpus": "lm/th/validation"}}, "sw"))
    assert "sw test" in _stream(sw.test.x) and "sw mt" in _stream(sw.train.x)
    assert "th val" in _stream(th.train.x)
    with pytest.raises(ConfigError, match="unknown preset"):
        load_tasks(_cfg(tmp_path, {"sw": {"corpus": "lm/xx"}, "th": {"corpus": "lm/th"}}, "sw"))
    with pytest.raises(ConfigError, match="sources"):
        load_tasks(_cfg(tmp_path, {"sw": {"corpus": "lm/sw/test2"}, "th": {"corpus": "lm/th"}}, "sw"))


def test_rows_parallel_to_the_targets_held_out_rows_are_dropped(tmp_path: Path) -> None:
    _fake_xnli(tmp_path)
    # tr has no XNLI test text: its test and validation rows are held out of translate-train (MNLI-9k rows)
    tr, en, sw = load_tasks(_cfg(tmp_path, {"tr": {"corpus": "lm/tr"}, "en": {"corpus": "lm/en"}, "sw": {"corpus": "lm/sw"}}, "tr"))
    held = {int(i) for role in ("validation", "test") for i in re.findall(r"(?:premise|hypothesis) (\d+) ", _stream(getattr(tr, role).x))}
    assert held
    for aux in (en, sw):
        rows = {int(i) for i in re.findall(r"(?:premise|hypothesis) (\d+) ", _stream(aux.train.x))}
        assert rows and not rows & held, aux.name
        assert aux.meta["parallel_dropped"] >= 2 * len(held) - 4  # two sentences a row (a window may cut one off)


def test_corpus_config_checks() -> None:
    with pytest.raises(ConfigError, match="regime: lm"):
        config_from_dict({"target": "a", "tasks": {"a": {"corpus": "a.txt"}}})
    with pytest.raises(ConfigError, match="every task needs a corpus"):
        config_from_dict({"target": "a", "tasks": {"a": {"corpus": "a.txt"}, "b": {"train": "b.csv"}}, "model": {"regime": "lm"}})
    with pytest.raises(ConfigError, match="bits_per_byte"):
        config_from_dict({"target": "a", "tasks": {"a": {"corpus": "a.txt", "metric": "accuracy"}}, "model": {"regime": "lm"}})
    with pytest.raises(ConfigError, match="multiple of heads"):
        config_from_dict({"target": "a", "tasks": {"a": {"corpus": "a.txt"}}, "model": {"regime": "lm", "lm": {"width": 30, "heads": 4}}})
    with pytest.raises(ConfigError, match="bits_per_byte scores a language model"):
        config_from_dict({"target": "a", "tasks": {"a": {"train": "a.csv", "metric": "bits_per_byte"}}})
    cfg = config_from_dict({"target": "a", "tasks": {"a": {"corpus": "a.txt"}}, "model": {"regime": "lm"}})
    assert cfg.regime == "lm" and cfg.model.lm is not None and cfg.tasks["a"].metric == "bits_per_byte"


@pytest.mark.skipif(not (SHARED / "MANIFEST.tsv").is_file(), reason="the shared XNLI/MNLI data is not here")
def test_real_swahili_target_is_clean() -> None:
    tasks = {"sw": {"corpus": "lm/sw", "max_train": 300}, "en": {"corpus": "lm/en"}, "th": {"corpus": "lm/th"}}
    sw, en, th = load_tasks(_cfg(SHARED, tasks, "sw", context=64, validation_sentences=100, test_sentences=300))
    test_text = set(_stream(sw.test.x).split("\n")[1:-1])  # whole sentences (the ends may be cut)
    for t in (sw, en, th):
        assert not test_text & set(_stream(t.train.x).split("\n")), t.name
    assert en.meta["parallel_dropped"] > 0 and th.meta["parallel_dropped"] == 0
    assert sw.meta["sentences"] == 300
