"""The schedule: the ``taskmix.schedule/1`` artifact (:mod:`.core`), the rule-based mixtures ``RULES`` (:mod:`.rules`),
exports to other pipelines (:mod:`.export`) and summaries and diffs for people (:mod:`.inspect`)."""

from .core import FORMAT, MAX_STEPS, TOLERANCE, Schedule, check_schedule, jsonable, positive_int
from .rules import (
    RULES,
    auxiliary_only,
    examples_proportional,
    explicit,
    proportional,
    rule_parameter,
    rule_weights,
    single_task,
    temperature,
    uniform,
)

__all__ = ["FORMAT", "MAX_STEPS", "RULES", "TOLERANCE", "Schedule", "auxiliary_only", "check_schedule", "examples_proportional",
           "explicit", "jsonable", "positive_int", "proportional", "rule_parameter", "rule_weights", "single_task",
           "temperature", "uniform"]
