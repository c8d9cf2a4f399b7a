"""Every strategy on one harness: the built-in benchmark and RTE + MNLI-9k + QNLI, paired seeds, with the oracle.

Writes the report tables to BENCHMARKS.md (sections "compare-builtin" and "compare-rte3").

Usage: python benchmarks/bench_compare.py [--seeds 5] [--only builtin,rte3] [--cache-dir DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, os.path.dirname(__file__))
from _md import ROOT, update_section  # noqa: E402

import torch  # noqa: E402

from taskmix.compare import FEATURE_METHODS, run_compare  # noqa: E402
from taskmix.config import builtin_config, load_config  # noqa: E402
from taskmix.data import load_run_tasks  # noqa: E402

METHODS = [
    "single_task", "uniform", "proportional", "temperature_2", "temperature_5", "examples_proportional",
    "learned_time_invariant", "learned_time_variant",
    "exp3", "thompson", "gradient_alignment", "exp3-replay", "thompson-replay", "gradient_alignment-replay",
]


def run(name: str, cfg, seeds: int, out: Path, extra: tuple[str, ...] = ()) -> str:
    """``METHODS`` and ``extra`` on ``cfg`` (the oracle too), as one comparison; its table with a one-line header."""
    methods = METHODS + list(extra)
    cfg = cfg.model_copy(update={"compare": cfg.compare.model_copy(update={"methods": methods, "temperatures": [2.0, 5.0]})})
    tasks = load_run_tasks(cfg)
    t = time.perf_counter()
    res = run_compare(cfg, tasks, out / name, seeds=seeds, oracle=True)
    secs = time.perf_counter() - t
    return f"{len(methods) + 1} methods × {seeds} paired seeds, wall time {secs:.0f} s.\n\n" + res["table"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--only", default="builtin,rte3")
    ap.add_argument("--cache-dir", default=os.environ.get("TASKMIX_CACHE"))
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(a.out) if a.out else Path(tempfile.mkdtemp())
    if "builtin" in a.only:
        body = run("builtin", builtin_config(), a.seeds, out, extra=FEATURE_METHODS)  # the feature regime's defaults
        update_section("compare-builtin", body)
        print(body, flush=True)
    if "rte3" in a.only:
        ov = [f"encoder.cache_dir={a.cache_dir}"] if a.cache_dir else []
        body = run("rte3", load_config(ROOT / "configs/glue/rte_mnli_qnli.yaml", ov), a.seeds, out)
        update_section("compare-rte3", body)
        print(body, flush=True)
    print(f"outputs (report.md, report.html, results.json): {out}")


if __name__ == "__main__":
    main()
