"""Time of the assignment classifier's training at scale (docs/model-registry.md).

    python bench/assign_scale.py --home HOME [--as-of 2025-09-29] [--customers 100000] [--out docs/benchmarks.md]

Takes one registered week's training rows from HOME (``ml.feature_snapshots`` + ``ml.segment_assignments``), resamples
them with replacement to ``--customers`` rows and multiplies every value by a log-normal jitter (sigma 0.05; rows are
then not exact copies), keeps each source row's segment, and runs :func:`ml.assignment.train_assigner` with the
settings' values (grid search on a stratified sample of SEGFLOW_ASSIGN_GRID_SAMPLE rows, 3-fold CV over the
documented grid, held-out evaluation, permutation importance, refit on every row). Prints the times and macro-F1.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    import numpy as np

    from ml.assignment import default_grids, train_assigner
    from ml.features import feature_matrix
    from segflow.settings import Settings
    from segflow.warehouse import connect

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, required=True, help="A SEGFLOW_HOME with a segmented week.")
    parser.add_argument("--as-of", help="The week (default: the latest segmented one).")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--out", type=Path, help="Append the result (markdown) to this file.")
    args = parser.parse_args()
    settings = Settings(home=args.home)
    with connect(settings, read_only=True) as con:
        as_of = (datetime.fromisoformat(args.as_of) if args.as_of else
                 con.execute("select max(as_of) from ml.model_runs").fetchone()[0])
        features = __import__("json").loads(con.execute("select features from ml.model_runs where as_of = ?",
                                                         [as_of]).fetchone()[0])
        rows = con.execute("select s.*, a.segment_id from ml.feature_snapshots s join ml.segment_assignments a "
                           "using (as_of, customer_id) where s.as_of = ?", [as_of]).df()
    rng = np.random.default_rng(settings.random_seed)
    pick = rng.integers(0, len(rows), size=args.customers)
    X = feature_matrix(rows, features)[pick] * rng.lognormal(0.0, 0.05, size=(args.customers, len(features)))
    y = rows["segment_id"].to_numpy().astype(str)[pick]
    t0, c0 = time.perf_counter(), time.process_time()
    model, report = train_assigner(X, y, features, test_size=settings.assign_holdout_share,
                                   importance_repeats=settings.assign_importance_repeats,
                                   random_state=settings.random_seed, cv=settings.assign_cv_folds,
                                   grid_sample=settings.assign_grid_sample,
                                   param_grids=default_grids(settings.assign_ensemble_size))
    total, cpu = time.perf_counter() - t0, time.process_time() - c0
    text = (f"\n### Assignment classifier at scale — {datetime.now():%Y-%m-%d %H:%M} UTC (bench/assign_scale.py)\n\n"
            f"{args.customers:,} customers resampled from {len(rows):,} ({as_of:%Y-%m-%d}, k={len(set(y))}), "
            f"{len(features)} features; grid sample {settings.assign_grid_sample:,}, {settings.assign_cv_folds} folds, "
            f"ensemble size {settings.assign_ensemble_size}:\n\n"
            f"- grid search (both candidates, {sum(r['fits'] for r in model.cv_results_.values())} CV fits) + fit on "
            f"the training split: **{report.search_seconds:.0f} s** wall, **{model.search_cpu_seconds_:.0f} s** CPU; whole training (held-out evaluation, permutation "
            f"importance, refit on all rows): **{total:.0f} s** wall, **{cpu:.0f} s** CPU (one thread: the CPU time "
            f"is the wall time on an idle core)\n"
            f"- CV macro-F1 {report.cv_macro_f1}; chosen {report.chosen}; held-out macro-F1 "
            f"{report.holdout_macro_f1:.3f}\n")
    print(text)
    if args.out:
        with open(args.out, "a") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
