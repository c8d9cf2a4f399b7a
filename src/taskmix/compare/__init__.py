"""Compare every method on the same tasks, seeds and budget: the method registry, the runner, statistics, report.

>>> from taskmix.compare import METHODS
>>> "learned_time_invariant" in METHODS and "temperature_3" in METHODS
True
"""

from .methods import DEFAULT_METHODS, FEATURE_METHODS, METHODS, check_config, default_methods, run_method, select_methods
from . import peers  # noqa: F401,E402  # registers the peer methods into METHODS (after methods)
from .runner import run_cells, run_compare, warm_up
from .stats import bootstrap_ci, format_table, paired_t, summarize, t_ci

__all__ = [
    "DEFAULT_METHODS",
    "FEATURE_METHODS",
    "METHODS",
    "bootstrap_ci",
    "check_config",
    "default_methods",
    "format_table",
    "paired_t",
    "run_cells",
    "run_compare",
    "run_method",
    "select_methods",
    "summarize",
    "t_ci",
    "warm_up",
]
