"""A small home whose segments were published for two weeks by the real jobs (gate, anomalies, segmentation,
drift, publish), with GX Data Docs and dbt docs: what the Segments page reads."""

from __future__ import annotations

import shutil

import pytest
from tests_support import week_end

from segflow.settings import Settings


@pytest.fixture(scope="session")
def published_home(built_home, tmp_path_factory) -> Settings:
    from segflow.jobs.anomalies import detect_anomalies
    from segflow.jobs.build import build, docs
    from segflow.jobs.drift import check_drift
    from segflow.jobs.publish_segments import publish
    from segflow.jobs.segment import recluster
    from segflow.jobs.validate import validate

    home = tmp_path_factory.mktemp("ui") / "home"
    shutil.copytree(built_home.home, home, ignore=shutil.ignore_patterns("*.wal"))
    settings = Settings(home=home)
    for weeks in (4, 5):
        as_of = week_end(weeks)
        if weeks != 4:  # the built home is built as of week 4 already
            build(settings, as_of=as_of)
        validate(settings, as_of=as_of)
        detect_anomalies(settings, as_of=as_of)
        recluster(settings, as_of=as_of)
        check_drift(settings, as_of=as_of)
        publish(settings, as_of=as_of)
    docs(settings)
    return settings
