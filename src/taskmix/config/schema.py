"""The config schema: one pydantic model per section, with bounds, types and field descriptions."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StrictBool, StrictInt, field_validator, model_validator

from ..devices import DEVICE_PATTERN


SYNTHETIC_TASKS = ("target", "helpful", "harmful", "irrelevant")
"""The built-in benchmark's tasks, in order (:mod:`taskmix.data.synthetic` generates them)."""


def _excerpt(text: str, limit: int = 60) -> str:
    """At most ``limit`` characters of user input for a message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _FieldError(ValueError):
    """A cross-field check that fails: ``field`` (dotted, relative to the model) names the key to blame."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class _Strict(BaseModel):
    # integers are StrictInt (``true`` or ``1e9`` are not counted as integers); floats must be finite
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False, use_attribute_docstrings=True)


SEED_LIMIT = 2**32
"""Seeds: 0 <= seed < 2**32."""
MAX_DRAWS_PER_META_STEP = 2**27
"""The most task/example draws one meta-step holds at once (``steps_per_meta_step * train.batch_size``)."""
MAX_HIDDEN_WEIGHTS = 2**28
"""The most hidden-to-hidden weights a model may have (``model.hidden ** 2 * (model.layers - 1)``)."""
MAX_SYNTHETIC_VALUES = 2**28
"""The most feature values the built-in benchmark may generate (``synthetic.dim`` times all its examples)."""
MAX_ORACLE_POINTS = 2000
"""The most mixtures the oracle's grid may hold (each one is a training run)."""


def _check_device_name(value: str) -> str:
    if not re.match(DEVICE_PATTERN, value):
        raise ValueError("not a device; expected auto, cpu, cuda, cuda:<index> or mps")
    return value


class TaskSpec(_Strict):
    """Where one task's data lives and how to read it."""

    train: str | None = None
    """training data file (relative to the config file)"""
    validation: str | None = None
    """validation file: reported on when there is no test split; never used for search"""
    test: str | None = None
    """test file: the reported metric is computed on it (never used for search)"""
    preset: str | None = Field(None, description="e.g. glue/rte, glue/mnli, xnli/sw")
    splits: dict[str, str | None] | None = Field(
        None, description="role -> file stem / hub split, e.g. {train: train_9k}; null: do not load that role")
    format: Literal["auto", "npz", "jsonl", "json", "csv", "tsv", "parquet"] = "auto"
    """file format; auto: from the extension"""
    columns: dict[str, str] | None = Field(None, description="text_a / text_b / label -> column name")
    labels: list[str] | dict[str, int] | None = None
    """label names (list, index = id) or a name -> id mapping"""
    metric: Literal["accuracy", "macro_f1", "bits_per_byte"] = "accuracy"
    """the metric reported for this task (bits_per_byte: the language-modelling regime's, lower is better)"""
    max_train: StrictInt | None = Field(None, gt=0, description="use at most this many training rows")
    corpus: str | None = Field(None, description=(
        "model.regime lm: the task's text, a .txt file (one sentence or document a line), a .jsonl file (a 'text' "
        "field) or a preset lm/<lang> (docs/lm.md); max_train then counts sentences"))


class SyntheticConfig(_Strict):
    """The built-in benchmark (see :mod:`taskmix.data.synthetic`)."""

    dim: StrictInt = Field(32, gt=4, le=2**16)
    """input dimension of the built-in tasks"""
    n_target: StrictInt = Field(1000, gt=8, le=10**8)
    """training examples of the target task (the reward split is carved out of them)"""
    n_helpful: StrictInt = Field(4000, gt=0, le=10**8)
    """examples of the helpful task (same rule as the target)"""
    n_harmful: StrictInt = Field(4000, gt=0, le=10**8)
    """examples of the harmful task (a conflicting rule)"""
    n_irrelevant: StrictInt = Field(4000, gt=0, le=10**8)
    """examples of the irrelevant task (far away in input space)"""
    n_test: StrictInt = Field(2000, gt=0, le=10**8)
    """validation and test examples of the target"""
    label_noise: float = Field(0.05, ge=0, lt=0.5)
    """label-flip rate of the auxiliary tasks"""
    target_label_noise: float = Field(0.05, ge=0, lt=0.5)
    """label-flip rate of the target's train/validation data (test is clean)"""
    helpful_shift: float = Field(0.0, ge=0, le=1e6)
    """input shift of the helpful task (0: the target's inputs)"""
    data_seed: StrictInt = Field(0, ge=0, lt=SEED_LIMIT)
    """seed of the generated data (independent of the run seed)"""


