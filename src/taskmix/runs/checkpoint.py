"""Checkpoints: atomic, keep-last-K, checksummed, code-free, refused when the config changed.

A checkpoint is ``{"config": <fingerprint>, "seed": S, "data": <task sizes>, "inputs": <data digests>,
"state": SearchRun.state_dict()}`` (the digests: :mod:`taskmix.runs.inputs`) written as ``ckpt-<index>.ckpt`` to a temporary file, fsynced and renamed
(:func:`taskmix.files.atomic_write_bytes`); only the last ``keep`` are kept.
A crash at any point leaves the previous complete checkpoint readable.

The file holds no pickle, so loading it cannot run code::

    taskmix-checkpoint/2\\n            magic line
    <sha256 of the body, 64 hex>\\n     checked before anything else is parsed
    body = <8-byte little-endian length N> <N bytes of JSON> <safetensors bytes>

The JSON holds every piece of state that is not a torch tensor (numbers,
strings, lists, tuples, dicts with any int/str keys, numpy arrays and scalars,
tagged as ``{"__tm__": kind, ...}``); each torch tensor is a reference
``{"__tm__": "tensor", "key": "t<i>"}`` into the safetensors part.  Floats are
written with ``repr`` precision (NaN and infinities included) and integers
exactly, so a state round-trips bit for bit.

:func:`load_latest` verifies the checksum of the newest checkpoint and, when
it is damaged (a flipped byte, a torn write, a planted file), falls back to
the previous one, naming the one it skipped.  Pickled ``ckpt-*.pt`` files of
older versions are never loaded.  A file's size is read first (a file larger
than its run's checkpoints can be is refused unread) and its checksum is
computed streaming, in bounded memory, before it is read whole
(:func:`read_checkpoint_bytes`).

A checksum proves a file intact, not sane: anyone can recompute it.  What a
verified checkpoint holds is checked by its owners before anything is restored
(``validate`` of :func:`load_latest`; :meth:`taskmix.runs.SearchRun.check_state_dict`
and the ``check_state_dict`` of the mixer, policy, trainer and streams it
holds), and a checkpoint that fails is passed over like a damaged one.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import math
import os
import re
import stat
import struct
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..errors import ConfigError, TaskmixError, unique_keys
from ..files import atomic_write_bytes

__all__ = [
    "CheckpointError",
    "check_compatible",
    "checkpoints",
    "decode_checkpoint",
    "diff_keys",
    "encode_checkpoint",
    "legacy_checkpoints",
    "load_checkpoint",
    "load_latest",
    "read_checkpoint_bytes",
    "save_checkpoint",
]

MAGIC = b"taskmix-checkpoint/2\n"
SUFFIX = ".ckpt"
MAX_CHECKPOINT_BYTES = 8 * 2**30  # refuse to read more than this (a planted /dev/zero, a huge file)
_NAME = re.compile(r"^ckpt-(\d+)\.ckpt$")
_LEGACY = re.compile(r"^ckpt-(\d+)\.pt$")
_TAG = "__tm__"
# numpy dtypes a state may hold: plain numbers only (no objects, no structured records)
_NUMPY_KINDS = set("biufc")
_MAX_DEPTH = 64


class CheckpointError(TaskmixError):
    """A checkpoint file is damaged, not a taskmix checkpoint, or holds something a state cannot."""


def checkpoints(directory: str | Path) -> list[Path]:
    """The checkpoint files in ``directory``, oldest first."""
    return _matching(directory, _NAME)


def legacy_checkpoints(directory: str | Path) -> list[Path]:
    """Pickled ``ckpt-*.pt`` files (older taskmix): never loaded, since unpickling can run code."""
    return _matching(directory, _LEGACY)


def _matching(directory: str | Path, pattern: re.Pattern[str]) -> list[Path]:
    d = Path(directory)
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := pattern.match(p.name))]
    return [p for _, p in sorted(found)]


# --------------------------------------------------------------- encoding


class _Encoder:
    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}

    def __call__(self, x: Any, depth: int = 0) -> Any:
        if depth > _MAX_DEPTH:
            raise TypeError("checkpoint state nested too deeply")
        if x is None or isinstance(x, (bool, str)):
            return x
        if isinstance(x, int) and type(x) is int:
            return x
        if isinstance(x, float) and type(x) is float:
            return x if math.isfinite(x) else {_TAG: "float", "value": repr(x)}
        if isinstance(x, torch.Tensor):
            key = f"t{len(self.tensors)}"
            self.tensors[key] = x.detach().cpu().contiguous().clone()
            return {_TAG: "tensor", "key": key}
        if isinstance(x, np.ndarray):
            if x.dtype.kind not in _NUMPY_KINDS or x.dtype.fields is not None:
                raise TypeError(f"cannot checkpoint a numpy array of dtype {x.dtype}")
            a = np.ascontiguousarray(x)
            return {_TAG: "ndarray", "dtype": a.dtype.str, "shape": list(a.shape),
                    "data": base64.b64encode(a.tobytes()).decode("ascii")}
        if isinstance(x, np.generic):
            if x.dtype.kind not in _NUMPY_KINDS:
                raise TypeError(f"cannot checkpoint a numpy scalar of dtype {x.dtype}")
            return {_TAG: "npscalar", "dtype": x.dtype.str,
                    "data": base64.b64encode(np.asarray(x).tobytes()).decode("ascii")}
        if isinstance(x, (int, float)):  # bool/int/float subclasses (IntEnum, ...): as the plain value
            return self(int(x) if isinstance(x, int) else float(x), depth)
        if isinstance(x, tuple):
            return {_TAG: "tuple", "items": [self(v, depth + 1) for v in x]}
        if isinstance(x, list):
            return [self(v, depth + 1) for v in x]
        if isinstance(x, dict):
            if all(type(k) is str for k in x) and _TAG not in x:
                return {k: self(v, depth + 1) for k, v in x.items()}
            items = []
            for k, v in x.items():
                if not (type(k) in (str, int) or k is None or type(k) is bool):
                    raise TypeError(f"cannot checkpoint a dict key of type {type(k).__name__}")
                items.append([k, self(v, depth + 1)])
            return {_TAG: "dict", "items": items}
        raise TypeError(f"cannot checkpoint a value of type {type(x).__name__}")


def encode_checkpoint(payload: Any) -> bytes:
    """The bytes of a checkpoint holding ``payload`` (see the module docstring for the layout)."""
    from safetensors.torch import save as st_save

    enc = _Encoder()
    doc = json.dumps(enc(payload), separators=(",", ":"), allow_nan=False).encode("utf-8")
    body = struct.pack("<Q", len(doc)) + doc + st_save(enc.tensors)
    return MAGIC + hashlib.sha256(body).hexdigest().encode("ascii") + b"\n" + body


class _Decoder:
    def __init__(self, tensors: dict[str, torch.Tensor]):
        self.tensors = tensors
        self.used: set[str] = set()

    def __call__(self, x: Any, depth: int = 0) -> Any:
        if depth > _MAX_DEPTH:
            raise ValueError("nested too deeply")
        if x is None or isinstance(x, (bool, int, float, str)):
            return x
        if isinstance(x, list):
            return [self(v, depth + 1) for v in x]
        if not isinstance(x, dict):
            raise ValueError(f"unexpected JSON value of type {type(x).__name__}")
        if _TAG not in x:
            return {k: self(v, depth + 1) for k, v in x.items()}
        kind = x[_TAG]
        if kind == "tensor":
            key = x.get("key")
            if not isinstance(key, str) or key not in self.tensors or key in self.used:
                raise ValueError(f"tensor reference {str(key)[:40]!r} is missing or used twice")
            self.used.add(key)
            return self.tensors[key]
        if kind == "tuple":
            return tuple(self(v, depth + 1) for v in _list(x, "items"))
        if kind == "dict":
            out: dict[Any, Any] = {}
            for item in _list(x, "items"):
                if not (isinstance(item, list) and len(item) == 2) or not (
                    item[0] is None or isinstance(item[0], (str, int))
                ):
                    raise ValueError("a dict item is not a [key, value] pair")
                if item[0] in out:
                    raise ValueError(f"duplicate dict key {str(item[0])[:40]!r}")
                out[item[0]] = self(item[1], depth + 1)
            return out
        if kind == "float":
            value = x.get("value")
            if value not in ("nan", "inf", "-inf"):
                raise ValueError(f"bad float {str(value)[:40]!r}")
            return float(value)
        if kind in ("ndarray", "npscalar"):
            dtype = _dtype(x.get("dtype"))
            raw = x.get("data")
            if not isinstance(raw, str):
                raise ValueError("array data is not a string")
            data = base64.b64decode(raw.encode("ascii"), validate=True)
            if kind == "npscalar":
                if len(data) != dtype.itemsize:
                    raise ValueError("numpy scalar of the wrong size")
                return np.frombuffer(data, dtype=dtype)[0]
            shape = x.get("shape")
            if not (isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape)):
                raise ValueError("bad array shape")
            if math.prod(shape) * dtype.itemsize != len(data):
                raise ValueError(f"array data of {len(data)} bytes does not fit shape {shape[:8]} {dtype}")
            return np.frombuffer(data, dtype=dtype).reshape(shape).copy()
        raise ValueError(f"unknown tag {str(kind)[:40]!r}")


def _list(x: dict[str, Any], key: str) -> list[Any]:
    v = x.get(key)
    if not isinstance(v, list):
        raise ValueError(f"{key!r} is not a list")
    return v


def _dtype(s: Any) -> np.dtype:
    if not isinstance(s, str) or len(s) > 8:
        raise ValueError("bad dtype")
    try:
        dt = np.dtype(s)
    except TypeError:
        raise ValueError(f"bad dtype {s!r}") from None
    if dt.kind not in _NUMPY_KINDS or dt.fields is not None or dt.subdtype is not None:
        raise ValueError(f"dtype {s!r} is not a plain number")
    return dt


def _reject_constant(name: str) -> float:
    raise ValueError(f"non-standard JSON number {name}")




def decode_checkpoint(data: bytes, where: str = "checkpoint") -> Any:
    """The payload of checkpoint bytes; :class:`CheckpointError` when they are damaged or not a checkpoint.

    Nothing is parsed before the checksum over the body matches, and nothing
    that is parsed can run code (JSON, base64 and safetensors only).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    if not data.startswith(MAGIC):
        kind = "a pickle (older taskmix or planted), never loaded" if data[:1] == b"\x80" or data[:2] == b"PK" else "no taskmix checkpoint header"
        raise CheckpointError(f"{where}: not a taskmix checkpoint ({kind})")
    head = len(MAGIC) + 65
    digest, body = data[len(MAGIC) : head], data[head:]
    if len(digest) != 65 or digest[64:] != b"\n":
        raise CheckpointError(f"{where}: damaged checkpoint (truncated header)")
    if hashlib.sha256(body).hexdigest().encode("ascii") != digest[:64]:
        raise CheckpointError(f"{where}: damaged checkpoint (sha256 mismatch)")
    try:
        if len(body) < 8:
            raise ValueError("truncated body")
        (n,) = struct.unpack("<Q", body[:8])
        if n > len(body) - 8:
            raise ValueError("JSON length beyond the end of the file")
        doc = json.loads(body[8 : 8 + n].decode("utf-8"), parse_constant=_reject_constant, object_pairs_hook=unique_keys)
        tensors = st_load(bytes(body[8 + n :]))
        dec = _Decoder(tensors)
        payload = dec(doc)
        if dec.used != set(tensors):
            raise ValueError(f"{len(set(tensors) - dec.used)} tensor(s) not referenced by the state")
    except (ValueError, TypeError, KeyError, OverflowError, RecursionError, UnicodeDecodeError, SafetensorError) as e:
        msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise CheckpointError(f"{where}: malformed checkpoint ({msg})") from None
    return payload


