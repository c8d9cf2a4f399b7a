"""Experiment tracking beyond TensorBoard: MLflow and Weights & Biases, switched on by the config's ``logging`` section.

::

    logging:
      mlflow: {tracking_uri: "file:./mlruns", experiment: taskmix}
      wandb: {project: taskmix, entity: my-team, mode: offline, dir: .}

Either section, or both:

* ``taskmix compare`` / ``demo``: one run per (method, seed) -- baselines
  included -- with the method, its kind and the seed as parameters (W&B: the
  run's config), the final test metric, wall time and training steps (W&B: the
  run's summary), and (for methods with a per-meta-step log) the flattened log
  (``weight/<task>``, ``reward/<task>``, ``reward_split_accuracy``, ...) as
  metric series over training steps (W&B: the run's history at those steps).
  MLflow's names use ``.`` for TensorBoard's ``/`` (``weight.helpful``,
  ``final.test_accuracy``); W&B's are TensorBoard's tags as they are
  (``weight/helpful``, ``final/test_accuracy``; its UI groups them by prefix).
* ``taskmix search``: one run with the search settings and the log.

Runs are logged once the work is done, and each once.  MLflow: each run
carries a ``taskmix.key`` tag (the output directory and the cell); a run whose
key is already logged and complete is skipped, an incomplete one (a crash while
logging) replaced.  W&B: the runs logged are recorded in the output directory's
``wandb_runs.json`` and skipped; a run's id is a digest of what it logs, so
logging the same results again (online) resumes that run and sends only the
steps it lacks (:mod:`taskmix.runs.tracking_wandb`).  So a resumed comparison
or search never duplicates a run or a (metric, step) point.  W&B's mode is
``logging.wandb.mode``, else ``$WANDB_MODE``, else online; offline runs are
written under ``DIR/wandb/offline-run-*`` (``dir``, default ``$WANDB_DIR`` or
the current directory), to upload with ``wandb sync``; disabled logs nothing.
W&B's own console output is silenced: one ``wandb:`` line on stderr says how
many runs went where.  A missing package is a one-line error before any work
starts (:func:`check_tracking`); so is a W&B refusal (no API key, say) when
the runs are logged, and ``--resume`` logs them once it is fixed.

The Hugging Face route is the Trainer's own ``report_to="mlflow"`` or
``report_to="wandb"``: under :class:`taskmix.hf.ScheduleTrainer` with a
:class:`taskmix.hf.TaskProportionCallback`, the realised and scheduled
proportions (``taskmix/realised/<task>``, ``taskmix/scheduled/<task>``; W&B
shows them under ``train/``) are added to each log before the reporters see it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from ..config import Config
from ..errors import ConfigError
from .runlog import flatten
from .tracking_wandb import WandbTracker, import_wandb, resolve_mode

__all__ = ["MlflowTracker", "Tracker", "WandbTracker", "check_tracking", "track_compare", "track_search", "trackers_for"]

KEY_TAG = "taskmix.key"
DONE_TAG = "taskmix.complete"


class Tracker(Protocol):
    """A tracking backend: logs one complete run per call, once per key."""

    def log_run(self, key: str, name: str, params: dict[str, Any], metrics: dict[str, float],
                series: Sequence[tuple[int, dict[str, float]]] = (), tags: dict[str, str] | None = None) -> str | None:
        """Log a run (``series``: ``(step, {name: value})``, names as TensorBoard tags); its id, or ``None`` if logged already."""
        ...

    def finish(self) -> None:
        """Called after the last run of a command: report what was logged, if the backend says anything."""
        ...


def _import_mlflow() -> Any:
    try:
        import mlflow
        from mlflow.tracking import MlflowClient  # noqa: F401
    except ImportError:
        raise ConfigError("logging.mlflow: the mlflow package is not installed (pip install mlflow-skinny)") from None
    return mlflow


class MlflowTracker:
    """Logs complete runs to MLflow, idempotently (see the module docstring)."""

    def __init__(self, tracking_uri: str | None, experiment: str, base_dir: str | Path = "."):
        mlflow = _import_mlflow()
        from mlflow.tracking import MlflowClient

        self.mlflow = mlflow
        uri = tracking_uri
        if uri is not None and uri.startswith("file:") and not uri.startswith("file:/"):
            uri = (Path(base_dir) / uri[len("file:"):]).resolve().as_uri()  # file:./mlruns, relative to the config
        self.client = MlflowClient(tracking_uri=uri)
        exp = self.client.get_experiment_by_name(experiment)
        self.experiment_id = exp.experiment_id if exp is not None else self.client.create_experiment(experiment)

    def _existing(self, key: str) -> list[Any]:
        escaped = key.replace("'", "\\'")
        return list(self.client.search_runs([self.experiment_id], filter_string=f"tags.`{KEY_TAG}` = '{escaped}'"))

    def log_run(self, key: str, name: str, params: dict[str, Any], metrics: dict[str, float],
                series: Sequence[tuple[int, dict[str, float]]] = (), tags: dict[str, str] | None = None) -> str | None:
        """One complete run; returns its id, or ``None`` when ``key`` is logged already."""
        old = self._existing(key)
        if any(r.data.tags.get(DONE_TAG) == "1" for r in old):
            return None
        for r in old:  # an incomplete earlier attempt
            self.client.delete_run(r.info.run_id)
        run = self.client.create_run(self.experiment_id, run_name=name, tags={KEY_TAG: key, **(tags or {})})
        rid = run.info.run_id
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        ms = [Metric(_key(k), float(v), now, 0) for k, v in metrics.items()]
        for step, values in series:
            ms += [Metric(_key(k), float(v), now, int(step)) for k, v in values.items()]
        for i in range(0, len(ms), 900):  # MLflow's batch limit is 1000 metrics
            self.client.log_batch(rid, metrics=ms[i: i + 900])
        ps = [Param(k, str(v)) for k, v in params.items()]
        for i in range(0, len(ps), 90):
            self.client.log_batch(rid, params=ps[i: i + 90])
        self.client.log_batch(rid, tags=[RunTag(DONE_TAG, "1")])
        self.client.set_terminated(rid)
        return rid

    def finish(self) -> None:
        """Nothing to report or flush: every run is complete once :meth:`log_run` returns."""


def trackers_for(cfg: Config, out: str | Path = ".") -> list[Tracker]:
    """The trackers the config asks for (``logging.mlflow``, ``logging.wandb`` unless disabled) for the runs of ``out``."""
    trackers: list[Tracker] = []
    m = cfg.logging.mlflow
    if m is not None:
        trackers.append(MlflowTracker(m.tracking_uri, m.experiment, cfg.base_dir))
    w = cfg.logging.wandb
    if w is not None:
        mode = resolve_mode(w.mode)
        if mode != "disabled":
            trackers.append(WandbTracker(w.project, w.entity, mode, w.dir, out, cfg.base_dir))
    return trackers


def check_tracking(cfg: Config) -> None:
    """Refuse, before any work, a ``logging`` section whose package is missing (or a bad ``$WANDB_MODE``)."""
    if cfg.logging.mlflow is not None:
        _import_mlflow()
    if cfg.logging.wandb is not None and resolve_mode(cfg.logging.wandb.mode) != "disabled":
        import_wandb()


def _key(name: str) -> str:
    """MLflow metric names use '.' where TensorBoard tags use '/' (a file store nests '/' into folders, so
    ``train_loss`` and ``train_loss/<task>`` could not both exist)."""
    return name.replace("/", ".")


def _series(log: Sequence[dict[str, Any]], tasks: Sequence[str]) -> list[tuple[int, dict[str, float]]]:
    """The log's scalars per TensorBoard step, named as TensorBoard's tags."""
    out = []
    for i, e in enumerate(log):
        step = int(e.get("round", 0)) * 10**6 + int(e.get("step", i + 1))  # the TensorBoard step
        vals = {k: float(v) for k, v in flatten(e, tasks).items()
                if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("round", "meta_step", "step")}
        out.append((step, vals))
    return out


def track_compare(cfg: Config, out: str | Path, rows: Sequence[dict[str, Any]], metric: str,
                  kind_of: Any = None) -> list[str]:
    """Log every (method, seed) row of a comparison in ``out`` to each tracker; return the ids of the runs logged now."""
    trackers = trackers_for(cfg, out)
    if not trackers:
        return []
    from ..schedule import Schedule

    where = str(Path(out).resolve())
    runs = []
    for r in rows:
        tag = f"{r['method']}-seed{r['seed']}"
        tasks = Schedule.from_dict(r["schedule"], tag).tasks if isinstance(r.get("schedule"), dict) else cfg.task_names()
        params = {"method": r["method"], "seed": int(r["seed"]), "target": cfg.target,
                  "kind": kind_of(r["method"]) if kind_of is not None else "", "train.steps": cfg.train.steps}
        metrics = {f"final/test_{metric}": float(r["test"]), "final/seconds": float(r.get("seconds") or 0.0),
                   "final/train_steps": float(r.get("train_steps") or 0)}
        runs.append((f"{where}::{tag}", tag, params, metrics, _series(r.get("log") or [], tasks)))
    logged = []
    for tracker in trackers:
        for key, name, params, metrics, series in runs:
            rid = tracker.log_run(key, name, params, metrics, series, tags={"taskmix.command": "compare", "taskmix.out": where})
            if rid is not None:
                logged.append(rid)
        tracker.finish()
    return logged


def track_search(cfg: Config, out: str | Path, log: Sequence[dict[str, Any]], tasks: Sequence[str],
                 mean_weights: Sequence[float] | np.ndarray) -> list[str]:
    """Log a finished search in ``out`` (settings, per-meta-step log, the schedule's mean weights); the ids logged now."""
    trackers = trackers_for(cfg, out)
    if not trackers:
        return []
    where = str(Path(out).resolve())
    s = cfg.search
    params = {"policy": s.policy, "reward": s.reward, "epsilon": s.epsilon, "gamma": s.gamma, "lr": s.lr,
              "meta_steps": s.meta_steps, "rounds": s.rounds, "seed": cfg.seed, "target": cfg.target,
              "train.steps": cfg.train.steps}
    metrics = {f"final/weight/{t}": float(w) for t, w in zip(tasks, mean_weights)}
    last = next((e for e in reversed(log) if "reward_split_accuracy" in e), None)
    if last is not None:
        metrics["final/reward_split_accuracy"] = float(last["reward_split_accuracy"])
    series = _series(log, tasks)
    logged = []
    for tracker in trackers:
        rid = tracker.log_run(f"{where}::search", f"search-seed{cfg.seed}", params, metrics, series,
                              tags={"taskmix.command": "search", "taskmix.out": where})
        if rid is not None:
            logged.append(rid)
        tracker.finish()
    return logged
