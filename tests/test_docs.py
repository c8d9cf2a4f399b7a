"""Every Python and shell snippet in README.md, CONTRIBUTING.md and docs/ runs, in order, as a reader would.

A fenced ``python`` block is executed in one namespace per document (so a later block may use what an
earlier one defined); a ``bash`` block runs in ``bash -euo pipefail`` with the package's console scripts on
``PATH``.  Each document runs in its own fresh directory holding the files its snippets read (the CSV files
of the README's quickstart, a ``schedule.json``).  A block that cannot run in the test suite is preceded by
``<!-- not run: REASON -->`` on the line before its fence, and the reason may not be empty.
"""

from __future__ import annotations

import csv
import os
import random
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").glob("*.md"))]
RUN = {"python": "python", "py": "python", "bash": "bash", "sh": "bash", "shell": "bash", "console": "bash"}
SKIP = re.compile(r"^<!--\s*not run:\s*(?P<why>.*?)\s*-->\s*$")
SLOW = re.compile(r"^<!--\s*slow:\s*(?P<why>.*?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w+-]*)\s*$")


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    skip: str | None  # the reason it does not run, or None
    slow: bool

    @property
    def id(self) -> str:
        return f"{self.doc.relative_to(REPO)}:{self.line}"


def blocks(doc: Path) -> list[Block]:
    """The fenced code blocks of ``doc`` (any language), with their not-run reasons."""
    out: list[Block] = []
    lines = doc.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, indent, lang = i, len(m.group("indent")), m.group("lang").lower()
        i += 1
        body = []
        while i < len(lines) and not re.match(r"^\s*```\s*$", lines[i]):
            line = lines[i]
            body.append(line[indent:] if not line[:indent].strip() else line.lstrip())
            i += 1
        i += 1
        prev = lines[start - 1].strip() if start > 0 else ""
        skip = SKIP.match(prev)
        slow = SLOW.match(prev)
        out.append(Block(doc, start + 1, lang, "\n".join(body) + "\n", skip.group("why") if skip else None, bool(slow)))
    return out


ALL = [b for d in DOCS for b in blocks(d)]
RUNNABLE = [b for b in ALL if b.lang in RUN]


def test_every_snippet_runs_or_says_why_not() -> None:
    """A not-run mark names its reason, and sits only on a block of a language that could run."""
    for b in ALL:
        if b.skip is not None:
            assert b.skip, f"{b.id}: '<!-- not run: -->' without a reason"
            assert b.lang in RUN, f"{b.id}: a not-run mark on a {b.lang or 'plain'} block, which never runs"
    assert len([b for b in RUNNABLE if b.skip is None]) >= 8, "the docs lost their runnable snippets?"


# ---------------------------------------------------------------------------- the documents' world


def _csv(path: Path, n: int, flip: float, seed: int) -> None:
    """A small sentiment task: ``text``/``label`` columns, string labels, ``flip`` of the labels wrong."""
    r = random.Random(seed)
    pos = ["great", "wonderful", "a delight", "excellent", "moving", "superb", "brilliant", "charming"]
    neg = ["awful", "terrible", "a chore", "boring", "dreadful", "poor", "tedious", "disappointing"]
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for _ in range(n):
            y = r.random() < 0.5
            word = r.choice(pos if y else neg)
            if r.random() < flip:
                y = not y
            w.writerow([f"the {r.choice(['film', 'plot', 'cast', 'ending'])} was {word}", "positive" if y else "negative"])


def _world(directory: Path) -> None:
    """The files the snippets read, as a user would have them."""
    _csv(directory / "reviews_train.csv", 60, 0.1, 1)
    _csv(directory / "reviews_dev.csv", 40, 0.1, 2)
    _csv(directory / "reviews_test.csv", 60, 0.1, 3)
    _csv(directory / "tweets.csv", 150, 0.15, 4)
    _csv(directory / "forum.csv", 150, 0.5, 5)
    from taskmix import Schedule

    Schedule.from_weights(["rte", "mnli"], [[0.5, 0.5], [0.3, 0.7]], steps_per_meta_step=500).save(directory / "schedule.json")


_NAMESPACES: dict[Path, dict[str, Any]] = {}
_DONE: dict[Path, set[int]] = {}
_DIRS: dict[Path, Path] = {}


def _run(b: Block, tmp_root: Path) -> None:
    d = _DIRS.get(b.doc)
    if d is None:
        d = _DIRS[b.doc] = tmp_root / b.doc.stem
        d.mkdir()
        _world(d)
    for earlier in RUNNABLE:  # a block may use what the blocks of its kind before it in its document set up
        if (earlier.doc == b.doc and earlier.line < b.line and RUN[earlier.lang] == RUN[b.lang] and earlier.skip is None
                and earlier.line not in _DONE.get(b.doc, set())):
            _run_one(earlier, d)
    _run_one(b, d)


def _run_one(b: Block, d: Path) -> None:
    _DONE.setdefault(b.doc, set()).add(b.line)
    if RUN[b.lang] == "bash":
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
        r = subprocess.run(["bash", "-euo", "pipefail", "-c", b.code], cwd=d, env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, f"{b.id} exited {r.returncode}\n--- stdout\n{r.stdout[-3000:]}\n--- stderr\n{r.stderr[-3000:]}"
        return
    ns = _NAMESPACES.setdefault(b.doc, {"__name__": f"docs_{b.doc.stem}"})
    cwd = os.getcwd()
    os.chdir(d)
    try:
        exec(compile(b.code, b.id, "exec"), ns)  # noqa: S102 - the project's own documentation
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize(
    "block",
    [pytest.param(b, id=b.id, marks=[pytest.mark.slow] if b.slow else []) for b in RUNNABLE],
)
def test_snippet(block: Block, tmp_path_factory: pytest.TempPathFactory) -> None:
    if block.skip is not None:
        pytest.skip(f"not run: {block.skip}")
    needs_text = "taskmix compare mix.yaml" in block.code or "taskmix.hf" in block.code or "datasets" in block.code
    if needs_text:
        pytest.importorskip("datasets", reason="this snippet needs the 'text' extra")
    import torch

    torch.set_num_threads(1)
    root = _DIRS[next(iter(_DIRS))].parent if _DIRS else tmp_path_factory.mktemp("docs")
    _run(block, root)
