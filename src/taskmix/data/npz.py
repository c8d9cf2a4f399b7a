""".npz feature files: arrays ``x`` (float, n x d) and ``y`` (int, n), read without pickles."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DataError, atomic_write_bytes
from .tasks import Split, Task

if TYPE_CHECKING:
    from ..config import Config



def load_npz_split(path: str | os.PathLike) -> Split:
    """Read an ``.npz`` file with arrays ``x`` (float, n x d) and ``y`` (int, n)."""
    path = Path(path)
    if path.is_file() and not zipfile.is_zipfile(path):  # np.load would guess at a pickle
        raise DataError(f"{path}: not an .npz archive; expected a zip of arrays 'x' and 'y' as numpy.savez writes")
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
    return Task(name, train=train, validation=val, test=test, metric=spec.metric)
