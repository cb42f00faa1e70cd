"""Coverage and power of the business-metric intervals (ml.intervals, used by ml.business / ml.ab_readout).

Null experiments (no uplift): how often the 95% interval of the uplift covers 0 (should be ~0.95), for
conversion (Newcombe) and revenue per customer (Welch t, spend gamma-distributed and skewed, non-buyers 0).
Planted uplift: how often the interval excludes 0 (power). Also the AOV delta-method interval's coverage of
the true AOV. Seeds 1..5 (never the demo's 42); per configuration the mean and the worst seed are reported.

    .venv/bin/python bench/ab_coverage.py [--runs 2000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.intervals import newcombe_diff, ratio_ci, welch_diff  # noqa: E402

SEEDS = (1, 2, 3, 4, 5)


def _arm(rng, n, p, spend_shape, spend_mean):
    converted = rng.random(n) < p
    spend = rng.gamma(spend_shape, spend_mean / spend_shape, n)
    return converted, np.where(converted, spend, 0.0)


def experiment_rates(seed, runs, n, p, lift, spend_shape=0.8, spend_mean=60.0):
    """Share of runs whose conversion / revenue interval covers the true uplift, and excludes 0."""
    rng = np.random.default_rng(seed)
    true_rev = (p + lift) * spend_mean - p * spend_mean
    cover = np.zeros(2)
    reject = np.zeros(2)
    for _ in range(runs):
        c0, r0 = _arm(rng, n, p, spend_shape, spend_mean)
        c1, r1 = _arm(rng, n, p + lift, spend_shape, spend_mean)
        _, lo, hi = newcombe_diff(int(c1.sum()), n, int(c0.sum()), n)
        cover[0] += lo <= lift <= hi
        reject[0] += lo > 0 or hi < 0
        _, lo, hi = welch_diff(r1, r0)
        cover[1] += lo <= true_rev <= hi  # NaN (no buyer in either arm) counts as a miss
        reject[1] += lo > 0 or hi < 0
    return cover / runs, reject / runs


def aov_coverage(seed, runs, customers):
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(runs):
        orders = rng.geometric(0.5, customers)
        revenue = np.array([rng.gamma(0.8, 80 / 0.8, k).sum() for k in orders])
        _, lo, hi = ratio_ci(revenue, orders)
        hits += lo <= 80 <= hi
    return hits / runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000, help="simulated experiments per seed and setting")
    args = parser.parse_args()
    print(f"runs per seed: {args.runs}; seeds {SEEDS}; mean (worst seed)\n")
    print("| customers per arm | base conversion | uplift | conversion: coverage | conversion: CI excludes 0 |"
          " revenue/customer: coverage | revenue/customer: CI excludes 0 |")
    print("|---|---|---|---|---|---|---|")
    for n, p, lift in ((30, 0.2, 0.0), (100, 0.05, 0.0), (100, 0.2, 0.0), (1000, 0.05, 0.0), (1000, 0.2, 0.0),
                       (1000, 0.2, 0.05), (5000, 0.05, 0.01)):
        res = [experiment_rates(seed, args.runs, n, p, lift) for seed in SEEDS]
        cover = np.array([r[0] for r in res])
        reject = np.array([r[1] for r in res])
        cells = []
        for k in range(2):
            cells.append(f"{cover[:, k].mean():.3f} ({cover[:, k].min():.3f})")
            worst = reject[:, k].max() if lift == 0 else reject[:, k].min()
            cells.append(f"{reject[:, k].mean():.3f} ({worst:.3f})")
        print(f"| {n:,} | {p} | {lift} | " + " | ".join(cells) + " |")
    print("\n| buyers | AOV interval coverage of the true AOV |\n|---|---|")
    for customers in (20, 100, 1000):
        cov = np.array([aov_coverage(seed, max(200, args.runs // 4), customers) for seed in SEEDS])
        print(f"| {customers:,} | {cov.mean():.3f} ({cov.min():.3f}) |")


if __name__ == "__main__":
    main()
