"""An ask/tell schedule search for the user's own training loop: :class:`Mixer`.

``taskmix search`` learns a schedule inside taskmix's trainer; a ``Mixer``
learns it on the model you train, in your loop::

    mixer = Mixer(["target", "helpful", "harmful"], target="target", meta_steps=10, steps_per_meta_step=50)
    for meta_step in range(mixer.meta_steps):
        for step in range(mixer.steps_per_meta_step):
            tasks = mixer.next_tasks(batch_size)            # task index of each example (paper's exploration)
            ...                                             # your forward / backward / optimiser step
        rewards = Mixer.alignment_rewards(target_loss, [loss_of(task) for task in ...], shared_params)
        mixer.end_meta_step(rewards)                        # the REINFORCE update
    mixer.schedule().save("schedule.json")

It is the same :class:`~taskmix.strategies.policy.Policy` (exploration, baseline,
normalisation, update) and the same gradient-alignment credit
(:func:`taskmix.runs.rewards.alignment`) that ``taskmix search`` uses; only the
training loop is yours.  A per-task reward (one number per task: gradient
alignment, a lookahead loss drop) credits every task; a scalar reward (the
paper's target accuracy) informs only through the realised task shares, as in
``taskmix search``.  ``state_dict()`` / ``load_state_dict()`` (JSON-serialisable)
resume the search bit for bit.  (``taskmix search`` does not yet run through
this class.)
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..schedule import Schedule
from ..strategies.policy import Policy
from .rewards import alignment

__all__ = ["Mixer"]

STATE_FORMAT = "taskmix.mixer/1"


class Mixer:
    """Learn a task schedule inside any training loop (ask: :meth:`next_tasks`; tell: :meth:`end_meta_step`).

    Args:
        tasks: task names, in the order task indices refer to.
        target: the task whose reward the search maximises.
        policy: ``time_invariant`` (one mixture) or ``time_variant`` (one per meta-step).
        meta_steps: policy updates; ``steps_per_meta_step``: training steps between
            them (recorded in the schedule; the Mixer does not count your steps).
        epsilon, gamma, lr, sgd_steps, baseline, baseline_decay, normalize,
            entropy, time_variant_init: as in the config's ``search`` section.
        seed: the task draws derive from it.
    """

    def __init__(
        self,
        tasks: Sequence[str],
        target: str,
        *,
        policy: str = "time_invariant",
        meta_steps: int = 10,
        steps_per_meta_step: int = 100,
        epsilon: float = 0.1,
        gamma: float = 0.2,
        lr: float = 0.02,
        sgd_steps: int = 100,
        baseline: str = "moving_average",
        baseline_decay: float = 0.9,
        normalize: bool = True,
        entropy: float = 0.0,
        time_variant_init: str = "previous",
        seed: int = 0,
    ) -> None:
        self.tasks = tuple(str(t) for t in tasks)
        if len(self.tasks) < 1 or len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"tasks must be distinct names, got {list(tasks)}")
        if target not in self.tasks:
            raise ValueError(f"target {target!r} is not among the tasks {list(self.tasks)}")
        if policy not in ("time_invariant", "time_variant"):
            raise ValueError(f"policy must be 'time_invariant' or 'time_variant', got {policy!r}")
        if time_variant_init not in ("previous", "uniform"):
            raise ValueError(f"time_variant_init must be 'previous' or 'uniform', got {time_variant_init!r}")
        for name, v in (("meta_steps", meta_steps), ("steps_per_meta_step", steps_per_meta_step), ("sgd_steps", sgd_steps)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        self.target = target
        self.policy_kind = policy
        self.meta_steps = int(meta_steps)
        self.steps_per_meta_step = int(steps_per_meta_step)
        self.time_variant_init = time_variant_init
        self.seed = int(seed)
        self.settings = {"epsilon": epsilon, "gamma": gamma, "lr": lr, "sgd_steps": sgd_steps, "baseline": baseline,
                         "baseline_decay": baseline_decay, "normalize": normalize, "entropy": entropy}
        self.policy = Policy(len(self.tasks), self.tasks.index(target),
                             n_rows=self.meta_steps if policy == "time_variant" else 1,
                             epsilon=epsilon, gamma=gamma, lr=lr, sgd_steps=sgd_steps, baseline=baseline,
                             baseline_decay=baseline_decay, normalize=normalize, entropy=entropy)
        self.rng = np.random.Generator(np.random.PCG64([self.seed, 0x313A]))
        self.meta_step = 0
        self.counts = np.zeros(len(self.tasks), dtype=np.int64)  # draws of the current meta-step
        self.log: list[dict[str, Any]] = []
        self._started = False  # the current time-variant row has been initialised

    # ------------------------------------------------------------------ ask
    @property
    def done(self) -> bool:
        return self.meta_step >= self.meta_steps

    def _row(self) -> int:
        return min(self.meta_step, self.meta_steps - 1) if self.policy.time_variant else 0

    def next_tasks(self, batch_size: int) -> np.ndarray:
        """The task index of each of the next ``batch_size`` examples (the paper's exploration rule)."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not self._started:
            if self.policy.time_variant and not self.done:
                self.policy.start_row(self._row(), self.time_variant_init)
            self._started = True
        tasks, _ = self.policy.sample(self.rng, self._row(), int(batch_size))
        self.counts += np.bincount(tasks, minlength=len(self.tasks))
        return tasks

    def next_task_names(self, batch_size: int) -> list[str]:
        return [self.tasks[i] for i in self.next_tasks(batch_size)]

    # ----------------------------------------------------------------- tell
    def end_meta_step(self, reward: float | Sequence[float] | Mapping[str, float]) -> dict[str, Any]:
        """Update the policy with this meta-step's reward; returns the log entry.

        ``reward``: one number (scalar, e.g. the target's reward-split accuracy)
        or one credit per task (a sequence in task order, or a mapping by name).
        """
        if self.done:
            raise ValueError(f"the search is over: all {self.meta_steps} meta-steps are done")
        if self.counts.sum() == 0:
            raise ValueError("no tasks were drawn in this meta-step; call next_tasks() first")
        if isinstance(reward, Mapping):
            missing = [t for t in self.tasks if t not in reward]
            if missing:
                raise ValueError(f"reward: missing tasks {missing}")
            r: Any = np.asarray([float(reward[t]) for t in self.tasks])
        else:
            r = np.asarray(reward, dtype=np.float64)
        per_task = r.ndim == 1
        if per_task and r.shape != (len(self.tasks),):
            raise ValueError(f"reward: expected one number or {len(self.tasks)} (one per task), got {r.shape[0]}")
        if r.ndim > 1:
            raise ValueError("reward: expected one number or one per task")
        row = self._row()
        shares = self.counts / self.counts.sum()
        # as taskmix search: a per-task reward credits every task (the exact policy gradient),
        # a scalar one informs only through the realised shares
        info = self.policy.update(row, self.policy.probs(row) if per_task else shares, r if per_task else float(r))
        entry = {"meta_step": self.meta_step, "step": (self.meta_step + 1) * self.steps_per_meta_step, "row": row,
                 "realised": shares.tolist(), **info}
        self.log.append(entry)
        self.meta_step += 1
        self.counts[:] = 0
        self._started = False
        return entry

    @staticmethod
    def alignment_rewards(target_loss: Any, task_losses: Sequence[Any], params: Sequence[Any],
                          similarity: str = "dot") -> list[float]:
        """Per-task gradient-alignment credits from your model (what ``taskmix search`` computes by default).

        ``target_loss``: the target's loss on held-out (reward-split) data;
        ``task_losses``: each task's training loss, in task order; ``params``:
        the shared parameters.  Credit ``i`` is :func:`taskmix.runs.rewards.alignment`
        of task ``i``'s gradient with the target's.
        """
        import torch

        params = [p for p in params if p.requires_grad]

        def flat(loss: Any) -> torch.Tensor:
            grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
            return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params)])

        g_target = flat(target_loss)
        return [alignment(flat(loss), g_target, similarity) for loss in task_losses]

    # ------------------------------------------------------------- artifact
    def schedule(self) -> Schedule:
        """The learned schedule (the policy's weights without exploration), as ``taskmix search`` writes it."""
        return self.policy.to_schedule(list(self.tasks), self.steps_per_meta_step, {
            "method": f"learned_{self.policy_kind}", "source": "taskmix.Mixer", "target": self.target,
            "meta_steps": self.meta_steps, "meta_steps_done": self.meta_step, "seed": self.seed,
            "search_steps": self.meta_steps * self.steps_per_meta_step, **self.settings,
        })

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit for bit (JSON-serialisable)."""
        return {"format": STATE_FORMAT, "tasks": list(self.tasks), "target": self.target, "policy_kind": self.policy_kind,
                "meta_steps": self.meta_steps, "meta_step": self.meta_step, "counts": self.counts.tolist(),
                "started": self._started, "rng": self.rng.bit_generator.state, "policy": self.policy.state_dict(),
                "log": list(self.log)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if not isinstance(state, Mapping) or state.get("format") != STATE_FORMAT:
            raise ValueError(f"state: expected a Mixer state ({STATE_FORMAT!r})")
        for key, mine in (("tasks", list(self.tasks)), ("target", self.target), ("policy_kind", self.policy_kind),
                          ("meta_steps", self.meta_steps)):
            if state.get(key) != mine:
                raise ValueError(f"state: {key} is {state.get(key)!r}, but this Mixer has {mine!r}")
        self.policy.load_state_dict(state["policy"])
        self.rng.bit_generator.state = state["rng"]
        self.meta_step = int(state["meta_step"])
        self.counts = np.asarray(state["counts"], dtype=np.int64)
        self._started = bool(state["started"])
        self.log = list(state["log"])
