"""Task families: random multi-task problems with known roles, to stress-test a sampling method.

:func:`make_family` draws, from one seed, a target task and its auxiliaries, each
with a declared relation to the target.  Two generators (``generator=``):

* ``"v1"`` (default; the families every earlier benchmark was measured on, kept bit
  for bit): a target of 50--2,000 examples and 2--8 auxiliaries with the roles
  of the first table;
* ``"wide"`` (issue 22): a wider development distribution, the roles of both
  tables, described below the second.

The ``v1`` roles:

============ ===================================================================
role         how its labels relate to the target's rule
============ ===================================================================
helpful      the target's rule, rotated by a small angle (0--20 degrees), on
             inputs shifted a little; ``strength`` = cos(angle)
partial      the target's rule rotated by 35--60 degrees: it teaches part of it
harmful      a conflicting rule, rotated by 110--180 degrees (180 = flipped); it
             conflicts through a shared head -- with per-task heads its own
             head can absorb the flip, so it need not hurt
irrelevant   an independent rule on a far-away region of the input space
noisy        the target's rule with 25--45% of the labels flipped
============ ===================================================================

Rules are ``y = 1[w . x + a (v . x)^2 > t]`` (``t`` sets the class balance),
shared curvature ``v`` and a per-task direction ``w``.  Everything else is drawn
too: the target's size (50--2,000, log-uniform), the auxiliaries' sizes
(300--8,000), the class balance, the target's label noise, the feature
dimension (8, 16 or 32) and whether the model has one shared head or one head
per task.  The target's test split (2,000 rows) is noise-free.

The ``wide`` generator adds roles on the target's *own* input region (same
centre, no shift unless stated), where a conflicting rule can only be absorbed
by the head, so a shared head matters:

============ ===================================================================
role         how its labels relate to the target's rule
============ ===================================================================
copy         the target's rule rotated by 0--8 degrees, no shift: a near-copy
weak         a weak relative, rotated by 50--75 degrees
orthogonal   a rule at 90 +- 5 degrees: its labels carry no information about
             the target's (label correlation ~ 0)
conflict     a moderate conflict: cos(angle) drawn from -0.8 to -0.3 (about
             107--143 degrees), same inputs, no shift
noisy_copy   the target's rule itself with 10--35% of the labels flipped
shifted      the target's rule itself on inputs shifted by 1--3 standard
             deviations along a random direction (covariate shift; the class
             balance moves with it)
============ ===================================================================

In ``wide`` an angle is between the *whole* score functions, curvature included:
a task at angle ``theta`` scores ``cos(theta) s(x) / std(s) + sin(theta) u . x``
(``s`` the target's score, ``u`` a unit direction orthogonal to ``w`` and ``v``),
so ``cos(theta)`` is the correlation of the two scores on the target's inputs and
``orthogonal`` really carries no information (in ``v1`` only the linear
direction rotates and the curvature is shared, so a ``v1`` ``harmful`` rule at
110--130 degrees can agree with the target on up to ~60% of its inputs).  ``helpful`` (0--20 degrees,
inputs shifted by up to 0.5), ``partial`` (35--60) and ``harmful`` (110--180) keep
their ranges; ``irrelevant`` and ``noisy`` are as in ``v1``.

A ``wide`` family draws: the target's size (60--600, log-uniform), the feature
dimension (8, 16 or 32), one shared head (75%) or per-task heads, and a
*scenario* (recorded in ``info["_family"]["scenario"]``):

* ``free`` (70%): 2--6 auxiliaries, each role drawn from all eleven;
* ``copy_among_conflicts`` (15%): a strong ``copy`` (1,000--8,000 examples)
  next to 1--3 ``conflict`` / ``orthogonal`` tasks (and at most two others),
  shared head -- the best static mixture leans on the copy;
* ``harms_only`` (15%): ``conflict`` / ``orthogonal`` tasks with noisy copies,
  irrelevant tasks or more conflicts, and no clean relative (no ``copy``,
  ``helpful``, ``partial``, ``weak`` or ``shifted`` task), shared head -- the
  best static mixture is often the target alone, or nearly.

About two thirds of ``wide`` families hold a same-input ``conflict`` or
``orthogonal`` task (:data:`SAME_INPUT_CONFLICT_ROLES`; at least 30% by design).
Development and evaluation families are disjoint seed sets
(``benchmarks/bench_families.py``: ``--family-seed 101`` / ``102``).

The ground truth a family carries is what it *declares* (roles, angles, noise
rates); which static mixture is actually best is measured by the family
benchmark (``benchmarks/bench_families.py``) on the test split, never shown to
a method.

>>> fam = make_family(3)
>>> fam.tasks[0].name, fam.roles["target"]
('target', 'target')
>>> fam == make_family(3)   # deterministic by seed
True
>>> wide = make_family(3, generator="wide")
>>> wide.generator, wide == make_family(3, generator="wide")
('wide', True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..config import Config, config_from_dict
from .tasks import Split, Task

__all__ = ["AUX_ROLES", "GENERATORS", "SAME_INPUT_CONFLICT_ROLES", "WIDE_ROLES", "Family", "Rule",
           "make_family", "make_families"]

AUX_ROLES = ("helpful", "partial", "harmful", "irrelevant", "noisy")
"""The ``v1`` generator's auxiliary roles."""
_ROLE_P = (0.3, 0.15, 0.2, 0.2, 0.15)

