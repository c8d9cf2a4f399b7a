"""The one dispatcher from a config to its tasks: built-in, ``.npz`` or text."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DataError
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
    if cfg.model.regime == "lm":  # text corpora cut into byte windows (taskmix.data.corpora)
        from .corpora import load_corpus_tasks

        return load_corpus_tasks(cfg)
    tasks: list[Task] = []
    for name, spec in cfg.tasks.items():
        is_npz = spec.format == "npz" or (
            spec.format == "auto" and spec.preset is None and str(spec.train or "").endswith(".npz")
        )
        if is_npz:
            tasks.append(load_npz_task(name, spec, cfg, required_eval=(name == cfg.target)))
        else:
            from .text import load_text_task

            try:
                task = load_text_task(name, spec, cfg, encoder)
                _check_label_space(task, name, spec, cfg)
            except DataError as e:
                raise _withhold_outside(e, name, spec, cfg) from None
            tasks.append(task)
    check_same_dim(tasks)
    return tasks


def _check_label_space(task: Task, name: str, spec: Any, cfg: "Config") -> None:
    """Refuse a validation or test label that the training split never has (a model cannot learn it)."""
    import numpy as np

    seen = set(np.unique(task.train.y).tolist())
    for role in ("validation", "test"):
        split = getattr(task, role)
        if split is None:
            continue
        outside = sorted(set(np.unique(split.y).tolist()) - seen)
        if outside:
            where = getattr(spec, role, None) or f"tasks.{name}.{role}"
            raise DataError(f"{where}: label(s) {outside[:5]} not among the training labels of tasks.{name} "
                            f"({sorted(seen)[:10]}); a model cannot learn a label it never sees")


_LOCATION = re.compile(r"^(:\d+| row \d+)?: ")


def _inside(path: Path, roots: list[Path]) -> bool:
    try:
        real = path.resolve()
    except (OSError, RuntimeError):
        return False
    return any(real == r or r in real.parents for r in roots)


def _withhold_outside(error: DataError, name: str, spec: Any, cfg: "Config") -> DataError:
    """``error``, or one without the file content it may quote when the file lies outside the config's folder and ``data_dir``.

    A config from someone else may name any readable file (``/etc/passwd``) as
    data; its refusal then says where and that the file is not valid data, and
    how to see the details (set ``data_dir`` to its folder), without echoing
    its lines, header or values.  A :class:`~taskmix.data.readers.DataFileError`
    (missing, not a regular file, too large, not UTF-8, no rows, ...) quotes no
    content and is shown as it is.
    """
    from .readers import DataFileError

    if isinstance(error, DataFileError):
        return error
    message = str(error)
    folders = [Path(os.path.expanduser(cfg.base_dir))] if cfg.base_dir else []
    if cfg.data_dir:
        folders.append(cfg.resolve(cfg.data_dir))  # relative to the config's folder, as text.py reads it
    roots = []
    for r in folders:
        try:
            roots.append(r.resolve())
        except (OSError, RuntimeError):
            pass
    for role in ("train", "validation", "test"):
        raw = getattr(spec, role, None)
        if not raw:
            continue
        path = cfg.resolve(raw)
        try:
            real = str(path.resolve())
        except (OSError, RuntimeError):
            real = str(path)
        for shown in sorted({str(path), os.path.normpath(path), real, str(raw)}, key=len, reverse=True):
            if not message.startswith(shown):
                continue
            rest = message[len(shown):]
            m = _LOCATION.match(rest)
            if m is None or _inside(path, roots):
                return error
            folder = os.path.dirname(real)
            return DataError(
                f"{shown}{m.group(1) or ''}: not valid data for tasks.{name} (details withheld: the file lies outside "
                f"the config's folder and data_dir; to see them, move it next to the config or set data_dir to its folder, "
                f"--data-dir {folder})"
            )
    return error


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
