"""Wall time of `examples/replay_hf_trainer.py` (HF Trainer fine-tuning the packaged MiniLM with a schedule), repeats.

Usage: python benchmarks/bench_hf_example.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _md import ROOT, mean_pm, update_section  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    times, tail = [], ""
    for _ in range(a.repeats):
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "examples/replay_hf_trainer.py"], cwd=ROOT, capture_output=True, text=True)
        times.append(time.perf_counter() - t)
        if out.returncode != 0:
            raise SystemExit(out.stderr[-2000:])
        tail = "\n".join(out.stdout.strip().splitlines()[-5:])
    body = (f"`python examples/replay_hf_trainer.py` (30 optimiser steps × global batch 16, packaged MiniLM, 2 tasks, "
            f"a 0.7/0.3 schedule), {a.repeats} repeats: **{mean_pm(times, '{:.1f}')} s** (max {max(times):.1f} s; "
            f"target < 180 s). Last run's output:\n\n```\n{tail}\n```")
    update_section("hf-example", body)
    print(body)


if __name__ == "__main__":
    main()
