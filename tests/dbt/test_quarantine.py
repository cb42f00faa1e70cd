"""`segflow quarantine list | show | replay` on a real warehouse: a mapping that missed an event name quarantines
rows; after the mapping is fixed, replay reloads the file (replacing its earlier load) and the next build stages
them. Expected counts are read off the rows this module writes."""

from __future__ import annotations

from datetime import datetime

import pytest

from segflow.cli import main
from segflow.jobs import quarantine
from segflow.jobs.build import build
from segflow.jobs.load import load_landing
from segflow.settings import Settings
from segflow.warehouse import connect

pytestmark = pytest.mark.slow

MAPPING = """name: shop
stream: events
columns:
  occurred_at: ts
  event_type: {{column: action, value_map: {{{value_map}}}}}
  event_name: action
  user_id: user
  quantity: {{value: "1"}}
event_id: {{hash: [ts, action, user]}}
"""
ROWS = [("2025-01-02T10:00:00Z", "view", "U1"), ("2025-01-02T10:05:00Z", "view", "U2"),
        ("2025-01-02T10:06:00Z", "view", "U3"), ("2025-01-02T10:07:00Z", "cart", "U1"),
        ("2025-01-02T10:08:00Z", "cart", "U2")]
BROKEN_LINE = "2025-01-02T11:00:00Z,view,U4,extra"  # one field too many: rejected at load


def _q(settings, sql):
    with connect(settings, read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture
def home(tmp_path, monkeypatch) -> Settings:
    settings = Settings(home=tmp_path / "home", consent_policy="collected_under_consent")
    folder = settings.landing_dir / "shop"
    folder.mkdir(parents=True)
    (folder / "_mapping.yml").write_text(MAPPING.format(value_map="view: product_view"))  # 'cart' missing
    lines = ["ts,action,user", *(",".join(r) for r in ROWS), BROKEN_LINE]
    (folder / "events_2025-01-02.csv").write_text("\n".join(lines) + "\n")
    load_landing(settings)
    build(settings, as_of=datetime(2025, 1, 5))
    monkeypatch.setenv("SEGFLOW_HOME", str(settings.home))
    monkeypatch.setenv("SEGFLOW_CONSENT_POLICY", "collected_under_consent")
    return settings


def test_list_show_and_replay_after_a_mapping_fix(home, capsys):
    carts = sum(1 for r in ROWS if r[1] == "cart")
    listed = {(r["where"], r["reason"]): r["rows"] for r in quarantine.summary(home)}
    assert listed == {("rejected at load", "csv_too_many_columns"): 1,
                      ("quarantined (events)", "unknown_event_type"): carts}
    assert main(["quarantine", "list"]) == 0
    assert "unknown_event_type" in capsys.readouterr().out
    (shown,) = quarantine.show("csv_too_many_columns", settings=home)
    assert (shown["line_number"], shown["raw_line"]) == (len(ROWS) + 2, BROKEN_LINE)
    assert {r["event_type"] for r in quarantine.show("unknown_event_type", settings=home)} == {"cart"}

    dry = quarantine.replay("unknown_event_type", dry_run=True, settings=home)
    assert [f["status"] for f in dry.files] == ["would reload"]

    # the mapping is fixed; replay reloads the file in place of its earlier load
    (home.landing_dir / "shop" / "_mapping.yml").write_text(
        MAPPING.format(value_map="view: product_view, cart: add_to_cart"))
    result = quarantine.replay("unknown_event_type", settings=home)
    (reloaded,) = result.files
    assert (reloaded["status"], reloaded["rows_in_file"], reloaded["rows_loaded"]) == ("loaded", len(ROWS) + 1,
                                                                                        len(ROWS))
    assert _q(home, "select count(*) from raw.events") == [(len(ROWS),)]  # not doubled
    assert _q(home, "select count(*) from meta.load_manifest") == [(1,)]
    assert _q(home, "select count(*) from meta.load_rejects") == [(1,)]

    rebuilt = build(home, as_of=datetime(2025, 1, 5))
    assert rebuilt.mode == "full" and "replaced" in rebuilt.reason
    assert _q(home, "select count(*) from staging.stg_raw__events_quarantine") == [(0,)]
    assert _q(home, "select event_type, count(*) from staging.stg_raw__events group by 1 order by 1") == [
        ("add_to_cart", carts), ("product_view", len(ROWS) - carts)]


def test_replay_refuses_a_file_that_changed_since_it_was_loaded(home):
    path = home.landing_dir / "shop" / "events_2025-01-02.csv"
    path.write_text(path.read_text() + "2025-01-03T10:00:00Z,view,U9\n")
    (skipped,) = quarantine.replay(settings=home).files
    assert skipped["status"] == "not replayed" and "deliver it again" in skipped["reason"]
    assert _q(home, "select count(*) from raw.events") == [(len(ROWS),)]
