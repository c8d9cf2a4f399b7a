"""Peers: other papers' ways to find a task mixture, as methods of :data:`taskmix.compare.methods.METHODS`.

Each peer produces a static :class:`~taskmix.schedule.Schedule` (provenance names the peer), retrained from
scratch like the learned schedules (kind ``peer``), with its settings under ``compare.peers.<name>``
(:mod:`.settings`) and its cost counted in ``train_steps`` (proxy runs, reference models, sweeps) and in
``extra.cost_plain_runs``.  UniMax is a rule (:func:`taskmix.schedule.rules.unimax`), so a baseline method.

========  =====================================================  =====================================
method    what it does                                           cost (plain runs, defaults)
========  =====================================================  =====================================
regmix    16 proxies at 1/8 length, ridge fit, surface search    2 + 1 retrain
mixmin    one 1/4-length model per task, convex fit              n_tasks / 4 + 1 retrain (shared head)
========  =====================================================  =====================================

DoReMi and Aioli adapt the mixture during a run, so they are online strategies
(:mod:`taskmix.strategies.doremi`, :mod:`taskmix.strategies.aioli`; settings under ``compare.strategies.<name>``),
whose methods ``<name>`` / ``<name>-replay`` the online-strategy registration gives: ``doremi-replay`` (reference
run, DRO proxy, retrain: 3 plain runs), ``doremi_target-replay`` (2), ``aioli`` (1; its sweeps are inside the run),
``aioli-replay`` (2), ``aioli_target`` / ``aioli_target-replay`` (1 / 2).

>>> from taskmix.compare import METHODS
>>> METHODS.meta("regmix", "kind"), METHODS.meta("unimax", "kind")
('peer', 'baseline')
"""

from __future__ import annotations

from ..methods import CONFIG_CHECKS, METHODS
from ._mixmin import mixmin_method
from ._regmix import regmix_method
from .settings import PEER_SETTINGS, check_peers, peer_settings

__all__ = ["PEER_SETTINGS", "check_peers", "peer_settings"]

CONFIG_CHECKS.append(check_peers)

# one line per peer (name, method)
METHODS.register("regmix", regmix_method, kind="peer")
METHODS.register("mixmin", mixmin_method, kind="peer")
