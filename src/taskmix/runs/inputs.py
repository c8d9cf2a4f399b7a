"""Digests of a run's inputs, so that ``--resume`` notices data that changed since the run started.

A run directory records, when the run starts, a sha256 of every split of every
task as the run uses it (the arrays after loading: features and labels, or the
text pairs and labels; :func:`input_digests`).  ``search --resume`` keeps them
in every checkpoint, ``compare --resume`` (and ``demo --resume``) in
``compare.json``; a resume whose data hash differently is refused with one line
naming the task, the split and its file (:func:`check_inputs`), unless told
otherwise (``--allow-changed-data``: then a warning).  Each array is hashed once
per run, at about the speed of reading it.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any, Sequence

import numpy as np

from ..config import Config
from ..data.tasks import Split, Task
from ..errors import ConfigError, warn

__all__ = ["INPUTS_FORMAT", "changed_inputs", "check_inputs", "input_digests", "split_digest"]

INPUTS_FORMAT = "taskmix.inputs/1"
SPLITS = ("train", "validation", "test")
_CHUNK = 1 << 24


def _update_array(h: Any, a: np.ndarray) -> None:
    a = np.ascontiguousarray(a)
    h.update(f"{a.dtype.str}{list(a.shape)}".encode("ascii"))
    flat = a.reshape(-1).view(np.uint8) if a.size else np.zeros(0, np.uint8)
    for i in range(0, len(flat), _CHUNK):
        h.update(flat[i : i + _CHUNK])


def _update_text(h: Any, item: Any) -> None:
    if isinstance(item, str):
        b = item.encode("utf-8", "surrogatepass")
        h.update(b"s" + struct.pack("<Q", len(b)) + b)
    elif isinstance(item, (tuple, list)):
        h.update(b"t" + struct.pack("<Q", len(item)))
        for part in item:
            _update_text(h, part)
    elif item is None:
        h.update(b"n")
    else:
        b = repr(item).encode("utf-8", "surrogatepass")
        h.update(b"r" + struct.pack("<Q", len(b)) + b)


def split_digest(split: Split) -> str:
    """sha256 of a split as a run uses it: its inputs (a feature array, or the texts) and its labels."""
    h = hashlib.sha256()
    if isinstance(split.x, np.ndarray):
        h.update(b"x:array")
        _update_array(h, split.x)
    else:
        h.update(b"x:text" + struct.pack("<Q", len(split.x)))
        for item in split.x:
            _update_text(h, item)
    h.update(b"y:")
    _update_array(h, np.asarray(split.y))
    return h.hexdigest()


def input_digests(tasks: Sequence[Task]) -> dict[str, Any]:
    """``{"format": ..., "tasks": {name: {"train": sha256, "validation": sha256 | None, "test": ...}}}`` of ``tasks``."""
    out: dict[str, Any] = {}
    for t in tasks:
        out[t.name] = {role: (split_digest(s) if (s := getattr(t, role)) is not None else None) for role in SPLITS}
    return {"format": INPUTS_FORMAT, "tasks": out}


def _describe(cfg: Config | None, task: str, role: str) -> str:
    spec = cfg.tasks.get(task) if cfg is not None else None
    source = getattr(spec, role, None) if spec is not None else None
    return f"task {task[:60]!r} {role} split" + (f" ({str(source)[:120]})" if source else "")


def changed_inputs(saved: Any, current: dict[str, Any], cfg: Config | None = None) -> list[str]:
    """What differs between recorded digests ``saved`` and ``current`` ones, each as ``task 'a' train split (a.npz)``."""
    old = saved.get("tasks") if isinstance(saved, dict) and saved.get("format") == INPUTS_FORMAT else None
    if not isinstance(old, dict):
        return ["the recorded input digests (unreadable)"]
    out = []
    for name, roles in current["tasks"].items():
        before = old.get(name)
        if not isinstance(before, dict):
            out.append(f"task {name[:60]!r} (not in the recorded inputs)")
            continue
        out += [_describe(cfg, name, role) for role in SPLITS if before.get(role) != roles[role]]
    out += [f"task {str(name)[:60]!r} (recorded, no longer loaded)" for name in old if name not in current["tasks"]]
    return out


def check_inputs(saved: Any, current: dict[str, Any], where: str, allow: bool = False, cfg: Config | None = None) -> None:
    """Refuse (:class:`ConfigError`, one line naming ``where`` and what changed) to resume on other data.

    ``saved``: the digests the run recorded (``None``: an older taskmix recorded none, so nothing can be
    checked: a warning).  With ``allow`` (``--allow-changed-data``) a change is a warning instead.
    """
    if saved is None:
        warn(f"{where}: no input digests recorded (written by an older taskmix); cannot check that the data is unchanged")
        return
    changed = changed_inputs(saved, current, cfg)
    if not changed:
        return
    shown = "; ".join(changed[:3]) + (f"; ... ({len(changed) - 3} more)" if len(changed) > 3 else "")
    if allow:
        warn(f"{where}: resuming on changed data (--allow-changed-data): {shown}")
        return
    raise ConfigError(f"{where}: cannot resume, the data changed since the run started: {shown}; "
                      "use the original data, a new --out, or --allow-changed-data to resume anyway")
