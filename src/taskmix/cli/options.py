"""The options and command classes every ``taskmix`` command shares.

``-o KEY=VALUE`` overrides, ``--data-dir``, ``--out``, ``--seed``,
``--progress``; :class:`FlagCommand` and :class:`FlagGroup`, which show
on/off options as plain flags in ``--help``; and :func:`emit`, the
"stdout, or ``--out FILE``" of the printing commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from typer.core import TyperCommand, TyperGroup

from ..errors import OutputError
from ..files import atomic_write_text

MAX_SEEDS = 1000
"""The most paired seeds one comparison runs."""
SEED_LIMIT = 2**32
"""Seeds are integers with 0 <= seed < 2**32 (numpy's seed range)."""

OverrideOpt = typer.Option(None, "--override", "-o", metavar="KEY=VALUE",
                           help="Config override (repeatable), e.g. -o search.epsilon=0.05 -o train.steps=2000")
DataDirOpt = typer.Option(None, "--data-dir", help="Directory of local data files for presets (overrides data_dir)")


def out_dir(value: str) -> Path:
    """``--out``: a non-empty path (an empty one would silently mean the current directory)."""
    if not value.strip():
        raise typer.BadParameter("an empty path; name an output directory")
    return Path(value)


def _progress_mode(value: str) -> str:
    mode = value.strip().lower()
    if mode not in ("auto", "bar", "lines", "off"):
        raise typer.BadParameter(f"expected auto, bar, lines or off, got {value[:40]!r}")
    return mode


ProgressOpt = typer.Option("auto", "--progress", parser=_progress_mode, metavar="auto|bar|lines|off",
                           help="Progress on stderr: bar (method, seed, meta-step, ETA), lines (one per finished cell or "
                                "meta-step), off; auto: $TASKMIX_PROGRESS, else bar on a terminal and lines elsewhere")


def _plain_flags(params: list[Any]) -> list[Any]:
    """Show every on/off option (``--resume``, ``--json``, ``--help``, ...) as a plain flag: no value in the help.

    typer's rich help prints a type (``<bool>``) after each option, flags included, which reads as if
    the flag took a value (``--resume yes``); an empty metavar leaves the flag alone.
    """
    for p in params:
        if getattr(p, "is_flag", False) and not getattr(p, "count", False) and p.metavar is None:
            p.metavar = ""
    return params


class FlagCommand(TyperCommand):
    """A command whose boolean options show as plain flags in ``--help`` (every taskmix command uses it)."""

    def get_params(self, ctx: Any) -> list[Any]:
        """The command's parameters, the help option included, with flags shown without a value."""
        return _plain_flags(super().get_params(ctx))


class FlagGroup(TyperGroup):
    """A command group whose boolean options show as plain flags in ``--help`` (see :class:`FlagCommand`)."""

    def get_params(self, ctx: Any) -> list[Any]:
        """The group's parameters, the help option included, with flags shown without a value."""
        return _plain_flags(super().get_params(ctx))


def emit(text: str, out: Optional[Path]) -> None:
    """``text`` to stdout, or atomically to ``out`` (a printing command's ``--out FILE``)."""
    if out is None:
        typer.echo(text, nl=False)
    else:
        if out.is_dir():
            raise OutputError(f"{out}: is a directory; --out needs a file name")
        atomic_write_text(out, text)
        typer.echo(f"wrote {out}", err=True)
