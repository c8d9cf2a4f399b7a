"""One description of the layers: pyproject's import-linter contract, CONTRIBUTING.md's table and ``taskmix.__doc__`` agree."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import taskmix

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "src" / "taskmix"
ALLOWED_TOP_LEVEL = {"__init__", "errors", "files", "registry", "devices", "_legacy"}


def _contract() -> list[set[str]]:
    """The layers, bottom first, each a set of module names."""
    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers")["layers"]
    return [{m.strip() for m in re.split(r"[:|]", layer)} for layer in reversed(layers)]


def _contributing() -> list[set[str]]:
    rows = re.findall(r"^\| (\d+) \| ([^|]+) \|", (REPO / "CONTRIBUTING.md").read_text(), flags=re.M)
    assert [int(n) for n, _ in rows] == list(range(len(rows))), "the table's layers are numbered 0, 1, ..."
    return [{m.rstrip("/") for m in re.findall(r"`([\w/]+)`", cell)} for _, cell in rows]


def _docstring() -> list[set[str]]:
    lines = re.findall(r"^    ([a-z_]+(?:, [a-z_]+)*)\s{2,}", taskmix.__doc__ or "", flags=re.M)
    return [set(line.split(", ")) for line in lines]


def test_the_contract_has_at_most_eight_layers() -> None:
    assert len(_contract()) <= 8


def test_contributing_table_matches_the_contract() -> None:
    assert _contributing() == _contract()


def test_package_docstring_matches_the_contract() -> None:
    assert _docstring() == _contract()


def test_every_package_module_is_in_a_layer() -> None:
    named = set().union(*_contract()) | {"_legacy"}
    present = {p.stem for p in PKG.glob("*.py") if p.stem != "__init__"} | {p.name for p in PKG.iterdir() if (p / "__init__.py").exists()}
    assert present <= named, f"not in a layer: {sorted(present - named)}"
    assert named - {"_legacy"} <= present, f"a layer names what does not exist: {sorted(named - present)}"


def test_only_the_foundation_modules_are_top_level_files() -> None:
    top = {p.stem for p in PKG.glob("*.py")}
    extra = top - ALLOWED_TOP_LEVEL
    assert not extra, f"top-level modules beyond the foundation: {sorted(extra)}"
