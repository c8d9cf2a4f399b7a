"""The Python API refuses bad arguments at the call, naming the argument; seeks are bounded and fast.

The table below lists refused calls (the exception type, and a substring of its one-line message that names the
argument).  Property tests check the other side: valid arguments keep working and give finite results, and the fast
paths (counting draws instead of drawing them, per-row schedule arithmetic) are exactly the slow ones.
"""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.utils.data import ConcatDataset

from taskmix.errors import NonFiniteRewardError, ScheduleError
from taskmix.replay.sampler import ExampleStreams, TaskSampler, categorical, category_counts
from taskmix.schedule import Schedule, explicit, proportional, temperature
from taskmix.schedule.export import megatron_data_path, seqio_mixtures
from taskmix.schedule.inspect import describe, diff
from taskmix.strategies import Mixer, Policy, make_strategy
from taskmix.replay.streaming import ScheduleIterableDataset
from taskmix.replay.torch import ScheduleBatchSampler, ScheduleSampler, scheduled_proportions

PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
S2 = Schedule.from_weights(["a", "b"], [[1.0, 3.0], [3.0, 1.0]], 4)


def _mixer(**kw: Any) -> Mixer:
    args = {"meta_steps": 3, "steps_per_meta_step": 2, "seed": 0, **kw}
    return Mixer(["a", "b"], target="a", **args)


def _told(**kw: Any) -> Mixer:
    """A mixer that has drawn one step (so end_meta_step can be called)."""
    m = _mixer(**kw)
    m.next_tasks(4)
    return m


def _done() -> Mixer:
    m = _mixer(meta_steps=1, steps_per_meta_step=1)
    m.next_tasks(4)
    m.end_meta_step(rewards=[0.0, 1.0])
    return m


def _updated(**kw: Any) -> dict[str, Any]:
    """The state of a mixer (``kw``) after one meta-step."""
    m = _mixer(**kw)
    m.next_tasks(4)
    m.next_tasks(4)
    m.end_meta_step(rewards=[0.0, 1.0])
    return json.loads(json.dumps(m.state_dict()))


def _nan_logits() -> dict[str, Any]:
    state = _updated()
    state["policy"]["logits"][0][1] = float("nan")
    return state


def _batch_sampler(**kw: Any) -> ScheduleBatchSampler:
    return ScheduleBatchSampler(S2, [3, 5], 8, 10, **kw)


def _stream(**kw: Any) -> ScheduleIterableDataset:
    return ScheduleIterableDataset({"a": [1, 2, 3], "b": [4, 5]}, S2, 8, 10, **kw)


def _state_at(step: int) -> dict[str, Any]:
    return {**_batch_sampler().state_dict(), "step": step}


def _stream_state_at(step: int) -> dict[str, Any]:
    return {**_stream().state_dict(), "step": step}


