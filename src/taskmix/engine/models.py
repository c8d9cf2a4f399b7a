"""Models: a shared trunk with one head per task (default) or one shared head.

The trunk is a small MLP over the feature vector (frozen-encoder regime and
user features), or a Hugging Face transformer trained end to end (fine-tuning
regime, :class:`taskmix.encoders.TransformerTrunk`).  Heads are linear.  With
``heads: shared`` every task uses one head, which needs tasks with the same
label space (the XNLI case: languages of one 3-way task).
"""

from __future__ import annotations

from typing import Any, Sequence, cast

import torch
from torch import nn

from ..config import LMConfig, ModelConfig
from ..errors import ConfigError


class MLPTrunk(nn.Module):
    """A feed-forward trunk: ``layers`` x (Linear, ReLU, Dropout) to ``hidden`` units."""
    def __init__(self, in_dim: int, hidden: int, layers: int, dropout: float):
        super().__init__()
        mods: list[nn.Module] = []
        d = in_dim
        for _ in range(layers):
            mods += [nn.Linear(d, hidden), nn.ReLU()]
            if dropout > 0:
                mods.append(nn.Dropout(dropout))
            d = hidden
        self.net = nn.Sequential(*mods)
        self.out_dim = d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The trunk's representation of a batch."""
        return self.net(x)


class MultiTaskModel(nn.Module):
    """Trunk + heads.  ``forward(x, task_ids)`` returns per-sample losses via :meth:`loss`."""

    def __init__(self, trunk: nn.Module, num_labels: Sequence[int], heads: str = "per_task"):
        super().__init__()
        self.trunk = trunk
        self.num_labels = [int(k) for k in num_labels]
        self.shared_head = heads == "shared"
        out_dim = int(getattr(trunk, "out_dim"))  # every trunk (MLP, transformer) declares its output size
        if self.shared_head:
            if len(set(self.num_labels)) != 1:
                raise ConfigError(
                    f"model.heads: 'shared' needs every task to have the same number of labels, got {self.num_labels}"
                )
            self.heads = nn.ModuleList([nn.Linear(out_dim, self.num_labels[0])])
        else:
            self.heads = nn.ModuleList([nn.Linear(out_dim, k) for k in self.num_labels])

    def head(self, task: int) -> nn.Linear:
        """The output layer of ``task`` (the one shared head with ``heads: shared``)."""
        return cast(nn.Linear, self.heads[0 if self.shared_head else task])

    def shared_parameters(self) -> list[nn.Parameter]:
        """Parameters every task updates: the trunk, and the head when it is shared."""
        params = [p for p in self.trunk.parameters() if p.requires_grad]
        if self.shared_head:
            params += list(self.heads[0].parameters())
        return params

    def logits(self, x: Any, task: int) -> torch.Tensor:
        """Logits of ``task``'s head for inputs ``x``."""
        return self.head(task)(self.trunk(x))

    def per_sample_loss(self, x: Any, y: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of each sample under its own task's head."""
        h = self.trunk(x)
        if self.shared_head:
            return nn.functional.cross_entropy(self.heads[0](h), y, reduction="none")
        if len(set(self.num_labels)) == 1:
            # one matmul against every head, then each sample's own head's logits (no per-task loop)
            k = self.num_labels[0]
            heads = [cast(nn.Linear, hd) for hd in self.heads]
            w = torch.cat([hd.weight for hd in heads])  # (T * k, hidden)
            b = torch.cat([hd.bias for hd in heads])
            logits = (h @ w.T + b).view(h.shape[0], len(self.heads), k)
            own = logits[torch.arange(h.shape[0], device=h.device), task_ids]
            return nn.functional.cross_entropy(own, y, reduction="none")
        out = torch.empty(y.shape[0], dtype=h.dtype, device=h.device)
        for t in torch.unique(task_ids).tolist():
            m = task_ids == t
            out[m] = nn.functional.cross_entropy(self.heads[t](h[m]), y[m], reduction="none")
        return out


def build_model(cfg: ModelConfig, in_dim: int | None, num_labels: Sequence[int], trunk: nn.Module | None = None) -> MultiTaskModel:
    """The multi-task model of a config: the MLP trunk (or the given trunk) and the task heads."""
    if trunk is None:
        if in_dim is None:
            raise ConfigError("model: the feature dimension is unknown (text tasks need an encoder)")
        trunk = MLPTrunk(in_dim, cfg.hidden, cfg.layers, cfg.dropout)
    return MultiTaskModel(trunk, num_labels, cfg.heads)


def build_optimizer(cfg: ModelConfig, params) -> torch.optim.Optimizer:
    """Adam (default), AdamW or SGD with momentum.

    Adam/AdamW use the fused kernel (one kernel for all parameters; about 2x
    faster per step than the per-tensor loop for small models on CPU) where
    the parameters allow it, and the default implementation otherwise.
    """
    params = [p for p in params if p.requires_grad]
    if cfg.optimizer in ("adam", "adamw"):
        cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
        fusable = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
        if fusable:
            try:
                return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
            except (RuntimeError, TypeError, ValueError):
                pass
        return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=0.9)


