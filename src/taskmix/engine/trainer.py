"""Training: one multi-task model trained with a sampler, and evaluated.

:class:`Trainer` owns the model, the optimiser and the tasks' training data
(stacked into one tensor for feature tasks, so a mixed batch is one
``index_select``).  :func:`train_with_schedule` is the plain "retrain with a
static schedule" run: sampler -> trainer -> metrics; the search drives a
:class:`Trainer` itself (see :mod:`taskmix.runs.search_run`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence, cast

import numpy as np
import torch

from ..config import Config
from ..data.tasks import Split, Task
from ..devices import resolve_device
from ..encoders.trunk import TransformerTrunk
from ..errors import TrainingError
from ..sampler import TaskSampler
from ..schedule import Schedule
from .models import MultiTaskModel, build_model, build_optimizer
from .parallel import LOCAL


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> float:
    """Macro-averaged F1 over ``k`` labels."""
    f1s = []
    for c in range(k):
        tp = np.sum((y_pred == c) & (y_true == c))
        fp = np.sum((y_pred == c) & (y_true != c))
        fn = np.sum((y_pred != c) & (y_true == c))
        if tp + fp + fn == 0:
            continue
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s)) if f1s else 0.0


def metric_value(metric: str, y_true: np.ndarray, y_pred: np.ndarray, k: int) -> float:
    """A task metric (``accuracy`` or ``macro_f1`` over ``k`` labels) of predictions ``y_pred``."""
    if metric == "accuracy":
        return float(np.mean(np.asarray(y_pred) == np.asarray(y_true)))
    if metric == "macro_f1":
        return macro_f1(np.asarray(y_true), np.asarray(y_pred), k)
    raise ValueError(f"unknown metric {metric!r}; expected 'accuracy' or 'macro_f1'")


class Trainer:
    """A multi-task model, its optimiser, and the tasks it trains on.

    Args:
        tasks: in schedule order.
        cfg: the run config (``model`` and ``train`` sections are used).
        seed: model initialisation seed.
        trunk: optional prebuilt trunk (fine-tuning regime).
    """

    dist = LOCAL  # data-parallel hooks (taskmix.engine.parallel); LOCAL: one process, no-ops

    def __init__(self, tasks: Sequence[Task], cfg: Config, seed: int, trunk: torch.nn.Module | None = None,
                 total_steps: int | None = None):
        self.tasks = list(tasks)
        self.cfg = cfg
        self.total_steps = int(total_steps or cfg.train.steps)  # the run's length, for model.lr_decay
        self.device = torch.device(resolve_device(cfg.train.device))
        torch.manual_seed(seed)
        if trunk is None and cfg.model.regime == "finetune":  # a transformer trained end to end
            trunk = TransformerTrunk.from_config(cfg.encoder, cfg)
        dims = {t.dim for t in self.tasks}
        in_dim = next(iter(dims)) if len(dims) == 1 else None
        self.model: MultiTaskModel = build_model(cfg.model, in_dim, [cast(int, t.num_labels) for t in self.tasks], trunk).to(self.device)
        self.optimizer = build_optimizer(cfg.model, self.model.parameters())
        self.step = 0
        self.features = all(isinstance(t.train.x, np.ndarray) for t in self.tasks)
        sizes = [t.n_train for t in self.tasks]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        if self.features:
            self._x = torch.from_numpy(np.concatenate([t.train.x for t in self.tasks]).astype(np.float32)).to(self.device)
        self._y = torch.from_numpy(np.concatenate([t.train.y for t in self.tasks])).to(self.device)
        self.last_losses = np.full(len(self.tasks), np.nan)

    # ---------------------------------------------------------------- batches
    def batch(self, task_ids: np.ndarray, example_ids: np.ndarray) -> tuple[Any, torch.Tensor, torch.Tensor]:
        """Inputs, labels and task ids of the examples ``example_ids`` of tasks ``task_ids``, on the device."""
        g = self.offsets[task_ids] + example_ids
        gi = torch.from_numpy(g).to(self.device)
        y = self._y.index_select(0, gi)
        if self.features:
            x: Any = self._x.index_select(0, gi)
        else:
            x = [self.tasks[t].train.x[e] for t, e in zip(task_ids.tolist(), example_ids.tolist())]
        return x, y, torch.from_numpy(task_ids).to(self.device)

    def split_inputs(self, split: Split) -> Any:
        """A split's inputs in the model's input form (a tensor of features, or the text pairs)."""
        if isinstance(split.x, np.ndarray):
            return torch.from_numpy(split.x.astype(np.float32, copy=False)).to(self.device)
        return list(split.x)

    # --------------------------------------------------------------- training
    def lr_factor(self, step: int) -> float:
        """The learning rate of training step ``step`` (0-based) over ``model.lr``: 1 when constant, else it
        decays from 1 at step 0 toward 0 at ``total_steps`` (linear: ``1 - s/T``; cosine: ``(1 + cos(pi s/T)) / 2``)."""
        frac = min(max(step / self.total_steps, 0.0), 1.0)
        kind = self.cfg.model.lr_decay
        if kind == "linear":
            return 1.0 - frac
        if kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * frac))
        return 1.0

    def train_step(self, task_ids: np.ndarray, example_ids: np.ndarray) -> float:
        """One optimiser step on a batch; returns the batch's mean loss (:class:`TrainingError` if non-finite)."""
        self.model.train()
        x, y, t = self.batch(task_ids, example_ids)
        losses = self.model.per_sample_loss(x, y, t)
        loss = losses.mean()
        self.dist.check_finite(loss, self.step)
        if not torch.isfinite(loss):
            bad = torch.unique(t[~torch.isfinite(losses)]).tolist() or torch.unique(t).tolist()
            names = [self.tasks[i].name for i in bad]
            raise TrainingError(f"training step {self.step}: loss is {loss.item()} (non-finite) on task(s) {names}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.dist.average_gradients(self.model.parameters())
        if self.cfg.model.lr_decay != "none":
            lr = self.cfg.model.lr * self.lr_factor(self.step)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
        self.optimizer.step()
        self.step += 1
        with torch.no_grad():
            sums = torch.zeros(len(self.tasks), device=losses.device).index_add_(0, t, losses.detach())
            counts = torch.bincount(t, minlength=len(self.tasks))
            sums, counts, value = self.dist.reduce_losses(sums, counts, loss)
            present = (counts > 0).cpu().numpy()
            self.last_losses[present] = (sums / counts.clamp(min=1)).cpu().numpy()[present]
        return value

    # ------------------------------------------------------------- evaluation
    @torch.no_grad()
    def predict(self, split: Split, task: int) -> tuple[np.ndarray, float]:
        """Predicted labels and mean cross-entropy on ``split`` under ``task``'s head."""
        self.model.eval()
        preds, loss_sum = [], 0.0
        bs = self.cfg.train.eval_batch_size
        x_all = self.split_inputs(split)
        y_all = torch.from_numpy(split.y).to(self.device)
        for i in range(0, len(split), bs):
            logits = self.model.logits(x_all[i : i + bs], task)
            y = y_all[i : i + bs]
            loss_sum += float(torch.nn.functional.cross_entropy(logits, y, reduction="sum"))
            preds.append(logits.argmax(-1).cpu().numpy())
        return np.concatenate(preds), loss_sum / len(split)

    def evaluate(self, split: Split, task: int) -> dict[str, float]:
        """Accuracy, loss and macro-F1 of ``task``'s head on ``split``."""
        pred, loss = self.predict(split, task)
        k = cast(int, self.tasks[task].num_labels)
        return {"accuracy": metric_value("accuracy", split.y, pred, k), "loss": loss,
                "macro_f1": metric_value("macro_f1", split.y, pred, k)}

    def metric(self, split: Split, task: int) -> float:
        """The task's own metric (accuracy or macro-F1) on ``split``."""
        return self.evaluate(split, task)[self.tasks[task].metric]

    def metric_and_predictions(self, split: Split, task: int) -> tuple[float, np.ndarray]:
        """The task's own metric on ``split`` and the predicted labels it was computed from (one per row)."""
        pred, _ = self.predict(split, task)
        t = self.tasks[task]
        return metric_value(t.metric, split.y, pred, cast(int, t.num_labels)), pred

    # ---------------------------------------------------------------- credit
    def flat_grad(self, x: Any, y: torch.Tensor, task_ids: torch.Tensor, params: Sequence[torch.nn.Parameter]) -> torch.Tensor:
        """Gradient of the mean loss w.r.t. ``params``, flattened (model left unchanged)."""
        self.model.train()
        loss = self.model.per_sample_loss(x, y, task_ids).mean()
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params)])

    # ------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """The complete state, for checkpoints; :meth:`load_state_dict` restores it exactly."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "step": self.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])


