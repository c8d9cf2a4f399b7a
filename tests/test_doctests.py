"""The runnable examples in the package's docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["taskmix", "taskmix.registry", "taskmix.strategies", "taskmix.data", "taskmix.engine", "taskmix.runs",
           "taskmix.compare", "taskmix.compare.methods", "taskmix.compare.runner", "taskmix.compare.rows", "taskmix.compare.recommend",
           "taskmix.strategies.mixer",
           "taskmix.compare.peers", "taskmix.compare.peers._regmix", "taskmix.compare.peers._mixmin",
           "taskmix.compare.peers.settings", "taskmix.compare.budget", "taskmix.schedule.rules"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    mod = importlib.import_module(name)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0
