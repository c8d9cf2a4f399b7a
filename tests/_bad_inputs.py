"""Bad inputs driven through the ``taskmix`` CLI, and the table in ``docs/errors.md``.

Each :class:`Case` writes its files under a fresh directory, names the command
line to run, and lists what the one-line message must contain.
``tests/test_errors_cli.py`` runs every case and checks the exit code (2), the
message, and that ``--out`` holds no new or half-written file;
``python tests/_bad_inputs.py`` reruns them and rewrites ``docs/errors.md``
from the messages actually produced (a test checks that the file is current).
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "errors.md"
OUT = "out"  # the --out directory of every case, relative to the case's directory

# The built-in benchmark, small enough that a run takes a second.
SMALL = [
    "-o", "train.steps=40", "-o", "search.meta_steps=4", "-o", "train.batch_size=16",
    "-o", "synthetic.n_target=60", "-o", "synthetic.n_helpful=60", "-o", "synthetic.n_harmful=60",
    "-o", "synthetic.n_irrelevant=60", "-o", "synthetic.n_test=60",
]  # fmt: skip


@dataclass(frozen=True)
class Case:
    id: str
    group: str
    what: str  # the bad input, as the docs describe it
    setup: Callable[[Path], list[str]]  # writes the case's files under the directory, returns the CLI arguments
    expect: tuple[str, ...]  # substrings of the message (after paths are made relative to the case's directory)
    text: bool = False  # needs the optional text dependencies (Hugging Face datasets)
    partial_run: bool = False  # fails mid-run: complete checkpoints and logs may remain, nothing else
    volatile: bool = False  # the message's numbers (step, checkpoint) follow the training dynamics
    cpu_only: bool = False  # refused only where torch sees no CUDA device (skipped elsewhere)


# ------------------------------------------------------------------ files


def _npz(path: Path, n: int = 40, d: int = 4, seed: int = 0, scale: float = 1.0, **arrays: np.ndarray) -> str:
    rng = np.random.default_rng(seed)
    data = {"x": (rng.standard_normal((n, d)) * scale).astype(np.float32), "y": rng.integers(0, 2, n)}
    data.update(arrays)
    np.savez(path, **data)
    return path.name


def _arrays(path: Path, **arrays: np.ndarray) -> str:
    """An npz file with exactly these arrays."""
    np.savez(path, **arrays)
    return path.name


def _with_nan_at(row: int, col: int, n: int = 40, d: int = 4) -> np.ndarray:
    x = np.ones((n, d), np.float32)
    x[row, col] = np.nan
    return x


def _spike(path: Path, row: int = 3, n: int = 400) -> str:
    """Normal features except one row at the float32 maximum: the first batch that draws it overflows."""
    x = np.random.default_rng(3).standard_normal((n, 4)).astype(np.float32)
    x[row] = np.finfo(np.float32).max
    return _arrays(path, x=x, y=np.arange(n) % 2)


def _yaml(path: Path, text: str) -> str:
    path.write_text(text.strip() + "\n", encoding="utf-8")
    return str(path)


def _fifo(path: Path) -> str:
    os.mkfifo(path)
    return path.name


def _loop(d: Path, name: str = "loop.yaml") -> str:
    os.symlink(d / f"{name}.b", d / name)
    os.symlink(d / name, d / f"{name}.b")
    return name


class _Marker:
    """Unpickling this creates the file ``path``: a stand-in for code a planted pickle would run."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def malicious_pickle(marker: Path) -> bytes:
    import pickle

    return pickle.dumps({"config": {}, "state": _Marker(marker)})


def _planted_checkpoint(d: Path, name: str) -> list[str]:
    (d / OUT / "checkpoints").mkdir(parents=True)
    (d / OUT / "checkpoints" / name).write_bytes(malicious_pickle(d / "PWNED"))
    return _builtin_search()


def _prior_compare(d: Path) -> None:
    """A finished one-cell comparison in ``d/out`` (for the cases about its ``rows.jsonl``)."""
    from typer.testing import CliRunner

    from taskmix.cli import app

    r = CliRunner().invoke(app, _compare_args())
    assert r.exit_code == 0, r.output


def _compare_args(*more: str) -> list[str]:
    """A one-cell comparison (no recommendation rows: these cases are about the rows of the methods run)."""
    return ["compare", "builtin", "--seeds", "1", "--methods", "uniform", "--out", OUT, *SMALL, "-o", "compare.recommend=false",
            *more]


def _edit_rows(d: Path, edit: Callable[[list[dict]], list[dict]]) -> list[str]:
    """A finished comparison whose ``rows.jsonl`` is then edited; the resume that reads it."""
    cwd = os.getcwd()
    os.chdir(d)
    try:
        _prior_compare(d)
    finally:
        os.chdir(cwd)
    rows_path = d / OUT / "rows.jsonl"
    rows = [json.loads(line) for line in rows_path.read_text().splitlines()]
    rows_path.write_text("".join(json.dumps(r) + "\n" for r in edit(rows)))
    return _compare_args("--resume")


def _resign(row: dict) -> dict:
    """A row with a recomputed checksum (a careful forger, or a conflicting duplicate from another run)."""
    from taskmix.compare.runner import ROW_DIGEST, row_digest

    row = {k: v for k, v in row.items() if k != ROW_DIGEST}
    return {**row, ROW_DIGEST: row_digest(row)}


def _edit_learned_rows(d: Path, edit: Callable[[dict], dict]) -> list[str]:
    """As :func:`_edit_rows`, for a one-cell comparison of ``learned_time_invariant`` (a row with a search log);
    ``edit`` changes its row, which is then re-signed (:func:`_resign`)."""
    from typer.testing import CliRunner

    from taskmix.cli import app

    args = _compare_args("--methods", "learned_time_invariant")  # the last --methods counts
    cwd = os.getcwd()
    os.chdir(d)
    try:
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 0, r.output
    finally:
        os.chdir(cwd)
    rows_path = d / OUT / "rows.jsonl"
    (row,) = [json.loads(line) for line in rows_path.read_text().splitlines()]
    rows_path.write_text(json.dumps(_resign(edit(row))) + "\n")
    return [*args, "--resume"]


def _all_labels(label: int, n: int = 60) -> str:
    """``predictions`` of ``label`` for each of the ``n`` rows of the built-in target's test split (``SMALL``)."""
    from taskmix.compare.predictions import encode_labels

    return encode_labels(np.full(n, label))


def _npz_config(d: Path, aux_train: str = "a.npz", target_test: str = "t_test.npz", extra: str = "") -> str:
    """A two-task npz config: target ``t`` (t.npz, t_test.npz) and auxiliary ``a``."""
    for name, seed in (("t.npz", 0), ("t_test.npz", 1), ("a.npz", 2)):
        if not (d / name).exists():
            _npz(d / name, seed=seed)
    return _yaml(
        d / "c.yaml",
        f"""
target: t
tasks:
  t: {{train: t.npz, test: {target_test}}}
  a: {{train: {aux_train}}}
train: {{steps: 40, batch_size: 16}}
search: {{meta_steps: 4}}
{extra}
""",
    )


def _text_config(d: Path, train: str) -> str:
    """A text target ``t`` read in the fine-tuning regime (no encoder is loaded)."""
    (d / "good.jsonl").write_text('{"text": "a", "label": "no"}\n{"text": "b", "label": "yes"}\n')
    return _yaml(
        d / "c.yaml",
        f"""
target: t
model: {{regime: finetune}}
tasks:
  t: {{train: {train}, test: good.jsonl, labels: ["no", "yes"]}}
""",
    )


