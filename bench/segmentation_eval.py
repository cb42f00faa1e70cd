"""Segmentation evaluation (issue 9): ARI against the generator's planted personas, week-to-week id stability,
feature sets compared, and a 1M-customer re-cluster (time, peak RSS).

    python bench/segmentation_eval.py prepare --seeds 1 2 3 4 5 --weeks 7 8 9   # build warehouses, cache frames
    python bench/segmentation_eval.py evaluate --seeds 1 2 3 4 5 --weeks 7 8 9  # ARI, stability, feature sets
    python bench/segmentation_eval.py scale --customers 1000000                 # time + peak RSS

``prepare`` generates 2,000 customers x 9 weeks per seed (no injected drift), loads them, runs ``dbt build`` as of
the end of each week and stores the frame the weekly job reads (``segflow.jobs.segment_data.read_feature_frame``).
``evaluate`` runs the job's own functions (``ml.pipeline.fit_segments``, then the job's identity and naming
step) week after week on those frames. The personas (``$SEGFLOW_HOME/truth/personas.csv``) are read only to
score: never fed to the pipeline. "without bots" removes the generator's bots before clustering, as the anomaly
step will; "with bots" clusters everyone.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
START = date(2025, 9, 1)
CACHE = Path(os.environ.get("SEGFLOW_EVAL_CACHE", "/tmp/segflow-segeval"))


def _as_of(week: int) -> datetime:
    return datetime.combine(START + timedelta(weeks=week), datetime.min.time())


def prepare(seeds: list[int], weeks: list[int], customers: int) -> None:
    import duckdb

    from segflow.jobs.build import build
    from segflow.jobs.load import load_landing
    from segflow.jobs.segment_data import read_feature_frame
    from segflow.settings import Settings
    from segflow.sources.generator import GeneratorConfig, generate

    for seed in seeds:
        settings = Settings(home=CACHE / f"home{seed}")
        settings.ensure_dirs()
        generate(GeneratorConfig(customers=customers, days=63, start=START, seed=seed, drift_week=None),
                 settings.landing_dir, settings.truth_dir)
        load_landing(settings)
        for week in sorted(weeks):
            build(settings, as_of=_as_of(week))
            with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
                read_feature_frame(con).to_parquet(CACHE / f"f_{seed}_{week}.parquet")
            print(f"seed {seed} week {week} cached", flush=True)


def _frame(seed: int, week: int) -> pd.DataFrame:
    from ml.features import add_derived_features

    return add_derived_features(pd.read_parquet(CACHE / f"f_{seed}_{week}.parquet"))


def _truth(seed: int) -> pd.Series:
    return pd.read_csv(CACHE / f"home{seed}" / "truth" / "personas.csv").set_index("customer_id")["persona"]


def _fit_week(frame, settings, state):
    from ml.features import feature_matrix
    from segflow.jobs.segment import fit_with_settings
    from segflow.jobs.segment_store import identities_and_names

    columns = list(settings.features)
    raw = feature_matrix(frame, columns)
    fit = fit_with_settings(raw, columns, settings, previous=state["choice"])
    lineage, names = identities_and_names(fit, frame, columns, state, settings)
    ids = pd.Series([lineage.ids[c] for c in fit.labels], index=frame["customer_id"].to_numpy())
    new_state = {"run_id": "prev", "choice": (fit.choice.algorithm, fit.k),
                 "anchor": (fit.preprocessor.mean_, fit.preprocessor.scale_),
                 "centroids": dict(zip(lineage.ids, fit.log_centroids, strict=True)),
                 "names": dict(zip(lineage.ids, names, strict=True)), "members": ids,
                 "used_ids": sorted({*state["used_ids"], *lineage.ids})}
    return fit, lineage, ids, new_state


def evaluate(seeds: list[int], weeks: list[int], bots: bool) -> dict:
    from sklearn.metrics import adjusted_rand_score

    from segflow.settings import Settings

    settings = Settings(home=CACHE / "settings-home")
    rows = []
    for seed in seeds:
        truth = _truth(seed)
        state = {"run_id": None, "choice": None, "anchor": None, "centroids": {}, "names": {},
                 "members": pd.Series(dtype=object), "used_ids": []}
        for week in weeks:
            frame = _frame(seed, week)
            if not bots:
                frame = frame[frame["customer_id"].map(truth) != "bot"].reset_index(drop=True)
            t0 = time.perf_counter()
            fit, lineage, ids, next_state = _fit_week(frame, settings, state)
            elapsed = time.perf_counter() - t0
            both = ids.index.intersection(state["members"].index)
            stability = float((ids.loc[both] == state["members"].loc[both]).mean()) if len(both) else None
            events = pd.Series([e["event"] for e in lineage.events]).value_counts().to_dict()
            rows.append({"seed": seed, "week": week, "algorithm": fit.choice.algorithm, "k": fit.k,
                         "ari": adjusted_rand_score(frame["customer_id"].map(truth), fit.labels),
                         "stability": stability, "events": events, "seconds": round(elapsed, 1),
                         "names": sorted(n for n, _ in next_state["names"].values())})
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "names"}), flush=True)
            state = next_state
    return {"rows": rows}


def feature_sets(seeds: list[int], week: int, k: int) -> list[dict]:
    """ARI at a fixed k (the persona count, to isolate the features from the choice of k) per feature set."""
    from sklearn.metrics import adjusted_rand_score

    from ml.clustering import SegmentClusterer
    from ml.features import SegmentPreprocessor, feature_matrix, make_preprocessor
    from segflow.settings import DEFAULT_FEATURES, DEFAULT_LOG_FEATURES

    old = ["recency_days", "frequency", "monetary", "avg_order_value", "sessions_28d", "pages_per_session",
           "avg_session_minutes", "cart_abandonment_rate", "app_event_share", "email_click_rate", "tenure_days"]
    no_time = [c for c in DEFAULT_FEATURES if c not in ("active_week_share", "activity_trend")]
    sets = {"pre-issue-9 (11 columns, old preprocessing)": (old, "old"),
            "pre-issue-9 columns, new preprocessing": (old, "new"),
            "chosen set without the trend columns": (no_time, "new"),
            "chosen set (settings.DEFAULT_FEATURES)": (list(DEFAULT_FEATURES), "new")}
    out = []
    for name, (cols, prep) in sets.items():
        scores = {a: [] for a in ("kmeans", "gmm")}
        for seed in seeds:
            frame = _frame(seed, week)
            frame = frame[frame["customer_id"].map(_truth(seed)) != "bot"]
            raw = feature_matrix(frame, cols)
            X = (make_preprocessor().fit_transform(raw) if prep == "old" else
                 SegmentPreprocessor(tuple(i for i, c in enumerate(cols) if c in DEFAULT_LOG_FEATURES))
                 .fit_transform(raw))
            for a in scores:
                labels = SegmentClusterer(a, k, random_state=0).fit(X).labels_
                scores[a].append(adjusted_rand_score(frame["customer_id"].map(_truth(seed)), labels))
        out.append({"feature_set": name, **{f"{a}_mean": float(np.mean(v)) for a, v in scores.items()},
                    **{f"{a}_worst": float(np.min(v)) for a, v in scores.items()}})
        print(json.dumps(out[-1]), flush=True)
    return out


def scale(customers: int, seeds: list[int], weeks: list[int]) -> dict:
    """Re-cluster ``customers`` synthetic rows (cached real rows resampled with 5% multiplicative noise),
    model selection included, as the job does it; wall time and this process's peak RSS."""
    from ml.features import feature_matrix
    from ml.pipeline import fit_segments
    from segflow.settings import Settings

    settings = Settings(home=CACHE / "settings-home")
    columns = list(settings.features)
    pool = np.vstack([feature_matrix(_frame(s, w), columns) for s in seeds for w in weeks[-1:]])
    rng = np.random.default_rng(0)
    raw = pool[rng.integers(0, len(pool), size=customers)]
    raw = raw * rng.normal(1.0, 0.05, size=raw.shape)
    t0 = time.perf_counter()
    fit = fit_segments(
        raw, log_columns=[i for i, c in enumerate(columns) if c in settings.log_features],
        ks=range(settings.k_min, settings.k_max + 1), algorithms=settings.segment_algorithms,
        random_state=settings.random_seed, flag_weight=settings.missing_flag_weight,
        selection_sample=settings.selection_sample, bootstrap_runs=settings.bootstrap_runs,
        min_segment_share=settings.min_segment_share, min_stability=settings.min_stability,
        tolerance=settings.selection_tolerance, keep_tolerance=settings.selection_keep_tolerance, merge_distance=settings.segment_merge_distance,
        fit_sample=settings.segment_fit_sample, silhouette_sample=settings.silhouette_sample,
        minibatch_threshold=settings.segment_minibatch_threshold)
    elapsed = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {"customers": customers, "seconds": round(elapsed, 1), "peak_rss_mb": round(rss),
              "algorithm": fit.choice.algorithm, "k": fit.k, "cpus": os.cpu_count()}
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=["prepare", "evaluate", "features", "scale"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5], help="generator seeds (not 42)")
    parser.add_argument("--weeks", type=int, nargs="+", default=[7, 8, 9], help="as-of weeks after the start")
    parser.add_argument("--customers", type=int, default=None, help="2000 for prepare, 1000000 for scale")
    parser.add_argument("--with-bots", action="store_true", help="evaluate: cluster the generator's bots too")
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    args = parser.parse_args()
    if args.stage == "prepare":
        prepare(args.seeds, args.weeks, args.customers or 2000)
        return
    result = {"evaluate": lambda: evaluate(args.seeds, args.weeks, args.with_bots),
              "features": lambda: feature_sets(args.seeds, max(args.weeks), 7),
              "scale": lambda: scale(args.customers or 1_000_000, args.seeds, args.weeks)}[args.stage]()
    if args.out:
        args.out.write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
