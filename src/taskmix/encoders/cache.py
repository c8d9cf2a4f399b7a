"""The on-disk embedding cache: one SQLite file, one transaction per chunk of new vectors.

The cache holds nothing that cannot be computed again, so a damaged one is set
aside, not fatal: a file at the cache path that SQLite cannot read (not a
database, a malformed page) or that holds other tables is renamed to
``embeddings-v1.sqlite.damaged`` (``.damaged.1``, ... when taken; never
overwritten, never deleted), with one ``warning:`` line, and a new cache is
started in its place.  Something other than a file at the cache path (a
directory, a FIFO, a device) is refused with one line.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import numpy as np

from ..errors import OutputError, warn
from .models import CACHE_FILENAME

_SQL_VARS = 900  # keys per SELECT ... IN (...)
_TABLES = {"vectors": ["key", "vec"], "models": ["identity", "dim"]}
_T = TypeVar("_T")


class _NotACache(Exception):
    """The file at the cache path is a database, but not taskmix's embedding cache."""


def _damaged(e: sqlite3.DatabaseError) -> bool:
    """Whether an SQLite error says the file itself is damaged (not a database, malformed), not that it is busy or unreadable."""
    if isinstance(e, sqlite3.OperationalError):  # locked, busy, cannot open, read-only, disk I/O, ...
        return False
    name = getattr(e, "sqlite_errorname", "") or ""
    text = str(e)
    return name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")) or "not a database" in text or "malformed" in text