def _outside_config(d: Path, name: str = "secret.csv",
                    content: bytes = b"root:x:0:0:root:/root:/bin/bash\nsecret,line,here\n") -> list[str]:
    """A config in ``d/cfg`` whose target's train file ``d/elsewhere/NAME`` lies outside its folder (a 'secret' by default)."""
    (d / "elsewhere").mkdir()
    (d / "elsewhere" / name).write_bytes(content)
    (d / "cfg").mkdir()
    (d / "cfg" / "good.jsonl").write_text('{"text": "a", "label": "no"}\n{"text": "b", "label": "yes"}\n')
    cfg = _yaml(d / "cfg" / "c.yaml", f"""
target: t
model: {{regime: finetune}}
tasks:
  t: {{train: ../elsewhere/{name}, test: good.jsonl, labels: ["no", "yes"]}}
""")
    return _search(cfg)


def _write(d: Path, name: str, text: str) -> str:
    (d / name).write_text(text, encoding="utf-8")
    return name


def _write_bytes(d: Path, name: str, data: bytes) -> str:
    (d / name).write_bytes(data)
    return name


def _search(cfg: str, *more: str) -> list[str]:
    return ["search", cfg, "--out", OUT, *more]


def _builtin_search(*overrides: str) -> list[str]:
    ov = [x for o in overrides for x in ("-o", o)]
    return ["search", "builtin", "--out", OUT, *SMALL, *ov]


def _schedule(d: Path, doc: dict | str) -> list[str]:
    """``taskmix train builtin --schedule s.json`` with a schedule document (a dict, or raw text)."""
    raw = doc if isinstance(doc, str) else json.dumps(doc)
    _write(d, "s.json", raw)
    return ["train", "builtin", "--schedule", str(d / "s.json"), "--out", OUT, *SMALL]


def _sched_doc(**kw) -> dict:
    doc = {
        "format": "taskmix.schedule/1",
        "tasks": ["target", "helpful", "harmful", "irrelevant"],
        "steps_per_meta_step": 10,
        "weights": [[0.4, 0.3, 0.2, 0.1]],
    }
    doc.update(kw)
    return doc


def _prior_search(d: Path) -> None:
    """A finished small search in ``d/out`` (for the cases about an existing output directory)."""
    from typer.testing import CliRunner

    from taskmix.cli import app

    r = CliRunner().invoke(app, ["search", "builtin", "--out", str(d / OUT), *SMALL])
    assert r.exit_code == 0, r.output


def _prepopulated(d: Path, *args: str) -> list[str]:
    _prior_search(d)
    return list(args)


# ---- the output directory as someone else left it (lock file, links, FIFOs); tests/runs/test_out_links.py
# also checks that no file outside --out is created, changed or deleted in these cases

def _planted_lock(d: Path, kind: str) -> list[str]:
    """``out/.taskmix.lock`` planted as a hard link to, or a symbolic link to, ``d/victim.txt``; a FIFO; a directory."""
    (d / OUT).mkdir()
    victim = d / "victim.txt"
    victim.write_text("precious")
    lock = d / OUT / ".taskmix.lock"
    {"hardlink": lambda: os.link(victim, lock), "symlink": lambda: os.symlink(victim, lock),
     "fifo": lambda: os.mkfifo(lock), "dir": lambda: lock.mkdir()}[kind]()
    return _builtin_search()


def _compare_with_linked(d: Path, rel: str) -> list[str]:
    """A finished comparison whose directory ``rel`` is then replaced by a link to ``d/V``, outside ``--out``."""
    import shutil

    cwd = os.getcwd()
    os.chdir(d)
    try:
        _prior_compare(d)
    finally:
        os.chdir(cwd)
    v = d / "V"
    v.mkdir()
    (v / "events.out.tfevents.1.victim").write_bytes(b"precious")
    shutil.rmtree(d / OUT / rel)
    os.symlink(v, d / OUT / rel)
    return _compare_args("--resume")


def _search_with_linked_tb(d: Path) -> list[str]:
    """A finished search whose TensorBoard directory ``tb/log`` is then replaced by a link to ``d/V``."""
    import shutil

    _prior_search(d)
    v = d / "V"
    v.mkdir()
    (v / "events.out.tfevents.1.victim").write_bytes(b"precious")
    shutil.rmtree(d / OUT / "tb" / "log")
    os.symlink(v, d / OUT / "tb" / "log")
    return [*_builtin_search(), "--resume"]


# ---- restored state and inputs: checkpoints forged with their checksum recomputed, data changed between a run
# and its resume (tests/runs/test_restored_state.py has the property test)

def _interrupted_search(d: Path, edit: Callable[[dict], None] | None = None, *more: str) -> list[str]:
    """A small search stopped after meta-step 3 (only ``ckpt-000003.ckpt`` and the logs remain), its checkpoint
    then edited by ``edit`` and written back with a valid checksum (a careful forger); the resume that reads it."""
    from taskmix.runs.checkpoint import checkpoints, encode_checkpoint, load_checkpoint

    _prior_search(d)
    ckdir = d / OUT / "checkpoints"
    *_, third, last = checkpoints(ckdir)
    last.unlink()
    (d / OUT / "schedule.json").unlink()
    if edit is not None:
        payload = load_checkpoint(third)
        edit(payload)
        third.write_bytes(encode_checkpoint(payload))
    return [*_builtin_search(), "--resume", *more]


def _set(path: str, value: object) -> Callable[[dict], None]:
    """An edit of the checkpoint payload: the value at a dotted path (list indices as numbers)."""
    def edit(payload: dict) -> None:
        *parents, leaf = [int(k) if k.isdigit() else k for k in path.split(".")]
        node = payload
        for k in parents:
            node = node[k]
        node[leaf] = value(node[leaf]) if callable(value) else value
    return edit


