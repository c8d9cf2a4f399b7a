"""Old module paths (0.1's ``taskmix.tasks``, ``taskmix.search``, ...; 0.2's ``taskmix.sampler``, ...), kept importable.

The package was reorganised into one folder per concept; ``import
taskmix.search`` and ``from taskmix.train import Trainer`` still work through
alias modules that forward every attribute to the new home and emit one
:class:`DeprecationWarning` naming it.  Nothing here is imported by the rest
of the package.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings
from typing import Any, Sequence

ALIASES: dict[str, tuple[str, ...]] = {
    "taskmix.tasks": ("taskmix.data", "taskmix.data.npz"),
    "taskmix.text": ("taskmix.data.text", "taskmix.data.readers"),
    "taskmix.synthetic": ("taskmix.data.synthetic",),
    "taskmix.policy": ("taskmix.strategies.policy",),
    "taskmix.adaptive": ("taskmix.strategies", "taskmix.runs.online", "taskmix.compare.methods"),
    "taskmix.models": ("taskmix.engine.models",),
    "taskmix.train": ("taskmix.engine.trainer",),
    "taskmix.distributed": ("taskmix.engine.parallel", "taskmix.runs.search_dir"),
    "taskmix.rewards": ("taskmix.runs.rewards",),
    "taskmix.search": ("taskmix.runs.search_run", "taskmix.runs.search_dir"),
    "taskmix.checkpoint": ("taskmix.runs.checkpoint",),
    "taskmix.runlog": ("taskmix.runs.runlog",),
    "taskmix.report": ("taskmix.compare.stats", "taskmix.compare.plots", "taskmix.compare.report"),
    "taskmix.ray_backend": ("taskmix.compare.ray_backend",),
    # 0.2's flat modules, now in one folder per concept
    "taskmix.sampler": ("taskmix.replay.sampler",),
    "taskmix.torch_data": ("taskmix.replay.torch",),
    "taskmix.streaming": ("taskmix.replay.streaming",),
    "taskmix.hf_learn": ("taskmix.hf.learn",),
    "taskmix.schedule_tools": ("taskmix.schedule.export", "taskmix.schedule.inspect"),
    # 0.3's command-line helpers, now in the cli package
    "taskmix.cli_tools": ("taskmix.cli.errors", "taskmix.cli.options", "taskmix.cli.schedule_cmds", "taskmix.cli.config_cmds"),
}


class _AliasModule(types.ModuleType):
    """A module whose attributes are looked up, in order, in its new homes."""

    def __init__(self, name: str, targets: Sequence[str]):
        super().__init__(name, f"Deprecated alias of {', '.join(targets)}.")
        self._targets = tuple(targets)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        for target in self._targets:
            mod = importlib.import_module(target)
            if hasattr(mod, attr):
                warnings.warn(f"{self.__name__} is deprecated; import from {target}", DeprecationWarning, stacklevel=2)
                return getattr(mod, attr)
        raise AttributeError(f"module {self.__name__!r} has no attribute {attr!r} (it moved to {', '.join(self._targets)})")

    def __dir__(self) -> list[str]:
        names: set[str] = set()
        for target in self._targets:
            names.update(dir(importlib.import_module(target)))
        return sorted(names)


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old module names of :data:`ALIASES` (and only those)."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname in ALIASES:
            return importlib.machinery.ModuleSpec(fullname, self)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _AliasModule(spec.name, ALIASES[spec.name])

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: attributes are forwarded on access."""


def install() -> None:
    """Put the alias finder on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.append(_Finder())
