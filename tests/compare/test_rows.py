"""Results rows read back by ``compare --resume``: one validator (``taskmix.compare.rows.check_row``) that never
trusts a row because its checksum matches; strict JSON out; no scipy warnings from degenerate seeds.

The property test edits a finished comparison's ``rows.jsonl`` the way a careful forger would (every edited row
re-signed with ``row_digest``) and resumes it: the resume either ends with the uninterrupted run's summary or
refuses with one ``error:`` line (exit 2); never exit 0 with another summary, never a traceback.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taskmix.compare.predictions import decode_labels, encode_labels, encode_losses
from taskmix.compare.rows import ROW_DIGEST, RowContext, check_row, held_out_fraction, read_rows, row_digest
from taskmix.compare.runner import strict_json
from taskmix.compare.stats import combined_ci, nearly_constant, paired_t, t_ci
from taskmix.errors import ConfigError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _bad_inputs import OUT, SMALL, invoke  # noqa: E402

METHODS = "uniform,single_task,learned_time_invariant"  # uniform - single_task: two differences equal up to rounding
ARGS = ["compare", "builtin", "--seeds", "2", "--methods", METHODS, "--out", OUT, *SMALL,
        "-o", "compare.confirm_seeds=0"]  # the rows file holds the comparison's cells only
COST = {"seconds", "total_seconds", "cost_ratio", "train_steps", "total_train_steps", "step_ratio", "evaluations",
        "total_evaluations", "eval_ratio"}
"""Summary fields computed from what a row reports of its cost: checked for type and range, not verifiable."""


def _strict(text: str) -> Any:
    def refuse(name: str) -> None:
        raise AssertionError(f"not strict JSON: {name}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A finished 2-seed comparison of three methods (the warnings it raised recorded)."""
    d = tmp_path_factory.mktemp("finished")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        o = invoke(ARGS, d)
    assert o.exit_code == 0, o.stderr
    results = _strict((d / OUT / "results.json").read_text())
    rows = [json.loads(line) for line in (d / OUT / "rows.jsonl").read_text().splitlines()]
    return {"dir": d, "results": results, "rows": rows, "stderr": o.stderr,
            "warnings": [f"{w.category.__name__}: {w.message}" for w in caught]}


def _summary(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["method"]: {k: v for k, v in s.items() if k not in COST} for s in results["summary"]}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=0, abs_tol=1e-6)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


# ------------------------------------------------------------------ the degenerate seeds


def test_a_two_seed_compare_prints_no_warning(finished: dict[str, Any]) -> None:
    assert not finished["warnings"], finished["warnings"]
    assert "Warning" not in finished["stderr"], finished["stderr"]
    # the case that used to warn: two differences equal up to rounding give the degenerate interval, p = 0
    uniform = _summary(finished["results"])["uniform"]
    assert uniform["diff_ci_low"] == uniform["diff_ci_high"] == uniform["diff_mean"] and uniform["diff_p"] == 0.0


def test_paired_t_of_differences_equal_up_to_rounding_does_not_warn() -> None:
    d = [0.7 - 0.65, 0.6833333333333333 - 0.6333333333333333]  # 0.04999999999999993, 0.05000000000000004
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = paired_t(d)
        assert combined_ci(d, 0.0, 60) == (r["mean"], r["mean"])
        assert paired_t([1e-300, -1e-300])["p"] is not None and paired_t([0.0, 0.0])["p"] == 1.0
    assert nearly_constant(d) and r["p"] == 0.0 and r["ci_low"] == r["ci_high"] == r["mean"]
    assert not nearly_constant([0.05, 0.0500001]) and t_ci([0.05, 0.0500001])[0] < 0.05


def test_paired_t_matches_scipy_on_ordinary_differences() -> None:
    from scipy.stats import ttest_1samp

    rng = np.random.default_rng(0)
    for n in (2, 3, 5, 20):
        d = rng.normal(0.01, 0.02, n)
        assert paired_t(d)["p"] == pytest.approx(float(ttest_1samp(d, 0.0).pvalue), rel=1e-9)


# ------------------------------------------------------------------ strict JSON


def test_results_and_rows_are_strict_json(finished: dict[str, Any]) -> None:
    out = finished["dir"] / OUT
    for path in [out / "results.json", out / "compare.json", *sorted((out / "schedules").glob("*.json"))]:
        _strict(path.read_text())
    for path in [out / "rows.jsonl", *sorted((out / "logs").glob("*.jsonl"))]:
        for line in path.read_text().splitlines():
            _strict(line)
    assert strict_json({"ratio": math.inf, "p": [math.nan, 0.5]}) == '{"ratio": null, "p": [null, 0.5]}'


