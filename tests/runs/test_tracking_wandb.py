"""Weights & Biases tracking, offline (no network): every compare cell and a search, read back from the run files;
no duplicated run or (key, step) point on resume."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _tiny import TINY_BUILTIN  # noqa: E402
from _wandb_files import offline_runs, points  # noqa: E402

from taskmix.config import builtin_config  # noqa: E402
from taskmix.data import load_run_tasks  # noqa: E402
from taskmix.errors import ConfigError  # noqa: E402

wandb = pytest.importorskip("wandb")

METHODS = ("single_task", "uniform", "learned_time_invariant")


@pytest.fixture
def wb(tmp_path, monkeypatch):
    """Offline, silent W&B writing under a fresh directory (given to the config as logging.wandb.dir)."""
    for var in ("WANDB_API_KEY", "WANDB_ENTITY", "WANDB_PROJECT", "WANDB_RUN_ID", "WANDB_RESUME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wb"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wb-config"))  # no user settings file
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wb-cache"))
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wb-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # wandb-core's own logs, not under ~/.cache
    (tmp_path / "wb").mkdir()
    yield tmp_path / "wb"
    wandb.teardown()  # the next test's wandb.init reads its own environment


def _read(wb: Path) -> list[dict]:
    """The offline runs under ``wb``, once W&B has written them out: ``run.finish()`` returns before its service has
    flushed the run's file, ``wandb.teardown()`` waits for it."""
    wandb.teardown()
    return offline_runs(wb)


def test_compare_logs_one_run_per_cell_and_a_resume_adds_nothing(tmp_path, wb, capsys):
    from taskmix.compare.runner import run_compare
    from taskmix.compare.stats import method_kind

    ov = [*TINY_BUILTIN, f"compare.methods=[{','.join(METHODS)}]", "compare.recommend=false", "logging.wandb.project=t",
          f"logging.wandb.dir={wb}"]
    cfg = builtin_config(ov)  # mode: unset, so $WANDB_MODE (offline)
    tasks = load_run_tasks(cfg)
    run_compare(cfg, tasks, tmp_path / "c", seeds=2)
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("wandb:")]
    assert said == [f"wandb: 6 runs saved offline in {wb / 'wandb'}; upload with: wandb sync {wb / 'wandb'}/offline-run-*-taskmix-*"]
    runs = _read(wb)
    assert sorted(r["name"] for r in runs) == sorted(f"{m}-seed{s}" for m in METHODS for s in (0, 1))
    assert len({r["id"] for r in runs}) == len(runs) == 6
    rows = {f"{r['method']}-seed{r['seed']}": r for r in json.loads((tmp_path / "c" / "results.json").read_text())["rows"]}
    for r in runs:  # baselines included: the final metric of every method, its settings, a finished run
        row = rows[r["name"]]
        assert r["project"] == "t" and r["exit_code"] == 0
        assert r["summary"]["final/test_accuracy"] == pytest.approx(row["test"])
        assert r["summary"]["final/seconds"] == pytest.approx(row["seconds"])
        assert r["summary"]["final/train_steps"] == row["train_steps"]
        assert (r["config"]["method"], r["config"]["seed"], r["config"]["train"]) == (row["method"], row["seed"], {"steps": 60})
        assert r["config"]["kind"] == method_kind(row["method"]) != "" and r["config"]["taskmix"]["command"] == "compare"
    by = {r["name"]: r for r in runs}
    learned = by["learned_time_invariant-seed0"]
    history = [(row["_step"], row["reward_split_accuracy"]) for row in learned["history"] if "reward_split_accuracy" in row]
    log = [json.loads(line) for line in (tmp_path / "c" / "logs" / "learned_time_invariant-seed0.jsonl").read_text().splitlines()]
    assert history == [(e["step"], pytest.approx(e["reward_split_accuracy"])) for e in log]  # one point per meta-step
    assert [row["weight/helpful"] for row in learned["history"]] == pytest.approx([e["probs_after"][1] for e in log])
    assert not by["uniform-seed0"]["history"]  # a baseline has no per-meta-step log
    before = sorted((r["id"], sorted(points(r))) for r in runs)  # one entry per run file
    assert all(len(p) == len(set(p)) for _, p in before)
    assert len(json.loads((tmp_path / "c" / "wandb_runs.json").read_text())["runs"]) == 6

    # resume (every cell done), also with the mode now given in the config: no new run, no new point
    run_compare(builtin_config([*ov, "logging.wandb.mode=offline"]), tasks, tmp_path / "c", seeds=2, resume=True)
    assert sorted((r["id"], sorted(points(r))) for r in _read(wb)) == before
    assert "wandb:" not in capsys.readouterr().err

    # the record lost: the rows read back from rows.jsonl log under the same ids (online: the same runs, resumed)
    (tmp_path / "c" / "wandb_runs.json").unlink()
    run_compare(builtin_config(ov), tasks, tmp_path / "c", seeds=2, resume=True)
    assert sorted(r["id"] for r in _read(wb)) == sorted(2 * [i for i, _ in before])


