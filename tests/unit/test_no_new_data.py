"""segflow_elt's "no new data" outcome: a run whose day had no delivery is skipped with a clear message."""

from __future__ import annotations

from datetime import datetime

from segflow.jobs.elt import no_new_data
from segflow.jobs.load import load_landing
from segflow.settings import Settings


def _home(tmp_path, **overrides) -> Settings:
    settings = Settings(home=tmp_path / "home", **overrides)
    settings.ensure_dirs()
    (settings.landing_dir / "events").mkdir()
    (settings.landing_dir / "events" / "events_2025-09-02.csv").write_text(
        "event_id,event_type,occurred_at,user_id\nE1,page_view,2025-09-02T10:00:00Z,U1\n")
    return settings


def test_a_day_without_delivery_has_no_new_data_and_says_so(tmp_path):
    settings = _home(tmp_path)
    assert no_new_data(settings, datetime(2025, 9, 2), datetime(2025, 9, 3)) is None  # delivered, not loaded yet
    reason = no_new_data(settings, datetime(2025, 9, 3), datetime(2025, 9, 4))
    assert reason.startswith("no new data: no landing file was delivered for 2025-09-03")
    assert "latest delivered day is 2025-09-02" in reason and "SEGFLOW_SKIP_WHEN_NO_NEW_DATA" in reason


def test_a_loaded_day_still_counts_after_its_file_is_gone_from_landing(tmp_path):
    settings = _home(tmp_path)
    assert load_landing(settings).count("loaded") == 1
    (settings.landing_dir / "events" / "events_2025-09-02.csv").unlink()  # archived after loading
    assert no_new_data(settings, datetime(2025, 9, 2), datetime(2025, 9, 3)) is None  # re-running it rebuilds
    assert "latest delivered day is 2025-09-02" in no_new_data(settings, datetime(2025, 9, 5), datetime(2025, 9, 6))


def test_the_skip_can_be_switched_off(tmp_path):
    settings = _home(tmp_path, skip_when_no_new_data=False)
    assert no_new_data(settings, datetime(2025, 9, 3), datetime(2025, 9, 4)) is None