WIDE_ROLES = AUX_ROLES + ("copy", "weak", "orthogonal", "conflict", "noisy_copy", "shifted")
"""The ``wide`` generator's auxiliary roles: ``v1``'s and six on the target's own inputs."""
_WIDE_ROLE_P = (0.12, 0.06, 0.08, 0.10, 0.06, 0.10, 0.10, 0.07, 0.09, 0.12, 0.10)

SAME_INPUT_CONFLICT_ROLES = ("orthogonal", "conflict")
"""Roles whose rule conflicts with, or says nothing about, the target's on the target's own inputs."""

GENERATORS = ("v1", "wide")
"""The family generators (``make_family(..., generator=...)``)."""

_SCENARIOS = ("free", "copy_among_conflicts", "harms_only")
_SCENARIO_P = (0.7, 0.15, 0.15)


@dataclass(frozen=True)
class Rule:
    """``y = 1[w . (x - center) + a (v . (x - center))^2 > t]``."""

    w: tuple[float, ...]
    v: tuple[float, ...]
    a: float
    t: float
    center: tuple[float, ...]

    def labels(self, x: np.ndarray) -> np.ndarray:
        """Labels of inputs ``x`` under this rule (noise-free; label noise is added by the task)."""
        z = x - np.asarray(self.center)
        s = z @ np.asarray(self.w) + self.a * (z @ np.asarray(self.v)) ** 2
        return (s > self.t).astype(np.int64)


@dataclass
class Family:
    """One generated problem: tasks (target first), a config to run them with, and the declared ground truth."""

    seed: int
    tasks: list[Task]
    config: Config
    roles: dict[str, str]  # task name -> role ("target" for the target)
    rules: dict[str, Rule]
    info: dict[str, dict[str, Any]] = field(default_factory=dict)  # per task: size, angle, noise, ...
    generator: str = "v1"

    @property
    def names(self) -> list[str]:
        """Task names, the target first."""
        return [t.name for t in self.tasks]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Family):
            return NotImplemented
        if self.names != other.names or self.roles != other.roles or self.info != other.info:
            return False
        if self.generator != other.generator:
            return False
        for a, b in zip(self.tasks, other.tasks):
            for s in ("train", "validation", "test"):
                sa, sb = getattr(a, s), getattr(b, s)
                if (sa is None) != (sb is None):
                    return False
                if sa is not None and not (np.array_equal(sa.x, sb.x) and np.array_equal(sa.y, sb.y)):
                    return False
        return self.config.fingerprint() == other.config.fingerprint()


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def make_family(seed: int, n_test: int = 2000, train_steps: int = 500, overrides: dict[str, Any] | None = None,
                generator: str = "v1") -> Family:
    """Draw family ``seed`` of ``generator`` (deterministic).  ``overrides``: config sections merged over the drawn config.

    ``generator``: ``"v1"`` (the default, unchanged since the first family benchmark) or ``"wide"``
    (see the module docstring); the two draw from separate random streams.
    """
    if generator == "v1":
        return _make_v1(seed, n_test, train_steps, overrides)
    if generator == "wide":
        return _make_wide(seed, n_test, train_steps, overrides)
    raise ValueError(f"generator: expected one of {', '.join(GENERATORS)}, got {generator!r}")


