"""taskmix: learn how to mix tasks in multi-task training.

The main objects, importable from here (heavier pieces -- text loading,
encoders, Hugging Face adapters -- live in their own modules):

* :class:`~taskmix.schedule.Schedule` -- the static artifact of a search;
* :class:`~taskmix.sampler.TaskSampler` -- replays any schedule;
* :class:`~taskmix.policy.Policy` -- softmax policy, exploration, REINFORCE;
* :func:`~taskmix.search.search` / :class:`~taskmix.search.SearchRun` -- the search;
* :func:`~taskmix.train.train_with_schedule` -- retrain with a schedule;
* :func:`~taskmix.config.load_config` -- validated YAML configs.
"""

__version__ = "0.1.0"

from .config import Config, load_config  # noqa: E402
from .errors import ConfigError, DataError, ScheduleError, TaskmixError, TrainingError  # noqa: E402
from .policy import Policy  # noqa: E402
from .sampler import TaskSampler  # noqa: E402
from .schedule import Schedule  # noqa: E402

__all__ = [
    "Config",
    "ConfigError",
    "DataError",
    "Policy",
    "Schedule",
    "ScheduleError",
    "TaskSampler",
    "TaskmixError",
    "TrainingError",
    "load_config",
    "__version__",
]
