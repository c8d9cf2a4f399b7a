"""The registries: one per kind, duplicates refused, unknown names listed, families parsed."""

from __future__ import annotations

import pytest

from taskmix.errors import ConfigError
from taskmix.registry import Registry


def test_register_get_and_refuse_duplicates() -> None:
    r: Registry[int] = Registry("thing", field="x.thing")
    r.register("a", 1, kind="k")
    assert r.get("a") == 1 and r.meta("a", "kind") == "k" and "a" in r and list(r) == ["a"]
    with pytest.raises(ValueError, match="already registered"):
        r.register("a", 2)


def test_unknown_name_lists_every_valid_one_and_names_the_field() -> None:
    r: Registry[int] = Registry("thing", field="x.thing")
    r.register("a", 1)
    r.register_family("t_", lambda s: int(s), placeholder="N")
    with pytest.raises(ConfigError, match=r"^x\.thing: unknown thing 'b'; expected one of \['a', 't_<N>'\]$"):
        r.get("b")
    assert r.get("t_7") == 7 and "t_7" in r and "t_x" not in r
    with pytest.raises(ConfigError, match="unknown thing 't_x'"):
        r.get("t_x")
    with pytest.raises(ValueError, match="clashes"):
        r.register_family("a", int)
    with pytest.raises(ValueError, match="already registered"):
        r.register("t_9", 9)


def test_one_registry_per_kind_and_every_method_has_a_kind() -> None:
    from taskmix.compare.methods import METHODS
    from taskmix.encoders import BACKENDS
    from taskmix.runs import REWARDS
    from taskmix.schedule import RULES
    from taskmix.strategies import STRATEGIES

    kinds = {"baseline", "learned", "oracle", "adaptive", "adaptive-replay", "recommended", "peer"}
    assert all(METHODS.meta(n, "kind") in kinds for n in METHODS)
    assert METHODS.meta("temperature_2", "kind") == "baseline"
    # derived, not listed twice: every rule with method=True and every strategy is a method
    assert {r for r in RULES if RULES.meta(r, "method") and not RULES.meta(r, "parameter")} <= set(METHODS)
    assert set(STRATEGIES) | {f"{s}-replay" for s in STRATEGIES} <= set(METHODS)
    assert set(BACKENDS) == {"st", "hf", "e5"} and "gradient_alignment" in REWARDS