# --------------------------------------------------------------- files


def save_checkpoint(directory: str | Path, index: int, payload: dict[str, Any], keep: int = 2) -> Path:
    """Write checkpoint ``index`` of ``payload`` atomically under ``directory``, keeping the newest ``keep``; returns its path."""
    d = Path(directory)
    path = d / f"ckpt-{index:06d}{SUFFIX}"
    atomic_write_bytes(path, encode_checkpoint(payload))
    for old in checkpoints(d)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return path


_CHUNK = 1 << 20


def read_checkpoint_bytes(path: str | Path, max_bytes: int = MAX_CHECKPOINT_BYTES) -> bytes:
    """The bytes of a checkpoint file whose checksum verifies, read in bounded memory until it does.

    The file must be a regular file (not a symbolic link, FIFO or device) of at most ``max_bytes`` (its size is
    read first); its checksum is computed streaming, 1 MiB at a time, and only a file that matches is read
    whole (and checked again by :func:`decode_checkpoint`).  :class:`CheckpointError` otherwise.
    """
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:  # vanished, unreadable, a symbolic link
        why = "a symbolic link, never followed inside a run directory" if e.errno == errno.ELOOP else (e.strerror or str(e))
        raise CheckpointError(f"{path}: cannot be read ({why})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            m = st.st_mode
            kind = ("a directory" if stat.S_ISDIR(m) else "a FIFO" if stat.S_ISFIFO(m) else "a socket" if stat.S_ISSOCK(m)
                    else "a device" if stat.S_ISCHR(m) or stat.S_ISBLK(m) else "not a regular file")
            raise CheckpointError(f"{path}: is {kind}, expected a regular file (checkpoint)")
        if st.st_size > max_bytes:
            raise CheckpointError(f"{path}: {st.st_size} bytes, more than the {max_bytes} bytes a checkpoint of this run can hold")
        with os.fdopen(os.dup(fd), "rb", buffering=0) as f:
            head = f.read(len(MAGIC) + 65)
            if not head.startswith(MAGIC) or len(head) < len(MAGIC) + 65:
                return head  # decode_checkpoint names what it is (not a checkpoint, a pickle, a torn header)
            digest, total = hashlib.sha256(), len(head)
            while chunk := f.read(_CHUNK):
                total += len(chunk)
                if total > max_bytes:
                    raise CheckpointError(f"{path}: more than the {max_bytes} bytes a checkpoint of this run can hold")
                digest.update(chunk)
            if digest.hexdigest().encode("ascii") != head[len(MAGIC) : len(MAGIC) + 64]:
                raise CheckpointError(f"{path}: damaged checkpoint (sha256 mismatch)")
            f.seek(0)
            data = f.read(total)  # as much as was hashed (checked again when decoded); never a larger buffer
            if len(data) != total or f.read(1):
                raise CheckpointError(f"{path}: changed while it was read")
        return data
    except OSError as e:
        raise CheckpointError(f"{path}: cannot be read ({e.strerror or e})") from None
    finally:
        os.close(fd)


def load_checkpoint(path: str | Path, max_bytes: int = MAX_CHECKPOINT_BYTES) -> dict[str, Any]:
    """One checkpoint file's payload, checksum verified; :class:`CheckpointError` when it is unusable.

    The file must be a regular file (not a symbolic link, FIFO or device) of at
    most ``max_bytes``; see :func:`read_checkpoint_bytes`.
    """
    path = Path(path)
    payload = decode_checkpoint(read_checkpoint_bytes(path, max_bytes), str(path))
    if not (isinstance(payload, dict) and isinstance(payload.get("state"), dict)):
        raise CheckpointError(f"{path}: malformed checkpoint (no 'state' mapping)")
    return payload


def load_latest(
    directory: str | Path, skipped: list[str] | None = None,
    validate: Callable[[dict[str, Any], Path], None] | None = None, max_bytes: int = MAX_CHECKPOINT_BYTES,
) -> dict[str, Any] | None:
    """The newest checkpoint that verifies (a damaged newest one falls back to the previous).

    ``validate(payload, path)`` checks what a verified checkpoint holds (that its state is sane and fits the
    run): a :class:`CheckpointError` from it passes the checkpoint over like a damaged one, any other error
    propagates.  The reason each checkpoint was passed over (one line naming the file) is appended to
    ``skipped``; ``None`` when no checkpoint verifies.
    """
    for path in reversed(checkpoints(directory)):
        try:
            payload = load_checkpoint(path, max_bytes)
            if validate is not None:
                validate(payload, path)
        except CheckpointError as e:
            if skipped is not None:
                skipped.append(str(e))
            continue
        return {**payload, "path": str(path)}
    return None


def diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b), key=str):
            p = f"{prefix}.{k}" if prefix else str(k)
            if k not in a or k not in b:
                out.append(p)
            else:
                out += diff_keys(a[k], b[k], p)
        return out
    return [] if a == b else [prefix or "(root)"]


