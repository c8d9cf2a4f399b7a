import numpy as np
import pytest
from scipy.stats import chisquare

from taskmix.strategies import Policy, softmax


def test_initialised_uniform_and_time_variant_rows():
    p = Policy(4, target=0, n_rows=3)
    assert p.time_variant and np.allclose(p.probs(2), 0.25)
    assert np.allclose(Policy(4, 0).probs(0), 0.25)


def test_exploration_rule_frequencies():
    # epsilon uniform, gamma - epsilon primary, 1 - gamma policy
    p = Policy(3, target=2, epsilon=0.2, gamma=0.5)
    p.logits[0] = np.log([0.7, 0.2, 0.1])
    tasks, branch = p.sample(np.random.default_rng(0), 0, 200_000)
    bc = np.bincount(branch, minlength=3)
    assert chisquare(bc, np.array([0.2, 0.3, 0.5]) * len(branch)).pvalue > 1e-3
    assert (tasks[branch == 1] == 2).all()
    uni = np.bincount(tasks[branch == 0], minlength=3)
    assert chisquare(uni, np.full(3, uni.sum() / 3)).pvalue > 1e-3
    pol = np.bincount(tasks[branch == 2], minlength=3)
    assert chisquare(pol, np.array([0.7, 0.2, 0.1]) * pol.sum()).pvalue > 1e-3
    # the marginal equals the documented mixture
    marg = np.bincount(tasks, minlength=3)
    assert chisquare(marg, p.exploration_mixture(0) * len(tasks)).pvalue > 1e-3


def test_rejects_bad_exploration():
    with pytest.raises(ValueError):
        Policy(3, 0, epsilon=0.5, gamma=0.2)
    with pytest.raises(ValueError):
        Policy(3, 0, epsilon=0.1, gamma=1.5)


def test_reinforce_direction_per_task_reward():
    p = Policy(2, target=0, lr=0.01, sgd_steps=10, baseline="none", normalize=False)
    info = p.update(0, shares=[0.5, 0.5], rewards=[1.0, -1.0])
    assert info["probs_after"][0] > 0.5 > info["probs_after"][1]


def test_reinforce_direction_scalar_reward_follows_realised_mix():
    # A positive scalar reward reinforces the tasks that were drawn more than the policy says
    p = Policy(2, target=0, lr=0.1, sgd_steps=10, baseline="none", normalize=False)
    p.update(0, shares=[0.8, 0.2], rewards=1.0)
    assert p.probs(0)[0] > 0.5
    q = Policy(2, target=0, lr=0.1, sgd_steps=10, baseline="none", normalize=False)
    q.update(0, shares=[0.8, 0.2], rewards=-1.0)
    assert q.probs(0)[0] < 0.5


def test_toy_two_task_bandit_learns_the_better_task():
    rng = np.random.default_rng(0)
    p = Policy(2, target=0, epsilon=0.1, gamma=0.1, lr=0.05, sgd_steps=20)
    for _ in range(30):
        tasks, _ = p.sample(rng, 0, 256)
        shares = np.bincount(tasks, minlength=2) / 256
        reward = 0.5 + 0.3 * shares[1] + rng.normal(0, 0.01)  # task 1 helps
        p.update(0, shares, reward)
    assert p.probs(0)[1] > 0.7


def test_surrogate_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    theta, w, a = rng.normal(size=4), rng.dirichlet(np.ones(4)), rng.normal(size=4)
    f = lambda t: float(np.sum(w * a * np.log(softmax(t))))
    num = np.array([(f(theta + 1e-6 * e) - f(theta - 1e-6 * e)) / 2e-6 for e in np.eye(4)])
    np.testing.assert_allclose(Policy.surrogate_grad(theta, w, a), num, atol=1e-6)


def test_state_dict_round_trip():
    p = Policy(3, 1, n_rows=2)
    p.update(1, [0.2, 0.3, 0.5], [1.0, 0.0, -1.0])
    q = Policy(3, 1, n_rows=2)
    q.load_state_dict(p.state_dict())
    np.testing.assert_array_equal(p.logits, q.logits)
    assert q.baseline == p.baseline and q.updates == 1
