"""Hardening of run directories: no code runs from them, corruption is detected, one writer at a time, no links followed.

* a pickle planted as every checkpoint file, or as ``rows.jsonl``, is never
  unpickled (a marker file its ``__reduce__`` would create never appears);
* bytes flipped in the newest checkpoint after a SIGKILL: the resume falls back
  to the previous checkpoint, names the damaged one, and ends with the
  uninterrupted run's schedule byte for byte (or refuses) -- never exit 0 with
  another schedule;
* two runs on one new ``--out``: exactly one runs, the other is refused with
  one line naming the holder;
* writes replace symbolic links planted in the output directory, never write
  through them; figures come out in the format of their suffix.
"""

from __future__ import annotations

from _tiny import KILL_RUN, SMALL_RUN, cli, ov  # noqa: E402
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _bad_inputs import malicious_pickle  # noqa: E402

from taskmix.cli import app  # noqa: E402
from taskmix.errors import OutputError
from taskmix.files import OutputLock, atomic_write_text
from taskmix.runs.checkpoint import CheckpointError, checkpoints, load_checkpoint, load_latest  # noqa: E402

RUN, SMALL = KILL_RUN, SMALL_RUN
_ov, _cli = ov, cli


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if not line.startswith("warning: ")]


def _env() -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[2] / "src")
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TASKMIX_PROGRESS": "0",
            "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _spawn(out: Path, *more: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "taskmix.cli", "search", "builtin", "--out", str(out), *_ov(RUN), *more]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env(), cwd=out.parent)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished small search (checkpoints 5 and 6 kept)."""
    out = tmp_path_factory.mktemp("finished") / "s"
    code, err = _cli("search", "builtin", "--out", str(out), *_ov(SMALL))
    assert code == 0, err
    return out


# ------------------------------------------------------------- no code runs


def test_planted_pickle_as_every_checkpoint_runs_no_code(tmp_path: Path, finished: Path) -> None:
    out = tmp_path / "s"
    shutil.copytree(finished, out)
    marker = tmp_path / "PWNED"
    for ck in checkpoints(out / "checkpoints"):
        ck.write_bytes(malicious_pickle(marker))
    buf = __import__("io").BytesIO()
    torch.save({"config": {}, "state": {}}, buf)  # a torch.save zip (the old format) is refused too
    (out / "checkpoints" / "ckpt-000007.ckpt").write_bytes(buf.getvalue())
    code, err = _cli("search", "builtin", "--out", str(out), "--resume", *_ov(SMALL))
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "no readable checkpoint among 3 file(s)" in err and "not a taskmix checkpoint" in err
    assert not marker.exists()
    for ck in checkpoints(out / "checkpoints"):
        with pytest.raises(CheckpointError, match="not a taskmix checkpoint"):
            load_checkpoint(ck)
    assert not marker.exists()


def test_planted_legacy_pt_files_are_never_loaded(tmp_path: Path) -> None:
    out = tmp_path / "s"
    (out / "checkpoints").mkdir(parents=True)
    marker = tmp_path / "PWNED"
    for i in (1, 2):
        (out / "checkpoints" / f"ckpt-{i:06d}.pt").write_bytes(malicious_pickle(marker))
    for resume in ((), ("--resume",)):
        code, err = _cli("search", "builtin", "--out", str(out), *resume, *_ov(SMALL))
        assert code == 2 and len(err.splitlines()) == 1 and "ckpt-000002.pt: a pickled checkpoint" in err, err
    assert not marker.exists()


def test_planted_pickle_as_rows_file_runs_no_code(tmp_path: Path) -> None:
    out = tmp_path / "c"
    args = ["compare", "builtin", "--seeds", "1", "--methods", "uniform", "--out", str(out), *_ov(SMALL)]
    code, err = _cli(*args)
    assert code == 0, err
    marker = tmp_path / "PWNED"
    (out / "rows.jsonl").write_bytes(malicious_pickle(marker))
    code, err = _cli(*args, "--resume")
    assert code == 2 and len(err.splitlines()) == 1 and "rows.jsonl:1: not a results row" in err, err
    assert not marker.exists()


# ------------------------------------------------------- corruption detected


def _flip(path: Path, where: float) -> None:
    data = bytearray(path.read_bytes())
    i = min(len(data) - 1, int(len(data) * where))
    data[i] ^= 0x10
    path.write_bytes(bytes(data))


