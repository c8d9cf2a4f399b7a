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

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ConfigError


SYNTHETIC_TASKS = ("target", "helpful", "harmful", "irrelevant")
"""The built-in benchmark's tasks, in order (:mod:`taskmix.data.synthetic` generates them)."""


class _FieldError(ValueError):
    """A cross-field check that fails: ``field`` (dotted, relative to the model) names the key to blame."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TaskSpec(_Strict):
    """Where one task's data lives and how to read it."""

    train: str | None = None
    validation: str | None = None
    test: str | None = None
    preset: str | None = Field(None, description="e.g. glue/rte, glue/mnli, xnli/sw")
    splits: dict[str, str] | None = Field(None, description="role -> file stem / hub split, e.g. {train: train_9k}")
    format: Literal["auto", "npz", "jsonl", "json", "csv", "tsv", "parquet"] = "auto"
    columns: dict[str, str] | None = Field(None, description="text_a / text_b / label -> column name")
    labels: list[str] | dict[str, int] | None = None
    metric: Literal["accuracy", "macro_f1"] = "accuracy"
    max_train: int | None = Field(None, gt=0, description="use at most this many training rows")


class SyntheticConfig(_Strict):
    """The built-in benchmark (see :mod:`taskmix.data.synthetic`)."""

    dim: int = Field(32, gt=4)
    n_target: int = Field(1000, gt=8)
    n_helpful: int = Field(4000, gt=0)
    n_harmful: int = Field(4000, gt=0)
    n_irrelevant: int = Field(4000, gt=0)
    n_test: int = Field(2000, gt=0)
    label_noise: float = Field(0.05, ge=0, lt=0.5)
    target_label_noise: float = Field(0.05, ge=0, lt=0.5)
    helpful_shift: float = Field(0.0, ge=0)
    data_seed: int = 0


class ModelConfig(_Strict):
    hidden: int = Field(64, gt=0)
    layers: int = Field(1, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1)
    heads: Literal["per_task", "shared"] = "per_task"
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = Field(3e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    regime: Literal["frozen", "finetune"] = "frozen"


class EncoderConfig(_Strict):
    """Text encoder (frozen: features cached on disk; finetune: trained end to end)."""

    model: str = "minilm"
    pair: Literal["concat", "joint"] = "concat"
    cache_dir: str | None = None
    threads: int | None = Field(None, gt=0)
    batch_size: int = Field(64, gt=0)
    max_length: int = Field(128, gt=0)
    device: str = "auto"


class TrainConfig(_Strict):
    batch_size: int = Field(64, gt=0)
    steps: int = Field(1000, gt=0)
    per: Literal["sample", "batch"] = "sample"
    eval_batch_size: int = Field(4096, gt=0)
    threads: int | None = Field(None, gt=0)
    device: str = Field("auto", description="auto (CUDA when present), cpu, cuda, cuda:1, ...")


class SearchConfig(_Strict):
    policy: Literal["time_invariant", "time_variant"] = "time_invariant"
    reward: str = Field("gradient_alignment", description="a name of taskmix.runs.rewards.REWARDS (checked when a run starts)")
    epsilon: float = Field(0.1, ge=0, le=1)
    gamma: float = Field(0.2, ge=0, le=1)
    meta_steps: int = Field(10, gt=0)
    steps_per_meta_step: int | None = Field(None, gt=0)
    lr: float = Field(0.02, gt=0)
    sgd_steps: int = Field(100, gt=0)
    baseline: Literal["none", "moving_average"] = "moving_average"
    baseline_decay: float = Field(0.9, ge=0, lt=1)
    normalize: bool = True
    entropy: float = Field(0.0, ge=0)
    rounds: int = Field(1, gt=0)
    reward_fraction: float = Field(0.1, gt=0, lt=1)
    probe_steps: int = Field(5, gt=0)
    probe_batches: int = Field(16, gt=0)
    similarity: Literal["dot", "cosine"] = "dot"
    credit_groups: int = Field(4, ge=1, description="groups the per-task credit's probes (and the reward split) are taken in, for its standard error")
    shrink: float = Field(0.0, ge=0, description="variance-aware update: per-task credits are soft-thresholded by shrink x their standard error (0: off)")
    prior_pull: float = Field(0.0, ge=0, description="pull of the logits toward the prior (uniform) in every update: an L2 penalty's weight (0: off)")
    time_variant_init: Literal["uniform", "previous"] = "previous"

    @model_validator(mode="after")
    def _exploration(self) -> "SearchConfig":
        if self.epsilon > self.gamma:
            raise _FieldError(
                "epsilon", f"epsilon ({self.epsilon}) must not exceed gamma ({self.gamma}): gamma - epsilon is the target share"
            )
        return self


class CompareConfig(_Strict):
    methods: list[str] | None = None
    cap: int = Field(2**15, gt=0)
    oracle_step: float = Field(0.25, gt=0, le=1)
    oracle_samples: int = Field(64, gt=0)
    strategies: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="hyper-parameters of the online strategies, one section each: {exp3: {lr: 0.5}} "
        "(checked against taskmix.strategies.STRATEGIES when a comparison starts)",
    )


