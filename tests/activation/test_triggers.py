"""Near-real-time triggers on a real built warehouse (consent, identities, bot flags) from real landing files."""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timedelta

import pytest
from crm_server import CrmServer
from trigger_support import T0, land, session

from segflow.activation.store import open_store
from segflow.activation.triggers import run_triggers
from segflow.warehouse import connect


@pytest.fixture
def trigger_home(home_copy):
    """The built home with its landing history gone (already in the warehouse) and customers picked by consent."""
    for stream in ("events", "customers", "consent"):
        shutil.rmtree(home_copy.landing_dir / stream, ignore_errors=True)
    with connect(home_copy) as con:
        pick = {}
        for label, where in (("ok", "has_marketing_consent and has_analytics_consent"),
                             ("no_marketing", "not has_marketing_consent and has_analytics_consent")):
            pick[label] = con.execute(
                "select d.customer_id from marts.dim_customers d join intermediate.int_identity_graph g "
                "on g.customer_id = d.customer_id and g.identifier_kind = 'user_id' and g.identifier = d.customer_id "
                f"where {where} order by d.customer_id limit 4").fetchall()
        assert len(pick["ok"]) == 4 and pick["no_marketing"], "the generator's consent mix changed"
        ok = [c for (c,) in pick["ok"]]
        customers = {"ok": ok[0], "bot": ok[1], "withdraws": ok[2], "buyer": ok[3],
                     "no_marketing": pick["no_marketing"][0][0]}
        con.execute("insert into ml.customer_anomalies (as_of, run_id, customer_id, is_flagged) values "
                    "(?, 'anomaly-test', ?, true)", [datetime(2025, 9, 29), customers["bot"]])
    home_copy._customers = customers  # noqa: SLF001
    return home_copy


def _outbox(settings):
    with open_store(settings) as con:
        return con.execute("select trigger_key, trigger_type, customer_id, status from trigger_outbox "
                           "order by trigger_key").fetchall()


def test_triggers_once_for_consenting_customers_only_and_sent_once(trigger_home):
    settings, c = trigger_home, trigger_home._customers  # noqa: SLF001
    first = []
    for label in ("ok", "bot", "withdraws", "no_marketing"):
        first += session(c[label], T0, f"{label}-1")
    first += session(c["buyer"], T0, "buyer-1", views=1, buy=True)
    first += session(c["ok"], T0 + timedelta(minutes=1), "ok-cheap", views=4, price=20.0, cart=False)
    first.append({"event_id": "anon-1", "event_type": "product_view", "user_id": "", "anonymous_id": "unknown-device",
                  "occurred_at": T0.isoformat() + "Z", "product_id": "P9", "price": 250})
    land(settings, "events_2025-10-20.csv", first)
    land(settings, "consent_2025-10-20.csv", [{"customer_id": c["withdraws"], "purpose": "marketing",
                                                 "granted": "false", "recorded_at": T0.isoformat() + "Z"}], "consent")

    run1 = run_triggers(settings)
    # the offer fires at once; the carts wait until the event time passes their window
    assert run1.detected == {"session_offer": 1, "abandoned_cart": 0}
    assert run1.events_unresolved == 1
    assert run1.suppressed == 3  # the bot, the fresh withdrawal, the customer without marketing consent

    later = T0 + timedelta(minutes=settings.trigger_cart_minutes + 30)
    land(settings, "events_2025-10-20b.csv", session(c["buyer"], later, "buyer-2", views=1, cart=False))
    run2 = run_triggers(settings)
    assert run2.detected == {"session_offer": 0, "abandoned_cart": 1}  # the buyer's cart was bought

    rows = _outbox(settings)
    assert [(t, who) for _, t, who, _ in rows] == [("abandoned_cart", c["ok"]), ("session_offer", c["ok"])]
    # a re-run, and a producer re-delivering the first file (new mtime, same events), emit nothing new
    os.utime(settings.landing_dir / "events" / "events_2025-10-20.csv", (1, 1))
    run3 = run_triggers(settings)
    assert run3.files_read == 1 and sum(run3.detected.values()) == 0
    assert _outbox(settings) == rows and {s for *_, s in rows} == {"pending"}

    # a consent withdrawal lands while the triggers wait for the sink: that customer's trigger is never sent
    late = session(c["buyer"], later + timedelta(hours=2), "buyer-3", views=3, cart=False)
    land(settings, "events_2025-10-20c.csv", late)
    assert run_triggers(settings).detected["session_offer"] == 1
    land(settings, "consent_2025-10-20d.csv", [{"customer_id": c["buyer"], "purpose": "analytics", "granted": "false",
                                                "recorded_at": later.isoformat() + "Z"}], "consent")
    rows = _outbox(settings)
    assert len(rows) == 3
    with CrmServer(record_id="trigger_key") as crm:  # the sink comes up: the pending triggers go out, once
        sending = settings.model_copy(update={"sink_url": crm.url, "sink_backoff_seconds": 0.01})
        crm.script = ["apply_drop"]
        assert run_triggers(sending).sent == 2
        assert run_triggers(sending).sent == 0
    assert dict(crm.record_counts) == {key: 1 for key, _, who, _ in rows if who == c["ok"]}
    assert {(who, s) for _, _, who, s in _outbox(settings)} == {(c["ok"], "sent"), (c["buyer"], "suppressed")}

    # the right to erasure reaches the activation store: the person's triggers and buffered events go
    from segflow.jobs.erase import erase

    result = erase(settings, customers=[c["ok"]], reference="test")
    assert {"path": str(settings.activation_path), "action": "rows_removed", "count": 2 + 8} in result.files
    with open_store(settings) as con:
        left = con.execute("select (select count(*) from trigger_outbox where customer_id = $c) + "
                           "(select count(*) from trigger_events where customer_id = $c)", {"c": c["ok"]}).fetchall()
    assert left == [(0,)] and not (settings.home / "activation" / "reference").exists()