# (id, call, exception type, substring naming the argument)
REFUSED: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    # ---- Mixer constructor
    ("mixer-tasks-str", lambda: Mixer("abc", target="a"), TypeError, "tasks must be a list of task names"),
    ("mixer-task-not-str", lambda: Mixer(["a", 1], target="a"), TypeError, "tasks[1]"),
    ("mixer-tasks-dup", lambda: Mixer(["a", "a"], target="a"), ValueError, "tasks"),
    ("mixer-target-int", lambda: Mixer(["a", "b"], target=0), TypeError, "target"),
    ("mixer-sgd-steps", lambda: _mixer(sgd_steps=-5), ValueError, "sgd_steps"),
    ("mixer-sgd-steps-float", lambda: _mixer(sgd_steps=2.5), TypeError, "sgd_steps"),
    ("mixer-baseline-decay", lambda: _mixer(baseline_decay=5), ValueError, "baseline_decay"),
    ("mixer-seed-float", lambda: _mixer(seed=1.7), TypeError, "seed"),
    ("mixer-seed-bool", lambda: _mixer(seed=True), TypeError, "seed"),
    ("mixer-seed-negative", lambda: _mixer(seed=-1), ValueError, "seed"),
    ("mixer-meta-steps-huge", lambda: _mixer(meta_steps=10**7), ValueError, "meta_steps"),
    ("mixer-meta-steps-bool", lambda: _mixer(meta_steps=True), TypeError, "meta_steps"),
    ("mixer-spm-zero", lambda: _mixer(steps_per_meta_step=0), ValueError, "steps_per_meta_step"),
    ("mixer-lr-nan", lambda: _mixer(lr=float("nan")), ValueError, "lr"),
    ("mixer-lr-inf", lambda: _mixer(lr=float("inf")), ValueError, "lr"),
    ("mixer-lr-zero", lambda: _mixer(lr=0), ValueError, "lr"),
    ("mixer-lr-str", lambda: _mixer(lr="0.1"), TypeError, "lr"),
    ("mixer-epsilon-above-gamma", lambda: _mixer(epsilon=0.5, gamma=0.2), ValueError, "epsilon"),
    ("mixer-gamma-nan", lambda: _mixer(gamma=float("nan")), ValueError, "gamma"),
    ("mixer-entropy-negative", lambda: _mixer(entropy=-1.0), ValueError, "entropy"),
    ("mixer-shrink-inf", lambda: _mixer(shrink=float("inf")), ValueError, "shrink"),
    ("mixer-prior-pull-negative", lambda: _mixer(prior_pull=-0.5), ValueError, "prior_pull"),
    ("mixer-normalize-int", lambda: _mixer(normalize=1), TypeError, "normalize"),
    ("mixer-baseline", lambda: _mixer(baseline="mean"), ValueError, "baseline"),
    ("mixer-policy", lambda: _mixer(policy="dynamic"), ValueError, "policy"),
    ("mixer-time-variant-init", lambda: _mixer(time_variant_init="random"), ValueError, "time_variant_init"),
    ("mixer-similarity", lambda: _mixer(similarity="l2"), ValueError, "similarity"),
    ("mixer-prior-nan", lambda: _mixer(prior=[1.0, float("nan")]), ValueError, "prior"),
    ("mixer-prior-str", lambda: _mixer(prior="ab"), TypeError, "prior"),
    ("mixer-prior-overflow", lambda: _mixer(prior=[1e308, 1e308]), ValueError, "prior"),
    ("mixer-from-config-not-config", lambda: Mixer.from_config({"search": {}}), TypeError, "cfg"),
    # ---- Mixer: asking
    ("mixer-next-tasks-zero", lambda: _mixer().next_tasks(0), ValueError, "batch_size"),
    ("mixer-draw-float", lambda: _mixer().draw(2.5, 4), TypeError, "steps"),
    ("mixer-draw-huge", lambda: _mixer().draw(10**6, 10**3), ValueError, "steps x batch_size"),
    ("mixer-draw-per-batch-int", lambda: _mixer().draw(2, 4, per_batch=1), TypeError, "per_batch"),
    ("mixer-next-round-seed", lambda: _done().next_round(1.5), TypeError, "seed"),
    # ---- Mixer: telling (rewards must be finite real numbers, |r| <= 1e12)
    ("mixer-rewards-str", lambda: _told().end_meta_step(rewards="01"), TypeError, "rewards"),
    ("mixer-rewards-str-items", lambda: _told().end_meta_step(rewards=["0", "1"]), TypeError, "rewards"),
    ("mixer-rewards-bools", lambda: _told().end_meta_step(rewards=[True, False]), TypeError, "rewards"),
    ("mixer-rewards-huge", lambda: _told().end_meta_step(rewards=[1e308, 0.0]), NonFiniteRewardError, "rewards"),
    ("mixer-rewards-neg-huge", lambda: _told().end_meta_step(rewards=[-1e308, 0.0]), NonFiniteRewardError, "rewards"),
    ("mixer-rewards-beyond-bound", lambda: _told().end_meta_step(rewards=[2e12, 0.0]), NonFiniteRewardError,
     "|r| <= 1e+12"),
    ("mixer-rewards-nan", lambda: _told().end_meta_step(rewards=[float("nan"), 0.0]), NonFiniteRewardError, "rewards"),
    ("mixer-rewards-ragged", lambda: _told().end_meta_step(rewards=[[0.0], [1.0, 2.0]]), TypeError, "rewards"),
    ("mixer-rewards-scalar", lambda: _told().end_meta_step(rewards=1.0), TypeError, "reward="),
    ("mixer-rewards-length", lambda: _told().end_meta_step(rewards=[0.0, 1.0, 2.0]), ValueError, "one per task"),
    ("mixer-reward-str", lambda: _told().end_meta_step(reward="0.5"), TypeError, "reward"),
    ("mixer-reward-bool", lambda: _told().end_meta_step(reward=True), TypeError, "reward"),
    ("mixer-reward-huge", lambda: _told().end_meta_step(reward=1e308), NonFiniteRewardError, "reward"),
    ("mixer-reward-big-int", lambda: _told().end_meta_step(reward=10**400), NonFiniteRewardError, "reward"),
    ("mixer-se-negative", lambda: _told().end_meta_step(rewards=[0.0, 1.0], se=[-1.0, 0.0]), ValueError, "se[0]"),
    ("mixer-se-with-scalar", lambda: _told().end_meta_step(reward=0.5, se=[0.1, 0.1]), ValueError, "se"),
    ("mixer-alignment-params", lambda: _told().end_meta_step(params=3, target_loss=lambda: 0, task_loss=lambda i: 0),
     TypeError, "params"),
    # ---- Mixer: restoring (a state from another mixer names the differing setting)
    ("mixer-load-more-meta-steps", lambda: _mixer(meta_steps=5).load_state_dict(_updated()), ValueError,
     "settings.meta_steps"),
    ("mixer-load-other-target", lambda: Mixer(["a", "b"], target="b", meta_steps=3, steps_per_meta_step=2)
     .load_state_dict(_updated()), ValueError, "settings.target"),
    ("mixer-load-other-gamma", lambda: _mixer(gamma=0.3).load_state_dict(_updated()), ValueError, "settings.gamma"),
    ("mixer-load-other-epsilon", lambda: _mixer(epsilon=0.05).load_state_dict(_updated()), ValueError,
     "settings.epsilon"),
    ("mixer-load-nan-logits", lambda: _mixer().load_state_dict(_nan_logits()), ValueError, "logits"),
    # ---- Policy and the online strategies
    ("policy-n-tasks-float", lambda: Policy(2.0, 0), TypeError, "n_tasks"),
    ("policy-n-rows-zero", lambda: Policy(2, 0, n_rows=0), ValueError, "n_rows"),
    ("policy-target-range", lambda: Policy(2, 5), ValueError, "target"),
    ("policy-lr-nan", lambda: Policy(2, 0, lr=float("nan")), ValueError, "lr"),
    ("policy-update-row", lambda: Policy(2, 0).update(3, [0.5, 0.5], [0.0, 1.0]), ValueError, "row"),
    ("policy-update-shares", lambda: Policy(2, 0).update(0, ["a", "b"], [0.0, 1.0]), TypeError, "shares"),
    ("policy-update-rewards-str", lambda: Policy(2, 0).update(0, [0.5, 0.5], "1"), TypeError, "rewards"),
    ("policy-probs-row", lambda: Policy(2, 0).probs(1.0), TypeError, "row"),
    ("exp3-lr-str", lambda: make_strategy("exp3", 3, lr="x"), TypeError, "lr"),
    ("exp3-smoothing", lambda: make_strategy("exp3", 3, smoothing=1.0), ValueError, "smoothing"),
    ("exp3-target", lambda: make_strategy("exp3", 3, target=5), ValueError, "target"),
    ("exp3-seed-float", lambda: make_strategy("exp3", 3, seed=1.5), TypeError, "seed"),
    ("exp3-n-tasks-bool", lambda: make_strategy("exp3", True), TypeError, "n_tasks"),
    ("thompson-mc-samples", lambda: make_strategy("thompson", 3, mc_samples=0), ValueError, "mc_samples"),
    ("thompson-strict-int", lambda: make_strategy("thompson", 3, strict=1), TypeError, "strict"),
    ("thompson-prior-nan", lambda: make_strategy("thompson", 3, prior=(float("nan"), 1.0)), ValueError, "prior[0]"),
    ("thompson-prior-shape", lambda: make_strategy("thompson", 3, prior=(1.0,)), TypeError, "prior"),
    ("ga-probe-batches-float", lambda: make_strategy("gradient_alignment", 3, probe_batches=2.5), TypeError,
     "probe_batches"),
    ("ga-floor", lambda: make_strategy("gradient_alignment", 3, floor=2.0), ValueError, "floor"),
    ("ga-reseed-float", lambda: make_strategy("gradient_alignment", 3).reseed(0.5), TypeError, "seed"),
    # ---- TaskSampler and ExampleStreams
    ("sampler-batch-bool", lambda: TaskSampler(S2, True), ValueError, "batch_size"),
    ("sampler-seed-float", lambda: TaskSampler(S2, 4, seed=1.7), ValueError, "seed"),
    ("sampler-seed-huge", lambda: TaskSampler(S2, 4, seed=2**64), ValueError, "seed"),
    ("sampler-sizes-float", lambda: TaskSampler(S2, 4, sizes=[3.0, 4]), ValueError, "sizes"),
    ("sampler-sizes-length", lambda: TaskSampler(S2, 4, sizes=[3]), ValueError, "sizes"),
    ("sampler-prefetch", lambda: TaskSampler(S2, 4, prefetch=0), ValueError, "prefetch"),
    ("sampler-schedule", lambda: TaskSampler({"a": 1.0}, 4), TypeError, "schedule"),
    ("sampler-skip-negative", lambda: TaskSampler(S2, 4).skip(-1), ValueError, "n_steps"),
    ("sampler-skip-far", lambda: TaskSampler(S2, 4).skip(10**13), ValueError, "n_steps"),
    ("sampler-draw-many-huge", lambda: TaskSampler(S2, 4).draw_many(10**9), ValueError, "n_steps"),
    ("streams-sizes-str", lambda: ExampleStreams("ab"), TypeError, "sizes"),
    ("streams-size-zero", lambda: ExampleStreams([3, 0]), ValueError, "sizes[1]"),
    ("streams-seed-float", lambda: ExampleStreams([3], seed=0.5), ValueError, "seed"),
    # ---- replay samplers: bounded positions (these hung: every earlier step was re-drawn one by one)
    ("batch-sampler-set-epoch-far", lambda: _batch_sampler().set_epoch(10**12), ValueError, "epoch"),
    ("batch-sampler-set-epoch-float", lambda: _batch_sampler().set_epoch(1.0), ValueError, "epoch"),
    ("batch-sampler-load-far", lambda: _batch_sampler().load_state_dict(_state_at(10**13)), ValueError, "state: step"),
    ("batch-sampler-state-dict-far", lambda: _batch_sampler().state_dict(step=2**40), ValueError, "step"),
    ("batch-sampler-seed-huge", lambda: _batch_sampler(seed=2**64), ValueError, "seed"),
    ("batch-sampler-record-int", lambda: _batch_sampler(record=1), TypeError, "record"),
    ("batch-sampler-num-steps-far", lambda: ScheduleBatchSampler(S2, [3, 5], 8, 2**40), ValueError, "num_steps"),
    ("batch-sampler-task-of-float", lambda: _batch_sampler().task_of([1.5]), TypeError, "indices"),
    ("batch-sampler-steps-drawn-float", lambda: _batch_sampler().steps_drawn(0.5), TypeError, "start"),
    ("sampler-set-epoch-far", lambda: ScheduleSampler(S2, [3, 5], 8, 10).set_epoch(10**12), ValueError, "epoch"),
    # ---- replay samplers: sizes that do not lay out the dataset (a task's rows would be read as another's)
    ("batch-sampler-sizes-sum", lambda: _batch_sampler(dataset=list(range(10))), ValueError, "sizes"),
    ("batch-sampler-sizes-parts", lambda: ScheduleBatchSampler(
        S2, [5, 3], 8, 10, dataset=ConcatDataset([list(range(3)), list(range(5))])), ValueError, "sizes"),
    ("batch-sampler-dataset-unsized", lambda: _batch_sampler(dataset=iter(range(8))), TypeError, "dataset"),
    ("sampler-sizes-sum", lambda: ScheduleSampler(S2, [3, 3], 8, 10, dataset=list(range(10))), ValueError, "sizes"),
    # ---- streaming
    ("stream-load-far", lambda: _stream().load_state_dict(_stream_state_at(10**13)), ValueError, "state: step"),
    ("stream-set-epoch-far", lambda: _stream().set_epoch(10**12), ValueError, "epoch"),
    ("stream-state-dict-far", lambda: _stream().state_dict(step=2**40), ValueError, "step"),
    ("stream-streams-str", lambda: ScheduleIterableDataset("ab", S2, 8), TypeError, "streams"),
    ("stream-stream-not-iterable", lambda: ScheduleIterableDataset([1, 2], S2, 8), TypeError, "streams["),
    ("stream-with-task-int", lambda: _stream(with_task=1), TypeError, "with_task"),
    ("stream-seed-float", lambda: _stream(seed=0.5), ValueError, "seed"),
    # ---- schedules and their tools
    ("schedule-from-weights-str-tasks", lambda: Schedule.from_weights("ab", [1.0, 1.0]), TypeError, "tasks"),
    ("schedule-from-weights-str-weights", lambda: Schedule.from_weights(["a", "b"], ["1", "1"]), TypeError, "weights"),
    ("schedule-row-index-float", lambda: S2.row_index(1.5), TypeError, "step"),
    ("schedule-mean-weights-huge", lambda: S2.mean_weights(10**20), ValueError, "total_steps"),
    ("scheduled-proportions-float", lambda: scheduled_proportions(S2, [1.5, 2.0]), TypeError, "steps"),
    ("describe-total-steps-huge", lambda: describe(S2, total_steps=2**60), ValueError, "total_steps"),
    ("diff-total-steps-huge", lambda: diff(S2, S2, total_steps=2**60), ValueError, "total_steps"),
    ("megatron-prefix-newline", lambda: megatron_data_path(S2, {"a": "/d/a\n--evil"}), ValueError, "prefix of task 'a'"),
    ("megatron-task-name-escape", lambda: megatron_data_path(Schedule.from_weights(["a\x1b[2J", "b"], [1, 1])),
     ValueError, "prefix of task"),
    ("megatron-prefixes-list", lambda: megatron_data_path(S2, ["a=x"]), TypeError, "prefixes"),
    ("rule-explicit-str", lambda: explicit(["a", "b"], ["1", 2]), TypeError, "weights[0]"),
    ("rule-temperature-bool", lambda: temperature(["a", "b"], {"a": 1, "b": 2}, temperature=True), ScheduleError,
     "temperature"),
    ("rule-sizes-str", lambda: proportional(["a", "b"], {"a": "5", "b": 2}), ScheduleError, "sizes"),
]


