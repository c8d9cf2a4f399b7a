"""Restored state is checked, not trusted, and a resume notices data that changed (issue 21).

A checkpoint's checksum proves it is intact, not that it is sane or belongs to
this run: a careful forger recomputes it.  The acceptance property: whatever
field of a checkpoint is replaced by an extreme, negative or NaN value, cut,
lengthened, retyped, reshaped or relabelled (checksum recomputed), ``search
--resume`` ends with the uninterrupted run's schedule, bit for bit (falling back
to the previous checkpoint), or refuses with exit code 2 and one ``error:``
line; it never exits 0 with another schedule.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taskmix.compare import run_compare
from taskmix.config import builtin_config
from taskmix.data import load_tasks
from taskmix.errors import ConfigError
from taskmix.runs import AdaptiveRun, SearchRun, prepare_job, run_search_dir
from taskmix.runs.checkpoint import (
    MAGIC,
    CheckpointError,
    checkpoints,
    encode_checkpoint,
    load_checkpoint,
    load_latest,
)
from taskmix.runs.inputs import input_digests
from taskmix.replay.sampler import check_generator_state
from taskmix.strategies import make_strategy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _bad_inputs import SMALL, invoke  # noqa: E402

ARGS = ["search", "builtin", "--out", "out", *SMALL]
OVERRIDES = [SMALL[i + 1] for i in range(0, len(SMALL), 2)]  # SMALL as config overrides


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, Any]:
    """The uninterrupted run (once per module): its directory with every checkpoint, and its schedule."""
    d = tmp_path_factory.mktemp("reference")
    o = invoke([*ARGS, "--keep-checkpoints", "8"], d)
    assert o.exit_code == 0, o.stderr
    out = d / "out"
    ckpts = checkpoints(out / "checkpoints")
    assert [p.name for p in ckpts] == [f"ckpt-00000{i}.ckpt" for i in range(1, 5)]
    return {"out": out, "schedule": (out / "schedule.json").read_text(), "payload": load_checkpoint(ckpts[2])}


def _interrupted(reference: dict[str, Any], d: Path, newest: dict[str, Any] | bytes, previous: bool) -> None:
    """``d/out``: the run stopped after meta-step 3, its ``ckpt-000003`` replaced (checksum recomputed); with
    ``previous`` the intact ``ckpt-000002`` is there too to fall back to."""
    out = d / "out"
    shutil.copytree(reference["out"], out)
    (out / "schedule.json").unlink()
    ck = out / "checkpoints"
    (ck / "ckpt-000004.ckpt").unlink()
    (ck / "ckpt-000001.ckpt").unlink()
    if not previous:
        (ck / "ckpt-000002.ckpt").unlink()
    (ck / "ckpt-000003.ckpt").write_bytes(newest if isinstance(newest, bytes) else encode_checkpoint(newest))


def _assert_same_or_refused(reference: dict[str, Any], d: Path, what: str) -> str:
    o = invoke([*ARGS, "--resume"], d)
    errors = [line for line in o.stderr.splitlines() if line.startswith("error:")]
    assert "Traceback" not in o.stderr, f"{what}: {o.stderr[-2000:]}"
    if o.exit_code == 0:
        got = (d / "out" / "schedule.json").read_text()
        assert got == reference["schedule"], f"{what}: exit 0 with another schedule; stderr {o.stderr[-1000:]!r}"
        return "same"
    assert o.exit_code == 2 and len(errors) == 1, f"{what}: exit {o.exit_code}, stderr {o.stderr[-2000:]!r}"
    return "refused"


# ------------------------------------------------------------- mutations

EXTREME = [-5, -1, 7, 10**6, 2**64, -(2**64), 1e308, -1e308, math.nan, math.inf, -math.inf, "x", None, True, [], {}]


def _nodes(x: Any, path: tuple = ()) -> list[tuple[tuple, Any]]:
    """Every value of a payload, containers included, with its path."""
    out = [(path, x)] if path else []
    if isinstance(x, dict):
        for k, v in x.items():
            out += _nodes(v, path + (k,))
    elif isinstance(x, (list, tuple)):
        for i, v in enumerate(x):
            out += _nodes(v, path + (i,))
    return out


def _replace(root: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(root, tuple):
        items = list(root)
        items[head] = _replace(items[head], rest, value)
        return tuple(items)
    root[head] = _replace(root[head], rest, value)
    return root


def _mutated(value: Any, how: str, extreme: Any) -> Any:
    """``value`` changed the way ``how`` names (kinds that do not apply to it fall back to an extreme value)."""
    if isinstance(value, torch.Tensor):
        t = value.clone()
        if how == "nan" and t.is_floating_point() and t.numel():
            t.view(-1)[0] = math.nan
        elif how == "inf" and t.is_floating_point() and t.numel():
            t.view(-1)[-1] = math.inf
        elif how == "relabel":  # the same bytes under another dtype (the safetensors header edited)
            t = t.view(torch.int32) if t.element_size() == 4 else t.view(torch.int8)
        elif how == "widen":
            t = t.to(torch.float64)
        elif how == "reshape":
            t = t.reshape(1, -1) if t.dim() != 2 else t.reshape(-1)
        elif how == "cut":
            t = t.reshape(-1)[:-1]  # one element fewer (a scalar becomes an empty tensor)
        else:
            return extreme
        return t
    if isinstance(value, np.ndarray):
        return value.astype(np.int64) if how in ("relabel", "widen") else value[:-1] if how == "cut" else extreme
    if isinstance(value, (list, tuple)):
        if how == "cut":
            return value[:-1]
        if how == "lengthen":
            return value + type(value)(value[-1:] or [0])
        return extreme
    if isinstance(value, dict):
        if how == "cut" and value:
            return {k: v for k, v in list(value.items())[:-1]}
        if how == "lengthen":
            return {**value, "extra": 1}
        return extreme
    return extreme


HOW = ["extreme", "extreme", "extreme", "cut", "lengthen", "nan", "inf", "relabel", "widen", "reshape"]


@given(data=st.data())
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
def test_forged_checkpoints_resume_to_the_same_schedule_or_are_refused(reference, data) -> None:
    """Acceptance 2: a checkpoint mutated anywhere, checksum recomputed: the same schedule, or exit 2 and one line.

    Not drawn: a finite model or optimiser value, or a byte of torch's RNG state, replaced by another plausible
    one; no check can tell those from the real ones without a key (see docs/safety.md).
    """
    payload = reference["payload"]
    nodes = _nodes(payload)
    groups: dict[tuple, list[tuple]] = {}
    for path, _ in nodes:  # group by the path without list indices, so that long lists (RNG words) do not dominate
        groups.setdefault(tuple(k for k in path if not isinstance(k, int)), []).append(path)
    group = data.draw(st.sampled_from(sorted(groups, key=str)), label="field")
    path = data.draw(st.sampled_from(groups[group]), label="path")
    how = data.draw(st.sampled_from(HOW), label="how")
    extreme = data.draw(st.sampled_from(EXTREME), label="value")
    previous = data.draw(st.booleans(), label="previous checkpoint kept")
    forged = copy.deepcopy(payload)
    old = dict(nodes)[path]
    forged = _replace(forged, path, _mutated(old, how, extreme))
    with tempfile.TemporaryDirectory() as tmp:
        _interrupted(reference, Path(tmp), forged, previous)
        _assert_same_or_refused(reference, Path(tmp), f"{'.'.join(map(str, path))} <- {how}/{extreme!r}")


@pytest.mark.parametrize("field, value, why", [
    ("meta_step", -5, "state.meta_step: -5 is out of range"),
    ("round", 7, "state.round: 7 is out of range"),
    ("total_steps", 10**6, "state.total_steps: 1000000, but 3 finished meta-step(s) give 15"),
])
def test_a_forged_newest_checkpoint_falls_back_to_the_previous_naming_why(reference, tmp_path: Path, field, value, why) -> None:
    forged = copy.deepcopy(reference["payload"])
    forged["state"][field] = value
    _interrupted(reference, tmp_path, forged, previous=True)
    o = invoke([*ARGS, "--resume"], tmp_path)
    assert o.exit_code == 0, o.stderr
    assert (tmp_path / "out" / "schedule.json").read_text() == reference["schedule"]
    warning = f"warning: out/checkpoints/ckpt-000003.ckpt: malformed state ({why}"
    assert warning in o.stderr.replace(f"{tmp_path.resolve()}/", "")
    assert "resuming from out/checkpoints/ckpt-000002.ckpt" in o.stderr.replace(f"{tmp_path.resolve()}/", "")


def test_the_unmutated_checkpoint_resumes_to_the_same_schedule(reference, tmp_path: Path) -> None:
    _interrupted(reference, tmp_path, reference["payload"], previous=False)
    assert _assert_same_or_refused(reference, tmp_path, "unmutated") == "same"


# ------------------------------------------------------ checks through the API


@pytest.fixture(scope="module")
def small():
    cfg = builtin_config(OVERRIDES)
    return cfg, load_tasks(cfg)


def _search(cfg, tasks) -> SearchRun:
    job = prepare_job(cfg, tasks, cfg.seed)
    return SearchRun(job.tasks, job.target, job.reward_split, cfg, cfg.seed)


@pytest.mark.parametrize("edit, match", [
    (lambda s: s.update(round=7), r"state\.round: 7 is out of range"),
    (lambda s: s["mixer"]["policy"]["logits"][0].__setitem__(1, math.nan), r"state\.mixer\.policy\.logits\[0\]\[1\]: nan"),
    (lambda s: s["mixer"]["policy"].update(scale=7.0), r"state\.mixer\.policy\.scale: 7\.0 is not what the logged rewards give"),
    (lambda s: s["trainer"]["optimizer"]["param_groups"][0].update(lr=1e6), r"param_groups\[0\]\.lr: 1000000\.0 in the checkpoint"),
    (lambda s: s["trainer"]["optimizer"]["param_groups"][0].update(betas=(0.5, 0.999)), r"param_groups\[0\]\.betas"),
    (lambda s: s["trainer"]["model"].update({"heads.0.bias": s["trainer"]["model"]["heads.0.bias"].double()}),
     r"state\.trainer\.model\.heads\.0\.bias: a torch\.float64 tensor"),
    (lambda s: s["streams"]["cursors"].pop(), r"state\.streams\.cursors: expected a list of 4 integers"),
    (lambda s: s["streams"].update(passes=[0, 0, 0, 0]), r"state\.streams: passes and cursors are not where the logged draws"),
    (lambda s: s["mixer"]["rng"]["state"].update(state=7), r"state\.mixer\.rng\.state\.state: not a position of this run's"),
    (lambda s: s["probe_rng"]["state"].update(state=7), r"state\.probe_rng\.state\.state: not a position of this run's"),
    (lambda s: s["log"][0].update(reward_split_accuracy=-5), r"state\.log\[0\]\.reward_split_accuracy: -5 is not"),
    (lambda s: s["log"][1].update(rewards=[1e6, *s["log"][1]["rewards"][1:]]), r"state\.log\[1\]\.rewards: differs from the mixer's"),
    (lambda s: s.update(torch_rng=s["torch_rng"][:-1]), r"state\.torch_rng: expected torch's RNG state"),
])
def test_search_run_refuses_a_bad_state_and_restores_nothing(small, edit, match) -> None:
    cfg, tasks = small
    full = _search(cfg, tasks)
    full.run()
    part = _search(cfg, tasks)
    part.step_meta()
    part.step_meta()
    state = part.state_dict()
    bad = copy.deepcopy(state)
    edit(bad)
    run = _search(cfg, tasks)
    with pytest.raises(ValueError, match=match):
        run.load_state_dict(bad)
    run.load_state_dict(state)  # nothing was restored from the bad state: the good one resumes bit for bit
    run.run()
    np.testing.assert_array_equal(run.schedule().weights, full.schedule().weights)


@pytest.mark.parametrize("name", ["exp3", "thompson", "gradient_alignment", "doremi", "aioli"])
def test_online_runs_check_their_state(small, name) -> None:
    cfg, tasks = small
    job = prepare_job(cfg, tasks, cfg.seed)

    def fresh() -> AdaptiveRun:
        return AdaptiveRun(job.tasks, job.target, job.reward_split, cfg, job.seed,
                           make_strategy(name, len(job.tasks), job.target, job.seed))

    full = fresh()
    full.run()
    part = fresh()
    part.step_meta()
    state = part.state_dict()
    for key, value, match in (("step", 10**6, r"state\.step: 1000000"), ("evaluations", -1, r"state\.evaluations: -1"),
                              ("draw_rng", {**state["draw_rng"], "has_uint32": 2}, r"state\.draw_rng\.has_uint32")):
        with pytest.raises(ValueError, match=match):
            fresh().load_state_dict({**state, key: value})
    arrays = dict(part.strategy.state_arrays)
    key = next(iter(arrays))
    strategy = copy.deepcopy(state["strategy"])
    strategy[key] = np.full(np.shape(getattr(part.strategy, arrays[key])), math.nan).tolist()
    with pytest.raises(ValueError, match=rf"state\.strategy\.{key}: expected finite numbers"):
        fresh().load_state_dict({**state, "strategy": strategy})
    resumed = fresh()
    resumed.load_state_dict(state)
    resumed.run()
    assert resumed.time_variant_schedule() == full.time_variant_schedule()


def test_generator_states_must_be_positions_of_their_seeds_stream() -> None:
    start = np.random.Generator(np.random.PCG64([5, 0xD4A7]))
    g = np.random.Generator(np.random.PCG64([5, 0xD4A7]))
    g.random(100)
    g.integers(0, 4, size=3)  # leaves a buffered 32-bit half
    g.random(5)
    state = g.bit_generator.state
    assert state["has_uint32"] == 1
    assert check_generator_state(state, "rng", start) == 107
    for field, value, match in ((("state", "state"), 7, "not a position"), (("state", "inc"), 7, "not the increment"),
                                (("uinteger",), 7, "not a value this random stream produced"),
                                (("state", "inc"), 8, "is even"), (("bit_generator",), "MT19937", "expected 'PCG64'")):
        bad = copy.deepcopy(state)
        node = bad
        for k in field[:-1]:
            node = node[k]
        node[field[-1]] = value
        with pytest.raises(ValueError, match=match):
            check_generator_state(bad, "rng", start)


# ---------------------------------------------------------- reading in bounded memory


def test_a_4_gib_checkpoint_is_refused_by_its_size_without_being_read(tmp_path: Path) -> None:
    path = tmp_path / "ckpt-000001.ckpt"
    with open(path, "wb") as f:
        f.write(MAGIC + b"0" * 64 + b"\n")
        f.truncate(4 * 2**30)  # sparse: no disk used
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match=r"4294967296 bytes, more than the 67108864 bytes a checkpoint of this run"):
        load_checkpoint(path, max_bytes=2**26)
    assert time.perf_counter() - t0 < 1.0


def test_the_checksum_is_computed_streaming_before_anything_is_parsed(tmp_path: Path) -> None:
    """A damaged 64 MiB checkpoint (under the fixed cap) is refused with the memory of a few read buffers."""
    good = tmp_path / "ckpt-000001.ckpt"
    good.write_bytes(encode_checkpoint({"state": {"x": 1}}))
    damaged = tmp_path / "ckpt-000002.ckpt"
    with open(damaged, "wb") as f:
        f.write(MAGIC + b"0" * 64 + b"\n")
        f.truncate(64 * 2**20)
    tracemalloc.start()
    try:
        skipped: list[str] = []
        payload = load_latest(tmp_path, skipped)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert payload is not None and payload["path"] == str(good)
    assert skipped == [f"{damaged}: damaged checkpoint (sha256 mismatch)"]
    assert peak < 8 * 2**20, f"{peak} bytes held to check a 64 MiB file"


# ---------------------------------------------------------- inputs changed since the run started


def _flip_label(task, split: str = "train", row: int = 0):
    s = getattr(task, split)
    y = s.y.copy()
    y[row] = 1 - y[row]
    return dataclasses.replace(task, **{split: dataclasses.replace(s, y=y)})


def test_input_digests_change_with_any_value_and_only_then(small) -> None:
    _, tasks = small
    a, b = input_digests(tasks), input_digests(list(tasks))
    assert a == b and a["format"] == "taskmix.inputs/1"
    flipped = list(tasks)
    flipped[1] = _flip_label(tasks[1])
    c = input_digests(flipped)["tasks"]
    assert [(n, r) for n in c for r in c[n] if c[n][r] != a["tasks"][n][r]] == [(tasks[1].name, "train")]
    x = tasks[2].train.x.copy()
    x[3, 1] = np.nextafter(x[3, 1], np.float32(np.inf))  # one ulp
    moved = list(tasks)
    moved[2] = dataclasses.replace(tasks[2], train=dataclasses.replace(tasks[2].train, x=x))
    assert input_digests(moved)["tasks"][tasks[2].name]["train"] != a["tasks"][tasks[2].name]["train"]


def test_search_resume_refuses_changed_data_unless_allowed(small, tmp_path: Path, capsys) -> None:
    cfg, tasks = small
    out = tmp_path / "s"
    reference = run_search_dir(cfg, tasks, out).schedule
    assert load_checkpoint(checkpoints(out / "checkpoints")[-1])["inputs"] == input_digests(tasks)
    changed = list(tasks)
    changed[1] = _flip_label(tasks[1])  # same shapes, other labels
    with pytest.raises(ConfigError, match=rf"the data changed since the run started: task '{tasks[1].name}' train split"):
        run_search_dir(cfg, changed, out, resume=True)
    assert run_search_dir(cfg, tasks, out, resume=True).schedule == reference  # the original data resumes
    capsys.readouterr()
    run_search_dir(cfg, changed, out, resume=True, allow_changed_data=True)
    assert "resuming on changed data (--allow-changed-data)" in capsys.readouterr().err


def test_compare_resume_refuses_labels_changed_between_seeds_unless_allowed(small, tmp_path: Path, capsys) -> None:
    cfg, tasks = small
    cfg = builtin_config([*OVERRIDES, "compare.methods=[uniform]", "compare.recommend=false"])
    out = tmp_path / "c"
    run_compare(cfg, tasks, out, seeds=1)
    assert json.loads((out / "compare.json").read_text())["inputs"] == input_digests(tasks)
    target = [t.name for t in tasks].index(cfg.target)
    flipped = list(tasks)
    flipped[target] = _flip_label(tasks[target], "test", row=5)
    with pytest.raises(ConfigError, match=rf"compare\.json: cannot resume, the data changed .*task '{cfg.target}' test split"):
        run_compare(cfg, flipped, out, seeds=2, resume=True)
    # told to, a resume goes on over a change (here one that leaves the rows valid: an auxiliary task's features,
    # re-exported one ulp apart); rows that disagree with the data are still refused by their own checks
    aux = 1 if target != 1 else 2
    x = tasks[aux].train.x.copy()
    x[0, 0] = np.nextafter(x[0, 0], np.float32(np.inf))
    moved = list(tasks)
    moved[aux] = dataclasses.replace(tasks[aux], train=dataclasses.replace(tasks[aux].train, x=x))
    with pytest.raises(ConfigError, match=rf"task '{tasks[aux].name}' train split"):
        run_compare(cfg, moved, out, seeds=2, resume=True)
    capsys.readouterr()
    res = run_compare(cfg, moved, out, seeds=2, resume=True, allow_changed_data=True)
    assert "resuming on changed data (--allow-changed-data)" in capsys.readouterr().err
    assert [r["seed"] for r in res["results"]["rows"]] == [cfg.seed, cfg.seed + 1]


def test_compare_resume_without_recorded_digests_warns(small, tmp_path: Path, capsys) -> None:
    """A comparison written before the digests were recorded: a warning, nothing checked."""
    _, tasks = small
    cfg = builtin_config([*OVERRIDES, "compare.methods=[uniform]"])
    out = tmp_path / "c"
    run_compare(cfg, tasks, out, seeds=1)
    meta = json.loads((out / "compare.json").read_text())
    del meta["inputs"]
    (out / "compare.json").write_text(json.dumps(meta))
    capsys.readouterr()
    run_compare(cfg, tasks, out, seeds=1, resume=True)
    assert "no input digests recorded (written by an older taskmix)" in capsys.readouterr().err


def test_allow_changed_data_resumes_through_the_cli_with_a_warning(tmp_path: Path) -> None:
    from _bad_inputs import _compare_labels_flipped, _npz_search_changed

    d = tmp_path / "search"
    d.mkdir()
    o = invoke([*_npz_search_changed(d), "--allow-changed-data"], d)
    assert o.exit_code == 0, o.stderr
    assert "warning: out/checkpoints: resuming on changed data (--allow-changed-data): task 'a' train split (a.npz)" in o.stderr
    d = tmp_path / "compare"
    d.mkdir()
    args = _compare_labels_flipped(d)
    o = invoke(args, d)
    assert o.exit_code == 2 and "task 't' test split (t_test.npz)" in o.message
    o = invoke([*args, "--allow-changed-data"], d)  # the flag passes the digest check; the rows' own checks still apply
    assert "resuming on changed data (--allow-changed-data): task 't' test split (t_test.npz)" in o.stderr
