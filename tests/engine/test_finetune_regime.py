"""The fine-tuning regime (``model.regime: finetune``, the packaged MiniLM trained end to end) on a tiny config.

A search, its replay, and a search interrupted after a meta-step and resumed from its checkpoint in a fresh
trainer, bit for bit as the uninterrupted one (model, optimiser moments, policy, log); and a comparison
killed after some cells and resumed (marked slow).  Seconds of CPU each on one thread: max_length 16, a few
dozen rows, a few steps.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

import taskmix.compare.runner as compare_mod
from taskmix.compare import run_compare
from taskmix.config import load_config
from taskmix.data import load_run_tasks
from taskmix.encoders.trunk import TransformerTrunk
from taskmix.runs import SearchRun, prepare_job, run_search_dir
from taskmix.runs.job import replay
from taskmix.schedule import Schedule
from taskmix.runs.checkpoint import decode_checkpoint, encode_checkpoint

WORDS = "cat dog bird fish tree rock river cloud sun moon star road city field lake hill".split()


def _pairs(rng: random.Random, n: int, labels: int) -> list[dict]:
    """Sentence pairs whose label is how many words the two sentences share (capped), so it is learnable."""
    rows = []
    for i in range(n):
        y = i % labels
        a = rng.sample(WORDS, 4)
        b = a[:y] + rng.sample([w for w in WORDS if w not in a], 4 - y)
        rows.append({"sentence1": " ".join(a), "sentence2": " ".join(b), "label": y})
    return rows


@pytest.fixture(scope="module")
def cfg_path(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("ft")
    rng = random.Random(0)
    for name, splits, labels in (("tgt", {"train": 24, "validation": 8}, 2), ("aux", {"train": 24}, 3)):
        for split, n in splits.items():
            (d / f"{name}_{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _pairs(rng, n, labels)))
    cols = "columns: {text_a: sentence1, text_b: sentence2, label: label}"
    (d / "ft.yaml").write_text(f"""
target: tgt
tasks:
  tgt: {{train: tgt_train.jsonl, validation: tgt_validation.jsonl, {cols}}}
  aux: {{train: aux_train.jsonl, {cols}}}
model: {{regime: finetune, lr: 1.0e-3, dropout: 0.1}}
encoder: {{model: minilm, max_length: 16, threads: 1, device: cpu}}
train: {{steps: 4, batch_size: 4, threads: 1, device: cpu}}
search: {{meta_steps: 2, reward: lookahead, probe_steps: 1, time_invariant_weights: average, horizon: 1.0,
          reward_fraction: 0.25}}
