"""Report sections about the week's model: summary, k-selection curves, segment profiles, 2-D projection."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from segflow.report.context import ReportContext
from segflow.report.html import Raw, Unavailable, esc, figure, table
from segflow.report.plots import new_figure, to_svg
from segflow.warehouse import table_exists

NO_RUN = "the week has no segmentation run (ml.model_runs): run `segflow segment` for it first"


def _one(con, sql: str, params: list) -> dict | None:
    frame = con.execute(sql, params).df()
    if frame.empty:
        return None
    return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in frame.iloc[0].items()}


def model_version(ctx: ReportContext) -> str:
    """The model version shown in the summary: the week's row of ``ml.model_registry`` (version and status; for a
    rejected version, why, and that the champion's assignments were published); the run id and code version
    where the registry has no row for the run (runs from before the registry)."""
    con, run = ctx.con, ctx.run
    if table_exists(con, "ml", "model_registry"):
        row = con.execute("select version, status, reason, champion_before from ml.model_registry "
                          "where run_id = ? limit 1", [run["run_id"]]).fetchall()
        if row:
            version, status, reason, champion = row[0]
            if status == "rejected":
                kept = f"; champion {champion} kept" if champion else ""
                return f"{version} (rejected: {reason}{kept})"
            return f"{version} ({status})"
    return f"{run['run_id']} (code {run.get('code_version') or 'unknown'})"


def summary(ctx: ReportContext) -> str:
    con, run = ctx.con, ctx.run
    if run is None:
        raise Unavailable(NO_RUN)
    rows = [("Week (as of)", f"{ctx.as_of:%Y-%m-%d %H:%M} UTC"), ("Model version", model_version(ctx)),
            ("Model status", run["status"]), ("Algorithm", run["algorithm"]), ("Segments (k)", run["k"]),
            ("Silhouette", f"{run['silhouette']:.3f}" if run["silhouette"] is not None else "–"),
            ("Customers segmented", f"{int(run['customer_count']):,}"),
            ("Selection", ctx.params.get("selection_reason", "–"))]
    anomaly = (_one(con, "select customer_count, flagged_count, excluded_from_segments from ml.anomaly_runs "
                         "where as_of = ?", [ctx.as_of]) if table_exists(con, "ml", "anomaly_runs") else None)
    rows.append(("Anomalous customers", "not scored this week" if anomaly is None else
                 f"{int(anomaly['flagged_count']):,} of {int(anomaly['customer_count']):,} flagged"
                 + (" (kept out of the segments)" if anomaly["excluded_from_segments"] else "")))
    drift = (_one(con, "select verdict, reasons from ml.drift_runs where as_of = ?", [ctx.as_of])
             if table_exists(con, "ml", "drift_runs") else None)
    rows.append(("Drift verdict", "not checked" if drift is None else drift["verdict"]))
    clv = (_one(con, "select status, reason from ml.clv_models where as_of = ?", [ctx.as_of])
           if table_exists(con, "ml", "clv_models") else None)
    rows.append(("CLV model", "not fitted" if clv is None else clv["status"]))
    pub = (_one(con, "select path, row_count from ml.publications where as_of = ?", [ctx.as_of])
           if table_exists(con, "ml", "publications") else None)
    rows.append(("Published", "no (gate or model floor not passed, or not yet run)" if pub is None
                 else f"{int(pub['row_count']):,} customers → {pub['path']}"))
    seg_rows = [(s.segment_id, s.segment_name, int(s.customer_count), float(s.share)) for s in ctx.segments.itertuples()]
    return (table(["item", "value"], rows) + "<h3>Segments</h3>"
            + table(["id", "name", "customers", "share"], seg_rows, [False, False, True, True]))


_CRITERIA = (("silhouette", "silhouette (higher is better)"), ("davies_bouldin", "Davies–Bouldin (lower is better)"),
             ("calinski_harabasz", "Calinski–Harabasz (higher is better)"), ("inertia", "inertia / elbow (k-means)"),
             ("stability", "bootstrap stability (ARI, higher)"))


def k_selection(ctx: ReportContext) -> str:
    if ctx.run is None:
        raise Unavailable(NO_RUN)
    scores = json.loads(ctx.run.get("scores") or "{}")
    if not scores:
        raise Unavailable("the model run recorded no candidate scores")
    rows = []
    for key, values in scores.items():
        algorithm, _, k = key.rpartition(":")
        if not isinstance(values, dict):  # runs before issue 9 stored {k: silhouette} for k-means only
            values = {"silhouette": values, "admissible": True}
        rows.append({"algorithm": algorithm or ctx.run["algorithm"] or "kmeans", "k": int(k), **values})
    frame = pd.DataFrame(rows).sort_values(["algorithm", "k"])
    fig, axes = new_figure(11, 5.6, 2, 3)
    chosen = (ctx.run["algorithm"], int(ctx.run["k"]))
    knee = ctx.params.get("knee_k")
    for ax, (criterion, title) in zip(axes.flat, _CRITERIA, strict=False):
        ax.set_title(title)
        ax.set_xlabel("k")
        for algorithm, part in frame.groupby("algorithm"):
            if criterion not in part or part[criterion].isna().all():
                continue
            line, = ax.plot(part["k"], part[criterion], marker="o", label=algorithm)
            bad = part[~part["admissible"].astype(bool)] if "admissible" in part else part.iloc[:0]
            ax.scatter(bad["k"], bad[criterion], s=60, facecolors="white", edgecolors=line.get_color(), zorder=3)
            if algorithm == chosen[0]:
                hit = part[part["k"] == chosen[1]]
                ax.scatter(hit["k"], hit[criterion], s=160, marker="*", color="black", zorder=4)
        if criterion == "inertia" and knee:
            ax.axvline(knee, color="grey", linestyle="--", linewidth=1)
            ax.text(knee, ax.get_ylim()[1], f" knee k={knee}", va="top", fontsize=8, color="grey")
    axes.flat[0].legend()
    ax = axes.flat[5]
    ax.axis("off")
    ax.text(0, 0.9, f"chosen: {chosen[0]}, k = {chosen[1]} (★)", fontsize=10, weight="bold")
    ax.text(0, 0.75, "hollow: inadmissible (a segment below the\nminimum share, or unstable)", fontsize=8)
    fig.tight_layout()
    reason = ctx.params.get("selection_reason")
    note = f"<p><strong>Why this model:</strong> {esc(reason)}</p>" if reason else ""
    return note + figure(to_svg(fig, "k-selection"), "Each candidate (algorithm, k) fitted this week on the "
                         "selection sample; the star marks the model kept.")


def profiles(ctx: ReportContext) -> str:
    if ctx.run is None or ctx.segments.empty:
        raise Unavailable(NO_RUN)
    profiles_ = {s.segment_id: json.loads(s.profile or "{}") for s in ctx.segments.itertuples()}
    features = ctx.features or sorted({f for p in profiles_.values() for f in p})
    rows = [(Raw(f'<span style="color:{ctx.colors.get(s.segment_id, "#000")}">■</span> {esc(s.segment_id)}'),
             s.segment_name, s.name_rule if "name_rule" in ctx.segments else "", int(s.customer_count),
             float(s.share), "new" if s.is_new else "") for s in ctx.segments.itertuples()]
    out = table(["id", "name", "named by", "customers", "share", ""], rows, [False, False, False, True, True, False])
    scaled = ctx.scaled
    if scaled is None:
        return out + "<p class=\"muted\">No feature snapshot for this week: no heatmap.</p>"
    ids, matrix = scaled
    means = pd.DataFrame(matrix, columns=features).groupby(ids["segment_id"].to_numpy()).mean().sort_index()
    fig, axes = new_figure(max(7.0, 0.55 * len(features) + 2), 0.45 * len(means) + 2.2)
    ax = axes[0, 0]
    limit = float(np.nanmax(np.abs(means.to_numpy()))) or 1.0
    image = ax.imshow(means.to_numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(len(features)), features, rotation=60, ha="right")
    ax.set_yticks(range(len(means)), [ctx.name_of(s) for s in means.index])
    for (i, j), value in np.ndenumerate(means.to_numpy()):
        ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=7,
                color="white" if abs(value) > 0.6 * limit else "black")
    fig.colorbar(image, ax=ax, shrink=0.8, label="mean, in population SDs")
    fig.tight_layout()
    raw = [[s.segment_id, *(profiles_[s.segment_id].get(f) for f in features)] for s in ctx.segments.itertuples()]
    details = ("<details><summary>Raw feature means per segment</summary>"
               + table(["id", *features], raw, [False] + [True] * len(features)) + "</details>")
    return out + figure(to_svg(fig, "profiles"), "Standardised feature means (model space: log where the model "
                        "logs, then z-scored over all segmented customers). Red = above the population, blue = "
                        "below.") + details


def projection(ctx: ReportContext) -> str:
    from sklearn.decomposition import PCA

    if ctx.run is None:
        raise Unavailable(NO_RUN)
    scaled = ctx.scaled
    if scaled is None:
        raise Unavailable("no feature snapshot (ml.feature_snapshots) for this week's run")
    ids, matrix = scaled
    if len(matrix) < 3:
        raise Unavailable("fewer than 3 customers")
    pca = PCA(n_components=2, random_state=ctx.settings.random_seed).fit(matrix)
    rng = np.random.default_rng(ctx.settings.random_seed)
    take = np.sort(rng.choice(len(matrix), size=min(len(matrix), ctx.settings.report_projection_sample),
                              replace=False))
    points = pca.transform(matrix[take])
    labels = ids["segment_id"].to_numpy()[take]
    fig, axes = new_figure(8, 5.5)
    ax = axes[0, 0]
    for sid in sorted(set(labels)):
        mask = labels == sid
        ax.scatter(points[mask, 0], points[mask, 1], s=7, alpha=0.6, color=ctx.colors.get(sid),
                   label=f"{ctx.name_of(sid)} ({mask.sum()})", linewidths=0)
    ratio = pca.explained_variance_ratio_
    ax.set_xlabel(f"PC1 ({ratio[0]:.0%} of variance)")
    ax.set_ylabel(f"PC2 ({ratio[1]:.0%} of variance)")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), markerscale=2.5, frameon=False)
    fig.tight_layout()
    return figure(to_svg(fig, "projection"), f"{len(take):,} of {len(matrix):,} segmented customers (seeded "
                  "sample), projected on the two principal components of the model's feature space.")
