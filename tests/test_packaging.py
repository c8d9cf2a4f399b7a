"""Packaging as a new user meets it: metadata, LICENSE, sdist contents, the package docstring (the docs' snippets: tests/test_docs.py)."""

from __future__ import annotations

import importlib.metadata as md
import re
import tarfile
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import taskmix

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _reqs(group: str | None = None) -> dict[str, Requirement]:
    raw = PYPROJECT["project"]["dependencies"] if group is None else PYPROJECT["project"]["optional-dependencies"][group]
    return {Requirement(r).name: Requirement(r) for r in raw}


def test_license_file_is_the_declared_apache_2():
    assert PYPROJECT["project"]["license"] == "Apache-2.0" and PYPROJECT["project"]["license-files"] == ["LICENSE"]
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text


def test_runtime_dependencies_are_ranges_and_the_makefile_pins_torch():
    for name, req in _reqs().items():
        assert not any(s.operator in ("==", "===") for s in req.specifier), f"{name} is pinned exactly: {req}"
    assert "torch" in _reqs() and _reqs()["torch"].specifier.contains("2.13.0")
    # the exact (CPU) build is installed by the Makefile before the package, not forced on users
    assert re.search(r"pip.*install torch==2\.13\.0", (REPO / "Makefile").read_text(), flags=re.I)


@pytest.mark.parametrize("extra, package", [("mlflow", "mlflow-skinny"), ("wandb", "wandb")])
def test_tracking_extras_are_ranges_that_make_test_installs(extra, package):
    req = _reqs(extra)[package]
    assert not any(s.operator in ("==", "===") for s in req.specifier) and any(s.operator == ">=" for s in req.specifier)
    # `make test` installs them, so that the tracking tests (tests/runs/test_tracking*.py) run instead of skipping
    dev = re.search(r"^\$\(VENV\)/\.dev:.*\n\t\$\(PIP\) install -e '\.\[([a-z0-9,]+)\]'", (REPO / "Makefile").read_text(), flags=re.M)
    assert dev is not None and extra in dev.group(1).split(",")


@pytest.mark.parametrize("name", ["transformers", "datasets", "sentence-transformers"])
def test_text_extra_floors_are_versions_the_suite_runs_with(name):
    req = _reqs("text")[name]
    floor = next(s.version for s in req.specifier if s.operator == ">=")
    installed = md.version(name)
    assert req.specifier.contains(installed), f"installed {name} {installed} does not satisfy {req}"
    assert [int(x) for x in floor.split(".")[:2]] <= [int(x) for x in installed.split(".")[:2]]
    if name == "transformers":  # taskmix.hf uses Trainer APIs that exist only in 5.x
        assert int(floor.split(".")[0]) >= 5


def test_sdist_carries_configs_docs_examples_and_license(tmp_path):
    import os

    from setuptools import build_meta

    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        name = build_meta.build_sdist(str(tmp_path))
    finally:
        os.chdir(cwd)
    with tarfile.open(tmp_path / name) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for path in ["LICENSE", "README.md", "configs/glue/rte_mnli.yaml", "configs/xnli/sw.yaml", "docs/replay.md",
                 "docs/errors.md", "examples/replay_hf_trainer.py", "src/taskmix/cli/__init__.py", "src/taskmix/cli/__main__.py", "src/taskmix/cli/commands.py"]:
        assert path in names, f"sdist lacks {path}"


def test_package_docstring_names_only_what_it_exports():
    doc = taskmix.__doc__ or ""
    exported = set(taskmix.__all__)
    paragraph = doc.split("The everyday", 1)[1].split(">>>", 1)[0]
    named = set(re.findall(r"``(\w+)``", paragraph))
    assert named and named <= exported, f"named but not exported: {sorted(named - exported)}"
    used = set(re.findall(r"taskmix\.(\w+)\(", doc)) | set(re.findall(r"taskmix\.(\w+)\)", doc))
    assert used <= exported, f"the example uses unexported {sorted(used - exported)}"
    for name in exported:
        assert getattr(taskmix, name) is not None
    # every layer named in the docstring exists
    for layer in re.findall(r"^    ([a-z_, ]+?)\s{2,}", doc, flags=re.M):
        for mod in (m.strip() for m in layer.split(",")):
            assert (REPO / "src" / "taskmix" / mod).exists() or (REPO / "src" / "taskmix" / f"{mod}.py").exists(), mod
