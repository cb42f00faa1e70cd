"""What the trigger detector reads: fresh landing files (not the warehouse, which is rebuilt daily) and a
reference copy of identities, consent and bot flags from the warehouse.

**Fresh events** come straight from ``landing/``, with the loader's own rules: only complete files (a
``<name>.ready`` marker, or unchanged for SEGFLOW_LOAD_MIN_FILE_AGE_SECONDS), each folder's mapping, the same
readers. A file is read once (path, size and mtime recorded in ``trigger_files``); the loader still loads it
into the warehouse on its own schedule. Event streams give the events; the consent stream gives withdrawals,
which suppress triggers before the next build knows of them.

**The reference** (``<home>/activation/reference/``: identities.parquet, customers.parquet, reference.json) is
copied from the warehouse when the warehouse file changed, through a read-only connection that waits at most
SEGFLOW_TRIGGER_REFERENCE_TIMEOUT_SECONDS: while a build holds the warehouse, the last copy is used, so a trigger
run never waits minutes behind the daily ELT and never blocks it.
"""

from __future__ import annotations

import csv
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from segflow.ddl import raw_table_ddl
from segflow.errors import NotReady, WarehouseLocked
from segflow.jobs.landing import Delivery, discover
from segflow.jobs.load_write import reader_for, stage_and_write
from segflow.settings import Settings
from segflow.sources import canonical
from segflow.sources.scan import scan

TRIGGER_STREAMS = (*canonical.EVENT_STREAMS, "consent")


def order_line_types(settings: Settings) -> set[str]:
    """Event types that are purchases (the dbt seed's is_order_line): a cart followed by one is not abandoned."""
    with open(settings.dbt_project_dir / "seeds" / "event_types.csv", newline="") as fh:
        return {row["event_type"] for row in csv.DictReader(fh) if row["is_order_line"] == "true"}


# --- the reference copy ------------------------------------------------------------------------------------------

@dataclass
class Reference:
    folder: Path
    source: str  # refreshed | cached

    @property
    def identities(self) -> Path:
        return self.folder / "identities.parquet"

    @property
    def customers(self) -> Path:
        return self.folder / "customers.parquet"


def _stamp(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _copy_reference(settings: Settings, folder: Path) -> None:
    from segflow.warehouse import connect, table_exists

    with connect(settings, read_only=True, timeout=settings.trigger_reference_timeout_seconds) as con:
        if not (table_exists(con, "marts", "dim_customers") and table_exists(con, "intermediate",
                                                                              "int_identity_graph")):
            raise NotReady("The warehouse has no customers yet (marts.dim_customers): run `segflow build` before "
                           "`segflow triggers` (consent and identities come from it).")
        flagged = ("select customer_id from ml.customer_anomalies where is_flagged and as_of = "
                   "(select max(as_of) from ml.customer_anomalies)"
                   if table_exists(con, "ml", "customer_anomalies") else "select null::varchar as customer_id")
        customers = con.execute(
            "select c.customer_id, coalesce(c.has_marketing_consent, false) as has_marketing_consent, "
            "coalesce(c.has_analytics_consent, false) as has_analytics_consent, "
            f"c.customer_id in ({flagged}) as is_flagged from marts.dim_customers c").df()
        identities = con.execute(
            "select identifier, identifier_kind, customer_id from intermediate.int_identity_graph "
            "where identifier_kind in ('user_id', 'anonymous_id')").df()
    for frame, name in ((customers, "customers.parquet"), (identities, "identities.parquet")):
        tmp = folder / f".{name}.tmp"
        frame.to_parquet(tmp, index=False)
        tmp.replace(folder / name)


def reference(settings: Settings) -> Reference:
    """The reference copy, refreshed when the warehouse changed and can be read within the timeout."""
    folder = settings.home / "activation" / "reference"
    folder.mkdir(parents=True, exist_ok=True)
    info_path = folder / "reference.json"
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    have = (folder / "customers.parquet").is_file() and (folder / "identities.parquet").is_file()
    if not settings.warehouse_path.exists():
        if have:
            return Reference(folder, "cached")
        raise NotReady(f"No warehouse at {settings.warehouse_path} yet: run `segflow load` and `segflow build` first.")
    stamp = _stamp(settings.warehouse_path)
    if have and info.get("warehouse") == stamp:
        return Reference(folder, "cached")
    try:
        _copy_reference(settings, folder)
    except WarehouseLocked:
        if have:
            return Reference(folder, "cached (warehouse busy)")
        raise
    info_path.write_text(json.dumps({"warehouse": stamp, "copied_at": datetime.now(UTC).isoformat()}))
    return Reference(folder, "refreshed")


# --- fresh landing files -----------------------------------------------------------------------------------------

def new_deliveries(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[tuple[Delivery, os.stat_result]]:
    """Complete landing files of the event and consent streams the detector has not read (oldest first)."""
    if not settings.landing_dir.is_dir():
        return []
    found, _ = discover(settings.landing_dir, min_age_seconds=settings.load_min_file_age_seconds)
    seen = set(con.execute("select file_path, size_bytes, mtime_ns from trigger_files").fetchall())
    out = []
    for delivery in found:
        if delivery.mapping.stream not in TRIGGER_STREAMS:
            continue
        stat = delivery.path.stat()
        if (str(delivery.path), stat.st_size, stat.st_mtime_ns) not in seen:
            out.append((delivery, stat))
    return sorted(out, key=lambda item: item[1].st_mtime_ns)


def read_delivery(settings: Settings, delivery: Delivery) -> pd.DataFrame:
    """The file's rows in canonical columns (text), through the loader's readers and the folder's mapping."""
    stream = delivery.mapping.stream
    reader = reader_for(delivery.mapping, delivery.path)
    if reader is None:
        return pd.DataFrame(columns=list(canonical.columns(stream)))
    con = duckdb.connect()
    found = None
    try:
        for name in canonical.STREAMS:
            con.execute("create schema if not exists raw")
            con.execute(raw_table_ddl(name))
        found = scan(delivery.path, reader, delivery.mapping.csv, settings.home / "tmp" / "triggers")
        stage_and_write(con, delivery, found.readable, "triggers", settings.load_max_record_bytes)
        return con.execute(f"select * exclude (_load_id, _source_file, _source_row) from raw.{stream}").df()
    finally:
        con.close()
        if found is not None and found.temporary:
            found.readable.unlink(missing_ok=True)


def landed_at(stat: os.stat_result) -> datetime:
    return datetime.fromtimestamp(stat.st_mtime_ns / 1e9, UTC).replace(tzinfo=None)


def wall_clock() -> float:
    return time.time()
