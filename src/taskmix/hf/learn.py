"""Learn a schedule *during* ``trainer.train()`` on the user's own Hugging Face model.

:class:`MixerTrainerMixin` goes in front of ``transformers.Trainer`` or any
subclass of it (TRL's ``SFTTrainer``, a custom trainer): the task of every
training sample is drawn by a :class:`~taskmix.strategies.Mixer` (the paper's
exploration over the learned policy), and every ``steps_per_meta_step``
optimiser steps the policy is updated from a reward computed through the
trainer's own code paths on the reward split (held out of training):

* ``reward="gradient_alignment"`` (default): per-task credit from the
  gradients of ``trainer.compute_loss`` on a reward-split batch and on one
  training batch of each task, over the model's trainable parameters;
* ``reward="loss"``: minus ``trainer.evaluate(reward_dataset)["eval_loss"]``;
* ``reward="accuracy"`` (the paper's): ``trainer.evaluate(...)`` with your
  ``compute_metrics`` returning ``accuracy``.

``train_dataset`` is the task datasets concatenated in the mixer's task order
(``datasets.concatenate_datasets``), ``task_sizes`` their lengths.  After
training, ``trainer.mixer.schedule()`` is the static schedule to save and
replay (:class:`taskmix.hf.ScheduleTrainer` replays it).

The data loader may draw a batch or two ahead of the optimiser: those draws
follow the policy in force when they were drawn, and count toward the
meta-step in which they were drawn.
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
import transformers
from torch.utils.data import Sampler

from ..replay.sampler import ExampleStreams, check_sizes, positive_int
from ..strategies import Mixer

__all__ = ["MixerCallback", "MixerSampler", "MixerTrainer", "MixerTrainerMixin"]

REWARDS = ("gradient_alignment", "loss", "accuracy")


class MixerSampler(Sampler[int]):
    """Indices into the concatenated task datasets; each global batch's tasks drawn by ``mixer`` when iterated."""

    def __init__(self, mixer: Mixer, task_sizes: Sequence[int], batch_size: int, num_steps: int, seed: int = 0):
        self.mixer = mixer
        self.sizes = check_sizes(task_sizes, mixer.schedule())
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)
        self.batch_size = positive_int("batch_size", batch_size)
        self.num_steps = positive_int("num_steps", num_steps)
        self.streams = ExampleStreams(self.sizes, seed=seed)

    def __len__(self) -> int:
        return self.num_steps * self.batch_size

    def __iter__(self) -> Iterator[int]:
        for _ in range(self.num_steps):
            tids = self.mixer.next_tasks(self.batch_size)
            yield from (self.offsets[tids] + self.streams.take_for(tids)).tolist()


class MixerCallback(transformers.TrainerCallback):
    """Ends a meta-step every ``mixer.steps_per_meta_step`` optimiser steps: reward, then policy update."""

    def __init__(self, trainer: "MixerTrainerMixin"):
        self.trainer = trainer

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """At a meta-step boundary, reward the mixer through the trainer and log its new weights."""
        mixer = self.trainer.mixer
        if mixer.done or state.global_step % mixer.steps_per_meta_step:
            return
        entry = self.trainer.reward_meta_step()
        state.log_history.append({"step": state.global_step, "taskmix_meta_step": entry["meta_step"],
                                  **{f"taskmix_weight/{t}": w for t, w in zip(mixer.tasks, entry["probs_after"])}})


