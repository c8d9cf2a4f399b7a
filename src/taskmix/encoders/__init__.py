"""Sentence encoders for text tasks: models, backends, the on-disk cache, the frozen encoder and the fine-tuning trunk.

:class:`SentenceEncoder` (frozen regime: embed once, cache on disk) and
:class:`TransformerTrunk` (fine-tuning regime) are the two entry points; the
backend of an ``encoder.model`` value comes from :data:`BACKENDS`.
"""

from .backends import BACKENDS, E5Backend, EncoderBackend, HFMeanPoolBackend, SentenceTransformerBackend, make_backend
from .cache import EmbeddingCache
from .encoder import SentenceEncoder
from .models import (
    CACHE_FILENAME,
    E5_NAME,
    ModelRef,
    default_cache_dir,
    model_identity,
    model_signature,
    packaged_e5_files,
    packaged_minilm_path,
    resolve_model,
)
from .trunk import TransformerTrunk

__all__ = [
    "BACKENDS",
    "CACHE_FILENAME",
    "E5Backend",
    "E5_NAME",
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
    "packaged_e5_files",
    "packaged_minilm_path",
    "resolve_model",
]
