"""Who `erase` finds from an e-mail address, on a hand-made warehouse: an e-mail-only customer (staging's
pseudonymous `email:<hash>` id), an account with its anonymous device, and an address several customers share
(refused: nothing is erased)."""

from __future__ import annotations

import csv
from datetime import datetime

import pytest

from segflow.errors import InputError
from segflow.jobs.build import build
from segflow.jobs.erase import erase
from segflow.jobs.load import load_landing
from segflow.settings import Settings
from segflow.warehouse import connect

pytestmark = pytest.mark.slow

EVENTS = [("E1", "2025-01-02T10:00:00Z", "D1", "U-000001", ""), ("E2", "2025-01-02T09:00:00Z", "D1", "", ""),
          ("E3", "2025-01-02T11:00:00Z", "D2", "U-000002", ""),
          ("E4", "2025-01-03T10:00:00Z", "", "", "Solo@Example.com"),
          ("E5", "2025-01-03T10:10:00Z", "", "", " solo@example.com"),
          ("E6", "2025-01-03T12:00:00Z", "", "G-000001", "")]
CUSTOMERS = [("U-000001", "one@example.com"), ("U-000002", "two@example.com"),
             *[(f"G-00000{i}", "noreply@example.com") for i in (1, 2, 3)]]


@pytest.fixture
def home(tmp_path) -> Settings:
    settings = Settings(home=tmp_path / "home", identity_max_links=2)
    settings.ensure_dirs()
    for name, header, rows in (
            ("events/events_2025-01-02.csv", ["event_id", "occurred_at", "anonymous_id", "user_id", "email"], EVENTS),
            ("customers/customers_2025-01-01.csv", ["customer_id", "email"], CUSTOMERS)):
        path = settings.landing_dir / name
        path.parent.mkdir(parents=True)
        with open(path, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow([*header, "event_type"] if "event_id" in header else header)
            writer.writerows([[*r, "page_view"] for r in rows] if "event_id" in header else rows)
    load_landing(settings)
    build(settings, as_of=datetime(2025, 1, 10))
    return settings


def _events_and_customers(settings: Settings) -> tuple[set[str], set[str]]:
    with connect(settings, read_only=True) as con:
        events = {e for (e,) in con.execute("select event_id from raw.events").fetchall()}
        customers = {c for (c,) in con.execute("select customer_id from marts.dim_customers").fetchall()}
    return events, customers


def test_erasing_by_email(home):
    events, customers = _events_and_customers(home)
    pseudonymous = {c for c in customers if c.startswith("email:")}
    assert len(pseudonymous) == 1 and {"U-000001", "U-000002", "G-000001"} <= customers

    with pytest.raises(InputError, match="used by 3 different customers"):
        erase(home, emails=["NoReply@example.com"])
    assert _events_and_customers(home) == (events, customers)  # refused: nothing erased

    erase(home, emails=["SOLO@example.com"])  # the e-mail-only customer
    assert _events_and_customers(home) == (events - {"E4", "E5"}, customers - pseudonymous)

    with connect(home) as con:  # a message that names the account (e.g. a data-quality failure)
        con.execute("insert into meta.dq_results values ('2025-01-10', 'x', false, 1, 1, 1, "
                    "'unexpected U-000001,U-000001 and U-0000011', null, now())")
    erase(home, emails=["one@example.com"])  # an account: its events, its device's anonymous event, its profile
    assert _events_and_customers(home) == (events - {"E1", "E2", "E4", "E5"}, customers - pseudonymous - {"U-000001"})
    with connect(home, read_only=True) as con:
        assert con.execute("select count(*) from raw.customers where email ilike '%one@%'").fetchall()[0][0] == 0
        assert con.execute("select failures from meta.dq_results where suite = 'x'").fetchall() == [
            ("unexpected [erased],[erased] and U-0000011",)]