# ------------------------------------------------------------------ the validator


def _context() -> RowContext:
    return RowContext(("target", "helpful", "harmful", "irrelevant"), "accuracy", np.array([0, 1, 1, 0]), 2,
                      reward_labels=lambda seed, fraction: np.array([0, 1]) if fraction is None else np.array([0, 1, 1]))


HELD_OUT = {"reward_split": 0.5, "reward_predictions": encode_labels(np.array([0, 0]))}
"""A replayed row's held-out evidence, consistent with the context's reward split ([0, 1])."""


def _row(**kw: Any) -> dict[str, Any]:
    row = {"method": "uniform", "kind": "baseline", "seed": 0, "test": 0.75, "seconds": 0.1, "train_steps": 40,
           "evaluations": 1, "schedule": None, "log": [], "extra": {}, "predictions": encode_labels(np.array([0, 1, 1, 1]))}
    row.update(kw)
    row["extra"] = {**HELD_OUT, **row["extra"]} if isinstance(row["extra"], dict) else row["extra"]
    return {**row, ROW_DIGEST: row_digest(row)}


@pytest.mark.parametrize("edit, message", [
    ({"test": 1e308}, "'test' is 1e+308, expected a number in [0, 1] (accuracy)"),
    ({"test": 0.5}, "'test' is 0.5 but the row's predictions score 0.75"),
    ({"extra": {"reward_split": 1.0}}, "'extra.reward_split' is 1.0 but the row's own reward-split predictions score 0.5"),
    ({"extra": {"reward_predictions": encode_labels(np.array([0, 0, 0]))}},
     "'extra.reward_predictions' holds 3 labels but seed 0's reward split has 2 rows"),
    ({"extra": {"reward_losses": encode_losses(np.array([0.1, 0.2, 0.3]))}},
     "'extra.reward_losses': holds 3 losses, expected 2 (one per held-out row)"),
    ({"extra": {"reward_losses": "u8:AAA="}}, "'extra.reward_losses': expected a string starting with 'f32:'"),
    ({"test": True}, "'test' is true, expected a number in [0, 1]"),
    ({"seed": 2**32}, "'seed' is 4294967296, expected an integer in [0, 2^32)"),
    ({"seed": 1.0}, "'seed' is 1.0, expected an integer"),
    ({"seconds": math.inf}, "'seconds' is Infinity, expected a finite non-negative number of at most 1e9"),
    ({"seconds": -0.5}, "'seconds' is -0.5"),
    ({"train_steps": 2**63}, "'train_steps' is 9223372036854775808, expected an integer in [0, 2^63)"),
    ({"kind": "learned"}, "'kind' is \"learned\", expected 'baseline'"),
    ({"log": [{"round": 0}]}, "'log' holds 1 entries, expected none for a baseline method"),
    ({"method": "learned_time_invariant", "kind": "learned", "log": [{"probs_after": [0.5, 0.5]}]},
     "'log[0].probs_after' is [0.5, 0.5], expected 4 finite numbers (one per task)"),
    ({"method": "learned_time_invariant", "kind": "learned", "log": [{"probs_after": [0.5, 0.5, 0.5, 0.5]}]},
     "'log[0].probs_after' sums to 2, expected 1"),
    ({"method": "learned_time_invariant", "kind": "learned", "log": [{"step": 2**40}]}, "'log[0].step' is 1099511627776"),
    ({"method": "learned_time_invariant", "kind": "learned", "log": [{"rewards": [0, 0, 0, None]}]},
     "'log[0].rewards[3]' is null, expected a finite number"),
    ({"extra": {"x": [[[math.nan]]]}}, "'extra.x[0][0][0]' is NaN, expected a finite number"),
    ({"extra": {"x": 10**30}}, "'extra.x' is 1000000000000000000000000000000, expected an integer below 2^63"),
    ({"extra": {"task_effects": {"mnli": {}}}}, "'extra.task_effects.mnli': not a task of this run"),
    ({"schedule": {"format": "taskmix.schedule/1", "tasks": ["target"], "steps_per_meta_step": 1, "weights": [[1.0]]}},
     "'schedule' names the tasks ['target'], expected this run's tasks"),
    ({"schedule": {"format": "taskmix.schedule/1", "tasks": ["target", "helpful", "harmful", "irrelevant"],
                   "steps_per_meta_step": 1, "weights": [[1.0, 0, 0, 0]], "provenance": {"meta_steps": 10**12}}},
     "'schedule.provenance.meta_steps' is 1000000000000, expected an integer in [1, 10^6]"),
    ({"predictions": encode_labels(np.array([0, 1, 2, 1]))}, "'predictions' holds label 2, expected labels below 2"),
    ({"predictions": encode_labels(np.array([0, 1]))}, "'predictions' holds 2 labels but the target's report split has 4"),
    ({"extra": [1]}, "'extra' is [1], expected an object"),
    ({"extra": {"reward_fraction": 1.0}}, "'extra.reward_fraction' is 1.0, expected a number in (0, 1)"),
    ({"extra": {"reward_fraction": 0}}, "'extra.reward_fraction' is 0, expected a number in (0, 1)"),
    ({"extra": {"reward_fraction": "0.3"}}, "'extra.reward_fraction' is \"0.3\", expected a number in (0, 1)"),
    ({"extra": {"reward_fraction": 0.33}}, "'extra.reward_predictions' holds 2 labels but seed 0's reward split has 3"),
    ({"junk": 1}, "unknown field 'junk'"),
])
def test_check_row_refuses_with_one_line_naming_the_field(edit: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as e:
        check_row(_row(**edit), "rows.jsonl:3", _context())
    text = str(e.value)
    assert text.startswith("rows.jsonl:3: ") and message in text and "\n" not in text, text


def test_a_confirmation_row_is_checked_against_its_own_held_out_share(tmp_path: Path) -> None:
    """A row that records its held-out share (a confirmation's run) is checked against that carve's labels, and is
    another key than the comparison's row of the same (method, seed)."""
    mine = _row(extra={"reward_fraction": 0.33, "reward_split": 2 / 3,
                       "reward_predictions": encode_labels(np.array([0, 1, 0]))})
    assert held_out_fraction(check_row(mine, "x", _context())) == 0.33 and held_out_fraction(_row()) is None
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(_row()) + "\n" + json.dumps(mine) + "\n")
    assert [held_out_fraction(r) for r in read_rows(path, _context())] == [None, 0.33]


