"""The reverse-ETL sink against a real local HTTP server that fails and recovers: nothing sent twice, nothing lost."""

from __future__ import annotations

import time
from datetime import datetime

import pandas as pd
import pytest
from crm_server import CrmServer

from segflow.activation.deliver import activate, dead_letters
from segflow.activation.sink import Batch, HttpSink, batches, idempotency_key, retry_after_seconds
from segflow.activation.store import open_store
from segflow.errors import DeliveryFailed
from segflow.publish.exports import Previous, write_exports
from segflow.settings import Settings

AS_OF = datetime(2025, 10, 6)


def _settings(tmp_path, url: str, **overrides) -> Settings:
    values = {"home": tmp_path / "home", "sink_url": url, "sink_batch_size": 50, "sink_max_retries": 3,
              "sink_backoff_seconds": 0.01, "sink_backoff_max_seconds": 0.05, "sink_rate_limit": 500,
              "sink_timeout_seconds": 5, "sink_token": "s3cret"}
    return Settings(**(values | overrides))


def _publish_synthetic_week(settings: Settings) -> pd.DataFrame:
    """A published week through the real export writer: 600 customers now, 500 last published week."""
    ids = [f"C{n:05d}" for n in range(700)]
    now = pd.DataFrame({"customer_id": ids[100:], "segment_id": [f"S0{n % 4 + 1}" for n in range(600)],
                        "segment_name": "x", "as_of": AS_OF})
    before = pd.DataFrame({"customer_id": ids[:500], "segment_id": [f"S0{n % 3 + 1}" for n in range(500)],
                           "segment_name": "y"})
    segments = pd.DataFrame({"segment_id": ["S01", "S02", "S03", "S04"], "segment_name": ["a", "b", "c", "d"],
                             "name_rule": ["r"] * 4})
    write_exports(settings, AS_OF, "run-1", now, segments, Previous(datetime(2025, 9, 29), before, "file"), [],
                  move_latest=True)
    return pd.read_parquet(settings.exports_dir / "segments" / "deltas" / "delta_2025-10-06.parquet")


def test_failures_and_recovery_send_nothing_twice_and_lose_nothing(tmp_path):
    with CrmServer() as crm:
        settings = _settings(tmp_path, crm.url)
        delta = _publish_synthetic_week(settings)
        expected = set(delta["customer_id"])  # counted from the exported file, not from the sink
        assert len(expected) == len(delta) > 300
        poison = sorted(expected)[400]  # its batch is refused until the CRM "recovers"
        crm.refuse = lambda records: any(r["customer_id"] == poison for r in records)
        # per batch: 500 then 429 then OK; answer lost (applied); connection dropped then 503 then OK; ...
        crm.script = [500, (429, "0"), "ok", "apply_drop", "ok", "drop", 503, "ok", "apply_drop", 502, "ok"]

        with pytest.raises(DeliveryFailed, match="dead-lettered"):
            activate(settings, as_of=AS_OF)

        listed = dead_letters(settings)
        dead_ids = {r["customer_id"] for batch in _dead_payloads(settings) for r in batch}
        applied = set(crm.record_counts)
        assert listed["dead_letters"] == 1 and listed["records"] == len(dead_ids) == 50
        assert poison in dead_ids
        assert applied | dead_ids == expected and not applied & dead_ids  # nothing lost
        assert max(crm.record_counts.values()) == 1  # nothing applied twice...
        assert crm.duplicates >= 1  # ...although an answer was lost and the batch re-sent with the same key
        assert max(crm.key_requests.values()) == 4  # the poison batch: 1 attempt + 3 retries
        assert crm.auth == {"Bearer s3cret"}

        crm.refuse = None  # the CRM recovers
        replay = dead_letters(settings, replay=True)
        assert replay["replayed"] == 1 and replay["still_dead"] == 0
        assert set(crm.record_counts) == expected and set(crm.record_counts.values()) == {1}
        assert dead_letters(settings)["dead_letters"] == 0

        before = crm.requests
        again = activate(settings, as_of=AS_OF)  # a re-run sends nothing: every batch is in the ledger
        assert crm.requests == before
        assert again["skipped"] == again["batches"] == -(-len(delta) // 50) and again["delivered"] == 0
    with open_store(settings) as con:
        statuses = dict(con.execute("select status, sum(records) from deliveries group by all").fetchall())
    assert statuses == {"delivered": len(delta)}


def _dead_payloads(settings):
    import json

    with open_store(settings) as con:
        return [json.loads(p)["records"] for (p,) in con.execute("select payload from dead_letter").fetchall()]


def test_retry_after_is_honoured_and_backoff_is_jittered(tmp_path):
    waits: list[float] = []
    with CrmServer() as crm:
        settings = _settings(tmp_path, crm.url, sink_backoff_seconds=1.0, sink_backoff_max_seconds=30.0)
        crm.script = [(429, "7"), 500, 503]
        with HttpSink(settings, sleep=waits.append) as sink:
            outcome = sink.send(batches("t", "r", [{"customer_id": "C1"}], 10, crm.url)[0])
    assert outcome.delivered and outcome.attempts == 4
    assert waits[0] == 7.0  # the server's Retry-After, not the backoff
    assert 0 <= waits[1] <= 2.0 and 0 <= waits[2] <= 4.0  # full jitter in [0, base x 2^n]
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: no wait
    assert retry_after_seconds("soon") is None


def test_a_permanent_refusal_is_dead_lettered_without_retrying(tmp_path):
    with CrmServer() as crm:
        settings = _settings(tmp_path, crm.url)
        crm.script = [400]
        with HttpSink(settings) as sink:
            outcome = sink.send(Batch("t", "r", [{"customer_id": "C1"}], "k"))
    assert not outcome.delivered and outcome.attempts == 1 and outcome.http_status == 400
    assert crm.requests == 1


def test_rate_limit_spaces_requests(tmp_path):
    with CrmServer() as crm:
        settings = _settings(tmp_path, crm.url, sink_rate_limit=20)
        items = batches("t", "r", [{"customer_id": f"C{n}"} for n in range(6)], 1, crm.url)
        started = time.monotonic()
        with HttpSink(settings) as sink:
            assert all(sink.send(b).delivered for b in items)
        assert time.monotonic() - started >= 5 / 20  # 6 requests at 20/s: at least 5 intervals
    assert crm.requests == 6


def test_idempotency_key_depends_on_content_and_destination_only():
    records = [{"customer_id": "C1", "segment_id": "S01"}]
    assert idempotency_key("http://a", "k", records) == idempotency_key("http://a", "k", [dict(records[0])])
    assert idempotency_key("http://a", "k", records) != idempotency_key("http://b", "k", records)
    assert idempotency_key("http://a", "k", records) != idempotency_key("http://a", "k", [{"customer_id": "C2",
                                                                                             "segment_id": "S01"}])


def test_without_a_sink_url_activation_only_reports(tmp_path):
    settings = _settings(tmp_path, "")
    delta = _publish_synthetic_week(settings)
    out = activate(settings)
    assert out["records"] == len(delta) and out["sink"].startswith("disabled")
    assert not settings.activation_path.exists()
