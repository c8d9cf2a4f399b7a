"""``taskmix schedule show|diff|export`` and ``taskmix config show|schema`` (and the functions behind them)."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from taskmix.cli import app
from taskmix.config import builtin_config, config_schema, load_config
from taskmix.schedule import Schedule
from taskmix.schedule.export import megatron_data_path, seqio_mixtures, to_stages
from taskmix.schedule.inspect import describe, diff

TV = Schedule.from_weights(["a", "b", "c"], [[0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [0.2, 0.3, 0.5]], 10,
                           {"method": "learned_time_variant", "search_steps": 30})
TI = Schedule.from_weights(["a", "b", "c"], [[0.3, 0.3, 0.4]], 10, {"method": "learned_time_invariant"})


def _cli(*args: str, cwd: Path | None = None):
    r = CliRunner().invoke(app, list(args))
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture
def files(tmp_path):
    TV.save(tmp_path / "tv.json")
    TI.save(tmp_path / "ti.json")
    return tmp_path


# ------------------------------------------------------------------ functions
def test_describe_lists_rows_layout_provenance_and_the_mean():
    text = describe(TV)
    assert "3 tasks, time-variant, 3 rows, 10 steps per meta-step" in text
    assert "provenance:\n  method: learned_time_variant\n" in text and "[20, end)" in text
    assert "mean over 30 steps" in text and "0.3667" in text  # b: (0.5 + 0.3 + 0.3) / 3


def test_diff_of_two_schedules():
    d = diff(TV, TI)
    assert d["total_steps"] == 30 and not d["identical"] and d["only_in_a"] == d["only_in_b"] == []
    assert d["mean_a"] == pytest.approx([0.3, 11 / 30, 1 / 3]) and d["mean_b"] == pytest.approx([0.3, 0.3, 0.4])
    assert d["total_variation"] == pytest.approx(1 / 15)
    assert d["max_step_diff"] == pytest.approx(0.4) and d["max_step_diff_at"] == {"step": 0, "task": "c"}
    assert diff(TI, TI)["identical"]
    other = Schedule.from_weights(["a", "d"], [[0.5, 0.5]], 10)
    d2 = diff(TI, other)
    assert d2["tasks"] == ["a", "b", "c", "d"] and d2["only_in_a"] == ["b", "c"] and d2["only_in_b"] == ["d"]
    assert d2["mean_b"] == pytest.approx([0.5, 0, 0, 0.5])


def test_stages_cover_the_run_and_merge_equal_rows():
    st = to_stages(TV, 30, 4)
    assert [s["steps"] for s in st] == [(0, 10), (10, 20), (20, 30)] and sum(s["num_examples"] for s in st) == 120
    merged = to_stages(TV, 30, 4, by="distinct_row")
    assert [s["steps"] for s in merged] == [(0, 10), (10, 30)] and merged[1]["num_examples"] == 80
    # the realised proportions of the stages are the schedule's step-weighted mean
    mean = sum(np.asarray(s["probabilities"]) * s["num_examples"] for s in st) / 120
    assert mean == pytest.approx(TV.mean_weights(30))


def test_seqio_rates_register_one_mixture_per_stage(monkeypatch):
    added: dict[str, list] = {}
    fake = types.SimpleNamespace(MixtureRegistry=types.SimpleNamespace(add=lambda name, tasks: added.__setitem__(name, tasks)))
    monkeypatch.setitem(sys.modules, "seqio", fake)
    exec(seqio_mixtures(TV, "mix", tasks={"a": "glue_a"}), {})
    assert added == {"mix_stage0": [("glue_a", 0.5), ("b", 0.5)], "mix_stage1": [("glue_a", 0.2), ("b", 0.3), ("c", 0.5)]}
    added.clear()
    exec(seqio_mixtures(TV, "mix", average=True), {})
    (name, rates), = added.items()
    assert name == "mix" and [r for _, r in rates] == pytest.approx(TV.mean_weights(30), abs=1e-6)


def test_megatron_data_path_weights_and_prefixes():
    line = megatron_data_path(TI, {"a": "/data/a_text_document"})
    assert line == "0.3 /data/a_text_document 0.3 b 0.4 c\n"
    text = megatron_data_path(TV)
    assert text.splitlines() == ["# steps [0, 10)", "0.5 a 0.5 b", "# steps [10, 30)", "0.2 a 0.3 b 0.5 c"]
    parts = megatron_data_path(TV, average=True).split()
    assert [float(w) for w in parts[::2]] == pytest.approx(TV.mean_weights(30), abs=1e-6) and parts[1::2] == ["a", "b", "c"]
    with pytest.raises(ValueError, match=r"unknown task\(s\) \['z'\]"):
        megatron_data_path(TI, {"z": "x"})


# ------------------------------------------------------------------ CLI
def test_cli_schedule_show_diff_export(files):
    code, out, _ = _cli("schedule", "show", str(files / "tv.json"))
    assert code == 0 and out == describe(TV)
    code, out, _ = _cli("schedule", "show", str(files / "tv.json"), "--json")
    assert code == 0 and Schedule.from_json(out) == TV
    code, out, _ = _cli("schedule", "diff", str(files / "tv.json"), str(files / "ti.json"))
    assert code == 0 and "total variation of the means: 0.0667" in out and "tv.json" in out
    code, out, _ = _cli("schedule", "diff", str(files / "tv.json"), str(files / "ti.json"), "--json")
    assert code == 0 and json.loads(out)["max_step_diff"] == pytest.approx(0.4)

    code, out, _ = _cli("schedule", "export", str(files / "tv.json"), "--format", "interleave", "--batch-size", "8")
    doc = json.loads(out)
    assert code == 0 and doc["tasks"] == ["a", "b", "c"] and doc["total_steps"] == 30
    assert [s["steps"] for s in doc["stages"]] == [[0, 10], [10, 20], [20, 30]] and doc["stages"][0]["num_examples"] == 80
    code, out, _ = _cli("schedule", "export", str(files / "ti.json"), "-f", "megatron", "--prefix", "c=/d/c")
    assert code == 0 and out == "0.3 a 0.3 b 0.4 /d/c\n"
    code, _, err = _cli("schedule", "export", str(files / "tv.json"), "-f", "seqio", "--out", str(files / "mix.py"))
    assert code == 0 and "MixtureRegistry.add" in (files / "mix.py").read_text()


@pytest.mark.parametrize("args, message", [
    (["-f", "csv"], "--format: expected one of ['interleave', 'seqio', 'megatron'], got 'csv'"),
    (["-f", "interleave"], "--format interleave needs --batch-size"),
    (["-f", "interleave", "--batch-size", "0"], "batch_size must be a positive integer, got 0"),
    (["-f", "megatron", "--prefix", "nope"], "--prefix 'nope': expected TASK=VALUE"),
    (["-f", "megatron", "--prefix", "z=/x"], "prefix given for unknown task(s) ['z']"),
])
def test_cli_export_bad_input_is_one_line_exit_2(files, args, message):
    code, out, err = _cli("schedule", "export", str(files / "tv.json"), *args)
    assert code == 2 and err.startswith("error: ") and len(err.splitlines()) == 1 and message in err, err


def test_cli_config_show_is_the_resolved_config_and_loads_back(tmp_path):
    code, out, _ = _cli("config", "show", "builtin", "-o", "train.steps=40", "-o", "search.meta_steps=4")
    assert code == 0 and out.startswith("# taskmix resolved config")
    (tmp_path / "c.yaml").write_text(out)
    again = load_config(tmp_path / "c.yaml")
    assert again.fingerprint() == builtin_config(["train.steps=40", "search.meta_steps=4"]).fingerprint()
    assert "probe_batches: 16" in out  # defaults filled in
    code, out, _ = _cli("config", "show", "builtin", "--json")
    assert code == 0 and json.loads(out)["search"]["epsilon"] == 0.1
    code, _, err = _cli("config", "show", "builtin", "-o", "search.reward=nope")
    assert code == 2 and "unknown reward 'nope'" in err and len(err.splitlines()) == 1


def test_cli_config_schema_describes_every_field(tmp_path):
    code, out, _ = _cli("config", "schema")
    schema = json.loads(out)
    assert code == 0 and schema == json.loads(json.dumps(config_schema()))
    models = [schema] + list(schema["$defs"].values())
    for m in models:
        for name, prop in m["properties"].items():
            assert prop.get("description"), f"{m.get('title')}.{name} has no description"
    assert "base_dir" not in schema["properties"] and schema["properties"]["seed"]["default"] == 0
    assert schema["$defs"]["SearchConfig"]["properties"]["epsilon"]["maximum"] == 1
    code, _, _ = _cli("config", "schema", "--out", str(tmp_path / "s.json"))
    assert code == 0 and json.loads((tmp_path / "s.json").read_text()) == schema
