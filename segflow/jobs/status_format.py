"""How ``segflow status`` prints the summary that :mod:`segflow.jobs.status` reads."""

from __future__ import annotations


def format_summary(data: dict) -> str:
    lines = ["", "segflow summary", "==============="]
    if data.get("source") == "snapshot":
        lines.append(f"state as of        {data['published_at']} (published by `{data['published_by']}`): the "
                     f"warehouse is in use now, {data['busy']}")
    load = data.get("load")
    if load:
        lines.append(f"rows delivered     {load['rows_in_files']:>10,}  in {load['files']} files")
        lines.append(f"  loaded to raw    {load['rows_loaded']:>10,}")
        lines.append(f"  rejected at load {load['rows_rejected_at_load']:>10,}  (unparseable lines, kept in "
                     "meta.load_rejects)")
        if load.get("unbalanced_files"):
            lines.append(f"  load accounting  {len(load['unbalanced_files'])} files do NOT balance:")
            lines += [f"    {u}" for u in load["unbalanced_files"]]
        else:
            lines.append("  load accounting  balanced: in every file, records counted = loaded + rejected")
        lines += [f"  damaged          {d}" for d in load.get("damaged_files", [])]
    landing = data.get("landing")
    if landing:
        lines.append("landing entries    " + ", ".join(f"{n} {status}" for status, n in landing.items())
                     + " (meta.landing_entries)")
        lines += [f"  {p}" for p in data.get("landing_problems", [])[:20]]
    staging = data.get("staging")
    if staging:
        lines.append(f"  staged           {staging['rows_staged']:>10,}")
        lines.append(f"  quarantined      {staging['rows_quarantined']:>10,}  "
                     + ", ".join(f"{k} {v}" for k, v in staging["quarantine_reasons"].items()))
        lines.append(f"  duplicates       {staging.get('rows_duplicate', 0):>10,}  (exact re-deliveries, dropped)")
        if "rows_conflicting" in staging:
            lines.append(f"  conflicts        {staging['rows_conflicting']:>10,}  (an event id re-delivered with other "
                         "content: quarantined, the first delivery kept)")
        lines.append("  accounting       " + ("balanced: every row staged, quarantined or a counted duplicate"
                                            if staging["unbalanced_files"] == 0
                                            else f"{staging['unbalanced_files']} files do NOT balance"))
    build = data.get("last_build")
    if build:
        how = build["reason"] if build["mode"] == "incremental" else f"full rebuild: {build['reason']}"
        lines.append(f"last build         #{build['build']} {build['status']}, {how}")
    marts = data.get("marts")
    if marts:
        lines.append(f"as of              {marts['as_of']}")
        lines.append(f"events (deduped)   {marts['events']:>10,}")
        lines.append(f"sessions           {marts['sessions']:>10,}")
        lines.append(f"orders             {marts['orders']:>10,}")
        lines.append(f"customers          {marts['customers']:>10,}  ({marts['customers_with_features']:,} with "
                     "analytics consent, segmented)")
    issues = data.get("identity_issues")
    if issues:
        lines.append("identity           " + ", ".join(f"{v} {k.replace('_', ' ')}s" for k, v in issues.items())
                     + " (see intermediate.int_identity_issues)")
    dq = data.get("data_quality")
    if dq and "suites" in dq:
        lines.append(f"data quality       {dq['verdict'].upper()}  (" + ", ".join(
            f"{name}: {'pass' if s['success'] else 'FAIL ' + str(s['failures'])}" for name, s in dq["suites"].items())
            + ")")
    if dq and dq.get("history"):
        lines.extend(_dq_history_lines(dq["history"]))
    runs = data.get("segment_runs")
    if runs:
        latest = runs[-1]
        lines.append(f"segment runs       {len(runs)}  (latest {latest['run_id']}: k={latest['k']}, "
                     f"silhouette {latest['silhouette']:.3f}, {latest['status']})")
    segments = data.get("segments")
    if segments:
        lines.append("segments")
        for s in segments:
            new = "  new" if s["is_new"] else ""
            lines.append(f"  {s['segment_id']}  {s['name']:<36} {s['size']:>6,}  {s['share']:>6.1%}{new}")
    drift = data.get("drift")
    if drift:
        psi = f", max PSI {drift['max_psi']:.3f}" if drift["max_psi"] is not None else ""
        feats = f", drifted: {', '.join(drift['drifted_features'])}" if drift["drifted_features"] else ""
        reference = f"vs {drift['reference_as_of']}" if drift["reference_as_of"] else "no earlier week to compare"
        lines.append(f"drift              {drift['verdict'].upper()}  ({reference}{psi}{feats})")
    pub = data.get("published")
    if pub:
        lines.append(f"published          {pub['rows']:,} customers as of {pub['as_of']} -> {pub['path']}")
    runs_log = data.get("recent_runs")
    if runs_log:
        lines.append("recent runs        (meta.run_log, newest first)")
        for r in runs_log:
            as_of = f" as of {r['as_of']}" if r["as_of"] else ""
            error = f": {r['error'][:100]}" if r["error"] else ""
            lines.append(f"  {r['started_at'][:19]}  {r['step']:<20} {r['status']:<11} {r['seconds']:>7.1f} s"
                         f"{as_of}  by {r['by']}{error}")
    links = data.get("links")
    if links:
        lines.append("links")
        lines += [f"  {name.replace('_', ' '):<16} {where}" for name, where in links.items()]
    ev = data.get("evaluation")
    if ev:
        lines.append(f"vs true personas   adjusted Rand index {ev['adjusted_rand_index']:.3f} "
                     f"({ev['customers_compared']:,} customers; demo ground truth)")
    return "\n".join(lines)


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.2f} %"


def _dq_history_lines(h: dict) -> list[str]:
    """The last gate run's line of meta.dq_history, and where its Data Docs are."""
    reasons = ", ".join(f"{r} {_pct(v)}" for r, v in (h.get("quarantine_by_reason") or {}).items())
    missing = "n/a" if h.get("missing_pct") is None else f"{h['missing_pct']:.2f} %"
    fresh = h.get("hours_since_last_event")
    lines = [
        f"  last gate run    {h['as_of']}: {h['checks_passed']}/{h['checks_evaluated']} checks passed"
        + (f", {h['checks_failed']} FAILED" if h["checks_failed"] else "")
        + (f"; newest event {fresh:.1f} h before the as-of" if fresh is not None else ""),
        f"  since last run   {h['files_loaded']} files, {h['rows_delivered']:,} rows: rejected {_pct(h['reject_rate'])}, "
        f"duplicates {_pct(h['duplicate_rate'])}, quarantined {_pct(h['quarantine_rate'])}"
        + (f" ({reasons})" if reasons else ""),
        f"  as of the run    missing {missing}, outliers {_pct(h['outlier_rate'])} of {h['customers']:,} customers",
    ]
    if h.get("data_docs"):
        lines.append(f"  Data Docs        {h['data_docs']}")
    return lines
