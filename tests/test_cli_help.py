"""What a newcomer sees first: ``--version``, ``--help`` of every command, the methods ``compare`` runs,
the lines a run ends with, and ``schedule show``'s provenance (issue 23)."""

from __future__ import annotations

import json
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

import pytest
import typer
from typer.core import TyperOption
from typer.testing import CliRunner

import taskmix
from taskmix.cli import app
from taskmix.compare import methods as methods_mod
from taskmix.registry import Entry
from taskmix.schedule import Schedule

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bad_inputs import SMALL  # noqa: E402

WIDE = {"COLUMNS": "200"}  # one help row per option: no wrapping between an option and its type column


def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, list(args), env=env)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.stdout, r.stderr


def _commands() -> Iterator[tuple[list[str], Any]]:
    """Every command and group of the ``taskmix`` tree, with its path (``[]``: ``taskmix`` itself)."""

    def walk(path: list[str], cmd: Any) -> Iterator[tuple[list[str], Any]]:
        yield path, cmd
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            yield from walk([*path, name], sub)

    yield from walk([], typer.main.get_command(app))


COMMANDS = list(_commands())


# ------------------------------------------------------------------ --version
def test_version_prints_the_package_version_and_exits_0():
    code, out, err = _run("--version")
    assert code == 0 and err == ""
    assert re.fullmatch(r"taskmix \d+\.\d+\.\d+\S*\n", out), out
    assert out == f"taskmix {metadata.version('taskmix')}\n"


