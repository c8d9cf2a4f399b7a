"""The ``logging:`` section: tracking settings never block a resume; a missing tracker package is a one-line error,
before any work; bad W&B settings are one-line errors naming the field."""

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
    b = builtin_config([*TINY_BUILTIN, "logging.mlflow.experiment=x", "logging.mlflow.tracking_uri=file:./m",
                        "logging.wandb.project=p", "logging.wandb.mode=offline", "logging.wandb.dir=w"])
    assert a.logging.mlflow is None and b.logging.mlflow.experiment == "x"
    assert a.logging.wandb is None and (b.logging.wandb.project, b.logging.wandb.mode) == ("p", "offline")
    assert a.fingerprint() == b.fingerprint()


def test_mlflow_not_installed_is_a_one_line_config_error(monkeypatch):
    from taskmix.runs.tracking import check_tracking, trackers_for

    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow -> ImportError
    cfg = builtin_config(["logging.mlflow.experiment=x"])
    for call in (trackers_for, check_tracking):
        with pytest.raises(ConfigError, match=r"^logging.mlflow: the mlflow package is not installed \(pip install mlflow-skinny\)$"):
            call(cfg)
    assert trackers_for(builtin_config()) == []


def test_wandb_not_installed_is_a_one_line_config_error_before_any_work(monkeypatch, tmp_path):
    from taskmix.compare.runner import run_compare
    from taskmix.data import load_run_tasks
    from taskmix.runs.search_dir import run_search_dir
    from taskmix.runs.tracking import check_tracking, trackers_for

    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    monkeypatch.delenv("WANDB_MODE", raising=False)
    cfg = builtin_config([*TINY_BUILTIN, "logging.wandb.project=x"])
    message = r"^logging.wandb: the wandb package is not installed \(pip install wandb\)$"
    for call in (trackers_for, check_tracking):
        with pytest.raises(ConfigError, match=message):
            call(cfg)
    tasks = load_run_tasks(cfg)
    with pytest.raises(ConfigError, match=message):
        run_compare(cfg, tasks, tmp_path / "c", seeds=1)
    with pytest.raises(ConfigError, match=message):
        run_search_dir(cfg, tasks, tmp_path / "s")
    assert not (tmp_path / "c").exists() and not (tmp_path / "s").exists()  # refused before any work
    # disabled (in the config or by $WANDB_MODE) needs no package and logs nothing
    assert trackers_for(builtin_config(["logging.wandb.mode=disabled"])) == []
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert trackers_for(cfg) == [] and check_tracking(cfg) is None


def test_wandb_mode_is_the_configs_else_the_environments_else_online(monkeypatch):
    from taskmix.runs.tracking_wandb import resolve_mode

    monkeypatch.delenv("WANDB_MODE", raising=False)
    assert resolve_mode(None) == "online"
    for env, mode in (("offline", "offline"), ("dryrun", "offline"), ("ONLINE", "online"), ("run", "online"), ("disabled", "disabled")):
        monkeypatch.setenv("WANDB_MODE", env)
        assert resolve_mode(None) == mode
    assert resolve_mode("online") == "online"  # the config's mode wins
    monkeypatch.setenv("WANDB_MODE", "sometimes")
    with pytest.raises(ConfigError, match=r"^WANDB_MODE: 'sometimes' is not a W&B mode; expected online, offline or disabled"):
        resolve_mode(None)
    assert resolve_mode("offline") == "offline"


@pytest.mark.parametrize("override, message", [
    ("logging.wandb.project=a/b", r"logging\.wandb\.project: a W&B project cannot contain '/' \(got 'a/b'\)$"),
    ("logging.wandb.project=" + "p" * 129, r"logging\.wandb\.project: a W&B project has at most 128 characters \(got 129\)"),
    ("logging.wandb.entity=", r"logging\.wandb\.entity: an empty entity or one with leading or trailing spaces"),
    ("logging.wandb.mode=sometimes", r"logging\.wandb\.mode: Input should be 'online', 'offline' or 'disabled' \(got 'sometimes'\)$"),
    ("logging.wandb.dir=", r"logging\.wandb\.dir: an empty path"),
    ("logging.wandb.team=x", r"logging\.wandb\.team: unknown key; expected one of \['project', 'entity', 'mode', 'dir'\]$"),
])
def test_bad_wandb_settings_are_one_line_errors_naming_the_field(override, message):
    with pytest.raises(ConfigError, match=message) as e:
        builtin_config([override])
    assert "\n" not in str(e.value)


def test_the_docs_wandb_example_is_a_valid_logging_section():
    import yaml

    from taskmix.config.schema import LoggingConfig

    readme = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    block = next(b.split("```", 1)[0] for b in readme.split("```yaml\n")[1:] if b.startswith("logging:\n  wandb:"))
    section = LoggingConfig.model_validate(yaml.safe_load(block)["logging"])
    assert section.wandb is not None and (section.wandb.project, section.wandb.mode) == ("taskmix", "offline")
