"""The reverse-ETL HTTP sink: records go to a CRM / CDP as JSON batches, each exactly once.

- **Batches** of ``SEGFLOW_SINK_BATCH_SIZE`` records, POSTed as ``{"kind", "reference", "idempotency_key",
  "records"}``.
- **Idempotency key**: SHA-256 of the destination, the kind and the batch's records (canonical JSON), sent as the
  ``Idempotency-Key`` header. The same batch always gets the same key, so a receiver that deduplicates on it
  applies a retried request once, even when the first attempt reached it and only its answer was lost.
- **Retries** on 5xx, 408, 425, 429 and connection errors, with exponential backoff and full jitter
  (``SEGFLOW_SINK_BACKOFF_SECONDS`` x 2^n, at most ``SEGFLOW_SINK_BACKOFF_MAX_SECONDS``); a ``Retry-After``
  answer (seconds or an HTTP date) sets the wait instead. Other 4xx answers are permanent.
- **Dead letter**: a batch still failing after ``SEGFLOW_SINK_MAX_RETRIES`` retries (or refused for good) is
  stored with its payload in ``activation.dead_letter``; `segflow dead-letter --replay` sends it again, same key.
- **Rate limit**: at most ``SEGFLOW_SINK_RATE_LIMIT`` requests per second, retries included.
- **Ledger**: every batch's outcome is written to ``activation.deliveries`` as soon as it is known; a batch
  delivered before is skipped (a re-run never sends it again).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import duckdb
import httpx

from segflow.settings import Settings

RETRY_STATUSES = frozenset({408, 425, 429})


def _clean(value):
    """JSON-safe: NaN / inf become null (strict JSON), timestamps ISO text."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def canonical_json(value) -> str:
    return json.dumps(_clean(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                      default=str)


def idempotency_key(destination: str, kind: str, records: list[dict]) -> str:
    digest = hashlib.sha256()
    for part in (destination, kind, canonical_json(records)):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


@dataclass
class Batch:
    kind: str
    reference: str
    records: list[dict]
    key: str = ""

    def payload(self) -> str:
        return canonical_json({"kind": self.kind, "reference": self.reference, "idempotency_key": self.key,
                               "records": self.records})


def batches(kind: str, reference: str, records: list[dict], size: int, destination: str) -> list[Batch]:
    """``records`` cut into batches of ``size`` in the order given, each with its idempotency key."""
    records = [_clean(r) for r in records]
    out = []
    for start in range(0, len(records), size):
        chunk = records[start:start + size]
        out.append(Batch(kind, reference, chunk, idempotency_key(destination, kind, chunk)))
    return out


@dataclass
class Outcome:
    delivered: bool
    attempts: int
    http_status: int | None = None
    error: str | None = None


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds to wait (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class RateLimiter:
    """At most ``rate`` calls per second: each call starts at least 1/rate after the previous one."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.interval, self.clock, self.sleep, self.next_at = 1.0 / rate, clock, sleep, 0.0

    def wait(self) -> None:
        now = self.clock()
        if now < self.next_at:
            self.sleep(self.next_at - now)
            now = self.next_at
        self.next_at = now + self.interval


class HttpSink:
    """POSTs batches to ``settings.sink_url`` with retries, backoff, jitter and a rate limit."""

    def __init__(self, settings: Settings, *, sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None):
        self.settings, self.url, self.sleep = settings, settings.sink_url, sleep
        self.rng = rng or random.Random()
        self.limiter = RateLimiter(settings.sink_rate_limit, sleep=sleep)
        headers = {"Content-Type": "application/json", "User-Agent": "segflow-sink"}
        if settings.sink_token is not None:
            headers["Authorization"] = f"Bearer {settings.sink_token.get_secret_value()}"
        self.client = httpx.Client(timeout=settings.sink_timeout_seconds, headers=headers)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> HttpSink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        cap = self.settings.sink_backoff_max_seconds
        if retry_after is not None:
            return min(retry_after, cap)
        return self.rng.uniform(0, min(cap, self.settings.sink_backoff_seconds * 2 ** attempt))

    def send(self, batch: Batch) -> Outcome:
        body = batch.payload().encode()
        status, error = None, None
        attempts = 0
        for attempt in range(self.settings.sink_max_retries + 1):
            attempts = attempt + 1
            self.limiter.wait()
            retry_after = None
            try:
                response = self.client.post(self.url, content=body, headers={"Idempotency-Key": batch.key})
            except httpx.TransportError as exc:  # refused, reset, dropped mid-answer, timed out
                status, error = None, f"{type(exc).__name__}: {exc}"[:500]
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return Outcome(True, attempts, status)
                error = f"HTTP {status}: {response.text[:300]}"
                if status < 500 and status not in RETRY_STATUSES:
                    return Outcome(False, attempts, status, error)  # refused for good: retrying cannot help
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            if attempt < self.settings.sink_max_retries:
                self.sleep(self.backoff(attempt, retry_after))
        return Outcome(False, attempts, status, error)


@dataclass
class DeliveryReport:
    destination: str
    batches: int = 0
    delivered: int = 0
    skipped: int = 0
    dead: int = 0
    records_delivered: int = 0
    records_skipped: int = 0
    records_dead: int = 0
    dead_keys: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "dead_keys"} | {"dead_keys": self.dead_keys[:20]}


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def delivered_keys(con: duckdb.DuckDBPyConnection, destination: str) -> set[str]:
    return {k for (k,) in con.execute("select idempotency_key from deliveries where destination = ? and status = "
                                      "'delivered'", [destination]).fetchall()}


def record_outcome(con: duckdb.DuckDBPyConnection, destination: str, batch: Batch, outcome: Outcome,
                   started: datetime) -> None:
    """Write the batch's outcome to the ledger (and its payload to the dead letters if it failed) at once."""
    now = _utc_now()
    con.execute("begin transaction")
    con.execute("delete from deliveries where idempotency_key = ? and destination = ?", [batch.key, destination])
    con.execute("insert into deliveries values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [batch.key, destination, batch.kind, batch.reference, len(batch.records),
                 "delivered" if outcome.delivered else "dead", outcome.attempts, outcome.http_status,
                 outcome.error, started, now])
    if outcome.delivered:
        con.execute("update dead_letter set replayed_at = ? where idempotency_key = ? and destination = ? and "
                    "replayed_at is null", [now, batch.key, destination])
    else:
        con.execute("delete from dead_letter where idempotency_key = ? and destination = ?", [batch.key, destination])
        con.execute("insert into dead_letter values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, null)",
                    [batch.key, destination, batch.kind, batch.reference, len(batch.records), batch.payload(),
                     outcome.attempts, outcome.http_status, outcome.error, now])
    con.execute("commit")


def deliver(con: duckdb.DuckDBPyConnection, sink: HttpSink, items: Iterable[Batch],
            on_done: Callable[[Batch, Outcome], None] | None = None) -> DeliveryReport:
    """Send each batch not delivered before; the ledger (and dead letters) record each outcome as it happens."""
    report = DeliveryReport(sink.url)
    done = delivered_keys(con, sink.url)
    for batch in items:
        report.batches += 1
        if batch.key in done:
            con.execute("update dead_letter set replayed_at = coalesce(replayed_at, ?) where idempotency_key = ? and "
                        "destination = ?", [_utc_now(), batch.key, sink.url])
            report.skipped += 1
            report.records_skipped += len(batch.records)
            continue
        started = _utc_now()
        outcome = sink.send(batch)
        record_outcome(con, sink.url, batch, outcome, started)
        if on_done is not None:
            on_done(batch, outcome)
        if outcome.delivered:
            done.add(batch.key)
            report.delivered += 1
            report.records_delivered += len(batch.records)
        else:
            report.dead += 1
            report.records_dead += len(batch.records)
            report.dead_keys.append(batch.key)
    return report
