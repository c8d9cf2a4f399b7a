"""Every bad input of ``tests/_bad_inputs.py`` through the CLI: exit code 2, one line naming
the file / line / field, and nothing new or half-written under ``--out``."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
import torch

from taskmix.runs.checkpoint import load_checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bad_inputs import CASES, DOC, OUT, Case, Outcome, invoke, stale_rows  # noqa: E402

_OUTCOMES: dict[str, Outcome] = {}  # messages seen by the tests, for the docs check


def _snapshot(out: Path) -> dict[str, str] | None:
    """Every file under ``out`` with its content hash (``None``: ``out`` does not exist)."""
    if not out.exists():
        return None
    if out.is_file():
        return {".": hashlib.sha256(out.read_bytes()).hexdigest()}
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.rglob("*")) if p.is_file()}


def _needs(case: Case) -> None:
    if case.text:
        pytest.importorskip("datasets", reason="text cases need the 'text' extra")
    if case.cpu_only and torch.cuda.is_available():
        pytest.skip("refused only where torch sees no CUDA device")


def _check_complete_run_files(out: Path, message: str) -> None:
    """After a failure mid-search: complete checkpoints and logs, no schedule, no temporary file."""
    assert not (out / "schedule.json").exists()
    leftovers = [p.name for p in out.rglob("*.tmp")]
    assert not leftovers, f"temporary files left behind: {leftovers}"
    ckpts = sorted((out / "checkpoints").glob("ckpt-*.ckpt"))
    assert ckpts, "the last complete checkpoint must be kept"
    last = ckpts[-1]
    assert f"{OUT}/checkpoints/{last.name} is kept" in message
    payload = load_checkpoint(last)
    entries = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    # the log is complete: one entry per finished meta-step, as many as the last checkpoint holds
    assert len(entries) == len(payload["state"]["log"]) == int(last.stem.split("-")[1])


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_through_cli(case: Case, tmp_path: Path) -> None:
    _needs(case)
    args = case.setup(tmp_path.resolve())
    out = tmp_path / OUT
    before = _snapshot(out)

    outcome = invoke(args, tmp_path)
    _OUTCOMES[case.id] = outcome

    assert outcome.exit_code == 2, f"exit code {outcome.exit_code}; stderr: {outcome.stderr!r}"
    # warnings about accepted input (features of extreme magnitude) may come first; then exactly one error line
    lines = [line for line in outcome.stderr.splitlines() if not line.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), f"expected one 'error: ...' line, got {outcome.stderr!r}"
    assert outcome.stderr.splitlines()[-1] == lines[0]
    assert "Traceback" not in outcome.stderr
    assert len(lines[0]) <= 1000, f"message of {len(lines[0])} characters: user input echoed whole?"
    assert not (tmp_path / "PWNED").exists(), "a planted pickle was unpickled"
    for part in case.expect:
        assert part in outcome.message, f"{part!r} not in {outcome.message!r}"
    if case.partial_run:
        _check_complete_run_files(out, outcome.message)
    else:
        assert _snapshot(out) == before, f"{out} changed: {before} -> {_snapshot(out)}"


def test_docs_errors_md_is_current(tmp_path: Path) -> None:
    """docs/errors.md lists exactly the messages the CLI prints (regenerate: python tests/_bad_inputs.py)."""
    pytest.importorskip("datasets", reason="the table includes the text cases")
    results = []
    for case in CASES:
        if case.cpu_only and case.id not in _OUTCOMES and torch.cuda.is_available():
            continue  # its message is the CPU machine's; the row stays as generated there
        if case.id not in _OUTCOMES:  # run alone or in another order: produce the message here
            d = tmp_path / case.id
            d.mkdir()
            _OUTCOMES[case.id] = invoke(case.setup(d.resolve()), d)
        results.append((case, _OUTCOMES[case.id]))
    actual = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    stale = stale_rows(results, actual)
    assert not stale, "docs/errors.md is out of date; run `python tests/_bad_inputs.py`. Missing lines:\n" + "\n".join(stale)
    # nothing else either: one table row per case, no rows for removed cases
    rows = [line for line in actual.splitlines() if line.startswith("| ") and not line.startswith("| area ")]
    assert len(rows) == len(CASES), f"docs/errors.md has {len(rows)} table rows for {len(CASES)} cases"
