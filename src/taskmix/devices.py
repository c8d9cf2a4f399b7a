"""Where tensors live: the one place that turns ``"auto"`` into a device name and checks it."""

from __future__ import annotations

import re

import torch

from .errors import ConfigError

__all__ = ["DEVICE_PATTERN", "check_device", "resolve_device"]

DEVICE_PATTERN = r"^(auto|cpu|cuda(:\d{1,3})?|mps)$"
"""The device names a config may give: ``auto``, ``cpu``, ``cuda``, ``cuda:<index>``, ``mps``."""


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; anything else unchanged."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def check_device(device: str, field: str = "train.device") -> str:
    """``device`` resolved, refused (:class:`ConfigError` naming ``field``) when it is not a device this machine has."""
    shown = device if len(device) <= 40 else device[:37] + "..."
    if not re.match(DEVICE_PATTERN, device):
        raise ConfigError(f"{field}: {shown!r} is not a device; expected auto, cpu, cuda, cuda:<index> or mps")
    d = resolve_device(device)
    if d.startswith("cuda"):
        if not torch.cuda.is_available():
            build = "a CPU-only torch build" if torch.version.cuda is None else "no CUDA device visible"
            raise ConfigError(f"{field}: {shown!r} but this machine has {build}; use cpu or auto")
        index = int(d.split(":")[1]) if ":" in d else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"{field}: {shown!r} but only {torch.cuda.device_count()} CUDA device(s) are visible")
    if d == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"{field}: 'mps' but this machine has no MPS device; use cpu or auto")
    return d
