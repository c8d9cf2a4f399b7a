"""Per-meta-step logs: JSON lines, a flat CSV and (when installed) TensorBoard events.

Each search log row (see :meth:`taskmix.runs.search_run.SearchRun.step_meta`) is
flattened into scalars -- ``weight/<task>``, ``reward/<task>``,
``realised/<task>``, ``reward_split_accuracy``, ... -- so a run can be watched
live with ``tail -f log.csv`` or ``tensorboard --logdir DIR/tb``.  The files
are rewritten atomically after every row, so a crash never leaves a torn line.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Sequence

from ..files import atomic_write_text, check_no_symlinks

PER_TASK_KEYS = {"probs_after": "weight", "rewards": "reward", "advantages": "advantage", "realised": "realised",
                 "task_train_loss": "train_loss"}
SCALAR_KEYS = ("round", "meta_step", "step", "reward_split_accuracy", "reward_split_loss", "train_loss", "baseline", "seconds")


def flatten(entry: dict[str, Any], tasks: Sequence[str]) -> dict[str, Any]:
    """A log entry as one flat row: per-task lists become ``<kind>/<task>`` columns."""
    row: dict[str, Any] = {k: entry.get(k) for k in SCALAR_KEYS if k in entry}
    for key, prefix in PER_TASK_KEYS.items():
        vals = entry.get(key)
        if vals is None:
            continue
        for t, v in zip(tasks, vals):
            row[f"{prefix}/{t}"] = v
    return row


def clear_events(tb_dir: str | Path) -> list[Path]:
    """Delete the TensorBoard event files in ``tb_dir`` (not below it); return them.

    A log that is rewritten (a resumed search, a re-written report) replaces its
    events instead of adding a second copy of every (tag, step).  Under a
    locked output directory a linked directory on the way is refused first
    (:func:`taskmix.files.check_no_symlinks`): nothing outside it is deleted.
    """
    d = Path(tb_dir)
    check_no_symlinks(d)
    old = sorted(p for p in d.glob("events.out.tfevents.*") if p.is_symlink() or not p.is_dir()) if d.is_dir() else []
    for p in old:
        p.unlink(missing_ok=True)
    return old


def write_hparams(tb_dir: str | Path | None, hparams: dict[str, Any], metrics: dict[str, float], writer: Any = None) -> bool:
    """TensorBoard hparams for one run (its settings and final metrics); False without tensorboard.

    Written with ``writer`` (a ``SummaryWriter``) when given, else with a new
    writer in ``tb_dir``.  ``hparams`` values must be numbers, strings or
    booleans (others are written as strings); ``metrics`` are also logged as
    scalars at step 0, which the HParams dashboard reads.
    """
    try:
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams as hparams_summary
    except Exception:  # tensorboard not installed
        return False
    hp = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in hparams.items()}
    exp, ssi, sei = hparams_summary(hp, metrics)
    if writer is None and tb_dir is not None:
        check_no_symlinks(tb_dir)  # TensorBoard writes through plain open()
    w = writer if writer is not None else SummaryWriter(str(tb_dir))
    try:
        fw = w._get_file_writer()
        for summary in (exp, ssi, sei):
            fw.add_summary(summary)
        for k, v in metrics.items():
            w.add_scalar(k, v, 0)
        w.flush()
    finally:
        if writer is None:
            w.close()
    return True


class RunLogger:
    """Writes ``log.jsonl``, ``log.csv`` and ``tb/`` events under ``out_dir``.

    With ``fresh_tb`` the TensorBoard event files already in ``tb/<prefix>``
    (of an interrupted run, or of the run being resumed) are deleted first:
    the caller then logs every entry again (:meth:`extend`), so each (tag, step)
    appears exactly once.
    """

    def __init__(self, out_dir: str | Path, tasks: Sequence[str], tensorboard: bool = True, prefix: str = "log",
                 fresh_tb: bool = False):
        self.out = Path(out_dir)
        self.tasks = list(tasks)
        self.prefix = prefix
        self.entries: list[dict[str, Any]] = []
        self._tb = None
        if tensorboard:
            check_no_symlinks(self.out / "tb" / prefix)  # TensorBoard writes through plain open()
            try:
                from torch.utils.tensorboard import SummaryWriter

                if fresh_tb:
                    clear_events(self.out / "tb" / prefix)
                self._tb = SummaryWriter(str(self.out / "tb" / prefix))
            except Exception:  # tensorboard not installed
                self._tb = None

    def extend(self, entries: Sequence[dict[str, Any]]) -> None:
        """Log entries already recorded (a resumed run), without duplicating TensorBoard points."""
        for e in entries:
            self.log(e, flush=False)
        self.flush()

    def log(self, entry: dict[str, Any], flush: bool = True) -> None:
        """Append one meta-step's entry to the JSON lines, CSV and TensorBoard logs."""
        self.entries.append(entry)
        if self._tb is not None:
            step = int(entry.get("round", 0)) * 10**6 + int(entry.get("step", len(self.entries)))
            for k, v in flatten(entry, self.tasks).items():
                if isinstance(v, (int, float)) and v is not None and k not in ("round", "meta_step", "step"):
                    self._tb.add_scalar(k, v, step)
        if flush:
            self.flush()

    def flush(self) -> None:
        """Write the logs to disk."""
        atomic_write_text(self.out / f"{self.prefix}.jsonl", "".join(json.dumps(e) + "\n" for e in self.entries))
        rows = [flatten(e, self.tasks) for e in self.entries]
        cols: list[str] = []
        for r in rows:
            cols += [c for c in r if c not in cols]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
        atomic_write_text(self.out / f"{self.prefix}.csv", buf.getvalue())
        if self._tb is not None:
            self._tb.flush()

    def hparams(self, hparams: dict[str, Any], metrics: dict[str, float]) -> bool:
        """TensorBoard hparams of this run, in its own event file (:func:`write_hparams`)."""
        return self._tb is not None and write_hparams(None, hparams, metrics, writer=self._tb)

    def close(self) -> None:
        """Flush and close the logs."""
        if self._tb is not None:
            self._tb.close()
