"""Development screen of ``search.min_weight`` (issue 22: exact zeros in the learned schedules).

Runs the rules, both learned schedules with ``search.min_weight: 0`` (``learned_time_invariant`` /
``learned_time_variant``) and, for each threshold ``tau``, the same two schedules with every auxiliary below
``tau`` dropped to exactly 0 (``sparse_ti_<tau>`` / ``sparse_tv_<tau>``), on the family benchmark's families,
3 paired seeds, with bench_families's test-oracle.  ``search.min_weight`` changes only the schedule a search
emits, not the search (``tests/runs/test_search_min_weight.py``), so a ``sparse_*`` row is exactly what
``search.min_weight: tau`` gives; this script drops the weights from the one shared search of each seed
(:meth:`taskmix.schedule.Schedule.drop_below`) instead of searching once per threshold.

Usage (rows appended to OUT, one JSON line per family; summarize with bench_families.py --summarize):
  python benchmarks/screen_min_weight.py --generator wide --family-seed 101 --families 30 --out rows.jsonl
  python benchmarks/screen_min_weight.py --generator v1 --family-seed 1 --families 24 --out rows.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Callable

import torch

sys.path.insert(0, os.path.dirname(__file__))
import bench_families as bf  # noqa: E402

from taskmix.compare.methods import METHODS, shared_search  # noqa: E402
from taskmix.data.families import make_family  # noqa: E402
from taskmix.runs.job import Job, MethodResult, replay  # noqa: E402


def sparse_method(policy: str, tau: float) -> Callable[[Job], MethodResult]:
    """The learned schedule of ``policy`` from the seed's shared search, auxiliaries below ``tau`` at 0."""

    def run(job: Job) -> MethodResult:
        cfg = job.cfg.model_copy(update={"search": job.cfg.search.model_copy(update={"policy": "time_variant"})})
        search, _ = shared_search(job, cfg)
        sched = search.schedules()[policy].drop_below(tau, keep=[job.cfg.target])
        res = search.result()
        return replay(job, sched, extra_seconds=res.seconds, extra_steps=res.steps)

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--generator", choices=("v1", "wide"), default="wide")
    ap.add_argument("--family-seed", type=int, default=101)
    ap.add_argument("--families", type=int, default=30)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--taus", default="0.05,0.1,0.2")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    names = []
    for tau in (float(t) for t in args.taus.split(",")):
        for policy, short in (("time_invariant", "ti"), ("time_variant", "tv")):
            names.append(f"sparse_{short}_{tau:g}")
            METHODS.register(names[-1], sparse_method(policy, tau), kind="learned")
    wide = args.generator == "wide"
    methods = [*bf.RULES, *bf.LEARNED, *names]
    over: dict[str, Any] = {"search": {"min_weight": 0.0}}  # the learned rows without dropping: the screen's baseline
    with open(args.out, "a") as fh:
        for i in range(args.families):
            fam = make_family(1000 * args.family_seed + i, overrides=over, generator=args.generator)
            res = bf.run_family(fam, list(range(args.seeds)), {}, methods, 4, shares=(0.25, 0.5) if wide else (0.5,),
                                relatives=wide)
            fh.write(json.dumps(res) + "\n")
            fh.flush()
            print(f"family {i} done", flush=True)


if __name__ == "__main__":
    main()
