"""Each peer's settings (``compare.peers.<name>``): one pydantic model per peer, the paper's values documented.

A peer's section is checked when a comparison starts (:func:`check_peers`, from
:func:`taskmix.compare.methods.check_config`); an unknown peer, an unknown setting or a bad value is refused
with the field named (``compare.peers.regmix.proxy_runs: ...``).  A method reads its settings with
:func:`peer_settings`.  To add a peer's settings, add its model and one line to :data:`PEER_SETTINGS`.

>>> RegMixSettings().proxy_runs, MixMinSettings().proxy_fraction
(16, 0.25)
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from ...config import Config
from ...errors import ConfigError

__all__ = ["MixMinSettings", "PEER_SETTINGS", "RegMixSettings", "check_peers", "peer_settings"]


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True)


class RegMixSettings(_Settings):
    """RegMix (Liu et al., 2024): proxy runs on random mixtures, a regression from mixture to the target's score,
    a search of the fitted surface.

    The paper trains 512 proxy models (1M parameters, 1B tokens each) for a 1B-parameter, 25B-token run, fits
    LightGBM (and a linear model) from the mixture to the target domain's validation loss, and averages the
    top-100 mixtures of a large random sample scored by the fit.  taskmix scales the proxies to the run: by
    default 16 proxies of 1/8 of ``train.steps`` each (2 plain runs), then the retrain -- 3 plain runs in all.
    """

    proxy_runs: StrictInt = Field(16, ge=2, le=4096)
    """proxy runs, each on its own random mixture (paper: 512)"""
    proxy_fraction: float = Field(0.125, gt=0, le=1)
    """each proxy run's length as a share of train.steps (paper: ~1/25 of the tokens, on a ~1000x smaller model)"""
    concentration: float = Field(1.0, gt=0, le=1000)
    """the mixtures are Dirichlet(concentration * n_tasks * prior): 1 spreads them over the whole simplex
    (paper: Dirichlet around the token distribution, its spread varied)"""
    prior: Literal["uniform", "proportional"] = "uniform"
    """the centre of the sampled mixtures: uniform, or the tasks' sizes (the paper's natural distribution)"""
    score: Literal["loss", "metric"] = "loss"
    """what the proxies are scored by on the target's reward split: its cross-entropy (the paper regresses the
    target's loss; smoother) or the task's metric"""
    regression: Literal["quadratic", "linear"] = "quadratic"
    """the fit: ridge regression on the mixture's linear and pairwise terms, or on the linear terms only
    (paper: LightGBM, which is not a taskmix dependency and overfits a few dozen points; linear as its ablation)"""
    ridge: float = Field(1e-3, ge=0, le=1e6)
    """the ridge penalty on the standardised fit (not on the intercept)"""
    search_samples: StrictInt = Field(20000, ge=1, le=10**7)
    """random mixtures the fitted surface is searched over (drawn like the proxies' mixtures)"""
    top_k: StrictInt = Field(100, ge=1, le=10**6)
    """the best predicted mixtures averaged into the answer (paper: 100)"""


class MixMinSettings(_Settings):
    """MixMin (Thudi et al., ICML 2025): one cheap model per source, then the convex problem of the mixture
    weights minimising the target's held-out loss of the mixture of their predictive distributions.

    The paper's proxies are trained with a small fraction of the final run's compute (it reports ~1% enough).
    taskmix trains each per-task model for ``proxy_fraction`` of ``train.steps`` on that task alone (the
    target's on the target's training rows minus the reward split, so it is cross-fitted), scores every one on
    the reward split, and solves the simplex problem with SciPy's SLSQP.  Cost: ``n_tasks * proxy_fraction``
    plain runs, plus the retrain.
    """

    proxy_fraction: float = Field(0.25, gt=0, le=1)
    """each per-task model's length as a share of train.steps"""
    per_task_heads: Literal["exclude", "probe"] = "exclude"
    """with per-task heads (no shared label space): exclude every auxiliary (weight 0; MixMin then keeps the target
    alone, at the cost of the retrain only), or probe: fit the target's head on each auxiliary model's frozen trunk
    and mix those probes (a retrain trains the target's head on the target's rows only, so a mixture that gives the
    target weight 0 leaves its head untrained: measured on the family benchmark, docs/compare.md)"""
    head_steps: StrictInt = Field(100, ge=1, le=10**5)
    """with per_task_heads: probe: L-BFGS iterations fitting the target's head on a source model's frozen trunk"""
    head_l2: float = Field(1e-3, ge=0, le=1e3)
    """with per_task_heads: probe: the L2 penalty of that head fit"""
    zero_below: float = Field(1e-6, ge=0, lt=0.5)
    """solver output below this weight is set to exactly 0 (SLSQP stops at its tolerance, not at 0)"""


PEER_SETTINGS: dict[str, type[_Settings]] = {}
"""Peer name -> its settings model (one line per peer)."""
PEER_SETTINGS["regmix"] = RegMixSettings
PEER_SETTINGS["mixmin"] = MixMinSettings


def _validate(name: str, values: Any) -> _Settings:
    model = PEER_SETTINGS[name]
    if not isinstance(values, dict):
        raise ConfigError(f"compare.peers.{name}: expected a mapping of settings, got {type(values).__name__}")
    try:
        return model.model_validate(values)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"compare.peers.{name}.{loc}: {err['msg']}") from None


def check_peers(cfg: Config) -> None:
    """Refuse an unknown peer, an unknown setting or a bad value in ``compare.peers``, naming the field."""
    for name, values in cfg.compare.peers.items():
        if name not in PEER_SETTINGS:
            raise ConfigError(f"compare.peers.{name}: unknown peer; expected one of {sorted(PEER_SETTINGS)}")
        _validate(name, values)


def peer_settings(cfg: Config, name: str) -> Any:
    """The settings of peer ``name`` in ``cfg`` (``compare.peers.<name>`` over the paper's defaults)."""
    return _validate(name, cfg.compare.peers.get(name, {}))
