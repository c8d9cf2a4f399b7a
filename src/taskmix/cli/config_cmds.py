"""``taskmix config show|schema``: the resolved config (YAML or JSON) and the config file's JSON schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from .errors import handle_errors
from .options import DataDirOpt, FlagCommand, FlagGroup, OverrideOpt, emit

config_app = typer.Typer(cls=FlagGroup, no_args_is_help=True,
                         help="Print the resolved config (YAML) or the config file's JSON schema.")


@config_app.command("show", cls=FlagCommand)
@handle_errors
def config_show(
    config: str = typer.Argument(..., help="YAML config, or 'builtin'"),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of YAML"),
    overrides: Optional[list[str]] = OverrideOpt,
    data_dir: Optional[str] = DataDirOpt,
) -> None:
    """The config as a run would use it: overrides applied, every default filled in (no data is read)."""
    from ..compare.methods import check_config
    from ..config import load_config, resolved_dict, resolved_yaml

    ov = list(overrides or [])
    if data_dir is not None:
        ov.append(f"data_dir={Path(data_dir).resolve()}")
    cfg = load_config(None if config == "builtin" else config, ov)
    check_config(cfg)
    typer.echo(json.dumps(resolved_dict(cfg), indent=2) if as_json else resolved_yaml(cfg), nl=as_json)


@config_app.command("schema", cls=FlagCommand)
@handle_errors
def config_schema_cmd(
    out: Optional[Path] = typer.Option(None, "--out", help="Write to this file instead of stdout"),
) -> None:
    """The JSON schema of a config file, with every field's default and description."""
    from ..config import config_schema

    emit(json.dumps(config_schema(), indent=2) + "\n", out)
