"""The fine-tuning regime's trunk: a transformers ``AutoModel`` with mean pooling, trained end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from ..devices import resolve_device
from ..config import Config, EncoderConfig
from ..errors import ConfigError, first_line
from .models import hidden_size, mean_pool, quiet_transformers, resolve_model


PairLike = Sequence[Any]  # (text_a, text_b_or_None)


class TransformerTrunk(torch.nn.Module):
    """A trainable transformer with mean pooling: text pairs in, (B, out_dim) vectors out.

    The fine-tuning regime's trunk (heads sit on top, see :mod:`taskmix.engine.models`).
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
            with quiet_transformers():
                self.tokenizer = AutoTokenizer.from_pretrained(loc)
                self.encoder = AutoModel.from_pretrained(loc)
        except Exception as e:
            raise ConfigError(f"encoder.model {model!r}: could not load {loc} ({type(e).__name__}: {first_line(e)})") from None
        limit = getattr(self.tokenizer, "model_max_length", None)
        self.max_length = int(min(max_length, limit)) if isinstance(limit, int) and limit > 0 else int(max_length)
        self.out_dim = hidden_size(self.encoder.config)
        self.chunk_size = int(chunk_size)
        self.to(resolve_device(device))

    @classmethod
    def from_config(cls, enc: "EncoderConfig | Config", cfg: "Config | None" = None) -> "TransformerTrunk":
        """Build from ``encoder`` settings: ``from_config(cfg)`` or ``from_config(cfg.encoder, cfg)``."""
        if isinstance(enc, Config):
            cfg, enc = enc, enc.encoder
        resolve = cfg.resolve if cfg is not None else None
        return cls(
            enc.model,
            max_length=enc.max_length,
            device=enc.device,
            threads=enc.threads,
            resolve=resolve,
        )

    @property
    def device(self) -> torch.device:
        """The device the trunk's parameters are on."""
        return next(self.parameters()).device

    def _encode(self, a: list[str], b: list[str] | None) -> torch.Tensor:
        enc = self.tokenizer(a, b, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt").to(self.device)
        hidden = self.encoder(**enc).last_hidden_state
        return mean_pool(hidden, enc["attention_mask"])

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
