"""Replay: a schedule turned into task draws -- the vectorised sampler (:mod:`.sampler`), PyTorch samplers over
map-style datasets (:mod:`.torch`) and an iterable dataset over streams (:mod:`.streaming`).

The sampler loads with ``import taskmix``; the PyTorch objects (they import torch) on first use.
"""

import importlib
from typing import Any

from .sampler import ExampleStreams, TaskSampler

_LAZY = {
    "ScheduleBatchSampler": ".torch",
    "ScheduleSampler": ".torch",
    "realised_proportions": ".torch",
    "scheduled_proportions": ".torch",
    "ScheduleIterableDataset": ".streaming",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ExampleStreams", "TaskSampler", *_LAZY]
