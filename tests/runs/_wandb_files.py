"""Reading W&B offline runs back: the ``run-<id>.wandb`` transaction log of each ``offline-run-*`` directory.

The log is W&B's LevelDB-style record log (a 7-byte header ``:W&B``, 0xBEE1,
version 0; then 32 KiB blocks of CRC-checked chunks) of serialised
``wandb_internal_pb2.Record`` messages -- what ``wandb sync`` uploads.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any, Iterator

_BLOCK = 32768
_HEADER = struct.Struct("<4sHB")
_CHUNK = struct.Struct("<IHB")  # crc32 (of the type byte, then the data), length, type
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def records(path: Path) -> Iterator[Any]:
    """Every record of a ``.wandb`` file, parsed; a bad header, checksum or chunk order fails an assertion."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    ident, magic, version = _HEADER.unpack_from(data, 0)
    assert (ident, magic, version) == (b":W&B", 0xBEE1, 0), (ident, magic, version)
    pos, pending = _HEADER.size, None
    while pos + _CHUNK.size <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _CHUNK.size:  # the rest of a block too short for a chunk header is padding
            pos += left
            continue
        crc, n, kind = _CHUNK.unpack_from(data, pos)
        if (crc, n, kind) == (0, 0, 0):  # zero padding up to the end of the block
            pos += left
            continue
        chunk = data[pos + _CHUNK.size: pos + _CHUNK.size + n]
        assert len(chunk) == n and crc == zlib.crc32(chunk, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF, f"{path}: bad chunk at {pos}"
        pos += _CHUNK.size + n
        if kind == _FULL:
            assert pending is None
            body = chunk
        elif kind == _FIRST:
            assert pending is None
            pending = chunk
            continue
        else:
            assert pending is not None and kind in (_MIDDLE, _LAST), f"{path}: chunk type {kind} at {pos}"
            pending += chunk
            if kind == _MIDDLE:
                continue
            body, pending = pending, None
        rec = wandb_internal_pb2.Record()
        rec.ParseFromString(body)
        yield rec


def _items(items: Any) -> dict[str, Any]:
    return {(it.key or "/".join(it.nested_key)): json.loads(it.value_json) for it in items}


def offline_runs(root: Path) -> list[dict[str, Any]]:
    """Every offline run under ``root/wandb``: id, name, config, summary, history rows (with ``_step``), exit code."""
    runs = []
    for f in sorted(root.glob("wandb/offline-run-*/run-*.wandb")):
        run: dict[str, Any] = {"file": f, "config": {}, "summary": {}, "history": [], "exit_code": None}
        for rec in records(f):
            kind = rec.WhichOneof("record_type")
            if kind == "run":
                run.update(id=rec.run.run_id, name=rec.run.display_name, project=rec.run.project, group=rec.run.run_group)
                run["config"].update(_items(rec.run.config.update))
            elif kind == "config":
                run["config"].update(_items(rec.config.update))
            elif kind == "history":
                run["history"].append(_items(rec.history.item))
            elif kind == "summary":
                run["summary"].update({k: v for k, v in _items(rec.summary.update).items() if not k.startswith("_")})
            elif kind == "exit":
                run["exit_code"] = rec.exit.exit_code
        runs.append(run)
    return runs


def points(run: dict[str, Any]) -> list[tuple[str, int]]:
    """Every (key, step) point of a run's history (W&B's own ``_``-keys left out)."""
    return [(k, row["_step"]) for row in run["history"] for k in row if not k.startswith("_")]