class EmbeddingCache:
    """Vectors in a SQLite file: ``vectors(key BLOB UNIQUE, vec BLOB)`` (little-endian float32 bytes).

    Writes go in one transaction per :meth:`put_many` call (atomic); the WAL
    journal lets concurrent runs read while one writes.  A vector whose size
    does not match the expected dimension, or that is not finite, is treated
    as missing.  A damaged cache file is set aside (see the module docstring).
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.path = self.directory / CACHE_FILENAME
        self._db: sqlite3.Connection | None = None
        self._opened: tuple[int, int] | None = None  # (st_dev, st_ino) of the file opened

    # ------------------------------------------------------------- opening

    def _check_path(self) -> None:
        """Refuse something other than a regular file at the cache path (a FIFO would block, a directory never opens)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return
        except OSError as e:  # a symbolic link loop, a permission problem
            raise OutputError(f"{self.path}: cannot be used as the embedding cache ({e.strerror or e}); "
                              "remove it or set encoder.cache_dir") from None
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode) else "not a regular file"
            raise OutputError(f"{self.path}: is {kind}, expected taskmix's embedding cache (an SQLite file); "
                              "remove it or set encoder.cache_dir")
        self._opened = (st.st_dev, st.st_ino)

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=120)
        try:
            try:
                db.execute("PRAGMA journal_mode=WAL")
            except sqlite3.DatabaseError as e:  # a file system without shared memory: keep the default journal
                if _damaged(e):
                    raise
            db.execute("PRAGMA synchronous=NORMAL")
            with db:
                # a rowid table keeps each ~1.5 KB vector on its own page run (WITHOUT ROWID would overflow)
                db.execute("CREATE TABLE IF NOT EXISTS vectors (key BLOB NOT NULL UNIQUE, vec BLOB NOT NULL)")
                db.execute("CREATE TABLE IF NOT EXISTS models (identity TEXT PRIMARY KEY, dim INTEGER NOT NULL)")
            for table, columns in _TABLES.items():
                found = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
                if found != columns:
                    raise _NotACache(f"table {table!r} has columns {found[:8]}, expected {columns}")
        except BaseException:
            db.close()
            raise
        return db

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._check_path()
            try:
                try:
                    self._db = self._open()
                except _NotACache as e:
                    self._set_aside(f"not taskmix's embedding cache: {e}")
                    self._db = self._open()
                except sqlite3.DatabaseError as e:
                    if not _damaged(e):
                        raise
                    self._set_aside(str(e))
                    self._db = self._open()
            except (sqlite3.Error, _NotACache) as e:  # still unusable, or unreadable (permissions, locked, disk I/O)
                raise self._io_error(e) from None
        return self._db

    def _io_error(self, e: BaseException) -> OSError:
        """An SQLite failure that is not damage, as the one-line ``OSError`` the CLI reports (exit code 1)."""
        return OSError(errno.EIO, f"the embedding cache cannot be used ({e}); remove it or set encoder.cache_dir", str(self.path))

    def _set_aside(self, why: str) -> None:
        """Rename the damaged cache file (and its journal files) to a free ``.damaged`` name; one warning."""
        self.close()
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return
        if self._opened is not None and (st.st_dev, st.st_ino) != self._opened and not stat.S_ISLNK(st.st_mode):
            return  # another run has already replaced it with a new cache
        n = 0
        while True:
            dest = self.path.with_name(f"{CACHE_FILENAME}.damaged" + (f".{n}" if n else ""))
            if not any(os.path.lexists(f"{dest}{s}") for s in ("", "-wal", "-shm")):
                break
            n += 1
        for suffix in ("-wal", "-shm", ""):  # the journal first: it must not be replayed into the new cache
            try:
                os.rename(f"{self.path}{suffix}", f"{dest}{suffix}")
            except FileNotFoundError:
                pass
        self._opened = None
        warn(f"{self.path}: not a usable embedding cache ({why[:200]}); moved it to {dest.name} and started a new one "
             "(texts are encoded again)")

    def _run(self, op: Callable[[sqlite3.Connection], _T]) -> _T:
        """``op(connection)``; a cache found damaged meanwhile is set aside and ``op`` runs once more on a new one."""
        try:
            try:
                return op(self._conn())
            except sqlite3.DatabaseError as e:
                if not _damaged(e):
                    raise
                self._set_aside(str(e))
            return op(self._conn())
        except sqlite3.Error as e:
            raise self._io_error(e) from None

    # ------------------------------------------------------------- access

    def get_many(self, keys: Sequence[bytes], dim: int | None = None) -> dict[bytes, np.ndarray]:
        """The cached vectors among ``keys`` (missing keys are absent from the result)."""

        def op(db: sqlite3.Connection) -> dict[bytes, np.ndarray]:
            out: dict[bytes, np.ndarray] = {}
            for s in range(0, len(keys), _SQL_VARS):
                chunk = list(keys[s : s + _SQL_VARS])
                q = f"SELECT key, vec FROM vectors WHERE key IN ({','.join('?' * len(chunk))})"
                for key, blob in db.execute(q, chunk):
                    if not isinstance(key, bytes) or not isinstance(blob, bytes) or len(blob) % 4:
                        continue  # not a vector taskmix wrote: encoded again
                    vec = np.frombuffer(blob, dtype="<f4")
                    if (dim is None or vec.shape[0] == dim) and np.isfinite(vec).all():
                        out[key] = vec
            return out

        return self._run(op)

    def put_many(self, keys: Sequence[bytes], vecs: np.ndarray) -> None:
        """Store vectors under their keys (one transaction)."""
        rows = [(k, np.ascontiguousarray(v, dtype="<f4").tobytes()) for k, v in zip(keys, vecs)]

        def op(db: sqlite3.Connection) -> None:
            with db:
                db.executemany(
                    "INSERT INTO vectors (key, vec) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET vec = excluded.vec", rows
                )

        self._run(op)

    def get_dim(self, identity: str) -> int | None:
        """The embedding size recorded for a model identity (``None`` if unknown)."""
        row = self._run(lambda db: db.execute("SELECT dim FROM models WHERE identity = ?", (identity,)).fetchone())
        if not row or isinstance(row[0], bool) or not isinstance(row[0], int) or not 0 < row[0] <= 2**20:
            return None  # unknown, or not a size taskmix wrote: probed again
        return int(row[0])

    def set_dim(self, identity: str, dim: int) -> None:
        """Record the embedding size of a model identity."""

        def op(db: sqlite3.Connection) -> None:
            with db:
                db.execute("INSERT OR REPLACE INTO models (identity, dim) VALUES (?, ?)", (identity, int(dim)))

        self._run(op)

    def __len__(self) -> int:
        return int(self._run(lambda db: db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]))

    def close(self) -> None:
        """Release the resources held (connections, process groups)."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def __getstate__(self) -> dict[str, Any]:  # connections do not pickle; reopen lazily
        return {**self.__dict__, "_db": None}