def _config(seed: int, names: list[str], heads: str, train_steps: int, overrides: dict[str, Any] | None) -> Config:
    raw: dict[str, Any] = {
        "target": "target",
        "tasks": {n: {} for n in names},
        "seed": 0,
        "model": {"heads": heads},
        "train": {"steps": train_steps, "threads": 1},
    }
    for section, values in (overrides or {}).items():
        raw[section] = {**raw.get(section, {}), **values} if isinstance(values, dict) else values
    return config_from_dict(raw, source=f"<family {seed}>")


def _samplers(rng: np.random.Generator, d: int) -> tuple[Callable[[int, np.ndarray], np.ndarray],
                                                       Callable[[np.ndarray, float], np.ndarray]]:
    """``draw_x(n, center)``: n standard-normal inputs around ``center``; ``noisy(y, rate)``: labels flipped at ``rate``."""

    def draw_x(n: int, center: np.ndarray) -> np.ndarray:
        return (rng.standard_normal((n, d)) + center).astype(np.float32)

    def noisy(y: np.ndarray, rate: float) -> np.ndarray:
        return np.where(rng.random(len(y)) < rate, 1 - y, y)

    return draw_x, noisy


def _target(rng: np.random.Generator, rule: Rule, balance: float, n_target: int, n_test: int,
            draw_x: Callable[[int, np.ndarray], np.ndarray], noisy: Callable[[np.ndarray, float], np.ndarray],
            ) -> tuple[list[Task], list[str], dict[str, str], dict[str, Rule], dict[str, dict[str, Any]]]:
    """The target task (label noise drawn here; a noise-free test split) and the family's bookkeeping, started."""
    zero = np.asarray(rule.center)
    target_noise = float(rng.uniform(0.0, 0.1))
    tasks = [
        Task("target",
             train=Split(x := draw_x(n_target, zero), noisy(rule.labels(x), target_noise)),
             validation=Split(x := draw_x(min(n_test, 500), zero), noisy(rule.labels(x), target_noise)),
             test=Split(x := draw_x(n_test, zero), rule.labels(x)),
             num_labels=2, meta={"role": "target"})
    ]
    info: dict[str, dict[str, Any]] = {"target": {"n": n_target, "balance": round(balance, 3), "noise": round(target_noise, 3)}}
    return tasks, ["target"], {"target": "target"}, {"target": rule}, info


