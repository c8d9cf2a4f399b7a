"""Per-task credit from gradients: how much a step on one task's loss moves the target's."""

from __future__ import annotations

import torch

__all__ = ["alignment"]


def alignment(g_target: torch.Tensor, g_task: torch.Tensor, similarity: str = "dot") -> float:
    """How much a step along ``g_task`` lowers the target's loss, from the two flat gradients.

    ``"cosine"``: their cosine (MultiDDS).  ``"dot"``: ``g_task . g_target /
    |g_target|^2``, the first-order drop of the target's loss per unit step on
    the task, relative to a step on the target itself (1 for the target's own
    gradient).  0 when a gradient vanishes.
    """
    if similarity == "cosine":
        denom = float(g_task.norm() * g_target.norm())
    else:
        denom = float(g_target.norm() ** 2)
    return float(g_task @ g_target) / denom if denom > 0 else 0.0