def test_search_logs_one_run_and_resume_does_not_duplicate(tmp_path, wb):
    from taskmix.runs.search_dir import run_search_dir

    cfg = builtin_config([*TINY_BUILTIN, "logging.wandb.project=t", f"logging.wandb.dir={wb}", "logging.wandb.mode=offline"])
    tasks = load_run_tasks(cfg)
    out = tmp_path / "s"
    run_search_dir(cfg, tasks, out)
    (out / "schedule.json").unlink()
    sorted((out / "checkpoints").glob("ckpt-*.ckpt"))[-1].unlink()
    run_search_dir(cfg, tasks, out, resume=True)  # re-runs the last meta-step, then logs nothing new
    runs = _read(wb)
    assert len(runs) == 1 and runs[0]["config"]["policy"] == "time_invariant" and runs[0]["name"] == "search-seed0"
    assert [row["_step"] for row in runs[0]["history"] if "weight/helpful" in row] == [10, 20, 30]  # horizon 0.5
    assert sum(runs[0]["summary"][f"final/weight/{t}"] for t in cfg.task_names()) == pytest.approx(1.0)
    assert len(points(runs[0])) == len(set(points(runs[0])))


def test_a_lost_record_logs_the_same_run_id_again(tmp_path, wb):
    """The run id is a digest of what is logged: the same results reach the same W&B run, other ones a new run."""
    from taskmix.runs.tracking import track_compare

    cfg = builtin_config([*TINY_BUILTIN, "logging.wandb.project=t", f"logging.wandb.dir={wb}"])
    row = {"method": "uniform", "seed": 0, "test": 0.5, "seconds": 1.0, "train_steps": 60}
    first = track_compare(cfg, tmp_path / "c", [row], "accuracy")
    assert len(first) == 1 and track_compare(cfg, tmp_path / "c", [row], "accuracy") == []
    (tmp_path / "c" / "wandb_runs.json").unlink()
    assert track_compare(cfg, tmp_path / "c", [row], "accuracy") == first
    other = track_compare(cfg, tmp_path / "d", [row | {"seconds": 2.0}], "accuracy")  # a fresh run elsewhere
    assert len(other) == 1 and other != first
    other_project = track_compare(builtin_config([*TINY_BUILTIN, "logging.wandb.project=u", f"logging.wandb.dir={wb}"]),
                                  tmp_path / "c", [row], "accuracy")
    assert other_project == first  # not logged to project u yet: logged there, under the same id
    assert sorted(r["project"] for r in _read(wb)) == ["t", "t", "t", "u"]