def _relabel_i32(d: Path) -> list[str]:
    """The checkpoint's safetensors header relabels its first F32 tensor as I32 (same bytes), checksum recomputed."""
    import hashlib
    import struct

    from taskmix.runs.checkpoint import MAGIC, checkpoints

    args = _interrupted_search(d)
    path = checkpoints(d / OUT / "checkpoints")[-1]
    body = path.read_bytes()[len(MAGIC) + 65 :]
    (n,) = struct.unpack("<Q", body[:8])
    js, st = body[: 8 + n], bytearray(body[8 + n :])
    (h,) = struct.unpack("<Q", st[:8])
    header = bytes(st[8 : 8 + h])
    assert b'"dtype":"F32"' in header
    st[8 : 8 + h] = header.replace(b'"dtype":"F32"', b'"dtype":"I32"', 1)
    body = js + bytes(st)
    path.write_bytes(MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n" + body)
    return args


def _huge_checkpoint(d: Path) -> list[str]:
    """The checkpoint grown to 128 MiB (sparse: no disk used), twice what this config's checkpoints can hold; the
    resume must refuse it by its size, unread (tests/runs/test_restored_state.py: 4 GiB through the API)."""
    from taskmix.runs.checkpoint import checkpoints

    args = _interrupted_search(d)
    with open(checkpoints(d / OUT / "checkpoints")[-1], "r+b") as f:
        f.truncate(2**27)
    return args


def _npz_search_changed(d: Path) -> list[str]:
    """A finished npz search whose ``a.npz`` is then regenerated with the same shapes (other values)."""
    from typer.testing import CliRunner

    from taskmix.cli import app

    cfg = _npz_config(d)
    r = CliRunner().invoke(app, ["search", cfg, "--out", str(d / OUT)])
    assert r.exit_code == 0, r.output
    _npz(d / "a.npz", seed=12)
    return _search(cfg, "--resume")


def _compare_labels_flipped(d: Path) -> list[str]:
    """A one-seed npz comparison whose target test file's labels are then flipped; the resume with a second seed."""
    from typer.testing import CliRunner

    from taskmix.cli import app

    cfg = _npz_config(d)
    r = CliRunner().invoke(app, ["compare", cfg, "--seeds", "1", "--methods", "uniform", "--out", str(d / OUT)])
    assert r.exit_code == 0, r.output
    with np.load(d / "t_test.npz") as z:
        x, y = z["x"], z["y"]
    np.savez(d / "t_test.npz", x=x, y=1 - y)
    return ["compare", cfg, "--seeds", "2", "--methods", "uniform", "--out", OUT, "--resume"]


# ------------------------------------------------------------------ cases

CASES: list[Case] = [
    # ---- config
    Case("config-unknown-key", "config", "unknown top-level key",
         lambda d: _search(_npz_config(d, extra="shuffle: true")),
         ("c.yaml: shuffle: unknown key", "expected one of", "'target'")),
    Case("config-unknown-nested-key", "config", "unknown key in a section (`search.epsilonn`)",
         lambda d: _search(_npz_config(d), "-o", "search.epsilonn=0.1"),
         ("c.yaml: search.epsilonn: unknown key", "'epsilon'")),
    Case("config-wrong-type", "config", "wrong type (`train.steps: many`)",
         lambda d: _search(_npz_config(d), "-o", "train.steps=many"),
         ("c.yaml: train.steps:", "valid integer", "'many'")),
    Case("config-target-not-a-task", "config", "`target` not among the tasks",
         lambda d: _search(_npz_config(d), "-o", "target=rte"),
         ("c.yaml: target:", "'rte' is not among the tasks", "'t'", "'a'")),
    Case("config-epsilon-gt-gamma", "config", "ε > γ (`search.epsilon: 0.3`, γ = 0.2)",
         lambda d: _search(_npz_config(d), "-o", "search.epsilon=0.3"),
         ("c.yaml: search.epsilon:", "epsilon (0.3) must not exceed gamma (0.2)")),
    Case("config-gamma-gt-1", "config", "γ > 1",
         lambda d: _search(_npz_config(d), "-o", "search.gamma=1.5"),
         ("c.yaml: search.gamma:", "less than or equal to 1", "1.5")),
    Case("config-zero-steps", "config", "zero training steps",
         lambda d: _search(_npz_config(d), "-o", "train.steps=0"),
         ("c.yaml: train.steps:", "greater than 0", "(got 0)")),
    Case("config-steps-not-multiple", "config", "`train.steps` not a multiple of `search.meta_steps`",
         lambda d: _search(_npz_config(d), "-o", "search.meta_steps=7"),
         ("c.yaml: train.steps:", "multiple of search.meta_steps (7)")),
    Case("config-unknown-reward", "config", "unknown reward name",
         lambda d: _search(_npz_config(d), "-o", "search.reward=accurracy"),
         ("c.yaml: search.reward:", "unknown reward 'accurracy'", "gradient_alignment")),
    Case("config-unknown-prior", "config", "unknown rule as the policy's prior (`search.prior`)",
         lambda d: _search(_npz_config(d), "-o", "search.prior=proportionall"),
         ("c.yaml: search.prior:", "unknown rule 'proportionall'", "temperature_<temperature>")),
    Case("config-prior-zero-weight", "config", "a prior that gives a task no weight (`search.prior=single_task`)",
         lambda d: _search(_npz_config(d), "-o", "search.prior=single_task"),
         ("c.yaml: search.prior:", "'single_task' gives", "no weight")),
    Case("config-yaml-labels-booleans", "config", "YAML reads unquoted `no`/`yes` labels as booleans",
         lambda d: _search(_yaml(d / "c.yaml", "target: t\ntasks:\n  t: {train: t.jsonl, labels: [no, yes]}")),
         ("c.yaml: tasks.t.labels.0:", "valid string", "False")),
    Case("config-invalid-yaml", "config", "invalid YAML syntax",
         lambda d: _search(_yaml(d / "c.yaml", "target: t\ntasks:\n  t: {train: t.npz\nsearch: {}")),
         ("c.yaml:", "not valid YAML")),
    Case("config-not-a-mapping", "config", "a YAML list instead of a mapping",
         lambda d: _search(_yaml(d / "c.yaml", "- target: t")),
         ("c.yaml: expected a mapping at the top level, got list",)),
    Case("config-missing-file", "config", "config file does not exist",
         lambda d: _search(str(d / "missing.yaml")),
         ("missing.yaml: config file not found",)),
    Case("config-bad-override", "config", "override without `=`",
         lambda d: _search(_npz_config(d), "-o", "search.epsilon"),
         ("override 'search.epsilon': expected KEY=VALUE",)),
    # ---- bounds and types (config fields)
    Case("config-batch-size-huge", "bounds", "`train.batch_size=1e9` (YAML reads `1e9` as a string; no coercion)",
         lambda d: _builtin_search("train.batch_size=1e9"), ("<built-in>: train.batch_size:", "valid integer")),
    Case("config-batch-size-over-bound", "bounds", "`train.batch_size=1000000000` (an integer over the bound)",
         lambda d: _builtin_search("train.batch_size=1000000000"), ("<built-in>: train.batch_size:", "less than or equal to")),
    Case("config-steps-huge", "bounds", "`train.steps=4e12`",
         lambda d: _builtin_search("train.steps=4e12"), ("<built-in>: train.steps:", "valid integer")),
    Case("config-draws-per-meta-step", "bounds", "`train.steps=4000000000000` with `search.meta_steps=4`",
         lambda d: _builtin_search("train.steps=4000000000000"), ("<built-in>: train.steps:", "less than or equal to")),
    Case("config-hidden-huge", "bounds", "`model.hidden=1e9`",
         lambda d: _builtin_search("model.hidden=1e9"), ("<built-in>: model.hidden:", "valid integer")),
    Case("config-hidden-weights", "bounds", "`model.hidden=60000` with `model.layers=3` (7.2e9 weights)",
         lambda d: _builtin_search("model.hidden=60000", "model.layers=3"), ("<built-in>: model.hidden:", "weights, more than")),
    Case("config-layers-huge", "bounds", "`model.layers=1e6`",
         lambda d: _builtin_search("model.layers=1000000"), ("<built-in>: model.layers:", "less than or equal to 64")),
    Case("config-synthetic-dim-huge", "bounds", "`synthetic.dim=1e8`",
         lambda d: _builtin_search("synthetic.dim=100000000"), ("<built-in>: synthetic.dim:", "less than or equal to")),
    Case("config-sgd-steps-huge", "bounds", "`search.sgd_steps=1e9`",
         lambda d: _builtin_search("search.sgd_steps=1000000000"), ("<built-in>: search.sgd_steps:", "less than or equal to")),
    Case("config-oracle-grid", "bounds", "`compare.oracle_step=0.001` (a 1001-point grid per axis)",
         lambda d: _builtin_search("compare.oracle_step=0.001"), ("<built-in>: compare.oracle_step:", "mixtures", "use a larger step")),
    Case("config-oracle-step-not-a-divisor", "bounds", "`compare.oracle_step=0.3` (checked before any cell runs)",
         lambda d: _builtin_search("compare.oracle_step=0.3"), ("<built-in>: compare.oracle_step: 1/step must be an integer",)),
    Case("config-meta-steps-bool", "bounds", "`search.meta_steps=true` (no bool -> int coercion)",
         lambda d: _builtin_search("search.meta_steps=true"), ("<built-in>: search.meta_steps:", "valid integer", "True")),
    Case("config-entropy-inf", "bounds", "`search.entropy=.inf` (the field is named)",
         lambda d: _builtin_search("search.entropy=.inf"), ("<built-in>: search.entropy:", "finite number")),
    Case("config-seed-negative", "bounds", "`seed: -1` in the config",
         lambda d: _builtin_search("seed=-1"), ("<built-in>: seed:", "greater than or equal to 0")),
    Case("config-device-unknown", "bounds", "`train.device=foo`",
         lambda d: _builtin_search("train.device=foo"), ("<built-in>: train.device:", "not a device")),
    Case("config-device-absent", "bounds", "`train.device=cuda` where torch has no CUDA device",
         lambda d: _builtin_search("train.device=cuda"), ("<built-in>: train.device: 'cuda' but this machine has",),
         cpu_only=True),
    Case("config-duplicate-key", "config", "a key given twice in the YAML config",
         lambda d: _search(_yaml(d / "c.yaml", "synthetic: {}\ntrain: {steps: 40}\ntrain: {steps: 80}")),
         ("c.yaml:3: not valid YAML (duplicate key 'train'",)),
    Case("config-long-name", "config", "a 100 000-character target name (echoed cut short)",
         lambda d: _builtin_search("target=" + "x" * 100_000), ("<built-in>: target:", "...", "is not among the tasks")),
    # ---- command-line options
    Case("cli-seed-negative", "options", "`--seed -1`",
         lambda d: [*_builtin_search(), "--seed", "-1"], ("Invalid value for '--seed'", "greater than or equal to 0")),
    Case("cli-seed-huge", "options", "`--seed 2^80` (seeds are 0 <= S < 2^32)",
         lambda d: [*_builtin_search(), "--seed", str(2**80)], ("Invalid value for '--seed'", "less than or equal to 4294967295")),
    Case("cli-seeds-zero", "options", "`--seeds 0`",
         lambda d: ["compare", "builtin", "--seeds", "0", "--out", OUT], ("Invalid value for '--seeds'", "greater than or equal to 1")),
    Case("cli-seeds-huge", "options", "`--seeds 2^63`",
         lambda d: ["compare", "builtin", "--seeds", str(2**63), "--out", OUT], ("Invalid value for '--seeds'", "less than or equal to")),
    Case("cli-unknown-option", "options", "an unknown option",
         lambda d: [*_builtin_search(), "--epsilon", "0.1"], ("No such option: --epsilon",)),
    Case("cli-missing-schedule", "options", "`taskmix train` without `--schedule`",
         lambda d: ["train", "builtin", "--out", OUT], ("Missing option '--schedule'",)),
    Case("cli-empty-out", "options", "`--out ''` (would be the current directory)",
         lambda d: ["search", "builtin", "--out", "", *SMALL], ("Invalid value for '--out': an empty path",)),
    Case("cli-methods-empty", "options", "`--methods ','`",
         lambda d: ["compare", "builtin", "--methods", ",", "--out", OUT], ("--methods: ',' names no method",)),
    Case("config-methods-empty", "config", "`compare.methods: []`",
         lambda d: ["compare", "builtin", "-o", "compare.methods=[]", "--out", OUT], ("compare.methods: empty",)),
    Case("plot-unknown-format", "options", "`taskmix plot --out x.txt` (the suffix picks the format)",
         lambda d: ["plot", _write(d, "s.json", json.dumps(_sched_doc())), "--out", "x.txt"], ("x.txt: '.txt' is not a figure type",)),
    Case("plot-malformed-log", "options", "`taskmix plot --log` with rows that are not search log rows",
         lambda d: ["plot", _write(d, "s.json", json.dumps(_sched_doc())), "--log", _write(d, "log.jsonl", '{"step": 1}\n'),
                    "--out", "x.png"], ("log.jsonl: row 1: 'probs_after' is missing",)),
    # ---- input files that are not regular files
    Case("config-dev-zero", "files", "`/dev/zero` as the config",
         lambda d: _search("/dev/zero"), ("/dev/zero: is a character device, expected a regular file",)),
    Case("config-fifo", "files", "a FIFO as the config (would block)",
         lambda d: _search(_fifo(d / "c.yaml")), ("c.yaml: is a FIFO, expected a regular file",)),
    Case("config-symlink-loop", "files", "a symbolic link loop as the config",
         lambda d: _search(_loop(d)), ("loop.yaml: a symbolic link loop",)),
    Case("schedule-dev-zero", "files", "`/dev/zero` as the schedule",
         lambda d: ["train", "builtin", "--schedule", "/dev/zero", "--out", OUT], ("/dev/zero: is a character device",)),
    Case("schedule-fifo", "files", "a FIFO as the schedule",
         lambda d: ["train", "builtin", "--schedule", _fifo(d / "s.json"), "--out", OUT], ("s.json: is a FIFO",)),
    Case("npz-fifo", "files", "a FIFO as an npz file",
         lambda d: _search(_npz_config(d, aux_train=_fifo(d / "a.npz"))), ("a.npz: is a FIFO",)),
    # ---- npz data
    Case("npz-non-finite-feature", "data (npz)", "NaN in a feature array",
         lambda d: _search(_npz_config(d, aux_train=_npz(d / "nan.npz", x=_with_nan_at(7, 1)))),
         ("nan.npz: row 7 of 'x' has a non-finite value",)),
    Case("npz-missing-array", "data (npz)", "npz without a `y` array",
         lambda d: _search(_npz_config(d, aux_train=_arrays(d / "noy.npz", x=np.zeros((5, 4), np.float32)))),
         ("noy.npz: missing array(s) ['y']", "expected 'x' (n x d float) and 'y' (n int)")),
    Case("npz-empty-split", "data (npz)", "empty split (0 rows)",
         lambda d: _search(_npz_config(d, target_test=_arrays(d / "empty.npz", x=np.zeros((0, 4)), y=np.zeros(0, int)))),
         ("empty.npz: empty split (0 rows)",)),
    Case("npz-not-npz", "data (npz)", "a file that is not an npz archive",
         lambda d: _search(_npz_config(d, aux_train=_write(d, "junk.npz", "not a zip"))),
         ("junk.npz: not an .npz archive", "numpy.savez")),
    Case("npz-dim-mismatch", "data (npz)", "test features with another width than train",
         lambda d: _search(_npz_config(d, target_test=_npz(d / "wide.npz", d=6))),
         ("wide.npz: 'x' has 6 columns, expected 4 like tasks.t.train",)),
    Case("npz-missing-file", "data (npz)", "data file does not exist",
         lambda d: _search(_npz_config(d, aux_train="nowhere.npz")),
         ("nowhere.npz: file not found",)),
    Case("npz-complex-features", "data (npz)", "complex-valued features",
         lambda d: _search(_npz_config(d, aux_train=_arrays(d / "c.npz", x=np.ones((40, 4), np.complex64), y=np.arange(40) % 2))),
         ("c.npz: 'x' is complex",)),
    Case("npz-zero-columns", "data (npz)", "features with zero columns",
         lambda d: _search(_npz_config(d, aux_train=_arrays(d / "z.npz", x=np.ones((40, 0), np.float32), y=np.arange(40) % 2))),
         ("z.npz: 'x' has 0 columns",)),
    Case("npz-label-huge", "data (npz)", "a label of 1e9",
         lambda d: _search(_npz_config(d, aux_train=_arrays(d / "l.npz", x=np.ones((40, 4), np.float32),
                                                            y=np.full(40, 10**9)))),
         ("l.npz: 'y' has label 1000000000; expected integers below",)),
    Case("npz-test-label-unseen", "data (npz)", "target test labels outside the training label space",
         lambda d: _search(_npz_config(d, target_test=_arrays(d / "t3.npz", x=np.ones((40, 4), np.float32), y=np.arange(40) % 3))),
         ("t3.npz: label(s) [2] not among the training labels of tasks.t",)),
    Case("npz-extreme-magnitude-strict", "data (npz)", "features of magnitude 1e30 under `strict: true` (a warning otherwise)",
         lambda d: _search(_npz_config(d, aux_train=_npz(d / "big.npz", scale=1e30), extra="strict: true")),
         ("big.npz: features of magnitude up to", "refused under strict: true")),
    # ---- text data (fine-tuning regime: no encoder is loaded)
    Case("jsonl-malformed-line", "data (text)", "malformed JSONL line",
         lambda d: _search(_text_config(d, _write(d, "bad.jsonl", '{"text": "a", "label": "no"}\n{"text": "b", "label": \n'))),
         ("bad.jsonl:2: not valid JSON", "one JSON object per line"), text=True),
    Case("jsonl-not-an-object", "data (text)", "JSONL line that is not an object",
         lambda d: _search(_text_config(d, _write(d, "arr.jsonl", '{"text": "a", "label": "no"}\n["b", "yes"]\n'))),
         ("arr.jsonl:2: expected a JSON object per line, got a JSON array",), text=True),
    Case("jsonl-missing-column", "data (text)", "missing column",
         lambda d: _search(_text_config(d, _write(d, "nocol.jsonl", '{"sentence": "a", "label": "no"}\n'))),
         ("nocol.jsonl: no column 'text'", "available columns: sentence, label"), text=True),
    Case("jsonl-unknown-label", "data (text)", "unknown label value",
         lambda d: _search(_text_config(d, _write(d, "lab.jsonl", '{"text": "a", "label": "no"}\n{"text": "b", "label": "maybe"}\n'))),
         ("lab.jsonl:2: unknown label 'maybe' in column 'label'", "['no', 'yes']"), text=True),
    Case("jsonl-empty-split", "data (text)", "empty JSONL file",
         lambda d: _search(_text_config(d, _write(d, "empty.jsonl", ""))),
         ("empty.jsonl: empty split",), text=True),
    Case("csv-field-count", "data (text)", "CSV line with too many fields",
         lambda d: _search(_text_config(d, _write(d, "bad.csv", "text,label\na,no\nb,yes,extra\n"))),
         ("bad.csv:3: expected 2 comma-separated fields (text, label), found 3",), text=True),
    Case("csv-missing-column", "data (text)", "CSV without the label column",
         lambda d: _search(_text_config(d, _write(d, "nolab.csv", "text,gold\na,no\n"))),
         ("nolab.csv: no column 'label'", "available columns: text, gold"), text=True),
    Case("csv-header-only", "data (text)", "CSV with a header and no rows",
         lambda d: _search(_text_config(d, _write(d, "header.csv", "text,label\n"))),
         ("header.csv: empty split",), text=True),
    Case("jsonl-label-huge", "data (text)", "an integer label of 1e9 (no `labels` list)",
         lambda d: _search(_yaml(d / "c.yaml", "target: t\nmodel: {regime: finetune}\ntasks:\n  t: {train: big.jsonl, test: ok.jsonl}"),
                           ) if (_write(d, "ok.jsonl", '{"text": "a", "label": 0}\n'),
                                 _write(d, "big.jsonl", '{"text": "a", "label": 0}\n{"text": "b", "label": 1000000000}\n')) else [],
         ("big.jsonl:2: label 1000000000 in column 'label' is too large",), text=True),
    Case("jsonl-test-label-unseen", "data (text)", "a test label the training split never has",
         lambda d: _search(_text_config(d, _write(d, "no_only.jsonl", '{"text": "a", "label": "no"}\n{"text": "b", "label": "no"}\n'))),
         ("good.jsonl: label(s) [1] not among the training labels of tasks.t ([0])",), text=True),
    Case("csv-outside-config-folder", "data (text)", "a data file outside the config's folder (its content is not echoed)",
         _outside_config, ("elsewhere/secret.csv:2: not valid data for tasks.t (details withheld",
                           "set data_dir to its folder, --data-dir elsewhere)"), text=True),
    Case("csv-outside-config-folder-not-utf8", "data (text)",
         "a data file outside the config's folder, not UTF-8 (a message that quotes no content is shown)",
         lambda d: _outside_config(d, "latin.csv", "text,label\nsecret,no\ncaf\u00e9,yes\n".encode("latin-1")),
         ("elsewhere/latin.csv:3: not UTF-8 text (invalid continuation byte at byte 4 of the line",),
         text=True),
    Case("text-data-fifo", "files", "a FIFO as a JSONL data file (would block)",
         lambda d: _search(_text_config(d, _fifo(d / "f.jsonl"))),
         ("f.jsonl: is a FIFO, expected a regular file (text data file)",), text=True),
    Case("text-data-dev-zero", "files", "`/dev/zero` as a text data file (never ends)",
         lambda d: _search(_text_config(d, "/dev/zero")),
         ("/dev/zero: is a character device, expected a regular file (text data file)",), text=True),
    Case("text-data-dev-zero-link", "files", "a `.jsonl` link to `/dev/zero`",
         lambda d: (os.symlink("/dev/zero", d / "z.jsonl"), _search(_text_config(d, "z.jsonl")))[1],
         ("z.jsonl: is a character device, expected a regular file (text data file)",), text=True),
    Case("jsonl-line-50mb", "data (text)", "a 50 MB text on one JSONL line (refused before any tokenizer sees it)",
         lambda d: _search(_text_config(d, _write_bytes(d, "long.jsonl", b'{"text": "' + b"a" * 50_000_000
                                                        + b'", "label": "no"}\n'))),
         ("long.jsonl:1: column 'text' holds 50000000 characters, more than the 1000000 allowed per field",), text=True),
    Case("csv-field-2m", "data (text)", "a CSV field of 2 million characters",
         lambda d: _search(_text_config(d, _write(d, "long.csv", "text,label\na,no\n" + "b" * 2_000_000 + ",yes\n"))),
         ("long.csv:3: a field of more than 1000000 characters",), text=True),
    Case("jsonl-label-superscript", "data (text)", "a label `²` (a digit to Python's `str.isdigit`, not to `int`)",
         lambda d: _search(_text_config(d, _write(d, "l.jsonl", '{"text": "a", "label": "no"}\n{"text": "b", "label": "\u00b2"}\n'))),
         ("l.jsonl:2: unknown label '\u00b2' in column 'label'; expected one of ['no', 'yes'] or an integer in 0..1",),
         text=True),
    Case("jsonl-label-double-minus", "data (text)", "a label `--5`",
         lambda d: _search(_text_config(d, _write(d, "l.jsonl", '{"text": "a", "label": "no"}\n{"text": "b", "label": "--5"}\n'))),
         ("l.jsonl:2: unknown label '--5' in column 'label'",), text=True),
    Case("csv-label-5000-digits", "data (text)", "a label of 5,000 digits in a CSV (echoed cut short)",
         lambda d: _search(_text_config(d, _write(d, "l.csv", "text,label\na,no\nb," + "9" * 5000 + "\n"))),
         ("l.csv:3: label '99999", "...' in column 'label' is out of range (5000 digits); expected one of ['no', 'yes']"),
         text=True),
    Case("jsonl-label-5000-digit-number", "data (text)", "a JSON number of 5,000 digits as a label",
         lambda d: _search(_text_config(d, _write(d, "l.jsonl", '{"text": "a", "label": "no"}\n{"text": "b", "label": '
                                              + "9" * 5000 + "}\n"))),
         ("l.jsonl:2: not valid JSON (a number of more than 4300 digits)",), text=True),
    Case("csv-bom-header", "data (text)", "a CSV that starts with a UTF-8 byte order mark (accepted: here a later line is bad)",
         lambda d: _search(_text_config(d, _write_bytes(d, "bom.csv", b"\xef\xbb\xbftext,label\na,no\nb,maybe\n"))),
         ("bom.csv:3: unknown label 'maybe' in column 'label'",), text=True),
    Case("csv-unclosed-quote", "data (text)", "an unclosed quote on line 6 of a 42-line CSV (the line where it opens is named)",
         lambda d: _search(_text_config(d, _write(d, "q.csv", "text,label\n" + "a,no\n" * 4 + '"unclosed,no\n' + "b,yes\n" * 36))),
         ("q.csv:6: a quoted field starts on this line and is not closed", "stopped at line 42"), text=True),
    Case("csv-latin-1", "data (text)", "a Latin-1 (not UTF-8) CSV",
         lambda d: _search(_text_config(d, _write_bytes(d, "l.csv", "text,label\na,no\ncaf\u00e9,yes\n".encode("latin-1")))),
         ("l.csv:3: not UTF-8 text (invalid continuation byte at byte 4 of the line, offset 19 in the file); "
          "data files must be UTF-8",), text=True),
    Case("csv-semicolon-separated", "data (text)", "a `;`-separated CSV",
         lambda d: _search(_text_config(d, _write(d, "s.csv", "text;label\na;no\nb;yes\n"))),
         ("s.csv:1: the header is one field 'text;label' that looks semicolon-separated; "
          "taskmix reads .csv as comma-separated values",), text=True),
    Case("csv-tab-separated", "data (text)", "a tab-separated file named `.csv`",
         lambda d: _search(_text_config(d, _write(d, "s.csv", "text\tlabel\na\tno\nb\tyes\n"))),
         ("s.csv:1: the header is one field 'text\\tlabel' that looks tab-separated", "set format: tsv"), text=True),
    # ---- training
    Case("search-non-finite-loss", "training",
         "one feature row at the float32 maximum: the loss (or a reward probe) overflows mid-search (step and task named)",
         lambda d: _search(_npz_config(d, aux_train=_spike(d / "spike.npz"))),
         ("search meta-step ", "training step ", "non-finite", "on task(s) ['a']",
          "the last complete checkpoint out/checkpoints/ckpt-", "is kept"), partial_run=True, volatile=True),
    Case("train-non-finite-loss", "training",
         "one feature row at the float32 maximum: the loss overflows when replaying a schedule",
         lambda d: ["train", _npz_config(d, aux_train=_spike(d / "spike.npz")),
                    "--schedule", _write(d, "s.json", json.dumps({
                        "format": "taskmix.schedule/1", "tasks": ["t", "a"], "steps_per_meta_step": 1,
                        "weights": [[0.5, 0.5]]})), "--out", OUT],
         ("training step ", "(non-finite) on task(s) ['a']"), volatile=True),
    # ---- schedule files (taskmix train)
    Case("schedule-unknown-task", "schedule", "schedule with a task the config does not have",
         lambda d: _schedule(d, _sched_doc(tasks=["target", "helpful", "harmful", "mnli"])),
         ("s.json: unknown task(s) ['mnli']", "the config has")),
    Case("schedule-negative-weight", "schedule", "negative weight",
         lambda d: _schedule(d, _sched_doc(weights=[[0.6, 0.5, 0.2, -0.3]])),
         ("s.json: weights[0][3] is -0.3, expected a non-negative number",)),
    Case("schedule-non-finite-weight", "schedule", "non-finite weight (`NaN`)",
         lambda d: _schedule(d, json.dumps(_sched_doc()).replace("0.1", "NaN")),
         ("s.json: weights[0][3] is nan, expected a finite number",)),
    Case("schedule-row-sum", "schedule", "row not summing to 1",
         lambda d: _schedule(d, _sched_doc(weights=[[0.4, 0.3, 0.2, 0.1], [0.5, 0.3, 0.2, 0.1]])),
         ("s.json: weights[1] sums to 1.1, expected 1",)),
    Case("schedule-row-length", "schedule", "row of the wrong length",
         lambda d: _schedule(d, _sched_doc(weights=[[0.5, 0.5]])),
         ("s.json: weights[0] has 2 entries, expected 4 (one per task)",)),
    Case("schedule-invalid-json", "schedule", "not JSON",
         lambda d: _schedule(d, '{"format": "taskmix.schedule/1",\n "tasks": [}'),
         ("s.json:2: not valid JSON",)),
    Case("schedule-wrong-format", "schedule", "missing or wrong `format` tag",
         lambda d: _schedule(d, {k: v for k, v in _sched_doc().items() if k != "format"}),
         ("s.json: 'format' must be 'taskmix.schedule/1', got None",)),
    Case("schedule-missing-file", "schedule", "schedule file does not exist",
         lambda d: ["train", "builtin", "--schedule", str(d / "none.json"), "--out", OUT],
         ("none.json: schedule file not found",)),
    Case("schedule-partial", "schedule", "a schedule naming 2 of the 4 tasks (without `--allow-missing-tasks`)",
         lambda d: _schedule(d, _sched_doc(tasks=["target", "helpful"], weights=[[0.5, 0.5]])),
         ("s.json: names 2 of the 4 tasks", "--allow-missing-tasks")),
    Case("schedule-duplicate-key", "schedule", "a key given twice in the schedule JSON",
         lambda d: _schedule(d, json.dumps(_sched_doc())[:-1] + ', "tasks": ["a"]}'),
         ("s.json: duplicate key 'tasks'",)),
    Case("export-prefix-control-char", "schedule",
         "`schedule export -f megatron --prefix` with a line break in the prefix (spaces are quoted, not refused)",
         lambda d: ["schedule", "export", _write(d, "s.json", json.dumps(_sched_doc())), "-f", "megatron",
                    "--prefix", "target=/data/t\n--evil x"],
         ("prefix of task 'target': '/data/t\\n--evil x' has a control character", "expected a data path on one line")),
    # ---- output directory and resume
    Case("out-is-a-file", "output", "`--out` names an existing file",
         lambda d: (_write(d, OUT, "x"), _builtin_search())[1],
         ("out: exists and is not a directory",)),
    Case("out-holds-a-search", "output", "`--out` already holds a search, no `--resume`",
         lambda d: _prepopulated(d, *_builtin_search()),
         ("out: already holds a search; use --resume",)),
    Case("resume-changed-config", "output", "`--resume` with a changed config",
         lambda d: _prepopulated(d, *_builtin_search("search.epsilon=0.05", "search.lr=0.1"), "--resume"),
         ("cannot resume, the config differs from the checkpointed run at search.epsilon, search.lr",)),
    Case("train-metrics-exist", "output", "`taskmix train --out DIR` where DIR/metrics.json exists (no `--overwrite`)",
         lambda d: (os.makedirs(d / OUT), _write(d / OUT, "metrics.json", "{}"), _schedule(d, _sched_doc()))[-1],
         ("out/metrics.json: already exists; pass --overwrite",)),
    Case("resume-planted-pickle", "output", "`--resume` with a pickle planted as `ckpt-000001.ckpt` (never unpickled)",
         lambda d: [*_planted_checkpoint(d, "ckpt-000001.ckpt"), "--resume"],
         ("no readable checkpoint among 1 file(s)", "not a taskmix checkpoint")),
    Case("resume-legacy-pickle", "output", "`--resume` with a pickled `ckpt-000001.pt` of an older taskmix, or planted",
         lambda d: [*_planted_checkpoint(d, "ckpt-000001.pt"), "--resume"],
         ("ckpt-000001.pt: a pickled checkpoint", "never loaded")),
    Case("rows-edited", "output", "`compare --resume` after a `test` value in rows.jsonl was edited",
         lambda d: _edit_rows(d, lambda rows: [{**rows[0], "test": 0.99}]),
         ("out/rows.jsonl:1: the row does not match its sha256 checksum",)),
    Case("rows-conflicting-duplicate", "output", "`compare --resume` with two different rows for one (method, seed)",
         lambda d: _edit_rows(d, lambda rows: [rows[0], _resign({**rows[0], "seconds": 123.0})]),
         ("out/rows.jsonl:2: a second, different row for method 'uniform' seed 0",)),
    Case("rows-test-nan", "output", "`compare --resume` with `test: \"NaN\"` in rows.jsonl",
         lambda d: _edit_rows(d, lambda rows: [_resign({**rows[0], "test": "NaN"})]),
         ("out/rows.jsonl:1: 'test' is \"NaN\", expected a number in [0, 1] (accuracy)",)),
    Case("rows-predictions-damaged", "output", "`compare --resume` with a row whose `predictions` are not the u8 base64 form",
         lambda d: _edit_rows(d, lambda rows: [_resign({**rows[0], "predictions": "u8:not base64!"})]),
         ("out/rows.jsonl:1: 'predictions': not valid base64 after 'u8:'",)),
    Case("rows-predictions-other-split", "output", "`compare --resume` with rows whose `predictions` are for another report split",
         lambda d: _edit_rows(d, lambda rows: [_resign({**rows[0], "predictions": "u8:AAEC"})]),
         ("'predictions' holds 3 labels but the target's report split has", "use a new --out")),
    Case("rows-missing-seconds", "output", "`compare --resume` with a row without `seconds`",
         lambda d: _edit_rows(d, lambda rows: [_resign({k: v for k, v in rows[0].items() if k != "seconds"})]),
         ("out/rows.jsonl:1: no 'seconds'",)),
    # rows re-signed after the edit (`_resign`): a matching checksum is not trusted, every field is checked
    Case("rows-test-huge", "output", "`compare --resume` with a re-signed row whose `test` is 1e308",
         lambda d: _edit_rows(d, lambda rows: [_resign({**rows[0], "test": 1e308})]),
         ("out/rows.jsonl:1: 'test' is 1e+308, expected a number in [0, 1] (accuracy)",)),
    Case("rows-test-negative", "output", "`compare --resume` with a re-signed row whose `test` is -5",
         lambda d: _edit_rows(d, lambda rows: [_resign({**rows[0], "test": -5})]),
         ("out/rows.jsonl:1: 'test' is -5, expected a number in [0, 1] (accuracy)",)),
    Case("rows-test-contradicts-predictions", "output",
         "`compare --resume` with a re-signed row whose `test` (0.99) is not the accuracy of its own `predictions`",
         lambda d: _edit_rows(d, lambda rows: [_resign({**rows[0], "test": 0.99})]),
         ("out/rows.jsonl:1: 'test' is 0.99 but the row's predictions score", "(accuracy on the test split)")),
    Case("rows-predictions-unknown-label", "output", "`compare --resume` with a re-signed row predicting label 7 of a 2-label target",
         lambda d: _edit_rows(d, lambda rows: [_resign({**rows[0], "predictions": _all_labels(7), "test": 0.0})]),
         ("out/rows.jsonl:1: 'predictions' holds label 7, expected labels below 2 (the target's labels)",)),
    Case("rows-seed-huge", "output", "`compare --resume` with a re-signed row whose `seed` is 10^400",
         lambda d: _edit_rows(d, lambda rows: [_resign({**rows[0], "seed": 10**400})]),
         ("out/rows.jsonl:1: 'seed' is 1000000000", "expected an integer in [0, 2^32)")),
    Case("rows-unknown-method", "output", "`compare --resume` with a re-signed row of an unknown method",
         lambda d: _edit_rows(d, lambda rows: [_resign({**rows[0], "method": "uniform2"})]),
         ("out/rows.jsonl:1: 'method' is \"uniform2\", expected the name of a comparison method",)),
    Case("rows-log-not-entries", "output", "`compare --resume` with a re-signed row whose `log` is `[1, 2, 3]`",
         lambda d: _edit_learned_rows(d, lambda row: {**row, "log": [1, 2, 3]}),
         ("out/rows.jsonl:1: 'log[0]' is 1, expected an object (one meta-step of the run)",)),
    Case("rows-log-nan-weights", "output", "`compare --resume` with a re-signed row whose search log has NaN `probs_after`",
         lambda d: _edit_learned_rows(d, lambda row: {**row, "log": [{**e, "probs_after": [float("nan")] * 4} for e in row["log"]]}),
         ("out/rows.jsonl:1: 'log[0].probs_after[0]' is NaN, expected a finite number",)),
    Case("rows-task-effects-damaged", "output", "`compare --resume` with a re-signed row whose `extra.task_effects` hold a string",
         lambda d: _edit_learned_rows(d, lambda row: {**row, "extra": {**row["extra"], "task_effects": {"target": {
             "effect": "big", "se": 0.1, "ci_low": 0, "ci_high": 1, "verdict": "helps"}}}}),
         ("out/rows.jsonl:1: 'extra.task_effects.target.effect' is \"big\", expected a finite number",)),
    Case("rows-pickle", "output", "`compare --resume` with a pickle planted as rows.jsonl (never unpickled)",
         lambda d: (_edit_rows(d, lambda rows: rows), (d / OUT / "rows.jsonl").write_bytes(malicious_pickle(d / "PWNED")),
                    _compare_args("--resume"))[-1],
         ("out/rows.jsonl:1: not a results row",)),
    Case("resume-changed-seed", "output", "`--resume` with another seed",
         lambda d: _prepopulated(d, *_builtin_search(), "--seed", "7", "--resume"),
         ("cannot resume, the config differs from the checkpointed run at seed;",)),
    Case("demo-into-a-foreign-dir", "output", "`demo --out` names a non-empty directory that holds no earlier demo",
         lambda d: ((d / OUT).mkdir(), _write(d, f"{OUT}/notes.txt", "mine"), ["demo", "--out", OUT, "--seeds", "1", *SMALL])[2],
         ("out: exists, is not empty and holds no earlier demo (demo.json); choose another --out",)),
    Case("lock-hard-link", "output", "`out/.taskmix.lock` is a hard link to a file outside `--out` (never written)",
         lambda d: _planted_lock(d, "hardlink"),
         ("out/.taskmix.lock: has 2 hard links", "expected taskmix's lock file (a regular file)")),
    Case("lock-symlink", "output", "`out/.taskmix.lock` is a symbolic link (never followed)",
         lambda d: _planted_lock(d, "symlink"),
         ("out/.taskmix.lock: is a symbolic link; expected taskmix's lock file",)),
    Case("lock-fifo", "output", "`out/.taskmix.lock` is a FIFO",
         lambda d: _planted_lock(d, "fifo"),
         ("out/.taskmix.lock: is a FIFO, expected taskmix's lock file",)),
    Case("lock-directory", "output", "`out/.taskmix.lock` is a directory",
         lambda d: _planted_lock(d, "dir"),
         ("out/.taskmix.lock: is a directory, expected taskmix's lock file",)),
    Case("demo-compare-json-fifo", "output", "`demo --out` names a directory whose `compare.json` is a FIFO (never opened for reading)",
         lambda d: ((d / OUT).mkdir(), os.mkfifo(d / OUT / "compare.json"), ["demo", "--out", OUT, "--seeds", "1", *SMALL])[2],
         ("out/compare.json: is a FIFO, expected a regular file (compare.json)",)),
    Case("compare-resume-linked-tb-run", "output", "`compare --resume` where `logs/tb/<run>` is a link to a directory outside `--out`",
         lambda d: _compare_with_linked(d, "logs/tb/uniform-seed0"),
         ("out/logs/tb/uniform-seed0: is a symbolic link inside the output directory, to a directory outside it (V)",)),
    Case("compare-resume-linked-tb", "output", "`compare --resume` where `logs/tb` is a link to a directory outside `--out`",
         lambda d: _compare_with_linked(d, "logs/tb"),
         ("out/logs/tb: is a symbolic link inside the output directory, to a directory outside it (V)",)),
    Case("search-resume-linked-tb", "output", "`search --resume` where `tb/log` is a link to a directory outside `--out`",
         _search_with_linked_tb,
         ("out/tb/log: is a symbolic link inside the output directory, to a directory outside it (V)",)),
    # ---- restored state: a checkpoint edited with its checksum recomputed is checked field by field
    Case("resume-forged-meta-step", "output", "`--resume` from a checkpoint forged (checksum recomputed) with `meta_step: -5`",
         lambda d: _interrupted_search(d, _set("state.meta_step", -5)),
         ("no readable checkpoint among 1 file(s)", "out/checkpoints/ckpt-000003.ckpt: malformed state",
          "state.meta_step: -5 is out of range (expected 0..3)")),
    Case("resume-forged-meta-step-huge", "output", "`--resume` from a checkpoint forged with `meta_step: 1000000`",
         lambda d: _interrupted_search(d, _set("state.meta_step", 10**6)),
         ("ckpt-000003.ckpt: malformed state (state.meta_step: 1000000 is out of range (expected 0..3))",)),
    Case("resume-forged-round", "output", "`--resume` from a checkpoint forged with `round: 7` (the schedule after 3 of 4 updates)",
         lambda d: _interrupted_search(d, _set("state.round", 7)),
         ("ckpt-000003.ckpt: malformed state (state.round: 7 is out of range (expected 0..1))",)),
    Case("resume-forged-lr", "output", "`--resume` from a checkpoint whose optimiser says `lr: 1e6` (the config's wins or it is refused)",
         lambda d: _interrupted_search(d, _set("state.trainer.optimizer.param_groups.0.lr", 1e6)),
         ("state.trainer.optimizer.param_groups[0].lr: 1000000.0 in the checkpoint, but this config gives 0.003",)),
    Case("resume-forged-nan-logits", "output", "`--resume` from a checkpoint whose policy logits are NaN",
         lambda d: _interrupted_search(d, _set("state.mixer.policy.logits.0.0", float("nan"))),
         ("state.mixer.policy.logits[0][0]: nan is not a finite number",)),
    Case("resume-forged-huge-logits", "output", "`--resume` from a checkpoint whose policy logits are ±1e308",
         lambda d: _interrupted_search(d, _set("state.mixer.policy.logits.0", [1e308, -1e308, 1e308, -1e308])),
         ("state.mixer.policy.logits[0]: not the logits the logged updates leave",)),
    Case("resume-forged-i32-tensor", "output", "`--resume` from a checkpoint whose safetensors header relabels a float tensor I32",
         _relabel_i32,
         ("ckpt-000003.ckpt: malformed state (state.trainer.", "a torch.int32 tensor of shape", "expected torch.float32")),
    Case("resume-forged-counts", "output", "`--resume` from a checkpoint whose per-task counts have 3 entries for 4 tasks",
         lambda d: _interrupted_search(d, _set("state.mixer.counts", [0.0, 0.0, 0.0])),
         ("state.mixer.counts: expected a list of 4 numbers, got 3 items",)),
    Case("resume-forged-cursor", "output", "`--resume` from a checkpoint whose example-stream cursor is 10^9",
         lambda d: _interrupted_search(d, _set("state.streams.cursors.0", 10**9)),
         ("state.streams.cursors[0]: 1000000000 is out of range (expected 0..59)",)),
    Case("resume-huge-checkpoint", "output", "`--resume` from a checkpoint larger than its config's model and log can make (refused unread)",
         _huge_checkpoint,
         ("ckpt-000003.ckpt: 134217728 bytes, more than the", "bytes a checkpoint of this run can hold")),
    # ---- inputs changed between a run and its resume
    Case("resume-changed-npz", "output", "`search --resume` after an npz task was regenerated with the same shapes",
         _npz_search_changed,
         ("out/checkpoints: cannot resume, the data changed since the run started: task 'a' train split (a.npz)",
          "--allow-changed-data")),
    Case("compare-resume-flipped-labels", "output", "`compare --resume` after the target's test labels were flipped between seeds",
         _compare_labels_flipped,
         ("out/compare.json: cannot resume, the data changed since the run started: task 't' test split (t_test.npz)",
          "--allow-changed-data")),
]


# ------------------------------------------------------------------ running


@dataclass
class Outcome:
    exit_code: int
    stderr: str
    message: str  # stderr with the case directory removed from paths


def invoke(args: list[str], directory: Path) -> Outcome:
    """Run ``taskmix ARGS`` in-process with ``directory`` as the working directory."""
    from typer.testing import CliRunner

    from taskmix.cli import app

    directory = directory.resolve()
    prev = os.getcwd()
    os.chdir(directory)  # a relative --out, and messages that name paths relative to the case
    try:
        r = CliRunner().invoke(app, args)
    finally:
        os.chdir(prev)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    errors = "\n".join(line for line in r.stderr.splitlines() if not line.startswith("warning: "))  # warnings aside
    return Outcome(r.exit_code, r.stderr, errors.strip().replace(f"{directory}/", ""))


def run_case(case: Case, directory: Path) -> Outcome:
    """Set the case up under ``directory`` and run it through the CLI."""
    return invoke(case.setup(directory.resolve()), directory)


def stale_rows(results: list[tuple[Case, Outcome]], doc: str) -> list[str]:
    """Table rows of ``render(results)`` missing from ``doc`` (numbers of volatile cases may differ)."""
    rendered = render(results).splitlines()
    have = doc.splitlines()
    volatile = {render_row(c, o) for c, o in results if c.volatile}
    mask = lambda line: re.sub(r"\d+", "N", line)  # noqa: E731
    have_masked = {mask(line) for line in have}
    return [
        line for line in rendered
        if line not in have and not (line in volatile and mask(line) in have_masked)
    ]


def render_row(case: Case, o: Outcome) -> str:
    msg = o.message.replace("|", "\\|")
    code = f"`` {msg} ``" if "`" in msg else f"`{msg}`"
    return f"| {case.group} | {case.what} | {code} |"


def render(results: list[tuple[Case, Outcome]]) -> str:
    lines = [
        "# Errors: bad input and what taskmix says",
        "",
        "Every mistake in a config, a data file or a schedule stops the command with **exit code 2**",
        "and **one line** on stderr, `error: <where>: <what was expected>`, naming the file (with the",
        "line for YAML, JSON, JSONL and CSV), the config key, or the array field.  The command checks",
        "the config, the data and the schedule *before* it creates the output directory, so a",
        "refused run leaves nothing behind; a run that fails later (a loss that turns non-finite)",
        "leaves only complete files: the per-meta-step checkpoints and logs are written",
        "atomically (temporary file, fsync, rename), and the last complete checkpoint is kept.",
        "An I/O failure (disk full, permission denied) exits with code 1 and one line.",
        "A run refuses an output directory that another run is using (one lock per directory), and",
        "never loads a pickle from it; see [safety.md](safety.md).",
        "",
        "The table is generated by `python tests/_bad_inputs.py` from the cases that",
        "`tests/test_errors_cli.py` runs through the CLI (which also checks that this file is current).",
        "Paths are shown relative to the directory each case ran in; `out` is its `--out` directory.",
        "",
        "| area | bad input | message (stderr) |",
        "|---|---|---|",
    ]
    lines += [render_row(case, o) for case, o in results]
    lines += [
        "",
        "The message is one line; Python's tracebacks are never shown for bad input.",
        "Library callers get the same messages as exceptions: `taskmix.errors.TaskmixError`",
        "(a `ValueError`) and its subclasses `ConfigError`, `DataError`, `ScheduleError`,",
        "`TrainingError` and `OutputError`.",
        "",
        "See [determinism.md](determinism.md) for what resuming and reruns reproduce.",
        "",
    ]
    return "\n".join(lines)


def generate() -> str:
    results: list[tuple[Case, Outcome]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in CASES:
            if case.text:
                try:
                    import datasets  # noqa: F401
                except ImportError:
                    raise SystemExit("the text cases need the 'text' extra (Hugging Face datasets)") from None
            d = Path(tmp) / case.id
            d.mkdir()
            o = run_case(case, d)
            if o.exit_code != 2:
                raise SystemExit(f"case {case.id}: exit code {o.exit_code}, stderr {o.stderr!r}")
            results.append((case, o))
    return render(results)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TASKMIX_PROGRESS", "off")  # as under pytest (tests/conftest.py): the table holds the error lines
    import torch

    torch.set_num_threads(1)
    text = generate()
    if "--check" in sys.argv:
        sys.exit(0 if DOC.exists() and DOC.read_text() == text else 1)
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)
    print(f"wrote {DOC}")