class MixerTrainerMixin:
    """Put in front of ``transformers.Trainer`` (or a subclass) to learn the task schedule while training.

    Keyword args (besides the trainer's):
        mixer: the :class:`~taskmix.strategies.Mixer` (its tasks in ``train_dataset`` order).
        task_sizes: examples per task (a list in mixer order, or a mapping name -> size).
        reward_dataset: the target's reward split (held out of ``train_dataset``).
        reward: ``gradient_alignment`` (default), ``loss`` or ``accuracy``.
        probe_size: examples per batch of the gradient-alignment credit (default: the global batch).
    """

    mixer: Mixer

    def __init__(self, *args: Any, mixer: Mixer, task_sizes: Sequence[int] | Mapping[str, int], reward_dataset: Any,
                 reward: str = "gradient_alignment", probe_size: int | None = None, **kwargs: Any) -> None:
        if reward not in REWARDS:
            raise ValueError(f"reward must be one of {list(REWARDS)}, got {reward!r}")
        self.mixer = mixer
        self.task_sizes = check_sizes(task_sizes, mixer.schedule())
        self.reward_dataset = reward_dataset
        self.reward_kind = reward
        self.probe_size = probe_size
        super().__init__(*args, **kwargs)
        trainer: Any = self
        trainer.add_callback(MixerCallback(self))
        self.probe_rng = np.random.default_rng([mixer.seed, 0x960B])

    # ------------------------------------------------------------- sampling
    def _get_train_sampler(self, train_dataset: Any = None) -> MixerSampler:
        trainer: Any = self
        dataset = trainer.train_dataset if train_dataset is None else train_dataset
        if len(dataset) != sum(self.task_sizes):
            raise ValueError(f"train_dataset has {len(dataset)} examples, but task_sizes {self.task_sizes} sum to "
                             f"{sum(self.task_sizes)}; expected the task datasets concatenated in mixer task order")
        global_batch = trainer.get_total_train_batch_size(trainer.args)
        steps = trainer.args.max_steps if trainer.args.max_steps > 0 else max(1, math.ceil(len(dataset) / global_batch))
        return MixerSampler(self.mixer, self.task_sizes, global_batch, steps, seed=trainer.args.seed)

    # --------------------------------------------------------------- reward
    def _batch(self, dataset: Any, indices: Sequence[int] | np.ndarray) -> dict[str, Any]:
        trainer: Any = self
        features = [dataset[int(i)] for i in indices]
        return trainer._prepare_inputs(trainer.data_collator(features))

    def reward_meta_step(self) -> dict[str, Any]:
        """Compute this meta-step's reward through the trainer and update the mixer; the mixer's log entry."""
        trainer: Any = self
        if self.reward_kind != "gradient_alignment":
            metrics = trainer.evaluate(eval_dataset=self.reward_dataset, metric_key_prefix="taskmix_reward")
            key = "taskmix_reward_loss" if self.reward_kind == "loss" else "taskmix_reward_accuracy"
            if key not in metrics:
                raise ValueError(f"reward {self.reward_kind!r}: the evaluation returned no {key!r} "
                                 "(for accuracy, pass compute_metrics returning 'accuracy')")
            value = -float(metrics[key]) if self.reward_kind == "loss" else float(metrics[key])
            return self.mixer.end_meta_step(reward=value)
        model = trainer.model
        size = self.probe_size or trainer.get_total_train_batch_size(trainer.args)
        n_reward = len(self.reward_dataset)
        reward_idx = self.probe_rng.choice(n_reward, size=min(size, n_reward), replace=False)
        offsets = np.concatenate([[0], np.cumsum(self.task_sizes)[:-1]])
        train = trainer.train_dataset
        was_training = model.training
        rng_state = torch.get_rng_state()
        model.eval()  # no dropout noise in the credit
        try:
            entry = self.mixer.end_meta_step(
                params=[p for p in model.parameters() if p.requires_grad],
                target_loss=lambda: trainer.compute_loss(model, self._batch(self.reward_dataset, reward_idx)),
                task_loss=lambda i: trainer.compute_loss(model, self._batch(train, offsets[i] + self.probe_rng.choice(
                    self.task_sizes[i], size=min(size, self.task_sizes[i]), replace=False))),
            )
        finally:
            model.train(was_training)
            torch.set_rng_state(rng_state)
        return entry


class MixerTrainer(MixerTrainerMixin, transformers.Trainer):
    """``transformers.Trainer`` that learns its task schedule while it trains (see :class:`MixerTrainerMixin`)."""
