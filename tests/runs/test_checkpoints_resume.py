"""Resumable searches and comparisons, complete checkpoints, atomic files, determinism.

The acceptance test kills ``taskmix search`` subprocesses with SIGKILL at several
meta-steps (and once at a random moment), resumes them with ``--resume`` and
requires the uninterrupted run's schedule, bit for bit.
"""

from __future__ import annotations

from _tiny import KILL_RUN, SMALL_RUN, cli, ov  # noqa: E402
import dataclasses
import json
import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import taskmix.compare.runner as compare_mod
import taskmix.runs.search_run as search_mod
from taskmix.runs.checkpoint import checkpoints, decode_checkpoint, encode_checkpoint, load_checkpoint, load_latest
from taskmix.cli import app
from taskmix.runs import prepare_job
from taskmix.config import builtin_config
from taskmix.errors import ConfigError, OutputError, TrainingError
from taskmix.files import atomic_write_bytes, atomic_write_text
from taskmix.runs import SearchRun, run_search_dir
from taskmix.data import load_tasks
from taskmix.engine import train_with_schedule

REPO = Path(__file__).resolve().parents[2]

KILL_RUN, TINY = KILL_RUN, SMALL_RUN
_ov, _cli = ov, cli


def _log_without_timing(path: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in path.read_text().splitlines()]


def _assert_complete(out: Path) -> None:
    """Whatever a kill left behind is complete: checkpoints load, every log line parses."""
    for ck in checkpoints(out / "checkpoints"):
        payload = load_checkpoint(ck)  # checksum verified
        assert set(payload) >= {"config", "seed", "state"}
    if (out / "log.jsonl").exists():
        for line in (out / "log.jsonl").read_text().splitlines():
            json.loads(line)
    if (out / "schedule.json").exists():
        json.loads((out / "schedule.json").read_text())


# --------------------------------------------------------------- SIGKILL


def _spawn(out: Path) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TASKMIX_PROGRESS": "0"}
    cmd = [sys.executable, "-m", "taskmix.cli", "search", "builtin", "--out", str(out), *_ov(KILL_RUN)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=out.parent)


def test_sigkill_at_any_meta_step_then_resume_gives_the_same_schedule(tmp_path: Path) -> None:
    """Acceptance: kill -9 mid-search (after checkpoint k, and at a random moment), resume, same schedule."""
    seed = random.randrange(2**32)
    rnd = random.Random(seed)
    after_ckpt = [1, 4, 8]  # kill as soon as DIR/checkpoints/ckpt-<k> appears (the run is then in meta-step k+1)
    random_delay = rnd.uniform(0.0, 0.8)  # seconds after the first checkpoint: anywhere, even mid-write
    jobs: dict[str, dict] = {}
    for k in after_ckpt:
        jobs[f"k{k}"] = {"out": tmp_path / f"k{k}", "ckpt": k}
    jobs["random"] = {"out": tmp_path / "random", "ckpt": 1, "delay": random_delay}
    for job in jobs.values():  # all at once: two cores, mostly import time
        job["proc"] = _spawn(job["out"])

    def last_index(out: Path) -> int:
        found = checkpoints(out / "checkpoints")
        return int(found[-1].stem.split("-")[1]) if found else 0

    deadline = time.monotonic() + 120
    pending = dict(jobs)
    while pending:
        assert time.monotonic() < deadline, f"runs did not reach their kill points: {list(pending)}"
        for name, job in list(pending.items()):
            if "seen" not in job and last_index(job["out"]) >= job["ckpt"]:
                job["seen"] = time.monotonic()
            if "seen" in job and time.monotonic() - job["seen"] >= job.get("delay", 0.0):
                job["proc"].send_signal(signal.SIGKILL)
                job["rc"] = job["proc"].wait()
                del pending[name]
            elif job["proc"].poll() is not None:
                if name == "random" and job["proc"].returncode == 0:  # finished before its random moment
                    job["rc"] = 0
                    del pending[name]
                    continue
                pytest.fail(f"{name} exited with {job['proc'].returncode} before its kill point: "
                            f"{job['proc'].stderr.read().decode()}")
        time.sleep(0.002)

    # the uninterrupted reference, in this process
    ref = tmp_path / "ref"
    code, err = _cli("search", "builtin", "--out", str(ref), *_ov(KILL_RUN))
    assert code == 0, err

    reference = json.loads((ref / "schedule.json").read_text())
    for name, job in jobs.items():
        out = job["out"]
        job["proc"].stderr.close()
        if name != "random":
            assert job["rc"] == -signal.SIGKILL, f"{name}: the run ended before the kill (rc {job['rc']})"
            assert not (out / "schedule.json").exists()
        _assert_complete(out)
        code, err = _cli("search", "builtin", "--out", str(out), "--resume", *_ov(KILL_RUN))
        assert code == 0, f"{name} (random seed {seed}): {err}"
        resumed = json.loads((out / "schedule.json").read_text())
        assert resumed["weights"] == reference["weights"], f"{name} (random seed {seed}): weights differ"
        assert resumed == reference
        assert _log_without_timing(out / "log.jsonl") == _log_without_timing(ref / "log.jsonl")
        assert not list(out.rglob("*.tmp")), f"{name}: temporary files left after the resume"
        assert [p.name for p in checkpoints(out / "checkpoints")] == ["ckpt-000009.ckpt", "ckpt-000010.ckpt"]