SINCE: dict[str, Any] = {"search.min_weight": 0.0, "search.credit_window": 2, "search.credit_temperature": 1.0}
"""Settings added after runs were made, with the value that reproduces how those runs ran: a run directory whose
config lacks the key resumes when the config sets exactly that value (and is refused, saying so, otherwise).  The
``credit_window`` and ``credit_temperature`` only shape ``credit_proportional``, which older runs never ran: their defaults resume them."""


def _lookup(d: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(d, dict) or part not in d:
            return _MISSING
        d = d[part]
    return d


_MISSING = object()


def check_compatible(
    saved: dict[str, Any], config: dict[str, Any], seed: int, where: str, data: dict[str, Any] | None = None
) -> None:
    """Refuse to resume when the config, the seed or (if recorded) the data summary differ, naming the keys.

    A key of :data:`SINCE` that the saved config lacks is no difference when the config sets it to the value that
    reproduces the old run."""
    old = saved.get("config", {})
    diffs = []
    for k in diff_keys(old, config):
        if k in SINCE and _lookup(old, k) is _MISSING:
            if _lookup(config, k) != SINCE[k]:
                diffs.append(f"{k} (added since this run: set {k}={SINCE[k]} to resume it as it ran)")
            continue
        diffs.append(k)
    if saved.get("seed") != seed and "seed" not in diffs:
        diffs.append("seed")
    if data is not None and "data" in saved:
        diffs += [f"data: {k}" for k in diff_keys(saved["data"], data)]
    if diffs:
        shown = [d if " (added since" in d else d[:60] for d in diffs[:8]] + ([f"... ({len(diffs) - 8} more)"] if len(diffs) > 8 else [])
        raise ConfigError(
            f"{where}: cannot resume, the config differs from the checkpointed run at {', '.join(shown)}; "
            "use the original config or a new --out directory"
        )
