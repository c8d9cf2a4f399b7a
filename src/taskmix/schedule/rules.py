"""The rule-based mixtures (``RULES``): single task, uniform, proportional, temperature, examples-proportional, UniMax, explicit."""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, ScheduleError
from ..registry import Registry

from .core import Schedule

__all__ = ["RULES", "auxiliary_only", "examples_proportional", "explicit", "proportional", "rule_parameter", "rule_weights",
           "single_task", "temperature", "uniform", "unimax"]


# --------------------------------------------------------------- rule-based
# Each rule maps (tasks, sizes, **params) to unnormalised weights; the
# Schedule constructor normalises them.  ``sizes`` are the training-set sizes.


def _sizes(tasks: Sequence[str], sizes: Mapping[str, int]) -> np.ndarray:
    missing = [t for t in tasks if t not in sizes]
    if missing:
        raise ScheduleError(f"sizes: no training-set size for task(s) {missing}")
    for t in tasks:
        v = sizes[t]
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise ScheduleError(f"sizes: the size of task {t!r} must be a number, got {str(v)[:40]!r}")
    n = np.asarray([float(sizes[t]) for t in tasks])
    if np.any(n < 0) or not np.all(np.isfinite(n)):
        raise ScheduleError("sizes: training-set sizes must be finite and non-negative")
    return n


def single_task(tasks: Sequence[str], target: str, **_: Any) -> Schedule:
    """All weight on the target task."""
    if target not in tasks:
        raise ScheduleError(f"single_task: target {target!r} is not among the tasks {list(tasks)}")
    w = [1.0 if t == target else 0.0 for t in tasks]
    return Schedule.from_weights(tasks, w, provenance={"method": "single_task", "target": target})


def auxiliary_only(tasks: Sequence[str], target: str, **_: Any) -> Schedule:
    """Uniform over the auxiliary tasks, none on the target: pure transfer (the paper's "English" column).

    Meaningful with a head the target shares (``model.heads: shared``); a per-task target head stays untrained.
    """
    if target not in tasks or len(tasks) < 2:
        raise ScheduleError(f"auxiliary_only: needs the target {target!r} and at least one other task, got {list(tasks)}")
    w = [0.0 if t == target else 1.0 for t in tasks]
    return Schedule.from_weights(tasks, w, provenance={"method": "auxiliary_only", "target": target})


def uniform(tasks: Sequence[str], **_: Any) -> Schedule:
    """Equal weight on every task."""
    return Schedule.from_weights(tasks, np.ones(len(tasks)), provenance={"method": "uniform"})


def proportional(tasks: Sequence[str], sizes: Mapping[str, int], **_: Any) -> Schedule:
    """p_i proportional to the number of training examples."""
    return Schedule.from_weights(tasks, _sizes(tasks, sizes), provenance={"method": "proportional"})


def temperature(tasks: Sequence[str], sizes: Mapping[str, int], temperature: float = 2.0, **_: Any) -> Schedule:
    """p_i proportional to n_i^(1/T): T=1 is proportional, T->inf is uniform."""
    if isinstance(temperature, bool) or not (isinstance(temperature, (int, float, np.integer, np.floating))
                                             and math.isfinite(temperature) and temperature > 0):
        raise ScheduleError(f"temperature: T must be a positive finite number, got {temperature!r}")
    n = _sizes(tasks, sizes)
    return Schedule.from_weights(
        tasks, n ** (1.0 / temperature), provenance={"method": "temperature", "temperature": float(temperature)}
    )


def examples_proportional(
    tasks: Sequence[str], sizes: Mapping[str, int], cap: int = 2**15, temperature: float = 1.0, **_: Any
) -> Schedule:
    """T5/seqio: p_i proportional to min(n_i, K)^(1/T) (artificial data-set size limit K)."""
    if isinstance(cap, bool) or not (isinstance(cap, (int, float, np.integer, np.floating)) and cap > 0 and math.isfinite(cap)):
        raise ScheduleError(f"examples_proportional: cap must be a positive finite number, got {cap!r}")
    if isinstance(temperature, bool) or not (isinstance(temperature, (int, float, np.integer, np.floating))
                                             and math.isfinite(temperature) and temperature > 0):
        raise ScheduleError(f"examples_proportional: temperature must be positive, got {temperature!r}")
    n = np.minimum(_sizes(tasks, sizes), float(cap)) ** (1.0 / temperature)
    return Schedule.from_weights(
        tasks,
        n,
        provenance={"method": "examples_proportional", "cap": cap, "temperature": float(temperature)},
    )


def explicit(tasks: Sequence[str], weights: Mapping[str, float] | Sequence[float], **_: Any) -> Schedule:
    """User-given weights, as a mapping task -> weight or a list in task order."""
    if isinstance(weights, Mapping):
        unknown = sorted(set(weights) - set(tasks))
        if unknown:
            raise ScheduleError(f"explicit: unknown task(s) {unknown}; tasks are {list(tasks)}")
        w = [weights.get(t, 0.0) for t in tasks]
    elif isinstance(weights, (str, bytes)) or not isinstance(weights, (Sequence, np.ndarray)):
        raise TypeError(f"explicit: weights must be a mapping task -> weight or a list, got {type(weights).__name__}")
    else:
        w = list(weights)
    for i, v in enumerate(w):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise TypeError(f"explicit: weights[{i}] must be a number, got {str(v)[:40]!r}")
    return Schedule.from_weights(tasks, w, provenance={"method": "explicit"})


