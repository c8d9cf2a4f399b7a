"""Fuzzing the loaders: whatever the input, they return a valid object or raise their documented error.

``Schedule.from_json`` raises only :class:`ScheduleError`; ``load_config`` and
``config_from_dict`` raise only :class:`ConfigError` (both are
:class:`TaskmixError`), with a one-line message.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from taskmix.config import Config, config_from_dict, load_config
from taskmix.errors import ConfigError, ScheduleError
from taskmix.schedule import FORMAT, Schedule

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ------------------------------------------------------------------ JSON values

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)
weight = (
    st.floats(min_value=-2, max_value=2)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(min_value=-3, max_value=10**400)
    | st.sampled_from([0.25, 0.5, 1.0, 0, 1e308])
    | json_scalars
)
schedule_like = st.fixed_dictionaries(
    {
        "format": st.sampled_from([FORMAT, FORMAT, "taskmix.schedule/2"]) | json_scalars,
        "tasks": st.lists(st.text(max_size=4) | json_scalars, max_size=4) | json_values,
        "steps_per_meta_step": st.integers(min_value=-2, max_value=10**20) | json_scalars,
        "weights": st.lists(st.lists(weight, max_size=5), max_size=3) | json_values,
    },
    optional={"provenance": json_values, "extra": json_values},
)


def _one_line(e: Exception) -> None:
    msg = str(e)
    assert msg and "\n" not in msg, repr(msg)


def _schedule_or_error(text: str | bytes) -> None:
    try:
        s = Schedule.from_json(text, "fuzz.json")
    except ScheduleError as e:
        _one_line(e)
        assert str(e).startswith("fuzz.json")
        return
    # accepted: a valid schedule that survives a round trip
    assert s.weights.ndim == 2 and s.weights.shape[1] == len(s.tasks)
    assert np.all(s.weights >= 0) and np.allclose(s.weights.sum(axis=1), 1.0)
    assert Schedule.from_json(s.to_json()) == s


@FUZZ
@given(st.binary(max_size=200))
@example(b"\xff\xfe\x00")
@example(b'{"format": "taskmix.schedule/1", "tasks": ["a"], "steps_per_meta_step": 1, "weights": [[' + b"1" * 5000 + b"]]}")
def test_schedule_from_random_bytes(data: bytes) -> None:
    _schedule_or_error(data)


@FUZZ
@given(st.text(max_size=200))
@example("[" * 100_000)
def test_schedule_from_random_text(text: str) -> None:
    _schedule_or_error(text)


@FUZZ
@given(json_values | schedule_like)
@example({"format": FORMAT, "tasks": ["a", "b"], "steps_per_meta_step": 1, "weights": [[1e308, 1e308]]})
@example({"format": FORMAT, "tasks": ["a", "b"], "steps_per_meta_step": 1, "weights": [[10**400, 0]]})
@example({"format": FORMAT, "tasks": [["a"], "a"], "steps_per_meta_step": 1, "weights": [[1, 0]]})
def test_schedule_from_random_json_structures(doc) -> None:
    _schedule_or_error(json.dumps(doc))


@FUZZ
@given(
    st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=5, unique=True).flatmap(
        lambda tasks: st.tuples(
            st.just(tasks),
            st.lists(st.lists(st.floats(min_value=0, max_value=1e6), min_size=len(tasks), max_size=len(tasks)), min_size=1, max_size=4),
            st.integers(min_value=1, max_value=10**6),
        )
    )
)
def test_valid_schedules_round_trip(args) -> None:
    tasks, rows, spm = args
    rows = [r for r in rows if math.fsum(r) > 0] or [[1.0] * len(tasks)]
    s = Schedule.from_weights(tasks, rows, spm)
    assert Schedule.from_json(s.to_json()) == s


# ------------------------------------------------------------------ configs

_SECTIONS = {name: list(f.annotation.model_fields) for name, f in Config.model_fields.items()
             if isinstance(f.annotation, type) and hasattr(f.annotation, "model_fields")}
config_keys = st.sampled_from(["target", "tasks", "synthetic", "seed", "data_dir", *_SECTIONS]) | st.text(max_size=6)
yaml_scalars = json_scalars | st.dates().map(str) | st.sampled_from(["no", "yes", "~", "1e400", "2001-13-01", ".inf"])


@st.composite
def config_like(draw):
    """Mostly well-formed sections with random values, sometimes unknown keys or odd shapes."""
    raw = {}
    for key in draw(st.lists(config_keys, max_size=5, unique=True)):
        if key in _SECTIONS and draw(st.booleans()):
            fields = st.sampled_from(_SECTIONS[key]) | st.text(max_size=5)
            raw[key] = draw(st.dictionaries(fields, yaml_scalars | json_values, max_size=4))
        elif key == "tasks":
            spec = st.dictionaries(st.sampled_from(["train", "test", "labels", "format", "max_train", "junk"]),
                                   yaml_scalars | json_values, max_size=3)
            raw[key] = draw(st.dictionaries(st.text(max_size=4), spec | json_values, max_size=3))
        else:
            raw[key] = draw(yaml_scalars | json_values)
    return raw


def _config_or_error(fn, *args) -> None:
    try:
        cfg = fn(*args)
    except ConfigError as e:
        _one_line(e)
        return
    assert isinstance(cfg, Config) and cfg.target in cfg.task_names()


@FUZZ
@given(config_like())
@example({"synthetic": {}, "search": {"epsilon": 0.5}})
@example({"synthetic": {}, 1: 2})
@example({"synthetic": {"dim": 10**400}})
@example({"synthetic": {}, "tasks": {"a": {"train": "a.npz"}}})
def test_config_from_random_dicts(raw) -> None:
    _config_or_error(config_from_dict, raw, "fuzz")


@FUZZ
@given(st.dictionaries(json_scalars.filter(lambda k: k is not None) | st.text(max_size=4), json_values, max_size=4))
def test_config_from_dicts_with_any_keys(raw) -> None:
    _config_or_error(config_from_dict, raw, "fuzz")


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(st.text(max_size=300))
@example("a: 2001-13-01")
@example("a: !!float abc")
@example("&a [*a]")
@example("search: &s {x: *s}")
@example("synthetic: {}\ntrain: {steps: 1e400}")
@example("\ufeffsynthetic: {}")
def test_load_config_on_random_text(fuzz_dir: Path, text: str) -> None:
    p = fuzz_dir / "c.yaml"
    p.write_text(text, encoding="utf-8", errors="surrogatepass")
    _config_or_error(load_config, p)


@FUZZ
@given(config_like())
def test_load_config_on_random_yaml_documents(fuzz_dir: Path, raw) -> None:
    p = fuzz_dir / "d.yaml"
    try:
        text = yaml.safe_dump(raw, allow_unicode=True)
    except yaml.YAMLError:
        return
    p.write_text(text, encoding="utf-8", errors="surrogatepass")
    _config_or_error(load_config, p)


@FUZZ
@given(st.lists(st.text(max_size=12) | st.sampled_from(["seed=2001-13-01", "search=3", "search.x.y=1", "=1", "a..b=1",
                                                         "train.steps=!!int 0x", "synthetic.dim=[[[", "target=yes"]),
                max_size=4))
def test_load_config_with_random_overrides(overrides) -> None:
    _config_or_error(load_config, None, overrides)


# ------------------------------------------------------- checkpoints and rows


import hashlib  # noqa: E402

import torch  # noqa: E402

from taskmix.compare.runner import ROW_DIGEST, read_rows, row_digest  # noqa: E402
from taskmix.runs.checkpoint import MAGIC, CheckpointError, decode_checkpoint, encode_checkpoint  # noqa: E402

# state-like values: what SearchRun.state_dict() holds (nested dicts with int or str keys, tuples, lists,
# floats including NaN and infinities, big ints, numpy arrays and scalars, torch tensors)
state_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=6)
    | st.builds(np.float32, st.floats(width=32, allow_nan=False))
    | st.builds(np.int64, st.integers(min_value=-(2**63), max_value=2**63 - 1))
    | st.builds(lambda v: np.asarray(v, dtype=np.uint32), st.lists(st.integers(0, 2**32 - 1), max_size=5))
    | st.builds(lambda v: torch.tensor(v, dtype=torch.float32), st.lists(st.floats(width=32), max_size=5))
    | st.builds(lambda v: torch.tensor(v, dtype=torch.uint8), st.lists(st.integers(0, 255), max_size=5))
)
state_values = st.recursive(
    state_scalars,
    lambda c: st.lists(c, max_size=3)
    | st.lists(c, max_size=3).map(tuple)
    | st.dictionaries(st.text(max_size=5) | st.integers(-5, 5) | st.just("__tm__"), c, max_size=3),
    max_leaves=15,
)


def _same(a, b) -> bool:
    """Equal values of the same types (NaN equal to NaN, tensors and arrays bit for bit)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, torch.Tensor):
        return a.dtype == b.dtype and a.shape == b.shape and a.numpy().tobytes() == b.numpy().tobytes()
    if isinstance(a, (np.ndarray, np.generic)):
        return a.dtype == b.dtype and np.shape(a) == np.shape(b) and np.asarray(a).tobytes() == np.asarray(b).tobytes()
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return a == b


