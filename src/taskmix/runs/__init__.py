"""Runs: a job's contract, the rewards, the learned search, online runs, checkpoints and logs.

>>> from taskmix.config import builtin_config
>>> from taskmix.data import load_run_tasks
>>> from taskmix.runs import prepare_job, search
>>> cfg = builtin_config(["train.steps=20", "search.meta_steps=2"])
>>> job = prepare_job(cfg, load_run_tasks(cfg), seed=0)   # carves the reward split out of the target's train data
>>> res = search(job)
>>> res.schedule.tasks
('target', 'helpful', 'harmful', 'irrelevant')
"""

from .job import Job, MethodResult, prepare_job, replay
from .online import AdaptiveResult, AdaptiveRun, OnlineResult, OnlineRun, run_online
from .rewards import REWARDS, RewardContext, make_reward
from .search_run import SearchResult, SearchRun, search
from .search_dir import run_search, run_search_dir

__all__ = [
    "REWARDS",
    "AdaptiveResult",
    "AdaptiveRun",
    "Job",
    "MethodResult",
    "OnlineResult",
    "OnlineRun",
    "RewardContext",
    "SearchResult",
    "SearchRun",
    "make_reward",
    "prepare_job",
    "replay",
    "run_online",
    "run_search",
    "run_search_dir",
    "search",
]