@pytest.mark.parametrize("call, exc, names", [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_refused_at_the_call_naming_the_argument(call: Callable[[], Any], exc: type[Exception], names: str) -> None:
    t0 = time.perf_counter()
    with pytest.raises(exc) as info:
        call()
    assert time.perf_counter() - t0 < 2.0  # refused at once, never after a long seek
    message = str(info.value)
    assert names in message, message
    assert "\n" not in message and len(message) < 400, message


def test_valid_uses_still_work() -> None:
    """numpy integers and floats are accepted wherever Python's are; ints are reals."""
    m = Mixer(("a", "b"), target="a", meta_steps=np.int64(2), steps_per_meta_step=np.int32(1), seed=np.uint64(3),
              lr=np.float32(0.05), sgd_steps=np.int16(10), epsilon=0, gamma=1, baseline_decay=0, prior=(1, 2))
    m.next_tasks(np.int64(4))
    m.end_meta_step(rewards=np.array([0, 1], dtype=np.int32))
    m.next_tasks(4)
    m.end_meta_step(reward=np.float32(0.5))
    assert m.done and np.isfinite(m.schedule().weights).all()
    sampler = ScheduleBatchSampler(S2, {"b": np.int64(5), "a": 3}, np.int64(8), 10, seed=np.uint32(1), record=np.bool_(True))
    sampler.set_epoch(np.int64(2))
    assert len(next(iter(sampler))) == 8
    assert make_strategy("thompson", 3, prior=[2, 3], decay=1).prior == (2.0, 3.0)


# ------------------------------------------------------------------ rewards -> a finite policy

finite_reward = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)


@PROPS
@given(
    rewards=st.lists(st.lists(finite_reward, min_size=3, max_size=3), min_size=1, max_size=4),
    lr=st.floats(1e-4, 10.0), sgd_steps=st.integers(1, 200), normalize=st.booleans(),
    baseline=st.sampled_from(["none", "moving_average"]), entropy=st.floats(0.0, 10.0),
    prior_pull=st.floats(0.0, 0.09), scalar=st.booleans(),
)
def test_any_finite_reward_in_range_gives_a_finite_policy(rewards, lr, sgd_steps, normalize, baseline, entropy,
                                                          prior_pull, scalar) -> None:
    m = Mixer(["a", "b", "c"], target="a", meta_steps=len(rewards), steps_per_meta_step=1, lr=lr, sgd_steps=sgd_steps,
              normalize=normalize, baseline=baseline, entropy=entropy, prior_pull=prior_pull, seed=0)
    for r in rewards:
        m.next_tasks(16)
        m.end_meta_step(reward=r[0]) if scalar else m.end_meta_step(rewards=r)
        assert np.isfinite(m.policy.logits).all()
    w = m.schedule().weights
    assert np.isfinite(w).all() and np.allclose(w.sum(axis=1), 1.0)


bad_reward = st.one_of(
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e308, -1e308, 10**400]),
    st.floats(min_value=1e12, exclude_min=True, allow_infinity=False),
    st.floats(max_value=-1e12, exclude_max=True, allow_infinity=False),
)
bad_kind = st.one_of(st.booleans(), st.text(max_size=3), st.none().map(lambda _: {"a": 1.0}))