@given(state_values)
@FUZZ
def test_checkpoint_round_trips_any_state_exactly(state) -> None:
    assert _same(decode_checkpoint(encode_checkpoint({"state": state}))["state"], state)


@given(st.data())
@FUZZ
def test_checkpoint_with_flipped_or_cut_bytes_is_refused(data) -> None:
    blob = bytearray(encode_checkpoint({"state": {"w": torch.arange(6.0), "rng": (3, (1, 2), None), "x": 0.1}}))
    if data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(blob) - 1))
        blob[i] ^= 1 << data.draw(st.integers(0, 7))
    else:
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    with pytest.raises(CheckpointError) as e:
        decode_checkpoint(bytes(blob), "ck")
    _one_line(e.value)
    assert str(e.value).startswith("ck: ")


def _signed(body: bytes) -> bytes:
    return MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n" + body


@given(st.binary(max_size=300))
@FUZZ
@example(b"\x80\x04\x95")  # a pickle
@example(b"PK\x03\x04")  # a torch.save zip
def test_checkpoint_from_random_bytes(data: bytes) -> None:
    for blob in (data, _signed(data), MAGIC + data):  # with a valid checksum too: the body is parsed, never run
        with pytest.raises(CheckpointError) as e:
            decode_checkpoint(blob, "ck")
        _one_line(e.value)


