"""``taskmix search``: a search with checkpoints, logs and resume in an output directory, on one process or many.

:func:`run_search_dir` runs one process's search under ``out``;
:func:`run_search` is the command's entry point: on one process it is exactly
:func:`run_search_dir`, under ``torchrun`` rank 0 runs it and the other ranks
follow (:func:`follow`), every rank ending with the same schedule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..config import Config
from ..data.tasks import Task
from ..engine.parallel import DataParallel, connect
from ..errors import ConfigError, OutputError, TrainingError, first_line, warn
from ..files import OutputLock, remove_stale_temps
from .checkpoint import (
    MAX_CHECKPOINT_BYTES,
    CheckpointError,
    check_compatible,
    checkpoints,
    legacy_checkpoints,
    load_latest,
    save_checkpoint,
)
from .inputs import check_inputs, input_digests
from .job import prepare_job
from .progress import make_progress
from .runlog import RunLogger
from .search_run import SearchResult, SearchRun
from .stamp import write_run_stamp
from .tracking import check_tracking, track_search

__all__ = ["follow", "run_search", "run_search_dir"]


def run_search_dir(
    cfg: Config,
    tasks: Sequence[Task],
    out: Any,
    resume: bool = False,
    keep: int = 2,
    progress: Any = None,
    dist: Any = None,
    allow_changed_data: bool = False,
) -> SearchResult:
    """``taskmix search``: run a search with a checkpoint at every meta-step, logs and the schedule under ``out``.

    With ``resume`` the run continues from the last complete checkpoint (and
    ends with the same schedule, bit for bit on CPU, as an uninterrupted run);
    a changed config is refused, naming the differing keys, and so is changed
    data (the checkpoints keep a digest of every task's splits,
    :mod:`taskmix.runs.inputs`) unless ``allow_changed_data``.  A checkpoint
    is used only when its checksum verifies *and* its state is sane and fits
    this run (:meth:`SearchRun.check_state_dict`); one that is not is passed
    over like a damaged one, with a warning naming why.  Nothing is
    written under ``out`` before the run is validated and its first meta-step
    is done; every file is written atomically, so a failure (or SIGKILL) at any
    point leaves only complete files, and the last complete checkpoint.
    ``out`` also keeps the resolved config and package versions
    (:func:`taskmix.runs.stamp.write_run_stamp`).

    ``progress``: where each finished meta-step is reported (:mod:`taskmix.runs.progress`): ``None``, the
    ``taskmix.progress`` logger at ``INFO`` (silent unless logging is set up); ``"lines"``, one line on
    stderr; ``"bar"``, a bar; ``True``, either as stderr is a terminal or not; ``False``, nowhere.
    """
    out = Path(out)
    progress = make_progress(progress)  # a bad value is refused before any work
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a directory; --out needs a directory")
    check_tracking(cfg)  # a tracker's missing package is refused now, not after the search
    with OutputLock(out):  # a second run on ``out`` is refused; removed again (with ``out``) if nothing was written
        return _run_locked(cfg, tasks, out, resume, keep, progress, dist, allow_changed_data)


def checkpoint_limit(run: SearchRun) -> int:
    """The most bytes a checkpoint of ``run`` can hold: its tensors (model, optimiser moments) and a log that
    grows with the meta-steps, with room to spare; a larger file is refused before it is read."""
    tensors = sum(t.numel() * t.element_size() for t in run.trainer.model.state_dict().values())
    entries = run.cfg.search.rounds * run.meta_steps
    return min(MAX_CHECKPOINT_BYTES, 2**26 + 4 * tensors + entries * (2**14 + 2**12 * len(run.tasks)))


def _run_locked(cfg: Config, tasks: Sequence[Task], out: Path, resume: bool, keep: int, progress: Any, dist: Any,
                allow_changed_data: bool = False) -> SearchResult:
    ckdir = out / "checkpoints"
    if ckdir.is_symlink():
        raise OutputError(f"{ckdir}: is a symbolic link inside the output directory; taskmix does not write through links")
    if ckdir.exists() and not ckdir.is_dir():
        raise OutputError(f"{ckdir}: exists and is not a directory")
    legacy = legacy_checkpoints(ckdir)
    if legacy and not checkpoints(ckdir):
        raise OutputError(
            f"{legacy[-1]}: a pickled checkpoint (older taskmix, or planted), never loaded since unpickling can run code; "
            "remove it to start over or choose a new --out"
        )
    if not resume and ((out / "schedule.json").exists() or checkpoints(ckdir)):
        raise ConfigError(f"{out}: already holds a search; use --resume to continue it or choose a new --out")
    job = prepare_job(cfg, tasks, cfg.seed)
    run = SearchRun(job, dist=dist)
    fingerprint = cfg.fingerprint()
    data = {
        t.name: {"n_train": t.n_train, "dim": t.dim, "num_labels": t.num_labels} for t in job.tasks
    } | {"reward_split": len(job.reward_split)}
    inputs = input_digests(tasks)  # hashed once; kept in every checkpoint
    last_ckpt = None
    if resume:
        skipped: list[str] = []

        def validate(payload: dict[str, Any], path: Path) -> None:
            check_compatible(payload, fingerprint, cfg.seed, str(ckdir), data)  # another config: refused
            try:  # a state that is not sane, or does not fit this run: passed over like a damaged file
                state = payload["state"]
                index = int(path.stem.split("-")[1])
                if not isinstance(state.get("log"), list) or len(state["log"]) != index:
                    raise ValueError(f"state.log: holds {len(state['log']) if isinstance(state.get('log'), list) else 'no'} "
                                     f"entries, but the file is checkpoint {index}")
                run.check_state_dict(state)
            except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, RuntimeError) as e:
                raise CheckpointError(f"{path}: malformed state ({first_line(e)[:300]})") from None

        payload = load_latest(ckdir, skipped, validate, checkpoint_limit(run))
        if payload is None and checkpoints(ckdir):
            first = skipped[0] if skipped else ""
            raise OutputError(
                f"{ckdir}: no readable checkpoint among {len(checkpoints(ckdir))} file(s) (newest: {first[:300]}); "
                "remove them to start over or choose a new --out"
            )
        if payload is not None:
            last_ckpt = payload.get("path")
            for reason in skipped:
                warn(f"{reason}; resuming from {last_ckpt}")
            check_inputs(payload.get("inputs"), inputs, str(ckdir), allow_changed_data, cfg)
            try:
                run.load_state_dict(payload["state"])
            except (KeyError, ValueError, RuntimeError, TypeError, IndexError, AttributeError) as e:
                msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
                raise ConfigError(f"{last_ckpt}: cannot resume, the checkpoint does not fit this run ({msg})") from None
        for d in (out, ckdir):  # temporary files of writes that a kill interrupted (never another live process's)
            remove_stale_temps(d)
    names = [t.name for t in job.tasks]
    # The logger (and with it ``out``) is created once there is something to log.
    logger = RunLogger(out, names, fresh_tb=True) if run.log else None  # one event per (tag, step) after a resume
    if logger is not None:
        logger.extend(run.log)
    run.dist.begin(run)  # data parallel (taskmix.runs.search_dir.run_search): every rank starts from this state
    total = cfg.search.rounds * cfg.search.meta_steps
    stamped = False
    rep = make_progress(progress)
    try:
        rep.start("search", total, len(run.log))
        while not run.done:
            where = f"search meta-step {run.meta_step + 1}/{run.meta_steps}" + (
                f" of round {run.round + 1}/{cfg.search.rounds}" if cfg.search.rounds > 1 else ""
            )
            try:
                entry = run.step_meta()
            except TrainingError as e:
                kept = f"; the last complete checkpoint {last_ckpt} is kept" if last_ckpt else ""
                raise TrainingError(f"{where}: {e}{kept}") from None
            if logger is None:
                logger = RunLogger(out, names, fresh_tb=True)
            logger.log(entry)
            if not stamped:  # with the first finished meta-step: config.resolved.yaml, versions.json
                write_run_stamp(out, cfg, "search")
                stamped = True
            payload = {"config": fingerprint, "seed": cfg.seed, "data": data, "inputs": inputs, "state": run.state_dict()}
            last_ckpt = save_checkpoint(ckdir, len(run.log), payload, keep)
            rep.meta_step(len(run.log), total, **run.meta_step_report(entry))
    finally:
        rep.finish()
        if logger is not None:
            logger.close()
    res = run.result()
    res.schedule.save(out / "schedule.json")
    track_search(cfg, out, run.log, names, res.schedule.mean_weights())  # MLflow / W&B, when the config asks
    return res


def run_search(
    cfg: Config,
    tasks: Sequence[Task],
    out: Any,
    resume: bool = False,
    keep: int = 2,
    progress: Any = None,
    allow_changed_data: bool = False,
) -> SearchResult:
    """``taskmix search`` on one process or on every rank of a data-parallel job.

    One process: exactly :func:`taskmix.runs.search_dir.run_search_dir`.  Several ranks:
    rank 0 runs :func:`~taskmix.runs.search_dir.run_search_dir` (validation, resume,
    every file under ``out``); the other ranks follow it and write nothing.
    Every rank returns the same schedule; ``result.extra`` holds ``rank`` and
    ``world_size``.  ``progress``: as for :func:`run_search_dir` (only rank 0 reports).
    """
    progress = make_progress(progress)
    dist = connect(cfg.train.device)
    if not dist.active:
        return run_search_dir(cfg, tasks, out, resume=resume, keep=keep, progress=progress, allow_changed_data=allow_changed_data)
    try:
        bs = cfg.train.batch_size
        if bs % dist.world_size:
            raise ConfigError(
                f"train.batch_size ({bs}) must be a multiple of the number of ranks ({dist.world_size}): "
                "each step's global batch is split evenly across the ranks"
            )
        try:
            if dist.is_main:
                res = run_search_dir(cfg, tasks, out, resume=resume, keep=keep, progress=progress, dist=dist,
                                     allow_changed_data=allow_changed_data)
            else:
                assert isinstance(dist, DataParallel)  # active hooks are always DataParallel
                res = follow(cfg, tasks, dist)
        except BaseException as e:
            if isinstance(dist, DataParallel):
                dist.fail(e)
            raise
        res.extra.update(rank=dist.rank, world_size=dist.world_size)
        return res
    finally:
        dist.close()


def follow(cfg: Config, tasks: Sequence[Task], dist: DataParallel) -> SearchResult:
    """A rank other than 0: the same search as rank 0, from rank 0's state, writing nothing."""
    job = prepare_job(cfg, tasks, cfg.seed)
    run = SearchRun(job, dist=dist)
    dist.begin(run)
    while not run.done:
        where = f"rank {dist.rank}, search meta-step {run.meta_step + 1}/{run.meta_steps}"
        try:
            run.step_meta()
        except TrainingError as e:  # a non-finite loss, or a non-finite reward the policy refused (as on rank 0)
            raise TrainingError(f"{where}: {e}") from None
    return run.result()