class Config(_Strict):
    target: str = "target"
    tasks: dict[str, TaskSpec] = Field(default_factory=dict)
    synthetic: SyntheticConfig | None = None
    data_dir: str | None = None
    seed: int = 0
    model: ModelConfig = Field(default_factory=ModelConfig)
    encoder: EncoderConfig = Field(default_factory=EncoderConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    compare: CompareConfig = Field(default_factory=CompareConfig)

    # where relative paths are resolved; not part of the file
    base_dir: str = Field(".", exclude=True)
    # where the config came from (a file, or "<built-in>"), named in messages; not part of the file
    source: str = Field("config", exclude=True)

    @model_validator(mode="after")
    def _tasks(self) -> "Config":
        if self.synthetic is None and not self.tasks:
            raise _FieldError("tasks", "either 'tasks' or 'synthetic' must be given")
        if self.synthetic is not None and self.tasks:
            raise _FieldError("tasks", "give 'tasks' or 'synthetic', not both")
        if self.synthetic is not None and "heads" not in self.model.model_fields_set:
            # the built-in tasks share one label space, like XNLI languages
            self.model = self.model.model_copy(update={"heads": "shared"})
        names = self.task_names()
        if self.target not in names:
            raise _FieldError("target", f"target {self.target!r} is not among the tasks {names}")
        spm = self.search.steps_per_meta_step
        if spm is None:
            if self.train.steps % self.search.meta_steps:
                raise _FieldError(
                    "train.steps",
                    f"train.steps ({self.train.steps}) must be a multiple of search.meta_steps "
                    f"({self.search.meta_steps}), or set search.steps_per_meta_step"
                )
        return self

    def task_names(self) -> list[str]:
        if self.synthetic is not None:
            return list(SYNTHETIC_TASKS)
        return list(self.tasks)

    @property
    def steps_per_meta_step(self) -> int:
        return self.search.steps_per_meta_step or self.train.steps // self.search.meta_steps

    @property
    def search_steps(self) -> int:
        return self.steps_per_meta_step * self.search.meta_steps

    def resolve(self, path: str) -> Path:
        p = Path(os.path.expanduser(path))
        return p if p.is_absolute() else Path(self.base_dir) / p

    def fingerprint(self) -> dict[str, Any]:
        """Everything that determines a run's result (for resume checks).

        Settings that only change speed or where caches live (thread counts,
        evaluation and encoding batch sizes, the cache directory) are left out,
        so changing them does not block a resume.
        """
        d = self.model_dump(mode="json")
        for section, key in (("train", "threads"), ("train", "eval_batch_size"), ("encoder", "threads"),
                             ("encoder", "batch_size"), ("encoder", "cache_dir")):
            d[section].pop(key, None)
        return d


# ------------------------------------------------------------------ loading


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The config section (a pydantic model) that the keys ``loc`` lead to, if any."""
    model: type[BaseModel] = Config
    parts = list(loc)
    while parts:
        f = model.model_fields.get(str(parts.pop(0)))
        if f is None:
            return None
        nxt = None
        for ann in (f.annotation, *get_args(f.annotation)):
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                nxt = ann
            elif get_origin(ann) is dict:
                val = get_args(ann)[1] if len(get_args(ann)) == 2 else None
                if isinstance(val, type) and issubclass(val, BaseModel) and parts:
                    parts.pop(0)  # the mapping's key, e.g. a task name
                    nxt = val
        if nxt is None:
            return None
        model = nxt
    return model


def _key(part: Any) -> str:
    """A key of an error location as written: plain names bare, anything odd (dots, newlines) quoted."""
    text = str(part)
    return text if text and text.isprintable() and "." not in text and " " not in text else repr(part)


_UNION_TAG = re.compile(r"^(list|dict|set|tuple|literal|function-[a-z]+)\[.*\]$")


def _format_error(source: str, err: ValidationError) -> str:
    errors = err.errors()
    # within a union, the member whose type does not even match the input is the least useful error
    e = next((x for x in errors if not (x["type"].endswith("_type") and x["loc"] and _UNION_TAG.match(str(x["loc"][-1])))),
             errors[0])
    # pydantic tags errors inside a union with the member's type (``labels.list[str].0``): drop the tags
    loc_parts = [_key(p) for p in e["loc"] if not (isinstance(p, str) and _UNION_TAG.match(p))]
    cause = (e.get("ctx") or {}).get("error")
    if isinstance(cause, _FieldError):
        loc_parts += cause.field.split(".")
    loc = ".".join(loc_parts) or "(top level)"
    msg = e["msg"]
    if e["type"] == "extra_forbidden":
        msg = "unknown key"
        section = _model_at(tuple(e["loc"][:-1]))
        if section is not None:
            known = [k for k, f in section.model_fields.items() if not f.exclude]
            msg += f"; expected one of {known}"
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    got = e.get("input")
    extra = ""
    if (
        e["type"] not in ("missing", "extra_forbidden")
        and not isinstance(got, (dict, list, BaseModel))
        and "input" in e
    ):
        extra = f" (got {got!r})"
    more = f" [and {len(errors) - 1} more error(s)]" if len(errors) > 1 else ""
    return f"{source}: {loc}: {msg}{extra}{more}"


def parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. search.epsilon=0.05")
    key, value = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {item!r}: empty key")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError):  # not a YAML value: the string
        parsed = value
    return key.split("."), parsed


def apply_overrides(raw: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    for item in overrides or []:
        keys, value = parse_override(item)
        d = raw
        for k in keys[:-1]:
            nxt = d.get(k)
            if nxt is None:
                nxt = d[k] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"override {item!r}: {k!r} is not a section")
            d = nxt
        d[keys[-1]] = value
    return raw


def config_from_dict(raw: Any, source: str = "config", base_dir: str | os.PathLike = ".") -> Config:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    bad = [k for k in raw if not isinstance(k, str)]
    if bad:
        raise ConfigError(f"{source}: key {bad[0]!r} is not a string; expected section names such as 'search'")
    for internal in ("base_dir", "source"):
        if internal in raw:
            raise ConfigError(f"{source}: {internal}: unknown key")
    try:
        return Config(**raw, base_dir=str(base_dir), source=source)
    except ValidationError as e:
        raise ConfigError(_format_error(source, e)) from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply (or a YAML alias refers to itself)") from None


def load_config(path: str | os.PathLike | None, overrides: list[str] | None = None) -> Config:
    """Read and validate a YAML config (``None``: the built-in benchmark)."""
    if path is None:
        raw: Any = {"synthetic": {}, "train": {"steps": 500}}
        source, base = "<built-in>", Path.cwd()
    else:
        p = Path(path)
        source, base = str(p), p.resolve().parent
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{p}: config file not found") from None
        except IsADirectoryError:
            raise ConfigError(f"{p}: is a directory, expected a YAML file") from None
        except UnicodeDecodeError as e:
            raise ConfigError(f"{p}: not UTF-8 text ({e.reason} at byte {e.start})") from None
        except OSError as e:
            raise ConfigError(f"{p}: cannot be read ({e.strerror or e})") from None
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = f":{mark.line + 1}" if mark is not None else ""
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise ConfigError(f"{p}{line}: not valid YAML ({problem})") from None
        except RecursionError:
            raise ConfigError(f"{p}: YAML nested too deeply") from None
        except (ValueError, TypeError, OverflowError) as e:  # e.g. an impossible date, '!!float abc'
            raise ConfigError(f"{p}: a YAML value cannot be read ({e})") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    raw = apply_overrides(raw, overrides)
    return config_from_dict(raw, source, base)


def builtin_config(overrides: list[str] | None = None) -> Config:
    return load_config(None, overrides)
