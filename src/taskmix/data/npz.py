""".npz feature files: arrays ``x`` (float, n x d) and ``y`` (int, n), read without pickles."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DataError, warn
from ..files import MAX_DATA_INPUT_BYTES, atomic_write_bytes, check_input_file, input_errors
from .tasks import Split, Task

if TYPE_CHECKING:
    from ..config import Config

MAX_LABEL = 2**20
"""Labels are integers 0 <= y < MAX_LABEL (one output unit each)."""
EXTREME_FEATURE = 1e6
"""Features beyond this magnitude are warned about (refused with ``strict: true``)."""


def load_npz_split(path: str | os.PathLike) -> Split:
    """Read an ``.npz`` file with arrays ``x`` (float, n x d) and ``y`` (int, n)."""
    path = Path(path)
    with input_errors(path, "file", "an .npz file", DataError):  # a regular file (a FIFO would block np.load) of bounded size
        check_input_file(path, "data file (.npz)", MAX_DATA_INPUT_BYTES, DataError)
    if not zipfile.is_zipfile(path):  # np.load would guess at a pickle
        raise DataError(f"{path}: not an .npz archive; expected a zip of arrays 'x' and 'y' as numpy.savez writes")
    try:
        with zipfile.ZipFile(path) as zf:
            unpacked = sum(i.file_size for i in zf.infolist())
    except Exception as e:
        raise DataError(f"{path}: not a readable .npz file ({type(e).__name__})") from None
    if unpacked > MAX_DATA_INPUT_BYTES:
        raise DataError(f"{path}: its arrays unpack to {unpacked} bytes, more than the {MAX_DATA_INPUT_BYTES} allowed")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("x", "y") if k not in z.files]
            if missing:
                raise DataError(f"{path}: missing array(s) {missing}; expected 'x' (n x d float) and 'y' (n int)")
            x, y = z["x"], z["y"]
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except DataError:
        raise
    except Exception as e:  # zipfile / pickle / format errors
        raise DataError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.number):
        raise DataError(f"{path}: 'x' must be a 2-D numeric array, got shape {x.shape} dtype {x.dtype}")
    if np.iscomplexobj(x):
        raise DataError(f"{path}: 'x' is complex ({x.dtype}); expected real features (the imaginary part would be dropped)")
    if x.shape[1] == 0:
        raise DataError(f"{path}: 'x' has 0 columns; expected at least one feature per row")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: 'y' must be a 1-D integer array, got shape {y.shape} dtype {y.dtype}")
    if len(x) != len(y):
        raise DataError(f"{path}: 'x' has {len(x)} rows but 'y' has {len(y)}")
    if len(y) == 0:
        raise DataError(f"{path}: empty split (0 rows)")
    x = x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        row = int(np.argwhere(~np.isfinite(x))[0][0])
        raise DataError(f"{path}: row {row} of 'x' has a non-finite value")
    if y.min() < 0:
        raise DataError(f"{path}: 'y' has negative label {int(y.min())}; expected integers >= 0")
    if y.max() >= MAX_LABEL:
        raise DataError(f"{path}: 'y' has label {int(y.max())}; expected integers below {MAX_LABEL} (one output per label)")
    return Split(x, y.astype(np.int64))


def save_npz_split(path: str | os.PathLike, split: Split) -> None:
    """Write a split as an ``.npz`` file (atomic)."""
    buf = io.BytesIO()
    np.savez(buf, x=np.asarray(split.x, dtype=np.float32), y=split.y)
    atomic_write_bytes(path, buf.getvalue())


def load_npz_task(name: str, spec: Any, cfg: "Config", required_eval: bool) -> Task:
    """A feature task from its ``.npz`` files (train, and validation/test where given)."""
    if spec.train is None:
        raise DataError(f"tasks.{name}.train: missing; expected a path to an .npz file")
    train = load_npz_split(cfg.resolve(spec.train))
    if spec.max_train is not None and len(train) > spec.max_train:
        train = train.take(np.arange(spec.max_train))
    val = load_npz_split(cfg.resolve(spec.validation)) if spec.validation else None
    test = load_npz_split(cfg.resolve(spec.test)) if spec.test else None
    for role, split in (("validation", val), ("test", test)):
        if split is not None and split.x.shape[1] != train.x.shape[1]:
            raise DataError(
                f"{cfg.resolve(getattr(spec, role))}: 'x' has {split.x.shape[1]} columns, "
                f"expected {train.x.shape[1]} like tasks.{name}.train"
            )
    if required_eval and val is None and test is None:
        raise DataError(f"tasks.{name}: the target needs a 'test' or 'validation' file to report on")
    train_labels = set(np.unique(train.y).tolist())
    for role, split in (("validation", val), ("test", test)):
        if split is None:
            continue
        outside = sorted(set(np.unique(split.y).tolist()) - train_labels)
        if outside:
            raise DataError(
                f"{cfg.resolve(getattr(spec, role))}: label(s) {outside[:5]} not among the training labels of "
                f"tasks.{name} ({sorted(train_labels)[:10]}); a model cannot learn a label it never sees"
            )
    for role, split in (("train", train), ("validation", val), ("test", test)):
        if split is None:
            continue
        big = float(np.max(np.abs(split.x))) if split.x.size else 0.0
        if big > EXTREME_FEATURE:
            msg = (f"{cfg.resolve(getattr(spec, role))}: features of magnitude up to {big:.3g} (> {EXTREME_FEATURE:g}); "
                   "standardise them, they can dominate the schedule")
            if cfg.strict:
                raise DataError(msg + " (refused under strict: true)")
            warn(msg)
    return Task(name, train=train, validation=val, test=test, metric=spec.metric)