def test_check_row_refuses_a_missing_field_and_a_deep_nesting() -> None:
    row = _row()
    del row["log"]
    with pytest.raises(ConfigError, match="no 'log'"):
        check_row({**row, ROW_DIGEST: row_digest(row)}, "x", _context())
    deep: Any = 0
    for _ in range(40):
        deep = [deep]
    with pytest.raises(ConfigError, match="nested deeper than 32 levels"):
        check_row(_row(extra={"x": deep}), "x", _context())


def test_rows_of_every_kind_of_method_pass_the_validator() -> None:
    """What the writer produces for baselines, searches, the oracle and every online strategy is accepted."""
    from taskmix.compare.methods import run_method
    from taskmix.config import builtin_config
    from taskmix.data import load_run_tasks
    from taskmix.schedule import jsonable

    ov = [o for o in SMALL if o != "-o"] + ["compare.oracle_step=0.5"]
    cfg = builtin_config(ov)
    tasks = load_run_tasks(cfg)
    ctx = RowContext.of(tasks, cfg.target)
    for method in ("single_task", "temperature_2", "learned_time_variant", "learned_checked", "paper", "oracle", "exp3",
                   "thompson", "gradient_alignment", "exp3-replay"):
        row = jsonable(run_method(cfg, tasks, method, 3))
        checked = check_row({**row, ROW_DIGEST: row_digest(row)}, method, ctx)
        assert len(decode_labels(checked["predictions"])) == len(ctx.labels)


# ------------------------------------------------------------------ forged rows, resumed


HOSTILE = [1e308, -1e308, -5, -1, 0, 1, 0.5, 1.5, 2**31, 2**32, 2**63, 10**400, -(10**400), math.nan, math.inf,
           -math.inf, 5e-324, "x", "", "NaN", None, True, False, [], {}, [1, 2, 3], {"a": 1}, [math.nan], "u8:AAEC"]


def _parent(row: dict[str, Any], path: list[Any]) -> Any:
    x: Any = row
    for k in path[:-1]:
        x = x[k]
    return x


