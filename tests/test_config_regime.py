"""One set of search defaults per regime, applied automatically, and said by `taskmix config show`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from taskmix.config import config_from_dict, load_config, resolved_yaml
from taskmix.config.schema import FEATURE_COMPARE_DEFAULTS, TEXT_COMPARE_DEFAULTS, TEXT_SEARCH_DEFAULTS


def _cfg(tmp_path: Path, train: str = "t.csv", **sections) -> object:
    raw = {"target": "t", "tasks": {"t": {"train": train, "test": train}, "a": {"train": train}}, **sections}
    return config_from_dict(raw, "c.yaml", tmp_path)


def test_text_tasks_through_a_frozen_encoder_get_the_text_defaults_for_every_unset_key(tmp_path):
    cfg = _cfg(tmp_path, search={"probe_steps": 7})
    assert cfg.regime == "text"
    assert cfg.search.reward == "lookahead" and cfg.search.horizon == 1.0 and cfg.search.time_invariant_weights == "average"
    assert cfg.search.probe_steps == 7  # set in the config: the config wins
    assert set(cfg.regime_defaults) == set(TEXT_SEARCH_DEFAULTS) - {"probe_steps"} | {"compare.incumbent"}
    assert cfg.compare.incumbent == TEXT_COMPARE_DEFAULTS["incumbent"] == "proportional"
    own = _cfg(tmp_path, compare={"incumbent": None})  # set in the config, even to null: the config wins
    assert own.compare.incumbent is None and "compare.incumbent" not in own.regime_defaults


@pytest.mark.parametrize("train, sections, why", [
    ("t.npz", {}, "feature (npz) tasks"),
    ("t.csv", {"model": {"regime": "finetune"}}, "fine-tuned text tasks"),
])
def test_features_and_fine_tuning_keep_the_library_search_defaults(tmp_path, train, sections, why):
    """Feature tasks in the frozen regime get target-only as the recommendation's incumbent (and nothing else);
    fine-tuning gets nothing (never screened)."""
    cfg = _cfg(tmp_path, train, **sections)
    frozen = "model" not in sections
    assert cfg.regime == "features" and cfg.regime_defaults == (("compare.incumbent",) if frozen else ())
    assert cfg.search.reward == "gradient_alignment" and cfg.search.horizon == 0.5
    assert cfg.compare.incumbent == ("single_task" if frozen else None)
    assert f"search defaults: features ({why})" in resolved_yaml(cfg)
    assert ("keeps compare.incumbent=single_task unless a mixture beats it" in resolved_yaml(cfg)) == frozen
    builtin = load_config(None)
    assert builtin.regime == "features" and builtin.search.reward == "gradient_alignment"
    # the built-in benchmark's own assignment (its shared heads) validates the config again: the key is still named
    assert builtin.compare.incumbent == "single_task" and builtin.regime_defaults == ("compare.incumbent",)
    own = _cfg(tmp_path, train, compare={"incumbent": None}, **sections)  # null in the config: the config wins
    assert own.compare.incumbent is None and own.regime_defaults == ()
    assert "weighs every candidate equally (compare.incumbent=null)" in resolved_yaml(own) or not frozen


def test_config_show_says_which_defaults_apply_and_the_resolved_config_loads_back_the_same(tmp_path):
    cfg = _cfg(tmp_path)
    text = resolved_yaml(cfg)
    assert "# search defaults: text (text tasks through a frozen encoder): reward=lookahead" in text
    assert "; compare.incumbent=proportional (measured on" in text
    (tmp_path / "resolved.yaml").write_text(text)
    again = load_config(tmp_path / "resolved.yaml")
    assert again.search == cfg.search and again.fingerprint() == cfg.fingerprint()
    assert again.regime_defaults == ()  # every key is explicit now
    assert "every key they cover is set in the config" in resolved_yaml(again)
    assert yaml.safe_load(text)["search"]["reward"] == "lookahead"


def test_in_memory_tasks_keep_the_library_defaults_and_text_formats_or_paths_do_not():
    """Tasks with no file and no preset (the Python API's in-memory tasks, the task families) are not text: they
    keep the defaults chosen on the families (a regression: they once got the text regime's lookahead)."""
    from taskmix.data.families import make_family

    fam = make_family(1000)
    assert fam.config.regime == "features" and fam.config.regime_defaults == ("compare.incumbent",)
    assert fam.config.search.reward == "gradient_alignment" and fam.config.search.horizon == 0.5
    mem = config_from_dict({"target": "t", "tasks": {"t": {}, "a": {}}}, "c.yaml", ".")
    assert mem.regime == "features"
    assert config_from_dict({"target": "t", "tasks": {"t": {"format": "csv"}, "a": {}}}, "c.yaml", ".").regime == "text"
    assert config_from_dict({"target": "t", "tasks": {"t": {"train": "t.tsv"}, "a": {}}}, "c.yaml", ".").regime == "text"


def test_each_classification_regime_gets_its_own_incumbent_and_config_show_names_the_language_modelling_regime(tmp_path):
    """compare.incumbent is proportional for text (*text-families-dev*) and target-only for feature tasks
    (*incumbent-target-dev*; proportional lost there, *families-wide-eval-2*); the LM regime was never screened."""
    for name in ("t.txt", "a.txt"):
        (tmp_path / name).write_text("some text\n")
    lm = config_from_dict({"target": "t", "model": {"regime": "lm"}, "tasks": {"t": {"corpus": "t.txt"}, "a": {"corpus": "a.txt"}}},
                          "c.yaml", tmp_path)
    assert lm.regime == "lm" and lm.compare.incumbent is None and lm.regime_defaults == ()
    assert "search defaults: language modelling (model.regime lm)" in resolved_yaml(lm)
    assert _cfg(tmp_path, "t.npz").compare.incumbent == FEATURE_COMPARE_DEFAULTS["incumbent"] == "single_task"
