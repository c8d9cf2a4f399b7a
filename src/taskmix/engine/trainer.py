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
from ..errors import TrainingError, state_int, state_keys
from ..replay.sampler import TaskSampler
from ..schedule import Schedule
from .models import ByteLM, MultiTaskModel, build_lm_model, build_model, build_optimizer
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
        self.lm = cfg.model.regime == "lm"  # a byte-level causal language model over windows of bytes
        self._mlp_trunk = trunk is None and cfg.model.regime not in ("finetune", "lm")  # every step updates all its weights
        if trunk is None and cfg.model.regime == "finetune":  # a transformer trained end to end
            trunk = TransformerTrunk.from_config(cfg.encoder, cfg)
        dims = {t.dim for t in self.tasks}
        in_dim = next(iter(dims)) if len(dims) == 1 else None
        if self.lm:
            self.model: MultiTaskModel = build_lm_model(cfg.model, len(self.tasks)).to(self.device)
        else:
            self.model = build_model(cfg.model, in_dim, [cast(int, t.num_labels) for t in self.tasks], trunk).to(self.device)
        self.optimizer = build_optimizer(cfg.model, self.model.parameters())
        self.step = 0
        self.features = all(isinstance(t.train.x, np.ndarray) for t in self.tasks)
        sizes = [t.n_train for t in self.tasks]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        if self.features:
            x = np.concatenate([t.train.x for t in self.tasks])
            self._x = torch.from_numpy(x.astype(np.int64 if self.lm else np.float32)).to(self.device)
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
            return torch.from_numpy(split.x.astype(np.int64 if self.lm else np.float32, copy=False)).to(self.device)
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
    def lm_evaluate(self, split: Split) -> dict[str, float]:
        """Language-modelling regime: next-byte ``loss`` (mean negative log-likelihood per predicted byte, nats),
        ``bits_per_byte`` (the same in bits: ``loss / ln 2``) and top-1 next-byte ``accuracy`` on ``split``'s windows."""
        self.model.eval()
        lm = cast(ByteLM, self.model)
        bs = max(1, self.cfg.train.eval_batch_size // max(1, split.x.shape[1]))
        x_all = self.split_inputs(split)
        nll, correct, n = 0.0, 0, 0
        for i in range(0, len(split), bs):
            x = x_all[i : i + bs]
            logits = lm.logits(x, 0)
            nll += float(torch.nn.functional.cross_entropy(logits.transpose(1, 2), x[:, 1:], reduction="none").double().sum())
            correct += int((logits.argmax(-1) == x[:, 1:]).sum())
            n += int(x[:, 1:].numel())
        return {"loss": nll / n, "bits_per_byte": nll / n / math.log(2), "accuracy": correct / n}

    @torch.no_grad()
    def predict(self, split: Split, task: int) -> tuple[np.ndarray, float]:
        """Predicted labels and mean cross-entropy on ``split`` under ``task``'s head (language-modelling regime:
        no labels, and the mean next-byte negative log-likelihood)."""
        if self.lm:
            return np.zeros(0, dtype=np.int64), self.lm_evaluate(split)["loss"]
        pred, losses = self.predict_rows(split, task)
        return pred, float(losses.sum()) / len(split)

    @torch.no_grad()
    def predict_rows(self, split: Split, task: int) -> tuple[np.ndarray, np.ndarray]:
        """Predicted labels and each row's cross-entropy (nats, float64) on ``split`` under ``task``'s head
        (language-modelling regime: neither, two empty arrays: its loss is per byte, not per row)."""
        if self.lm:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        self.model.eval()
        preds, losses = [], []
        bs = self.cfg.train.eval_batch_size
        x_all = self.split_inputs(split)
        y_all = torch.from_numpy(split.y).to(self.device)
        for i in range(0, len(split), bs):
            logits = self.model.logits(x_all[i : i + bs], task)
            y = y_all[i : i + bs]
            losses.append(torch.nn.functional.cross_entropy(logits, y, reduction="none").double().cpu().numpy())
            preds.append(logits.argmax(-1).cpu().numpy())
        return np.concatenate(preds), np.concatenate(losses)

    def evaluate(self, split: Split, task: int) -> dict[str, float]:
        """Accuracy, loss and macro-F1 of ``task``'s head on ``split`` (language-modelling regime:
        :meth:`lm_evaluate`'s loss, bits per byte and next-byte accuracy)."""
        if self.lm:
            return self.lm_evaluate(split)
        pred, loss = self.predict(split, task)
        k = cast(int, self.tasks[task].num_labels)
        return {"accuracy": metric_value("accuracy", split.y, pred, k), "loss": loss,
                "macro_f1": metric_value("macro_f1", split.y, pred, k)}

    def metric(self, split: Split, task: int) -> float:
        """The task's own metric (accuracy or macro-F1) on ``split``."""
        return self.evaluate(split, task)[self.tasks[task].metric]

    def metric_and_predictions(self, split: Split, task: int) -> tuple[float, np.ndarray]:
        """The task's own metric on ``split`` and the predicted labels it was computed from (one per row; none in
        the language-modelling regime, whose bits per byte come from probabilities, not labels)."""
        value, pred, _ = self.metric_rows(split, task)
        return value, pred

    def metric_rows(self, split: Split, task: int) -> tuple[float, np.ndarray, np.ndarray]:
        """:meth:`metric_and_predictions` and each row's cross-entropy (:meth:`predict_rows`), from one pass."""
        if self.lm:
            return self.lm_evaluate(split)["bits_per_byte"], np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        pred, losses = self.predict_rows(split, task)
        t = self.tasks[task]
        return metric_value(t.metric, split.y, pred, cast(int, t.num_labels)), pred, losses

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

    def check_state_dict(self, state: Any, where: str = "trainer") -> None:
        """Refuse (``ValueError`` naming the field) a state this trainer cannot continue from sanely.

        The model's tensors must have the names, shapes and dtypes of this model's and be finite; the optimiser's
        hyper-parameters must be the config's (``model.lr``, its decay at the saved step, betas, weight decay, ...:
        a checkpoint cannot change them), its moments shaped and typed like their parameters, finite (second
        moments non-negative), and its step counts whole numbers within the saved step (equal to it for the
        parameters every step updates).
        """
        state_keys(state, where, ("model", "optimizer", "step"))
        step = state_int(state["step"], f"{where}.step", 0, max(self.total_steps, self.step))
        _check_tensors(state["model"], self.model.state_dict(), f"{where}.model")
        fresh = self.optimizer.state_dict()
        opt = state_keys(state["optimizer"], f"{where}.optimizer", ("state", "param_groups"))
        groups = opt["param_groups"]
        if not isinstance(groups, list) or len(groups) != len(fresh["param_groups"]):
            raise ValueError(f"{where}.optimizer.param_groups: expected {len(fresh['param_groups'])} group(s)")
        decayed = self.cfg.model.lr_decay != "none" and step > 0
        for g, (got, want) in enumerate(zip(groups, fresh["param_groups"])):
            at = f"{where}.optimizer.param_groups[{g}]"
            state_keys(got, at, tuple(want))
            for key, value in want.items():
                if key == "lr" and decayed:
                    value = self.cfg.model.lr * self.lr_factor(step - 1)
                if not _same_value(got[key], value):
                    raise ValueError(f"{at}.{key}: {repr(got[key])[:40]} in the checkpoint, but this config gives "
                                     f"{repr(value)[:40]}")
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        # the parameters every step updates: the MLP trunk (and a shared head); a transformer may leave some unused
        shared = {id(p) for p in self.model.shared_parameters()} if self._mlp_trunk else set()
        moments = opt["state"]
        if not isinstance(moments, dict) or not all(type(k) is int and 0 <= k < len(params) for k in moments):
            raise ValueError(f"{where}.optimizer.state: expected a mapping from parameter indices 0..{len(params) - 1}")
        if step == 0 and moments:
            raise ValueError(f"{where}.optimizer.state: optimiser moments before the first step")
        missing = [i for i, p in enumerate(params) if id(p) in shared and i not in moments]
        if step > 0 and missing:  # every step updates the shared parameters
            raise ValueError(f"{where}.optimizer.state: no moments for parameter {missing[0]}, which every step updates")
        adam = isinstance(self.optimizer, (torch.optim.Adam, torch.optim.AdamW))
        for i, entry in moments.items():
            at = f"{where}.optimizer.state[{i}]"
            p = params[i]
            if adam:
                keys = ("step", "exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if fresh["param_groups"][0].get("amsgrad") else ())
            else:
                keys = ("momentum_buffer",)
            state_keys(entry, at, keys)
            for key in keys:
                t = entry[key]
                if key == "momentum_buffer" and t is None:
                    continue
                if not isinstance(t, torch.Tensor):
                    raise ValueError(f"{at}.{key}: expected a tensor, got {type(t).__name__}")
                if key == "step":
                    v = float(t) if t.dim() == 0 and t.is_floating_point() else math.nan
                    if not (math.isfinite(v) and v == int(v) and 1 <= v <= step and (id(p) not in shared or v == step)):
                        raise ValueError(f"{at}.step: expected the number of updates of this parameter "
                                         f"({step if id(p) in shared else f'1..{step}'}), got {repr(t.tolist())[:40]}")
                    continue
                if t.shape != p.shape or t.dtype != p.dtype:
                    raise ValueError(f"{at}.{key}: a {t.dtype} tensor of shape {tuple(t.shape)}, expected {p.dtype} {tuple(p.shape)}")
                square = key.endswith("exp_avg_sq")
                _check_values(t, f"{at}.{key}", _MAX_SQUARE if square else _MAX_VALUE)
                if square and bool((t < 0).any()):
                    raise ValueError(f"{at}.{key}: negative (a second moment is not)")

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict` (checked first: :meth:`check_state_dict`)."""
        self.check_state_dict(state)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])


def _same_value(a: Any, b: Any) -> bool:
    """Equal, and of the same types (``1`` is not ``True``, a list is not a tuple), recursively."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b))
    return bool(a == b)


def _check_tensors(got: Any, want: dict[str, torch.Tensor], where: str) -> None:
    """``got`` holds exactly ``want``'s tensor names, each with its shape and dtype, and finite values."""
    if not isinstance(got, dict) or list(got) != list(want):
        names = list(got)[:3] if isinstance(got, dict) else type(got).__name__
        raise ValueError(f"{where}: expected the tensors {list(want)[:3]}... of this model, got {str(names)[:80]}")
    for name, ref in want.items():
        t = got[name]
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{where}.{name}: expected a tensor, got {type(t).__name__}")
        if t.shape != ref.shape or t.dtype != ref.dtype:
            raise ValueError(f"{where}.{name}: a {t.dtype} tensor of shape {tuple(t.shape)}, expected {ref.dtype} {tuple(ref.shape)}")
        _check_values(t, f"{where}.{name}", _MAX_VALUE)


_MAX_VALUE = 1e18  # no weight or first moment of a run that trains finitely is this large
_MAX_SQUARE = _MAX_VALUE**2  # nor a second moment


def _check_values(t: torch.Tensor, where: str, bound: float) -> None:
    if t.is_floating_point() and t.numel():
        big = float(t.detach().abs().max())  # NaN propagates
        if not big <= bound:
            raise ValueError(f"{where}: {'not finite' if not math.isfinite(big) else f'holds {big:.3g}, beyond {bound:.0e}'}")


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
    land in ``extra``, e.g. the reward split, which model selection may use; with each split's predicted
    labels as ``extra["<name>_predictions"]`` and each row's cross-entropy as ``extra["<name>_losses"]``).
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
    extra: dict[str, Any] = {}
    for name, split in (eval_splits or {}).items():  # the metric, the predicted labels and each row's loss
        extra[name], extra[f"{name}_predictions"], extra[f"{name}_losses"] = trainer.metric_rows(split, target)
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