@st.composite
def forged(draw: st.DrawFn, rows: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """``rows`` with one edit, every edited row re-signed: ``(what was done, rows)``."""
    rows = copy.deepcopy(rows)
    i = draw(st.integers(0, len(rows) - 1))
    op = draw(st.sampled_from(["field"] * 6 + ["prediction"] * 2 + ["drop", "duplicate", "swap"]))
    if op == "drop":
        return f"drop row {i}", rows[:i] + rows[i + 1:]
    if op == "duplicate":
        return f"duplicate row {i}", rows + [rows[i]]
    if op == "swap":
        j = draw(st.integers(0, len(rows) - 1))
        rows[i], rows[j] = rows[j], rows[i]
        return f"swap rows {i} and {j}", rows
    row = {k: v for k, v in rows[i].items() if k != ROW_DIGEST}
    if op == "prediction":
        pred = decode_labels(row["predictions"]).copy()
        j = draw(st.integers(0, len(pred) - 1))
        pred[j] = draw(st.integers(0, 2) | st.integers(0, 255))  # mostly within the 2 labels, or just above
        row["predictions"] = encode_labels(pred)
        what = f"row {i}: predictions[{j}] = {pred[j]}"
    else:
        path: list[Any] = [draw(st.sampled_from(sorted(row)))]
        x = row[path[0]]
        while isinstance(x, (list, dict)) and x and draw(st.integers(0, 3)):  # go deeper, 3 times in 4
            k = draw(st.sampled_from(sorted(x) if isinstance(x, dict) else list(range(len(x)))))
            path.append(k)
            x = x[k]
        parent = _parent(row, path)
        edit = draw(st.sampled_from(["replace", "replace", "nudge", "delete", "grow"]))
        if edit == "nudge" and isinstance(x, (int, float)) and not isinstance(x, bool):
            parent[path[-1]] = x + draw(st.sampled_from([1e-12, -1e-12, 1, -1, 1e-3, 2**32])) if draw(st.booleans()) else -x
        elif edit == "delete":
            del parent[path[-1]]
        elif edit == "grow" and isinstance(x, (list, dict)):
            if isinstance(x, list):
                x.append(copy.deepcopy(x[-1]) if x else 0)
            else:
                x["junk"] = 1
        else:
            edit = "replace"
            parent[path[-1]] = draw(st.sampled_from(HOSTILE) | st.floats(allow_nan=True, allow_infinity=True)
                                    | st.integers() | st.text(max_size=5))
        what = f"row {i}: {edit} {'.'.join(map(str, path))}"
    rows[i] = {**row, ROW_DIGEST: row_digest(row)}
    return what, rows


@given(data=st.data())
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_forged_rows_resume_to_the_same_summary_or_are_refused(finished: dict[str, Any], data: st.DataObject) -> None:
    what, rows = data.draw(forged(finished["rows"]))
    d = Path(tempfile.mkdtemp(prefix="forged-"))
    try:
        shutil.copytree(finished["dir"] / OUT, d / OUT)
        (d / OUT / "results.json").unlink()
        (d / OUT / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        o = invoke([*ARGS, "--resume"], d)  # a traceback propagates and fails the test
        if o.exit_code == 0:
            got = _strict((d / OUT / "results.json").read_text())
            assert _same(_summary(got), _summary(finished["results"])), f"{what}: exit 0 with another summary"
            assert [r["test"] for r in got["rows"]] == pytest.approx([r["test"] for r in finished["results"]["rows"]], abs=1e-9)
        else:
            lines = [line for line in o.stderr.splitlines() if not line.startswith("warning: ")]
            assert o.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), f"{what}: {o.exit_code} {o.stderr}"
            assert "rows.jsonl:" in lines[0], f"{what}: {lines[0]}"
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_read_rows_without_a_context_checks_what_it_can(tmp_path: Path, finished: dict[str, Any]) -> None:
    path = tmp_path / "rows.jsonl"
    shutil.copy(finished["dir"] / OUT / "rows.jsonl", path)
    assert len(read_rows(path)) == len(finished["rows"]) == 8  # 3 methods and the recommendation x 2 seeds
    row = {k: v for k, v in finished["rows"][0].items() if k != ROW_DIGEST}
    row["seconds"] = 1e300
    path.write_text(json.dumps({**row, ROW_DIGEST: row_digest(row)}) + "\n")
    with pytest.raises(ConfigError, match=r"rows.jsonl:1: 'seconds' is 1e\+300"):
        read_rows(path)


def test_a_replayed_row_without_its_held_out_evidence_is_refused() -> None:
    row = _row()
    for key in ("reward_split", "reward_predictions"):
        bare = {k: v for k, v in row.items() if k != ROW_DIGEST}
        bare["extra"] = {k: v for k, v in bare["extra"].items() if k != key}
        with pytest.raises(ConfigError, match=f"no 'extra.{key}'; a row of a baseline method keeps its held-out evidence"):
            check_row({**bare, ROW_DIGEST: row_digest(bare)}, "rows.jsonl:1", _context())