def test_byte_flips_in_the_newest_checkpoint_after_sigkill_fall_back_to_the_same_schedule(tmp_path: Path) -> None:
    killed = tmp_path / "killed"
    proc = _spawn(killed)
    deadline = time.monotonic() + 120
    while len(checkpoints(killed / "checkpoints")) < 2 or int(checkpoints(killed / "checkpoints")[-1].stem[5:]) < 4:
        assert proc.poll() is None, f"the run ended before the kill: {proc.stderr.read().decode()}"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert not (killed / "schedule.json").exists()

    ref = tmp_path / "ref"
    code, err = _cli("search", "builtin", "--out", str(ref), *_ov(RUN))
    assert code == 0, err
    reference = (ref / "schedule.json").read_bytes()

    # the magic line, the checksum, the JSON state, the tensors (weights), the last byte
    for n, where in enumerate((0.0, 0.003, 0.02, 0.5, 0.9, 1.0)):
        out = tmp_path / f"flip{n}"
        shutil.copytree(killed, out)
        newest = checkpoints(out / "checkpoints")[-1]
        previous = checkpoints(out / "checkpoints")[-2]
        _flip(newest, where)
        code, err = _cli("search", "builtin", "--out", str(out), "--resume", *_ov(RUN))
        if code == 0:
            assert (out / "schedule.json").read_bytes() == reference, f"flip at {where}: another schedule"
            warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
            assert len(warnings) == 1 and newest.name in warnings[0] and f"resuming from {previous}" in warnings[0], err
            assert "damaged" in warnings[0] or "not a taskmix checkpoint" in warnings[0]
        else:
            assert code == 2 and len(_errors(err)) == 1, err

    # every checkpoint damaged: refused, nothing else written
    out = tmp_path / "all"
    shutil.copytree(killed, out)
    for ck in checkpoints(out / "checkpoints"):
        _flip(ck, 0.5)
    code, err = _cli("search", "builtin", "--out", str(out), "--resume", *_ov(RUN))
    n = len(checkpoints(out / "checkpoints"))  # 2, or 3 when the kill fell between a save and the old one's removal
    assert code == 2 and f"no readable checkpoint among {n} file(s)" in err and "sha256 mismatch" in err, err
    assert not (out / "schedule.json").exists()


def test_load_latest_names_every_checkpoint_it_skips(tmp_path: Path, finished: Path) -> None:
    d = tmp_path / "ck"
    shutil.copytree(finished / "checkpoints", d)
    newest = checkpoints(d)[-1]
    _flip(newest, 0.6)
    skipped: list[str] = []
    assert load_latest(d, skipped)["path"] == str(checkpoints(d)[-2])
    assert len(skipped) == 1 and skipped[0].startswith(f"{newest}: damaged checkpoint (sha256 mismatch)")


def test_edited_or_duplicated_rows_are_detected(tmp_path: Path) -> None:
    out = tmp_path / "c"
    args = ["compare", "builtin", "--seeds", "1", "--methods", "uniform", "--out", str(out), *_ov(SMALL),
            "-o", "compare.recommend=false"]
    assert _cli(*args)[0] == 0
    rows_path = out / "rows.jsonl"
    row = json.loads(rows_path.read_text())
    good = rows_path.read_text()
    for text, expect in (
        (json.dumps({**row, "test": row["test"] + 1e-9}) + "\n", "does not match its sha256 checksum"),
        (good + good.replace('"uniform"', '"uniform" ', 1), None),  # an identical duplicate (same content): kept once
    ):
        rows_path.write_text(text)
        (out / "results.json").unlink(missing_ok=True)
        code, err = _cli(*args, "--resume")
        if expect is None:
            assert code == 0, err
            assert len(json.loads((out / "results.json").read_text())["rows"]) == 1
        else:
            assert code == 2 and expect in err, err


# ------------------------------------------------------------- one writer


def test_two_runs_on_one_new_out_exactly_one_runs(tmp_path: Path) -> None:
    out = tmp_path / "shared"
    procs = [_spawn(out, "--seed", str(s)) for s in (1, 2)]
    results = []
    for p in procs:
        _, err = p.communicate(timeout=180)
        results.append((p.returncode, err.decode()))
    codes = sorted(rc for rc, _ in results)
    assert codes == [0, 2], results
    (winner_seed,) = [s for s, (rc, _) in zip((1, 2), results) if rc == 0]
    (refusal,) = [err for rc, err in results if rc == 2]
    assert len(refusal.splitlines()) == 1 and refusal.startswith("error: "), refusal
    assert "in use by another taskmix run (pid " in refusal or "already holds a search" in refusal, refusal
    sched = json.loads((out / "schedule.json").read_text())
    assert sched["provenance"]["seed"] == winner_seed
    assert not (out / ".taskmix.lock").exists() and not list(out.rglob("*.tmp"))


