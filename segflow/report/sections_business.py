"""Report sections about value and behaviour: CLV distribution (ml.customer_clv), funnel and top journey paths
(marts.agg_funnel_daily, marts.journey_top_paths)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from segflow.report.context import ReportContext
from segflow.report.html import Unavailable, esc, figure, table
from segflow.report.plots import new_figure, to_svg
from segflow.warehouse import table_exists

FUNNEL_DAYS = 7  # the report's funnel covers the week that ends at as_of (the segments' week)


def clv(ctx: ReportContext) -> str:
    con = ctx.con
    if not table_exists(con, "ml", "clv_models"):
        raise Unavailable("CLV has not been fitted yet (ml.clv_models): run `segflow clv`")
    model = con.execute("select status, reason, customer_count, repeat_customer_count, r, alpha, a, b, p, q, gamma, "
                        "horizon_weeks, annual_discount_rate, margin from ml.clv_models where as_of = ?",
                        [ctx.as_of]).df()
    if model.empty:
        raise Unavailable("CLV was not fitted for this week: run `segflow clv --as-of` for it")
    m = model.iloc[0]
    if m["status"] != "fitted":
        raise Unavailable(f"the week's CLV fit is {m['status']}: {m['reason'] or 'no reason recorded'}")
    frame = con.execute("select c.predictive_clv, c.historic_clv, c.probability_alive, a.segment_id "
                        "from ml.customer_clv c left join ml.segment_assignments a on a.customer_id = c.customer_id "
                        "and a.as_of = c.as_of where c.as_of = ?", [ctx.as_of]).df()
    if frame.empty:
        raise Unavailable("the CLV fit stored no customer rows")
    fig, axes = new_figure(12, 3.4, 1, 3)
    ax = axes[0, 0]
    values = frame["predictive_clv"].dropna()
    ax.hist(np.log10(1 + values.clip(lower=0)), bins=40, color="#1d3557")
    ax.set_xlabel("predictive CLV, log10(1 + CLV)")
    ax.set_ylabel("customers")
    ax.set_title(f"predictive CLV ({int(m['horizon_weeks'])} weeks)")
    ax = axes[0, 1]
    ax.hist(frame["probability_alive"].dropna(), bins=30, range=(0, 1), color="#2a9d8f")
    ax.set_xlabel("probability alive")
    ax.set_title("probability alive (BG/NBD)")
    ax = axes[0, 2]
    segs = sorted(frame["segment_id"].dropna().unique())
    data = [frame.loc[frame["segment_id"] == s, "predictive_clv"].dropna().clip(lower=0).to_numpy() for s in segs]
    if segs:
        box = ax.boxplot([np.log10(1 + d) for d in data], showfliers=False, patch_artist=True)
        for patch, sid in zip(box["boxes"], segs, strict=False):
            patch.set_facecolor(ctx.colors.get(sid, "#9aa5b1"))
        ax.set_xticks(range(1, len(segs) + 1), segs, rotation=45)
        ax.set_ylabel("log10(1 + predictive CLV)")
        ax.set_title("by segment")
    else:
        ax.axis("off")
    fig.tight_layout()
    rows = [(ctx.name_of(s), len(d), float(np.mean(d)) if len(d) else None, float(np.median(d)) if len(d) else None,
             float(frame.loc[frame["segment_id"] == s, "historic_clv"].mean()))
            for s, d in zip(segs, data, strict=False)]
    rows.append(("all customers", len(values), float(values.mean()), float(values.median()),
                 float(frame["historic_clv"].mean())))
    params = (f"BG/NBD r={m['r']:.3g}, α={m['alpha']:.3g}, a={m['a']:.3g}, b={m['b']:.3g}; Gamma–Gamma p={m['p']:.3g}, "
              f"q={m['q']:.3g}, γ={m['gamma']:.3g}; {int(m['repeat_customer_count']):,} repeat customers of "
              f"{int(m['customer_count']):,}; discount {m['annual_discount_rate']:.0%}/year, margin {m['margin']:.0%}.")
    return (f"<p>{esc(params)}</p>" + figure(to_svg(fig, "clv"), "Log scale: CLV is heavy-tailed.")
            + table(["segment", "customers", "mean predictive CLV", "median predictive CLV", "mean historic CLV"],
                    rows, [False, True, True, True, True]))


def funnel(ctx: ReportContext) -> str:
    con = ctx.con
    if not table_exists(con, "marts", "agg_funnel_daily"):
        raise Unavailable("marts.agg_funnel_daily does not exist: run `segflow build`")
    start = (ctx.as_of - timedelta(days=FUNNEL_DAYS)).date()
    steps = con.execute(
        "select funnel, step_number, step_name, sum(sessions_reached) as sessions from marts.agg_funnel_daily "
        "where session_started_date >= ? and session_started_date < ? group by all order by funnel, step_number",
        [start, ctx.as_of.date()]).df()
    if steps.empty:
        raise Unavailable(f"no session entered a funnel between {start} and {ctx.as_of:%Y-%m-%d} "
                          "(or the marts are not built up to this week)")
    funnels = list(dict.fromkeys(steps["funnel"]))
    fig, axes = new_figure(11, 1.0 + 0.42 * int(steps.groupby("funnel").size().max()) * len(funnels),
                           len(funnels), 1)
    rows = []
    for ax, name in zip(axes[:, 0], funnels, strict=False):
        part = steps[steps["funnel"] == name].sort_values("step_number")
        first = float(part["sessions"].iloc[0]) or 1.0
        labels = [f"{int(s.step_number)}. {s.step_name}" for s in part.itertuples()]
        ax.barh(labels[::-1], part["sessions"].to_numpy()[::-1], color="#457b9d")
        for y, s in enumerate(list(part.itertuples())[::-1]):
            ax.text(s.sessions, y, f" {int(s.sessions):,} ({s.sessions / first:.0%})", va="center", fontsize=8)
        ax.set_title(f"funnel: {name}")
        ax.set_xlabel("sessions reaching the step in order")
        ax.set_xlim(0, first * 1.25)
        prev = None
        for s in part.itertuples():
            rows.append((name, f"{int(s.step_number)}. {s.step_name}", int(s.sessions), f"{s.sessions / first:.1%}",
                         f"{s.sessions / prev:.1%}" if prev else "–"))
            prev = float(s.sessions) or None
    fig.tight_layout()
    return figure(to_svg(fig, "funnel"), f"Sessions started {start} – {ctx.as_of.date() - timedelta(days=1)} "
                  "(the segments' week).") + table(["funnel", "step", "sessions", "of step 1", "of previous step"],
                                                   rows, [False, False, True, True, True])


def top_paths(ctx: ReportContext) -> str:
    con = ctx.con
    if not table_exists(con, "marts", "journey_top_paths"):
        raise Unavailable("marts.journey_top_paths does not exist: run `segflow build`")
    n = ctx.settings.report_top_paths
    paths = con.execute("select path, sessions, converted_sessions, conversion_rate from marts.journey_top_paths "
                        "order by path_rank limit ?", [n]).df()
    if paths.empty:
        raise Unavailable("marts.journey_top_paths is empty (no session paths built)")
    total = con.execute("select sum(sessions) from marts.journey_top_paths").fetchall()[0][0] or 1
    fig, axes = new_figure(11, 0.36 * len(paths) + 1.2)
    ax = axes[0, 0]
    labels = [p if len(p) <= 70 else p[:67] + "…" for p in paths["path"]]
    ax.barh(labels[::-1], paths["sessions"].to_numpy()[::-1], color="#6d597a")
    ax.set_xlabel("sessions")
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    last = (con.execute("select as_of from meta.build_state where status = 'success' order by build_seq desc "
                        "limit 1").fetchall() if table_exists(con, "meta", "build_state") else [])
    built = last[0][0] if last else None
    scope = (f"all sessions up to the latest build ({built:%Y-%m-%d})" if built is not None
             else "all sessions of the latest build")
    rows = [(rank, p.path, int(p.sessions), f"{p.sessions / total:.1%}", int(p.converted_sessions),
             f"{p.conversion_rate:.1%}") for rank, p in enumerate(paths.itertuples(), start=1)]
    return figure(to_svg(fig, "top-paths"), f"Top {len(paths)} session paths over {scope}.") + table(
        ["rank", "path", "sessions", "share", "converted", "conversion"], rows,
        [True, False, True, True, True, True])
