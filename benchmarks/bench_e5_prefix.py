"""Does e5's prefix matter for NLI pair features?  ``passage: `` vs ``query: `` on every sentence.

Usage: python benchmarks/bench_e5_prefix.py [--lang ur] [--cache-dir /tmp/taskmix-cache] [--no-write]

Frozen e5-small-multilingual features [u, v, |u-v|, u*v] of the first ``--pairs`` pairs of the XNLI
``--lang`` validation split; a logistic regression (scikit-learn, C=1) trained on the pairs of 2/3 of the
premises and scored on the pairs of the other third, over 5 random premise splits (the same splits for
both prefixes).  A cheap check of the prefix convention, not a Table 1 number.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _md import ROOT, update_section  # noqa: E402

from taskmix.encoders import SentenceEncoder  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lang", default="ur")
    ap.add_argument("--cache-dir", default="/tmp/taskmix-cache")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--splits", type=int, default=5)
    ap.add_argument("--pairs", type=int, default=1200, help="the first N validation pairs (3 per premise)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    path = ROOT.parent / "shared" / "data" / "xnli" / args.lang / "validation.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()][: args.pairs]
    pairs = [(r["premise"], r["hypothesis"]) for r in rows]
    y = np.array([r["label"] for r in rows])
    premises = sorted({p for p, _ in pairs})
    group = np.array([premises.index(p) for p, _ in pairs])
    results: dict[str, list[float]] = {}
    for prefix in ("passage", "query"):
        name = "e5-small-multilingual" + ("" if prefix == "passage" else ":query")
        enc = SentenceEncoder(name, cache_dir=args.cache_dir, threads=args.threads)
        x = enc.features(pairs)
        accs = []
        for s in range(args.splits):
            perm = np.random.default_rng(s).permutation(len(premises))
            test_groups = set(perm[: len(premises) // 3].tolist())
            te = np.array([g in test_groups for g in group])
            scaler = StandardScaler().fit(x[~te])
            clf = LogisticRegression(C=1.0, max_iter=2000).fit(scaler.transform(x[~te]), y[~te])
            accs.append(float(clf.score(scaler.transform(x[te]), y[te])))
        results[prefix] = accs
        print(prefix, enc.n_encoded, "encoded", np.round(accs, 4), flush=True)
    a, b = np.array(results["passage"]), np.array(results["query"])
    d = a - b
    se = d.std(ddof=1) / np.sqrt(len(d))
    body = f"""XNLI {args.lang} validation, its first {len(pairs)} pairs ({len(premises)} premises), frozen e5-small-multilingual features [u, v, |u−v|, u·v], logistic
regression trained on the pairs of 2/3 of the premises, accuracy on the other third; {args.splits} paired premise splits.

| prefix on every sentence | accuracy (mean ± std over splits) |
|---|---|
| `passage: ` (`e5-small-multilingual`, the default) | {a.mean():.4f} ± {a.std(ddof=1):.4f} |
| `query: ` (`e5-small-multilingual:query`) | {b.mean():.4f} ± {b.std(ddof=1):.4f} |

passage − query: {d.mean():+.4f} (paired SE {se:.4f}). Splitting by premise keeps every test premise out of
training (a random split of pairs would leak premises between the two sides).
"""
    print(body)
    if not args.no_write:
        update_section(f"e5-prefix-{args.lang}", body)


if __name__ == "__main__":
    main()