class LMConfig(_Strict):
    """The language-modelling regime's model and text windows (``model.regime: lm``; docs/lm.md)."""

    arch: Literal["gpt2", "llama"] = "gpt2"
    """a transformers config, randomly initialised (nothing is downloaded); 256 byte ids"""
    layers: StrictInt = Field(2, ge=1, le=64)
    """transformer blocks"""
    width: StrictInt = Field(128, ge=8, le=2**14)
    """hidden size (a multiple of heads)"""
    heads: StrictInt = Field(4, ge=1, le=256)
    """attention heads"""
    context: StrictInt = Field(64, ge=2, le=2**14)
    """bytes a window predicts (each example is a window of context + 1 bytes)"""
    validation_sentences: StrictInt = Field(200, gt=0, le=10**7)
    """the target's validation text: sentences held out of its training text (model selection, never reported)"""
    test_sentences: StrictInt = Field(1000, gt=0, le=10**7)
    """the target's test text: at most this many sentences (the reported split)"""

    @model_validator(mode="after")
    def _heads(self) -> "LMConfig":
        if self.width % self.heads:
            raise _FieldError("width", f"width ({self.width}) must be a multiple of heads ({self.heads})")
        return self


class ModelConfig(_Strict):
    """The model: an MLP trunk over features (frozen regime) or a transformer (fine-tuning), with per-task or shared heads."""
    hidden: StrictInt = Field(64, gt=0, le=2**16)
    """hidden units of the trunk"""
    layers: StrictInt = Field(1, ge=1, le=64)
    """hidden layers of the trunk"""
    dropout: float = Field(0.0, ge=0, lt=1)
    """dropout rate in the trunk"""
    heads: Literal["per_task", "shared"] = "per_task"
    """per_task: one output head per task; shared: one head for all (one label space)"""
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    """the model's optimiser"""
    lr: float = Field(3e-3, gt=0)
    """the model's learning rate"""
    weight_decay: float = Field(0.0, ge=0, le=1e3)
    """the optimiser's weight decay"""
    lr_decay: Literal["none", "linear", "cosine"] = Field("none", description=(
        "the learning rate over each training run: none (constant, the default), or decayed linearly or "
        "along a half cosine from lr to 0 at the run's end (a replay: its training steps; a search round: "
        "the steps it trains; the search's probes step at the rate in force)"))
    regime: Literal["frozen", "finetune", "lm"] = "frozen"
    """frozen: an MLP over cached encoder features; finetune: train the encoder end to end; lm: a byte-level causal
    language model trained from scratch on text corpora (model.lm, docs/lm.md)"""
    lm: LMConfig | None = None
    """the language model of regime lm (default: LMConfig's defaults)"""


class EncoderConfig(_Strict):
    """Text encoder (frozen: features cached on disk; finetune: trained end to end)."""

    model: str = "minilm"
    """text encoder: minilm (the packaged MiniLM) or a local model directory"""
    pair: Literal["concat", "joint"] = "concat"
    """sentence pairs: concat (encode each, concatenate) or joint (one [SEP]-joined input)"""
    cache_dir: str | None = None
    """where encoded features are cached (default: $TASKMIX_CACHE, else ~/.cache/taskmix)"""
    threads: StrictInt | None = Field(None, gt=0, le=4096)
    """CPU threads for encoding"""
    batch_size: StrictInt = Field(64, gt=0, le=2**20)
    """encoding batch size (speed only)"""
    max_length: StrictInt = Field(128, gt=0, le=2**16)
    """maximum tokens per input"""
    device: str = Field("auto", description="auto, cpu, cuda, cuda:1, mps")
    """auto, cpu, cuda, cuda:1, ..."""

    precision: Literal["fp32", "bf16"] = Field(
        "fp32", description="bf16: torch models in bfloat16 (~2x faster on AVX512-BF16/AMX CPUs; own cache identity)")
    """numeric precision of torch encoder models"""

    _device = field_validator("device")(lambda v: _check_device_name(v))


class TrainConfig(_Strict):
    """Training: steps, batch size, sampling unit (sample or batch), evaluation batch, threads and device."""
    batch_size: StrictInt = Field(64, gt=0, le=2**20)
    """examples per training step"""
    steps: StrictInt = Field(1000, gt=0, le=10**9)
    """training steps of one run (a search's budget too)"""
    per: Literal["sample", "batch"] = "sample"
    """sample: draw a task for each example; batch: one task per batch"""
    eval_batch_size: StrictInt = Field(4096, gt=0, le=2**24)
    """evaluation batch size (speed only)"""
    threads: StrictInt | None = Field(None, gt=0, le=4096)
    """CPU threads for training (default: 1 for frozen, all for finetune)"""
    device: str = Field("auto", description="auto (CUDA when present), cpu, cuda, cuda:1, ...")

    _device = field_validator("device")(lambda v: _check_device_name(v))


