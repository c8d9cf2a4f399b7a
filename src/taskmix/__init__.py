"""taskmix: learn how to mix tasks in multi-task training.

The package is layered, one concept per folder, imports only going down::

    errors, files, registry, devices   error types; atomic writes, locks, input limits; named registries; devices
    config, schedule                   the validated config; the ``taskmix.schedule/1`` artifact, its rules, exports
    replay, encoders                   a schedule replayed: sampler, PyTorch samplers, streams; cached encoders
    data, strategies                   tasks and the reward split; the policy, ``Mixer`` and the online strategies
    engine, hf                         model, trainer, data-parallel hooks; Hugging Face replay and learning
    runs                               job contract, rewards, search, online runs, checkpoints, logs
    compare                            method registry, runner, statistics, report, Ray
    cli                                the ``taskmix`` command (app, subcommands, error handling)

(``pyproject.toml``'s import-linter contract enforces this order; tests/test_layers.py checks this list against it.)  The everyday
objects are importable from here -- ``Config``, ``builtin_config``,
``load_config``, ``Schedule``, ``RULES``, ``TaskSampler``, the errors, and
(loaded on first use) ``load_tasks``, ``load_run_tasks``, ``Task``, ``Split``,
``prepare_job``, ``SearchRun``, ``Mixer`` (learn a schedule in your own loop),
``REWARDS``, ``Policy``, ``STRATEGIES``, ``Trainer``, ``train_with_schedule``,
``METHODS``, ``run_compare``, ``ScheduleBatchSampler``, ``ScheduleSampler`` and
``ScheduleIterableDataset``:

>>> import taskmix
>>> cfg = taskmix.builtin_config(["train.steps=20", "search.meta_steps=2"])
>>> job = taskmix.prepare_job(cfg, taskmix.load_run_tasks(cfg), seed=0)
>>> res = taskmix.SearchRun(job).run()
>>> isinstance(res.schedule, taskmix.Schedule)
True
"""

__version__ = "0.1.0"

import importlib  # noqa: E402
from typing import Any  # noqa: E402

from . import _legacy  # noqa: E402
from .config import Config, builtin_config, load_config  # noqa: E402
from .errors import ConfigError, DataError, ScheduleError, TaskmixError, TrainingError  # noqa: E402
from .replay.sampler import TaskSampler  # noqa: E402
from .schedule import RULES, Schedule  # noqa: E402

_legacy.install()

# Heavier objects (they import torch) load on first access, so `import taskmix` and the CLI start fast.
_LAZY = {
    "METHODS": "taskmix.compare",
    "run_compare": "taskmix.compare",
    "Split": "taskmix.data",
    "Task": "taskmix.data",
    "load_run_tasks": "taskmix.data",
    "load_tasks": "taskmix.data",
    "Trainer": "taskmix.engine",
    "train_with_schedule": "taskmix.engine",
    "REWARDS": "taskmix.runs",
    "SearchRun": "taskmix.runs",
    "Mixer": "taskmix.strategies",
    "prepare_job": "taskmix.runs",
    "STRATEGIES": "taskmix.strategies",
    "Policy": "taskmix.strategies",
    "ScheduleBatchSampler": "taskmix.replay.torch",
    "ScheduleSampler": "taskmix.replay.torch",
    "ScheduleIterableDataset": "taskmix.replay.streaming",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'taskmix' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "METHODS",
    "REWARDS",
    "RULES",
    "STRATEGIES",
    "Config",
    "ConfigError",
    "DataError",
    "Mixer",
    "Policy",
    "Schedule",
    "ScheduleBatchSampler",
    "ScheduleError",
    "ScheduleIterableDataset",
    "ScheduleSampler",
    "SearchRun",
    "Split",
    "Task",
    "TaskSampler",
    "TaskmixError",
    "Trainer",
    "TrainingError",
    "builtin_config",
    "load_config",
    "load_run_tasks",
    "load_tasks",
    "prepare_job",
    "run_compare",
    "train_with_schedule",
    "__version__",
]