@PROPS
@given(good=finite_reward, bad=st.one_of(bad_reward, bad_kind), where=st.integers(0, 1))
def test_an_invalid_reward_raises_and_changes_nothing(good, bad, where) -> None:
    m = _told()
    before = json.dumps(m.state_dict())
    rewards: list[Any] = [good, good]
    rewards[where] = bad
    with pytest.raises((TypeError, ValueError), match="reward"):
        m.end_meta_step(rewards=rewards)
    with pytest.raises((TypeError, ValueError), match="reward"):
        m.end_meta_step(reward=bad)
    assert json.dumps(m.state_dict()) == before


def test_a_diverging_update_is_refused_and_changes_nothing() -> None:
    p = Policy(2, 0, lr=1e300, sgd_steps=100, baseline="none", normalize=False)
    before = p.state_dict()
    with pytest.raises(NonFiniteRewardError, match="diverged"):
        p.update(0, [0.5, 0.5], [1e12, -1e12])
    assert p.state_dict() == before


# ------------------------------------------------------------------ fast seeks are exact


@PROPS
@given(n=st.integers(1, 40), k=st.integers(0, 3000), seed=st.integers(0, 2**32), zeros=st.integers(0, 3))
def test_counting_draws_is_drawing_them(n, k, seed, zeros) -> None:
    rng = np.random.default_rng(seed)
    p = rng.random(n) ** 3
    p[rng.integers(0, n, zeros)] = 0.0
    if p.sum() == 0:
        p[0] = 1.0
    a, b = np.random.default_rng(seed), np.random.default_rng(seed)
    drawn = np.bincount(categorical(a, p, k), minlength=n)
    assert np.array_equal(category_counts(b, p, k, chunk=997), drawn)
    assert a.random() == b.random()  # the generator moved exactly as far


