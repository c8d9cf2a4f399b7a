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
