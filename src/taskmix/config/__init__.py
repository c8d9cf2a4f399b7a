"""Validated YAML configs (pydantic; unknown keys are errors) with command-line overrides.

Minimal config::

    target: rte
    tasks:
      rte:  {train: rte/train.npz, validation: rte/dev.npz, test: rte/test.npz}
      mnli: {train: mnli/train.npz}

Paths are relative to the config file.  Optional sections: ``model``,
``encoder`` (text tasks), ``train``, ``search``, ``compare``.  ``synthetic``
replaces ``tasks`` with the built-in benchmark.  Overrides use dotted keys
(``search.epsilon=0.05``) and YAML values.
"""

from .load import apply_overrides, builtin_config, config_from_dict, config_schema, load_config, parse_override, resolved_dict, resolved_yaml
from .schema import (
    MAX_DRAWS_PER_META_STEP,
    MAX_HIDDEN_WEIGHTS,
    MAX_ORACLE_POINTS,
    MAX_SYNTHETIC_VALUES,
    SEED_LIMIT,
    SYNTHETIC_TASKS,
    CompareConfig,
    Config,
    EncoderConfig,
    LMConfig,
    LoggingConfig,
    MlflowConfig,
    ModelConfig,
    SearchConfig,
    SyntheticConfig,
    TaskSpec,
    TrainConfig,
)

__all__ = [
    "MAX_DRAWS_PER_META_STEP",
    "MAX_HIDDEN_WEIGHTS",
    "MAX_ORACLE_POINTS",
    "MAX_SYNTHETIC_VALUES",
    "SEED_LIMIT",
    "SYNTHETIC_TASKS",
    "CompareConfig",
    "Config",
    "EncoderConfig",
    "LMConfig",
    "LoggingConfig",
    "MlflowConfig",
    "ModelConfig",
    "SearchConfig",
    "SyntheticConfig",
    "TaskSpec",
    "TrainConfig",
    "apply_overrides",
    "builtin_config",
    "config_from_dict",
    "config_schema",
    "load_config",
    "parse_override",
    "resolved_dict",
    "resolved_yaml",
]