compare: {{methods: [uniform, learned_time_invariant]}}
""")
    return d / "ft.yaml"


@pytest.fixture(scope="module")
def setup(cfg_path):
    torch.set_num_threads(1)
    cfg = load_config(cfg_path)
    return cfg, load_run_tasks(cfg)


def _fresh(cfg, tasks) -> SearchRun:
    job = prepare_job(cfg, tasks, cfg.seed)
    return SearchRun(job.tasks, job.target, job.reward_split, cfg, cfg.seed)


def _logs(run: SearchRun) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "seconds"} for e in run.log]


def test_the_config_is_the_fine_tuning_regime_with_text_inputs(setup) -> None:
    cfg, tasks = setup
    # fine-tuned text keeps the library's search defaults (the text defaults are the frozen regime's): set here
    assert cfg.model.regime == "finetune" and cfg.regime == "features" and cfg.regime_defaults == ()
    assert [t.name for t in tasks] == ["tgt", "aux"] and all(t.dim is None for t in tasks)
    assert tasks[0].train.x[0][1] is not None  # pairs keep both sentences


def test_replay_is_deterministic_and_scores_the_held_out_reward_split(setup) -> None:
    cfg, tasks = setup
    job = prepare_job(cfg, tasks, cfg.seed)
    sched = Schedule(("tgt", "aux"), np.array([[0.25, 0.75]]))
    a, b = replay(job, sched), replay(job, sched)
    assert a.train_steps == b.train_steps == cfg.train.steps
    assert len(job.reward_split) == 6 and len(a.predictions) == 8  # a quarter of the target's 24 rows; validation
    assert a.test == b.test and a.extra["reward_split"] == b.extra["reward_split"]
    assert np.array_equal(a.predictions, b.predictions)


def test_search_interrupted_and_resumed_from_its_checkpoint_is_bit_identical(setup) -> None:
    cfg, tasks = setup
    full = _fresh(cfg, tasks)
    full.run()
    w = np.asarray(full.schedule().weights)
    assert w.shape == (1, 2) and np.all(w > 0) and np.isclose(w.sum(), 1.0)

    first = _fresh(cfg, tasks)
    first.step_meta()
    blob = encode_checkpoint({"state": first.state_dict()})  # the checkpoint format (JSON + safetensors)
    del first
    random.seed(123)  # as a new process: every global RNG elsewhere
    np.random.seed(123)
    torch.manual_seed(123)
    second = _fresh(cfg, tasks)
    assert isinstance(second.trainer.model.trunk, TransformerTrunk)
    pretrained = {k: v.clone() for k, v in second.trainer.model.trunk.encoder.state_dict().items()}
    second.load_state_dict(decode_checkpoint(blob)["state"])
    second.run()

    np.testing.assert_array_equal(second.schedule().weights, full.schedule().weights)
    assert _logs(second) == _logs(full)
    for (k, a), b in zip(second.trainer.model.state_dict().items(), full.trainer.model.state_dict().values()):
        assert torch.equal(a, b), k
    opt_a, opt_b = second.trainer.optimizer.state_dict()["state"], full.trainer.optimizer.state_dict()["state"]
    assert opt_a.keys() == opt_b.keys() and all(torch.equal(opt_a[i]["exp_avg_sq"], opt_b[i]["exp_avg_sq"]) for i in opt_a)
    assert second.policy.state_dict() == full.policy.state_dict()
    # the encoder itself was trained (end to end), not only the heads
    moved = full.trainer.model.trunk.encoder.state_dict()
    assert any(not torch.equal(moved[k], v) for k, v in pretrained.items() if v.is_floating_point())


@pytest.mark.slow
def test_search_dir_and_comparison_resume_after_a_kill(setup, tmp_path, monkeypatch) -> None:
    cfg, tasks = setup
    reference = run_search_dir(cfg, tasks, tmp_path / "ref").schedule
    assert run_search_dir(cfg, tasks, tmp_path / "ref", resume=True).schedule == reference

    full = run_compare(cfg, tasks, tmp_path / "full", seeds=2, progress=False)["results"]["rows"]
    real = compare_mod.run_method
    calls: list[tuple[str, int]] = []

    def killed_after_two(cfg, tasks, method, seed):
        if len(calls) == 2:
            raise KeyboardInterrupt  # as a kill after the second cell was recorded
        calls.append((method, seed))
        return real(cfg, tasks, method, seed)

    monkeypatch.setattr(compare_mod, "run_method", killed_after_two)
    with pytest.raises(KeyboardInterrupt):
        run_compare(cfg, tasks, tmp_path / "part", seeds=2, progress=False)
    assert len((tmp_path / "part" / "rows.jsonl").read_text().splitlines()) == 2
    ran: list[tuple[str, int]] = []

    def recorded(cfg, tasks, method, seed):
        ran.append((method, seed))
        return real(cfg, tasks, method, seed)

    monkeypatch.setattr(compare_mod, "run_method", recorded)
    resumed = run_compare(cfg, tasks, tmp_path / "part", seeds=2, resume=True, progress=False)["results"]["rows"]
    assert ran == [("uniform", 1), ("learned_time_invariant", 1)]  # only the unfinished cells
    strip = lambda rows: [(r["method"], r["seed"], r["test"], r["train_steps"]) for r in rows]  # noqa: E731
    assert strip(resumed) == strip(full)