@given(json_values, st.binary(max_size=64))
@FUZZ
def test_checkpoint_with_random_json_and_a_valid_checksum(doc, tail: bytes) -> None:
    """A forged body (the checksum recomputed) holding any JSON: decoded into plain values, or refused."""
    js = json.dumps(doc).encode()
    blob = _signed(len(js).to_bytes(8, "little") + js + tail)
    try:
        decode_checkpoint(blob, "ck")
    except CheckpointError as e:
        _one_line(e)


row_like = st.fixed_dictionaries(
    {"method": st.sampled_from(["uniform", "oracle"]) | json_scalars, "seed": st.integers(-2, 3) | json_scalars,
     "test": st.floats(allow_nan=True, allow_infinity=True) | json_scalars, "seconds": st.floats(0, 10) | json_scalars},
    optional={"train_steps": json_scalars, "evaluations": json_scalars, "schedule": json_values, "log": json_values,
              "extra": json_values},
)


@given(st.lists(row_like, max_size=4), st.lists(st.booleans(), min_size=4, max_size=4), st.binary(max_size=40))
@FUZZ
def test_rows_file_gives_checked_rows_or_a_config_error(fuzz_dir: Path, rows, signed, junk: bytes) -> None:
    lines = []
    for r, sign in zip(rows, signed):
        r = {**r, ROW_DIGEST: row_digest(r)} if sign else r
        lines.append(json.dumps(r).encode())
    path = fuzz_dir / "rows.jsonl"
    path.write_bytes(b"\n".join(lines) + (b"\n" + junk if junk else b""))
    try:
        got = read_rows(path)
    except ConfigError as e:
        _one_line(e)
        assert str(e).startswith(str(path))
        return
    for r in got:  # what is accepted is a checked row: finite test, non-negative seconds, matching checksum
        assert isinstance(r["method"], str) and type(r["seed"]) is int
        assert math.isfinite(r["test"]) and r["seconds"] >= 0 and r[ROW_DIGEST] == row_digest(r)
    assert len({(r["method"], r["seed"]) for r in got}) == len(got)
