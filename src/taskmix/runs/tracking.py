"""Experiment tracking beyond TensorBoard: MLflow, switched on by the config's ``logging.mlflow`` section.

::

    logging:
      mlflow: {tracking_uri: "file:./mlruns", experiment: taskmix}

* ``taskmix compare`` / ``demo``: one MLflow run per (method, seed) -- baselines
  included -- with the method, its kind and the seed as parameters, the final
  test metric, wall time and training steps, and (for methods with a
  per-meta-step log) the flattened log (``weight.<task>``, ``reward.<task>``,
  ``reward_split_accuracy``, ...: TensorBoard's tags with ``.`` for ``/``) as
  metric series over training steps.
* ``taskmix search``: one run with the search settings and the log.

Runs are logged once the work is done, and each carries a ``taskmix.key`` tag
(the output directory and the cell); a run whose key is already logged and
complete is skipped, an incomplete one (a crash while logging) replaced.  So a
resumed comparison or search never duplicates a run or a (metric, step) point.

MLflow's Hugging Face route is the Trainer's own ``report_to="mlflow"``: under
:class:`taskmix.hf.ScheduleTrainer` the realised and scheduled proportions are
added to each log before the reporters see it.  Weights & Biases is not wired in.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..config import Config
from ..errors import ConfigError
from .runlog import flatten

__all__ = ["MlflowTracker", "track_compare", "track_search", "tracker_for"]

KEY_TAG = "taskmix.key"
DONE_TAG = "taskmix.complete"


class MlflowTracker:
    """Logs complete runs to MLflow, idempotently (see the module docstring)."""

    def __init__(self, tracking_uri: str | None, experiment: str, base_dir: str | Path = "."):
        try:
            import mlflow
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise ConfigError("logging.mlflow: the mlflow package is not installed (pip install mlflow-skinny)") from None
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
        ms = [Metric(k, float(v), now, 0) for k, v in metrics.items()]
        for step, values in series:
            ms += [Metric(k, float(v), now, int(step)) for k, v in values.items()]
        for i in range(0, len(ms), 900):  # MLflow's batch limit is 1000 metrics
            self.client.log_batch(rid, metrics=ms[i: i + 900])
        ps = [Param(k, str(v)) for k, v in params.items()]
        for i in range(0, len(ps), 90):
            self.client.log_batch(rid, params=ps[i: i + 90])
        self.client.log_batch(rid, tags=[RunTag(DONE_TAG, "1")])
        self.client.set_terminated(rid)
        return rid


def tracker_for(cfg: Config) -> MlflowTracker | None:
    """The tracker the config asks for (``logging.mlflow``), or ``None``."""
    m = cfg.logging.mlflow
    if m is None:
        return None
    return MlflowTracker(m.tracking_uri, m.experiment, cfg.base_dir)


def _key(name: str) -> str:
    """MLflow metric names use '.' where TensorBoard tags use '/' (a file store nests '/' into folders, so
    ``train_loss`` and ``train_loss/<task>`` could not both exist)."""
    return name.replace("/", ".")


def _series(log: Sequence[dict[str, Any]], tasks: Sequence[str]) -> list[tuple[int, dict[str, float]]]:
    out = []
    for i, e in enumerate(log):
        step = int(e.get("round", 0)) * 10**6 + int(e.get("step", i + 1))  # the TensorBoard step
        vals = {_key(k): float(v) for k, v in flatten(e, tasks).items()
                if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("round", "meta_step", "step")}
        out.append((step, vals))
    return out


def track_compare(cfg: Config, out: str | Path, rows: Sequence[dict[str, Any]], metric: str,
                  kind_of: Any = None) -> list[str]:
    """Log every (method, seed) row of a comparison in ``out``; return the ids of the runs logged now."""
    tracker = tracker_for(cfg)
    if tracker is None:
        return []
    from ..schedule import Schedule

    where = str(Path(out).resolve())
    logged = []
    for r in rows:
        tag = f"{r['method']}-seed{r['seed']}"
        tasks = Schedule.from_dict(r["schedule"], tag).tasks if isinstance(r.get("schedule"), dict) else cfg.task_names()
        params = {"method": r["method"], "seed": int(r["seed"]), "target": cfg.target,
                  "kind": kind_of(r["method"]) if kind_of is not None else "", "train.steps": cfg.train.steps}
        metrics = {f"final.test_{metric}": float(r["test"]), "final.seconds": float(r.get("seconds") or 0.0),
                   "final.train_steps": float(r.get("train_steps") or 0)}
        rid = tracker.log_run(f"{where}::{tag}", tag, params, metrics, _series(r.get("log") or [], tasks),
                              tags={"taskmix.command": "compare", "taskmix.out": where})
        if rid is not None:
            logged.append(rid)
    return logged


def track_search(cfg: Config, out: str | Path, log: Sequence[dict[str, Any]], tasks: Sequence[str],
                 mean_weights: Sequence[float] | np.ndarray) -> str | None:
    """Log a finished search in ``out`` (settings, per-meta-step log, the schedule's mean weights)."""
    tracker = tracker_for(cfg)
    if tracker is None:
        return None
    where = str(Path(out).resolve())
    s = cfg.search
    params = {"policy": s.policy, "reward": s.reward, "epsilon": s.epsilon, "gamma": s.gamma, "lr": s.lr,
              "meta_steps": s.meta_steps, "rounds": s.rounds, "seed": cfg.seed, "target": cfg.target,
              "train.steps": cfg.train.steps}
    metrics = {f"final.weight.{t}": float(w) for t, w in zip(tasks, mean_weights)}
    last = next((e for e in reversed(log) if "reward_split_accuracy" in e), None)
    if last is not None:
        metrics["final.reward_split_accuracy"] = float(last["reward_split_accuracy"])
    return tracker.log_run(f"{where}::search", f"search-seed{cfg.seed}", params, metrics, _series(log, tasks),
                           tags={"taskmix.command": "search", "taskmix.out": where})
