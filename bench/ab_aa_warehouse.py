"""A/A check on a real warehouse: random 50/50 splits of the segmented customers, outcomes from the marts.

No split has an effect, so each segment's 95% uplift interval should exclude 0 in about 5% of the splits
(fewer where an outcome hardly varies, e.g. a segment without buyers). Reads the warehouse read-only.

    .venv/bin/python bench/ab_aa_warehouse.py $SEGFLOW_HOME/warehouse.duckdb --from 2025-10-20 --to 2025-11-02
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.ab_readout import ab_readout  # noqa: E402
from segflow.jobs.ab_readout import marts_outcomes  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse", help="path of a built, segmented warehouse.duckdb")
    parser.add_argument("--from", dest="start", required=True, help="first outcome day (ISO date)")
    parser.add_argument("--to", dest="last", required=True, help="last outcome day (ISO date, included)")
    parser.add_argument("--splits", type=int, default=200, help="random splits (seeds 1..N)")
    args = parser.parse_args()
    con = duckdb.connect(args.warehouse, read_only=True)
    segments = con.execute("select customer_id, segment_id from ml.segment_assignments where as_of = "
                           "(select max(as_of) from ml.segment_assignments)").df()
    outcomes = marts_outcomes(con, date.fromisoformat(args.start), date.fromisoformat(args.last))
    counts: dict[tuple[str, str], list[int]] = {}
    for seed in range(1, args.splits + 1):
        rng = np.random.default_rng(seed)
        split = segments[["customer_id"]].assign(arm=rng.choice(["control", "treatment"], len(segments)))
        for row in ab_readout(split, outcomes, segments).itertuples():
            if pd.isna(row.ci_low):
                continue
            cell = counts.setdefault((row.segment_id, row.metric), [0, 0])
            cell[0] += 1
            cell[1] += not (row.ci_low <= 0 <= row.ci_high)
    print(f"{len(segments)} customers, {args.splits} random splits, outcomes {args.start}..{args.last}\n")
    print("| segment | metric | splits with an interval | interval excludes 0 |\n|---|---|---|---|")
    for (segment, metric), (n, k) in sorted(counts.items()):
        print(f"| {segment} | {metric} | {n} | {k / n:.3f} |")
    for metric in ("conversion_rate", "revenue_per_customer"):
        n = sum(v[0] for (s, m), v in counts.items() if m == metric and s != "(all)")
        k = sum(v[1] for (s, m), v in counts.items() if m == metric and s != "(all)")
        print(f"| all segments | {metric} | {n} | {k / n:.3f} |")


if __name__ == "__main__":
    main()
