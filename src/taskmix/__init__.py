"""taskmix: learn how to mix tasks in multi-task training.

The package is layered, one concept per folder, imports only going down::

    errors, devices, registry        layer 0
    config, schedule, sampler        layer 1: the validated config, the artifact, the vectorised sampler
    encoders, data, strategies       layer 2: tasks and encoders; the policy and the online strategies
    torch_data, hf                   layer 2: replay a schedule in PyTorch and Hugging Face loops
    engine                           layer 3: model, trainer, data-parallel hooks
    runs                             layer 4: job contract, rewards, search, online runs, checkpoints, logs
    compare                          layer 5: method registry, runner, statistics, report, Ray
    cli                              layer 6

The everyday objects are importable from here:

>>> import taskmix
>>> cfg = taskmix.builtin_config(["train.steps=20", "search.meta_steps=2"])
>>> job = taskmix.prepare_job(cfg, taskmix.load_run_tasks(cfg), seed=0)
>>> res = taskmix.SearchRun(job.tasks, job.target, job.reward_split, cfg, seed=0).run()
>>> isinstance(res.schedule, taskmix.Schedule)
True
"""

__version__ = "0.1.0"

import importlib  # noqa: E402
from typing import Any  # noqa: E402

from . import _legacy  # noqa: E402
from .config import Config, builtin_config, load_config  # noqa: E402
from .errors import ConfigError, DataError, ScheduleError, TaskmixError, TrainingError  # noqa: E402
from .sampler import TaskSampler  # noqa: E402
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
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'taskmix' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "METHODS",
    "Mixer",
    "REWARDS",
    "RULES",
    "STRATEGIES",
    "Config",
    "ConfigError",
    "DataError",
    "Policy",
    "Schedule",
    "ScheduleError",
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