def test_trainer_report_to_wandb_receives_the_task_proportions(tmp_path, wb, monkeypatch):
    """The Hugging Face route: ScheduleTrainer (with a TaskProportionCallback) adds the proportions to each log before
    W&B's callback sees it."""
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    import torch
    from torch import nn
    from torch.utils.data import Dataset

    from taskmix.hf import ScheduleTrainer, TaskProportionCallback
    from taskmix.schedule import Schedule

    class Toy(Dataset):
        def __init__(self, task: int, n: int):
            self.task, self.n = task, n

        def __len__(self) -> int:
            return self.n

        def __getitem__(self, i: int) -> dict:
            return {"x": torch.tensor([float(i), float(self.task)]), "labels": self.task}

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(2, 2)

        def forward(self, x: torch.Tensor, labels: torch.Tensor) -> dict:
            logits = self.linear(x)
            return {"loss": nn.functional.cross_entropy(logits, labels), "logits": logits}

    monkeypatch.setenv("WANDB_PROJECT", "hf")
    monkeypatch.setenv("WANDB_LOG_MODEL", "false")
    monkeypatch.setenv("WANDB_WATCH", "false")
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "hf"), per_device_train_batch_size=8, max_steps=20, logging_steps=10,
        learning_rate=1e-3, report_to=["wandb"], use_cpu=True, save_strategy="no", disable_tqdm=True, seed=0,
    )
    train = torch.utils.data.ConcatDataset([Toy(0, 40), Toy(1, 40)])
    trainer = ScheduleTrainer(model=Model(), args=args, train_dataset=train, schedule=Schedule.from_weights(["a", "b"], [0.75, 0.25]),
                              task_sizes=[40, 40], callbacks=[TaskProportionCallback()])
    trainer.train()
    wandb.finish()
    (run,) = _read(wb)
    logged = [row for row in run["history"] if "train/loss" in row]
    assert len(logged) == 2
    for row in logged:
        assert {f"train/taskmix/{k}/{t}" for k in ("realised", "scheduled") for t in "ab"} <= set(row)
        assert row["train/taskmix/scheduled/a"] == pytest.approx(0.75)
        assert row["train/taskmix/realised/a"] + row["train/taskmix/realised/b"] == pytest.approx(1.0)


def test_online_without_credentials_is_a_one_line_error_that_a_resume_recovers_from(tmp_path, wb, monkeypatch):
    from taskmix.runs.tracking import track_compare

    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.netrc, no ~/.config/wandb
    monkeypatch.setenv("NETRC", str(tmp_path / "home" / ".netrc"))
    cfg = builtin_config([*TINY_BUILTIN, "logging.wandb.project=t", f"logging.wandb.dir={wb}", "logging.wandb.mode=online"])
    row = {"method": "uniform", "seed": 0, "test": 0.5, "seconds": 1.0, "train_steps": 60}
    with pytest.raises(ConfigError, match=r"^logging\.wandb: .*(API key|log in|login).* \(the results are saved; rerun with "
                                          r"--resume to log them\)$") as e:
        track_compare(cfg, tmp_path / "c", [row], "accuracy")
    assert "\n" not in str(e.value) and not (tmp_path / "c" / "wandb_runs.json").exists()
    offline = builtin_config([*TINY_BUILTIN, "logging.wandb.project=t", f"logging.wandb.dir={wb}", "logging.wandb.mode=offline"])
    assert len(track_compare(offline, tmp_path / "c", [row], "accuracy")) == 1


def test_a_resumed_online_run_is_sent_only_the_steps_it_lacks(tmp_path):
    """Online, the same id resumes the W&B run; the steps before its ``run.step`` (W&B's next step) are not sent again."""
    from types import SimpleNamespace

    from taskmix.runs.tracking_wandb import WandbTracker

    sent: list = []

    class Run:
        resumed, step, sync_dir, project_url = True, 41, str(tmp_path), "https://wandb.example/p"
        summary: dict = {}

        def log(self, values, step):
            sent.append((step, values))

        def finish(self, exit_code):
            sent.append(("finish", exit_code))

    fake = SimpleNamespace(init=lambda **kw: Run(), Settings=dict, errors=SimpleNamespace(Error=RuntimeError))
    tracker = WandbTracker("p", None, "online", None, tmp_path / "out")
    tracker.wandb = fake
    series = [(20, {"a": 1.0}), (60, {"a": 3.0}), (40, {"a": 2.0})]
    assert tracker.log_run("k", "n", {"seed": 0}, {"final/x": 1.0}, series) is not None
    assert sent == [(60, {"a": 3.0}), ("finish", 0)] and Run.summary == {"final/x": 1.0}
    assert tracker.log_run("k", "n", {"seed": 0}, {"final/x": 1.0}, series) is None  # recorded: not sent again
