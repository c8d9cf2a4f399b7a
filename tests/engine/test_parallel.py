"""Data-parallel search on two CPU processes (gloo): same schedule on every rank, disjoint shards.

One spawned pair of processes (``torch.multiprocessing.spawn``, process group
initialised by the caller) runs several scenarios in turn: a fresh search, a
search that rank 0 refuses before it starts, a resume, and a loss that turns
non-finite on one rank only.  A second test runs the real command line under
``torchrun`` (process group initialised from the environment).
"""

from __future__ import annotations

import importlib
import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch

from _tiny import TINY_BUILTIN  # noqa: E402
from taskmix.runs import prepare_job
from taskmix.config import builtin_config
from taskmix.engine.parallel import LOCAL, connect
from taskmix.errors import ConfigError
from taskmix.runs import SearchRun
from taskmix.data import load_tasks

OVERRIDES = [
    *TINY_BUILTIN,
    # SGD: a gradient averaged with the wrong scale would change the run (Adam would hide it)
    "model.optimizer=sgd",
    "search.horizon=1",  # the search trains whole meta-steps of SPM steps
]
WORLD = 2
SPM = 20  # steps per meta-step
BS = 64  # train.batch_size: the global batch


def _steps(res: dict) -> list[tuple[np.ndarray, np.ndarray]]:
    """The global batch of each step, from the example streams' draws (however many steps a draw covers)."""
    if not res["global"]:
        return []
    t = np.concatenate([t for t, _ in res["global"]])
    e = np.concatenate([e for _, e in res["global"]])
    assert len(t) % BS == 0
    return list(zip(t.reshape(-1, BS), e.reshape(-1, BS)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------- the ranks


def _worker(rank: int, world: int, port: int, tmp: str) -> None:
    """One rank: run the scenarios, pickle what each rank saw to ``tmp/rank<r>.pkl``."""
    import taskmix.runs.search_run as search_mod
    from taskmix.runs.search_dir import run_search

    torch.set_num_threads(1)
    # as taskmix.distributed.connect does: torch._dynamo (imported by the first optimiser) must be imported
    # before the group exists, or the group outlives destroy_process_group and the exit can abort
    importlib.import_module("torch._dynamo")
    torch.distributed.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world, timeout=timedelta(seconds=60)
    )
    tmp_p = Path(tmp)
    cfg = builtin_config(OVERRIDES)
    tasks = load_tasks(cfg)
    rec: dict = {"global": [], "local": [], "loss": [], "params": None}
    nan_at: list[int] = []  # trainer steps at which this rank's loss turns NaN

    real_take, real_step = search_mod.SearchRun._draw_examples, search_mod.Trainer.train_step

    def take_for(self, task_ids):
        out = real_take(self, task_ids)
        rec["global"].append((task_ids.copy(), out.copy()))
        return out

    def train_step(self, task_ids, example_ids):
        rec["local"].append((task_ids.copy(), example_ids.copy()))
        if self.step in nan_at:
            real_loss = self.model.per_sample_loss
            self.model.per_sample_loss = lambda *a: real_loss(*a) * float("nan")
        try:
            value = real_step(self, task_ids, example_ids)
        finally:
            self.model.__dict__.pop("per_sample_loss", None)
        rec["loss"].append(value)
        rec["params"] = torch.cat([p.detach().reshape(-1) for p in self.model.parameters()]).clone()
        return value

    search_mod.SearchRun._draw_examples, search_mod.Trainer.train_step = take_for, train_step

    def out_dir(name: str) -> Path:  # rank 0 gets the real directory; the others must leave theirs absent
        return tmp_p / (name if rank == 0 else f"{name}-rank{rank}")

    def attempt(name: str, **kw):
        rec["global"], rec["local"], rec["loss"] = [], [], []
        try:
            res = run_search(cfg, tasks, out_dir(name), **kw)
            result = {"schedule": res.schedule.to_dict(), "log": res.log, "extra": res.extra, "error": None}
        except Exception as e:  # noqa: BLE001 - recorded and checked by the test
            result = {"error": (type(e).__name__, str(e))}
        return result | {"global": rec["global"], "local": rec["local"], "loss": rec["loss"], "params": rec["params"]}

    results = {"fresh": attempt("A")}
    results["refused"] = attempt("A")  # rank 0: already holds a search
    if rank == 0:  # a run interrupted after meta-step 2 of 3: drop the last checkpoint and the schedule
        shutil.copytree(tmp_p / "A", tmp_p / "C")
        (tmp_p / "C" / "schedule.json").unlink()
        (tmp_p / "C" / "checkpoints" / "ckpt-000003.ckpt").unlink()
    results["resumed"] = attempt("C", resume=True)
    if rank == 1:
        nan_at.append(5)
    results["nonfinite"] = attempt("D")
    results["hooks"] = _hooks(rank)
    with open(tmp_p / f"rank{rank}.pkl", "wb") as f:
        pickle.dump(results, f)
    torch.distributed.destroy_process_group()


def _hooks(rank: int) -> dict:
    """The collectives on their own: a head only rank 0's shard touched, one no shard touched."""
    from taskmix.engine.parallel import DataParallel

    d = DataParallel()
    both, only0, none = (torch.nn.Parameter(torch.zeros(3)) for _ in range(3))
    both.grad = torch.full((3,), float(rank + 1))
    only0.grad = torch.tensor([2.0, 4.0, 6.0]) if rank == 0 else None
    d.average_gradients([both, only0, none])
    sums, counts, loss = d.reduce_losses(torch.tensor([1.0 + rank, 0.0]), torch.tensor([2, rank]), torch.tensor(0.5 + rank))
    return {"both": both.grad, "only0": only0.grad, "none": none.grad, "mean": d.mean(np.array([float(rank), 1.0])),
            "sums": sums, "counts": counts, "loss": loss}


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dist")
    ctx = torch.multiprocessing.spawn(_worker, args=(WORLD, _free_port(), str(tmp)), nprocs=WORLD, join=False)
    deadline = time.monotonic() + 240
    while not ctx.join(timeout=5):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail("the two ranks did not finish within 240 s (a collective that never completed?)")
    out = []
    for r in range(WORLD):
        with open(tmp / f"rank{r}.pkl", "rb") as f:
            out.append(pickle.load(f))
    return tmp, out


# ---------------------------------------------------------------- the tests


def test_every_rank_ends_with_the_identical_schedule(ranks):
    tmp, (r0, r1) = ranks
    a, b = r0["fresh"], r1["fresh"]
    assert a["error"] is None and b["error"] is None, (a["error"], b["error"])
    assert a["schedule"] == b["schedule"]  # exact: weights, tasks, provenance
    assert [e["probs_after"] for e in a["log"]] == [e["probs_after"] for e in b["log"]]
    assert [e["train_loss"] for e in a["log"]] == [e["train_loss"] for e in b["log"]]
    assert a["extra"] == {"rank": 0, "world_size": 2} and b["extra"] == {"rank": 1, "world_size": 2}
    assert torch.equal(a["params"], b["params"])  # the models stayed identical
    assert a["loss"] == b["loss"]  # the global batch's loss, the same on every rank


def test_ranks_train_on_disjoint_shards_of_one_global_batch(ranks):
    tmp, (r0, r1) = ranks
    g0, g1 = _steps(r0["fresh"]), _steps(r1["fresh"])
    assert len(g0) == len(g1) == 3 * SPM
    offsets = np.array([0, 10_000, 20_000, 30_000])
    without_repeats = 0
    for step, ((t0, e0), (t1, e1)) in enumerate(zip(g0, g1)):
        np.testing.assert_array_equal(t0, t1)  # both ranks drew the same global batch
        np.testing.assert_array_equal(e0, e1)
        (lt0, le0), (lt1, le1) = r0["fresh"]["local"][step], r1["fresh"]["local"][step]
        assert len(lt0) == len(lt1) == len(t0) // 2
        np.testing.assert_array_equal(lt0, t0[0::2])  # rank r: positions r, r + 2, ...
        np.testing.assert_array_equal(le0, e0[0::2])
        np.testing.assert_array_equal(lt1, t0[1::2])
        np.testing.assert_array_equal(le1, e0[1::2])
        mine0, mine1, every = offsets[lt0] + le0, offsets[lt1] + le1, offsets[t0] + e0
        assert sorted(np.concatenate([mine0, mine1]).tolist()) == sorted(every.tolist())
        if len(set(every.tolist())) == len(every):  # no example twice in this batch (a pass can wrap)
            without_repeats += 1
            assert not set(mine0.tolist()) & set(mine1.tolist())
    assert without_repeats >= SPM  # the disjointness check above is not vacuous


def test_first_meta_step_matches_one_process(ranks):
    """Same draws as a single process, and (SGD) the same losses up to float rounding: averaging is right."""
    tmp, (r0, _) = ranks
    cfg = builtin_config(OVERRIDES)
    job = prepare_job(cfg, load_tasks(cfg), cfg.seed)
    run = SearchRun(job.tasks, job.target, job.reward_split, cfg, cfg.seed)
    assert run.dist is LOCAL and run.trainer.dist is LOCAL
    single = []
    real = run.trainer.train_step

    def record(t, e):
        single.append((t.copy(), e.copy(), real(t, e)))
        return single[-1][2]

    run.trainer.train_step = record
    entry = run.step_meta()
    dist_log = r0["fresh"]["log"][0]
    assert len(single) == SPM
    for (t, e, loss), (gt, ge), dloss in zip(single, _steps(r0["fresh"])[:SPM], r0["fresh"]["loss"][:SPM]):
        np.testing.assert_array_equal(t, gt)
        np.testing.assert_array_equal(e, ge)
        assert dloss == pytest.approx(loss, rel=1e-5)
    assert dist_log["realised"] == entry["realised"]
    np.testing.assert_allclose(dist_log["rewards"], entry["rewards"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(dist_log["task_train_loss"], entry["task_train_loss"], rtol=1e-5)


def test_only_rank_0_writes(ranks):
    tmp, _ = ranks
    assert (tmp / "A" / "schedule.json").is_file() and (tmp / "A" / "log.jsonl").is_file()
    assert len((tmp / "A" / "log.jsonl").read_text().splitlines()) == 3
    assert sorted(p.name for p in (tmp / "A" / "checkpoints").iterdir()) == ["ckpt-000002.ckpt", "ckpt-000003.ckpt"]
    assert not list(tmp.glob("*-rank1")), "rank 1 wrote under its --out"


def test_a_refusal_on_rank_0_stops_every_rank_with_its_message(ranks):
    _, (r0, r1) = ranks
    assert r0["refused"]["error"][0] == r1["refused"]["error"][0] == "ConfigError"
    assert r0["refused"]["error"][1] == r1["refused"]["error"][1]
    assert "already holds a search" in r0["refused"]["error"][1]
    assert r1["refused"]["global"] == []  # rank 1 trained nothing


def test_resume_hands_rank_0_checkpoint_to_every_rank(ranks):
    tmp, (r0, r1) = ranks
    fresh = r0["fresh"]
    for r in (r0, r1):
        res = r["resumed"]
        assert res["error"] is None, res["error"]
        assert res["schedule"] == fresh["schedule"]  # bit for bit, as an uninterrupted run
        assert len(_steps(res)) == len(res["loss"]) == SPM  # only meta-step 3 was trained again
        for (t, e), (ft, fe) in zip(_steps(res), _steps(fresh)[2 * SPM :]):
            np.testing.assert_array_equal(t, ft)
            np.testing.assert_array_equal(e, fe)
    assert json.loads((tmp / "C" / "schedule.json").read_text())["weights"] == fresh["schedule"]["weights"]


def test_a_non_finite_loss_on_one_rank_stops_every_rank(ranks):
    _, (r0, r1) = ranks
    e0, e1 = r0["nonfinite"]["error"], r1["nonfinite"]["error"]
    assert e0 is not None and e1 is not None
    assert e0[0] == e1[0] == "TrainingError"
    assert e0[1].startswith("search meta-step 1/3: training step 5: loss is non-finite on rank(s) [1] of 2")
    assert e1[1].startswith("rank 1, search meta-step 1/3: training step 5: loss is nan (non-finite) on task(s)")
    assert len(r0["nonfinite"]["loss"]) == 5  # steps 0..4 completed on both ranks


def test_collectives_average_and_keep_untouched_parameters_gradient_free(ranks):
    _, results = ranks
    for r in results:
        h = r["hooks"]
        assert torch.equal(h["both"], torch.full((3,), 1.5))
        assert torch.equal(h["only0"], torch.tensor([1.0, 2.0, 3.0]))  # rank 1 contributed zeros
        assert h["none"] is None  # the optimiser skips it, as in one process
        np.testing.assert_array_equal(h["mean"], [0.5, 1.0])
        assert torch.equal(h["sums"], torch.tensor([3.0, 0.0])) and h["sums"].dtype == torch.float32
        assert torch.equal(h["counts"], torch.tensor([4, 1])) and h["counts"].dtype == torch.int64
        assert h["loss"] == 1.0


# ------------------------------------------------------- the command line


def test_cli_search_under_torchrun(tmp_path, ranks):
    out = tmp_path / "s"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", "-m", "taskmix.cli", "search", "builtin", "--out", str(out)]
    for o in OVERRIDES:
        cmd += ["-o", o]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("schedule: ") == 1  # rank 0 reports, rank 1 is silent
    sched = json.loads((out / "schedule.json").read_text())
    spawned = ranks[1][0]["fresh"]["schedule"]
    assert sched["weights"] == spawned["weights"], (sched["weights"], spawned["weights"])  # the same run, to the bit


# ------------------------------------------------------------ set-up errors


def test_connect_without_a_job_is_local(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert connect() is LOCAL
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert connect() is LOCAL


@pytest.mark.parametrize(
    "env, message",
    [
        ({"WORLD_SIZE": "two"}, "WORLD_SIZE='two': expected an integer"),
        ({"WORLD_SIZE": "2"}, "RANK is not set; launch with torchrun"),
        ({"WORLD_SIZE": "2", "RANK": "2"}, r"RANK=2: expected an integer in \[0, 2\)"),
        ({"WORLD_SIZE": "2", "RANK": "0"}, "WORLD_SIZE=2 but MASTER_ADDR is not set"),
    ],
)
def test_connect_names_what_is_missing(monkeypatch, env, message):
    for k in ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError, match=message):
        connect()


def test_local_hooks_change_nothing():
    t, e = np.arange(8), np.arange(8, 16)
    assert LOCAL.shard(t, e) == (t, e)
    r = np.array([0.5, -1.0])
    assert LOCAL.mean(r) is r
    assert not LOCAL.active and LOCAL.is_main and LOCAL.world_size == 1
    sums, counts, loss = torch.tensor([1.5, 0.0]), torch.tensor([3, 0]), torch.tensor(0.25)
    out = LOCAL.reduce_losses(sums, counts, loss)
    assert out[0] is sums and out[1] is counts and out[2] == 0.25