class SearchConfig(_Strict):
    """The learned search: policy, reward, exploration, REINFORCE update, meta-steps and the reward split."""
    policy: Literal["time_invariant", "time_variant"] = "time_invariant"
    """time_invariant: one mixture for the run; time_variant: one per meta-step"""
    reward: str = Field("gradient_alignment", description="a name of taskmix.runs.rewards.REWARDS (checked when a run starts)")
    epsilon: float = Field(0.1, ge=0, le=1)
    """share of uniformly random task draws (exploration)"""
    gamma: float = Field(0.2, ge=0, le=1)
    """gamma - epsilon is the share of draws forced to the target"""
    meta_steps: StrictInt = Field(10, gt=0, le=10**6)
    """policy updates per run (train.steps are split evenly among them)"""
    steps_per_meta_step: StrictInt | None = Field(None, gt=0, le=10**9)
    """training steps per meta-step (default: train.steps / meta_steps)"""
    horizon: float = Field(0.5, gt=0, le=1, description=(
        "share of each meta-step's training steps the search itself trains (a shorter, cheaper search): "
        "with horizon h a meta-step trains round(h x steps_per_meta_step) steps (at least 1) before its "
        "policy update, and the learned schedule's rows still span steps_per_meta_step steps each, so a "
        "replay covers the whole run. 0.5 (default): the search costs about one plain run; 1: the search "
        "trains as long as the run it plans"))
    lr: float = Field(0.02, gt=0)
    """learning rate of the policy's REINFORCE update"""
    sgd_steps: StrictInt = Field(100, gt=0, le=10**5)
    """gradient-ascent steps of each policy update"""
    baseline: Literal["none", "moving_average"] = "moving_average"
    """reward baseline: none (the paper) or a moving average"""
    baseline_decay: float = Field(0.9, ge=0, lt=1)
    """decay of the moving-average baseline"""
    normalize: bool = True
    """divide advantages by their running root-mean-square"""
    entropy: float = Field(0.0, ge=0, le=1e6)
    """entropy bonus of the policy update"""
    rounds: StrictInt = Field(1, gt=0, le=1000)
    """search rounds from fresh models, carrying the policy over"""
    reward_fraction: float = Field(0.1, gt=0, lt=1)
    """share of the target's training data held out as the reward split (stratified)"""
    reward_folds: StrictInt | Literal["auto"] = Field("auto", description=(
        "cross-fitting: with k > 1 the search uses the target's whole training data (its train and reward "
        "splits together) in k stratified folds; meta-step m rewards on fold m mod k and trains the target on "
        "the other k - 1 folds, so every target example both trains and rewards (1: the fixed reward split, "
        "as in the paper; k is capped at half the target's rows). auto: 4 for rewards whose credit holds up "
        "on a fold the model trained on before (gradient_alignment and its controls), 1 for rewards that "
        "measure the reward split's loss or accuracy directly (lookahead, accuracy, loss), which such a fold "
        "flatters"))
    rotate_folds: bool = Field(True, description=(
        "with reward_folds k > 1: rotate the reward fold every meta-step (true), or keep fold 0 as a fixed "
        "reward split of 1/k of the target's data that the search never trains on (false)"))
    probe_steps: StrictInt = Field(5, gt=0, le=10**4)
    """optimiser steps per probe of the lookahead and mixture_lookahead rewards"""
    tilt: float = Field(1.0, gt=0, le=20, description=(
        "mixture_lookahead: the logit shift of its probes (each task's logit is raised and lowered by tilt "
        "in the policy's mixture; 1 multiplies a small share by about e)"))
    probe_batches: StrictInt = Field(16, gt=0, le=10**4)
    """batches per task for gradient-based rewards"""
    similarity: Literal["dot", "cosine"] = "dot"
    """the gradient_alignment reward: dot (default; the first-order drop of the target's loss) or cosine (MultiDDS).
    The online strategy gradient_alignment has its own, cosine by default (docs/method.md says why)"""
    credit_groups: int = Field(4, ge=1, description="groups the per-task credit's probes (and the reward split) are taken in, for its standard error")
    shrink: float = Field(0.0, ge=0, description="variance-aware update: per-task credits are soft-thresholded by shrink x their standard error (0: off)")
    prior: str = Field("uniform", description=(
        "the mixture the policy starts from and prior_pull pulls toward: a rule of taskmix.schedule.RULES on the "
        "tasks' training sizes (the target's after the reward split), e.g. uniform, proportional, "
        "examples_proportional (with compare.cap) or temperature_<T>; every task must get a positive weight "
        "(checked when a run starts)"))
    prior_pull: float = Field(0.0, ge=0, description="pull of the logits toward the prior (search.prior) in every update: an L2 penalty's weight (0: off)")
    time_invariant_weights: Literal["last", "average"] = Field("last", description=(
        "the time-invariant schedule: the policy after its last update (last), or the policy averaged over the "
        "search's meta-steps (average: an averaged iterate, steadier when the credit is noisy)"))
    time_variant_init: Literal["uniform", "previous"] = "previous"
    """time_variant: start each meta-step's logits from the previous meta-step's (previous) or from the prior's (uniform: search.prior, uniform by default)"""
    min_weight: float = Field(0.05, ge=0, lt=0.5, description=(
        "the learned schedules drop every auxiliary whose weight is below this to exactly 0 (each row renormalised; "
        "the target is never dropped): a softmax policy never reaches 0, and on a small target a few percent of a "
        "noisy or conflicting task can cost points. 0.05 (default) was chosen on the development families "
        "(BENCHMARKS.md, min-weight-dev); 0: off"))
    credit_window: StrictInt = Field(2, gt=0, le=10**6, description=(
        "credit_proportional: the search's first meta-steps whose per-task credit it averages (all of them when "
        "the search has fewer). Early, before a small target is memorised, the credit reads transfer; later it reads "
        "the memorised target (BENCHMARKS.md, credit-proportional-dev)"))
    credit_temperature: float = Field(1.0, gt=0, le=1e6, description=(
        "credit_proportional: weights proportional to max(credit, 0) x n^(1/T) (1: each example weighted by its "
        "task's credit; large T: by credit alone)"))

    @model_validator(mode="after")
    def _exploration(self) -> "SearchConfig":
        if self.epsilon > self.gamma:
            raise _FieldError(
                "epsilon", f"epsilon ({self.epsilon}) must not exceed gamma ({self.gamma}): gamma - epsilon is the target share"
            )
        return self


