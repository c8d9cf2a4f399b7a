"""``taskmix compare --backend ray``: the (method, seed) cells of a comparison as Ray tasks.

Each cell is one Ray task (``num_cpus=1``, one torch thread) that calls
:func:`taskmix.compare.methods.run_method`, exactly what the sequential backend calls,
so a cell's row is the same on either backend (``seconds`` aside).  The driver
loads (and, for text tasks, encodes) the tasks once and puts them in Ray's
object store once; every worker reads them from there, so workers never open a
data file or the embedding cache.  Rows reach ``on_row`` as cells finish, in
any order (:func:`taskmix.compare.runner.run_compare` sorts them).

Without ``address`` a local Ray instance with one CPU per core is started and
shut down at the end; with ``address`` (``"auto"``, ``"ray://host:10001"``,
``"host:6379"``) the cells go to that cluster.  A :class:`~taskmix.errors.TaskmixError`
(or ``OSError``) raised in a worker is raised again in the driver as it is, so
the command line prints the same one-line error as the sequential backend.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable, Sequence

from ..errors import ConfigError, TaskmixError, TrainingError, first_line
from .methods import run_method


def _run_cell(cfg: Any, tasks: Sequence[Any], method: str, seed: int) -> dict[str, Any]:
    """One cell, inside a Ray worker."""
    import warnings

    import torch

    torch.set_num_threads(1)
    # Arrays from the object store are read-only; taskmix only reads them (torch warns all the same).
    warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
    return run_method(cfg, tasks, method, seed)


def _connect(ray: Any, address: str | None) -> bool:
    """Start or join Ray unless this process already did; return whether we must shut it down."""
    if ray.is_initialized():
        return False
    opts: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING}
    if address is None:
        ray.init(num_cpus=os.cpu_count(), **opts)
        return True
    try:
        ray.init(address=address, **opts)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise ConfigError(f"--address {address!r}: cannot connect to a Ray cluster ({first_line(e)})") from None
    return True


def _result(ray: Any, ref: Any, cell: tuple[str, int]) -> dict[str, Any]:
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        cause = getattr(e, "cause", None)
        if isinstance(cause, (TaskmixError, OSError)):  # the worker's own one-line error, as on the sequential backend
            raise cause from None
        raise
    except ray.exceptions.RayError as e:  # the worker or its node died (out of memory, node lost, ...)
        method, seed = cell
        raise TrainingError(f"compare cell {method} (seed {seed}): the Ray worker failed ({first_line(e)})") from None


def run_cells_ray(
    cfg: Any,
    tasks: Sequence[Any],
    cells: Sequence[tuple[str, int]],
    on_row: Callable[[dict[str, Any]], None],
    address: str | None = None,
) -> None:
    """Run (method, seed) cells as Ray tasks, handing each row to ``on_row`` as it arrives."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--backend ray: Ray is not installed; install it with pip install 'taskmix[ray]'") from None
    cells = list(cells)
    if not cells:
        return
    owned = _connect(ray, address)
    pending: dict[Any, tuple[str, int]] = {}
    try:
        cfg_ref, tasks_ref = ray.put(cfg), ray.put(list(tasks))  # once, not pickled again for every cell
        remote = ray.remote(num_cpus=1)(_run_cell)
        pending = {remote.remote(cfg_ref, tasks_ref, m, s): (m, s) for m, s in cells}  # type: ignore[arg-type]
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                cell = pending.pop(ref)
                on_row(_result(ray, ref, cell))
    finally:
        for ref in pending:  # an error or an interrupt: stop what is still queued or running
            try:
                ray.cancel(ref)
            except Exception:  # noqa: BLE001 - best effort; the error being raised matters
                pass
        if owned:
            ray.shutdown()
