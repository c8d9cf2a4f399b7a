"""``taskmix compare`` on the built-in benchmark: sequential backend vs ``--backend ray`` (local instance).

Each run is the real command line in a fresh process (start-up, task loading and,
for Ray, starting and stopping a local Ray instance included); runs alternate
between the backends so that a change in machine load hits both alike.  Also
measured: the fixed cost of a local Ray instance (init + one task + shutdown),
and whether the two backends give the same rows.  Writes the ``ray`` section of
BENCHMARKS.md.

Usage: python benchmarks/bench_ray.py [--seeds 5] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _md import mean_pm, update_section  # noqa: E402

RAY_FIXED = """
import os, time, ray
t = time.perf_counter()
ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="ERROR")
ray.get(ray.remote(num_cpus=1)(lambda: 1).remote())
ray.shutdown()
print(time.perf_counter() - t)
"""


def compare(backend: str, seeds: int, out: Path) -> tuple[float, tuple[float, float]]:
    """Wall seconds of one ``taskmix compare builtin`` run, and the 1-minute load average before and after."""
    cmd = [sys.executable, "-m", "taskmix.cli", "compare", "builtin", "--seeds", str(seeds), "--out", str(out)]
    if backend == "ray":
        cmd += ["--backend", "ray"]
    load0 = os.getloadavg()[0]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return wall, (load0, os.getloadavg()[0])


def rows(out: Path) -> dict[tuple[str, int], dict]:
    res = json.loads((out / "results.json").read_text())
    return {(r["method"], r["seed"]): r for r in res["rows"]}


def weights(out: Path, row: dict) -> np.ndarray | None:
    return None if row["schedule"] is None else np.asarray(json.loads((out / row["schedule"]).read_text())["weights"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.repeats < 2:
        ap.error("--repeats must be at least 2 (the table reports a spread)")
    tmp = Path(tempfile.mkdtemp(prefix="bench_ray_"))
    walls: dict[str, list[float]] = {"sequential": [], "ray": []}
    cell_s: dict[str, list[float]] = {"sequential": [], "ray": []}  # per run: sum of the cells' own seconds
    cell_med: dict[str, list[float]] = {"sequential": [], "ray": []}  # per run: median cell
    cell_max: dict[str, list[float]] = {"sequential": [], "ray": []}  # per run: slowest cell
    loads: list[float] = []
    try:
        for i in range(args.repeats):
            for backend in ("sequential", "ray"):
                out = tmp / f"{backend}-{i}"
                wall, (l0, l1) = compare(backend, args.seeds, out)
                walls[backend].append(wall)
                secs = [r["seconds"] for r in rows(out).values()]
                cell_s[backend].append(sum(secs))
                cell_med[backend].append(float(np.median(secs)))
                cell_max[backend].append(max(secs))
                loads += [l0, l1]
                print(f"{backend:10s} run {i + 1}: {wall:6.1f} s  (load {l0:.2f} -> {l1:.2f})", flush=True)
        fixed = [float(subprocess.run([sys.executable, "-c", RAY_FIXED], capture_output=True, text=True, check=True)
                       .stdout.split()[-1]) for _ in range(args.repeats)]
        # rows: every run of either backend against the first sequential run
        ref_dir = tmp / "sequential-0"
        ref = rows(ref_dir)
        max_test, max_w, equal, total = 0.0, 0.0, 0, 0
        for backend in ("sequential", "ray"):
            for i in range(args.repeats):
                d = tmp / f"{backend}-{i}"
                other = rows(d)
                if set(other) != set(ref):
                    raise SystemExit(f"{d}: cells {sorted(set(other) ^ set(ref))} differ from {ref_dir}")
                if backend != "ray":
                    continue
                for cell, r in ref.items():
                    o = other[cell]
                    total += 1
                    dt = abs(o["test"] - r["test"])
                    wa, wb = weights(ref_dir, r), weights(d, o)
                    dw = 0.0 if wa is None else float(np.max(np.abs(wa - wb)))
                    max_test, max_w = max(max_test, dt), max(max_w, dw)
                    equal += dt == 0.0 and dw == 0.0 and (o["train_steps"], o["evaluations"]) == (r["train_steps"], r["evaluations"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    seq, par = np.asarray(walls["sequential"]), np.asarray(walls["ray"])
    n_cells = len(ref)
    body = "\n".join([
        f"`taskmix compare builtin --seeds {args.seeds}` ({n_cells} cells: {n_cells // args.seeds} methods x "
        f"{args.seeds} seeds), each run the real command in a fresh process; {args.repeats} runs per backend, "
        "alternating. Ray: a local instance with one worker CPU per core, started and stopped by the command.",
        "",
        "| backend | wall s (mean ± std) | min | max |",
        "|---|---|---|---|",
        f"| sequential | {mean_pm(seq, '{:.1f}')} | {seq.min():.1f} | {seq.max():.1f} |",
        f"| `--backend ray` | {mean_pm(par, '{:.1f}')} | {par.min():.1f} | {par.max():.1f} |",
        f"| ray start + one task + shutdown (fixed cost, in the row above) | {mean_pm(fixed, '{:.1f}')} | "
        f"{min(fixed):.1f} | {max(fixed):.1f} |",
        "",
        "Time inside the cells (each row's own `seconds`), mean ± std over the runs:",
        "",
        "| backend | sum over the cells (s) | median cell (s) | slowest cell (s) |",
        "|---|---|---|---|",
        *(f"| {b} | {mean_pm(cell_s[b], '{:.2f}')} | {mean_pm(cell_med[b], '{:.3f}')} | {mean_pm(cell_max[b], '{:.2f}')} |"
          for b in ("sequential", "ray")),
        "",
        "Each Ray worker process pays, in its first cell, the imports and warm-up that the sequential process "
        "pays once (the slowest cells).",
        "",
        f"- Speed-up (sequential mean / ray mean): **{seq.mean() / par.mean():.2f}x** on {os.cpu_count()} cores; "
        f"without Ray's fixed cost: {seq.mean() / max(par.mean() - np.mean(fixed), 1e-9):.2f}x.",
        f"- Rows: {equal}/{total} (method, seed) cells of the ray runs identical to the sequential run "
        f"(test value, schedule weights, steps, evaluations); largest |Δ test| = {max_test:.3g}, "
        f"largest |Δ weight| = {max_w:.3g}.",
        f"- Load average (1 min), sampled before and after each run (these runs included): "
        f"{min(loads):.2f} to {max(loads):.2f} on {os.cpu_count()} cores. The machine is shared; the backends "
        "alternate so that both see the same conditions. "
        "Ray runs its workers at nice 15, so other load on the machine slows the ray runs more than the "
        "sequential ones.",
    ])
    print(body)
    update_section("ray", body)


if __name__ == "__main__":
    main()
