"""TensorBoard events of a resumed search: every (tag, step) once, the same points as an uninterrupted run."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskmix.cli import app

TINY = [
    "train.steps=24", "search.meta_steps=6", "train.batch_size=16",
    "synthetic.n_target=80", "synthetic.n_helpful=80", "synthetic.n_harmful=80",
    "synthetic.n_irrelevant=80", "synthetic.n_test=80",
]  # fmt: skip


def _search(out: Path, *more: str) -> None:
    r = CliRunner().invoke(app, ["search", "builtin", "--out", str(out), *[x for o in TINY for x in ("-o", o)], *more])
    assert r.exit_code == 0, r.stderr


def _points(run_dir: Path) -> dict[str, list[int]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [e.step for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_resumed_search_has_no_duplicated_tensorboard_points(tmp_path):
    pytest.importorskip("tensorboard")
    _search(tmp_path / "a")
    reference = _points(tmp_path / "a" / "tb" / "log")
    assert reference and all(len(s) == 6 for s in reference.values())

    out = tmp_path / "b"
    _search(out)
    # as after a kill between logging meta-step 6 and checkpointing it: the events hold all 6 points,
    # the last checkpoint is meta-step 5
    (out / "schedule.json").unlink()
    last = sorted((out / "checkpoints").glob("ckpt-*.ckpt"))[-1]
    last.unlink()
    _search(out, "--resume")
    points = _points(out / "tb" / "log")
    assert points == reference
    assert len(list((out / "tb" / "log").glob("events.out.tfevents.*"))) == 1
