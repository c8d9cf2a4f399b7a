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
