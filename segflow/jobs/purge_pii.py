"""Raw PII retention: empty the raw layer's personal-data columns once their file is older than the setting.

``segflow purge-pii`` and the daily DAG's ``purge_raw_pii`` task set every PII column of ``raw.*``
(:data:`segflow.sources.canonical.PII_COLUMNS`, i.e. ``email``) to NULL on the rows of files loaded more than
``SEGFLOW_PII_RETENTION_DAYS`` before the run's as-of (``meta.load_manifest.loaded_at``), and record each
table and column in ``meta.pii_purges``. Lines of those files rejected at load (``meta.load_rejects``) are
masked too (they are redacted when stored; this catches lines stored by older versions).

**Pseudonyms survive a purge.** Staging derives the customer key ``email:<pseudonym>`` from the raw address,
and not only incrementally: ``stg_raw__customers`` and ``base_raw__identities`` are rebuilt from raw on every
build and every table is rebuilt on a full refresh (a setting changed, a load replaced, ``--full-refresh``).
Nulling the address alone would turn those customers into new ones (or quarantine their events as
``missing_identity``). So the purge first stores each address's pseudonym in ``raw.<stream>._email_pseudonym``,
computed by the same SQL as staging (:data:`segflow.privacy.PSEUDONYM_SQL`) under the same key, and staging
takes it where the address is gone: every later build, full or incremental, gives the same pseudonyms.

The price: those rows can no longer be re-keyed. A build (or purge) under a different PII key than the one
recorded in ``meta.pii_purges`` is refused (:func:`check_key_matches_purges`): choose the key once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

import duckdb

from segflow.ddl import ensure_schema
from segflow.errors import InputError
from segflow.privacy import PSEUDONYM_SQL, PiiKey, PiiKeyError, install_pseudonymizer, resolve_pii_key
from segflow.redaction import EMAIL_PATTERN_SQL, REDACTED
from segflow.settings import Settings, get_settings
from segflow.sources import canonical
from segflow.warehouse import connect
from segflow.warehouse_lock import warehouse_step


@dataclass
class PurgeReport:
    retention_days: int
    loaded_before: datetime | None
    key_id: str | None = None
    rows: dict[str, int] = field(default_factory=dict)  # "raw.events.email" -> rows emptied
    skipped: str | None = None

    def as_dict(self) -> dict:
        out = asdict(self)
        out["loaded_before"] = self.loaded_before.isoformat(sep=" ") if self.loaded_before else None
        return out


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def check_key_matches_purges(con: duckdb.DuckDBPyConnection, key: PiiKey) -> None:
    """Refuse a key other than the one earlier purges kept pseudonyms with (they could not be recomputed)."""
    pseudonymized = list(canonical.PSEUDONYMIZED_COLUMNS)
    placeholders = ", ".join("?" for _ in pseudonymized)
    others = con.execute(
        f"select key_id, sum(rows_purged) from meta.pii_purges where rows_purged > 0 and column_name in "
        f"({placeholders}) and key_id <> ? group by key_id order by 2 desc", [*pseudonymized, key.key_id]).fetchall()
    if others:
        key_id, rows = others[0]
        raise PiiKeyError(
            f"the PII key ({key.source}, key id {key.key_id}) is not the key whose pseudonyms `segflow purge-pii` "
            f"kept for {rows} raw rows whose e-mail is gone (key id {key_id}): with it those customers would get "
            "new ids. Set the earlier key again (see meta.pii_purges and docs/privacy.md)")


@warehouse_step("purge-pii")
def purge_pii(settings: Settings | None = None, as_of: datetime | None = None,
              retention_days: int | None = None) -> PurgeReport:
    """Empty raw PII of files loaded before ``as_of`` (default: now, UTC) minus the retention period."""
    settings = settings or get_settings()
    days = settings.pii_retention_days if retention_days is None else retention_days
    if days < 0:
        raise InputError(f"retention of {days} days: give 0 (keep raw PII) or a number of days")
    if days == 0:
        return PurgeReport(0, None, skipped="SEGFLOW_PII_RETENTION_DAYS is 0: raw PII is kept")
    if not settings.warehouse_path.exists():
        return PurgeReport(days, None, skipped=f"no warehouse at {settings.warehouse_path} yet")
    key = resolve_pii_key(settings)
    cutoff = (as_of or _utc_now()) - timedelta(days=days)
    report = PurgeReport(days, cutoff, key.key_id)
    with connect(settings) as con:
        ensure_schema(con)
        check_key_matches_purges(con, key)
        install_pseudonymizer(con, key.secret)
        old_loads = "select load_id from meta.load_manifest where loaded_at < ?"
        purged_at = _utc_now()
        con.execute("begin transaction")
        try:
            for stream in canonical.STREAMS:
                for column in sorted(canonical.PII_COLUMNS & set(canonical.columns(stream))):
                    keep = ""
                    if column in canonical.PSEUDONYMIZED_COLUMNS:
                        kept = f"_{column}_pseudonym"
                        keep = f'"{kept}" = coalesce("{kept}", {PSEUDONYM_SQL.format(column=column)}), '
                    rows = con.execute(
                        f'update raw.{stream} set {keep}"{column}" = null '
                        f'where "{column}" is not null and _load_id in ({old_loads})', [cutoff]).fetchall()[0][0]
                    report.rows[f"raw.{stream}.{column}"] = rows
            rows = con.execute(
                f"update meta.load_rejects set raw_line = regexp_replace(raw_line, '{EMAIL_PATTERN_SQL}', "
                f"'{REDACTED}', 'g') where regexp_matches(raw_line, '{EMAIL_PATTERN_SQL}') "
                f"and load_id in ({old_loads})", [cutoff]).fetchall()[0][0]
            report.rows["meta.load_rejects.raw_line"] = rows
            con.executemany(
                "insert into meta.pii_purges values (?, ?, ?, ?, ?, ?, ?)",
                [(purged_at, name.rsplit(".", 1)[0], name.rsplit(".", 1)[1], count, cutoff, days, key.key_id)
                 for name, count in report.rows.items()])
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    return report