@dataclass
class TrainResult:
    """A finished training run: the reported metric, its split, realised task shares and cost."""

    metric: str
    test: float
    report_split: str
    seconds: float
    steps: int
    realised: list[float]
    final_train_loss: list[float]
    extra: dict[str, Any] = field(default_factory=dict)
    predictions: np.ndarray | None = field(default=None, repr=False)
    """the target's predicted label for every row of the report split (for intervals over its examples)"""

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-compatible values."""
        plain = {k: getattr(self, k) for k in ("metric", "test", "report_split", "seconds", "steps", "realised")}
        return {**plain, "final_train_loss": [None if not math.isfinite(v) else v for v in self.final_train_loss], **self.extra}


def train_with_schedule(
    tasks: Sequence[Task],
    target: int,
    schedule: Schedule,
    cfg: Config,
    seed: int,
    steps: int | None = None,
    trunk_factory: Callable[[], torch.nn.Module] | None = None,
    on_step: Callable[[int, Trainer], None] | None = None,
    eval_splits: dict[str, Split] | None = None,
) -> TrainResult:
    """Train a fresh model with a static schedule and report the target's metric.

    ``tasks`` must be in ``schedule.tasks`` order; the target's report split
    (test, else validation) is evaluated once, at the end.  ``eval_splits``:
    more of the target's splits to score the final model on (their metrics
    land in ``extra``, e.g. the reward split, which model selection may use).
    """
    if tuple(t.name for t in tasks) != schedule.tasks:
        schedule = schedule.restrict_to([t.name for t in tasks])
    steps = steps or cfg.train.steps
    t0 = time.perf_counter()
    trainer = Trainer(tasks, cfg, seed, trunk_factory() if trunk_factory else None, total_steps=steps)
    sampler = TaskSampler(schedule, cfg.train.batch_size, [t.n_train for t in tasks], seed=seed, per=cfg.train.per)
    counts = np.zeros(len(tasks))
    for _ in range(steps):
        tids, eids = sampler.next_batch()
        counts += np.bincount(tids, minlength=len(tasks))
        trainer.train_step(tids, eids)
        if on_step is not None:
            on_step(trainer.step, trainer)
    tgt = tasks[target]
    value, predictions = trainer.metric_and_predictions(tgt.report_split, target)
    extra = {name: trainer.metric(split, target) for name, split in (eval_splits or {}).items()}
    return TrainResult(
        metric=tgt.metric,
        test=value,
        report_split=tgt.report_split_name,
        seconds=time.perf_counter() - t0,
        steps=steps,
        realised=(counts / counts.sum()).tolist(),
        final_train_loss=trainer.last_losses.tolist(),
        extra=extra,
        predictions=predictions,
    )
