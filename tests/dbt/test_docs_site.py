"""`segflow docs` after a real build: dbt docs generate compiles every model (incremental ones as the next
build would run them) and writes one static page holding the overview, the exposures and the column docs."""

from __future__ import annotations

import pytest

from segflow.jobs.build import docs

pytestmark = pytest.mark.slow


def test_docs_generate_after_a_build_holds_overview_exposures_and_column_docs(home_copy):
    page = docs(home_copy)
    html = page.read_text(encoding="utf-8")
    assert page.name == "static_index.html"
    assert "segflow warehouse" in html  # the {% docs __overview__ %} page
    for exposure in ("weekly_segmentation", "segment_exports", "data_quality_gate"):
        assert exposure in html
    assert "customer_lifecycle_history" in html
    # an incremental model was compiled with the last build's bounds (it would raise without them)
    compiled = home_copy.dbt_target_dir / "compiled" / "segflow" / "models" / "marts" / "fct_orders.sql"
    assert compiled.is_file() and "_build_seq >" in compiled.read_text()
