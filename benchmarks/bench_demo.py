"""`make demo` on a fresh clone: wall time from `git clone` to the demo's files, and the files written.

Usage: python benchmarks/bench_demo.py [--repeats N]
The clone starts with no virtual environment: `make demo` creates it and installs taskmix (pip's
download cache of this machine is used, as it would be on any developer machine).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _md import ROOT, mean_pm, update_section  # noqa: E402

EXPECTED = ["results.json", "schedule.json", "schedule.png", "table.md"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    times, setup, files = [], [], []
    for _ in range(a.repeats):
        with tempfile.TemporaryDirectory() as d:
            clone = Path(d) / "taskmix"
            subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
            env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV",)}
            env["PATH"] = ":".join(p for p in env["PATH"].split(":") if ".venv" not in p)
            t = time.perf_counter()
            out = subprocess.run(["make", "demo"], cwd=clone, env=env, capture_output=True, text=True)
            times.append(time.perf_counter() - t)
            if out.returncode != 0:
                raise SystemExit(f"make demo failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
            demo_line = [ln for ln in out.stdout.splitlines() if ln.startswith("demo finished in")]
            setup.append(times[-1] - float(demo_line[0].split()[3]) if demo_line else float("nan"))
            files = sorted(p.name for p in (clone / "demo").iterdir())
            missing = [f for f in EXPECTED if f not in files]
            if missing:
                raise SystemExit(f"make demo did not write {missing}")
            table = (clone / "demo" / "table.md").read_text()
    body = "\n".join([
        f"`git clone` + `make demo` (venv creation, `pip install torch==2.13.0`, `pip install -e .`, 5-seed demo), {a.repeats} repeats.",
        "",
        f"- wall time: **{mean_pm(times, '{:.1f}')} s** (max {max(times):.1f} s; target < 120 s), of which set-up {mean_pm(setup, '{:.1f}')} s",
        f"- files in `demo/`: {', '.join(files)}",
        "",
        "The demo's table (last repeat):",
        "",
        table,
    ])
    update_section("demo", body)
    print(body)


if __name__ == "__main__":
    main()
