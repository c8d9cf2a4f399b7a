"""The wide family generator (issue 22): deterministic, roles as declared, same-input conflicts common; v1 unchanged."""

import hashlib

import numpy as np
import pytest

from taskmix.data.families import (
    AUX_ROLES,
    SAME_INPUT_CONFLICT_ROLES,
    WIDE_ROLES,
    make_families,
    make_family,
)

V1_FAMILY_3 = "cdbe53eaafdde7a4376fadb92df234958b14349c0b581c78831545032f55a140"
"""sha256 of make_family(3)'s arrays, computed before the wide generator was added: v1 must not move."""


def _arrays_hash(fam) -> str:
    h = hashlib.sha256()
    for t in fam.tasks:
        for s in ("train", "validation", "test"):
            sp = getattr(t, s)
            if sp is not None:
                h.update(np.ascontiguousarray(sp.x).tobytes())
                h.update(np.ascontiguousarray(sp.y).tobytes())
    return h.hexdigest()


def test_v1_unchanged():
    """make_family(seed) is still the v1 family, array for array."""
    fam = make_family(3)
    assert _arrays_hash(fam) == V1_FAMILY_3
    assert fam.generator == "v1" and fam.names == ["target", "helpful", "harmful"]
    assert fam.info["harmful"] == {"n": 322, "angle": 143.0, "noise": 0.025, "strength": -0.798}
    assert "generator" not in fam.info["_family"]
    assert make_families(2, seed=4) == make_families(2, seed=4, generator="v1")


def test_wide_deterministic_by_seed():
    """The same seed gives the same wide family; another seed or generator another."""
    a, b = make_family(101000, generator="wide"), make_family(101000, generator="wide")
    assert a == b and a.generator == "wide"
    assert a.config.fingerprint() == b.config.fingerprint()
    assert make_family(101001, generator="wide") != a
    assert make_family(101000) != a  # a separate random stream from v1's
    with pytest.raises(ValueError, match="generator"):
        make_family(1, generator="v3")


def test_wide_ranges():
    """Sizes, roles, heads and declared angles / noise / shifts within their documented ranges."""
    for fam in make_families(30, seed=101, generator="wide"):
        n_aux = len(fam.tasks) - 1
        assert 2 <= n_aux <= 6 and fam.info["_family"]["n_aux"] == n_aux
        assert 60 <= fam.tasks[0].n_train <= 600
        assert set(fam.roles.values()) - {"target"} <= set(WIDE_ROLES)
        assert fam.config.model.heads == fam.info["_family"]["heads"]
        assert len(fam.tasks[0].test) == 2000 and len({t.dim for t in fam.tasks}) == 1
        assert fam.info["_family"]["same_input_conflict"] == any(r in SAME_INPUT_CONFLICT_ROLES for r in fam.roles.values())
        for name, role in fam.roles.items():
            if role in ("copy", "weak", "orthogonal", "conflict"):
                lo, hi = {"copy": (0, 8), "weak": (50, 75), "orthogonal": (85, 95), "conflict": (107.4, 143.2)}[role]
                assert lo <= fam.info[name]["angle"] <= hi, (name, fam.info[name])
            if role == "conflict":
                assert -0.8 - 1e-3 <= fam.info[name]["strength"] <= -0.3 + 1e-3
            if role == "noisy_copy":
                assert 0.10 <= fam.info[name]["noise"] <= 0.35
            if role == "shifted":
                assert 1.0 <= fam.info[name]["shift"] <= 3.0


def test_wide_mix():
    """At least 30% of wide families hold a same-input conflict or orthogonal task; mostly shared heads; both scenarios."""
    fams = make_families(50, seed=101, generator="wide")
    conf = np.mean([any(r in SAME_INPUT_CONFLICT_ROLES for r in f.roles.values()) for f in fams])
    assert conf >= 0.3
    assert np.mean([f.config.model.heads == "shared" for f in fams]) >= 0.6
    scenarios = {f.info["_family"]["scenario"] for f in fams}
    assert {"free", "copy_among_conflicts", "harms_only"} <= scenarios
    roles = {r for f in fams for r in f.roles.values()}
    assert set(WIDE_ROLES) - set(AUX_ROLES) <= roles  # every new role occurs
    for f in fams:
        sc, rs = f.info["_family"]["scenario"], list(f.roles.values())
        if sc == "copy_among_conflicts":
            assert "copy" in rs and any(r in SAME_INPUT_CONFLICT_ROLES for r in rs) and f.config.model.heads == "shared"
        if sc == "harms_only":
            assert not {"copy", "helpful", "partial", "weak", "shifted"} & set(rs) and f.config.model.heads == "shared"


def _agreement(fam, task):
    """Agreement of the task's labels with the target's rule on the task's own inputs, and their correlation."""
    yt, y = fam.rules["target"].labels(task.train.x), task.train.y
    phi = float(np.corrcoef(yt, y)[0, 1]) if yt.std() > 0 and y.std() > 0 else float("nan")
    return float(np.mean(yt == y)), phi


def test_wide_roles_as_declared():
    """Labels follow the declared relation: copies agree, orthogonal rules carry nothing, conflicts disagree."""
    by_role: dict[str, list[tuple[float, float]]] = {}
    for fam in make_families(40, seed=101, generator="wide"):
        for task in fam.tasks[1:]:
            by_role.setdefault(fam.roles[task.name], []).append(_agreement(fam, task))
    for role, vals in by_role.items():
        agree = np.array([a for a, _ in vals])
        phi = np.array([p for _, p in vals])
        if role == "copy":
            assert agree.min() > 0.88, agree.min()
        elif role == "shifted":
            assert agree.min() > 0.9, agree.min()
        elif role == "orthogonal":
            assert 0.4 < agree.min() and agree.max() < 0.65 and abs(agree.mean() - 0.5) < 0.06, agree
            assert np.nanmax(np.abs(phi)) < 0.15, phi
        elif role == "conflict":
            assert agree.mean() < 0.45 and np.nanmax(phi) < -0.05, (agree, phi)
        elif role == "weak":
            assert 0.52 < agree.min() and agree.max() < 0.82 and 0.1 < np.nanmin(phi), (agree, phi)
        elif role == "noisy_copy":
            assert 0.6 < agree.min() and agree.max() < 0.92, agree
        elif role == "harmful":
            assert agree.max() < 0.5, agree
        elif role == "helpful":
            assert agree.min() > 0.8, agree


def test_same_input_roles_live_on_the_target_inputs():
    """copy / weak / orthogonal / conflict / noisy_copy: the target's input region (centre 0, no shift); shifted: moved."""
    for fam in make_families(30, seed=101, generator="wide"):
        for task in fam.tasks[1:]:
            role, m = fam.roles[task.name], np.linalg.norm(task.train.x.mean(axis=0))
            if role in ("copy", "weak", "orthogonal", "conflict", "noisy_copy"):
                assert m < 0.25 + 4 / np.sqrt(len(task.train)), (task.name, m)
                assert not any(fam.rules[task.name].center)
            elif role == "shifted":
                assert abs(m - fam.info[task.name]["shift"]) < 0.3, (task.name, m)
            if role in ("noisy_copy", "shifted"):
                assert fam.rules[task.name] == fam.rules["target"]  # the target's own rule, threshold included
