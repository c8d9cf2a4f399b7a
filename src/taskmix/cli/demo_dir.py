"""The directory of ``taskmix demo``: which directory holds an earlier demo, and how it is replaced or continued.

A demo's directory may be replaced by the next demo; any other non-empty
directory is refused, so a mistyped ``--out`` never loses data.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import typer

from ..errors import OutputError, TaskmixError
from ..files import LOCK_NAME, read_input_bytes

DEMO_MARKER = "demo.json"
"""Written into a demo's directory: marks it as one that ``taskmix demo`` may replace."""

DEMO_OUTPUTS = ("results.json", "rows.jsonl", "compare.json", "table.md", "report.md", "report.html", "schedule.json",
                "schedule.png", "schedule_time_variant.json", "schedule_time_variant.png", "config.resolved.yaml",
                "versions.json", "schedules", "logs", "plots", DEMO_MARKER)


def _is_regular(p: Path) -> bool:
    try:
        return stat.S_ISREG(p.lstat().st_mode)
    except OSError:
        return False


def is_demo_dir(out: Path) -> bool:
    """Whether ``out`` holds an earlier demo (finished, or interrupted): one that ``taskmix demo`` may replace."""
    if _is_regular(out / DEMO_MARKER):  # a finished demo (a link planted as demo.json does not count)
        return True
    meta_path = out / "compare.json"
    if not (meta_path.exists() or meta_path.is_symlink()):
        return False
    try:  # an interrupted demo (compare.json is written with the first row); a FIFO or a link is refused, not read
        meta = json.loads(read_input_bytes(meta_path, "compare.json", 2**26, OutputError, follow_symlinks=False))
    except (OSError, ValueError) as e:
        if isinstance(e, TaskmixError):
            raise
        return False
    if not isinstance(meta, dict):
        return False
    if "command" in meta:
        return meta["command"] == "demo"
    # written before compare.json named its command: a comparison on the built-in benchmark
    return isinstance(meta.get("config"), dict) and meta["config"].get("synthetic") is not None


def prepare_demo_dir(out: Path, resume: bool) -> bool:
    """Make ``out`` ready for a demo; return whether ``run_compare`` should resume.

    Called with ``out``'s :class:`~taskmix.files.OutputLock` held, so never
    while another run writes there.  An absent or empty ``out`` starts afresh.
    An earlier demo's directory is continued with ``resume`` and otherwise
    replaced: the files the demo writes are removed, anything else in it is
    left alone.  Any other non-empty directory is refused, so a mistyped
    ``--out`` never loses data.
    """
    import shutil

    if not out.is_dir() or not any(p.name != LOCK_NAME for p in out.iterdir()):  # our own lock file aside
        return False
    if not is_demo_dir(out):
        raise OutputError(f"{out}: exists, is not empty and holds no earlier demo ({DEMO_MARKER}); choose another --out")
    if resume:
        return (out / "rows.jsonl").exists()
    typer.echo(f"replacing the earlier demo in {out} (--resume continues it instead)", err=True)
    for name in DEMO_OUTPUTS:
        p = out / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)  # does not follow links below p (and the lock refused links to outside directories)
        elif p.exists() or p.is_symlink():
            p.unlink()  # a link is removed, not what it points to
    return False
