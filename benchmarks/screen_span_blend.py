"""Screen: answer with a blend of the mixtures within noise of the choice, where they span more than 0.15.

A development screen from stored family rows (``bench_families.py`` runs of seeds 0-2 beside ``--first-seed 3, 6, 9
--no-oracle`` runs; nothing is chosen from it unless its verdict says so).  For each family it makes the shipped
choice (``recommend`` on seeds 0-2, confirmed in rounds of 3 seeds while within noise and the seeds hold fewer than
60 held-out target rows, as ``compare.confirm_rows``), and where the ``span`` of the mixtures within noise exceeds
``UNSTABLE_TV`` it retrains, on seeds 0-2, three constant mixtures: the mean of every within-noise mixture
(``b_all``), of the learned ones (``b_learn``; the choice alone when none is learned), and the choice's own mean
mixture (``cons``: what replaying a consensus as mean weights costs against the choice's own rows, ``c``).
Prints each flagged family and the mean regret to the test-oracle (points) of each answer over all families.

    python benchmarks/screen_span_blend.py wide runs/bdev      # rows in runs/bdev_0, _3, _6, _9
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import bench_families as bf  # noqa: E402

from taskmix.compare.recommend import UNSTABLE_TV, recommend  # noqa: E402
from taskmix.runs import prepare_job, replay  # noqa: E402
from taskmix.schedule import Schedule  # noqa: E402

FIRST = [0, 1, 2]


def main(generator: str, prefix: str) -> None:
    torch.set_num_threads(1)
    fams = bf.merge([Path(f"{prefix}_{f}/rows.jsonl") for f in (0, 3, 6, 9)])
    res: dict[str, list[float]] = {"c": [], "b_all": [], "b_learn": [], "cons": []}
    flagged = 0
    for f in fams:
        rows = f["rows"]
        seeds = sorted({r["seed"] for r in rows})
        every = {m for m in {r["method"] for r in rows} if {r["seed"] for r in rows if r["method"] == m} == set(seeds)}
        kinds = {m: bf.METHODS.meta(m, "kind") for m in every if m in bf.METHODS and m != "recommended"}
        fam = bf.make_family(f["family"], generator=generator)
        jobs = {s: prepare_job(fam.config, fam.tasks, s) for s in seeds}
        labels = {s: np.asarray(jobs[s].reward_split.y) for s in seeds}
        rows_c = bf.compare_rows([r for r in rows if r["method"] in kinds])
        cur = recommend([r for r in rows_c if r["seed"] in FIRST], kinds, {s: labels[s] for s in FIRST}, "accuracy",
                        bootstrap=0, z=0.0)
        assert cur is not None
        used = list(FIRST)
        for i in range(3):  # the shipped confirmation: rounds of 3 seeds, later ones while < 60 held-out rows
            if not cur.contenders or (i and sum(len(labels[s]) for s in used) >= 60):
                break
            used += [3 + 3 * i, 4 + 3 * i, 5 + 3 * i]
            cur = recommend([r for r in rows_c if r["method"] in cur.contenders and r["seed"] in used], kinds,
                            {s: labels[s] for s in used}, "accuracy", bootstrap=0, z=0.0)
            assert cur is not None
        oracle = float(f["oracle"]["test"])
        c = oracle - float(np.mean([r["test"] for r in rows if r["method"] == cur.source and r["seed"] in FIRST]))
        out = {"c": c, "b_all": c, "b_learn": c, "cons": c}
        if cur.span > UNSTABLE_TV:
            flagged += 1

            def mix(m: str) -> np.ndarray:
                return np.mean([Schedule.from_dict(r["schedule"], m).mean_weights() for r in rows_c
                                if r["method"] == m and r["seed"] in used], axis=0)

            names = [cur.source, *cur.within_noise]
            learned = [m for m in names if kinds[m] != "baseline"] or [cur.source]
            for key, ms in (("b_all", names), ("b_learn", learned), ("cons", [cur.source])):
                sched = Schedule.from_weights(cur.schedule.tasks, np.mean([mix(m) for m in ms], axis=0))
                out[key] = oracle - float(np.mean([replay(jobs[s], sched).test for s in FIRST]))
            print(f["family"], cur.source, cur.within_noise, f"span {cur.span:.2f}",
                  {k: round(100 * v, 2) for k, v in out.items()}, flush=True)
        for k, v in out.items():
            res[k].append(v)
    print(f"{generator}: span > {UNSTABLE_TV} in {flagged} of {len(fams)} families; mean regret (points):",
          {k: round(100 * float(np.mean(v)), 2) for k, v in res.items()})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
