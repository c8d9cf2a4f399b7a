"""Checkpoints: atomic, keep-last-K, refused when the config changed.

A checkpoint is ``{"config": <fingerprint>, "seed": S, "data": <task sizes>, "state": SearchRun.state_dict()}``
written with ``torch.save`` to a temporary file, fsynced and renamed
(:func:`taskmix.errors.atomic_write_bytes`), as ``ckpt-<index>.pt``; only the
last ``keep`` are kept.  A crash at any point leaves the previous complete
checkpoint readable.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError, atomic_write_bytes

_NAME = re.compile(r"^ckpt-(\d+)\.pt$")


def checkpoints(directory: str | Path) -> list[Path]:
    d = Path(directory)
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def save_checkpoint(directory: str | Path, index: int, payload: dict[str, Any], keep: int = 2) -> Path:
    d = Path(directory)
    buf = io.BytesIO()
    torch.save(payload, buf)
    path = d / f"ckpt-{index:06d}.pt"
    atomic_write_bytes(path, buf.getvalue())
    for old in checkpoints(d)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return path


def load_latest(directory: str | Path) -> dict[str, Any] | None:
    """The newest readable checkpoint (a corrupt newest one falls back to the previous)."""
    for path in reversed(checkpoints(directory)):
        try:
            payload = torch.load(path, map_location="cpu", weights_only=False)
        except Exception:
            continue
        if isinstance(payload, dict) and isinstance(payload.get("state"), dict):
            return {**payload, "path": str(path)}
    return None


def diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b), key=str):
            p = f"{prefix}.{k}" if prefix else str(k)
            if k not in a or k not in b:
                out.append(p)
            else:
                out += diff_keys(a[k], b[k], p)
        return out
    return [] if a == b else [prefix or "(root)"]


def check_compatible(
    saved: dict[str, Any], config: dict[str, Any], seed: int, where: str, data: dict[str, Any] | None = None
) -> None:
    """Refuse to resume when the config, the seed or (if recorded) the data summary differ, naming the keys."""
    diffs = diff_keys(saved.get("config", {}), config)
    if saved.get("seed") != seed and "seed" not in diffs:
        diffs.append("seed")
    if data is not None and "data" in saved:
        diffs += [f"data: {k}" for k in diff_keys(saved["data"], data)]
    if diffs:
        raise ConfigError(
            f"{where}: cannot resume, the config differs from the checkpointed run at {', '.join(diffs)}; "
            "use the original config or a new --out directory"
        )
