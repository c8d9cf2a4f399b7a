import numpy as np
from scipy.stats import chisquare

from taskmix.replay.sampler import ExampleStreams, TaskSampler, categorical
from taskmix.schedule import Schedule


def test_per_sample_frequencies_match_schedule_chi_square():
    s = Schedule.from_weights(["a", "b", "c", "d"], [0.1, 0.2, 0.3, 0.4])
    draws = TaskSampler(s, batch_size=64, seed=3).draw_many(2000).ravel()
    counts = np.bincount(draws, minlength=4)
    assert chisquare(counts, s.weights[0] * draws.size).pvalue > 1e-3
    # and a wrong schedule is rejected by the same test
    assert chisquare(counts, np.full(4, 0.25) * draws.size).pvalue < 1e-6


def test_time_variant_switches_rows_and_per_batch_mode():
    s = Schedule.from_weights(["a", "b"], [[1, 0], [0, 1]], steps_per_meta_step=5)
    sm = TaskSampler(s, 8, seed=0)
    rows = [sm.next_tasks() for _ in range(12)]
    assert all((r == 0).all() for r in rows[:5]) and all((r == 1).all() for r in rows[5:])
    sb = TaskSampler(Schedule.from_weights(["a", "b"], [0.5, 0.5]), 16, seed=0, per="batch")
    batches = [sb.next_tasks() for _ in range(400)]
    assert all(len(set(b.tolist())) == 1 for b in batches)
    first = np.array([b[0] for b in batches])
    assert chisquare(np.bincount(first, minlength=2), [200, 200]).pvalue > 1e-3


def test_draw_many_equals_stepwise():
    s = Schedule.from_weights(["a", "b", "c"], [[1, 1, 1], [1, 2, 3]], steps_per_meta_step=7)
    a = TaskSampler(s, 16, seed=11).draw_many(20)
    b = TaskSampler(s, 16, seed=11)
    np.testing.assert_array_equal(a, np.stack([b.next_tasks() for _ in range(20)]))


def test_same_seed_same_draws_different_seed_differs():
    s = Schedule.from_weights(["a", "b", "c"], [1, 1, 1])
    a = TaskSampler(s, 32, sizes=[5, 7, 9], seed=1)
    b = TaskSampler(s, 32, sizes=[5, 7, 9], seed=1)  # e.g. another data-parallel rank
    c = TaskSampler(s, 32, sizes=[5, 7, 9], seed=2)
    for _ in range(10):
        ta, ea = a.next_batch()
        tb, eb = b.next_batch()
        np.testing.assert_array_equal(ta, tb)
        np.testing.assert_array_equal(ea, eb)
    assert not np.array_equal(a.next_tasks(), c.next_tasks())


def test_state_dict_resume_continues_identically():
    s = Schedule.from_weights(["a", "b"], [[0.3, 0.7], [0.9, 0.1]], steps_per_meta_step=4)
    full = TaskSampler(s, 10, sizes=[13, 17], seed=5)
    ref = [full.next_batch() for _ in range(12)]
    part = TaskSampler(s, 10, sizes=[13, 17], seed=5)
    for _ in range(6):
        part.next_batch()
    state = part.state_dict()
    resumed = TaskSampler(s, 10, sizes=[13, 17], seed=999)
    resumed.load_state_dict(state)
    for t, e in ref[6:]:
        t2, e2 = resumed.next_batch()
        np.testing.assert_array_equal(t, t2)
        np.testing.assert_array_equal(e, e2)


def test_examples_are_passes_without_replacement_reshuffled():
    st = ExampleStreams([10], seed=0)
    p1, p2 = st.take(0, 10), st.take(0, 10)
    assert sorted(p1.tolist()) == list(range(10)) == sorted(p2.tolist())
    assert not np.array_equal(p1, p2)  # reshuffled each pass
    st2 = ExampleStreams([10], seed=0)
    np.testing.assert_array_equal(np.concatenate([st2.take(0, 3), st2.take(0, 12)]), np.concatenate([p1, p2])[:15])


def test_categorical_handles_zero_weights():
    rng = np.random.default_rng(0)
    d = categorical(rng, np.array([0.0, 1.0, 0.0]), 1000)
    assert (d == 1).all()
