"""Screen a search setting for the XNLI low-resource configs on data the Table 1 never reports.

Urdu and Swahili train on their translate-train rows, so their XNLI validation split (2,490 rows) is free for
choosing a setting.  Thai and Hindi train on 300 rows of their validation split (``max_train: 300``), so the
other 2,190 validation rows are free too: ``--make-dev DEV`` writes a data directory (outside the repository;
the other files are symbolic links to the shared data) whose ``xnli/{th,hi}/validation.jsonl`` holds exactly the
300 rows ``max_train`` keeps (so the training data is the Table 1's, row for row) and ``heldout.jsonl`` the rest.
For each language and candidate:

    taskmix compare configs/xnli/lowres/<lang>.yaml --seeds 5 --out RUNS/<prefix><lang>_<name> \\
        --methods proportional,learned_time_invariant,learned_time_variant \\
        -o tasks.<lang>.splits.test=validation -o search.<key>=<value>          # ur, sw
    ... --data-dir DEV -o tasks.<lang>.splits.test=heldout -o search.<key>=<value>  # th, hi

Usage: python benchmarks/bench_xnli_screen.py --make-dev DEV [--data ../shared/data]
       python benchmarks/bench_xnli_screen.py --runs RUNS --candidates base,prior [--langs ur,sw,th,hi]
       [--prefix sel_] [--legend "prior=search.prior: proportional"] [--noise LABEL=DIR ...] [--extra NAME=DIR ...]
       [--section xnli-screen] [--no-write]

``--extra`` adds runs reported on XNLI *test* (e.g. a candidate's Hindi run), marked as such.  ``--noise LABEL=DIR``
adds a table of per-seed results of static rules with nearly equal weights (run noise at a fixed mixture).
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


BEST_OF = ("proportional", "temperature_2")
"""``--vs-best``: the rules whose best (on the screened split itself) each learned schedule is compared with."""


def line(label: str, split: str, rows: dict[str, dict[int, dict]], vs_best: bool = False) -> str | None:
    """One table row: proportional, both learned schedules with their paired difference, the target's weights.

    ``vs_best``: compare with the best of :data:`BEST_OF` present (named in the cell), paired t intervals."""
    rules = {m: rows[m] for m in BEST_OF if m in rows} if vs_best else {}
    if vs_best and not rules:
        return None
    best = max(rules, key=lambda m: np.mean([r["test"] for r in rules[m].values()])) if rules else "proportional"
    base = rows.get(best)
    if not base:
        return None
    cells = [label, split, f"{np.mean([r['test'] for r in base.values()]):.3f}" + (f" ({best})" if vs_best else "")]
    for m in LEARNED:
        got = rows.get(m, {})
        v = np.array([r["test"] for r in got.values()])
        cells += [f"{v.mean():.3f} ± {v.std(ddof=1):.3f}" if len(v) > 1 else "", paired_diff(got, base, ci="t" if vs_best else "bootstrap")]
    ti = rows.get("learned_time_invariant", {})
    w = [np.asarray(r["schedule"]["weights"], dtype=float).mean(0)[0] for _, r in sorted(ti.items()) if r.get("schedule")]
    cells.append(", ".join(f"{x:.2f}" for x in w))
    return "| " + " | ".join(cells) + " |"


HELDOUT_LANGS = ("th", "hi")
"""Languages whose target trains on part of its XNLI validation split (the rest is held out for screening)."""


def make_dev(dev: Path, data: Path) -> None:
    """Write the screening data directory: the held-out validation rows of Thai and Hindi, links for the rest."""
    from taskmix.data.text import max_train_indices

    (dev / "xnli").mkdir(parents=True, exist_ok=True)
    if not (dev / "glue").exists():
        (dev / "glue").symlink_to((data / "glue").resolve())
    for d in sorted((data / "xnli").iterdir()):
        if d.name not in HELDOUT_LANGS and not (dev / "xnli" / d.name).exists():
            (dev / "xnli" / d.name).symlink_to(d.resolve())
    for lang in HELDOUT_LANGS:
        lines = (data / "xnli" / lang / "validation.jsonl").read_text(encoding="utf-8").splitlines()
        keep = set(int(i) for i in max_train_indices(len(lines), 300))
        out = dev / "xnli" / lang
        out.mkdir(exist_ok=True)
        (out / "validation.jsonl").write_text("\n".join(x for i, x in enumerate(lines) if i in keep) + "\n", encoding="utf-8")
        (out / "heldout.jsonl").write_text("\n".join(x for i, x in enumerate(lines) if i not in keep) + "\n", encoding="utf-8")
        print(f"{out}: validation.jsonl {len(keep)} rows (the lowres training rows), heldout.jsonl {len(lines) - len(keep)} rows")


def noise_table(d: Path) -> list[str]:
    """Per-seed test results of every method in ``d`` (static rules with nearly equal weights)."""
    rows = read_rows(d)
    seeds = sorted({s for by_seed in rows.values() for s in by_seed})
    out = ["| rule | target's weight | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± std |",
           "|" + "---|" * (len(seeds) + 3)]
    for m, by_seed in rows.items():
        v = np.array([by_seed[s]["test"] for s in seeds if s in by_seed])
        w = np.asarray(next(iter(by_seed.values()))["schedule"]["weights"], dtype=float).mean(0)[0]
        out.append(f"| {m} | {w:.3f} | " + " | ".join(f"{x:.3f}" for x in v) + f" | {v.mean():.3f} ± {v.std(ddof=1):.3f} |")
    return out


def main() -> None:
    """Render the screen's runs into BENCHMARKS.md (section --section)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--make-dev", type=Path, default=None, help="write the screening data directory here and stop")
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
    ap.add_argument("--runs", type=Path, default=None)
    ap.add_argument("--candidates", default=None, help="comma-separated NAMEs of RUNS/<prefix><lang>_<NAME>")
    ap.add_argument("--prefix", default="sel_")
    ap.add_argument("--legend", action="append", default=[], help="NAME=what the candidate sets")
    ap.add_argument("--noise", action="append", default=[], help="LABEL=DIR: a run of static rules with nearly equal weights")
    ap.add_argument("--langs", default="ur,sw")
    ap.add_argument("--extra", action="append", default=[], help="LABEL=DIR: a run reported on XNLI test")
    ap.add_argument("--section", default="xnli-screen")
    ap.add_argument("--vs-best", action="store_true",
                    help="compare with the best of proportional and temperature 2 on the split (paired t), not proportional (bootstrap)")
    ap.add_argument("--rules-from", default=None,
                    help="NAME: a candidate without the rules' rows takes them from RUNS/<prefix><lang>_<NAME> (same data)")
    ap.add_argument("--settings", default=None, help="the settings every candidate starts from (replaces the default text)")
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args()
    if a.make_dev is not None:
        make_dev(a.make_dev, a.data)
        return
    if a.runs is None or a.candidates is None:
        ap.error("--runs and --candidates are required (or --make-dev)")
    ref = "best rule" if a.vs_best else "proportional"
    head = ["language / candidate", "reported split", ref, "learned TI", f"TI − {ref} [95% CI]",
            "learned TV", f"TV − {ref} [95% CI]", "target's weight (TI, per seed)"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for lang in a.langs.split(","):
        for name in a.candidates.split(","):
            d = a.runs / f"{a.prefix}{lang}_{name}"
            split = "XNLI validation, 2,190 held-out rows" if lang in HELDOUT_LANGS else "XNLI validation"
            if (d / "rows.jsonl").is_file():
                rows = read_rows(d)
                if a.rules_from and not any(m in rows for m in BEST_OF):
                    shared = read_rows(a.runs / f"{a.prefix}{lang}_{a.rules_from}")
                    rows.update({m: g for m, g in shared.items() if m not in LEARNED})
                row = line(f"{lang} / {name}", split, rows, a.vs_best)
                if row:
                    out.append(row)
    for spec in a.extra:
        label, _, d = spec.partition("=")
        row = line(label, "XNLI **test**", read_rows(Path(d)), a.vs_best)
        if row:
            out.append(row)
    legend = "; ".join(f"*{k}*: {v}" for k, v in (x.partition("=")[::2] for x in a.legend))
    settings = a.settings or ("the low-resource configs with their settings of before 2026-12-02 evening (300 target rows, "
                              "MNLI-9k capped at 3,000, 20-step lookahead probes, averaged time-invariant schedule, constant "
                              "model learning rate, uniform policy start, search.lr 0.02: today's configs with `-o "
                              "model.lr_decay=none -o search.prior=uniform -o search.lr=0.02`)")
    compared = ("the best of proportional and temperature 2 on the same split (named in its cell), mean [95% paired t "
                "interval over the seeds]" if a.vs_best else "proportional, mean [95% bootstrap CI]")
    intro = ("Choosing a search setting for the XNLI low-resource configs without the reported test split: "
             f"{settings}, 5 paired seeds, each candidate's settings on top, reported on XNLI validation rows the "
             "target does not train on (Urdu, Swahili: the whole split, 2,490 rows; Thai, Hindi: the 2,190 rows "
             f"`max_train: 300` leaves out, `--make-dev`). Differences are paired over seeds, against {compared}. "
             "Rows marked *test* were run on XNLI test and are shown only as information: they took no part in the "
             "choice." + (f" Candidates: {legend}." if legend else ""))
    body = intro + "\n\n" + "\n".join(out)
    for spec in a.noise:
        label, _, d = spec.partition("=")
        body += (f"\n\nRun noise at a fixed mixture, {label} (static rules whose target weights differ by at most "
                 "0.02; a different weight gives a different draw stream):\n\n" + "\n".join(noise_table(Path(d))))
    print(body)
    if not a.no_write:
        update_section(a.section, body)


if __name__ == "__main__":
    main()