def test_a_held_lock_refuses_search_compare_and_train_naming_the_holder(tmp_path: Path) -> None:
    out = tmp_path / "busy"
    sched = tmp_path / "s.json"
    sched.write_text(json.dumps({"format": "taskmix.schedule/1", "tasks": ["target", "helpful", "harmful", "irrelevant"],
                                 "steps_per_meta_step": 4, "weights": [[0.25, 0.25, 0.25, 0.25]]}))
    with OutputLock(out):
        before = sorted(p.name for p in out.iterdir())
        for args in (["search", "builtin"], ["compare", "builtin", "--seeds", "1", "--methods", "uniform"],
                     ["train", "builtin", "--schedule", str(sched)]):
            code, err = _cli(*args, "--out", str(out), *_ov(SMALL))
            assert code == 2 and err == (f"error: {out}: in use by another taskmix run (pid {os.getpid()}); "
                                         "wait for it to finish or choose another --out\n"), err
        assert sorted(p.name for p in out.iterdir()) == before == [".taskmix.lock"]
        with pytest.raises(OutputError, match="in use"):
            OutputLock(out).acquire()
    assert not out.exists()  # the lock created it and nothing was written: removed with the lock


def test_train_refuses_to_overwrite_metrics_unless_told(tmp_path: Path) -> None:
    out = tmp_path / "t"
    sched = tmp_path / "s.json"
    sched.write_text(json.dumps({"format": "taskmix.schedule/1", "tasks": ["target", "helpful", "harmful", "irrelevant"],
                                 "steps_per_meta_step": 4, "weights": [[0.25, 0.25, 0.25, 0.25]]}))
    args = ["train", "builtin", "--schedule", str(sched), "--out", str(out), *_ov(SMALL)]
    assert _cli(*args)[0] == 0
    (out / "metrics.json").write_text('{"mine": 1}')
    code, err = _cli(*args)
    assert code == 2 and "metrics.json: already exists; pass --overwrite" in err
    assert (out / "metrics.json").read_text() == '{"mine": 1}'
    code, err = _cli(*args, "--overwrite")
    assert code == 0, err
    assert "test" in json.loads((out / "metrics.json").read_text())


# ------------------------------------------------------------ no links followed


def test_writes_replace_planted_links_and_refuse_linked_directories(tmp_path: Path, finished: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    out = tmp_path / "s"
    shutil.copytree(finished, out)
    (out / "schedule.json").unlink()
    os.symlink(victim, out / "schedule.json")  # the final write replaces the link
    (out / "log.csv").unlink()
    os.symlink(victim, out / "log.csv")
    code, err = _cli("search", "builtin", "--out", str(out), "--resume", *_ov(SMALL))
    assert code == 0, err
    assert victim.read_text() == "precious"
    assert not (out / "schedule.json").is_symlink() and json.loads((out / "schedule.json").read_text())["weights"]

    linked = tmp_path / "linked"
    linked.mkdir()
    os.symlink(elsewhere, linked / "checkpoints")  # a directory link inside --out: refused
    code, err = _cli("search", "builtin", "--out", str(linked), *_ov(SMALL))
    assert code == 2 and "checkpoints: is a symbolic link inside the output directory" in err, err
    assert list(elsewhere.iterdir()) == []

    with OutputLock(tmp_path / "w"):
        os.symlink(elsewhere, tmp_path / "w" / "logs")
        with pytest.raises(OutputError, match="symbolic link inside the output directory"):
            atomic_write_text(tmp_path / "w" / "logs" / "a.jsonl", "x")
    assert list(elsewhere.iterdir()) == []


# ------------------------------------------------------------------ figures


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".pdf", b"%PDF"), (".svg", b"<?xml")])
def test_plot_writes_the_format_of_its_suffix(tmp_path: Path, finished: Path, suffix: str, magic: bytes) -> None:
    out = tmp_path / f"fig{suffix}"
    # mathtext-looking task names and titles are drawn literally (a malformed one used to crash the plot)
    code, err = _cli("plot", str(finished / "schedule.json"), "--out", str(out), "--title", r"$\frac{1}{", "--log",
                     str(finished / "log.jsonl"))
    assert code == 0, err
    data = out.read_bytes()
    assert data.startswith(magic), data[:20]
    if suffix == ".svg":
        assert b"<svg" in data[:2000]
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary file left