# --------------------------------------------------- state round trips


@pytest.fixture(scope="module")
def tiny_tasks():
    cfg = builtin_config(TINY)
    return load_tasks(cfg)


def _fresh(cfg, tasks) -> SearchRun:
    job = prepare_job(cfg, tasks, cfg.seed)
    return SearchRun(job.tasks, job.target, job.reward_split, cfg, cfg.seed)


def _logs(run: SearchRun) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "seconds"} for e in run.log]


@pytest.mark.parametrize(
    "extra, stop_after",
    [
        # time-variant rows, two rounds (the second starts from a fresh model), dropout (torch RNG in training)
        (["search.policy=time_variant", "search.rounds=2", "model.dropout=0.3"], 6),
        (["search.policy=time_variant", "search.rounds=2", "model.dropout=0.3"], 8),
        # one task per batch and two steps per meta-step: most tasks are not drawn in a meta-step, so the
        # per-task training losses carry over; the shuffled control draws from the reward's RNG
        (["train.per=batch", "search.reward=shuffled:gradient_alignment", "search.baseline_decay=0.5"], 3),
        (["search.reward=lookahead", "search.probe_steps=2", "model.optimizer=sgd"], 2),
        # the mixture probes draw their common random numbers from the reward's RNG, with dropout on
        (["search.reward=mixture_lookahead", "search.probe_steps=2", "model.dropout=0.3"], 3),
        # cross-fitting: the reward fold and the target's fold-complement streams carry over
        (["search.reward_folds=3", "search.policy=time_variant"], 4),
        # a proportional prior, pulled toward: the prior's logits are part of the policy's state
        (["search.prior=proportional", "search.prior_pull=0.5", "search.policy=time_variant",
          "search.time_variant_init=uniform"], 2),
        # the decayed learning rate follows the step count, which the trainer's state holds
        (["model.lr_decay=cosine", "model.dropout=0.2"], 3),
    ],
    ids=["time-variant-round-boundary", "time-variant-mid-round-2", "per-batch-shuffled", "lookahead-sgd",
         "mixture-lookahead-dropout", "cross-fitting", "proportional-prior", "cosine-lr-decay"],
)
def test_state_dict_round_trip_resumes_bit_for_bit(tiny_tasks, extra, stop_after) -> None:
    cfg = builtin_config(TINY + extra)
    full = _fresh(cfg, tiny_tasks)
    full.run()

    first = _fresh(cfg, tiny_tasks)
    for _ in range(stop_after):
        first.step_meta()
    blob = encode_checkpoint({"state": first.state_dict()})  # the checkpoint format: JSON + safetensors, no pickle
    # a new process: every global RNG elsewhere
    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)
    second = _fresh(cfg, tiny_tasks)
    second.load_state_dict(decode_checkpoint(blob)["state"])
    second.run()

    np.testing.assert_array_equal(second.schedule().weights, full.schedule().weights)
    assert _logs(second) == _logs(full)
    for a, b in zip(second.trainer.model.state_dict().values(), full.trainer.model.state_dict().values()):
        assert torch.equal(a, b)
    assert second.policy.state_dict() == full.policy.state_dict()


