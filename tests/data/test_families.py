"""The family generator: deterministic by seed, drawn within its ranges, roles as declared."""

import numpy as np
import pytest

from taskmix.data.families import AUX_ROLES, make_families, make_family


def test_deterministic_by_seed():
    a, b = make_family(11), make_family(11)
    assert a == b
    assert a.roles == b.roles and a.config.fingerprint() == b.config.fingerprint()
    c = make_family(12)
    assert c != a


def test_ranges():
    for fam in make_families(12, seed=3):
        n_aux = len(fam.tasks) - 1
        assert 2 <= n_aux <= 8
        assert 50 <= fam.tasks[0].n_train <= 2000
        assert fam.tasks[0].name == "target" and fam.roles["target"] == "target"
        assert set(fam.roles.values()) - {"target"} <= set(AUX_ROLES)
        assert fam.config.model.heads in ("shared", "per_task")
        assert fam.tasks[0].test is not None and len(fam.tasks[0].test) == 2000
        assert len({t.dim for t in fam.tasks}) == 1


@pytest.mark.parametrize("seed", range(8))
def test_roles_as_declared(seed):
    """A helpful task's labels follow the target's rule on its own inputs; a harmful task's disagree; noisy ones halfway."""
    fam = make_family(seed)
    target_rule = fam.rules["target"]
    for task in fam.tasks[1:]:
        role = fam.roles[task.name]
        agree = float(np.mean(target_rule.labels(task.train.x) == task.train.y))
        if role == "helpful":
            assert agree > 0.8, (task.name, agree)
        elif role == "harmful":
            assert agree < 0.5, (task.name, agree)
        elif role == "noisy":
            assert 0.5 < agree < 0.8, (task.name, agree)
        elif role == "partial":
            assert 0.6 < agree < 0.92, (task.name, agree)