def test_version_without_installed_metadata_falls_back_to_the_package(monkeypatch):
    def not_installed(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    code, out, _ = _run("--version")
    assert code == 0 and out == f"taskmix {taskmix.__version__}\n"


# ------------------------------------------------------------------ flags
def test_the_tree_is_what_the_tests_walk():
    paths = {" ".join(p) for p, _ in COMMANDS}
    assert {"", "search", "train", "compare", "plot", "demo", "schedule", "schedule show", "config", "config schema"} <= paths


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=[" ".join(p) or "taskmix" for p, _ in COMMANDS])
def test_every_boolean_option_is_a_plain_flag_in_help(path):
    cmd = dict((tuple(p), c) for p, c in COMMANDS)[tuple(path)]
    code, out, _ = _run(*path, "--help", env=WIDE)
    assert code == 0
    assert "<bool>" not in out
    bools = [p for p in cmd.params if isinstance(p, TyperOption) and p.type_descriptor.annotation is bool]
    for p in bools:  # an on/off option: one name, no value, no --no- twin
        assert p.is_flag and not p.secondary_opts, p.opts
    flags = [o for p in cmd.params if getattr(p, "is_flag", False) for o in p.opts] + ["--help"]
    for opt in flags:
        rows = [line for line in out.splitlines() if re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", line)]
        assert rows, f"{opt} missing from {' '.join(path)} --help"
        assert not any(re.search(rf"{re.escape(opt)}\s+(-\w\s+)?<", row) for row in rows), rows


@pytest.mark.parametrize("args, flag", [
    (["search", "builtin", "--out", "x", "--resume", "yes"], "--resume"),
    (["compare", "builtin", "--out", "x", "--oracle", "true"], "--oracle"),
    (["train", "builtin", "--schedule", "s.json", "--out", "x", "--overwrite", "1"], "--overwrite"),
    (["schedule", "show", "s.json", "--json", "yes"], "--json"),
])
def test_a_value_after_a_flag_gets_one_line_naming_the_flag(args, flag, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(*args)
    assert code == 2 and len(err.splitlines()) == 1
    assert f"{flag} is a flag and takes no value" in err and err.startswith("error: Got unexpected extra argument")
    assert not (tmp_path / "x").exists()


def test_usage_errors_of_subcommands_name_the_whole_command():
    code, _, err = _run("schedule", "show", "s.json", "--nope")
    assert code == 2 and err == "error: No such option: --nope (see taskmix schedule show --help)\n"


# ------------------------------------------------------------------ taskmix --help
def test_top_level_help_has_a_one_line_summary_per_command_saying_what_it_writes():
    code, out, _ = _run("--help", env=WIDE)
    assert code == 0 and "--version" in out
    top = typer.main.get_command(app)
    for name, cmd in top.commands.items():  # type: ignore[attr-defined]
        summary = (cmd.help or "").strip().splitlines()[0]
        assert summary and len(summary) <= 130, (name, summary)
        assert re.search(r"\bwrites?\b|\bprints?\b", summary, re.I), (name, summary)
        assert re.search(rf"│ {name}\s+{re.escape(summary[:40])}", out), (name, out)


# ------------------------------------------------------------------ compare --help
def _flat(text: str) -> str:
    return " ".join(text.split())


def test_compare_help_lists_every_registered_method_and_the_default_set():
    code, out, _ = _run("compare", "--help", env=WIDE)
    assert code == 0
    text = _flat(out)
    for name in methods_mod.METHODS.names():  # temperature_<T> included
        assert name in text, name
    assert "temperature_<T> (any T > 0, e.g. temperature_2)" in text
    assert "Default set: " + ", ".join(methods_mod.DEFAULT_METHODS) in text


def test_compare_help_is_generated_from_the_registry(monkeypatch):
    entries = dict(methods_mod.METHODS._entries)
    entries["zz_my_method"] = Entry("zz_my_method", lambda job: None, {"kind": "learned"})
    monkeypatch.setattr(methods_mod.METHODS, "_entries", entries)
    monkeypatch.setattr(methods_mod, "DEFAULT_METHODS", ("uniform", "zz_my_method"))
    code, out, _ = _run("compare", "--help", env=WIDE)
    text = _flat(out)
    assert code == 0 and "zz_my_method" in text and "Default set: uniform, zz_my_method" in text


# ------------------------------------------------------------------ the last lines of a run
def _significant_digits(number: str) -> int:
    mantissa = re.split(r"[eE]", number.lstrip("+-"))[0]
    return len(mantissa.replace(".", "").lstrip("0"))


def _floats(text: str) -> list[str]:
    return re.findall(r"(?<![\w.])[-+]?\d+\.\d+(?:[eE][-+]?\d+)?|(?<![\w.])[-+]?\d+[eE][-+]?\d+", text)


def test_a_tiny_compare_ends_naming_results_and_report(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = _run("compare", "builtin", "--seeds", "1", "--methods", "uniform,learned_time_invariant",
                          "--out", "c", *SMALL)
    assert code == 0, err
    assert out.startswith("verdict: ")  # the answer first
    last = out.rstrip("\n").splitlines()[-4:]
    assert last[0] == "results: c/results.json"
    assert last[1] == "recommended: c/recommended.json"
    assert last[2] == "report: c/report.html, c/report.md"
    assert last[3].startswith("learned schedule of the first seed: c/schedule.json")
    for name in ("results.json", "recommended.json", "report.html", "report.md", "schedule.json"):
        assert (tmp_path / "c" / name).is_file(), name

    # the learned schedule's provenance (16-digit floats in the file) reads at 4 significant digits
    code, shown, _ = _run("schedule", "show", "c/schedule.json")
    assert code == 0 and "provenance:\n  method: learned_time_invariant\n" in shown
    assert all(_significant_digits(f) <= 6 for f in _floats(shown)), _floats(shown)
    code, exact, _ = _run("schedule", "show", "c/schedule.json", "--json")
    doc = json.loads((tmp_path / "c" / "schedule.json").read_text())
    assert code == 0 and json.loads(exact)["provenance"] == doc["provenance"]


def test_a_tiny_demo_ends_naming_results_report_and_schedule(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = _run("demo", "--seeds", "1", "--out", "d", "-o", "compare.methods=[uniform,learned_time_invariant]", *SMALL)
    assert code == 0, err
    last = out.rstrip("\n").splitlines()[-5:]
    assert last[0].startswith("demo finished in ")
    assert last[1:] == ["results: d/results.json", "recommended: d/recommended.json", "report: d/report.html, d/report.md",
                        "learned schedule of the first seed: d/schedule.json (plot: d/schedule.png)"]


# ------------------------------------------------------------------ schedule show
PROV = {
    "method": "learned_time_invariant",
    "epsilon": 0.1,
    "temperature": 2.0,
    "lr": 0.019999999999999997,
    "schedule_steps": 40,
    "seed": 4294967295,
    "shrink": 0.0,
    "tiny": 1.2345678901234567e-12,
    "flag": True,
    "nothing": None,
    "task_effects": {"a": {"effect": 0.15119959708078315, "se": 0.2243719164699699, "verdict": "unclear"},
                     "b": {"effect": -0.0696258214451288, "se": 0.2257453859881157, "verdict": "helps"}},
    "rewards": [0.1 * i + 1e-15 for i in range(20)],
    "note": "red \x1b[31mtext\x1b[0m",
}


@pytest.fixture
def sched_file(tmp_path) -> tuple[Path, Schedule]:
    s = Schedule.from_weights(["a", "b", "c"], [[0.5, 0.25, 0.25]], 10, PROV)
    s.save(tmp_path / "s.json")
    return tmp_path / "s.json", s


def test_schedule_show_prints_provenance_as_readable_lines(sched_file):
    path, _ = sched_file
    code, out, _ = _run("schedule", "show", str(path))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("schedule: 3 tasks") and lines[1] == "provenance:"
    for line in ("  method: learned_time_invariant", "  epsilon: 0.1", "  temperature: 2.0", "  lr: 0.02",
                 "  schedule_steps: 40", "  seed: 4294967295", "  shrink: 0.0", "  tiny: 1.235e-12", "  flag: true",
                 "  nothing: null", "  task_effects:", "    a: {effect: 0.1512, se: 0.2244, verdict: unclear}",
                 "    b: {effect: -0.06963, se: 0.2257, verdict: helps}"):
        assert line in lines, line
    rewards = next(line for line in lines if line.startswith("  rewards: "))
    assert rewards.endswith("(20 items)") and "..." in rewards and len(rewards) < 100
    assert "\x1b" not in out and "\\x1b[31m" in out  # a file's control characters are shown, not sent to the terminal
    assert "mean over 40 steps" in out  # the run length still comes from the provenance
    assert all(_significant_digits(f) <= 6 for f in _floats(out)), _floats(out)


def test_schedule_show_json_keeps_the_exact_values(sched_file):
    path, sched = sched_file
    code, out, _ = _run("schedule", "show", str(path), "--json")
    assert code == 0
    assert Schedule.from_json(out) == sched
    assert json.loads(out)["provenance"] == json.loads(path.read_text())["provenance"]
    assert json.loads(out)["provenance"]["lr"] == 0.019999999999999997


def test_deep_or_wide_provenance_stays_bounded(tmp_path):
    deep: dict[str, Any] = {"x": 1.23456789}
    for i in range(30):
        deep = {f"k{i}": deep, "v": [[1.5, [2.5, [3.5, [4.5, [5.5, [6.5, [7.5]]]]]]]]}
    wide = {f"key{i}": i + 0.123456789 for i in range(100)}
    Schedule.from_weights(["a", "b"], [[0.5, 0.5]], 1, {"deep": deep, **wide}).save(tmp_path / "s.json")
    code, out, _ = _run("schedule", "show", str(tmp_path / "s.json"))
    assert code == 0 and len(out.splitlines()) < 80
    assert "more keys (schedule show --json shows them all)" in out
    assert all(_significant_digits(f) <= 6 for f in _floats(out))
