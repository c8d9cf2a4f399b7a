"""Task families: random multi-task problems with known roles, to stress-test a sampling method.

:func:`make_family` draws, from one seed, a target task and 2--8 auxiliaries,
each with a declared relation to the target:

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

The ground truth a family carries is what it *declares* (roles, angles, noise
rates); which static mixture is actually best is measured by the family
benchmark (``benchmarks/bench_families.py``) on the test split, never shown to
a method.

>>> fam = make_family(3)
>>> fam.tasks[0].name, fam.roles["target"]
('target', 'target')
>>> fam == make_family(3)   # deterministic by seed
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config import Config, config_from_dict
from .tasks import Split, Task

__all__ = ["AUX_ROLES", "Family", "Rule", "make_family", "make_families"]

AUX_ROLES = ("helpful", "partial", "harmful", "irrelevant", "noisy")
_ROLE_P = (0.3, 0.15, 0.2, 0.2, 0.15)


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

    @property
    def names(self) -> list[str]:
        """Task names, the target first."""
        return [t.name for t in self.tasks]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Family):
            return NotImplemented
        if self.names != other.names or self.roles != other.roles or self.info != other.info:
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


def make_family(seed: int, n_test: int = 2000, train_steps: int = 500, overrides: dict[str, Any] | None = None) -> Family:
    """Draw family ``seed`` (deterministic).  ``overrides``: config sections merged over the drawn config."""
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

    def draw_x(n: int, center: np.ndarray) -> np.ndarray:
        return (rng.standard_normal((n, d)) + center).astype(np.float32)

    def noisy(y: np.ndarray, rate: float) -> np.ndarray:
        return np.where(rng.random(len(y)) < rate, 1 - y, y)

    balance = float(rng.uniform(0.3, 0.7))
    target_rule = Rule(tuple(w), tuple(v), a, threshold(w, zero, balance, zero), tuple(zero))
    target_noise = float(rng.uniform(0.0, 0.1))
    tasks = [
        Task("target",
             train=Split(x := draw_x(n_target, zero), noisy(target_rule.labels(x), target_noise)),
             validation=Split(x := draw_x(min(n_test, 500), zero), noisy(target_rule.labels(x), target_noise)),
             test=Split(x := draw_x(n_test, zero), target_rule.labels(x)),
             num_labels=2, meta={"role": "target"})
    ]
    names = ["target"]
    out_roles = {"target": "target"}
    rules = {"target": target_rule}
    info: dict[str, dict[str, Any]] = {"target": {"n": n_target, "balance": round(balance, 3), "noise": round(target_noise, 3)}}
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
    raw: dict[str, Any] = {
        "target": "target",
        "tasks": {n: {} for n in names},
        "seed": 0,
        "model": {"heads": heads},
        "train": {"steps": train_steps, "threads": 1},
    }
    for section, values in (overrides or {}).items():
        raw[section] = {**raw.get(section, {}), **values} if isinstance(values, dict) else values
    cfg = config_from_dict(raw, source=f"<family {seed}>")
    info["_family"] = {"dim": d, "heads": heads, "n_aux": n_aux, "curvature": round(a, 3)}
    return Family(int(seed), tasks, cfg, out_roles, rules, info)


def make_families(n: int, seed: int = 0, **kwargs: Any) -> list[Family]:
    """``n`` families drawn reproducibly from ``seed`` (family ``i`` has seed ``1000 * seed + i``)."""
    return [make_family(1000 * int(seed) + i, **kwargs) for i in range(int(n))]
