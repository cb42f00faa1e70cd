"""The gate's checks are general, not tuned to one data set: on the generator's data at several seeds, two
consecutive weekly runs pass - the first with nothing to compare, the second against the first (volume,
learned distributions)."""

from __future__ import annotations

import pytest
from tests_support import small_config, week_end

from segflow.settings import Settings

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("seed", [3, 29])
def test_two_weekly_runs_pass_on_clean_generated_data(seed, tmp_path):
    from segflow.jobs.elt import run_elt
    from segflow.sources.generator import generate

    settings = Settings(home=tmp_path / "home")
    settings.ensure_dirs()
    generate(small_config(seed=seed), settings.landing_dir, settings.truth_dir)
    first = run_elt(settings, as_of=week_end(4))["gate"]
    assert first["success"], first["suites"]
    assert first["notes"][0].startswith("first run")
    second = run_elt(settings, as_of=week_end(5))["gate"]
    assert second["success"], {n: s["failures"] for n, s in second["suites"].items() if not s["success"]}
    assert second["metrics"]["reference_as_of"] == week_end(4)
    # volume and the three learned distributions were compared, not skipped
    assert second["suites"]["run_metrics"]["evaluated"] >= 1 + 2 * 6
    assert not any("not compared" in note for note in second["notes"])