@PROPS
@given(first=st.integers(0, 30), skip=st.integers(0, 60), per=st.sampled_from(["sample", "batch"]),
       prefetch=st.integers(1, 9), n=st.sampled_from([2, 3, 20]), seed=st.integers(0, 100))
def test_skip_is_exactly_that_many_steps(first, skip, per, prefetch, n, seed) -> None:
    w = np.random.default_rng(seed).random((3, n)) + 0.01
    sched = Schedule.from_weights([f"t{i}" for i in range(n)], w, 5)
    sizes = [1 + i % 4 for i in range(n)]
    a = TaskSampler(sched, 4, sizes, seed=seed, per=per, prefetch=prefetch)
    b = TaskSampler(sched, 4, sizes, seed=seed, per=per, prefetch=prefetch)
    for _ in range(first):
        a.next_batch()
        b.next_batch()
    counts = np.zeros(n, dtype=np.int64)
    for _ in range(skip):
        counts += np.bincount(a.next_batch()[0], minlength=n)
    assert np.array_equal(b.skip(skip), counts)
    assert a.step == b.step == first + skip
    for _ in range(12):  # the same draws and examples from here on (across blocks and passes)
        (ta, ea), (tb, eb) = a.next_batch(), b.next_batch()
        assert np.array_equal(ta, tb) and np.array_equal(ea, eb)


