"""A hostile output directory never makes taskmix delete, change or create a file outside ``--out``.

* every output-directory case of ``tests/_bad_inputs.py`` about the lock file,
  links and FIFOs: exit 2 with one line within 10 s, and no file anywhere under
  the case's directory (inside or outside ``--out``) created, changed or
  deleted -- what the corpus harness, which looks at ``--out`` only, cannot say;
* the tree below ``--out`` is checked when the lock is taken, before anything
  is deleted or written; each directory is checked again right before events
  are deleted or written in it (a link planted while the lock is held);
* links that stay inside ``--out`` (W&B's ``latest-run``) and links to files
  are not refused;
* temporary files: only those carrying taskmix's ``.taskmix-<pid>-`` marker are ever removed.
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _bad_inputs import CASES, invoke  # noqa: E402

from taskmix.errors import OutputError
from taskmix.files import OutputLock, check_output_tree, remove_stale_temps
from taskmix.runs.runlog import clear_events, write_hparams  # noqa: E402

HOSTILE = ["lock-hard-link", "lock-symlink", "lock-fifo", "lock-directory", "demo-compare-json-fifo",
           "compare-resume-linked-tb-run", "compare-resume-linked-tb", "search-resume-linked-tb"]
BY_ID = {c.id: c for c in CASES}


def tree(root: Path) -> dict[str, tuple]:
    """Every entry under ``root``, links not followed: kind, and content digest / link target / link count."""
    out: dict[str, tuple] = {}
    for d, dirs, files in os.walk(root):  # os.walk does not descend into linked directories
        for name in dirs + files:
            p = Path(d) / name
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                out[str(p.relative_to(root))] = ("link", os.readlink(p))
            elif stat.S_ISREG(st.st_mode):
                out[str(p.relative_to(root))] = ("file", hashlib.sha256(p.read_bytes()).hexdigest(), st.st_nlink,
                                                 st.st_mtime_ns)
            else:
                out[str(p.relative_to(root))] = (stat.S_IFMT(st.st_mode),)
    return out


@pytest.mark.parametrize("case_id", HOSTILE)
def test_no_file_outside_out_is_created_changed_or_deleted(case_id: str, tmp_path: Path) -> None:
    case = BY_ID[case_id]
    args = case.setup(tmp_path.resolve())
    before = tree(tmp_path)
    t0 = time.monotonic()
    outcome = invoke(args, tmp_path)
    assert time.monotonic() - t0 < 10
    assert outcome.exit_code == 2 and len(outcome.message.splitlines()) == 1, outcome.stderr
    assert tree(tmp_path) == before
    victim = tmp_path / "victim.txt"
    if victim.exists():
        assert victim.read_text() == "precious"
    if (tmp_path / "V").exists():
        assert [p.name for p in (tmp_path / "V").iterdir()] == ["events.out.tfevents.1.victim"]


def _outside(tmp_path: Path) -> Path:
    v = tmp_path / "V"
    v.mkdir()
    (v / "events.out.tfevents.1.victim").write_bytes(b"precious")
    return v


def test_a_link_planted_while_the_lock_is_held_is_refused_before_events_are_deleted_or_written(tmp_path: Path) -> None:
    v = _outside(tmp_path)
    out = tmp_path / "out"
    with OutputLock(out):
        (out / "logs" / "tb").mkdir(parents=True)
        os.symlink(v, out / "logs" / "tb" / "uniform-seed0")  # after the tree check: each operation checks again
        with pytest.raises(OutputError, match="uniform-seed0: is a symbolic link inside the output directory"):
            clear_events(out / "logs" / "tb" / "uniform-seed0")
        with pytest.raises(OutputError, match="uniform-seed0: is a symbolic link inside the output directory"):
            write_hparams(out / "logs" / "tb" / "uniform-seed0", {"method": "uniform"}, {"final/test_accuracy": 0.5})
    assert [p.name for p in v.iterdir()] == ["events.out.tfevents.1.victim"]
    assert (v / "events.out.tfevents.1.victim").read_bytes() == b"precious"


def test_the_tree_check_refuses_only_links_to_directories_outside(tmp_path: Path) -> None:
    v = _outside(tmp_path)
    out = tmp_path / "out"
    (out / "wandb" / "run-1").mkdir(parents=True)
    os.symlink("run-1", out / "wandb" / "latest-run")  # inside the tree: allowed
    os.symlink(v / "events.out.tfevents.1.victim", out / "notes")  # a link to a file: writes replace it
    os.symlink(tmp_path / "nowhere", out / "dangling")
    check_output_tree(out)
    with OutputLock(out):
        pass
    deep = out / "a" / "b" / "c"
    deep.mkdir(parents=True)
    os.symlink(v, deep / "d")
    with pytest.raises(OutputError, match=r"a/b/c/d: is a symbolic link inside the output directory, to a directory outside it"):
        check_output_tree(out)
    with pytest.raises(OutputError, match="a/b/c/d: is a symbolic link"):
        OutputLock(out).acquire()
    assert not (out / ".taskmix.lock").exists()  # the refused lock leaves nothing behind


def test_stale_temporary_files_are_only_taskmixs_own(tmp_path: Path) -> None:
    old = time.time() - 7200
    mine = [tmp_path / ".mynotes.tmp", tmp_path / ".a.12345.b.tmp", tmp_path / ".x.taskmix-1-abc.tmp",
            tmp_path / ".y.taskmix-0-abcdefgh.tmp", tmp_path / "z.taskmix-99999999-abcdefgh.tmp"]
    theirs = tmp_path / ".schedule.json.taskmix-99999999-abcd_fgh.tmp"  # an old one of taskmix's own: removed
    for p in [*mine, theirs]:
        p.write_bytes(b"x")
        os.utime(p, (old, old))
    assert remove_stale_temps(tmp_path) == [theirs]
    assert all(p.read_bytes() == b"x" for p in mine)
