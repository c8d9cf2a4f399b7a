"""The one dispatcher from a config to its tasks: built-in, ``.npz`` or text."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .npz import load_npz_task
from .tasks import Task, check_same_dim

if TYPE_CHECKING:
    from ..config import Config

def load_tasks(cfg: "Config", encoder: Any = None) -> list[Task]:
    """All tasks of a config, in config order (the built-in benchmark if ``cfg.synthetic``).

    Feature tasks come from ``.npz`` files; everything else is a text task
    (:func:`taskmix.data.text.load_text_task`), encoded by ``encoder`` when given
    (frozen regime) or kept as text (fine-tuning regime).
    """
    if cfg.synthetic is not None:
        from .synthetic import make_tasks

        return make_tasks(cfg.synthetic)
    tasks: list[Task] = []
    for name, spec in cfg.tasks.items():
        is_npz = spec.format == "npz" or (
            spec.format == "auto" and spec.preset is None and str(spec.train or "").endswith(".npz")
        )
        if is_npz:
            tasks.append(load_npz_task(name, spec, cfg, required_eval=(name == cfg.target)))
        else:
            from .text import load_text_task

            tasks.append(load_text_task(name, spec, cfg, encoder))
    check_same_dim(tasks)
    return tasks


def load_run_tasks(cfg: "Config") -> list[Task]:
    """Tasks for a run: builds the frozen encoder (text tasks, frozen regime) once, then :func:`load_tasks`."""
    text = cfg.synthetic is None and any(
        not (s.format == "npz" or (s.format == "auto" and s.preset is None and str(s.train or "").endswith(".npz")))
        for s in cfg.tasks.values()
    )
    encoder = None
    if text and cfg.model.regime == "frozen":
        from ..encoders import SentenceEncoder

        encoder = SentenceEncoder.from_config(cfg.encoder, cfg)
    return load_tasks(cfg, encoder)
