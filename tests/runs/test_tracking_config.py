"""The ``logging:`` section: tracking settings never block a resume; a missing tracker package is a one-line error."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _tiny import TINY_BUILTIN  # noqa: E402

from taskmix.config import builtin_config  # noqa: E402
from taskmix.errors import ConfigError  # noqa: E402


def test_logging_settings_do_not_change_the_fingerprint():
    a = builtin_config(TINY_BUILTIN)
    b = builtin_config([*TINY_BUILTIN, "logging.mlflow.experiment=x", "logging.mlflow.tracking_uri=file:./m"])
    assert a.logging.mlflow is None and b.logging.mlflow.experiment == "x"
    assert a.fingerprint() == b.fingerprint()


def test_mlflow_not_installed_is_a_one_line_config_error(monkeypatch):
    from taskmix.runs.tracking import tracker_for

    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow -> ImportError
    with pytest.raises(ConfigError, match=r"^logging.mlflow: the mlflow package is not installed \(pip install mlflow-skinny\)$"):
        tracker_for(builtin_config(["logging.mlflow.experiment=x"]))
    assert tracker_for(builtin_config()) is None
