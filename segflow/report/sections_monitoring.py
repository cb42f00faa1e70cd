"""Report sections about change and health: segment flow (Sankey), drift per feature, SPC charts, anomalies."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd

from segflow.report.context import ReportContext
from segflow.report.html import Unavailable, esc, figure, table
from segflow.report.plots import new_figure, to_svg
from segflow.report.sankey import sankey_svg
from segflow.report.sections_model import NO_RUN
from segflow.warehouse import table_exists

NEW, GONE = "(new)", "(gone)"


def segment_flow(ctx: ReportContext) -> str:
    if ctx.run is None:
        raise Unavailable(NO_RUN)
    if not ctx.run.get("previous_run_id"):
        raise Unavailable("first segmentation run on record: there is no previous week to flow from")
    flows = ctx.con.execute("select from_segment_id, to_segment_id, customers from ml.segment_transitions "
                            "where run_id = ?", [ctx.run_id]).fetchall()
    if not flows:
        raise Unavailable("no customer transitions recorded for this run (ml.segment_transitions)")
    flows = [(s or NEW, t or GONE, int(n)) for s, t, n in flows]
    left = {s: (ctx.name_of(s) if s != NEW else "new this week") for s, _, _ in flows}
    right = {t: (ctx.name_of(t) if t != GONE else "not segmented this week") for _, t, _ in flows}
    svg = sankey_svg(flows, left, right, ctx.colors, new=NEW, gone=GONE)
    stayed = sum(n for s, t, n in flows if s == t and s not in (NEW, GONE))
    both = sum(n for s, t, n in flows if s != NEW and t != GONE)
    events = ctx.con.execute("select event, segment_id, related_segment_id, overlap from ml.segment_lineage "
                             "where run_id = ? and event <> 'continued' order by event, segment_id",
                             [ctx.run_id]).fetchall()
    lineage = (table(["event", "segment", "related segment", "member overlap (Jaccard)"],
                     [(e, ctx.name_of(s), ctx.name_of(r) if r else "", o) for e, s, r, o in events],
                     [False, False, False, True]) if events else "<p>Every segment continued (no split, merge, "
               "birth or death).</p>")
    share = f"{stayed / both:.1%}" if both else "–"
    return (f"<p><strong>{share}</strong> of the customers segmented in both weeks kept their segment id "
            f"({stayed:,} of {both:,}).</p>" + figure(svg, "Band width = customers; hover a band for its count.")
            + "<h3>Segment lineage</h3>" + lineage)


def _day(value) -> str:
    return "–" if value is None or pd.isna(value) else f"{pd.Timestamp(value):%Y-%m-%d}"


def drift(ctx: ReportContext) -> str:
    con = ctx.con
    if not table_exists(con, "ml", "drift_runs"):
        raise Unavailable("no drift check has run yet (ml.drift_runs)")
    run = con.execute("select verdict, reasons, reference_as_of, baseline_as_of, tests, drift_tests from "
                      "ml.drift_runs where as_of = ?", [ctx.as_of]).df()
    if run.empty:
        raise Unavailable("no drift check for this week: run `segflow segment` (check_drift) for it")
    r = run.iloc[0]
    if r["verdict"] == "no_reference":
        raise Unavailable("first accepted week: there is no reference week to compare with yet")
    metrics = con.execute("select comparison, scope, feature, psi, ks_stat, p_adjusted, verdict, reference_mean, "
                          "current_mean from ml.drift_metrics where as_of = ? order by scope, feature, comparison",
                          [ctx.as_of]).df()
    if metrics.empty:
        raise Unavailable(f"the drift check recorded no test (verdict {r['verdict']})")
    population = metrics[metrics["scope"].isin(["population", "segments"])]
    features = sorted(population["feature"].unique())
    comparisons = [c for c in ("last_week", "baseline") if c in set(population["comparison"])]
    fig, axes = new_figure(max(7.0, 0.9 * len(features) + 3), 3.4)
    ax = axes[0, 0]
    width = 0.8 / max(len(comparisons), 1)
    for i, comparison in enumerate(comparisons):
        part = population[population["comparison"] == comparison].set_index("feature").reindex(features)
        bars = ax.bar(np.arange(len(features)) + i * width, part["psi"].fillna(0), width,
                      label=f"vs {comparison.replace('_', ' ')}")
        for bar, verdict in zip(bars, part["verdict"], strict=False):
            if verdict == "drift":
                bar.set_hatch("//")
                bar.set_edgecolor("black")
    ax.axhline(ctx.settings.psi_warn, color="#b42318", linestyle="--", linewidth=1,
               label=f"PSI floor {ctx.settings.psi_warn:g}")
    ax.set_xticks(np.arange(len(features)) + width * (len(comparisons) - 1) / 2, features, rotation=30, ha="right")
    ax.set_ylabel("PSI (pinned bins)")
    ax.legend()
    fig.tight_layout()
    verdict_cls = {"stable": "good", "warn": "warn", "drift": "bad"}.get(r["verdict"], "")
    reasons = "; ".join(json.loads(r["reasons"]) if r["reasons"] else [])
    head = (f'<p>Verdict: <span class="{verdict_cls}">{esc(r["verdict"])}</span> — {int(r["drift_tests"] or 0)} of '
            f"{int(r['tests'] or 0)} tests drifted (significant after multiplicity correction and PSI above the "
            f"floor). Compared with last week ({_day(r['reference_as_of'])}) and the baseline from "
            f"{_day(r['baseline_as_of'])}." + (f" Reasons: {esc(reasons)}." if reasons else "") + "</p>")
    rows = [(m.feature if m.scope in ("population", "segments") else f"{m.scope}: {m.feature}", m.comparison, m.psi, m.ks_stat,
             m.p_adjusted, m.reference_mean, m.current_mean, m.verdict) for m in metrics.itertuples()]
    detail = table(["feature", "against", "PSI", "KS", "p (adjusted)", "reference mean", "current mean", "verdict"],
                   [x for x in rows if ":" not in x[0]], [False, False, True, True, True, True, True, False])
    per_segment = [x for x in rows if ":" in x[0]]
    extra = ("<details><summary>Per-segment tests</summary>" + table(
        ["segment: feature", "against", "PSI", "KS", "p (adjusted)", "reference mean", "current mean", "verdict"],
        per_segment, [False, False, True, True, True, True, True, False]) + "</details>") if per_segment else ""
    return head + figure(to_svg(fig, "drift"), "Hatched bars: tests that count as drift.") + detail + extra


def spc(ctx: ReportContext) -> str:
    from ml.spc import control_limits
    from segflow.jobs.monitoring import KPIS, MIN_RELATIVE_SIGMA

    con = ctx.con
    if not table_exists(con, "ml", "segment_kpi_series"):
        raise Unavailable("segment monitoring has not run yet (ml.segment_kpi_series)")
    series = con.execute("select * from ml.segment_kpi_series where as_of <= ? order by as_of",
                         [ctx.as_of]).df()
    current = list(ctx.segments["segment_id"]) if len(ctx.segments) else sorted(series["segment_id"].unique())
    series = series[series["segment_id"].isin(current)]
    if series.empty or series["as_of"].nunique() < 2:
        raise Unavailable(f"{series['as_of'].nunique()} week(s) of segment KPIs: a control chart needs at least 2 "
                          f"(limits from the first {ctx.settings.spc_baseline_weeks} weeks)")
    signals = (con.execute("select * from ml.spc_signals where as_of <= ?", [ctx.as_of]).df()
               if table_exists(con, "ml", "spc_signals") else pd.DataFrame(columns=["segment_id", "kpi", "as_of"]))
    base = ctx.settings.spc_baseline_weeks
    segs = [s for s in current if s in set(series["segment_id"])]
    weeks = sorted(series["as_of"].unique())
    position = {w: i for i, w in enumerate(weeks)}
    fig, axes = new_figure(12, 1.55 * len(segs) + 0.8, len(segs), len(KPIS), sharex=True)
    for i, sid in enumerate(segs):
        part = series[series["segment_id"] == sid].sort_values("as_of")
        for j, kpi in enumerate(KPIS):
            ax = axes[i, j]
            values = part[kpi].to_numpy(dtype=float)
            x = part["as_of"].map(position).to_numpy()
            ax.plot(x, values, marker="o", markersize=3, color=ctx.colors.get(sid), linewidth=1)
            if len(values) > base and np.isfinite(values[:base]).sum() >= 2:
                center = float(np.nanmean(values[:base]))
                limits = control_limits(values[:base], min_sigma=MIN_RELATIVE_SIGMA * abs(center))
                ax.axhline(limits.center, color="grey", linewidth=0.8)
                for k in (-3, 3):
                    ax.axhline(limits.center + k * limits.sigma, color="#b42318", linestyle="--", linewidth=0.8)
            hits = signals[(signals["segment_id"] == sid) & (signals["kpi"] == kpi)]
            if len(hits):
                marked = part[part["as_of"].isin(hits["as_of"])]
                ax.scatter(marked["as_of"].map(position), marked[kpi], s=40, facecolors="none",
                           edgecolors="#b42318", zorder=3)
            if i == 0:
                ax.set_title(kpi)
            if j == 0:
                ax.set_ylabel(sid, rotation=0, ha="right", va="center")
            ax.set_xticks(range(len(weeks)), [f"{pd.Timestamp(w):%m-%d}" for w in weeks])
            ax.tick_params(axis="x", labelrotation=60, labelsize=7)
            ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    week = signals[signals["as_of"] == pd.Timestamp(ctx.as_of)] if len(signals) else signals
    rows = [(ctx.name_of(s.segment_id), s.kpi, s.value, s.center, s.sigma, f"rule {s.rule}",
             "above" if s.side > 0 else "below") for s in week.itertuples()]
    listing = (table(["segment", "KPI", "value", "centre", "sigma", "Western Electric", "side"], rows,
                     [False, False, True, True, True, False, False]) if rows else "<p>No SPC signal this week.</p>")
    breaks = (con.execute("select segment_id, kind, activity_date, value, trend from ml.trend_breaks where as_of = ? "
                          "order by segment_id, activity_date", [ctx.as_of]).fetchall()
              if table_exists(con, "ml", "trend_breaks") else [])
    trend = ("<h3>Trend breaks (STL, daily sessions)</h3>" + table(
        ["segment", "kind", "day", "value", "trend"], [(ctx.name_of(b[0]), *b[1:]) for b in breaks],
        [False, False, False, True, True])) if breaks else "<p>No STL trend break in the last 7 days.</p>"
    weeks = len(weeks)
    note = "" if weeks > base else (f"<p class=\"muted\">{weeks} weeks of history: control limits appear once a "
                                    f"segment has {base + 1} weeks (SEGFLOW_SPC_BASELINE_WEEKS = {base}).</p>")
    return note + figure(to_svg(fig, "spc"), "Rows: this week's segments; columns: weekly KPIs. Grey line: centre, "
                         "red dashes: ±3σ from the baseline weeks; red circles: Western Electric signals.") \
        + "<h3>Signals this week</h3>" + listing + trend


def anomalies(ctx: ReportContext) -> str:
    con = ctx.con
    if not table_exists(con, "ml", "anomaly_runs"):
        raise Unavailable("anomaly detection has not run yet (ml.anomaly_runs)")
    run = con.execute("select customer_count, flagged_count, excluded_from_segments from ml.anomaly_runs "
                      "where as_of = ?", [ctx.as_of]).fetchall()
    if not run:
        raise Unavailable("no anomaly run for this week: run `segflow anomalies` (detect_anomalies) for it")
    customers, flagged, excluded = run[0]
    scores = con.execute("select isolation_score, is_flagged, reasons from ml.customer_anomalies where as_of = ?",
                         [ctx.as_of]).df()
    reasons = Counter()
    for text in scores.loc[scores["is_flagged"], "reasons"].dropna():
        for reason in json.loads(text):
            reasons[reason.get("feature", "?")] += 1
    fig, axes = new_figure(11, 3.2, 1, 2)
    ax = axes[0, 0]
    bins = np.histogram_bin_edges(scores["isolation_score"].dropna(), bins=40)
    ax.hist(scores.loc[~scores["is_flagged"], "isolation_score"].dropna(), bins=bins, color="#9aa5b1", label="not flagged")
    ax.hist(scores.loc[scores["is_flagged"], "isolation_score"].dropna(), bins=bins, color="#b42318", label="flagged")
    ax.set_xlabel("isolation-forest score (higher = more unusual)")
    ax.set_ylabel("customers")
    ax.set_yscale("log")
    ax.legend()
    ax = axes[0, 1]
    top = reasons.most_common(10)
    if top:
        ax.barh([f for f, _ in reversed(top)], [n for _, n in reversed(top)], color="#b42318")
        ax.set_xlabel("flagged customers with this reason")
    else:
        ax.text(0.5, 0.5, "no customer flagged", ha="center", va="center")
        ax.axis("off")
    fig.tight_layout()
    state = "kept out of this week's segments" if excluded else "still segmented (exclusion switched off)"
    head = (f"<p><strong>{int(flagged):,}</strong> of {int(customers):,} customers flagged by both detectors "
            f"({flagged / max(customers, 1):.1%}), {state}. The list: <code>segflow anomalies --list --as-of "
            f"{ctx.as_of:%Y-%m-%d}</code>.</p>")
    listing = table(["feature", "flagged customers"], top, [False, True]) if top else ""
    return head + figure(to_svg(fig, "anomalies"), "Reasons: features with |robust z| beyond the cut-off.") \
        + listing
