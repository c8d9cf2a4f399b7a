"""The language-modelling regime end to end on a tiny byte-level GPT-2 (seconds): bits per byte, search, replay,
kill-and-resume, the lower-is-better direction in comparisons, and MixerTrainer on a causal LM."""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from taskmix.data import load_tasks  # noqa: E402
from taskmix.engine import Trainer, train_with_schedule  # noqa: E402
from taskmix.runs import SearchRun, prepare_job  # noqa: E402
from taskmix.runs.checkpoint import decode_checkpoint, encode_checkpoint  # noqa: E402
from taskmix.schedule import RULES, Schedule  # noqa: E402

SYLLABLES = ["ka", "ni", "wa", "tu", "me", "la", "zi", "po", "sa", "ku"]


def _sentences(rng: random.Random, syllables: list[str], n: int) -> list[str]:
    return [" ".join("".join(rng.choice(syllables) for _ in range(rng.randint(1, 3))) for _ in range(rng.randint(4, 9)))
            for _ in range(n)]


def write_corpora(root: Path) -> Path:
    """A target corpus, a near one (the target's syllables, mostly) and a far one (another alphabet); the config."""
    rng = random.Random(0)
    (root / "tgt.txt").write_text("\n".join(_sentences(rng, SYLLABLES, 200)) + "\n", encoding="utf-8")
    (root / "near.txt").write_text("\n".join(_sentences(rng, SYLLABLES[:8] + ["ba", "do"], 400)) + "\n", encoding="utf-8")
    far = _sentences(rng, ["xq", "zv", "qj", "wy"], 400)
    (root / "far.jsonl").write_text("".join(json.dumps({"text": s}) + "\n" for s in far), encoding="utf-8")
    cfg = root / "tiny.yaml"
    cfg.write_text(
        "target: tgt\n"
        "model: {regime: lm, lm: {layers: 1, width: 32, heads: 2, context: 16, validation_sentences: 30, "
        "test_sentences: 40}, lr: 3.0e-3}\n"
        "tasks:\n  tgt: {corpus: tgt.txt}\n  near: {corpus: near.txt}\n  far: {corpus: far.jsonl}\n"
        "train: {steps: 24, batch_size: 8, threads: 1}\nsearch: {meta_steps: 4}\ncompare: {oracle_step: 0.5}\n",
        encoding="utf-8")
    return cfg


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from taskmix.config import load_config

    root = tmp_path_factory.mktemp("lm")
    path = write_corpora(root)
    cfg = load_config(path)
    return path, cfg, load_tasks(cfg)


def test_a_uniform_byte_model_scores_eight_bits_per_byte(tiny) -> None:
    _, cfg, tasks = tiny
    tr = Trainer(tasks, cfg, seed=0)
    with torch.no_grad():  # zero logits for every byte: p = 1/256 each (GPT-2 ties its output to its embedding)
        tr.model.trunk.lm_head.weight.zero_()
    ev = tr.evaluate(tasks[0].test, 0)
    assert ev["bits_per_byte"] == pytest.approx(8.0, abs=1e-5)
    assert ev["loss"] == pytest.approx(math.log(256), abs=1e-5)
    # the training loss is the same quantity per window: mean next-byte NLL in nats
    x = tr.split_inputs(tasks[0].test)
    losses = tr.model.per_sample_loss(x, torch.zeros(len(x), dtype=torch.long), torch.zeros(len(x), dtype=torch.long))
    assert torch.allclose(losses, torch.full_like(losses, math.log(256)))
    assert tr.metric(tasks[0].test, 0) == ev["bits_per_byte"]


def test_training_lowers_bits_per_byte_and_replays_bit_for_bit(tiny) -> None:
    _, cfg, tasks = tiny
    sched = RULES.get("uniform")([t.name for t in tasks])
    a = train_with_schedule(tasks, 0, sched, cfg, seed=3, eval_splits={"validation": tasks[0].validation})
    b = train_with_schedule(tasks, 0, sched, cfg, seed=3, eval_splits={"validation": tasks[0].validation})
    assert a.metric == "bits_per_byte" and a.test < 8.0 and a.extra["validation"] < 8.0
    assert a.test == b.test and a.realised == b.realised  # a replay is deterministic
    assert len(a.predictions) == 0  # bits per byte come from probabilities, not labels


def _fresh(cfg, tasks) -> SearchRun:
    job = prepare_job(cfg, tasks, cfg.seed)
    return SearchRun(job.tasks, job.target, job.reward_split, cfg, cfg.seed)


@pytest.mark.parametrize("extra", [{}, {"reward": "lookahead", "probe_steps": 2}, {"reward": "accuracy", "policy": "time_variant"}],
                         ids=["gradient-alignment", "lookahead", "accuracy-time-variant"])