def _make_v1(seed: int, n_test: int, train_steps: int, overrides: dict[str, Any] | None) -> Family:
    rng = np.random.default_rng([int(seed), 0xFA317])
    d = int(rng.choice([8, 16, 32]))
    n_target = int(round(np.exp(rng.uniform(np.log(50), np.log(2000)))))
    n_aux = int(rng.integers(2, 9))
    heads = str(rng.choice(["shared", "per_task"]))
    roles = list(rng.choice(AUX_ROLES, size=n_aux, p=_ROLE_P))
    if "helpful" not in roles and "partial" not in roles and rng.random() < 0.8:
        roles[int(rng.integers(n_aux))] = "helpful"  # most families have something to find
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    w, v = q[:, 0], q[:, 1]
    a = float(rng.uniform(0.0, 0.8))
    zero = np.zeros(d)

    def threshold(direction: np.ndarray, center: np.ndarray, balance: float, shift: np.ndarray) -> float:
        x = rng.standard_normal((4000, d)) + center + shift
        z = x - center
        s = z @ direction + a * (z @ v) ** 2
        return float(np.quantile(s, 1.0 - balance))

    draw_x, noisy = _samplers(rng, d)
    balance = float(rng.uniform(0.3, 0.7))
    target_rule = Rule(tuple(w), tuple(v), a, threshold(w, zero, balance, zero), tuple(zero))
    tasks, names, out_roles, rules, info = _target(rng, target_rule, balance, n_target, n_test, draw_x, noisy)
    counts: dict[str, int] = {}
    for role in roles:
        counts[role] = counts.get(role, 0) + 1
        name = f"{role}{counts[role]}" if roles.count(role) > 1 else str(role)
        n = int(round(np.exp(rng.uniform(np.log(300), np.log(8000)))))
        perp = _unit(q[:, 2:] @ rng.standard_normal(d - 2))  # orthogonal to w and v
        center, shift, noise, angle = zero, np.zeros(d), float(rng.uniform(0.0, 0.05)), 0.0
        if role == "helpful":
            angle = float(rng.uniform(0, 20))
            shift = float(rng.uniform(0, 0.5)) * _unit(rng.standard_normal(d))
        elif role == "partial":
            angle = float(rng.uniform(35, 60))
        elif role == "harmful":
            angle = float(rng.uniform(110, 180))
        elif role == "noisy":
            noise = float(rng.uniform(0.25, 0.45))
        if role == "irrelevant":
            center = 6.0 * perp
            u = _unit(q[:, 2:] @ rng.standard_normal(d - 2))
            direction = u
        else:
            direction = _unit(np.cos(np.deg2rad(angle)) * w + np.sin(np.deg2rad(angle)) * perp)
        b = balance if role != "irrelevant" else float(rng.uniform(0.3, 0.7))
        rule = Rule(tuple(direction), tuple(v), a, threshold(direction, center, b, shift), tuple(center))
        x = draw_x(n, center) + shift.astype(np.float32)
        tasks.append(Task(name, train=Split(x, noisy(rule.labels(x), noise)), num_labels=2, meta={"role": role}))
        names.append(name)
        out_roles[name] = str(role)
        rules[name] = rule
        info[name] = {"n": n, "angle": round(angle, 1), "noise": round(noise, 3),
                      "strength": round(float(np.cos(np.deg2rad(angle))), 3) if role != "irrelevant" else 0.0}
    cfg = _config(seed, names, heads, train_steps, overrides)
    info["_family"] = {"dim": d, "heads": heads, "n_aux": n_aux, "curvature": round(a, 3)}
    return Family(int(seed), tasks, cfg, out_roles, rules, info)


_ANGLES = {  # degrees, per wide role with a rotated rule
    "helpful": (0.0, 20.0), "partial": (35.0, 60.0), "harmful": (110.0, 180.0),
    "copy": (0.0, 8.0), "weak": (50.0, 75.0), "orthogonal": (85.0, 95.0),
}


def _wide_roles(rng: np.random.Generator) -> tuple[str, list[str], str | None]:
    """The scenario, the auxiliaries' roles (in task order) and a forced head (``None``: drawn)."""
    scenario = str(rng.choice(_SCENARIOS, p=_SCENARIO_P))
    if scenario == "free":
        n_aux = int(rng.integers(2, 7))
        return scenario, [str(r) for r in rng.choice(WIDE_ROLES, size=n_aux, p=_WIDE_ROLE_P)], None
    if scenario == "copy_among_conflicts":
        roles = ["copy"] + [str(r) for r in rng.choice(["conflict", "orthogonal"], size=int(rng.integers(1, 4)), p=[0.7, 0.3])]
        roles += [str(r) for r in rng.choice(["noisy_copy", "irrelevant", "weak", "shifted"], size=int(rng.integers(0, 3)))]
    else:  # harms_only: no clean relative of the target, only noisy copies
        roles = [str(r) for r in rng.choice(["conflict", "orthogonal"], size=int(rng.integers(1, 3)), p=[0.6, 0.4])]
        roles += [str(r) for r in rng.choice(["noisy_copy", "irrelevant", "conflict"], size=int(rng.integers(1, 4)))]
    roles = roles[:6]
    rng.shuffle(roles)
    return scenario, roles, "shared"


