"""A tiny built-in benchmark (a few seconds per search), shared by the multi-process tests."""

TINY_BUILTIN = [
    "train.steps=60",
    "search.meta_steps=3",
    "synthetic.n_helpful=300",
    "synthetic.n_harmful=300",
    "synthetic.n_irrelevant=300",
    "synthetic.n_target=200",
    "synthetic.n_test=200",
]

# ~1 s of search after imports; 10 meta-steps, so there are places to kill it (the checkpoint and safety tests).
KILL_RUN = [
    "train.steps=200", "search.meta_steps=10", "train.batch_size=32",
    "synthetic.n_target=200", "synthetic.n_helpful=500", "synthetic.n_harmful=500",
    "synthetic.n_irrelevant=500", "synthetic.n_test=200",
]  # fmt: skip
SMALL_RUN = [
    "train.steps=24", "search.meta_steps=6", "train.batch_size=16",
    "synthetic.n_target=80", "synthetic.n_helpful=80", "synthetic.n_harmful=80",
    "synthetic.n_irrelevant=80", "synthetic.n_test=80",
]  # fmt: skip


def ov(overrides: list[str]) -> list[str]:
    """``-o KEY=VALUE`` arguments for a list of overrides."""
    return [x for o in overrides for x in ("-o", o)]


def cli(*args: str) -> tuple[int, str]:
    """Run the CLI in-process: (exit code, stderr); an unexpected exception is raised."""
    from typer.testing import CliRunner

    from taskmix.cli import app

    r = CliRunner().invoke(app, list(args))
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.stderr
