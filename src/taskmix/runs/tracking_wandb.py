"""Weights & Biases for :mod:`taskmix.runs.tracking`: complete runs, each logged once, online or offline.

The runs logged and finished from an output directory are recorded in its
``wandb_runs.json`` (written atomically; per mode, entity and project), and a
recorded run is skipped: a resumed ``compare`` or ``search`` sends nothing
twice.  A run's id is a digest of what it logs (the output directory, the cell,
its settings, metrics and log), so logging the same results again -- after a
crash while logging, or with the record lost -- reaches the same W&B run, which
online is resumed (``resume="allow"``) and sent only the steps it does not hold
yet (offline, a second copy of the run's files is written, under the same id).
A fresh run into a reused directory logs other results (other wall times), so
it gets a new id and is never mixed into an old run.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError, OutputError, TaskmixError, first_line, warn
from ..files import atomic_write_text, read_input_bytes

__all__ = ["DONE_FILE", "MODES", "WandbTracker", "import_wandb", "resolve_mode", "run_id"]

DONE_FILE = "wandb_runs.json"
"""The file in an output directory recording the W&B runs logged (and finished) from it."""
DONE_FORMAT = "taskmix-wandb-runs/1"
MODES = ("online", "offline", "disabled")
"""The W&B modes ``logging.wandb.mode`` (and ``$WANDB_MODE``) may name."""
_ALIASES = {"dryrun": "offline", "run": "online"}  # W&B's older names


def import_wandb() -> Any:
    """The ``wandb`` module, or the one-line :class:`ConfigError` saying it is not installed."""
    try:
        import wandb
    except ImportError:
        raise ConfigError("logging.wandb: the wandb package is not installed (pip install wandb)") from None
    return wandb


def resolve_mode(mode: str | None) -> str:
    """The mode runs are logged in: ``mode`` when set, else ``$WANDB_MODE`` (``dryrun`` is offline), else online."""
    if mode is not None:
        return mode
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    if not env:
        return "online"
    env = _ALIASES.get(env, env)
    if env not in MODES:
        raise ConfigError(f"WANDB_MODE: {env[:40]!r} is not a W&B mode; expected online, offline or disabled "
                          "(or set logging.wandb.mode)")
    return env


def run_id(key: str, params: dict[str, Any], metrics: dict[str, float], series: Sequence[tuple[int, dict[str, float]]]) -> str:
    """The W&B run id of one logged run: a digest of its key and everything it logs (the same results, the same id)."""
    body = json.dumps({"key": key, "params": params, "metrics": metrics, "series": [[s, v] for s, v in series]},
                      sort_keys=True, separators=(",", ":"), default=str)
    return "taskmix-" + hashlib.sha256(body.encode("utf-8")).hexdigest()[:16]


def _nested(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"train.steps": 60}`` as ``{"train": {"steps": 60}}`` (W&B shows nested config keys dotted)."""
    out: dict[str, Any] = {}
    for k, v in flat.items():
        *parents, leaf = k.split(".")
        d = out
        for p in parents:
            d = d.setdefault(p, {})
        d[leaf] = v
    return out


def _failed(e: BaseException) -> ConfigError:
    """W&B's refusal (no API key, an unknown entity, the server unreachable) as one line, with the way to recover."""
    return ConfigError(f"logging.wandb: {first_line(e)[:300]} (the results are saved; rerun with --resume to log them)")


