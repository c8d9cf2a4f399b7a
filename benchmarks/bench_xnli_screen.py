"""Screen a search setting for the XNLI low-resource configs on data the Table 1 never reports: XNLI *validation*.

Urdu and Swahili train on their translate-train rows, so their XNLI validation split (2,490 rows) is free for
choosing a setting; Thai and Hindi train on theirs and cannot take part.  For each language and candidate:

    taskmix compare configs/xnli/lowres/<lang>.yaml --seeds 5 --out RUNS/sel_<lang>_<name> \\
        --methods proportional,learned_time_invariant,learned_time_variant \\
        -o tasks.<lang>.splits.test=validation -o search.<key>=<value>

Usage: python benchmarks/bench_xnli_screen.py --runs RUNS --candidates lookahead,mixture_lookahead
       [--extra NAME=DIR ...] [--section xnli-screen] [--no-write]

``--extra`` adds runs reported on XNLI *test* (e.g. a candidate's Hindi run), marked as such.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _md import update_section  # noqa: E402
from bench_table1 import paired_diff, read_rows  # noqa: E402

LEARNED = ("learned_time_invariant", "learned_time_variant")


def line(label: str, split: str, rows: dict[str, dict[int, dict]]) -> str | None:
    """One table row: proportional, both learned schedules with their paired difference, the target's weights."""
    base = rows.get("proportional")
    if not base:
        return None
    cells = [label, split, f"{np.mean([r['test'] for r in base.values()]):.3f}"]
    for m in LEARNED:
        got = rows.get(m, {})
        v = np.array([r["test"] for r in got.values()])
        cells += [f"{v.mean():.3f} ± {v.std(ddof=1):.3f}" if len(v) > 1 else "", paired_diff(got, base)]
    ti = rows.get("learned_time_invariant", {})
    w = [np.asarray(r["schedule"]["weights"], dtype=float).mean(0)[0] for _, r in sorted(ti.items()) if r.get("schedule")]
    cells.append(", ".join(f"{x:.2f}" for x in w))
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    """Render the screen's runs into BENCHMARKS.md (section --section)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, required=True)
    ap.add_argument("--candidates", required=True, help="comma-separated NAMEs of RUNS/sel_<lang>_<NAME>")
    ap.add_argument("--langs", default="ur,sw")
    ap.add_argument("--extra", action="append", default=[], help="LABEL=DIR: a run reported on XNLI test")
    ap.add_argument("--section", default="xnli-screen")
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args()
    head = ["language / candidate", "reported split", "proportional", "learned TI", "TI − proportional [95% CI]",
            "learned TV", "TV − proportional [95% CI]", "target's weight (TI, per seed)"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for lang in a.langs.split(","):
        for name in a.candidates.split(","):
            d = a.runs / f"sel_{lang}_{name}"
            if (d / "rows.jsonl").is_file():
                row = line(f"{lang} / {name}", "XNLI validation", read_rows(d))
                if row:
                    out.append(row)
    for spec in a.extra:
        label, _, d = spec.partition("=")
        row = line(label, "XNLI **test**", read_rows(Path(d)))
        if row:
            out.append(row)
    intro = ("Choosing a search setting for the XNLI low-resource configs without the reported test split: the "
             "configs as shipped (300 target rows, MNLI-9k capped at 3,000, 20-step probes, averaged time-invariant "
             "schedule, 5 paired seeds), each candidate as `search.reward`, reported on the target's XNLI validation "
             "split (2,490 rows), which Urdu and Swahili do not train on. Differences are paired over seeds, mean "
             "[95% bootstrap CI]. Rows marked *test* were run on XNLI test and are shown only as information: "
             "they took no part in the choice.")
    body = intro + "\n\n" + "\n".join(out)
    print(body)
    if not a.no_write:
        update_section(a.section, body)


if __name__ == "__main__":
    main()
