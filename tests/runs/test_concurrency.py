"""A second run on a directory in use, and runs stopped by Ctrl-C or SIGTERM.

* while another process holds the lock of a directory that keeps a previous
  run's complete outputs, ``demo`` (which replaces an earlier demo), ``demo
  --resume``, ``compare``, ``search`` and ``train`` are refused with one line
  naming the holder, and not a byte under the directory is deleted or changed;
* a real ``demo`` running in another process: a second ``demo`` on its
  directory is refused, and the first one finishes with complete outputs;
* SIGTERM and Ctrl-C: one line (exit 143 and 130), with a ``--resume`` hint for
  the commands that can continue, the lock released, no temporary file left;
  the ``--resume`` then finishes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _tiny import KILL_RUN, TINY_BUILTIN, cli, ov  # noqa: E402

from taskmix.files import LOCK_NAME
from taskmix.runs.checkpoint import checkpoints  # noqa: E402

METHODS = "compare.methods=[uniform,learned_time_invariant]"
TINY = [*ov(TINY_BUILTIN), "-o", METHODS]


def _env() -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[2] / "src")
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TASKMIX_PROGRESS": "0", "OMP_NUM_THREADS": "1",
            "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _snapshot(root: Path) -> dict[str, tuple]:
    """Every file and link under ``root`` (links not followed): content digest, size and mtime."""
    out: dict[str, tuple] = {}
    for d, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(d) / name
            st = p.lstat()
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_file():
                out[rel] = (hashlib.sha256(p.read_bytes()).hexdigest(), st.st_size, st.st_mtime_ns)
            else:
                out[rel] = ("dir",)
    return out


@pytest.fixture(scope="module")
def finished_demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "d"
    code, err = cli("demo", "--out", str(out), "--seeds", "1", *TINY)
    assert code == 0, err
    assert (out / "results.json").exists() and (out / "report.md").exists() and (out / "demo.json").exists()
    return out


def _hold_lock(d: Path) -> subprocess.Popen:
    """Another process holding ``d``'s lock as a run does (``OutputLock``), until killed."""
    code = ("import sys, time\nfrom taskmix.files import OutputLock\n"
            "lock = OutputLock(sys.argv[1]).acquire()\nprint('held', flush=True)\ntime.sleep(300)\n")
    p = subprocess.Popen([sys.executable, "-c", code, str(d)], stdout=subprocess.PIPE, env=_env())
    assert p.stdout is not None and p.stdout.readline().strip() == b"held"
    return p


def test_a_directory_in_use_is_refused_and_not_a_byte_of_the_previous_run_changes(tmp_path: Path, finished_demo: Path) -> None:
    d = tmp_path / "d"
    shutil.copytree(finished_demo, d)
    sched = tmp_path / "s.json"
    shutil.copy(d / "schedule.json", sched)
    holder = _hold_lock(d)
    try:
        before = _snapshot(d)
        assert LOCK_NAME in before
        for args in (["demo", "--seeds", "1"], ["demo", "--seeds", "1", "--resume"],
                     ["compare", "builtin", "--seeds", "1", "--resume"], ["compare", "builtin", "--seeds", "1"],
                     ["search", "builtin"], ["search", "builtin", "--resume"], ["train", "builtin", "--schedule", str(sched)],
                     ["train", "builtin", "--schedule", str(sched), "--overwrite"]):
            code, err = cli(*args, "--out", str(d), *TINY)
            assert code == 2 and err == (f"error: {d}: in use by another taskmix run (pid {holder.pid}); "
                                         "wait for it to finish or choose another --out\n"), (args, err)
            assert _snapshot(d) == before, args
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()  # type: ignore[union-attr]


