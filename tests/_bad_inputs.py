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


def _write(d: Path, name: str, text: str) -> str:
    (d / name).write_text(text, encoding="utf-8")
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


# ------------------------------------------------------------------ cases

CASES: list[Case] = [
    # ---- config
    Case("config-unknown-key", "config", "unknown top-level key",
         lambda d: _search(_npz_config(d, extra="shuffle: true")),
         ("c.yaml: shuffle: unknown key", "expected one of", "'target'")),
    Case("config-unknown-nested-key", "config", "unknown key in a section (`search.epsilonn`)",
         lambda d: _search(_npz_config(d, extra="search: {meta_steps: 4, epsilonn: 0.1}")),
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
    # ---- training
    Case("search-non-finite-loss", "training",
         "one feature row at the float32 maximum: the loss overflows mid-search (step and task named)",
         lambda d: _search(_npz_config(d, aux_train=_spike(d / "spike.npz"))),
         ("search meta-step ", "training step ", "(non-finite) on task(s) ['a']",
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
    Case("resume-changed-seed", "output", "`--resume` with another seed",
         lambda d: _prepopulated(d, *_builtin_search(), "--seed", "7", "--resume"),
         ("cannot resume, the config differs from the checkpointed run at seed;",)),
    Case("demo-into-a-foreign-dir", "output", "`demo --out` names a non-empty directory that holds no earlier demo",
         lambda d: ((d / OUT).mkdir(), _write(d, f"{OUT}/notes.txt", "mine"), ["demo", "--out", OUT, "--seeds", "1", *SMALL])[2],
         ("out: exists, is not empty and holds no earlier demo (demo.json); choose another --out",)),
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
    return Outcome(r.exit_code, r.stderr, r.stderr.strip().replace(f"{directory}/", ""))


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
    import torch

    torch.set_num_threads(1)
    text = generate()
    if "--check" in sys.argv:
        sys.exit(0 if DOC.exists() and DOC.read_text() == text else 1)
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)
    print(f"wrote {DOC}")
