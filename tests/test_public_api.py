"""The public surface: package exports, every import the README and docs show, and the old flat module paths."""

from __future__ import annotations

import importlib
import re
import warnings
from pathlib import Path

import pytest

import taskmix

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
IMPORT = re.compile(r"^\s*(from taskmix[\w.]* import [\w, ]+|import taskmix[\w.]*)\s*(?:#.*)?$", re.M)


def test_every_exported_name_resolves() -> None:
    for name in taskmix.__all__:
        assert getattr(taskmix, name) is not None, name


def _shown_imports() -> list[str]:
    found = set()
    for doc in DOCS:
        found.update(m.group(1).strip() for m in IMPORT.finditer(doc.read_text(encoding="utf-8")))
    return sorted(found)


@pytest.mark.parametrize("stmt", _shown_imports())
def test_imports_shown_in_the_docs_work_without_deprecation(stmt: str) -> None:
    if "taskmix.hf" in stmt:
        pytest.importorskip("transformers")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        exec(stmt, {})


OLD = {  # taskmix 0.1's flat modules and names the README and docs showed
    "taskmix.tasks": ["load_run_tasks", "load_tasks", "Split", "Task", "carve_reward_split", "load_npz_split"],
    "taskmix.search": ["search", "SearchRun", "run_search_dir"],
    "taskmix.train": ["Trainer", "train_with_schedule"],
    "taskmix.distributed": ["LOCAL", "connect", "run_search", "DataParallel"],
    "taskmix.policy": ["Policy"],
    "taskmix.adaptive": ["EXP3", "AdaptiveRun", "make_strategy"],
    "taskmix.report": ["summarize", "write_report", "plot_schedule"],
    "taskmix.checkpoint": ["checkpoints", "load_latest"],
    "taskmix.text": ["load_text_task", "read_text_file"],
}


@pytest.mark.parametrize("module", sorted(OLD))
def test_old_flat_paths_still_import_with_a_deprecation_warning(module: str) -> None:
    mod = importlib.import_module(module)
    with pytest.warns(DeprecationWarning, match="is deprecated; import from taskmix\\."):
        getattr(mod, OLD[module][0])
    for name in OLD[module]:
        assert getattr(mod, name) is not None
    with pytest.raises(AttributeError, match="moved to"):
        getattr(mod, "no_such_name")


def test_compare_package_keeps_its_shown_names() -> None:
    from taskmix.compare import run_compare, run_method  # noqa: F401