def test_a_second_demo_while_the_first_runs_is_refused_and_the_first_completes(tmp_path: Path, finished_demo: Path) -> None:
    d = tmp_path / "d"
    shutil.copytree(finished_demo, d)  # an earlier demo: the first run replaces it, the second must not touch it
    slow = [*ov(KILL_RUN), "-o", METHODS]
    first = subprocess.Popen([sys.executable, "-m", "taskmix.cli", "demo", "--out", str(d), "--seeds", "2", *slow],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env())
    try:
        deadline = time.monotonic() + 120
        while True:  # the first run holds the lock and is training (its rows file is not written yet)
            try:
                if (d / LOCK_NAME).read_text() == f"{first.pid}\n" and not (d / "rows.jsonl").exists():
                    break
            except OSError:
                pass
            assert first.poll() is None, first.stderr.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline
            time.sleep(0.005)
        for args in (["demo", "--seeds", "2"], ["demo", "--seeds", "2", "--resume"]):
            code, err = cli(*args, "--out", str(d), *slow)
            assert code == 2 and f"in use by another taskmix run (pid {first.pid})" in err, err
        assert first.poll() is None, "the first demo ended before the second was refused: the test proves nothing"
        _, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, err.decode()
    results = json.loads((d / "results.json").read_text())
    assert sorted((r["method"], r["seed"]) for r in results["rows"]) == [
        (m, s) for m in ("learned_time_invariant", "recommended", "uniform") for s in (0, 1)]
    kept = [json.loads(line) for line in (d / "rows.jsonl").read_text().splitlines()]
    assert len([r for r in kept if r["seed"] in (0, 1)]) == 6  # and any confirmation's rows, of later seeds
    for name in ("report.md", "report.html", "table.md", "schedule.json", "schedule.png", "demo.json", "compare.json",
                 "config.resolved.yaml", "versions.json", "recommended.json"):
        assert (d / name).is_file(), name
    assert json.loads((d / "demo.json").read_text())["seeds"] == 2
    assert not (d / LOCK_NAME).exists() and not list(d.rglob("*.tmp"))


@pytest.mark.parametrize("command, sig, code", [("search", signal.SIGTERM, 143), ("demo", signal.SIGINT, 130)])
def test_sigterm_and_ctrl_c_release_the_lock_and_say_how_to_resume(tmp_path: Path, command: str, sig: int, code: int) -> None:
    out = tmp_path / "r"
    args = ["search", "builtin"] if command == "search" else ["demo", "--seeds", "1", "-o", METHODS]
    args += ["--out", str(out), *ov(KILL_RUN)]
    proc = subprocess.Popen([sys.executable, "-m", "taskmix.cli", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=_env(), preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        # some work is done and kept: a checkpoint (search), the first row (demo)
        while not (checkpoints(out / "checkpoints") if command == "search" else (out / "rows.jsonl").exists()):
            assert proc.poll() is None, f"the run ended before the signal: {proc.stderr.read().decode()}"  # type: ignore[union-attr]
            assert time.monotonic() < deadline
            time.sleep(0.005)
        proc.send_signal(sig)
        _, err_b = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = err_b.decode()
    lines = [line for line in err.splitlines() if not line.startswith("warning: ")]
    what = "terminated (SIGTERM)" if sig == signal.SIGTERM else "interrupted"
    assert proc.returncode == code and lines == [
        f"error: {what}; the work finished so far is kept in {out}: rerun the same command with --resume to continue"], err
    assert not (out / LOCK_NAME).exists() and not list(out.rglob("*.tmp"))
    rc, err = cli(*args, "--resume")
    assert rc == 0, err


def test_an_interrupted_command_that_cannot_resume_gives_no_resume_hint(tmp_path: Path, monkeypatch) -> None:
    from taskmix.cli import commands
    from taskmix.cli.errors import Terminated

    def stop(*a, **k):
        raise Terminated()

    monkeypatch.setattr(commands, "load", stop)
    before = signal.getsignal(signal.SIGTERM)
    sched = tmp_path / "s.json"
    sched.write_text(json.dumps({"format": "taskmix.schedule/1", "tasks": ["target", "helpful", "harmful", "irrelevant"],
                                 "steps_per_meta_step": 4, "weights": [[0.25, 0.25, 0.25, 0.25]]}))
    assert cli("train", "builtin", "--schedule", str(sched), "--out", str(tmp_path / "t")) == (
        143, "error: terminated (SIGTERM)\n")
    assert signal.getsignal(signal.SIGTERM) == before  # the command's handler is gone with it