def test_checkpoint_holds_the_whole_search_state(tmp_path: Path, tiny_tasks) -> None:
    cfg = builtin_config(TINY)
    run_search_dir(cfg, tiny_tasks, tmp_path / "s", keep=3)
    ckpts = checkpoints(tmp_path / "s" / "checkpoints")
    assert [p.name for p in ckpts] == ["ckpt-000004.ckpt", "ckpt-000005.ckpt", "ckpt-000006.ckpt"]  # --keep-checkpoints 3
    payload = load_checkpoint(ckpts[-1])
    state = payload["state"]
    assert payload["seed"] == cfg.seed and payload["config"] == cfg.fingerprint()
    assert set(payload["data"]) == {"target", "helpful", "harmful", "irrelevant", "reward_split"}
    assert set(state["trainer"]) == {"model", "optimizer", "step"}
    assert state["trainer"]["optimizer"]["state"], "the optimiser's moments are saved"
    mixer = state["mixer"]  # the policy and its draw stream live in the Mixer that taskmix search drives
    assert set(mixer["policy"]) == {"logits", "prior", "baseline", "scale", "updates"}
    assert mixer["policy"]["scale"] is not None and mixer["policy"]["baseline"] is not None
    assert mixer["rng"] is not None and mixer["meta_step"] == 6
    for key in ("probe_rng", "torch_rng", "numpy_rng", "python_rng", "streams", "last_losses"):
        assert state[key] is not None, key
    assert state["streams"]["cursors"] and state["streams"]["passes"]
    assert (state["round"], state["meta_step"], state["total_steps"], state["reward_evals"]) == (1, 0, cfg.search_steps, 6)
    assert cfg.search_steps == cfg.train.steps // 2  # search.horizon 0.5
    assert len(state["log"]) == 6
    mode = stat.S_IMODE(os.stat(tmp_path / "s" / "schedule.json").st_mode)
    assert mode == 0o666 & ~_umask(), oct(mode)


def _umask() -> int:
    m = os.umask(0o022)
    os.umask(m)
    return m


# ------------------------------------------------- refusing to resume


def test_resume_refuses_changed_data(tmp_path: Path, tiny_tasks) -> None:
    cfg = builtin_config(TINY)
    run_search_dir(cfg, tiny_tasks, tmp_path / "s")
    fewer = list(tiny_tasks)
    fewer[1] = dataclasses.replace(fewer[1], train=fewer[1].train.take(np.arange(40)))
    with pytest.raises(ConfigError, match=r"cannot resume.*data: helpful\.n_train"):
        run_search_dir(cfg, fewer, tmp_path / "s", resume=True)


def test_resume_falls_back_to_the_previous_checkpoint_and_refuses_when_none_is_readable(tmp_path: Path, tiny_tasks) -> None:
    cfg = builtin_config(TINY)
    out = tmp_path / "s"
    reference = run_search_dir(cfg, tiny_tasks, out).schedule
    newest = checkpoints(out / "checkpoints")[-1]
    newest.write_bytes(newest.read_bytes()[:100])  # torn (as by a disk failure, not by taskmix)
    assert load_latest(out / "checkpoints")["path"].endswith("ckpt-000005.ckpt")
    (out / "schedule.json").unlink()
    assert run_search_dir(cfg, tiny_tasks, out, resume=True).schedule == reference
    for p in checkpoints(out / "checkpoints"):
        p.write_bytes(b"garbage")
    with pytest.raises(OutputError, match="no readable checkpoint among 2 file"):
        run_search_dir(cfg, tiny_tasks, out, resume=True)


