"""What the sink sends: a publication's delta (`segflow activate`), the trigger outbox, and dead-letter replays."""

from __future__ import annotations

import json
from datetime import datetime

import pandas as pd

from segflow.activation.sink import Batch, DeliveryReport, HttpSink, batches, deliver
from segflow.activation.store import open_store
from segflow.errors import DeliveryFailed, NotReady
from segflow.publish.exports import manifest_for
from segflow.settings import Settings, get_settings


def _delta_records(delta: pd.DataFrame) -> list[dict]:
    records = []
    for row in delta.astype(object).where(delta.notna(), None).to_dict("records"):
        for key in ("as_of", "previous_as_of"):
            if row[key] is not None:
                row[key] = pd.Timestamp(row[key]).isoformat()
        row["action_params"] = json.loads(row["action_params"]) if row["action_params"] else None
        records.append(row)
    return records


def activate(settings: Settings | None = None, as_of: datetime | None = None) -> dict:
    """Send a publication's delta (default: the latest) to the sink; batches delivered before are skipped.
    Raises DeliveryFailed (after recording everything) when a batch ends in the dead letters."""
    settings = settings or get_settings()
    manifest = manifest_for(settings, as_of)
    if manifest is None:
        week = f" as of {as_of:%Y-%m-%d}" if as_of else ""
        raise NotReady(f"No published segments{week}: run `segflow segment` (publication needs a passing gate "
                       "and an accepted model) first.")
    path = settings.exports_dir / "segments" / manifest["files"]["delta_parquet"]
    delta = pd.read_parquet(path)
    out = {"as_of": manifest["as_of"], "previous_as_of": manifest["previous_as_of"], "delta_file": str(path),
           "records": len(delta)}
    if not settings.sink_url:
        return out | {"sink": "disabled (SEGFLOW_SINK_URL is not set): nothing sent, the exports are written"}
    items = batches("segment_delta", f"segments:{manifest['as_of'][:10]}", _delta_records(delta),
                    settings.sink_batch_size, settings.sink_url)
    with open_store(settings) as con, HttpSink(settings) as sink:
        report = deliver(con, sink, items)
    out |= {"sink": settings.sink_url, **report.as_dict()}
    if report.dead:
        raise DeliveryFailed(f"{report.dead} of {report.batches} batches ({report.records_dead} records) of the "
                             f"delta as of {manifest['as_of'][:10]} could not be delivered to {settings.sink_url} and "
                             "are dead-lettered: see `segflow dead-letter`, replay with `segflow dead-letter "
                             "--replay` once the sink works.")
    return out


def _mark_triggers(con, batch: Batch, delivered: bool) -> None:
    keys = [r["trigger_key"] for r in batch.records]
    con.execute("update trigger_outbox set status = ?, idempotency_key = ?, sent_at = case when ? then "
                "now()::timestamp end where list_contains(?, trigger_key)",
                ["sent" if delivered else "dead", batch.key, delivered, keys])


def send_triggers(con, settings: Settings) -> DeliveryReport | None:
    """Send the outbox's pending triggers (oldest first); None when the sink is disabled."""
    if not settings.sink_url:
        return None
    rows = con.execute(
        "select trigger_key, trigger_type, customer_id, product_id, reference_event_id, event_at, details "
        "from trigger_outbox where status = 'pending' order by event_at, trigger_key").df()
    records = [{**r, "event_at": pd.Timestamp(r["event_at"]).isoformat(),
                "details": json.loads(r["details"]) if r["details"] else None}
               for r in rows.astype(object).where(rows.notna(), None).to_dict("records")]
    items = batches("trigger", "triggers", records, settings.sink_batch_size, settings.sink_url)
    with HttpSink(settings) as sink:
        return deliver(con, sink, items, on_done=lambda b, o: _mark_triggers(con, b, o.delivered))


def dead_letters(settings: Settings | None = None, replay: bool = False) -> dict:
    """The dead letters not yet replayed; with ``replay``, send each again (same idempotency key, to the
    destination it was meant for)."""
    settings = settings or get_settings()
    with open_store(settings) as con:
        rows = con.execute("select idempotency_key, destination, kind, reference, records, payload, attempts, "
                           "http_status, last_error, dead_at from dead_letter where replayed_at is null "
                           "order by dead_at").fetchall()
        listed = [{"idempotency_key": r[0], "destination": r[1], "kind": r[2], "reference": r[3], "records": r[4],
                   "attempts": r[6], "http_status": r[7], "last_error": r[8], "dead_at": r[9].isoformat()}
                  for r in rows]
        out = {"dead_letters": len(rows), "records": sum(r[4] for r in rows), "batches": listed}
        if not replay or not rows:
            return out
        delivered = dead = 0
        for key, destination, kind, reference, _, payload, *_ in rows:
            body = json.loads(payload)
            batch = Batch(kind, reference, body["records"], key)
            with HttpSink(settings.model_copy(update={"sink_url": destination})) as sink:
                report = deliver(con, sink, [batch], on_done=(lambda b, o: _mark_triggers(con, b, o.delivered))
                                 if kind == "trigger" else None)
            delivered += report.delivered + report.skipped
            dead += report.dead
        out |= {"replayed": delivered, "still_dead": dead}
    if dead:
        raise DeliveryFailed(f"{dead} of {len(rows)} dead-lettered batches failed again; they stay in "
                             "activation.dead_letter (`segflow dead-letter`).")
    return out
