"""Shared fixtures: a small real warehouse (generated -> loaded -> dbt-built), built once per session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from tests_support import TEST_PII_KEY, small_config, week_end

# the suite's own key, whatever the developer has exported (a real key must never meet test data)
os.environ["SEGFLOW_PII_KEY"] = TEST_PII_KEY
os.environ.pop("SEGFLOW_PII_KEY_FILE", None)

from segflow.settings import Settings

# Tests write landing files and load them at once; a real deployment waits until a file without a ready marker
# has not changed for a minute (tests/unit/test_landing.py checks that rule with its own setting).
os.environ.setdefault("SEGFLOW_LOAD_MIN_FILE_AGE_SECONDS", "0")


@pytest.fixture(scope="session")
def built_home(tmp_path_factory) -> Settings:
    """400 customers x 5 weeks; every file loaded; dbt built as of the end of week 4."""
    from segflow.jobs.build import build
    from segflow.jobs.load import load_landing
    from segflow.sources.generator import generate

    settings = Settings(home=tmp_path_factory.mktemp("built") / "home")
    settings.ensure_dirs()
    report = generate(small_config(), settings.landing_dir, settings.truth_dir)
    load_landing(settings)
    result = build(settings, as_of=week_end(4))
    settings._generation = report  # noqa: SLF001 - handy for assertions
    settings._build = result  # noqa: SLF001
    return settings


@pytest.fixture
def home_copy(built_home, tmp_path) -> Settings:
    """A private copy of the built home, for tests that write to the warehouse."""
    target = tmp_path / "home"
    shutil.copytree(built_home.home, target, ignore=shutil.ignore_patterns("*.wal"))
    settings = Settings(home=target)
    return settings


@pytest.fixture
def shared_data() -> Path:
    root = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if not root.is_dir():
        pytest.skip(f"shared datasets not available at {root} (only CI and team machines have ../shared)")
    return root