class WandbTracker:
    """Logs complete runs to Weights & Biases, once each (see the module docstring).

    ``out`` is the output directory whose runs are logged (it keeps
    :data:`DONE_FILE`); ``dir`` is where W&B writes its own files, resolved
    against ``base_dir`` (the config's directory).
    """

    def __init__(self, project: str, entity: str | None, mode: str, dir: str | None, out: str | Path,
                 base_dir: str | Path = "."):
        if mode not in ("online", "offline"):
            raise ValueError(f"mode must be online or offline, not {mode!r}")
        self.wandb = import_wandb()
        self.project, self.entity, self.mode = project, entity, mode
        self.dir = None if dir is None else Path(base_dir, os.path.expanduser(dir)).resolve()
        self.out = Path(out)
        self.done_path = self.out / DONE_FILE
        self.scope = f"{mode}:{entity or ''}/{project}"
        self.done = self._read_done()
        self.logged: list[str] = []  # the ids of the runs logged by this tracker
        self.where = ""  # where they went: the offline runs' directory, or the project's URL

    def _read_done(self) -> dict[str, Any]:
        """The runs recorded in :data:`DONE_FILE`; a damaged file is reported and read as empty."""
        try:
            raw = read_input_bytes(self.done_path, DONE_FILE, 2**24, OutputError, follow_symlinks=False)
        except FileNotFoundError:
            return {}
        except (OSError, TaskmixError) as e:
            why = first_line(e)
        else:
            try:
                data = json.loads(raw)
                if not (isinstance(data, dict) and data.get("format") == DONE_FORMAT and isinstance(data.get("runs"), dict)):
                    raise ValueError(f"not a {DONE_FORMAT} file")
                return dict(data["runs"])
            except ValueError as e:  # JSON errors included
                why = first_line(e)
        warn(f"{self.done_path}: unreadable ({why[:200]}); runs are logged to W&B again, under the same ids")
        return {}

    def log_run(self, key: str, name: str, params: dict[str, Any], metrics: dict[str, float],
                series: Sequence[tuple[int, dict[str, float]]] = (), tags: dict[str, str] | None = None) -> str | None:
        """One complete run; returns its id, or ``None`` when ``key`` is logged already.

        ``metrics`` go to the run's summary, ``series`` (``(step, {name: value})``)
        to its history at those steps, ``params`` and ``tags`` to its config.
        """
        done_key = f"{self.scope}::{key}"
        if done_key in self.done:
            return None
        wandb = self.wandb
        rid = run_id(key, params, metrics, series)
        tags = dict(tags or {})
        command = tags.get("taskmix.command", "")
        where = tags.get("taskmix.out", str(self.out.resolve()))
        group = f"{Path(where).name}-{hashlib.sha256(where.encode('utf-8')).hexdigest()[:8]}"
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
        try:
            run = wandb.init(
                project=self.project, entity=self.entity, mode=self.mode, dir=None if self.dir is None else str(self.dir),
                id=rid, name=name, group=group, job_type=command or None, tags=["taskmix"] + ([command] if command else []),
                config=_nested({**params, **tags, "taskmix.key": key}),
                resume="allow", reinit="create_new", settings=wandb.Settings(console="off", silent=True),
            )  # silent: W&B's ~20 lines per run give way to finish()'s one line
        except wandb.errors.Error as e:
            raise _failed(e) from None
        ok = False
        try:
            first = int(run.step or 0) if run.resumed else 0  # a resumed run already holds the steps before run.step
            for step, values in sorted(series, key=lambda sv: sv[0]):
                if step >= first:
                    run.log(dict(values), step=int(step))
            run.summary.update(dict(metrics))
            self.where = str(Path(run.sync_dir).parent) if self.mode == "offline" else (run.project_url or self.project)
            ok = True
        except wandb.errors.Error as e:
            raise _failed(e) from None
        finally:
            run.finish(exit_code=0 if ok else 1)
        self.logged.append(rid)
        self.done[done_key] = {"id": rid, "name": name, "project": self.project, "entity": self.entity, "mode": self.mode}
        atomic_write_text(self.done_path, json.dumps({"format": DONE_FORMAT, "runs": self.done}, indent=2, sort_keys=True) + "\n")
        return rid

    def finish(self) -> None:
        """One line on stderr saying how many runs were logged and where (offline: how to upload them)."""
        if not self.logged:
            return
        n = f"{len(self.logged)} run{'s' if len(self.logged) > 1 else ''}"
        if self.mode == "offline":
            msg = f"{n} saved offline in {self.where}; upload with: wandb sync {self.where}{os.sep}offline-run-*-taskmix-*"
        else:
            msg = f"{n} logged to {self.where}"
        sys.stderr.write(f"wandb: {msg}\n")
        sys.stderr.flush()
        self.logged = []
