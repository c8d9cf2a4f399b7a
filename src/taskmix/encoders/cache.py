"""The on-disk embedding cache: one SQLite file, one transaction per chunk of new vectors."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .models import CACHE_FILENAME

_SQL_VARS = 900  # keys per SELECT ... IN (...)


class EmbeddingCache:
    """Vectors in a SQLite file: ``vectors(key BLOB UNIQUE, vec BLOB)`` (little-endian float32 bytes).

    Writes go in one transaction per :meth:`put_many` call (atomic); the WAL
    journal lets concurrent runs read while one writes.  A vector whose size
    does not match the expected dimension is treated as missing.
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.path = self.directory / CACHE_FILENAME
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=120)
            try:
                db.execute("PRAGMA journal_mode=WAL")
            except sqlite3.DatabaseError:  # e.g. a file system without shared memory: keep the default journal
                pass
            db.execute("PRAGMA synchronous=NORMAL")
            with db:
                # a rowid table keeps each ~1.5 KB vector on its own page run (WITHOUT ROWID would overflow)
                db.execute("CREATE TABLE IF NOT EXISTS vectors (key BLOB NOT NULL UNIQUE, vec BLOB NOT NULL)")
                db.execute("CREATE TABLE IF NOT EXISTS models (identity TEXT PRIMARY KEY, dim INTEGER NOT NULL)")
            self._db = db
        return self._db

    def get_many(self, keys: Sequence[bytes], dim: int | None = None) -> dict[bytes, np.ndarray]:
        """The cached vectors among ``keys`` (missing keys are absent from the result)."""
        db = self._conn()
        out: dict[bytes, np.ndarray] = {}
        for s in range(0, len(keys), _SQL_VARS):
            chunk = list(keys[s : s + _SQL_VARS])
            q = f"SELECT key, vec FROM vectors WHERE key IN ({','.join('?' * len(chunk))})"
            for key, blob in db.execute(q, chunk):
                vec = np.frombuffer(blob, dtype="<f4")
                if dim is None or vec.shape[0] == dim:
                    out[bytes(key)] = vec
        return out

    def put_many(self, keys: Sequence[bytes], vecs: np.ndarray) -> None:
        """Store vectors under their keys (one transaction)."""
        rows = [(k, np.ascontiguousarray(v, dtype="<f4").tobytes()) for k, v in zip(keys, vecs)]
        db = self._conn()
        with db:
            db.executemany("INSERT INTO vectors (key, vec) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET vec = excluded.vec", rows)

    def get_dim(self, identity: str) -> int | None:
        """The embedding size recorded for a model identity (``None`` if unknown)."""
        row = self._conn().execute("SELECT dim FROM models WHERE identity = ?", (identity,)).fetchone()
        return int(row[0]) if row else None

    def set_dim(self, identity: str, dim: int) -> None:
        """Record the embedding size of a model identity."""
        db = self._conn()
        with db:
            db.execute("INSERT OR REPLACE INTO models (identity, dim) VALUES (?, ?)", (identity, int(dim)))

    def __len__(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM vectors").fetchone()[0])

    def close(self) -> None:
        """Release the resources held (connections, process groups)."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def __getstate__(self) -> dict[str, Any]:  # connections do not pickle; reopen lazily
        return {**self.__dict__, "_db": None}
