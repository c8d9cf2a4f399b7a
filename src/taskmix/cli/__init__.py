"""The ``taskmix`` command line: a thin layer over the library (``taskmix = "taskmix.cli:app"``).

Read top-down:

    commands        the typer app and its commands: search, train, compare, plot, demo, --version
    schedule_cmds   taskmix schedule show|diff|export
    config_cmds     taskmix config show|schema
    demo_dir        which directory holds an earlier demo; replacing or continuing it
    errors          every failure as one ``error:`` line and an exit code (handle_errors, usage errors, signals)
    options         the shared options (-o, --data-dir, --out, --progress) and plain-flag commands

``python -m taskmix.cli`` runs the same app (``__main__``).
"""

from __future__ import annotations

from .commands import app, main

__all__ = ["app", "main"]
