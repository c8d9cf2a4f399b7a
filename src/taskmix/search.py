"""Search: one training run in which the policy picks the tasks.

Data flow: tasks -> (policy <-> trainer) -> schedule.  At each step the
policy (with exploration) draws the task of every sample; at the end of each
meta-step a reward is computed on the *reward split* (carved from the
target's training data) and the policy takes a REINFORCE update.  The result
is a static :class:`~taskmix.schedule.Schedule`; the reported split is never
seen here.

:class:`SearchRun` holds every piece of state (model, optimiser, policy and
its baseline, all RNGs, the example streams, counters and the log) in
``state_dict()`` form, so a run can checkpoint at every meta-step and resume
bit for bit (:mod:`taskmix.checkpoint`).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .config import Config
from .distributed import LOCAL
from .policy import Policy
from .rewards import RewardContext, make_reward
from .sampler import ExampleStreams
from .schedule import Schedule
from .tasks import Split, Task
from .train import Trainer


@dataclass
class SearchResult:
    schedule: Schedule
    log: list[dict[str, Any]]
    seconds: float
    steps: int
    reward_evals: int
    extra: dict[str, Any] = field(default_factory=dict)


class SearchRun:
    """A resumable search.  ``run()`` goes to the end; ``step_meta()`` does one meta-step."""

    def __init__(
        self,
        tasks: Sequence[Task],
        target: int,
        reward_split: Split,
        cfg: Config,
        seed: int,
        trunk_factory: Callable[[], torch.nn.Module] | None = None,
        dist: Any = None,
    ):
        self.tasks = list(tasks)
        self.target = int(target)
        self.reward_split = reward_split
        self.cfg = cfg
        self.seed = int(seed)
        self.trunk_factory = trunk_factory
        self.dist = dist if dist is not None else LOCAL  # data parallel: taskmix.distributed
        s = cfg.search
        self.meta_steps = s.meta_steps
        self.spm = cfg.steps_per_meta_step
        self.policy = Policy(
            len(self.tasks),
            self.target,
            n_rows=self.meta_steps if s.policy == "time_variant" else 1,
            epsilon=s.epsilon,
            gamma=s.gamma,
            lr=s.lr,
            sgd_steps=s.sgd_steps,
            baseline=s.baseline,
            baseline_decay=s.baseline_decay,
            normalize=s.normalize,
            entropy=s.entropy,
        )
        self.reward = make_reward(s.reward, s)
        self.round = 0
        self.meta_step = 0  # within the round
        self.log: list[dict[str, Any]] = []
        self.seconds = 0.0
        self.total_steps = 0
        self.reward_evals = 0
        self._new_round()

    # ------------------------------------------------------------------ setup
    def _new_round(self) -> None:
        seed = self.seed + 1000 * self.round
        random.seed(seed)
        np.random.seed(seed % 2**32)
        self.trainer = Trainer(self.tasks, self.cfg, seed, self.trunk_factory() if self.trunk_factory else None)
        self.trainer.dist = self.dist
        self.draw_rng = np.random.Generator(np.random.PCG64([seed, 0xD4A7]))
        self.probe_rng = np.random.Generator(np.random.PCG64([seed, 0x960B]))
        self.streams = ExampleStreams([t.n_train for t in self.tasks], seed=seed)

    @property
    def done(self) -> bool:
        return self.round >= self.cfg.search.rounds

    def _row(self) -> int:
        return self.meta_step if self.policy.time_variant else 0

    # ---------------------------------------------------------------- running
    def step_meta(self) -> dict[str, Any]:
        """Train one meta-step with the policy, reward it, update the policy; return the log row."""
        t0 = time.perf_counter()
        row = self._row()
        if self.policy.time_variant and self.round == 0:
            self.policy.start_row(row, self.cfg.search.time_variant_init)
        n = len(self.tasks)
        counts = np.zeros(n)
        bs = self.cfg.train.batch_size
        per_batch = self.cfg.train.per == "batch"
        loss_sum = 0.0
        # The policy is fixed within a meta-step: draw its tasks and examples at once (vectorised).
        if per_batch:
            t1, _ = self.policy.sample(self.draw_rng, row, self.spm)
            all_tids = np.repeat(t1, bs)
        else:
            all_tids, _ = self.policy.sample(self.draw_rng, row, self.spm * bs)
        all_eids = self.streams.take_for(all_tids)
        counts += np.bincount(all_tids, minlength=n)
        tids_by_step = all_tids.reshape(self.spm, bs)
        eids_by_step = all_eids.reshape(self.spm, bs)
        for s in range(self.spm):
            loss_sum += self.trainer.train_step(*self.dist.shard(tids_by_step[s], eids_by_step[s]))
        self.total_steps += self.spm
        ctx = RewardContext(self.trainer, self.target, self.reward_split, bs, self.probe_rng, self.meta_step)
        rewards = self.dist.mean(self.reward(ctx))
        self.reward_evals += 1
        shares = counts / counts.sum()
        # A per-task reward credits every task, so the exact (all-action) policy
        # gradient applies; a scalar reward only informs through the draws.
        weights = self.policy.probs(row) if self.reward.per_task else shares
        info = self.policy.update(row, weights, rewards)
        reward_eval = self.trainer.evaluate(self.reward_split, self.target)
        dt = time.perf_counter() - t0
        self.seconds += dt
        entry = {
            "round": self.round,
            "meta_step": self.meta_step,
            "step": (self.meta_step + 1) * self.spm,
            "row": row,
            "realised": shares.tolist(),
            **info,
            "reward_split_accuracy": reward_eval["accuracy"],
            "reward_split_loss": reward_eval["loss"],
            "train_loss": loss_sum / self.spm,
            "task_train_loss": [None if not np.isfinite(v) else float(v) for v in self.trainer.last_losses],
            "seconds": dt,
        }
        self.log.append(entry)
        self.meta_step += 1
        if self.meta_step == self.meta_steps:
            self.meta_step = 0
            self.round += 1
            if not self.done:
                self._new_round()
        return entry

    def run(self, on_meta_step: Callable[["SearchRun", dict[str, Any]], None] | None = None) -> SearchResult:
        while not self.done:
            entry = self.step_meta()
            if on_meta_step is not None:
                on_meta_step(self, entry)
        return self.result()

    def schedule(self) -> Schedule:
        s = self.cfg.search
        return self.policy.to_schedule(
            [t.name for t in self.tasks],
            self.spm,
            {
                "method": f"learned_{s.policy}",
                "target": self.tasks[self.target].name,
                "reward": s.reward,
                "epsilon": s.epsilon,
                "gamma": s.gamma,
                "lr": s.lr,
                "sgd_steps": s.sgd_steps,
                "baseline": s.baseline,
                "meta_steps": self.meta_steps,
                "rounds": s.rounds,
                "seed": self.seed,
                "search_steps": self.total_steps,
            },
        )

    def result(self) -> SearchResult:
        return SearchResult(self.schedule(), list(self.log), self.seconds, self.total_steps, self.reward_evals)

    # ------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "meta_step": self.meta_step,
            "seconds": self.seconds,
            "total_steps": self.total_steps,
            "reward_evals": self.reward_evals,
            "log": self.log,
            "policy": self.policy.state_dict(),
            "trainer": self.trainer.state_dict(),
            "draw_rng": self.draw_rng.bit_generator.state,
            "probe_rng": self.probe_rng.bit_generator.state,
            "streams": self.streams.state_dict(),
            "last_losses": self.trainer.last_losses.tolist(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
            "numpy_rng": np.random.get_state(),
            "python_rng": random.getstate(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.round = int(state["round"])
        if self.round != 0 and not self.done:
            self._new_round()
        self.meta_step = int(state["meta_step"])
        self.seconds = float(state["seconds"])
        self.total_steps = int(state["total_steps"])
        self.reward_evals = int(state["reward_evals"])
        self.log = list(state["log"])
        self.policy.load_state_dict(state["policy"])
        self.trainer.load_state_dict(state["trainer"])
        self.draw_rng.bit_generator.state = state["draw_rng"]
        self.probe_rng.bit_generator.state = state["probe_rng"]
        self.streams.load_state_dict(state["streams"])
        if "last_losses" in state:
            self.trainer.last_losses[:] = np.asarray(state["last_losses"], dtype=np.float64)
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        np.random.set_state(state["numpy_rng"])
        random.setstate(state["python_rng"])


def search(
    tasks: Sequence[Task],
    target: int,
    reward_split: Split,
    cfg: Config,
    seed: int,
    trunk_factory: Callable[[], torch.nn.Module] | None = None,
    on_meta_step: Callable[[SearchRun, dict[str, Any]], None] | None = None,
) -> SearchResult:
    """Run a search to the end and return the learned schedule and its log."""
    return SearchRun(tasks, target, reward_split, cfg, seed, trunk_factory).run(on_meta_step)


def run_search_dir(
    cfg: Config,
    tasks: Sequence[Task],
    out: Any,
    resume: bool = False,
    keep: int = 2,
    progress: Any = None,
    dist: Any = None,
) -> SearchResult:
    """``taskmix search``: run a search with a checkpoint at every meta-step, logs and the schedule under ``out``.

    With ``resume`` the run continues from the last complete checkpoint (and
    ends with the same schedule, bit for bit on CPU, as an uninterrupted run);
    a changed config is refused, naming the differing keys.  Nothing is
    written under ``out`` before the run is validated and its first meta-step
    is done; every file is written atomically, so a failure (or SIGKILL) at any
    point leaves only complete files, and the last complete checkpoint.
    """
    import contextlib
    from pathlib import Path

    from .checkpoint import check_compatible, checkpoints, load_latest, save_checkpoint
    from .compare import prepare_job
    from .errors import ConfigError, OutputError, TrainingError, remove_stale_temps
    from .runlog import RunLogger

    out = Path(out)
    ckdir = out / "checkpoints"
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a directory; --out needs a directory")
    if ckdir.exists() and not ckdir.is_dir():
        raise OutputError(f"{ckdir}: exists and is not a directory")
    if not resume and ((out / "schedule.json").exists() or checkpoints(ckdir)):
        raise ConfigError(f"{out}: already holds a search; use --resume to continue it or choose a new --out")
    job = prepare_job(cfg, tasks, cfg.seed)
    run = SearchRun(job.tasks, job.target, job.reward_split, cfg, cfg.seed, dist=dist)
    fingerprint = cfg.fingerprint()
    data = {
        t.name: {"n_train": t.n_train, "dim": t.dim, "num_labels": t.num_labels} for t in job.tasks
    } | {"reward_split": len(job.reward_split)}
    last_ckpt = None
    if resume:
        payload = load_latest(ckdir)
        if payload is None and checkpoints(ckdir):
            raise OutputError(
                f"{ckdir}: no readable checkpoint among {len(checkpoints(ckdir))} file(s); "
                "remove them to start over or choose a new --out"
            )
        if payload is not None:
            last_ckpt = payload.get("path")
            check_compatible(payload, fingerprint, cfg.seed, str(ckdir), data)
            try:
                run.load_state_dict(payload["state"])
            except (KeyError, ValueError, RuntimeError) as e:
                msg = str(e).splitlines()[0] if str(e) else type(e).__name__
                raise ConfigError(f"{last_ckpt}: cannot resume, the checkpoint does not fit this run ({msg})") from None
        for d in (out, ckdir):  # temporary files of writes that a kill interrupted
            remove_stale_temps(d)
    names = [t.name for t in job.tasks]
    # The logger (and with it ``out``) is created once there is something to log.
    logger = RunLogger(out, names) if run.log else None
    if logger is not None:
        logger.extend(run.log)
    run.dist.begin(run)  # data parallel (taskmix.distributed.run_search): every rank starts from this state
    total = cfg.search.rounds * cfg.search.meta_steps
    prog = progress if progress is not None else contextlib.nullcontext()
    try:
        with prog:
            bar = progress.add_task("search", total=total, completed=len(run.log)) if progress is not None else None
            while not run.done:
                where = f"search meta-step {run.meta_step + 1}/{run.meta_steps}" + (
                    f" of round {run.round + 1}/{cfg.search.rounds}" if cfg.search.rounds > 1 else ""
                )
                try:
                    entry = run.step_meta()
                except TrainingError as e:
                    kept = f"; the last complete checkpoint {last_ckpt} is kept" if last_ckpt else ""
                    raise TrainingError(f"{where}: {e}{kept}") from None
                except ValueError as e:  # the policy refuses a non-finite reward
                    if "finite" not in str(e):
                        raise
                    kept = f"; the last complete checkpoint {last_ckpt} is kept" if last_ckpt else ""
                    raise TrainingError(f"{where}: {e}{kept}") from None
                if logger is None:
                    logger = RunLogger(out, names)
                logger.log(entry)
                payload = {"config": fingerprint, "seed": cfg.seed, "data": data, "state": run.state_dict()}
                last_ckpt = save_checkpoint(ckdir, len(run.log), payload, keep)
                if bar is not None:
                    progress.advance(bar)
    finally:
        if logger is not None:
            logger.close()
    res = run.result()
    res.schedule.save(out / "schedule.json")
    return res