INCUMBENT_MARGIN = 1.0
"""compare.incumbent_margin's default (taskmix.compare.recommend.INCUMBENT_Z, chosen on the text development families)."""


class CompareConfig(_Strict):
    """A comparison: which methods, the rule and oracle settings, and each online strategy's settings."""
    methods: list[str] | None = None
    """methods to compare (default: the standard set); names of taskmix.compare.METHODS"""
    cap: StrictInt = Field(2**15, gt=0, le=2**40)
    """examples_proportional's cap K: weights proportional to min(n, K)"""
    oracle_step: float = Field(0.25, gt=0, le=1)
    """oracle: grid step on the simplex (1/step must be an integer)"""
    oracle_samples: StrictInt = Field(64, gt=0, le=MAX_ORACLE_POINTS)
    """oracle with more than 4 tasks: random mixtures tried"""
    incumbent: str | None = None
    """the recommendation's default answer: a rule (e.g. proportional) or learned (the best learned candidate on the
    held-out rows), kept unless the best candidate beats it there by more than incumbent_margin standard errors;
    null: the best candidate wins (default: the regime's, single_task for feature tasks, proportional for text)"""
    incumbent_margin: float = Field(INCUMBENT_MARGIN, ge=0, le=10)
    """standard errors of held-out advantage a candidate needs to replace compare.incumbent"""
    choose_by: Literal["metric", "loss"] = "metric"
    """what the recommendation scores the held-out target rows by: the target's metric, or each row's loss (the
    retrained model's cross-entropy on it; the metric where the rows keep none, e.g. language modelling)"""
    confirm_seeds: StrictInt | None = Field(None, ge=0, le=32)
    """when the recommendation's choice is within noise of other candidates, run just those candidates on this many
    more seeds (after the comparison's own) and choose again on all of their held-out rows; the extra seeds' rows
    feed only the choice, never the table.  null: the regime's default (CONFIRM_SEEDS for feature tasks and the
    built-in benchmark, 0 for text, fine-tuning and language modelling)"""
    confirm_rows: StrictInt | None = Field(None, ge=0, le=1_000_000)
    """a confirmation sized by the target's held-out rows: after its first round, the candidates still within noise
    run on another round of confirm_seeds seeds while the seeds used hold fewer held-out target rows than this (at
    most CONFIRM_ROUNDS rounds); 0: one round.  null: the regime's default (CONFIRM_ROWS where the regime confirms by
    default, else 0)"""
    confirm_fraction: float | None = Field(None, gt=0, lt=1)
    """the share of the target's training rows a confirmation's runs hold out (their reward split, which the choice is
    made on), in place of search.reward_fraction: a larger share gives each rerun more held-out rows to weigh, each
    model trained on fewer.  The comparison's own rows keep search.reward_fraction.  null: the regime's default
    (CONFIRM_FRACTION for feature tasks, search.reward_fraction elsewhere)"""
    recommend: StrictBool = True
    """end with one recommended mixture (recommended.json, the verdict atop the report) and its 'recommended' rows: the
    recommendation retrained on every seed and scored on the report split like every other method"""
    strategies: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="hyper-parameters of the online strategies, one section each: {exp3: {lr: 0.5}} "
        "(checked against taskmix.strategies.STRATEGIES when a comparison starts)",
    )
    peers: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="settings of the peer methods (other papers' mixture methods), one section each: "
        "{regmix: {proxy_runs: 32}} (checked against taskmix.compare.peers.PEER_SETTINGS when a comparison starts)",
    )


class MlflowConfig(_Strict):
    """MLflow tracking (needs the mlflow or mlflow-skinny package)."""

    tracking_uri: str | None = None
    """tracking URI, e.g. file:./mlruns (relative to the config) or http://host:5000; default: $MLFLOW_TRACKING_URI"""
    experiment: str = "taskmix"
    """MLflow experiment the runs are logged to"""


