"""Per-example predictions in a results row: a compact, data-only text form.

A comparison keeps, for every (method, seed) row, the reported model's predicted label for each row of the
target's report split, so that intervals can count the report split's own sampling noise (the test examples
are a sample too; see :func:`taskmix.compare.stats.example_se`).  Labels are small non-negative integers; they
are stored as ``"u8:"`` followed by the base64 of one byte per example (5,010 XNLI test rows: 6.7 kB per row).
Decoding only parses bytes: nothing read from a run directory is executed.

>>> import numpy as np
>>> s = encode_labels(np.array([0, 2, 1, 1]))
>>> s
'u8:AAIBAQ=='
>>> decode_labels(s).tolist()
[0, 2, 1, 1]

Each held-out row's loss (the retrained model's cross-entropy on the reward split's rows, which the
recommendation may choose by) is stored as ``"f32:"`` followed by the base64 of one little-endian float32 per row:

>>> decode_losses(encode_losses(np.array([0.25, 1.5]))).tolist()
[0.25, 1.5]
"""

from __future__ import annotations

import base64
import binascii

import numpy as np

__all__ = ["LOSS_PREFIX", "PREFIX", "decode_labels", "decode_losses", "encode_labels", "encode_losses"]

PREFIX = "u8:"
"""The form's tag: one unsigned byte per example, base64 (standard alphabet, padded)."""

LOSS_PREFIX = "f32:"
"""The losses' tag: one little-endian float32 per example, base64 (standard alphabet, padded)."""


def encode_labels(labels: np.ndarray) -> str:
    """``labels`` (integers in 0..255, one per example) as ``"u8:<base64>"``."""
    a = np.asarray(labels)
    if a.ndim != 1 or (a.size and (not np.issubdtype(a.dtype, np.integer) or a.min() < 0 or a.max() > 255)):
        raise ValueError(f"labels must be a 1-d array of integers in 0..255, got shape {a.shape} dtype {a.dtype}")
    return PREFIX + base64.b64encode(a.astype(np.uint8).tobytes()).decode("ascii")


def decode_labels(text: object, n: int | None = None, num_labels: int | None = None) -> np.ndarray:
    """The labels of :func:`encode_labels`'s text; ``ValueError`` saying what is wrong otherwise.

    ``n``: the number of examples expected; ``num_labels``: every label must be below it.
    """
    if not isinstance(text, str) or not text.startswith(PREFIX):
        raise ValueError(f"expected a string starting with {PREFIX!r} (one byte per example, base64)")
    try:
        raw = base64.b64decode(text[len(PREFIX):].encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError("not valid base64 after 'u8:'") from None
    a = np.frombuffer(raw, dtype=np.uint8).astype(np.int64)
    if n is not None and len(a) != n:
        raise ValueError(f"holds {len(a)} labels, expected {n} (one per report-split row)")
    if num_labels is not None and len(a) and int(a.max()) >= num_labels:
        raise ValueError(f"holds label {int(a.max())}, expected labels below {num_labels}")
    return a


def encode_losses(losses: np.ndarray) -> str:
    """``losses`` (finite, non-negative numbers, one per example) as ``"f32:<base64>"``."""
    a = np.asarray(losses)
    if a.ndim != 1 or (a.size and (not np.issubdtype(a.dtype, np.number) or not np.all(np.isfinite(a)) or a.min() < 0)):
        raise ValueError(f"losses must be a 1-d array of finite numbers >= 0, got shape {a.shape} dtype {a.dtype}")
    return LOSS_PREFIX + base64.b64encode(a.astype("<f4").tobytes()).decode("ascii")


def decode_losses(text: object, n: int | None = None) -> np.ndarray:
    """The losses of :func:`encode_losses`'s text (float64); ``ValueError`` saying what is wrong otherwise.

    ``n``: the number of examples expected.
    """
    if not isinstance(text, str) or not text.startswith(LOSS_PREFIX):
        raise ValueError(f"expected a string starting with {LOSS_PREFIX!r} (one float32 per example, base64)")
    try:
        raw = base64.b64decode(text[len(LOSS_PREFIX):].encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError(f"not valid base64 after {LOSS_PREFIX!r}") from None
    if len(raw) % 4:
        raise ValueError(f"holds {len(raw)} bytes, not a whole number of float32 values")
    a = np.frombuffer(raw, dtype="<f4").astype(np.float64)
    if not np.all(np.isfinite(a)) or (a.size and a.min() < 0):
        raise ValueError("expected finite losses >= 0")
    if n is not None and len(a) != n:
        raise ValueError(f"holds {len(a)} losses, expected {n} (one per held-out row)")
    return a
