"""Online mixing strategies: one small module each, one registry, one base class whose hooks say when they run.

=====================  ==========================================================  =========================
name                   what it is                                                  feedback it asks for
=====================  ==========================================================  =========================
``exp3``               :class:`EXP3` -- Online Data Mixing (Albalak et al., 2023)   the per-task training loss
``thompson``           :class:`ThompsonSampling` -- AutoSeM stage 1 (Guo et al.,    the target's reward-split
                       2019), a Beta-Bernoulli bandit                              metric
``gradient_alignment`` :class:`GradientAlignment` -- MultiDDS-like (Wang et al.,   gradient alignment with the
                       2020)                                                       target's reward split
``doremi``             :class:`DoReMi` -- DoReMi (Xie et al., 2023): group DRO on    per-task held-out loss (and
                       the excess loss over a reference model                      a reference run first)
``doremi_target``      :class:`DoReMiTarget` -- DoReMi's update on the target's     gradient alignment with the
                       gradient alignment (DoGE's out-of-domain rule)              target's reward split
``aioli``              :class:`Aioli` -- Aioli (Chen et al., ICLR 2025): mixing-   per-task held-out loss
                       law sweeps, exponentiated-gradient steps
``aioli_target``       :class:`AioliTarget` -- Aioli on the target's row of the     per-task held-out loss
                       mixing law only
=====================  ==========================================================  =========================

Each strategy's hyper-parameters are its constructor arguments, set from the
config section ``compare.strategies.<name>`` (``compare: {strategies: {exp3:
{lr: 0.5}}}``), checked against the constructor by :func:`check_settings`.
:class:`~taskmix.strategies.policy.Policy` is the learned search's softmax
policy (the paper's exploration and REINFORCE update); it is driven by
:class:`taskmix.runs.search_run.SearchRun`, not by an online run.

One name: these are the *online strategies* everywhere (docs, help, this
registry, ``compare.strategies``, :class:`taskmix.runs.online.OnlineRun` and
:func:`~taskmix.runs.online.run_online`).  Older names kept working: the
methods' stored ``kind`` strings ``adaptive`` / ``adaptive-replay`` (results
rows), ``AdaptiveRun`` / ``AdaptiveResult`` and the ``taskmix.adaptive`` alias.

>>> from taskmix.strategies import STRATEGIES, make_strategy
>>> s = make_strategy("exp3", n_tasks=3, target=0, seed=0)
>>> [round(float(w), 3) for w in s.weights(0)]
[0.333, 0.333, 0.333]
>>> STRATEGIES.names()
['exp3', 'thompson', 'gradient_alignment', 'doremi', 'doremi_target', 'aioli', 'aioli_target']
"""

from __future__ import annotations

import inspect
from typing import Any

from ..config import Config
from ..errors import ConfigError
from ..registry import Registry
from .aioli import Aioli, AioliTarget
from .base import FEEDBACK_KINDS, MetaStepInfo, Strategy, softmax
from .doremi import DoReMi, DoReMiTarget
from .exp3 import EXP3
from .credit import alignment
from .gradient_alignment import GradientAlignment
from .mixer import Mixer
from .policy import Policy
from .thompson import ThompsonSampling

__all__ = [
    "Aioli",
    "AioliTarget",
    "DoReMi",
    "DoReMiTarget",
    "EXP3",
    "FEEDBACK_KINDS",
    "STRATEGIES",
    "GradientAlignment",
    "MetaStepInfo",
    "Mixer",
    "Policy",
    "Strategy",
    "ThompsonSampling",
    "alignment",
    "check_settings",
    "make_strategy",
    "softmax",
    "strategy_kwargs",
]

STRATEGIES: Registry[type[Strategy]] = Registry("strategy", field="compare.strategies")
"""Every online strategy class, by its ``name``."""
for _cls in (EXP3, ThompsonSampling, GradientAlignment, DoReMi, DoReMiTarget, Aioli, AioliTarget):
    STRATEGIES.register(_cls.name, _cls)

_RUN_ARGUMENTS = ("n_tasks", "target", "seed")  # set by the run, not by the config


def settings_of(name: str) -> list[str]:
    """The hyper-parameters of strategy ``name`` that ``compare.strategies.<name>`` may set."""
    cls = STRATEGIES.get(name)
    return [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", *_RUN_ARGUMENTS)]


def strategy_kwargs(cfg: Config, name: str) -> dict[str, Any]:
    """Hyper-parameters for strategy ``name`` from ``cfg.compare.strategies.<name>``.

    For ``gradient_alignment``, ``probe_batches`` defaults to
    ``search.probe_batches`` so that it probes like the learned search.
    """
    out: dict[str, Any] = {}
    if name == "gradient_alignment":
        out["probe_batches"] = int(cfg.search.probe_batches)
    for arg, v in (cfg.compare.strategies.get(name) or {}).items():
        out[arg] = tuple(v) if isinstance(v, list) else v
    return out


def make_strategy(name: str, n_tasks: int, target: int = 0, seed: int = 0, **kwargs: Any) -> Strategy:
    """Build strategy ``name`` (one of :data:`STRATEGIES`) over ``n_tasks`` tasks."""
    return STRATEGIES.get(name)(n_tasks, target, seed, **kwargs)


def check_settings(cfg: Config, n_tasks: int = 2) -> None:
    """Refuse unknown strategies, unknown settings and invalid values in ``compare.strategies``, naming the field."""
    for name, settings in cfg.compare.strategies.items():
        STRATEGIES.get(name, field=f"compare.strategies.{name}")
        allowed = settings_of(name)
        for arg in settings or {}:
            if arg not in allowed:
                raise ConfigError(f"compare.strategies.{name}.{arg}: unknown setting; expected one of {allowed}")
        try:
            make_strategy(name, n_tasks, 0, 0, **strategy_kwargs(cfg, name))
        except (TypeError, ValueError) as e:
            msg = str(e).removeprefix(f"{name}: ")
            bad = next((a for a in allowed if msg.startswith((f"{a} ", f"{a}[", f"{a}:"))), None)
            raise ConfigError(f"compare.strategies.{name}{'.' + bad if bad else ''}: {msg}") from None