UNIMAX_EPOCHS = 1.0
"""UniMax's default cap: at most this many epochs of any task over the run (the paper sweeps small N; taskmix takes 1)."""


def unimax(tasks: Sequence[str], sizes: Mapping[str, int], budget: int | None = None, epochs: float = UNIMAX_EPOCHS,
           **_: Any) -> Schedule:
    """UniMax (Chung et al., 2023): the run's budget spread uniformly over the tasks, no task past ``epochs`` epochs.

    ``budget`` is the examples the run draws (``train.steps * train.batch_size``).  Tasks are visited from the
    smallest: each gets ``min(remaining / tasks left, epochs * n_i)`` examples, and what a capped task cannot take
    is spread over the larger ones.  When every task is capped (the budget exceeds ``epochs`` epochs of all the
    data) the weights are the caps, i.e. proportional to the sizes.  The target is one task like the others.

    >>> unimax(["a", "b", "c"], {"a": 10, "b": 100, "c": 1000}, budget=300).weights[0].round(4).tolist()
    [0.0333, 0.3333, 0.6333]
    """
    if budget is None:
        raise ScheduleError("unimax: needs the run's budget (train.steps * train.batch_size examples)")
    if isinstance(budget, bool) or not (isinstance(budget, (int, float, np.integer, np.floating)) and math.isfinite(budget)
                                        and budget > 0):
        raise ScheduleError(f"unimax: budget must be a positive finite number of examples, got {budget!r}")
    if isinstance(epochs, bool) or not (isinstance(epochs, (int, float, np.integer, np.floating)) and math.isfinite(epochs)
                                        and epochs > 0):
        raise ScheduleError(f"unimax: epochs must be a positive finite number, got {epochs!r}")
    n = _sizes(tasks, sizes)
    alloc = np.zeros(len(tasks))
    left = float(budget)
    for k, i in enumerate(np.argsort(n, kind="stable")):
        alloc[i] = min(left / (len(tasks) - k), float(epochs) * n[i])
        left -= alloc[i]
    if not alloc.sum() > 0:
        raise ScheduleError("unimax: every task is empty")
    return Schedule.from_weights(tasks, alloc, provenance={"method": "unimax", "epochs": float(epochs),
                                                           "budget": float(budget), "capped": bool(left > 1e-9 * budget)})


RULES: Registry[Callable[..., Schedule]] = Registry("rule")
"""The rule-based mixtures, by name.  Each rule takes the task names and the keyword arguments it needs
(``target``, ``sizes``, ``temperature``, ``cap``, ``weights``) and ignores the others.  Metadata:
``method`` -- usable as a comparison method as it is (``explicit`` needs the user's weights);
``parameter`` -- the keyword a method name's suffix sets (``temperature_2``);
``plain`` -- a parametric rule that is also a method under its bare name, with the default value (``unimax``)."""
RULES.register("single_task", single_task, method=True)
RULES.register("uniform", uniform, method=True)
RULES.register("auxiliary_only", auxiliary_only, method=True)
RULES.register("proportional", proportional, method=True)
RULES.register("temperature", temperature, method=True, parameter="temperature")
RULES.register("examples_proportional", examples_proportional, method=True)
RULES.register("explicit", explicit, method=False)
RULES.register("unimax", unimax, method=True, parameter="epochs", plain=True)


def rule_parameter(rule: str, suffix: str) -> dict[str, float]:
    """The keyword a parametric rule's name suffix sets (``temperature`` + ``"2"`` -> ``{"temperature": 2.0}``);
    :class:`ValueError` for a suffix that is not a positive finite number."""
    parameter = RULES.meta(rule, "parameter")
    try:
        value = float(suffix)
    except ValueError:
        raise ValueError(f"the suffix of {rule}_<{parameter}> must be a number") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{parameter} must be a positive finite number")
    return {parameter: value}


def rule_weights(name: str, tasks: Sequence[str], target: str, sizes: Mapping[str, int], cap: int = 2**15,
                 field: str = "rule") -> np.ndarray:
    """The weights of the rule called ``name`` (``proportional``, ``temperature_2``, ...), in ``tasks`` order.

    ``name`` is a rule of :data:`RULES` usable as it is, or a parametric rule with its value as a
    suffix (``temperature_2``: ``temperature`` with ``T = 2``).  :class:`ConfigError` naming ``field``
    for an unknown name or a bad suffix.

    >>> rule_weights("proportional", ["a", "b"], "a", {"a": 100, "b": 300}).tolist()
    [0.25, 0.75]
    """
    rule, kwargs = name, {}
    if name not in RULES:
        for base in RULES:
            if RULES.meta(base, "parameter") and name.startswith(base + "_"):
                try:
                    kwargs = rule_parameter(base, name[len(base) + 1:])
                except ValueError as e:
                    raise ConfigError(f"{field}: {name!r}: {e}") from None
                rule = base
                break
    choices = [n for n in RULES if RULES.meta(n, "method")]
    choices += [f"{n}_<{RULES.meta(n, 'parameter')}>" for n in RULES if RULES.meta(n, "parameter")]
    if rule not in RULES or not RULES.meta(rule, "method"):
        raise ConfigError(f"{field}: unknown rule {name!r}; expected one of {choices}")
    try:
        sched = RULES.get(rule)(list(tasks), target=target, sizes=sizes, cap=cap, **kwargs)
    except ScheduleError as e:
        raise ConfigError(f"{field}: {e}") from None
    return np.asarray(sched.weights[0], dtype=np.float64)