def test_a_far_seek_is_fast_and_exact() -> None:
    """set_epoch far ahead continues exactly as stepping there would, and seeking 2^26 samples takes well under
    a second or two (it used to re-draw every example, and set_epoch(10**12) never returned)."""
    torch.set_num_threads(1)
    sched = Schedule.from_weights(["a", "b", "c"], [[1, 2, 3], [3, 2, 1]], 1000)
    far = ScheduleBatchSampler(sched, [5, 7, 11], 64, 2**11)
    far.set_epoch(1)  # step 2^11
    stepped = TaskSampler(sched, 64, [5, 7, 11], seed=0, prefetch=2**11)  # one vectorised block, then served
    for _ in range(2**11):
        stepped.next_batch()
    tasks, examples = stepped.next_batch()
    assert next(iter(far)) == (far.offsets[tasks] + examples).tolist()
    assert far.steps_drawn().tolist() == [2**11] and far.task_counts().sum() == 64  # recorded sparsely
    t0 = time.perf_counter()
    far.set_epoch(2**9)  # step 2^20: 2^26 samples
    assert time.perf_counter() - t0 < 3.0
    assert far.step == 2**20


def test_a_stream_resumes_exactly_after_many_passes() -> None:
    class Stream:  # a re-iterable stream with set_epoch, like datasets.IterableDataset
        def __init__(self, name: str, n: int) -> None:
            self.name, self.n, self.epoch = name, n, 0

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch

        def __iter__(self):
            return iter([(self.name, self.epoch, i) for i in range(self.n)])

    def build() -> ScheduleIterableDataset:
        return ScheduleIterableDataset({"a": Stream("a", 3), "b": Stream("b", 1)}, S2, 4, 25, seed=7)

    whole = build()
    expected = list(whole)
    whole.set_epoch(1)
    expected += list(whole)
    resumed = build()
    resumed.load_state_dict(build().state_dict(step=31))
    resumed.set_epoch(1)
    assert list(resumed) == expected[31 * 4:]


