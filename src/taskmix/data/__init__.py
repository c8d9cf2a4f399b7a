"""Tasks and where they come from: the built-in benchmark, ``.npz`` features, text files and presets.

>>> from taskmix.config import builtin_config
>>> from taskmix.data import load_run_tasks
>>> [t.name for t in load_run_tasks(builtin_config())]
['target', 'helpful', 'harmful', 'irrelevant']
"""

from .load import load_run_tasks, load_tasks
from .npz import load_npz_split, save_npz_split
from .synthetic import make_tasks
from .tasks import METRICS, Split, Task, carve_reward_split, check_same_dim

__all__ = [
    "METRICS",
    "Split",
    "Task",
    "carve_reward_split",
    "check_same_dim",
    "load_npz_split",
    "load_run_tasks",
    "load_tasks",
    "make_tasks",
    "save_npz_split",
]
