"""What every run directory keeps about how it was made: ``config.resolved.yaml`` and ``versions.json``.

``config.resolved.yaml`` is the validated config with every default filled in
(:func:`taskmix.config.resolved_yaml`; ``taskmix search/compare CONFIG`` runs it
again); ``versions.json`` names the command, Python, the platform and the
versions of taskmix and the packages it uses.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import platform
import sys
from pathlib import Path
from typing import Any

from ..config import Config, resolved_yaml
from ..files import atomic_write_text

__all__ = ["CONFIG_FILE", "PACKAGES", "VERSIONS_FILE", "package_versions", "write_run_stamp"]

CONFIG_FILE = "config.resolved.yaml"
VERSIONS_FILE = "versions.json"
PACKAGES = ("taskmix", "torch", "numpy", "scipy", "pydantic", "pyyaml", "matplotlib", "transformers", "datasets",
            "sentence-transformers", "accelerate", "tensorboard", "ray")
"""Distributions whose versions are recorded (``null`` when not installed)."""


def package_versions(command: str | None = None) -> dict[str, Any]:
    """``{"command", "python", "platform", "packages": {name: version or None}}``."""
    packages: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            packages[name] = md.version(name)
        except md.PackageNotFoundError:
            packages[name] = None
    if "torch" in sys.modules:  # the build actually imported (e.g. 2.13.0+cpu), when it differs from the metadata
        packages["torch"] = str(getattr(sys.modules["torch"], "__version__", packages["torch"]))
    out: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(), "packages": packages}
    if command is not None:
        out = {"command": command, **out}
    return out


def write_run_stamp(out: str | Path, cfg: Config, command: str) -> dict[str, Any]:
    """Write ``out/config.resolved.yaml`` and ``out/versions.json`` (atomically); return the versions."""
    out = Path(out)
    versions = package_versions(command)
    atomic_write_text(out / CONFIG_FILE, resolved_yaml(cfg))
    atomic_write_text(out / VERSIONS_FILE, json.dumps(versions, indent=2) + "\n")
    return versions