def test_search_state_round_trip_resumes_bit_for_bit(tiny, extra) -> None:
    _, cfg, tasks = tiny
    cfg = cfg.model_copy(update={"search": cfg.search.model_copy(update=extra)})
    full = _fresh(cfg, tasks)
    full.run()
    first = _fresh(cfg, tasks)
    for _ in range(2):
        first.step_meta()
    blob = encode_checkpoint({"state": first.state_dict()})
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    second = _fresh(cfg, tasks)
    second.load_state_dict(decode_checkpoint(blob)["state"])
    second.run()
    np.testing.assert_array_equal(second.schedule().weights, full.schedule().weights)
    for p, q in zip(second.trainer.model.state_dict().values(), full.trainer.model.state_dict().values()):
        assert torch.equal(p, q)
    if extra.get("reward") != "accuracy":  # per-task credit (a scalar reward cannot tell the tasks apart in 4 meta-steps)
        w = full.schedule().mean_weights()
        assert w[2] < w[1]  # the far corpus (another alphabet) gets less than the near one


@pytest.mark.slow  # three processes that import transformers: about 45 s on a shared core
def test_sigkill_then_resume_gives_the_same_schedule(tiny, tmp_path: Path) -> None:
    path, _, _ = tiny
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TASKMIX_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "taskmix.cli", "search", str(path), "-o", "train.steps=40", "-o", "search.meta_steps=8"]
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    subprocess.run([*args, "--out", str(ref)], check=True, env=env, capture_output=True)
    proc = subprocess.Popen([*args, "--out", str(killed)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list((killed / "checkpoints").glob("ckpt-000003*.ckpt")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and not (killed / "schedule.json").exists()
    subprocess.run([*args, "--out", str(killed), "--resume"], check=True, env=env, capture_output=True)
    assert json.loads((killed / "schedule.json").read_text()) == json.loads((ref / "schedule.json").read_text())


def test_the_lower_metric_wins_every_pick() -> None:
    from taskmix.compare.recommend import recommend
    from taskmix.compare.stats import format_table, summarize

    sched = {m: Schedule.from_weights(["a", "b"], w).to_dict() for m, w in
             (("uniform", [0.5, 0.5]), ("single_task", [1.0, 0.0]), ("learned_time_invariant", [0.7, 0.3]))}
    bpb = {"uniform": 3.0, "single_task": 3.5, "learned_time_invariant": 2.5}  # lower is better
    rows = [{"method": m, "seed": s, "test": v + 0.01 * s, "seconds": 1.0, "train_steps": 10, "evaluations": 1,
             "schedule": sched[m], "extra": {"reward_split": v + 0.01 * s + 0.001 * (s % 2)}}
            for m, v in bpb.items() for s in range(3)]
    summary = summarize(rows, metric="bits_per_byte")
    best = next(s for s in summary if s.get("best_baseline"))
    assert best["method"] == "uniform"  # not single_task, the highest
    assert [s["method"] for s in summary] == ["learned_time_invariant", "uniform", "single_task"]
    learned = next(s for s in summary if s["method"] == "learned_time_invariant")
    assert learned["diff_mean"] == pytest.approx(-0.5)
    assert "bits per byte (lower is better)" in format_table(summary, metric="bits_per_byte")
    kinds = {"uniform": "baseline", "single_task": "baseline", "learned_time_invariant": "learned"}
    rec = recommend(rows, kinds, metric="bits_per_byte", bootstrap=20)
    assert rec is not None and rec.best_rule == "uniform" and rec.source == "learned_time_invariant"
    assert rec.versus_rule is not None and rec.versus_rule["mean"] == pytest.approx(0.5)  # an advantage: 0.5 fewer bits
    assert "lower is better" in rec.text
    # accuracy keeps its direction
    assert next(s for s in summarize(rows, metric="accuracy") if s.get("best_baseline"))["method"] == "single_task"


def test_compare_end_to_end_reports_the_direction(tiny, tmp_path: Path) -> None:
    from taskmix.compare import run_compare

    _, cfg, tasks = tiny
    cfg = cfg.model_copy(update={"compare": cfg.compare.model_copy(update={"methods": ["single_task", "uniform", "learned_time_invariant"]})})
    res = run_compare(cfg, tasks, tmp_path / "cmp", seeds=2)
    rows = {(r["method"], r["seed"]): r["test"] for r in res["results"]["rows"]}
    means = {m: np.mean([rows[(m, s)] for s in (0, 1)]) for m in ("single_task", "uniform")}
    best = next(s for s in res["summary"] if s.get("best_baseline"))
    assert best["method"] == min(means, key=means.get)
    report = (tmp_path / "cmp" / "report.md").read_text()
    assert "bits per byte (lower is better)" in report
    again = run_compare(cfg, tasks, tmp_path / "cmp", seeds=2, resume=True)  # rows read back pass every check of a bits-per-byte row
    assert [r["test"] for r in again["results"]["rows"]] == [r["test"] for r in res["results"]["rows"]]


def test_mixer_trainer_trains_a_causal_lm_with_the_mixers_proportions(tiny, tmp_path: Path) -> None:
    import transformers
    from scipy.stats import chisquare
    from torch.utils.data import ConcatDataset, Dataset

    from taskmix.engine.models import build_lm_model
    from taskmix.hf.learn import MixerTrainer
    from taskmix.strategies import Mixer

    _, cfg, tasks = tiny
    seen: list[int] = []

    class Windows(Dataset):
        def __init__(self, x: np.ndarray, task: int, record: bool):
            self.x, self.task, self.record = torch.from_numpy(x), task, record

        def __len__(self) -> int:
            return len(self.x)

        def __getitem__(self, i: int) -> dict:
            if self.record:
                seen.append(self.task)
            return {"input_ids": self.x[i], "labels": self.x[i]}

    torch.manual_seed(0)
    model = build_lm_model(cfg.model, len(tasks)).trunk  # a GPT2LMHeadModel from a config: 256 byte ids
    assert isinstance(model, transformers.GPT2LMHeadModel)
    parts = [Windows(t.train.x, i, True) for i, t in enumerate(tasks)]
    mixer = Mixer([t.name for t in tasks], target="tgt", meta_steps=2, steps_per_meta_step=8, seed=0, lr=1e-9)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=16, max_steps=16, learning_rate=3e-3, report_to=[],
        use_cpu=True, logging_steps=1000, save_strategy="no", disable_tqdm=True, dataloader_num_workers=0)
    trainer = MixerTrainer(model=model, args=args, train_dataset=ConcatDataset(parts), mixer=mixer,
                           task_sizes=[len(p) for p in parts], reward_dataset=Windows(tasks[0].validation.x, 0, False),
                           reward="loss")
    before = trainer.evaluate(eval_dataset=Windows(tasks[0].validation.x, 0, False))["eval_loss"]
    trainer.train()
    after = trainer.evaluate(eval_dataset=Windows(tasks[0].validation.x, 0, False))["eval_loss"]
    counts = np.bincount(seen, minlength=len(tasks))
    assert counts.sum() == 16 * 16 and mixer.done
    assert chisquare(counts, mixer.policy.exploration_mixture(0) * counts.sum()).pvalue > 1e-3
    assert after < before  # it learned the target's bytes


def test_llama_architecture_trains_too(tiny) -> None:
    import transformers

    _, cfg, tasks = tiny
    lm = cfg.model.lm.model_copy(update={"arch": "llama"})
    cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"lm": lm})})
    tr = Trainer(tasks, cfg, seed=0)
    assert isinstance(tr.model.trunk, transformers.LlamaForCausalLM)
    x = tasks[0].validation
    before = tr.evaluate(x, 0)["bits_per_byte"]
    rng = np.random.default_rng(0)
    for _ in range(10):
        tr.train_step(np.zeros(8, dtype=np.int64), rng.choice(tasks[0].n_train, 8, replace=False))
    assert tr.evaluate(x, 0)["bits_per_byte"] < before
    state = tr.state_dict()  # the checkpoint's checks hold for a transformers model
    tr2 = Trainer(tasks, cfg, seed=1)
    tr2.load_state_dict(state)
    assert tr2.evaluate(x, 0) == tr.evaluate(x, 0)


def test_mixmin_mixes_every_corpus_by_its_next_byte_probabilities(tiny) -> None:
    """MixMin's generative case: one byte vocabulary, so no corpus is excluded; the convex fit of the per-corpus models'
    next-byte distributions is at least as good on the held-out target bytes as the best single corpus's model."""
    from taskmix.compare.methods import run_method

    _, cfg, tasks = tiny
    row = run_method(cfg, tasks, "mixmin", 0)
    ex = row["extra"]
    assert ex["excluded"] == [] and ex["proxy_runs"] == len(tasks)
    assert row["schedule"]["provenance"]["heads"] == "one byte vocabulary (language modelling)"
    w = np.asarray(row["schedule"]["weights"][0])
    assert w.shape == (len(tasks),) and w.sum() == pytest.approx(1.0) and np.all(w >= 0)
    assert ex["mixture_loss"] <= min(ex["source_loss"].values()) + 1e-9
    assert 0 < ex["mixture_loss"] < math.log(256) + 0.5  # nats per byte of trained byte models
