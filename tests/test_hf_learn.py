"""Learning a schedule during trainer.train(): realised proportions, learning direction, composition, rewards."""

from __future__ import annotations

import numpy as np
import pytest

transformers = pytest.importorskip("transformers")

import torch  # noqa: E402
from scipy.stats import chisquare  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import ConcatDataset, Dataset  # noqa: E402

from taskmix.hf.learn import MixerTrainer, MixerTrainerMixin  # noqa: E402
from taskmix.strategies import Mixer  # noqa: E402

DIM = 6


class RuleTask(Dataset):
    """Linear-rule binary task over R^DIM; ``sign=-1`` flips the target's rule (a harmful task)."""

    def __init__(self, n: int, w: np.ndarray, sign: float, seed: int, task_id: int):
        rng = np.random.default_rng(seed)
        self.x = torch.from_numpy(rng.standard_normal((n, DIM)).astype(np.float32))
        self.y = torch.from_numpy((sign * (self.x.numpy() @ w) > 0).astype(np.int64))
        self.task_id = task_id

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor | int]:
        return {"x": self.x[i], "labels": self.y[i], "task_id": self.task_id}


class Classifier(nn.Module):
    """One shared linear classifier; records the task of every training sample it sees."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(DIM, 2)
        self.seen: list[int] = []

    def forward(self, x: torch.Tensor, labels: torch.Tensor, task_id: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.training and torch.is_grad_enabled():
            self.seen.extend(task_id.tolist())
        logits = self.linear(x)
        return {"loss": nn.functional.cross_entropy(logits, labels), "logits": logits}


def _setup(tmp_path, **mixer_kw):
    w = np.random.default_rng(0).standard_normal(DIM)
    parts = [RuleTask(60, w, 1.0, 1, 0), RuleTask(400, w, 1.0, 2, 1), RuleTask(400, w, -1.0, 3, 2)]
    reward = RuleTask(64, w, 1.0, 4, 0)
    kw = dict(meta_steps=4, steps_per_meta_step=5, seed=0) | mixer_kw
    mixer = Mixer(["target", "helpful", "harmful"], target="target", **kw)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=32, max_steps=kw["meta_steps"] * kw["steps_per_meta_step"],
        learning_rate=0.05, report_to=[], use_cpu=True, logging_steps=1000, save_strategy="no", disable_tqdm=True,
        remove_unused_columns=False, dataloader_num_workers=0,
    )
    return mixer, parts, reward, args


def test_realised_task_proportions_follow_the_policy(tmp_path) -> None:
    mixer, parts, reward, args = _setup(tmp_path, lr=1e-9, meta_steps=2, steps_per_meta_step=10)  # the policy barely moves
    model = Classifier()
    trainer = MixerTrainer(model=model, args=args, train_dataset=ConcatDataset(parts), mixer=mixer,
                           task_sizes=[len(p) for p in parts], reward_dataset=reward)
    trainer.train()
    counts = np.bincount(model.seen, minlength=3)
    expected = mixer.policy.exploration_mixture(0)
    assert counts.sum() == 2 * 10 * 32
    assert chisquare(counts, expected * counts.sum()).pvalue > 1e-3
    assert mixer.done


def test_learns_helpful_over_harmful_with_the_trainers_loss(tmp_path) -> None:
    mixer, parts, reward, args = _setup(tmp_path, lr=0.3)
    trainer = MixerTrainer(model=Classifier(), args=args, train_dataset=ConcatDataset(parts), mixer=mixer,
                           task_sizes=[len(p) for p in parts], reward_dataset=reward)
    trainer.train()
    w = mixer.schedule().weights[0]
    assert w[1] > w[2], w
    assert any("taskmix_weight/helpful" in e for e in trainer.state.log_history)


def test_composes_with_another_trainer_subclass(tmp_path) -> None:
    class CountingTrainer(transformers.Trainer):
        """Stands in for TRL's trainers: its own compute_loss."""

        calls = 0

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            CountingTrainer.calls += 1
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    class Composed(MixerTrainerMixin, CountingTrainer):
        pass

    mixer, parts, reward, args = _setup(tmp_path, meta_steps=2, steps_per_meta_step=3)
    trainer = Composed(model=Classifier(), args=args, train_dataset=ConcatDataset(parts), mixer=mixer,
                       task_sizes=[len(p) for p in parts], reward_dataset=reward)
    trainer.train()
    assert mixer.done and CountingTrainer.calls >= 6 + 2 * 4  # training steps + (target + 3 tasks) per meta-step


def test_loss_reward_goes_through_evaluate(tmp_path) -> None:
    mixer, parts, reward, args = _setup(tmp_path, meta_steps=2, steps_per_meta_step=3)
    trainer = MixerTrainer(model=Classifier(), args=args, train_dataset=ConcatDataset(parts), mixer=mixer,
                           task_sizes=[len(p) for p in parts], reward_dataset=reward, reward="loss")
    trainer.train()
    assert mixer.done and all(r[0] < 0 for r in (e["rewards"] for e in mixer.log))
    with pytest.raises(ValueError, match="reward must be one of"):
        MixerTrainer(model=Classifier(), args=args, train_dataset=ConcatDataset(parts), mixer=mixer,
                     task_sizes=[len(p) for p in parts], reward_dataset=reward, reward="nope")
