"""Learn a schedule inside your own training loop: an ask/tell search over the same policy and credit as ``taskmix search``.

:class:`Mixer` holds the policy (:class:`~taskmix.strategies.policy.Policy`:
softmax logits, the paper's exploration, the REINFORCE update) and the draw
stream; your loop owns the model, the optimiser and the data:

1. ``mixer.next_tasks(batch_size)`` -- the task of every sample of the next
   step, drawn with exploration (ε uniform, γ−ε the target, else the policy);
2. train on those samples with your own model;
3. every ``steps_per_meta_step`` steps (``mixer.meta_step_due``), hand the
   mixer a reward and call ``mixer.end_meta_step(...)``: per-task credits you
   computed, one scalar (the paper's: the target's accuracy on a reward split),
   or closures from which the mixer computes the default per-task credit,
   gradient alignment on your model's shared parameters
   (:meth:`Mixer.gradient_alignment`);
4. ``mixer.schedule()`` is the static :class:`~taskmix.schedule.Schedule` to
   save and replay; ``state_dict()`` / ``load_state_dict()`` resume it exactly.

>>> from taskmix.strategies import Mixer
>>> mixer = Mixer(["rte", "mnli"], target="rte", meta_steps=2, steps_per_meta_step=3, seed=0)
>>> while not mixer.done:
...     tasks = mixer.next_tasks(8)                      # train your model on these tasks' examples
...     if mixer.meta_step_due:
...         _ = mixer.end_meta_step(rewards=[0.0, 1.0])  # per-task credit: mnli helped rte
>>> w = mixer.schedule().weights[0]
>>> bool(w[1] > w[0])
True
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from ..config import Config
from ..errors import ConfigError, check_state_matches, state_int, state_keys, state_real, state_reals
from ..replay.sampler import check_generator_state
from ..schedule import Schedule, rule_weights
from .credit import alignment
from .base import softmax
from .base import bool_arg, choice_arg, int_arg, reals_arg
from .policy import Policy

__all__ = ["Mixer", "prior_mixture"]


def prior_mixture(name: str, tasks: Sequence[str], target: str, sizes: Mapping[str, int], cap: int = 2**15) -> np.ndarray:
    """The weights of ``search.prior`` (a rule's name) for ``tasks``; :class:`ConfigError` naming the field if the
    name is unknown or a task gets no weight (the policy starts from the prior's logits, so every weight must be > 0).

    >>> prior_mixture("proportional", ["ur", "mnli"], "ur", {"ur": 270, "mnli": 3000}).round(3).tolist()
    [0.083, 0.917]
    """
    w = rule_weights(name, tasks, target, sizes, cap, field="search.prior")
    empty = [t for t, v in zip(tasks, w) if not v > 0]
    if empty:
        raise ConfigError(f"search.prior: {name!r} gives {empty} no weight; the policy starts from the prior, so "
                          "every task needs a positive weight (e.g. uniform, proportional, temperature_2)")
    return w


class Mixer:
    """An ask/tell task-mixing search for a training loop you write.

    Args:
        tasks: task names, in the order your loop indexes them.
        target: the task whose performance the mixture serves.
        policy: ``time_invariant`` (one weight vector) or ``time_variant`` (one per meta-step).
        meta_steps: policy updates in the search.
        steps_per_meta_step: training steps between updates.
        epsilon, gamma: exploration: ε uniform, γ−ε the target, else the policy.
        lr, sgd_steps, baseline, baseline_decay, normalize, entropy: the REINFORCE
            update, as ``search.*`` in a config (:class:`~taskmix.strategies.policy.Policy`).
        shrink, prior_pull: the robust update (a credit within ``shrink`` standard errors
            does not move the policy; an L2 pull of the logits toward the prior).
        prior: the mixture the policy starts from and ``prior_pull`` pulls toward, one positive
            weight per task (default: uniform); ``from_config`` computes it from ``search.prior``.
        time_variant_init: ``previous`` (each row starts from the last) or ``uniform`` (from the prior).
        similarity: ``dot`` (default, as ``search.similarity``) or ``cosine`` for :meth:`gradient_alignment`.
        seed: seeds the draw stream.

    ``taskmix search`` is itself a user of this class (:class:`taskmix.runs.SearchRun` draws each
    meta-step with :meth:`draw` and updates with :meth:`end_meta_step`).
    """

    def __init__(
        self, tasks: Sequence[str], target: str, *, policy: str = "time_invariant", meta_steps: int = 10,
        steps_per_meta_step: int = 100, epsilon: float = 0.1, gamma: float = 0.2, lr: float = 0.02,
        sgd_steps: int = 100, baseline: str = "moving_average", baseline_decay: float = 0.9, normalize: bool = True,
        entropy: float = 0.0, shrink: float = 0.0, prior_pull: float = 0.0, time_variant_init: str = "previous",
        similarity: str = "dot", seed: int = 0, prior: Sequence[float] | np.ndarray | None = None,
    ):
        # every argument is checked here, at the call: TypeError for the wrong kind of value, ConfigError (a
        # ValueError) for one out of range, each naming the argument (bounds as the config's search.* fields)
        if isinstance(tasks, (str, bytes, Mapping)) or not isinstance(tasks, (Sequence, np.ndarray)):
            raise TypeError(f"tasks must be a list of task names, got {type(tasks).__name__}"
                            + (" (a string would be read as one task per character)" if isinstance(tasks, str) else ""))
        for i, t in enumerate(tasks):
            if not isinstance(t, str):
                raise TypeError(f"tasks[{i}] must be a task name (a string), got {_short(t)} ({type(t).__name__})")
        self.tasks = list(tasks)
        if len(set(self.tasks)) != len(self.tasks) or not self.tasks or not all(self.tasks):
            raise ConfigError(f"tasks: expected distinct, non-empty task names, got {str(self.tasks)[:120]}")
        if not isinstance(target, str):
            raise TypeError(f"target must be a task name (a string), got {_short(target)} ({type(target).__name__})")
        if target not in self.tasks:
            raise ConfigError(f"target: {target[:60]!r} is not among the tasks {str(self.tasks)[:120]}")
        if policy not in ("time_invariant", "time_variant"):
            raise ConfigError(f"policy: expected 'time_invariant' or 'time_variant', got {_short(policy)}")
        try:
            choice_arg("time_variant_init", time_variant_init, ("previous", "uniform"))
            choice_arg("similarity", similarity, ("dot", "cosine"))
            meta_steps = int_arg("meta_steps", meta_steps, 1, 10**6)
            steps_per_meta_step = int_arg("steps_per_meta_step", steps_per_meta_step, 1, 10**9)
            seed = int_arg("seed", seed, 0, 2**64 - 1)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        self.target = self.tasks.index(target)
        self.policy_kind = policy
        self.meta_steps = meta_steps
        self.steps_per_meta_step = steps_per_meta_step
        self.time_variant_init = time_variant_init
        self.similarity = similarity
        self.seed = seed
        try:
            self.policy = Policy(len(self.tasks), self.target, n_rows=meta_steps if policy == "time_variant" else 1,
                                 epsilon=epsilon, gamma=gamma, lr=lr, sgd_steps=sgd_steps, baseline=baseline,
                                 baseline_decay=baseline_decay, normalize=normalize, entropy=entropy, shrink=shrink,
                                 prior_pull=prior_pull, prior=prior)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        self.rng = np.random.Generator(np.random.PCG64([self.seed, 0xD4A7]))
        self.round = 0
        self.meta_step = 0
        self.step = 0  # training steps drawn in the current meta-step
        self.counts = np.zeros(len(self.tasks))
        self.log: list[dict[str, Any]] = []
        self._start_row()

    @classmethod
    def from_config(cls, cfg: Config, tasks: Sequence[str] | None = None, seed: int | None = None,
                    sizes: Mapping[str, int] | None = None) -> "Mixer":
        """A mixer with a config's ``search`` settings (and its tasks, target and seed unless given).

        ``sizes``: training examples per task, for a ``search.prior`` computed from them (``proportional``, ...).
        """
        if not isinstance(cfg, Config):
            raise TypeError(f"cfg must be a taskmix Config (load_config, builtin_config), got {type(cfg).__name__}")
        if sizes is not None and not isinstance(sizes, Mapping):
            raise TypeError(f"sizes must be a mapping task name -> training examples, got {type(sizes).__name__}")
        s = cfg.search
        names = list(tasks if tasks is not None else cfg.task_names())
        prior = None if s.prior == "uniform" else prior_mixture(s.prior, names, cfg.target, sizes or {}, cfg.compare.cap)
        return cls(names, cfg.target, policy=s.policy,
                   meta_steps=s.meta_steps, steps_per_meta_step=cfg.steps_per_meta_step, epsilon=s.epsilon,
                   gamma=s.gamma, lr=s.lr, sgd_steps=s.sgd_steps, baseline=s.baseline, baseline_decay=s.baseline_decay,
                   normalize=s.normalize, entropy=s.entropy, shrink=s.shrink, prior_pull=s.prior_pull,
                   time_variant_init=s.time_variant_init,
                   similarity=s.similarity, seed=cfg.seed if seed is None else seed, prior=prior)

    # ---------------------------------------------------------------- asking
    @property
    def row(self) -> int:
        """The policy row in force (the meta-step for a time-variant policy, else 0)."""
        return min(self.meta_step, self.meta_steps - 1) if self.policy.time_variant else 0

    @property
    def done(self) -> bool:
        """Whether every meta-step has been rewarded."""
        return self.meta_step >= self.meta_steps

    @property
    def meta_step_due(self) -> bool:
        """Whether ``steps_per_meta_step`` steps have been drawn since the last update."""
        return self.step >= self.steps_per_meta_step

    def _start_row(self) -> None:
        if self.policy.time_variant and not self.done and self.round == 0:  # later rounds revisit learned rows
            self.policy.start_row(self.row, self.time_variant_init)

    def next_round(self, seed: int) -> None:
        """Start another pass over the meta-steps (a new search round), keeping the policy; ``seed`` reseeds the draws."""
        if not self.done:
            raise RuntimeError(f"next_round before the round's last meta-step ({self.meta_step}/{self.meta_steps})")
        seed = int_arg("seed", seed, 0, 2**64 - 1)
        self.round += 1
        self.meta_step = 0
        self.step = 0
        self.counts[:] = 0
        self.rng = np.random.Generator(np.random.PCG64([seed, 0xD4A7]))

    def next_tasks(self, batch_size: int) -> np.ndarray:
        """The task index of each of the ``batch_size`` samples of the next training step (with exploration)."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        tids, _ = self.policy.sample(self.rng, self.row, int(batch_size))
        self.counts += np.bincount(tids, minlength=len(self.tasks))
        self.step += 1
        return tids

    def draw(self, steps: int, batch_size: int, per_batch: bool = False) -> np.ndarray:
        """The tasks of ``steps`` training steps at once, shape ``(steps, batch_size)`` (vectorised; with exploration).

        ``per_batch``: one task per step (every sample of a batch from it).  The policy is fixed within
        a meta-step, so drawing a meta-step at once is the same process as step by step (a different
        random stream from :meth:`next_tasks`).
        """
        steps = int_arg("steps", steps, 1, 10**9)
        batch_size = int_arg("batch_size", batch_size, 1, 2**27)
        if steps * batch_size > 2**27:
            raise ValueError(f"steps x batch_size must be at most 2^27 draws at once, got {steps} x {batch_size}")
        bool_arg("per_batch", per_batch)
        if per_batch:
            t1, _ = self.policy.sample(self.rng, self.row, steps)
            tids = np.repeat(t1, batch_size)
        else:
            tids, _ = self.policy.sample(self.rng, self.row, steps * batch_size)
        self.counts += np.bincount(tids, minlength=len(self.tasks))
        self.step += steps
        return tids.reshape(steps, batch_size)

    # ---------------------------------------------------------------- telling
    def gradient_alignment(
        self, params: Sequence[torch.nn.Parameter], target_loss: Callable[[], torch.Tensor],
        task_loss: Callable[[int], torch.Tensor],
    ) -> np.ndarray:
        """Per-task credit: how much a step on each task's loss lowers the target's reward-split loss.

        ``params``: your model's shared parameters; ``target_loss()``: the target's
        loss on its reward split (held out of training); ``task_loss(i)``: a
        training batch loss of task ``i``.  Gradients are taken with
        :func:`torch.autograd.grad`, so your optimiser's ``.grad`` buffers are untouched.
        """
        if isinstance(params, torch.Tensor) or not hasattr(params, "__iter__"):
            raise TypeError(f"params must be a sequence of parameters (e.g. list(model.parameters())), got "
                            f"{type(params).__name__}")
        params = list(params)
        bad = [i for i, p in enumerate(params) if not isinstance(p, torch.Tensor)]
        if bad:
            raise TypeError(f"params[{bad[0]}] must be a torch tensor (a parameter), got {type(params[bad[0]]).__name__}")
        for name, fn in (("target_loss", target_loss), ("task_loss", task_loss)):
            if not callable(fn):
                raise TypeError(f"{name} must be a callable returning a loss tensor, got {type(fn).__name__}")
        params = [p for p in params if p.requires_grad]
        if not params:
            raise ValueError("params: no parameter requires a gradient; pass the model's shared, trainable parameters")

        def flat(loss: torch.Tensor) -> torch.Tensor:
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params)])

        g_target = flat(target_loss())
        return np.asarray([alignment(g_target, flat(task_loss(i)), self.similarity) for i in range(len(self.tasks))])

    def end_meta_step(
        self, rewards: Sequence[float] | np.ndarray | None = None, *, reward: float | None = None,
        params: Sequence[torch.nn.Parameter] | None = None, target_loss: Callable[[], torch.Tensor] | None = None,
        task_loss: Callable[[int], torch.Tensor] | None = None, se: Sequence[float] | np.ndarray | None = None,
    ) -> dict[str, Any]:
        """Update the policy from this meta-step's credit; returns the log entry.

        Give exactly one of: ``rewards`` (one credit per task: the exact,
        all-action policy gradient), ``reward`` (one scalar, e.g. the target's
        reward-split accuracy, as in the paper: credited through the realised
        task shares), or ``params`` + ``target_loss`` + ``task_loss``
        (gradient alignment, computed here).  ``se``: each per-task credit's
        standard error, for the variance-aware update (``shrink``).
        """
        if self.done:
            raise RuntimeError("the search is finished: every meta-step has been rewarded")
        if self.counts.sum() == 0:
            raise RuntimeError("end_meta_step before any next_tasks call in this meta-step")
        given = [rewards is not None, reward is not None, target_loss is not None]
        if sum(given) != 1:
            raise ValueError("give exactly one of rewards=, reward= or params/target_loss/task_loss")
        shares = self.counts / self.counts.sum()
        if target_loss is not None:
            if params is None or task_loss is None:
                raise ValueError("gradient alignment needs params, target_loss and task_loss")
            rewards = self.gradient_alignment(params, target_loss, task_loss)
        if rewards is not None:
            if isinstance(rewards, (int, float, np.integer, np.floating)):
                raise TypeError(f"rewards must be {len(self.tasks)} per-task credits; give one scalar as reward=")
            credit = self.policy.rewards_arg(rewards)
            se_arr = None if se is None else reals_arg("se", se, len(self.tasks), lo=0.0)
            info = self.policy.update(self.row, self.policy.probs(self.row), credit, se=se_arr)
        else:
            if se is not None:
                raise ValueError("se: per-task standard errors go with rewards= (one credit per task), not reward=")
            if isinstance(reward, (bool, np.bool_)) or not isinstance(reward, (int, float, np.integer, np.floating)):
                raise TypeError(f"reward must be one real number (per-task credits go in rewards=), got "
                                f"{_short(reward)} ({type(reward).__name__})")
            info = self.policy.update(self.row, shares, self.policy.rewards_arg(reward, "reward")[0])
        entry = {"meta_step": self.meta_step, "row": self.row, "steps": self.step, "realised": shares.tolist(), **info}
        self.log.append(entry)
        self.meta_step += 1
        self.step = 0
        self.counts[:] = 0
        self._start_row()
        return entry

    # -------------------------------------------------------------- artifact
    def schedule(self, provenance: dict[str, Any] | None = None) -> Schedule:
        """The learned static schedule (one row, or one per meta-step), to save and replay anywhere."""
        prov = {"method": f"learned_{self.policy_kind}", "target": self.tasks[self.target], "learned_with": "Mixer",
                "meta_steps": self.meta_steps, "updates": self.meta_step, "seed": self.seed, **(provenance or {})}
        return self.policy.to_schedule(self.tasks, self.steps_per_meta_step, prov)

    def settings(self) -> dict[str, Any]:
        """The constructor arguments that define the search (besides the tasks, the policy kind and the seed):
        saved in :meth:`state_dict`, and a state saved with other settings is refused."""
        p = self.policy
        return {"target": self.tasks[self.target], "meta_steps": self.meta_steps,
                "steps_per_meta_step": self.steps_per_meta_step, "epsilon": p.epsilon, "gamma": p.gamma, "lr": p.lr,
                "sgd_steps": p.sgd_steps, "baseline": p.baseline_kind, "baseline_decay": p.baseline_decay,
                "normalize": p.normalize, "entropy": p.entropy, "shrink": p.shrink, "prior_pull": p.prior_pull,
                "time_variant_init": self.time_variant_init, "similarity": self.similarity}

    def check_settings(self, state: Any, where: str = "mixer") -> None:
        """Refuse (``ValueError`` naming the field) a state saved by a mixer with other :meth:`settings` (another
        target, more meta-steps, another exploration ...).  States written before the settings were saved have
        none; only their structure is checked then."""
        saved = state.get("settings") if isinstance(state, dict) else None
        if saved is None:
            return
        mine = self.settings()
        if not isinstance(saved, dict) or set(saved) != set(mine):
            raise ValueError(f"{where}.settings: expected the keys {sorted(mine)}")
        for key, v in mine.items():
            if saved[key] != v or (type(saved[key]) is bool) != (type(v) is bool):
                raise ValueError(f"{where}.settings.{key}: the state was saved by a mixer with {key}={_short(saved[key])}; "
                                 f"this mixer has {key}={_short(v)}")

    def state_dict(self) -> dict[str, Any]:
        """The whole search state, JSON-compatible: resume with :meth:`load_state_dict` and continue bit for bit."""
        return {"tasks": self.tasks, "policy_kind": self.policy_kind, "round": self.round, "meta_step": self.meta_step,
                "step": self.step, "settings": self.settings(),
                "counts": self.counts.tolist(), "log": self.log, "policy": self.policy.state_dict(),
                "rng": self.rng.bit_generator.state}

    _ENTRY_KEYS = ("meta_step", "row", "steps", "realised", "rewards", "advantages", "baseline", "probs_before", "probs_after")

    def check_state_dict(self, state: Any, where: str = "mixer", per_task: bool | None = None) -> None:
        """Refuse (``ValueError`` naming the field) a state this mixer cannot continue from exactly.

        Besides types, lengths and ranges, the state must agree with itself: the counters with the log, the
        policy's logits with the probabilities logged after its updates, its baseline and scale with a replay of
        the logged rewards (when ``per_task`` says how the rewards were given: one credit per task, or one
        scalar), the draw stream with the seed (round 0).
        """
        check_state_matches("mixer", state, tasks=self.tasks, policy_kind=self.policy_kind)
        state_keys(state, where, ("tasks", "policy_kind", "meta_step", "step", "counts", "log", "policy", "rng"),
                   ("round", "settings"))
        self.check_settings(state, where)
        n, ms = len(self.tasks), self.meta_steps
        rnd = state_int(state.get("round", 0), f"{where}.round", 0, 2**31)
        meta_step = state_int(state["meta_step"], f"{where}.meta_step", 0, ms)
        step = state_int(state["step"], f"{where}.step", 0, 2**53)
        counts = state_reals(state["counts"], f"{where}.counts", n, 0.0, 2.0**53)
        if any(c != int(c) for c in counts) or (sum(counts) > 0) != (step > 0):
            raise ValueError(f"{where}.counts: expected whole numbers of draws, none before the first step of a meta-step")
        log = state["log"]
        if not isinstance(log, list) or len(log) != rnd * ms + meta_step:
            got = f"{len(log)} entries" if isinstance(log, list) else type(log).__name__
            raise ValueError(f"{where}.log: expected {rnd * ms + meta_step} entries (round {rnd}, meta-step {meta_step}), got {got}")
        self.policy.check_state_dict(state["policy"], f"{where}.policy")
        if state["policy"]["updates"] != len(log):
            raise ValueError(f"{where}.policy.updates: {state['policy']['updates']} updates but {len(log)} logged")
        check_generator_state(state["rng"], f"{where}.rng",
                              np.random.Generator(np.random.PCG64([self.seed, 0xD4A7])) if rnd == 0 else None, window=None)
        tv, previous = self.policy.time_variant, self.time_variant_init == "previous"
        theta0 = self.policy.theta0
        current = [softmax(theta0).tolist()] * self.policy.logits.shape[0]  # each row's probabilities, replayed
        scratch = None
        if per_task is not None:
            p = self.policy
            scratch = Policy(n, p.target, baseline=p.baseline_kind, baseline_decay=p.baseline_decay, normalize=p.normalize)
        for i, e in enumerate(log):
            at = f"{where}.log[{i}]"
            state_keys(e, at, self._ENTRY_KEYS)
            m = i % ms
            row = m if tv else 0
            pos = (state_int(e["meta_step"], f"{at}.meta_step", 0, ms), state_int(e["row"], f"{at}.row", 0, ms))
            if pos != (m, row):
                raise ValueError(f"{at}: meta_step/row {pos[0]}/{pos[1]}, expected {m}/{row}")
            state_int(e["steps"], f"{at}.steps", 1, 2**53)
            realised = state_reals(e["realised"], f"{at}.realised", n, 0.0, 1.0)
            rewards = state_reals(e["rewards"], f"{at}.rewards", n)
            state_reals(e["advantages"], f"{at}.advantages", n)
            state_real(e["baseline"], f"{at}.baseline", none=True)
            before = state_reals(e["probs_before"], f"{at}.probs_before", n, 0.0, 1.0)
            after = state_reals(e["probs_after"], f"{at}.probs_after", n, 0.0, 1.0)
            if tv and previous and i < ms and row > 0:  # the row started from the previous one's logits
                current[row] = current[row - 1]
            if before != current[row]:
                raise ValueError(f"{at}.probs_before: not the policy's probabilities before this update")
            current[row] = after
            if scratch is not None:
                if not per_task and len(set(rewards)) > 1:
                    raise ValueError(f"{at}.rewards: a scalar reward logged as different per-task values")
                shares = np.asarray(before if per_task else realised, dtype=np.float64)
                if not shares.sum() > 0:
                    raise ValueError(f"{at}.realised: no draws")
                # as Policy.update gets them: the credit as given, or one scalar for every task (as logged)
                scratch.advantages(np.asarray(rewards, dtype=np.float64), shares / shares.sum())
                if e["baseline"] != scratch.baseline:
                    raise ValueError(f"{at}.baseline: {_short(e['baseline'])} is not the baseline the logged rewards give")
        row_now = min(meta_step, ms - 1) if tv else 0
        if tv and previous and rnd == 0 and meta_step < ms and row_now > 0:
            current[row_now] = current[row_now - 1]
        with np.errstate(over="ignore", invalid="ignore"):  # forged logits (+-1e308) overflow; they are refused below
            probs = softmax(np.asarray(state["policy"]["logits"], dtype=np.float64))
        for r, want in enumerate(current):
            if probs[r].tolist() != want:
                raise ValueError(f"{where}.policy.logits[{r}]: not the logits the logged updates leave")
        if scratch is not None:
            for key in ("baseline", "scale"):
                if state["policy"][key] != getattr(scratch, key):
                    raise ValueError(f"{where}.policy.{key}: {_short(state['policy'][key])} is not what the logged rewards give")

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (refused for other tasks or another policy kind, or when it does not pass
        :meth:`check_state_dict`)."""
        self.check_state_dict(state)
        self.round = int(state.get("round", 0))
        self.meta_step = int(state["meta_step"])
        self.step = int(state["step"])
        self.counts = np.asarray(state["counts"], dtype=np.float64)
        self.log = list(state["log"])
        self.policy.load_state_dict(state["policy"])
        self.rng.bit_generator.state = state["rng"]


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."

