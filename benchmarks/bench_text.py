"""The paper's text experiments on CPU (frozen MiniLM features, cached): GLUE Table 2 rows and XNLI Swahili.

For each config: load the tasks (timed: cold = encoding included when the cache is empty, warm = cached),
then `compare` single-task / uniform / proportional / temperature / learned (both policies) on paired
seeds.  Writes the table beside the paper's numbers to BENCHMARKS.md (section "text").

Usage: python benchmarks/bench_text.py [--seeds 5] [--configs rte_mnli,...] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, os.path.dirname(__file__))
from _md import ROOT, update_section  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.stats import t as student_t  # noqa: E402

from taskmix.compare import run_compare  # noqa: E402
from taskmix.config import load_config  # noqa: E402
from taskmix.data import load_run_tasks  # noqa: E402

CONFIGS = {
    "rte_qnli": ("configs/glue/rte_qnli.yaml", "QNLI → RTE"),
    "mrpc_qnli": ("configs/glue/mrpc_qnli.yaml", "QNLI → MRPC"),
    "rte_mnli": ("configs/glue/rte_mnli.yaml", "MNLI → RTE"),
    "mrpc_mnli": ("configs/glue/mrpc_mnli.yaml", "MNLI → MRPC"),
    "xnli_sw": ("configs/xnli/sw.yaml", "XNLI Swahili (+ English MNLI-9k)"),
}
# Sundararaman et al., Table 2 (GLUE, BERT-base, dev) and Table 1 (XNLI Swahili, mBERT, test)
PAPER = {
    "rte_qnli": {"single_task": 0.675, "uniform": 0.7369, "proportional": 0.6679, "learned_time_variant": 0.7112, "learned_time_invariant": 0.7473},
    "mrpc_qnli": {"single_task": 0.8284, "uniform": 0.8652, "proportional": 0.7279, "learned_time_variant": 0.8653, "learned_time_invariant": 0.8627},
    "rte_mnli": {"single_task": 0.675, "uniform": 0.6787, "proportional": 0.7401, "learned_time_variant": 0.7148, "learned_time_invariant": 0.8014},
    "mrpc_mnli": {"single_task": 0.8284, "uniform": 0.8358, "proportional": 0.7696, "learned_time_variant": 0.8603, "learned_time_invariant": 0.8603},
    "xnli_sw": {"single_task": 0.6785, "uniform": 0.657, "learned_time_variant": 0.6877, "learned_time_invariant": 0.7045},
}
METHODS = ["single_task", "uniform", "proportional", "temperature_2", "learned_time_invariant", "learned_time_variant"]
RULES = ["single_task", "uniform", "proportional", "temperature_2"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--cache-dir", default=os.environ.get("TASKMIX_CACHE"))
    ap.add_argument("--out", default=None, help="keep the compare outputs here")
    a = ap.parse_args()
    torch.set_num_threads(1)
    lines = [
        f"Frozen features ([u, v, |u−v|, u·v]; all-MiniLM-L6-v2 for GLUE, multilingual e5-small for XNLI Swahili), "
        f"MLP trunk (256) with per-task heads (shared for XNLI); the shipped configs' search: lookahead credit "
        f"(20 steps), the fixed reward split, the time-invariant schedule averaged over meta-steps (docs/text.md); "
        f"1,000 steps × 64, {a.seeds} paired seeds; reward split = 10% of the target's train data; reported split: "
        "GLUE validation (test labels are not public), XNLI test. MNLI is the 9k subset (MNLI-9k); QNLI's training "
        "data here is its dev split (the only one available). Paper: BERT-base / mBERT fine-tuned on TPUs.",
        "",
        "| row | single-task | uniform | proportional | temperature T=2 | learned time-invariant | learned time-variant | better learned − best rule, paired [95% CI] | load (s) | compare (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for key in a.configs.split(","):
        path, label = CONFIGS[key]
        ov = [f"encoder.cache_dir={a.cache_dir}"] if a.cache_dir else []
        cfg = load_config(ROOT / path, ov)
        t = time.perf_counter()
        tasks = load_run_tasks(cfg)
        load_s = time.perf_counter() - t
        cfg = cfg.model_copy(update={"compare": cfg.compare.model_copy(update={"methods": METHODS})})
        out = Path(a.out) / key if a.out else Path(tempfile.mkdtemp()) / key
        t = time.perf_counter()
        res = run_compare(cfg, tasks, out, seeds=a.seeds)
        cmp_s = time.perf_counter() - t
        stats = {s["method"]: s for s in res["summary"]}
        paper = PAPER.get(key, {})

        def cell(m: str) -> str:
            s = stats[m]
            p = paper.get(m)
            return f"{s['mean']:.3f} ± {s['std']:.3f}" + (f" ({p:.3f})" if p is not None else "")

        best_rule = max(RULES, key=lambda m: stats[m]["mean"])
        best_learned = max(("learned_time_invariant", "learned_time_variant"), key=lambda m: stats[m]["mean"])
        ok = stats[best_learned]["mean"] >= stats[best_rule]["mean"]
        verdicts.append((label, ok, best_rule, best_learned, stats))
        by: dict[str, dict[int, float]] = {}
        for line in (out / "rows.jsonl").read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                by.setdefault(r["method"], {})[int(r["seed"])] = float(r["test"])
        d = np.array([by[best_learned][k] - by[best_rule][k] for k in sorted(by[best_rule])])
        half = float(student_t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
        mark = "above" if d.mean() - half > 0 else "below" if d.mean() + half < 0 else "within noise"
        lines.append(f"| {label} | " + " | ".join(cell(m) for m in METHODS)
                     + f" | {best_learned.replace('learned_', '')} − {best_rule}: {d.mean():+.3f} [{d.mean() - half:+.3f}, "
                       f"{d.mean() + half:+.3f}] ({mark}) | {load_s:.1f} | {cmp_s:.0f} |")
        w = json.loads((out / "schedule.json").read_text())
        lines_w = ", ".join(f"{t}={v:.2f}" for t, v in zip(w["tasks"], w["weights"][0]))
        verdicts[-1] += (lines_w,)
    lines += ["", "Cells: mean ± std over seeds (paper's number in parentheses). Learned schedules (time-invariant, first seed): "]
    for label, ok, best_rule, best_learned, stats, lw in verdicts:
        d = stats[best_learned]
        lines.append(f"- {label}: {lw}; {best_learned} − {best_rule} = {d['mean'] - stats[best_rule]['mean']:+.4f}")
    update_section("text", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