class ByteLM(MultiTaskModel):
    """A causal transformer over bytes for the language-modelling regime (``model.regime: lm``).

    Built from a Hugging Face ``transformers`` config (``GPT2Config`` or ``LlamaConfig``, ``model.lm``) with
    random initialisation and a vocabulary of the 256 byte values; nothing is downloaded.  Every task shares
    the whole model (there are no heads).  An example is a window of ``context + 1`` bytes
    (:func:`taskmix.data.corpora.byte_windows`); its loss is the mean next-byte negative log-likelihood (nats)
    of its last ``context`` bytes, so the mean over windows divided by ``ln 2`` is the text's bits per byte.
    The model holds ``context + 1`` positions, so a Hugging Face ``Trainer`` can feed it whole windows as
    ``input_ids`` and ``labels`` (``trunk`` is the ``GPT2LMHeadModel`` / ``LlamaForCausalLM``).
    """

    VOCAB = 256

    def __init__(self, cfg: LMConfig, n_tasks: int):
        nn.Module.__init__(self)
        import transformers

        common: dict[str, Any] = {"vocab_size": self.VOCAB, "bos_token_id": 0, "eos_token_id": 0, "pad_token_id": 0}
        hf_cfg: Any
        if cfg.arch == "gpt2":
            hf_cfg = transformers.GPT2Config(n_positions=cfg.context + 1, n_embd=cfg.width, n_layer=cfg.layers,
                                             n_head=cfg.heads, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **common)
            self.trunk = transformers.GPT2LMHeadModel(hf_cfg)
        else:
            hf_cfg = transformers.LlamaConfig(hidden_size=cfg.width, intermediate_size=4 * cfg.width,
                                              num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads,
                                              num_key_value_heads=cfg.heads, max_position_embeddings=cfg.context + 1, **common)
            self.trunk = transformers.LlamaForCausalLM(hf_cfg)
        self.num_labels = [2] * n_tasks
        self.shared_head = True
        self.heads = nn.ModuleList()

    def shared_parameters(self) -> list[nn.Parameter]:
        """Every parameter: all tasks train the whole model."""
        return [p for p in self.parameters() if p.requires_grad]

    def logits(self, x: Any, task: int) -> torch.Tensor:
        """Next-byte logits ``(windows, context, 256)`` of the windows ``x`` (every task: the same model)."""
        return self.trunk(input_ids=x[:, :-1]).logits

    def byte_nll(self, x: torch.Tensor) -> torch.Tensor:
        """The next-byte negative log-likelihood (nats) of every predicted byte, ``(windows, context)``."""
        logits = self.logits(x, 0)
        return nn.functional.cross_entropy(logits.transpose(1, 2), x[:, 1:], reduction="none")

    def per_sample_loss(self, x: Any, y: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        """Each window's mean next-byte negative log-likelihood (nats); ``y`` is unused (labels are 0)."""
        return self.byte_nll(x).mean(dim=1)


def build_lm_model(cfg: ModelConfig, n_tasks: int) -> ByteLM:
    """The byte-level causal language model of ``model.lm`` (the regime's defaults when unset)."""
    return ByteLM(cfg.lm or LMConfig(), n_tasks)