def test_resume_removes_temporary_files_of_killed_writes(tmp_path: Path, tiny_tasks) -> None:
    cfg = builtin_config(TINY)
    out = tmp_path / "s"
    run_search_dir(cfg, tiny_tasks, out)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a process that is gone: its temporary files are stale
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    stale = [out / f".log.jsonl.taskmix-{dead.pid}-abc12_yz.tmp",
             out / "checkpoints" / f".ckpt-000007.ckpt.taskmix-{dead.pid}-x9yz0000.tmp"]
    old = out / f".schedule.json.taskmix-{live.pid}-k2j4m5n6.tmp"  # a live pid (reused?) but two hours old
    # not taskmix's temporary files (no ``taskmix-<pid>-<8 random>`` marker): never touched, however old
    users = [out / ".mynotes.tmp", out / f".log.jsonl.{dead.pid}.abc123.tmp", out / ".x.taskmix-1-short.tmp",
             out / "checkpoints" / f".taskmix-{dead.pid}-abcdefgh.tmp"]
    for p in [*stale, old, *users]:
        p.write_bytes(b"half")
    for p in [old, *users]:
        os.utime(p, (time.time() - 7200, time.time() - 7200))
    try:
        theirs = out / f".log.jsonl.taskmix-{live.pid}-q1w2e3r4.tmp"  # another live process's, recent: never touched
        theirs.write_bytes(b"half")
        keep = out / "notes.txt"
        keep.write_text("mine")
        run_search_dir(cfg, tiny_tasks, out, resume=True)
        assert not any(p.exists() for p in [*stale, old]) and keep.read_text() == "mine"
        assert theirs.exists() and all(p.read_bytes() == b"half" for p in users)
    finally:
        live.kill()
        live.wait()


# ---------------------------------------------------- failing mid-run


def test_non_finite_reward_is_a_training_error_and_keeps_the_checkpoint(tmp_path: Path, tiny_tasks, monkeypatch) -> None:
    real = search_mod.make_reward

    class NanOnThirdCall:
        def __init__(self, reward):
            self.reward, self.name, self.per_task, self.calls = reward, reward.name, reward.per_task, 0
            self.cross_fit = reward.cross_fit

        def __call__(self, ctx):
            self.calls += 1
            r = self.reward(ctx)
            return r * np.nan if self.calls == 3 else r

    monkeypatch.setattr(search_mod, "make_reward", lambda name, s: NanOnThirdCall(real(name, s)))
    out = tmp_path / "s"
    with pytest.raises(TrainingError, match=r"search meta-step 3/6: training step \d+: gradient_alignment reward is non-finite on task\(s\) \[.target., .helpful., .harmful., .irrelevant.\].*ckpt-000002\.ckpt is kept"):
        run_search_dir(builtin_config(TINY), tiny_tasks, out)
    assert [p.name for p in checkpoints(out / "checkpoints")] == ["ckpt-000001.ckpt", "ckpt-000002.ckpt"]
    assert len((out / "log.jsonl").read_text().splitlines()) == 2
    assert not (out / "schedule.json").exists()