# ------------------------------------------------------------------ schedule arithmetic is per row


@PROPS
@given(spm_a=st.integers(1, 7), spm_b=st.integers(1, 7), rows_a=st.integers(1, 5), rows_b=st.integers(1, 5),
       steps=st.integers(1, 60), seed=st.integers(0, 100))
def test_mean_weights_and_diff_equal_their_per_step_definitions(spm_a, spm_b, rows_a, rows_b, steps, seed) -> None:
    rng = np.random.default_rng(seed)
    a = Schedule.from_weights(["x", "y", "z"], rng.random((rows_a, 3)) + 0.01, spm_a)
    b = Schedule.from_weights(["y", "w"], rng.random((rows_b, 2)) + 0.01, spm_b)

    def per_step(s: Schedule, tasks: list[str]) -> np.ndarray:
        return np.array([[s.weights_at(i)[s.tasks.index(t)] if t in s.tasks else 0.0 for t in tasks]
                         for i in range(steps)])

    np.testing.assert_allclose(a.mean_weights(steps), per_step(a, list(a.tasks)).mean(axis=0), rtol=1e-12)
    d = diff(a, b, steps)
    wa, wb = per_step(a, d["tasks"]), per_step(b, d["tasks"])
    np.testing.assert_allclose(d["mean_a"], wa.mean(axis=0), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(d["mean_b"], wb.mean(axis=0), rtol=1e-12, atol=1e-15)
    gap = np.abs(wa - wb)
    worst = np.unravel_index(int(np.argmax(gap)), gap.shape)
    assert d["max_step_diff"] == gap.max()
    assert d["max_step_diff_at"] == {"step": int(worst[0]), "task": d["tasks"][int(worst[1])]}


def test_tools_on_a_huge_run_length_compute_per_row() -> None:
    t0 = time.perf_counter()
    assert diff(S2, S2, total_steps=2**50)["identical"]
    assert "mean over" in describe(S2, total_steps=2**50)
    np.testing.assert_allclose(S2.mean_weights(2**53), S2.weights[-1], atol=1e-12)
    assert time.perf_counter() - t0 < 1.0


# ------------------------------------------------------------------ exports cannot inject


def test_megatron_export_quotes_a_prefix_with_spaces_through_the_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from taskmix.cli import app

    Schedule.from_weights(["a", "b"], [0.25, 0.75]).save(tmp_path / "s.json")
    evil = "/data/t --evil x; rm -rf ~ $(id)"
    r = CliRunner().invoke(app, ["schedule", "export", str(tmp_path / "s.json"), "-f", "megatron",
                                 "--prefix", f"a={evil}", "--prefix", "b=/data/b_text_document"])
    assert r.exit_code == 0, r.output
    (line,) = r.stdout.splitlines()
    assert shlex.split(line) == ["0.25", evil, "0.75", "/data/b_text_document"]  # one argument per prefix
    assert megatron_data_path(S2, {"a": "/d/a_text"}, average=True).split()[1] == "/d/a_text"  # plain: unchanged


def test_seqio_export_keeps_task_names_inside_string_literals() -> None:
    sched = Schedule.from_weights(["a", "b\nimport os; os.system('x')"], [1.0, 0.0])
    source = seqio_mixtures(sched)
    compiled = compile(source, "<seqio>", "exec")
    assert "system" not in compiled.co_names and [ln for ln in source.splitlines() if ln.startswith("import")] == ["import seqio"]
