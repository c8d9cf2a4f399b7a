import os
from pathlib import Path

import pytest
import torch
from hypothesis import settings

settings.register_profile("deterministic", derandomize=True)  # every property test draws the same examples each run
settings.load_profile("deterministic")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TASKMIX_PROGRESS", "off")  # the CLI tests read stderr line by line; progress has its own tests
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "MANIFEST.tsv").exists():
        pytest.skip(f"real data not found at {SHARED_DATA} (the project's ../shared/data)")
    return SHARED_DATA