def test_plot_through_a_planted_link_replaces_it_and_a_failed_plot_leaves_nothing(tmp_path: Path, finished: Path,
                                                                                  monkeypatch) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "plot.png"
    os.symlink(victim, link)
    code, err = _cli("plot", str(finished / "schedule.json"), "--out", str(link))
    assert code == 0, err
    assert victim.read_text() == "precious" and not link.is_symlink() and link.read_bytes().startswith(b"\x89PNG")

    import matplotlib.figure

    def fail(self, *a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", fail)
    d = tmp_path / "fail"
    d.mkdir()
    code, err = _cli("plot", str(finished / "schedule.json"), "--out", str(d / "x.png"))
    assert code == 1 and len(err.splitlines()) == 1, err
    assert list(d.iterdir()) == []


# ------------------------------------------------------------ accepted with care


def test_extreme_features_are_warned_about_and_refused_under_strict(tmp_path: Path, capsys) -> None:
    import numpy as np

    from taskmix.config import load_config
    from taskmix.data import load_tasks
    from taskmix.errors import DataError

    rng = np.random.default_rng(0)
    for name, scale in (("t.npz", 1.0), ("t_test.npz", 1.0), ("a.npz", 1e30)):
        np.savez(tmp_path / name, x=(rng.standard_normal((40, 4)) * scale).astype(np.float32), y=np.arange(40) % 2)
    cfg_text = "target: t\ntasks:\n  t: {train: t.npz, test: t_test.npz}\n  a: {train: a.npz}\n"
    (tmp_path / "c.yaml").write_text(cfg_text)
    tasks = load_tasks(load_config(tmp_path / "c.yaml"))
    assert [t.name for t in tasks] == ["t", "a"]
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"warning: {tmp_path / 'a.npz'}: features of magnitude up to"), err
    (tmp_path / "c.yaml").write_text(cfg_text + "strict: true\n")
    with pytest.raises(DataError, match="refused under strict: true"):
        load_tasks(load_config(tmp_path / "c.yaml"))


def test_a_partial_schedule_replays_only_when_asked(tmp_path: Path) -> None:
    sched = tmp_path / "s.json"
    sched.write_text(json.dumps({"format": "taskmix.schedule/1", "tasks": ["target", "helpful"],
                                 "steps_per_meta_step": 4, "weights": [[0.5, 0.5]]}))
    args = ["train", "builtin", "--schedule", str(sched), "--out", str(tmp_path / "t"), *_ov(SMALL)]
    code, err = _cli(*args)
    assert code == 2 and "names 2 of the 4 tasks" in err and not (tmp_path / "t").exists()
    code, err = _cli(*args, "--allow-missing-tasks")
    assert code == 0, err
    realised = json.loads((tmp_path / "t" / "metrics.json").read_text())["realised"]
    assert realised[2:] == [0.0, 0.0]  # the tasks it omits get weight 0


def test_a_checkpoint_that_is_a_link_fifo_or_directory_is_passed_over(tmp_path: Path, finished: Path) -> None:
    d = tmp_path / "ck"
    shutil.copytree(finished / "checkpoints", d)
    good = checkpoints(d)[-1]
    os.symlink(good, d / "ckpt-000007.ckpt")  # even to a valid checkpoint
    os.mkfifo(d / "ckpt-000008.ckpt")  # would block a plain open()
    (d / "ckpt-000009.ckpt").mkdir()
    skipped: list[str] = []
    assert load_latest(d, skipped)["path"] == str(good)
    assert [s.split(":")[0] for s in skipped] == [str(d / f"ckpt-00000{i}.ckpt") for i in (9, 8, 7)]
    assert "is a FIFO" in skipped[1] and "symbolic link" in skipped[2]


def test_an_io_error_in_a_background_thread_is_one_warning_line(tmp_path: Path, monkeypatch) -> None:
    """TensorBoard's writer thread failing on a full disk: one warning line, not a thread traceback."""
    import threading

    import taskmix.runs.search_dir as search_dir_mod

    real = search_dir_mod.RunLogger

    class FailingThreadLogger(real):
        def log(self, entry, flush=True):
            t = threading.Thread(target=lambda: (_ for _ in ()).throw(OSError(28, "No space left on device", "tb/x")),
                                 name="tb-writer")
            t.start()
            t.join()
            super().log(entry, flush)

    monkeypatch.setattr(search_dir_mod, "RunLogger", FailingThreadLogger)
    code, err = _cli("search", "builtin", "--out", str(tmp_path / "s"), *_ov(SMALL))
    assert code == 0, err
    assert err.splitlines() and set(err.splitlines()) == {"warning: tb-writer: tb/x: No space left on device"}, err
    assert "Traceback" not in err


def test_compare_on_a_full_disk_names_the_file(tmp_path: Path, monkeypatch) -> None:
    def fail(*_a):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", fail)
    out = tmp_path / "c"
    code, err = _cli("compare", "builtin", "--seeds", "1", "--methods", "uniform", "--out", str(out), *_ov(SMALL))
    assert code == 1 and err == f"error: {out}/compare.json: No space left on device\n", err
    assert not out.exists() or not [p for p in out.rglob("*") if p.is_file()]
