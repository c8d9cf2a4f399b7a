"""Data-parallel search: several processes train one model, one global batch per step.

``taskmix search`` launched by ``torchrun`` (or inside any ``torch.distributed``
job) runs one search across all ranks:

* every rank builds the same model (same seed) and draws the same global task
  batch (same draw RNG, same example streams);
* rank ``r`` of ``world_size`` trains on positions ``r, r + world_size, ...``
  of the global batch (the convention of :mod:`taskmix.replay.torch`);
* gradients are averaged across ranks (``all_reduce``) before every optimiser
  step, so the models stay identical; the logged training losses are those of
  the global batch;
* rewards are computed on every rank and averaged (``all_reduce``), so every
  rank makes the same policy update and ends with the same schedule;
* only rank 0 writes files (``schedule.json``, logs, checkpoints); on resume
  rank 0 reads the checkpoint and hands its state to the other ranks.

A *step* is one global batch of ``train.batch_size`` examples, which is one
optimiser step on every rank; the schedule row follows the global step.

The hooks live in a :class:`Dist` object that :class:`~taskmix.engine.trainer.Trainer`
and :class:`~taskmix.runs.search_run.SearchRun` call.  :data:`LOCAL` (one process) does
nothing, so a single-process run is unchanged bit for bit.
"""

from __future__ import annotations

import importlib
import os
import weakref
from typing import Any, Iterable, Protocol

import numpy as np
import torch

from ..devices import resolve_device
from ..errors import ConfigError, TaskmixError, TrainingError