class WandbConfig(_Strict):
    """Weights & Biases tracking (needs the wandb package)."""

    project: str = "taskmix"
    """W&B project the runs are logged to"""
    entity: str | None = None
    """W&B entity (user or team) that owns the project; default: $WANDB_ENTITY, else your default entity"""
    mode: Literal["online", "offline", "disabled"] | None = None
    """online (needs wandb login), offline (run files to upload later with wandb sync) or disabled; default: $WANDB_MODE, else online"""
    dir: str | None = None
    """directory W&B writes its run files under (DIR/wandb/...), relative to the config; default: $WANDB_DIR, else ."""

    @field_validator("project", "entity")
    @classmethod
    def _name(cls, v: str | None, info: Any) -> str | None:
        what = info.field_name
        if v is None:
            return None
        if not v.strip() or v != v.strip():
            raise ValueError(f"an empty {what} or one with leading or trailing spaces")
        if len(v) > 128:
            raise ValueError(f"a W&B {what} has at most 128 characters (got {len(v)})")
        bad = sorted({c for c in v if c in "/\\#?%:" or not c.isprintable()})
        if bad:
            raise ValueError(f"a W&B {what} cannot contain {', '.join(repr(c) for c in bad)}")
        return v

    @field_validator("dir")
    @classmethod
    def _dir(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("an empty path; name a directory, or leave dir out for $WANDB_DIR")
        return v


class LoggingConfig(_Strict):
    """Experiment tracking besides the always-written JSON lines, CSV and TensorBoard events."""

    mlflow: MlflowConfig | None = None
    """log each compare (method, seed) run and each search to MLflow (see taskmix.runs.tracking)"""
    wandb: WandbConfig | None = None
    """log each compare (method, seed) run and each search to Weights & Biases (see taskmix.runs.tracking)"""


TEXT_SEARCH_DEFAULTS: dict[str, Any] = {"reward": "lookahead", "probe_steps": 20, "time_invariant_weights": "average",
                                        "horizon": 1.0}
"""The search defaults for text tasks in the frozen-encoder regime, applied to every key the config leaves unset.

Measured on GLUE and XNLI (BENCHMARKS.md, *text*, *compare-rte3*, *table1*): with frozen sentence features the
one-step gradient credit rates the target's own data highest and keeps the mixture on the target (RTE + MNLI:
0.97-1.00 on RTE, 0.552 against 0.612 with these settings); twenty optimiser steps per task on a copy of the
model see an auxiliary's effect, the policy averaged over meta-steps is steadier than its last iterate, and the
probes' cost is not cut by a shorter search.  Feature (npz) tasks and the built-in benchmark keep the library
defaults, chosen on the task families (BENCHMARKS.md, *families*)."""


CONFIRM_SEEDS = 3
"""compare.confirm_seeds's default for feature tasks (npz, the built-in benchmark, the task families).

Chosen on the feature development families (BENCHMARKS.md, *confirm-dev*): the recommendation's whole regret there
is the noise of choosing on a few dozen held-out rows (the best candidate by test accuracy has none); rerunning the
candidates within noise of the choice on three more seeds and choosing again cut it from 1.08 to 0.76 points (wide)
and from 0.58 to 0.17 (v1).  Text (where an incumbent does that job), fine-tuning and language modelling were not
screened and keep 0."""

CONFIRM_ROUNDS = 3
"""The most rounds a confirmation sized by compare.confirm_rows runs (the first included): 9 more seeds at most with
compare.confirm_seeds 3."""

CONFIRM_ROWS = 60
"""compare.confirm_rows's default for feature tasks: a confirmation continues, a round of confirm_seeds seeds at a
time, while the seeds used hold fewer held-out target rows than this (a target under about 100 training rows holds
fewer than 10 per seed).  Chosen on the feature development families (BENCHMARKS.md, *confirm-sized-dev*): mean
regret 0.76 / 0.06 points (wide / v1) against 0.76 / 0.17 for one round; 100 rows did worse on the wide families."""

CONFIRM_FRACTION = 0.5
"""compare.confirm_fraction's default for feature tasks: a confirmation's runs hold out half the target's training
rows (the comparison's own rows: search.reward_fraction, 0.1), so each rerun weighs five times the held-out rows,
each model trained on half the target.  Chosen on the feature development families by a pre-registered rule
(BENCHMARKS.md, *confirm-fraction-dev*): mean regret 0.42 / 0.07 points (wide / v1) against 0.76 / 0.06 for 0.1 and
0.74 / 0.08 for 0.33, the families within noise of the best rule and the cells below single-task unchanged."""


TEXT_COMPARE_DEFAULTS: dict[str, Any] = {"incumbent": "proportional"}
"""The comparison defaults for text tasks in the frozen-encoder regime, applied to every key the config leaves unset.

Measured on the real-text development families (BENCHMARKS.md, *text-families-dev*): every mixture is within a
point or two there, and the best of a dozen candidates on a few hundred held-out rows is mostly the luckiest
one; keeping proportional unless a candidate beats it by more than one standard error cut the recommendation's
regret to the test-oracle from 0.65 to 0.03 points and raised the families within noise of the best rule from
13/16 to 15/16; on 20 fresh families (*text-families-eval-2*) -0.11 points and 20/20.  Feature tasks do not take
proportional: there it lost on fresh families (*families-wide-eval-2*: 2.81 against 1.84 points without); they keep
target-only (:data:`FEATURE_COMPARE_DEFAULTS`)."""


FEATURE_COMPARE_DEFAULTS: dict[str, Any] = {"incumbent": "single_task"}
"""The comparison defaults for feature tasks (npz, the built-in benchmark, in-memory tasks) in the frozen regime,
applied to every key the config leaves unset: target-only is the recommendation's default answer, kept unless a
mixture beats it on the held-out target rows by more than compare.incumbent_margin (1) standard errors, in every
round of the confirmation.

Chosen on the feature development families by a pre-registered rule (BENCHMARKS.md, *incumbent-target-dev*): on a
second wide development set (121), whose choices over target-only on small targets left 6/90 cells more than 2 points
below single-task, 4/90 with the incumbent at 1 SE (0.5 SE: 6/90), the mean regret 1.00 -> 0.95 points; on the two
older development sets (101, v1) nothing moved by more than 0.07 points.  A rule other than target-only as the
incumbent lost on fresh feature families (*families-wide-eval-2*); the text regime keeps proportional
(:data:`TEXT_COMPARE_DEFAULTS`)."""


def _is_text_spec(spec: "TaskSpec") -> bool:
    """A preset, a text format, or data files other than ``.npz``; a spec with no file and no preset holds
    in-memory tasks (the Python API, the task families) and keeps the library defaults."""
    if spec.preset is not None:
        return True
    if spec.format != "auto":
        return spec.format != "npz"
    paths = [str(p) for p in (spec.train, spec.validation, spec.test) if p]
    return any(not p.lower().endswith(".npz") for p in paths)


class Config(_Strict):
    """A whole run: tasks (or the built-in benchmark), target, and one section per component."""
    target: str = "target"
    """the task whose test metric is optimised and reported"""
    tasks: dict[str, TaskSpec] = Field(default_factory=dict)
    """task name -> where its data lives (or give synthetic)"""
    synthetic: SyntheticConfig | None = None
    """use the built-in benchmark instead of tasks"""
    data_dir: str | None = None
    """directory of local copies of preset data (<data_dir>/<preset>/<split>.<ext>)"""
    seed: StrictInt = Field(0, ge=0, lt=SEED_LIMIT, description="0 <= seed < 2**32")
    """run seed (model initialisation, sampling, reward split)"""
    model: ModelConfig = Field(default_factory=ModelConfig)
    """the model trained on the tasks"""
    encoder: EncoderConfig = Field(default_factory=EncoderConfig)
    """text encoder (text tasks only)"""
    train: TrainConfig = Field(default_factory=TrainConfig)
    """the training run"""
    search: SearchConfig = Field(default_factory=SearchConfig)
    """the learned-schedule search"""
    compare: CompareConfig = Field(default_factory=CompareConfig)
    """taskmix compare"""
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    """experiment tracking (MLflow); never part of a resume check"""
    strict: bool = Field(False, description="refuse, not just warn about, suspicious data (features of magnitude > 1e6)")

    # where relative paths are resolved; not part of the file
    base_dir: str = Field(".", exclude=True)
    # where the config came from (a file, or "<built-in>"), named in messages; not part of the file
    source: str = Field("config", exclude=True)
    # the keys the regime's defaults filled in (TEXT_SEARCH_DEFAULTS: search keys, bare; TEXT_COMPARE_DEFAULTS and
    # FEATURE_COMPARE_DEFAULTS: "compare.<key>"), for `taskmix config show`
    _regime_defaults: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _tasks(self) -> "Config":
        if self.synthetic is None and not self.tasks:
            raise _FieldError("tasks", "either 'tasks' or 'synthetic' must be given")
        if self.synthetic is not None and self.tasks:
            raise _FieldError("tasks", "give 'tasks' or 'synthetic', not both")
        if self.synthetic is not None and "heads" not in self.model.model_fields_set:
            # the built-in tasks share one label space, like XNLI languages
            self.model = self.model.model_copy(update={"heads": "shared"})
        # the regime's defaults, for every key the config leaves unset (text: search and compare keys; feature tasks in
        # the frozen regime: compare keys), all found before any is assigned: an assignment validates the config again
        text = self.regime == "text"
        frozen_features = self.regime == "features" and self.model.regime == "frozen"
        search_defaults = TEXT_SEARCH_DEFAULTS if text else {}
        compare_defaults = TEXT_COMPARE_DEFAULTS if text else FEATURE_COMPARE_DEFAULTS if frozen_features else {}
        unset = {k: v for k, v in search_defaults.items() if k not in self.search.model_fields_set}
        unset_compare = {k: v for k, v in compare_defaults.items() if k not in self.compare.model_fields_set}
        if unset:
            self.search = self.search.model_copy(update=unset)
        if unset_compare:
            self.compare = self.compare.model_copy(update=unset_compare)
        if unset or unset_compare:  # (an assignment above, e.g. the built-in benchmark's heads, may have filled them)
            self._regime_defaults = tuple(unset) + tuple(f"compare.{k}" for k in unset_compare)
        if self.model.regime == "lm" or any(s.corpus is not None for s in self.tasks.values()):
            self._lm_tasks()
        else:
            lm_metric = next((n for n, s in self.tasks.items() if s.metric == "bits_per_byte"), None)
            if lm_metric is not None:
                raise _FieldError(f"tasks.{lm_metric}.metric", "bits_per_byte scores a language model: set model.regime: lm "
                                  "and give the task a corpus")
        names = self.task_names()
        if self.target not in names:
            shown = [_excerpt(n, 40) for n in names[:10]] + (["..."] if len(names) > 10 else [])
            raise _FieldError("target", f"target {_excerpt(repr(self.target))} is not among the tasks {shown}")
        draws = self.steps_per_meta_step * self.train.batch_size
        if draws > MAX_DRAWS_PER_META_STEP:
            raise _FieldError(
                "train.batch_size",
                f"steps per meta-step ({self.steps_per_meta_step}) x train.batch_size ({self.train.batch_size}) = {draws} "
                f"draws per meta-step, more than {MAX_DRAWS_PER_META_STEP}; use more search.meta_steps or smaller batches",
            )
        hidden_weights = self.model.hidden**2 * (self.model.layers - 1)
        if hidden_weights > MAX_HIDDEN_WEIGHTS:
            raise _FieldError(
                "model.hidden",
                f"model.hidden ({self.model.hidden})^2 x (model.layers ({self.model.layers}) - 1) = {hidden_weights} weights, "
                f"more than {MAX_HIDDEN_WEIGHTS}",
            )
        if self.synthetic is not None:
            sy = self.synthetic
            values = sy.dim * (sy.n_target + sy.n_helpful + sy.n_harmful + sy.n_irrelevant + 2 * sy.n_test)
            if values > MAX_SYNTHETIC_VALUES:
                raise _FieldError(
                    "synthetic.dim",
                    f"synthetic.dim ({sy.dim}) x all examples = {values} feature values, more than {MAX_SYNTHETIC_VALUES}",
                )
        n_tasks = len(names)
        if n_tasks <= 4:  # the oracle's grid (beyond 4 tasks it samples compare.oracle_samples mixtures)
            k = round(1.0 / self.compare.oracle_step)
            if abs(k * self.compare.oracle_step - 1.0) > 1e-9:  # checked here, not when the oracle's cell runs
                raise _FieldError("compare.oracle_step", f"1/step must be an integer, got step={self.compare.oracle_step}")
            points = math.comb(k + n_tasks - 1, n_tasks - 1)
            if points > MAX_ORACLE_POINTS:
                raise _FieldError(
                    "compare.oracle_step",
                    f"a grid of step {self.compare.oracle_step} over {n_tasks} tasks has {points} mixtures "
                    f"(one training run each), more than {MAX_ORACLE_POINTS}; use a larger step",
                )
        spm = self.search.steps_per_meta_step
        if spm is None:
            if self.train.steps % self.search.meta_steps:
                raise _FieldError(
                    "train.steps",
                    f"train.steps ({self.train.steps}) must be a multiple of search.meta_steps "
                    f"({self.search.meta_steps}), or set search.steps_per_meta_step"
                )
        return self

    def _lm_tasks(self) -> None:
        """Regime lm: every task a corpus (and nothing else), bits per byte its metric; a corpus needs regime lm."""
        if self.model.regime != "lm":
            name = next(n for n, s in self.tasks.items() if s.corpus is not None)
            raise _FieldError(f"tasks.{name}.corpus", "a corpus is a language-modelling task: set model.regime: lm")
        if self.synthetic is not None:
            raise _FieldError("synthetic", "model.regime lm trains on text corpora (tasks with corpus:), not the built-in benchmark")
        if self.model.lm is None:
            self.model = self.model.model_copy(update={"lm": LMConfig()})
        for name, spec in self.tasks.items():
            if spec.corpus is None:
                raise _FieldError(f"tasks.{name}.corpus", "model.regime lm: every task needs a corpus (a .txt/.jsonl file or lm/<lang>)")
            other = [k for k in ("train", "validation", "test", "preset", "splits", "columns", "labels") if getattr(spec, k) is not None]
            if other:
                raise _FieldError(f"tasks.{name}.{other[0]}", "a corpus task takes corpus, format and max_train only")
            if spec.metric != "bits_per_byte":
                if "metric" in spec.model_fields_set:
                    raise _FieldError(f"tasks.{name}.metric", "a language-modelling task is scored in bits_per_byte")
                self.tasks[name] = spec.model_copy(update={"metric": "bits_per_byte"})

    @property
    def regime(self) -> str:
        """``"lm"`` for the language-modelling regime; ``"text"`` when some task is text read through a frozen
        encoder; else ``"features"`` (npz, built-in)."""
        if self.model.regime == "lm":
            return "lm"
        text = self.synthetic is None and any(_is_text_spec(s) for s in self.tasks.values())
        return "text" if text and self.model.regime == "frozen" else "features"

    @property
    def confirm_seeds(self) -> int:
        """``compare.confirm_seeds``, or the regime's default where it is null: :data:`CONFIRM_SEEDS` for feature
        tasks in the frozen regime, else 0."""
        if self.compare.confirm_seeds is not None:
            return int(self.compare.confirm_seeds)
        return CONFIRM_SEEDS if self.regime == "features" and self.model.regime == "frozen" else 0

    @property
    def confirm_rows(self) -> int:
        """``compare.confirm_rows``, or the regime's default where it is null: :data:`CONFIRM_ROWS` for feature tasks
        in the frozen regime, else 0 (one round)."""
        if self.compare.confirm_rows is not None:
            return int(self.compare.confirm_rows)
        return CONFIRM_ROWS if self.regime == "features" and self.model.regime == "frozen" else 0

    @property
    def confirm_fraction(self) -> float:
        """``compare.confirm_fraction``, or the regime's default where it is null: :data:`CONFIRM_FRACTION` for feature
        tasks in the frozen regime, else ``search.reward_fraction`` (a confirmation's runs hold out what the
        comparison's do)."""
        if self.compare.confirm_fraction is not None:
            return float(self.compare.confirm_fraction)
        frozen_features = self.regime == "features" and self.model.regime == "frozen"
        return CONFIRM_FRACTION if frozen_features else float(self.search.reward_fraction)

    def for_confirmation(self) -> "Config":
        """This config as a confirmation's runs use it: ``search.reward_fraction`` set to :attr:`confirm_fraction`
        (the same config where they agree)."""
        return self.with_reward_fraction(self.confirm_fraction)

    def with_reward_fraction(self, fraction: float | None) -> "Config":
        """This config with ``search.reward_fraction`` set to ``fraction`` (itself for None or the same share),
        validated like the field."""
        if fraction is None or fraction == self.search.reward_fraction:
            return self
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
            raise ValueError(f"reward_fraction: expected a number in (0, 1), got {fraction!r}")
        return self.model_copy(update={"search": self.search.model_copy(update={"reward_fraction": float(fraction)})})

    @property
    def regime_defaults(self) -> tuple[str, ...]:
        """The keys the regime's defaults filled in: for text, ``search`` keys of :data:`TEXT_SEARCH_DEFAULTS` (bare)
        and ``"compare.<key>"`` of :data:`TEXT_COMPARE_DEFAULTS`; for feature tasks in the frozen regime,
        ``"compare.<key>"`` of :data:`FEATURE_COMPARE_DEFAULTS` (empty: the library defaults, or all set)."""
        return self._regime_defaults

    def task_names(self) -> list[str]:
        """Task names in config order (the built-in benchmark's four tasks for ``synthetic``)."""
        if self.synthetic is not None:
            return list(SYNTHETIC_TASKS)
        return list(self.tasks)

    @property
    def steps_per_meta_step(self) -> int:
        """Training steps per meta-step (``search.steps_per_meta_step``, else ``train.steps / meta_steps``)."""
        return self.search.steps_per_meta_step or self.train.steps // self.search.meta_steps

    @property
    def search_steps_per_meta_step(self) -> int:
        """Training steps the search trains per meta-step: ``search.horizon`` x :attr:`steps_per_meta_step` (at least 1)."""
        return max(1, round(self.steps_per_meta_step * self.search.horizon))

    @property
    def search_steps(self) -> int:
        """Training steps of one search round (``search.horizon`` x the planned run's steps)."""
        return self.search_steps_per_meta_step * self.search.meta_steps

    @property
    def schedule_steps(self) -> int:
        """Steps the learned schedule's rows span: ``steps_per_meta_step`` x ``meta_steps`` (the run it plans)."""
        return self.steps_per_meta_step * self.search.meta_steps

    def resolve(self, path: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(os.path.expanduser(path))
        return p if p.is_absolute() else Path(self.base_dir) / p

    def fingerprint(self) -> dict[str, Any]:
        """Everything that determines a run's result (for resume checks).

        Settings that only change speed or where caches live (thread counts,
        evaluation and encoding batch sizes, the cache directory) and the
        tracking section (``logging``) are left out, so changing them does not
        block a resume.
        """
        d = self.model_dump(mode="json")
        d.pop("strict", None)  # only decides whether suspicious data is refused or warned about
        d.pop("logging", None)  # where results are tracked does not change them
        for section, key in (("train", "threads"), ("train", "eval_batch_size"), ("encoder", "threads"),
                             ("encoder", "batch_size"), ("encoder", "cache_dir")):
            d[section].pop(key, None)
        return d
