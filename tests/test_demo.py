"""``taskmix demo`` twice in a row (``make demo`` again), --resume, and what a demo directory keeps."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _tiny import TINY_BUILTIN  # noqa: E402

from taskmix.cli import app  # noqa: E402
from taskmix.config import load_config  # noqa: E402

METHODS = "compare.methods=[uniform,learned_time_invariant,learned_time_variant]"
ARGS = ["--seeds", "1", "-o", METHODS, *[a for o in TINY_BUILTIN for a in ("-o", o)]]


def _demo(out: Path, *more: str):
    r = CliRunner().invoke(app, ["demo", "--out", str(out), *ARGS, *more])
    assert r.exit_code == 0, r.output + r.stderr
    return r


def _check_demo_dir(out: Path) -> None:
    """The directory keeps its resolved config and package versions, and explains identical schedule plots."""
    # the resolved config loads back to the same run
    cfg = load_config(out / "config.resolved.yaml")
    assert cfg.fingerprint() == load_config(None, [METHODS, *TINY_BUILTIN]).fingerprint()
    assert yaml.safe_load((out / "config.resolved.yaml").read_text())["search"]["epsilon"] == 0.1  # defaults filled in
    versions = json.loads((out / "versions.json").read_text())
    assert versions["command"] == "demo" and versions["packages"]["torch"].startswith("2.") and versions["python"]
    results = json.loads((out / "results.json").read_text())
    assert results["versions"]["packages"]["numpy"]
    # the Figure-1 plots: identical trajectories under time_variant_init: previous, and the report says why
    assert results["schedule_plots_identical"] is True and results["time_variant_init"] == "previous"
    assert (out / "schedule.png").read_bytes() != (out / "schedule_time_variant.png").read_bytes()  # titles differ
    report = (out / "report.md").read_text()
    assert "are identical" in report and "Provenance" in report


def test_demo_twice_in_a_row_replaces_then_resume_continues(tmp_path):
    out = tmp_path / "demo"
    _demo(out)
    _check_demo_dir(out)
    first = json.loads((out / "results.json").read_text())
    (out / "mine.txt").write_text("kept")  # not a demo output: never removed
    (out / "plots" / "stale.png").write_bytes(b"old")  # a demo output folder: replaced whole

    r = _demo(out)  # the second `make demo`
    assert "replacing the earlier demo" in r.stderr
    second = json.loads((out / "results.json").read_text())
    assert [row["test"] for row in second["rows"]] == [row["test"] for row in first["rows"]]
    assert (out / "mine.txt").read_text() == "kept" and not (out / "plots" / "stale.png").exists()
    assert json.loads((out / "demo.json").read_text())["command"] == "demo"

    r = _demo(out, "--resume")  # every cell is done: nothing is retrained
    assert "replacing" not in r.stderr
    assert json.loads((out / "results.json").read_text())["rows"] == second["rows"]


def test_an_interrupted_demo_is_recognised_and_a_legacy_demo_replaced(tmp_path):
    from taskmix.cli.demo_dir import is_demo_dir

    out = tmp_path / "d"
    out.mkdir()
    (out / "compare.json").write_text(json.dumps({"config": {"synthetic": {}}, "seed": 0, "command": "demo"}))
    assert is_demo_dir(out)
    (out / "compare.json").write_text(json.dumps({"config": {"synthetic": {}}, "seed": 0, "command": "compare"}))
    assert not is_demo_dir(out)  # a `taskmix compare` directory is never replaced by a demo
    (out / "compare.json").write_text(json.dumps({"config": {"synthetic": {}}, "seed": 0}))  # before the command key
    assert is_demo_dir(out)
    (out / "compare.json").write_text(json.dumps({"config": {"tasks": {"rte": {}}, "synthetic": None}, "seed": 0}))
    assert not is_demo_dir(out)


def test_schedule_plot_title_names_the_target_once():
    from taskmix.compare.runner import schedule_title

    title = schedule_title("learned_time_invariant", 0, "target")
    assert "target target" not in title and "'target'" in title
