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
"""

from __future__ import annotations

import base64
import binascii

import numpy as np

__all__ = ["PREFIX", "decode_labels", "encode_labels"]

PREFIX = "u8:"
"""The form's tag: one unsigned byte per example, base64 (standard alphabet, padded)."""


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