def test_failure_in_the_first_meta_step_creates_no_output(tmp_path: Path, tiny_tasks, monkeypatch) -> None:
    def diverge(self, task_ids, example_ids):
        raise TrainingError(f"training step {self.step}: loss is nan (non-finite) on task(s) ['helpful']")

    monkeypatch.setattr(search_mod.Trainer, "train_step", diverge)
    with pytest.raises(TrainingError, match=r"^search meta-step 1/6: training step 0: .*\['helpful'\]$"):
        run_search_dir(builtin_config(TINY), tiny_tasks, tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_atomic_write_leaves_the_old_file_when_interrupted(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "f.json"
    atomic_write_text(target, "old")

    def fail(*_a):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new" * 1000)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_io_failure_is_one_line_with_exit_code_1(tmp_path: Path, monkeypatch) -> None:
    def fail(*_a):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", fail)
    out = tmp_path / "s"
    code, err = _cli("search", "builtin", "--out", str(out), *_ov(TINY))
    assert code == 1 and err == f"error: {out}/log.jsonl: No space left on device\n", err
    # no log, checkpoint or temporary file; only TensorBoard's event file (appended record by record)
    assert [p.relative_to(out).parts[0] for p in out.rglob("*") if p.is_file()] == ["tb"]


# ------------------------------------------------------------ compare


def test_compare_resume_skips_finished_cells(tmp_path: Path, monkeypatch) -> None:
    args = ["compare", "builtin", "--seeds", "2", "--methods", "uniform,single_task", *_ov(TINY)]
    code, err = _cli(*args, "--out", str(tmp_path / "full"))
    assert code == 0, err

    real = compare_mod.run_method
    calls: list[tuple[str, int]] = []

    def killed_after_three(cfg, tasks, method, seed):
        if len(calls) == 3:
            raise KeyboardInterrupt  # as a kill after the third cell was recorded
        calls.append((method, seed))
        return real(cfg, tasks, method, seed)

    monkeypatch.setattr(compare_mod, "run_method", killed_after_three)
    part = tmp_path / "part"
    code, err = _cli(*args, "--out", str(part))
    assert code == 130 and "interrupted" in err
    assert len((part / "rows.jsonl").read_text().splitlines()) == 3
    assert not (part / "results.json").exists()

    code, err = _cli(*args, "--out", str(part))
    assert code == 2 and "already holds a comparison; use --resume" in err

    calls.clear()
    code, err = _cli(*args, "--out", str(part), "--resume")
    assert code == 0, err
    assert calls == [("single_task", 1)]  # only the unfinished cell ran
    full = json.loads((tmp_path / "full" / "results.json").read_text())
    resumed = json.loads((part / "results.json").read_text())
    strip = lambda rows: [(r["method"], r["seed"], r["test"], r["train_steps"]) for r in rows]  # noqa: E731
    assert strip(resumed["rows"]) == strip(full["rows"])


# -------------------------------------------------------- determinism


def test_same_seed_same_schedule_and_metrics_different_seed_differs(tiny_tasks) -> None:
    def search_then_train(seed: int):
        cfg = builtin_config(TINY + [f"seed={seed}"])
        run = _fresh(cfg, tiny_tasks)
        res = run.run()
        job = prepare_job(cfg, tiny_tasks, seed)
        metrics = train_with_schedule(job.tasks, job.target, res.schedule, cfg, seed)
        return res, metrics

    (a, ma), (b, mb), (c, mc) = search_then_train(5), search_then_train(5), search_then_train(6)
    np.testing.assert_array_equal(a.schedule.weights, b.schedule.weights)
    assert [{k: v for k, v in e.items() if k != "seconds"} for e in a.log] == [
        {k: v for k, v in e.items() if k != "seconds"} for e in b.log
    ]
    assert (ma.test, ma.realised) == (mb.test, mb.realised)
    np.testing.assert_equal(ma.final_train_loss, mb.final_train_loss)  # NaN (equal) for a task dropped to weight 0
    assert not np.array_equal(a.schedule.weights, c.schedule.weights)
    assert ma.realised != mc.realised



def test_a_run_made_before_a_setting_existed_resumes_with_its_old_value_and_only_then() -> None:
    from taskmix.errors import ConfigError
    from taskmix.runs.checkpoint import check_compatible

    old = {"config": {"search": {"lr": 0.02}, "train": {"steps": 10}}, "seed": 0}
    check_compatible(old, {"search": {"lr": 0.02, "min_weight": 0.0}, "train": {"steps": 10}}, 0, "run")
    with pytest.raises(ConfigError, match=r"search.min_weight \(added since this run: set search.min_weight=0.0"):
        check_compatible(old, {"search": {"lr": 0.02, "min_weight": 0.05}, "train": {"steps": 10}}, 0, "run")
    with pytest.raises(ConfigError, match="search.lr"):
        check_compatible(old, {"search": {"lr": 0.03, "min_weight": 0.0}, "train": {"steps": 10}}, 0, "run")
    saved_new = {"config": {"search": {"lr": 0.02, "min_weight": 0.05}, "train": {"steps": 10}}, "seed": 0}
    with pytest.raises(ConfigError, match="search.min_weight"):  # recorded in the run: an ordinary difference
        check_compatible(saved_new, {"search": {"lr": 0.02, "min_weight": 0.0}, "train": {"steps": 10}}, 0, "run")


def test_a_comparison_made_before_credit_proportional_resumes_with_the_default_credit_settings() -> None:
    """search.credit_window and credit_temperature only shape credit_proportional, which older runs never ran: their defaults resume them."""
    from taskmix.config import builtin_config
    from taskmix.errors import ConfigError
    from taskmix.runs.checkpoint import check_compatible

    now = builtin_config().fingerprint()
    old = {"config": {**now, "search": {k: v for k, v in now["search"].items() if k not in ("credit_window", "credit_temperature")}}, "seed": 0}
    check_compatible(old, now, 0, "run")
    changed = builtin_config(["search.credit_window=3"]).fingerprint()
    with pytest.raises(ConfigError, match=r"search.credit_window \(added since this run: set search.credit_window=2"):
        check_compatible(old, changed, 0, "run")
