"""One contract over every registered online strategy (as optuna tests every sampler): weights, purity, state, reseeding."""

from __future__ import annotations

import json

import numpy as np
import pytest

from taskmix.errors import ConfigError
from taskmix.strategies import FEEDBACK_KINDS, STRATEGIES, MetaStepInfo, Strategy, make_strategy

K = 4


def _info(step: int, rng: np.random.Generator, w: np.ndarray) -> MetaStepInfo:
    """A meta-step's feedback with every kind filled in (strategies read the kinds they ask for)."""
    counts = rng.multinomial(320, w).astype(np.float64)
    metric = float(rng.uniform(0.4, 0.9))
    return MetaStepInfo(
        step=step, steps=10, weights=w, counts=counts, task_loss=rng.uniform(0.1, 2.0, K),
        metric=metric, previous_metric=metric - float(rng.normal(0, 0.05)), alignment=rng.normal(0, 1, K),
        heldout_loss=rng.uniform(0.1, 2.0, K),
    )


def _make(name: str, n: int, target: int = 0, seed: int = 0) -> Strategy:
    """``make_strategy``, with reference losses for a strategy that needs them (DoReMi; a run trains them)."""
    needs = getattr(STRATEGIES.get(name), "needs_reference", False)
    return make_strategy(name, n, target, seed, **({"reference_loss": [0.5] * n} if needs else {}))


def _drive(s: Strategy, seed: int, n: int, start: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` meta-steps of made-up feedback; what the strategy weighted and rewarded at each."""
    rng = np.random.default_rng([seed, start])
    out = []
    for m in range(start, start + n):
        w = s.weights(m * 10)
        info = _info((m + 1) * 10, rng, w)
        r = s.rewards(info)
        s.update(m, info)
        out.append((w, np.asarray(r)))
    return out


@pytest.fixture(params=list(STRATEGIES))
def name(request: pytest.FixtureRequest) -> str:
    return request.param


def test_registered_under_its_own_name_and_asks_for_known_feedback(name: str) -> None:
    cls = STRATEGIES.get(name)
    assert issubclass(cls, Strategy) and cls.name == name
    assert cls.feedback and set(cls.feedback) <= set(FEEDBACK_KINDS)


def test_weights_are_a_distribution_before_and_after_updates(name: str) -> None:
    s = _make(name, K, target=1, seed=3)
    for w, r in [(s.weights(0), np.zeros(K))] + _drive(s, 0, 6):
        assert w.shape == (K,) and np.all(np.isfinite(w)) and np.all(w >= 0)
        assert w.sum() == pytest.approx(1.0, abs=1e-9)
        assert r.shape == (K,) and np.all(np.isfinite(r))


def test_weights_are_pure(name: str) -> None:
    s = _make(name, K, seed=1)
    _drive(s, 1, 3)
    np.testing.assert_array_equal(s.weights(40), s.weights(40))


def test_state_round_trip_continues_exactly(name: str) -> None:
    a = _make(name, K, seed=5)
    _drive(a, 2, 4)
    state = json.loads(json.dumps(a.state_dict()))  # JSON-compatible, as checkpoints store it
    b = _make(name, K, seed=99)
    b.load_state_dict(state)
    for (wa, ra), (wb, rb) in zip(_drive(a, 7, 4, start=4), _drive(b, 7, 4, start=4)):
        np.testing.assert_array_equal(wa, wb)
        np.testing.assert_array_equal(ra, rb)


def test_state_of_another_strategy_or_size_is_refused(name: str) -> None:
    a = _make(name, K)
    with pytest.raises(ValueError, match="state is for"):
        _make(name, K + 1).load_state_dict(a.state_dict())
    other = next(n for n in STRATEGIES if n != name)
    with pytest.raises(ValueError, match="state is for"):
        _make(other, K).load_state_dict(a.state_dict())


def test_reseed_keeps_what_was_learned(name: str) -> None:
    a = _make(name, K, seed=0)
    _drive(a, 3, 5)
    skip = ("seed", "rng", *type(a).drawn_state)
    learned = {k: v for k, v in a.state_dict().items() if k not in skip}
    a.reseed(123)
    after = {k: v for k, v in a.state_dict().items() if k not in skip}
    assert a.seed == 123 and after == learned


def test_bad_settings_name_the_field(name: str) -> None:
    from taskmix.config import builtin_config
    from taskmix.strategies import check_settings

    cfg = builtin_config([f"compare.strategies.{name}.no_such_setting=1"])
    with pytest.raises(ConfigError, match=rf"compare\.strategies\.{name}\.no_such_setting: unknown setting"):
        check_settings(cfg)


@pytest.mark.parametrize("name,setting,value", [("aioli", "eta", -1), ("aioli", "one_hot_factor", 0.1),
                                                ("doremi", "smoothing", 2), ("doremi", "reference_loss", [1, 2]),
                                                ("doremi_target", "similarity", "l2"), ("exp3", "smoothing", 1.5)])
def test_bad_values_name_the_field(name: str, setting: str, value: object) -> None:
    from taskmix.config import builtin_config
    from taskmix.strategies import check_settings

    cfg = builtin_config([f"compare.strategies.{name}.{setting}={value}"])
    with pytest.raises(ConfigError, match=rf"compare\.strategies\.{name}\.{setting}: "):
        check_settings(cfg, n_tasks=4)
