"""Reading configs: YAML (duplicate keys refused), ``-o KEY=VALUE`` overrides, one-line field errors; the resolved config and its JSON schema."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from ..errors import ConfigError
from ..files import read_input


from .schema import Config, _excerpt, _FieldError


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
    """A key of an error location as written: plain names bare, anything odd (dots, newlines) quoted; long ones cut."""
    text = str(part)
    return _excerpt(text if text and text.isprintable() and "." not in text and " " not in text else repr(part))


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
        extra = f" (got {_excerpt(repr(got))})"
    more = f" [and {len(errors) - 1} more error(s)]" if len(errors) > 1 else ""
    return f"{source}: {loc}: {msg}{extra}{more}"


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (instead of keeping the last)."""


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # '<<: *base': the keys after it may override the merged ones
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            dup = key in seen
        except TypeError:  # an unhashable key: SafeLoader's own error follows
            continue
        if dup:
            shown = repr(key) if len(repr(key)) <= 40 else repr(key)[:37] + "..."
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, f"duplicate key {shown}; each key may appear once",
                key_node.start_mark,
            )
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def _safe_load(text: str) -> Any:
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def parse_override(item: str) -> tuple[list[str], Any]:
    """``KEY=VALUE`` (dotted key, YAML value) as ``(path, value)``."""
    if "=" not in item:
        raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. search.epsilon=0.05")
    key, value = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {item!r}: empty key")
    try:
        parsed = _safe_load(value) if value.strip() else ""
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError):  # not a YAML value: the string
        parsed = value
    return key.split("."), parsed


def apply_overrides(raw: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """``raw`` with every ``-o KEY=VALUE`` override applied (a new dict; ``raw`` is unchanged)."""
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
    """Validate a config mapping; errors name ``source`` and the field."""
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
        try:
            source, base = str(p), p.resolve().parent
        except (RuntimeError, OSError):  # a symbolic link loop: reading it below says so
            source, base = str(p), p.absolute().parent
        data = read_input(p, "config file", "a YAML file", ConfigError)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ConfigError(f"{p}: not UTF-8 text ({e.reason} at byte {e.start})") from None
        try:
            raw = _safe_load(text)
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
    """The built-in benchmark's config, with overrides applied."""
    return load_config(None, overrides)


# ------------------------------------------------------------------ resolved config and schema


def resolved_dict(cfg: Config) -> dict[str, Any]:
    """The config with every default filled in, as plain JSON types (what a run actually used)."""
    return cfg.model_dump(mode="json")


def regime_note(cfg: Config) -> str:
    """Which set of search defaults applies to ``cfg``, and why (one line)."""
    if cfg.regime == "lm":
        return ("search defaults: language modelling (model.regime lm): the library's; no compare.incumbent (docs/lm.md); "
                "set search.<key> to change one")
    if cfg.regime == "text":
        if cfg.regime_defaults:
            keys = ", ".join(f"{k}={getattr(cfg.search, k)}" for k in cfg.regime_defaults if "." not in k)
            comp = ", ".join(f"{k}={getattr(cfg.compare, k.partition('.')[2])}" for k in cfg.regime_defaults
                             if k.startswith("compare."))
            what = "; ".join(p for p in (keys, comp) if p)
            return (f"search defaults: text (text tasks through a frozen encoder): {what} (measured on GLUE and XNLI, and "
                    "on the real-text families; docs/text.md); set search.<key> or compare.<key> to change one")
        return "search defaults: text (text tasks through a frozen encoder); every key they cover is set in the config"
    why = "the built-in benchmark" if cfg.synthetic is not None else (
        "fine-tuned text tasks" if cfg.model.regime != "frozen" else "feature (npz) tasks")
    if cfg.model.regime == "frozen":
        inc = (f"keeps compare.incumbent={cfg.compare.incumbent} unless a mixture beats it by more than "
               f"compare.incumbent_margin={cfg.compare.incumbent_margin:g} standard errors on the held-out target rows, "
               if cfg.compare.incumbent is not None else "weighs every candidate equally (compare.incumbent=null), ")
        return (f"search defaults: features ({why}): the library's, chosen on the task families (docs/method.md); "
                f"the recommendation {inc}"
                "without compare.methods a comparison also runs credit_proportional, a candidate of its recommendation, "
                f"and confirms a choice within noise on compare.confirm_seeds={cfg.confirm_seeds} more seeds (runs that hold out "
                f"compare.confirm_fraction={cfg.confirm_fraction:g} of the target's training rows), and again while they hold "
                f"fewer than compare.confirm_rows={cfg.confirm_rows} held-out target rows (docs/compare.md)")
    return f"search defaults: features ({why}): the library's, chosen on the task families (docs/method.md)"


def resolved_yaml(cfg: Config) -> str:
    """:func:`resolved_dict` as YAML, headed by where it came from; loading it gives the same config.

    Relative task paths stay relative: they resolve against the directory named
    in the header (the original config's), or ``data_dir``.
    """
    head = (
        "# taskmix resolved config: every default filled in\n"
        f"# source: {cfg.source}\n"
        f"# relative paths resolve against: {Path(cfg.base_dir).resolve()}\n"
        f"# {regime_note(cfg)}\n"
    )
    return head + yaml.safe_dump(resolved_dict(cfg), sort_keys=False, default_flow_style=False, allow_unicode=True)


def config_schema() -> dict[str, Any]:
    """The JSON schema of a config file, with the fields' defaults and descriptions."""
    schema = Config.model_json_schema(mode="validation")
    props = schema.get("properties", {})
    for internal in ("base_dir", "source"):  # not part of the file
        props.pop(internal, None)
    schema["title"] = "taskmix config"
    schema["description"] = (__doc__ or "").strip()
    return schema
