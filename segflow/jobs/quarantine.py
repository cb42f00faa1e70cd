"""Inspect what was kept out, and load it again after a fix: ``segflow quarantine list | show | replay``.

Two places hold records that did not make it: ``meta.load_rejects`` (a line the loader could not read into
fields, by reason code) and the staging quarantine tables (a row that was read but broke a rule, by reason).

**Replay** reloads the files those records came from, with their source's *current* mapping, replacing the
earlier load of each file in one transaction (its raw rows, rejects and manifest row go, the new ones come), so
nothing is loaded twice. What it fixes:

* a mapping fix (a value map that missed an event name, a wrong column, a delimiter): the reload applies it;
* a rule fix (a new event type in the seed, a setting such as the lateness window): nothing to reload — the
  next ``segflow build`` is a full rebuild because the rules changed, and re-stages every row under the new
  rules. Replay says so.

After a replay the next build is a full rebuild too (a load it used was replaced), so staging, the quarantine
and the marts reflect the reloaded files. A file that is gone or changed since it was loaded cannot be replayed
(its content would not be the delivery that was quarantined); deliver it again instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from segflow.errors import InputError, NotReady
from segflow.settings import Settings, get_settings
from segflow.warehouse import connect, table_exists
from segflow.warehouse_lock import warehouse_step

# the staging quarantine tables and the stream each holds
QUARANTINE_TABLES = {
    "events": "staging.stg_raw__events_quarantine",
    "customers": "staging.stg_raw__customers_quarantine",
    "identities": "staging.stg_raw__identities_quarantine",
    "consent": "staging.stg_raw__consent_quarantine",
}


def _tables(con) -> dict[str, str]:
    return {stream: table for stream, table in QUARANTINE_TABLES.items() if table_exists(con, *table.split("."))}


def summary(settings: Settings | None = None) -> list[dict]:
    """One row per place and reason: where (load / the staging table), reason, rows, files."""
    settings = settings or get_settings()
    out: list[dict] = []
    with connect(settings, read_only=True) as con:
        if table_exists(con, "meta", "load_rejects"):
            for reason, rows, files in con.execute(
                    "select coalesce(reason_code, 'unparseable'), count(*), count(distinct load_id) "
                    "from meta.load_rejects group by 1 order by 2 desc, 1").fetchall():
                out.append({"where": "rejected at load", "reason": reason, "rows": rows, "files": files})
        for stream, table in _tables(con).items():
            for reason, rows, files in con.execute(
                    f"select quarantine_reason, count(*), count(distinct _load_id) from {table} "
                    "group by 1 order by 2 desc, 1").fetchall():
                out.append({"where": f"quarantined ({stream})", "reason": reason, "rows": rows, "files": files})
    return out


def show(reason: str, limit: int = 20, settings: Settings | None = None) -> list[dict]:
    """The records kept out for ``reason`` (a load reason code or a staging quarantine reason)."""
    settings = settings or get_settings()
    with connect(settings, read_only=True) as con:
        rows = con.execute(
            "select 'rejected at load' as place, file_name, line_number, reason, raw_line from meta.load_rejects "
            "where coalesce(reason_code, 'unparseable') = ? order by load_id, line_number limit ?",
            [reason, limit]).df().to_dict("records") if table_exists(con, "meta", "load_rejects") else []
        for stream, table in _tables(con).items():
            if len(rows) >= limit:
                break
            found = con.execute(f"select * from {table} where quarantine_reason = ? "
                                "order by _load_id, _source_row limit ?", [reason, limit - len(rows)]).df()
            rows += [{"place": f"quarantined ({stream})", **r} for r in found.to_dict("records")]
    if not rows:
        known = ", ".join(sorted({r["reason"] for r in summary(settings)})) or "none"
        raise InputError(f"nothing is kept out for reason {reason!r} (reasons with records: {known})")
    return rows


@dataclass
class ReplayResult:
    reason: str | None
    files: list[dict] = field(default_factory=list)
    note: str = ""

    def as_dict(self) -> dict:
        return {"reason": self.reason, "files": self.files, "note": self.note}


def _loads_with(con, reason: str | None, source: str | None) -> list[str]:
    parts, params = [], []
    reason_sql = "" if reason is None else " where {col} = ?"
    if table_exists(con, "meta", "load_rejects"):
        parts.append("select load_id from meta.load_rejects" + reason_sql.format(col="coalesce(reason_code, 'unparseable')"))
        params += [reason] if reason else []
    for table in _tables(con).values():
        parts.append(f"select _load_id from {table}" + reason_sql.format(col="quarantine_reason"))
        params += [reason] if reason else []
    if not parts:
        raise NotReady("Nothing has been loaded yet: run `segflow load` first.")
    sql = (f"select distinct m.load_id from meta.load_manifest as m where m.load_id in ({' union '.join(parts)})"
           + (" and m.source = ?" if source else "") + " order by 1")
    return [r[0] for r in con.execute(sql, params + ([source] if source else [])).fetchall()]


@warehouse_step("quarantine replay")
def replay(reason: str | None = None, source: str | None = None, mapping_file: Path | None = None,
           dry_run: bool = False, settings: Settings | None = None) -> ReplayResult:
    """Reload the files that hold records kept out (for ``reason`` / ``source``) with the current mapping."""
    from segflow.jobs.landing import Delivery, canonical_mapping, folder_mapping
    from segflow.jobs.load import file_checksum, load_file
    from segflow.sources.mapping import load_mapping

    settings = settings or get_settings()
    result = ReplayResult(reason)
    with connect(settings, read_only=dry_run) as con:
        loads = _loads_with(con, reason, source)
        manifest = {r[0]: r[1:] for r in con.execute(
            "select load_id, source, stream, file_path, checksum, mapping_name from meta.load_manifest").fetchall()}
        for load_id in loads:
            src, stream, file_path, checksum, mapping_name = manifest[load_id]
            path = Path(file_path)
            entry = {"load_id": load_id, "file": file_path}
            if not path.is_file() or file_checksum(path) != checksum:
                result.files.append({**entry, "status": "not replayed",
                                     "reason": "the file is gone or changed since it was loaded: deliver it again"})
                continue
            if mapping_file:
                mapping = load_mapping(mapping_file)
            elif path.parent.parent == settings.landing_dir.resolve() or path.parent.parent == settings.landing_dir:
                mapping = folder_mapping(path.parent) or canonical_mapping(stream)
            elif mapping_name is None:
                mapping = canonical_mapping(stream)
            else:
                result.files.append({**entry, "status": "not replayed", "reason": (
                    f"loaded from outside landing/ with mapping {mapping_name!r}: give the fixed mapping with "
                    "--mapping")})
                continue
            if dry_run:
                result.files.append({**entry, "status": "would reload", "mapping": mapping.name})
                continue
            loaded = load_file(con, Delivery(src, path, mapping), replace=True, settings=settings)
            result.files.append({**entry, "status": loaded.status, "mapping": mapping.name,
                                 "rows_in_file": loaded.rows_in_file, "rows_loaded": loaded.rows_loaded,
                                 "rows_rejected": loaded.rows_rejected, "reason": loaded.reason})
    if not loads:
        result.note = "no file holds records kept out" + (f" for {reason!r}" if reason else "")
    elif dry_run:
        result.note = "dry run: nothing reloaded"
    else:
        result.note = ("reloaded with the current mapping (earlier loads of these files replaced, nothing doubled). "
                       "Run `segflow build`: it rebuilds in full and re-stages them. A rule fix (seed, setting) "
                       "needs no replay: the next build re-stages every row under the new rules.")
    return result
