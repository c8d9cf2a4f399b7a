"""Training: the multi-task model, the trainer that replays a schedule, and the data-parallel hooks.

>>> from taskmix.config import builtin_config
>>> from taskmix.data import load_run_tasks
>>> from taskmix.engine import train_with_schedule
>>> from taskmix.schedule import RULES
>>> cfg = builtin_config(["train.steps=20", "search.meta_steps=2"])
>>> tasks = load_run_tasks(cfg)
>>> res = train_with_schedule(tasks, 0, RULES.get("uniform")([t.name for t in tasks]), cfg, seed=0)
>>> 0.0 <= res.test <= 1.0
True
"""

from .models import MLPTrunk, MultiTaskModel, build_model, build_optimizer
from .parallel import LOCAL, DataParallel, Dist, connect
from .trainer import Trainer, TrainResult, train_with_schedule

__all__ = [
    "LOCAL",
    "DataParallel",
    "Dist",
    "MLPTrunk",
    "MultiTaskModel",
    "TrainResult",
    "Trainer",
    "build_model",
    "build_optimizer",
    "connect",
    "train_with_schedule",
]