class Resumable(Protocol):
    """What :meth:`Dist.begin` needs of a run: its log and its state (a search run is one)."""

    log: list[Any]

    def state_dict(self) -> dict[str, Any]:
        """The run's whole state."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        ...


class Dist:
    """One process: every hook is a no-op (the default of ``Trainer`` and ``SearchRun``)."""

    rank = 0
    world_size = 1
    active = False

    @property
    def is_main(self) -> bool:
        """Whether this rank writes the run's files (rank 0)."""
        return self.rank == 0

    def shard(self, task_ids: np.ndarray, example_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """This rank's share of a global batch (the whole batch in one process)."""
        return task_ids, example_ids

    def check_finite(self, loss: torch.Tensor, step: int) -> None:
        """Raise on every rank when another rank's loss is non-finite (a no-op in one process)."""

    def average_gradients(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Average the gradients across ranks (a no-op in one process)."""

    def reduce_losses(self, sums: torch.Tensor, counts: torch.Tensor, loss: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Per-task loss sums and sample counts, and the mean loss, of the global batch."""
        return sums, counts, float(loss.item())

    def mean(self, values: np.ndarray) -> np.ndarray:
        """The mean of ``values`` across ranks (``values`` itself in one process)."""
        return values

    def begin(self, run: Resumable) -> None:
        """Start ``run`` from rank 0's state on every rank (a no-op in one process)."""

    def close(self) -> None:
        """Release the process group if this object created it."""


LOCAL = Dist()


class DataParallel(Dist):
    """Hooks for ``world_size`` ranks of an initialised ``torch.distributed`` process group.

    Args:
        group: the process group (``None``: the default group).
        owns_group: destroy the default group on :meth:`close` (set when
            :func:`connect` initialised it).
    """

    active = True

    def __init__(self, group: Any = None, owns_group: bool = False):
        import torch.distributed as tdist

        self._tdist = tdist
        self.group = group
        self.rank = tdist.get_rank(group)
        self.world_size = tdist.get_world_size(group)
        backend = str(tdist.get_backend(group)).lower()
        self.device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")
        self.owns_group = owns_group
        self.began = False
        self._begun: "weakref.WeakSet[Resumable]" = weakref.WeakSet()

    def __repr__(self) -> str:
        return f"DataParallel(rank={self.rank}, world_size={self.world_size}, device={self.device})"

    # ----------------------------------------------------------- collectives
    def _collective(self, fn: Any, *args: Any, **kwargs: Any) -> None:
        """Run a ``torch.distributed`` collective; a lost peer becomes a one-line :class:`TrainingError`."""
        try:
            fn(*args, group=self.group, **kwargs)
        except RuntimeError as e:  # gloo: "Connection closed by peer"; NCCL: DistBackendError
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise TrainingError(
                f"lost contact with the other ranks, one of which stopped (its own error says why): {first}"
            ) from None

    def _sum(self, t: torch.Tensor) -> torch.Tensor:
        """Sum of ``t`` over the ranks (on ``t``'s device and dtype)."""
        buf = t.to(self.device)
        self._collective(self._tdist.all_reduce, buf, op=self._tdist.ReduceOp.SUM)
        return buf.to(t.device)

    # ------------------------------------------------------------- training
    def shard(self, task_ids: np.ndarray, example_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """This rank's positions ``r, r + world_size, ...`` of the global batch."""
        if len(task_ids) != len(example_ids):
            raise ValueError(f"shard: {len(task_ids)} task ids but {len(example_ids)} example ids")
        if len(task_ids) % self.world_size:
            raise ValueError(
                f"shard: a global batch of {len(task_ids)} does not split evenly across {self.world_size} ranks"
            )
        mine = slice(self.rank, None, self.world_size)
        return np.ascontiguousarray(task_ids[mine]), np.ascontiguousarray(example_ids[mine])

    def check_finite(self, loss: torch.Tensor, step: int) -> None:
        """Raise on every rank when any rank's loss is non-finite."""
        flags = torch.zeros(self.world_size, dtype=torch.float64)
        flags[self.rank] = 0.0 if bool(torch.isfinite(loss)) else 1.0
        bad = torch.nonzero(self._sum(flags)).flatten().tolist()
        if bad and self.rank not in bad:  # a rank with a bad loss of its own says which task (Trainer.train_step)
            raise TrainingError(f"training step {step}: loss is non-finite on rank(s) {bad} of {self.world_size}")

    def average_gradients(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Replace each gradient by its mean over the ranks, in one ``all_reduce`` per dtype.

        A rank whose share of the batch did not touch a parameter (a task head
        absent from it) contributes zeros; a parameter no rank touched keeps
        ``grad = None``, so the optimiser skips it as it would in one process.
        """
        buckets: dict[tuple[torch.dtype, torch.device], list[torch.nn.Parameter]] = {}
        for p in params:
            if p.requires_grad:
                buckets.setdefault((p.dtype, p.device), []).append(p)
        for (dtype, device), ps in buckets.items():
            parts = [p.grad.reshape(-1) if p.grad is not None else torch.zeros(p.numel(), dtype=dtype, device=device) for p in ps]
            present = torch.tensor([p.grad is not None for p in ps], dtype=dtype, device=device)
            flat = self._sum(torch.cat(parts + [present]))
            touched = flat[-len(ps):] > 0
            flat = flat[: -len(ps)].div_(self.world_size)
            offset = 0
            for p, hit in zip(ps, touched.tolist()):
                n = p.numel()
                p.grad = flat[offset : offset + n].view_as(p) if hit else None  # disjoint views of one new buffer
                offset += n

    def reduce_losses(self, sums: torch.Tensor, counts: torch.Tensor, loss: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Per-task loss sums, sample counts and the mean loss summed over the ranks."""
        n = sums.numel()
        buf = torch.cat([sums.double().reshape(-1), counts.double().reshape(-1), loss.detach().double().reshape(1)])
        buf = self._sum(buf)
        return buf[:n].to(sums.dtype), buf[n : 2 * n].round().to(counts.dtype), float(buf[-1]) / self.world_size

    def mean(self, values: np.ndarray) -> np.ndarray:
        """The mean of ``values`` across the ranks."""
        arr = np.asarray(values, dtype=np.float64)
        return (self._sum(torch.from_numpy(arr.copy())) / self.world_size).numpy()

    # ---------------------------------------------------------- start / stop
    def _exchange(self, status: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Every rank's status: ``("ok", state)`` or ``("error", exception class, message)``."""
        out: list[Any] = [None] * self.world_size
        self._collective(self._tdist.all_gather_object, out, status)
        return out

    def begin(self, run: Resumable) -> None:
        """The one start-up collective: rank 0's (possibly resumed) state goes to every rank.

        If a rank failed before reaching it (:meth:`fail`), every other rank
        raises that rank's error here instead of waiting for it.
        """
        if run in self._begun:
            return
        state = run.state_dict() if self.is_main and run.log else None
        statuses = self._exchange(("ok", state))
        self.began = True
        self._begun.add(run)
        failed = [(r, s) for r, s in enumerate(statuses) if s[0] == "error"]
        if failed:
            r, (_, cls, msg) = failed[0]
            if isinstance(cls, type) and issubclass(cls, TaskmixError):
                raise cls(msg)
            raise TrainingError(f"rank {r} of {self.world_size} failed before the search began: {msg}")
        if not self.is_main and statuses[0][1] is not None:
            run.load_state_dict(statuses[0][1])

    def fail(self, exc: BaseException) -> None:
        """Tell the other ranks, waiting in :meth:`begin`, that this rank cannot start (no-op once begun)."""
        if self.began:
            return
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        cls = type(exc) if isinstance(exc, TaskmixError) else None
        try:
            self._exchange(("error", cls, msg if cls else f"{type(exc).__name__}: {msg}"))
        except Exception:  # the others are gone already
            pass
        self.began = True

    def close(self) -> None:
        """Release the resources held (connections, process groups)."""
        if self.owns_group and self._tdist.is_initialized():
            self._tdist.destroy_process_group()
        self.owns_group = False


# ----------------------------------------------------------------- set-up


def _env_int(name: str, default: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        if default is None:
            raise ConfigError(f"{name} is not set; launch with torchrun, or set RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT")
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected an integer (torchrun sets it)") from None


def connect(device: str = "cpu") -> Dist:
    """The data-parallel environment of this process.

    An initialised ``torch.distributed`` default group is used as it is;
    otherwise ``WORLD_SIZE`` > 1 (as set by ``torchrun``) initialises one from
    the environment (``RANK``, ``MASTER_ADDR``, ``MASTER_PORT``): NCCL when
    training on CUDA (each rank on GPU ``LOCAL_RANK``), else gloo.  One process
    (or a group of one) gives :data:`LOCAL`.
    """
    import torch.distributed as tdist

    if tdist.is_available() and tdist.is_initialized():
        return DataParallel() if tdist.get_world_size() > 1 else LOCAL
    world = _env_int("WORLD_SIZE", 1)
    if world < 1:
        raise ConfigError(f"WORLD_SIZE={world}: expected a positive integer")
    if world == 1:
        return LOCAL
    if not tdist.is_available():
        raise ConfigError(f"WORLD_SIZE={world} but this torch build has no torch.distributed")
    rank = _env_int("RANK")
    if not 0 <= rank < world:
        raise ConfigError(f"RANK={rank}: expected an integer in [0, {world}) for WORLD_SIZE={world}")
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if not os.environ.get(name):
            raise ConfigError(f"WORLD_SIZE={world} but {name} is not set; launch with torchrun or set it")
    cuda = torch.device(resolve_device(device)).type == "cuda"
    if cuda:
        if not torch.cuda.is_available():
            raise ConfigError(f"train.device={device!r}: CUDA is not available on rank {rank}")
        torch.cuda.set_device(_env_int("LOCAL_RANK", rank % torch.cuda.device_count()))
    # torch._dynamo is imported by the first optimiser; imported after init_process_group, it keeps the
    # group alive past destroy_process_group, and gloo's threads then race the interpreter's exit (SIGABRT).
    importlib.import_module("torch._dynamo")
    tdist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world)
    return DataParallel(owns_group=True)
