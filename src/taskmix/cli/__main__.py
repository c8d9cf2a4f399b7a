"""``python -m taskmix.cli`` (and ``torchrun ... -m taskmix.cli``): the ``taskmix`` command."""

from .commands import main

main()
