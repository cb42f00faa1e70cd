"""Consent revocation reaches the past: earlier feature snapshots, segment assignments and exports.

dbt decides consent per build (``intermediate.int_customer_consent``; a revocation recorded after the as-of
counts too), so every mart built after the revocation leaves the customer out. What earlier runs wrote outside
dbt stays until it is redacted here: after every successful build, customers without analytics consent are
removed from every week's ``ml.feature_snapshots``, ``ml.segment_assignments``, ``ml.rule_segment_members``,
``ml.customer_clv`` and ``ml.customer_anomalies`` and from every export file (rows dropped, see
:func:`segflow.erasure.redact_files`). An id an earlier run used that the identity graph
has since merged into another customer follows that customer's consent.

Files go first, then the tables in one transaction: an interrupted redaction finds the same customers in the
tables next time and finishes. Each redaction is logged in ``meta.erasure_log`` (action
``consent_redaction``, who, when, rows per table and file, how many customers) without the customer ids.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field

from segflow.ddl import ensure_schema
from segflow.erasure import redact_files, utc_now, who
from segflow.settings import Settings, get_settings
from segflow.warehouse import connect, table_exists

ML_TABLES = ("feature_snapshots", "segment_assignments", "rule_segment_members", "customer_clv", "customer_anomalies")


@dataclass
class ConsentRedaction:
    redaction_id: str | None
    customers: int
    tables: dict[str, int] = field(default_factory=dict)
    files: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def _revoked_in_ml(con) -> set[str]:
    """Ids in the ML tables whose customer (directly, or through the identity graph) has no analytics consent."""
    present = [t for t in ML_TABLES if table_exists(con, "ml", t)]
    if not present or not table_exists(con, "intermediate", "int_customer_consent"):
        return set()
    used = " union ".join(f"select distinct customer_id from ml.{t}" for t in present)
    graph = table_exists(con, "intermediate", "int_identity_graph")
    current = ("coalesce(graph.customer_id, used.customer_id)" if graph else "used.customer_id")
    join = ("left join intermediate.int_identity_graph as graph on graph.identifier_kind = 'user_id' "
            "and graph.identifier = used.customer_id" if graph else "")
    return {c for (c,) in con.execute(f"""
        select used.customer_id
        from ({used}) as used
        {join}
        inner join intermediate.int_customer_consent as consent
            on consent.customer_id = {current}
        where not consent.has_analytics_consent""").fetchall()}


def redact_revoked(settings: Settings | None = None, requested_by: str | None = None) -> ConsentRedaction:
    """Remove customers without analytics consent from earlier ML runs and exports (a no-op when none is there)."""
    settings = settings or get_settings()
    with connect(settings) as con:
        revoked = _revoked_in_ml(con)
        if not revoked:
            return ConsentRedaction(None, 0)
        ensure_schema(con)
        result = ConsentRedaction(f"cr-{uuid.uuid4().hex[:16]}", len(revoked))
        result.files = [c.as_dict() for c in redact_files(settings.exports_dir, revoked, rows=True)]
        started = utc_now()
        con.execute("create or replace temp table _revoked (v varchar)")
        con.executemany("insert into _revoked values (?)", [(c,) for c in sorted(revoked)])
        con.execute("begin transaction")
        try:
            for table in ML_TABLES:
                if table_exists(con, "ml", table):
                    count = con.execute(f"select count(*) from ml.{table} where customer_id in (select v from "
                                        "_revoked)").fetchall()[0][0]
                    con.execute(f"delete from ml.{table} where customer_id in (select v from _revoked)")
                    result.tables[f"ml.{table}"] = count
            now = utc_now()
            con.executemany("insert into meta.erasure_log_detail values (?, ?, ?, ?)", [
                *((result.redaction_id, "table", t, n) for t, n in result.tables.items()),
                *((result.redaction_id, "file", f["path"], f["count"]) for f in result.files)])
            con.execute(
                "insert into meta.erasure_log values (?, 'consent_redaction', ?, null, ?, null, ?, ?, ?, 'done', "
                "'customers without analytics consent removed from earlier runs and exports', ?, ?)",
                [result.redaction_id, requested_by or f"{who()} (segflow build)", len(revoked),
                 len(revoked), sum(result.tables.values()), len(result.files), started, now])
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    return result