def _make_wide(seed: int, n_test: int, train_steps: int, overrides: dict[str, Any] | None) -> Family:
    rng = np.random.default_rng([int(seed), 0xFA317, 0x3DE])
    d = int(rng.choice([8, 16, 32]))
    n_target = int(round(np.exp(rng.uniform(np.log(60), np.log(600)))))
    scenario, roles, forced_heads = _wide_roles(rng)
    heads = forced_heads or ("shared" if rng.random() < 0.75 else "per_task")
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    w, v = q[:, 0], q[:, 1]
    a = float(rng.uniform(0.0, 0.8))
    sd = float(np.sqrt(1.0 + 2.0 * a * a))  # std of the target's score w.z + a (v.z)^2 for z ~ N(0, I)
    zero = np.zeros(d)

    def threshold(direction: np.ndarray, curv: float, balance: float, shift: np.ndarray) -> float:
        z = rng.standard_normal((4000, d)) + shift  # inputs relative to the rule's centre
        s = z @ direction + curv * (z @ v) ** 2
        return float(np.quantile(s, 1.0 - balance))

    draw_x, noisy = _samplers(rng, d)
    balance = float(rng.uniform(0.3, 0.7))
    target_rule = Rule(tuple(w), tuple(v), a, threshold(w, a, balance, zero), tuple(zero))
    tasks, names, out_roles, rules, info = _target(rng, target_rule, balance, n_target, n_test, draw_x, noisy)
    counts: dict[str, int] = {}
    for role in roles:
        counts[role] = counts.get(role, 0) + 1
        name = f"{role}{counts[role]}" if roles.count(role) > 1 else role
        lo_n = 1000 if (role == "copy" and scenario == "copy_among_conflicts") else 300
        n = int(round(np.exp(rng.uniform(np.log(lo_n), np.log(8000)))))
        perp = _unit(q[:, 2:] @ rng.standard_normal(d - 2))  # orthogonal to w and v
        shift, noise, angle = np.zeros(d), float(rng.uniform(0.0, 0.05)), 0.0
        extra: dict[str, Any] = {}
        if role in _ANGLES:
            angle = float(rng.uniform(*_ANGLES[role]))
        elif role == "conflict":
            angle = float(np.degrees(np.arccos(rng.uniform(-0.8, -0.3))))
        elif role == "noisy":
            noise = float(rng.uniform(0.25, 0.45))
        elif role == "noisy_copy":
            noise = float(rng.uniform(0.10, 0.35))
        elif role == "shifted":
            mag = float(rng.uniform(1.0, 3.0))
            shift = mag * _unit(rng.standard_normal(d))
            extra["shift"] = round(mag, 3)
        if role == "helpful":
            mag = float(rng.uniform(0, 0.5))
            shift = mag * _unit(rng.standard_normal(d))
            extra["shift"] = round(mag, 3)
        center = zero
        if role in ("noisy_copy", "shifted"):
            rule = target_rule  # the target's own rule (its threshold too), on its inputs or shifted ones
        elif role == "irrelevant":
            center = 6.0 * perp
            u = _unit(q[:, 2:] @ rng.standard_normal(d - 2))
            rule = Rule(tuple(u), tuple(v), a, threshold(u, a, float(rng.uniform(0.3, 0.7)), shift), tuple(center))
        else:  # rotate the whole score: cos(angle) is the correlation of the two scores on the target's inputs
            c, s_ = np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))
            direction, curv = c / sd * w + s_ * perp, c / sd * a
            rule = Rule(tuple(direction), tuple(v), curv, threshold(direction, curv, balance, shift), tuple(zero))
        x = draw_x(n, center) + shift.astype(np.float32)
        tasks.append(Task(name, train=Split(x, noisy(rule.labels(x), noise)), num_labels=2, meta={"role": role}))
        names.append(name)
        out_roles[name] = role
        rules[name] = rule
        info[name] = {"n": n, "angle": round(angle, 1), "noise": round(noise, 3),
                      "strength": round(float(np.cos(np.deg2rad(angle))), 3) if role != "irrelevant" else 0.0, **extra}
    cfg = _config(seed, names, heads, train_steps, overrides)
    info["_family"] = {"dim": d, "heads": heads, "n_aux": len(roles), "curvature": round(a, 3), "generator": "wide",
                       "scenario": scenario,
                       "same_input_conflict": any(r in SAME_INPUT_CONFLICT_ROLES for r in roles)}
    return Family(int(seed), tasks, cfg, out_roles, rules, info, generator="wide")


def make_families(n: int, seed: int = 0, generator: str = "v1", **kwargs: Any) -> list[Family]:
    """``n`` families of ``generator`` drawn reproducibly from ``seed`` (family ``i`` has seed ``1000 * seed + i``)."""
    return [make_family(1000 * int(seed) + i, generator=generator, **kwargs) for i in range(int(n))]
