"""CLV models on CDNOW: calibration weeks 1-39, holdout weeks 40-78 - how well do they forecast, how fast do they fit.

    python bench/clv_cdnow.py [--repeats 5] [--seeds 1 2 3 4 5] [--scale 0] [--out docs/benchmarks.md]

Data: ../shared/data/cdnow_master (23,570 customers who first bought in 1997-Q1, 1997-01-01 .. 1998-06-30), as
the 2,357-customer sample of the published fits (tests/fixtures/cdnow) and as the whole cohort. Calibration =
transactions up to 1997-09-30 (39 weeks), holdout = 1997-10-01 .. 1998-06-30 (39 weeks); purchases are summed per
customer-day, time unit weeks. Per cohort:
  * BG/NBD and Gamma-Gamma estimates and fit time (median of --repeats fits, each model on its own);
  * holdout purchases: sum over customers of E[Y(39) | x, t_x, T] vs the actual repeat purchase days in weeks
    40-78; the same per calibration frequency (FHL 2005, figure 4);
  * cumulative repeat purchases of the cohort to week 78 from the unconditional E[X(t)] (FHL 2005, figure 2);
  * holdout revenue: sum of E[Y(39)] x E[M | x, zbar] (margin 1, no discount) vs the actual holdout revenue.
Then a recovery check on simulated cohorts (23,570 customers each, parameters = the whole cohort's estimates,
one per seed): holdout error of the fitted model, mean and worst over seeds. --scale N also times a fit and a
52-week CLV on N simulated customers (day-resolution summaries, as the warehouse builds them).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.clv import BetaGeoFitter, GammaGammaFitter, horizon_purchases, simulate_bgnbd  # noqa: E402
from ml.clv.summary import purchase_summary  # noqa: E402

CDNOW = ROOT.parent / "shared" / "data" / "cdnow_master" / "CDNOW_master.txt.gz"
SAMPLE_IDS = ROOT / "tests" / "fixtures" / "cdnow" / "cdnow_sample_master_ids.txt"
CALIBRATION_END, OBSERVATION_END = "1997-09-30", "1998-06-30"
HOLDOUT_WEEKS = 39.0
SECTION = "## Issue 9: CLV on CDNOW (`bench/clv_cdnow.py`)"


def _transactions() -> pd.DataFrame:
    raw = pd.read_csv(CDNOW, sep=r"\s+", dtype=str)
    return pd.DataFrame({"customer_id": raw["customer_id"].astype(int),
                         "date": pd.to_datetime(raw["date"], format="%Y%m%d"),
                         "value": raw["dollar_value"].astype(float)})


def _timed(fit, repeats: int):
    times, model = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        model = fit()
        times.append(time.perf_counter() - t0)
    return model, statistics.median(times)


def evaluate(transactions: pd.DataFrame, repeats: int) -> dict:
    s = purchase_summary(transactions, CALIBRATION_END, OBSERVATION_END)
    x, t_x, big_t = (s[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    bgnbd, bgnbd_s = _timed(lambda: BetaGeoFitter().fit(x, t_x, big_t), repeats)
    zbar = s["monetary_value"].to_numpy(dtype=float)
    priced = np.where(zbar > 0, x, 0.0)  # as segflow.jobs.clv: free repeat purchases tell the spend model nothing
    spend, spend_s = _timed(lambda: GammaGammaFitter().fit(priced, zbar), repeats)
    predicted = bgnbd.expected_purchases(HOLDOUT_WEEKS, x, t_x, big_t)
    actual = s["frequency_holdout"].to_numpy(dtype=float)
    by_x = (pd.DataFrame({"x": np.minimum(x, 7).astype(int), "actual": actual, "predicted": predicted})
            .groupby("x").agg(customers=("actual", "size"), actual=("actual", "mean"), predicted=("predicted", "mean")))
    # cumulative repeat purchases of the cohort to the end of week 78, from acquisition (unconditional)
    end = pd.Timestamp(OBSERVATION_END)
    first = transactions.groupby("customer_id")["date"].min()
    age_at_end = (end - first).dt.days.to_numpy() / 7
    cumulative_predicted = float(bgnbd.expected_purchases_new_customer(age_at_end).sum())
    cumulative_actual = float(s["frequency"].sum() + actual.sum())
    # holdout revenue: expected purchases x expected spend against what was bought in weeks 40-78
    expected_spend = spend.conditional_expected_spend(priced, zbar)
    holdout = transactions[(transactions["date"] > pd.Timestamp(CALIBRATION_END)) & (transactions["date"] <= end)]
    revenue_predicted, _ = horizon_purchases(bgnbd, x, t_x, big_t, horizon_weeks=39, annual_discount_rate=0.0)
    return {
        "customers": len(s), "repeat_customers": int((x > 0).sum()), "free_repeaters": int(((x > 0) & (zbar <= 0)).sum()), "bgnbd": bgnbd, "spend": spend,
        "bgnbd_seconds": bgnbd_s, "spend_seconds": spend_s,
        "holdout_actual": float(actual.sum()), "holdout_predicted": float(predicted.sum()), "by_x": by_x,
        "cumulative_actual": cumulative_actual, "cumulative_predicted": cumulative_predicted,
        "revenue_actual": float(holdout["value"].sum()),
        "revenue_predicted": float((revenue_predicted * expected_spend).sum()),
    }


def recovery(params: dict, seeds: list[int], n: int) -> list[dict]:
    out = []
    for seed in seeds:
        ages = np.random.default_rng(seed + 1000).integers(26 * 7, 39 * 7 + 1, n) / 7  # 1997-Q1 cohort, in days
        cohort = simulate_bgnbd(n, **params, T=ages, holdout=HOLDOUT_WEEKS, seed=seed)
        model = BetaGeoFitter().fit(cohort.frequency, cohort.recency, cohort.T)
        predicted = model.expected_purchases(HOLDOUT_WEEKS, cohort.frequency, cohort.recency, cohort.T).sum()
        out.append({"seed": seed, "error": predicted / cohort.frequency_holdout.sum() - 1,
                    "params": model.params_})
    return out


def scale(n: int, params: dict) -> dict:
    ages = np.random.default_rng(99).integers(0, 39 * 7 + 1, n) / 7
    cohort = simulate_bgnbd(n, **params, T=ages, seed=98)
    recency = np.floor(cohort.recency * 7) / 7  # day resolution, as marts.customer_purchase_summary
    t0 = time.perf_counter()
    model = BetaGeoFitter().fit(cohort.frequency, recency, cohort.T)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    horizon_purchases(model, cohort.frequency, recency, cohort.T, horizon_weeks=52, annual_discount_rate=0.1)
    clv_s = time.perf_counter() - t0
    distinct = len(np.unique(np.column_stack([cohort.frequency, recency, cohort.T]), axis=0))
    import resource

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"n": n, "distinct": distinct, "fit_s": fit_s, "clv_s": clv_s, "peak_mb": peak_mb}


def _pct(predicted: float, actual: float) -> str:
    return f"{100 * (predicted / actual - 1):+.1f}%"


def report(results: dict[str, dict], rec: list[dict], scaled: dict | None, repeats: int) -> str:
    lines = [SECTION, "",
             f"Calibration weeks 1-39 (to {CALIBRATION_END}), holdout weeks 40-78 (to {OBSERVATION_END}); time unit "
             f"weeks; fit times are medians of {repeats} fits on this machine (2 shared cores). Reproduce with "
             "`.venv/bin/python bench/clv_cdnow.py`.", "",
             "| cohort | customers | repeat | BG/NBD r, alpha, a, b (LL) | fit s | Gamma-Gamma p, q, gamma | fit s |",
             "|---|---:|---:|---|---:|---|---:|"]
    for name, r in results.items():
        b, g = r["bgnbd"], r["spend"]
        lines.append(f"| {name} | {r['customers']:,} | {r['repeat_customers']:,} | {b.r_:.4f}, {b.alpha_:.4f}, "
                     f"{b.a_:.4f}, {b.b_:.4f} ({b.log_likelihood_:,.1f}) | {r['bgnbd_seconds']:.2f} | "
                     f"{g.p_:.3f}, {g.q_:.3f}, {g.gamma_:.3f} | {r['spend_seconds']:.2f} |")
    lines += ["", "| cohort | holdout purchases: actual / predicted (error) | cumulative to week 78: actual / "
              "predicted (error) | holdout revenue: actual / predicted (error) |", "|---|---|---|---|"]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['holdout_actual']:,.0f} / {r['holdout_predicted']:,.0f} "
            f"({_pct(r['holdout_predicted'], r['holdout_actual'])}) | {r['cumulative_actual']:,.0f} / "
            f"{r['cumulative_predicted']:,.0f} ({_pct(r['cumulative_predicted'], r['cumulative_actual'])}) | "
            f"${r['revenue_actual']:,.0f} / ${r['revenue_predicted']:,.0f} "
            f"({_pct(r['revenue_predicted'], r['revenue_actual'])}) |")
    lines += ["", "Mean holdout purchases per customer by calibration repeat purchases x (7 = 7 or more), actual / "
              "predicted:", "", "| x | " + " | ".join(results) + " |", "|---|" + "---|" * len(results)]
    tables = {name: r["by_x"] for name, r in results.items()}
    for x in next(iter(tables.values())).index:
        cells = [f"{t.loc[x, 'actual']:.2f} / {t.loc[x, 'predicted']:.2f} (n={t.loc[x, 'customers']:,})"
                 for t in tables.values()]
        lines.append(f"| {x} | " + " | ".join(cells) + " |")
    errors = [abs(r["error"]) for r in rec]
    signed = ", ".join(f"{100 * r['error']:+.1f}%" for r in rec)
    lines += ["", f"Simulated cohorts ({len(rec)} seeds: {', '.join(str(r['seed']) for r in rec)}; 23,570 customers, "
              "parameters = the whole cohort's BG/NBD estimates): holdout purchase error of the refitted model "
              f"mean |error| {100 * statistics.mean(errors):.1f}%, worst {100 * max(errors):.1f}% "
              f"({signed})."]
    if scaled:
        lines += ["", f"Scale: {scaled['n']:,} simulated customers ({scaled['distinct']:,} distinct day-resolution "
                  f"summaries): BG/NBD fit {scaled['fit_s']:.1f} s, 52-week expected purchases + discounting "
                  f"{scaled['clv_s']:.1f} s (one run; the ml library only, not the warehouse read and write); peak "
                  f"RSS of the whole benchmark {scaled['peak_mb']:,.0f} MB."]
    return "\n".join(lines) + "\n"


def write_section(path: Path, text: str) -> None:
    current = path.read_text() if path.exists() else ""
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    updated = pattern.sub(lambda _: text + "\n", current) if pattern.search(current) else (
        current.rstrip("\n") + "\n\n" + text)
    path.write_text(updated)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="fits per model and cohort (median time)")
    parser.add_argument("--seeds", type=int, nargs="*", default=[1, 2, 3, 4, 5], help="simulation seeds")
    parser.add_argument("--scale", type=int, default=0, help="also time a fit + CLV on this many customers")
    parser.add_argument("--out", type=Path, help="write the section into this markdown file (e.g. docs/benchmarks.md)")
    args = parser.parse_args()
    if not CDNOW.is_file():
        sys.exit(f"CDNOW not found at {CDNOW} (expected the repo cloned next to shared/)")
    transactions = _transactions()
    ids = {int(v) for v in SAMPLE_IDS.read_text().split()}
    results = {"sample (published fit)": evaluate(transactions[transactions["customer_id"].isin(ids)], args.repeats),
               "whole cohort": evaluate(transactions, args.repeats)}
    whole = results["whole cohort"]["bgnbd"].params_
    rec = recovery(whole, args.seeds, 23_570) if args.seeds else []
    scaled = scale(args.scale, whole) if args.scale else None
    text = report(results, rec, scaled, args.repeats)
    print(text)
    if args.out:
        write_section(args.out, text)


if __name__ == "__main__":
    main()
