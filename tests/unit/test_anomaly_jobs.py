"""The anomaly step on a real built warehouse: bots flagged with reasons, kept out of segments and exports,
idempotent per week, erased with the person. Ground truth (the generator's personas) is read only to assert."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from tests_support import table_fingerprint, week_end

from segflow.cli import main
from segflow.errors import NotReady
from segflow.jobs.anomalies import FEATURES, detect_anomalies
from segflow.jobs.erase import erase
from segflow.jobs.publish_segments import publish
from segflow.jobs.segment import recluster
from segflow.jobs.validate import validate
from segflow.warehouse import connect

AS_OF = week_end(4)


def _truth_bots(settings) -> set[str]:
    truth = pd.read_csv(settings.truth_dir / "personas.csv")
    return set(truth.loc[truth["is_bot"], "customer_id"])


def _rows(settings, sql: str, params=()) -> list[tuple]:
    with connect(settings, read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def test_bots_are_flagged_with_their_reasons(home_copy):
    run = detect_anomalies(home_copy, as_of=AS_OF)
    scored = {c for (c,) in _rows(home_copy, "select customer_id from marts.customer_features")}
    bots = _truth_bots(home_copy) & scored
    rows = _rows(home_copy, "select customer_id, isolation_score, density_score, is_flagged, reasons "
                            "from ml.customer_anomalies where as_of = ?", [AS_OF])
    flagged = {r[0] for r in rows if r[3]}
    assert len(rows) == run.customers == len(scored)
    assert len(bots) >= 5
    assert bots <= flagged  # recall 1 on this home
    assert len(flagged - bots) <= max(1, len(flagged) // 10)  # precision >= 0.9
    assert run.flagged == len(flagged)
    for _customer, isolation, density, _, reasons in (r for r in rows if r[3]):
        assert isolation > home_copy.anomaly_isolation_threshold and density > home_copy.anomaly_density_threshold
        named = json.loads(reasons)
        assert len(named) >= home_copy.anomaly_min_unusual_features
        assert all(r["feature"] in FEATURES and abs(r["robust_z"]) >= home_copy.anomaly_unusual_z
                   and r["value"] is not None and r["median"] is not None for r in named)
    record = _rows(home_copy, "select run_id, customer_count, flagged_count, features, params, code_version "
                              "from ml.anomaly_runs where as_of = ?", [AS_OF])
    assert record[0][:3] == (run.run_id, run.customers, run.flagged)
    assert list(json.loads(record[0][3])) == list(FEATURES)
    assert json.loads(record[0][4])["isolation_threshold"] == home_copy.anomaly_isolation_threshold
    assert record[0][5]


def test_the_same_week_twice_gives_the_same_rows(home_copy):
    first = detect_anomalies(home_copy, as_of=AS_OF)
    with connect(home_copy, read_only=True) as con:
        before = table_fingerprint(con, "ml.customer_anomalies")
    second = detect_anomalies(home_copy, as_of=AS_OF)
    with connect(home_copy, read_only=True) as con:
        assert table_fingerprint(con, "ml.customer_anomalies") == before
        assert con.execute("select count(*) from ml.anomaly_runs").fetchone()[0] == 1
    assert second.run_id == first.run_id and before[0] == first.customers


def test_a_week_that_was_not_built_is_refused(home_copy):
    with pytest.raises(NotReady, match="built as of"):
        detect_anomalies(home_copy, as_of=week_end(3))


@pytest.mark.slow  # runs the data gate (GX) and publishes
def test_flagged_customers_stay_out_of_segments_and_exports(home_copy):
    run = detect_anomalies(home_copy, as_of=AS_OF)
    flagged = {c for (c,) in _rows(home_copy, "select customer_id from ml.customer_anomalies where is_flagged")}
    assert flagged and len(flagged) == run.flagged
    segments = recluster(home_copy, as_of=AS_OF)
    assigned = {c for (c,) in _rows(home_copy, "select customer_id from ml.segment_assignments")}
    scored = {c for (c,) in _rows(home_copy, "select customer_id from marts.customer_features")}
    assert assigned == scored - flagged
    assert segments.customers == len(scored) - len(flagged)
    params = json.loads(_rows(home_copy, "select params from ml.model_runs")[0][0])
    assert params["anomalies_excluded"] == len(flagged)
    validate(home_copy, as_of=AS_OF)
    exported = pd.read_csv(publish(home_copy, as_of=AS_OF).path)
    assert set(exported["customer_id"]) == assigned


@pytest.mark.slow  # runs the data gate (GX) and publishes
def test_without_an_anomaly_run_everybody_is_segmented_and_a_later_run_still_keeps_bots_out_of_exports(home_copy):
    recluster(home_copy, as_of=AS_OF)
    scored = {c for (c,) in _rows(home_copy, "select customer_id from marts.customer_features")}
    assert {c for (c,) in _rows(home_copy, "select customer_id from ml.segment_assignments")} == scored
    assert json.loads(_rows(home_copy, "select params from ml.model_runs")[0][0])["anomalies_excluded"] is None
    detect_anomalies(home_copy, as_of=AS_OF)  # e.g. the anomaly task re-run after the recluster
    flagged = {c for (c,) in _rows(home_copy, "select customer_id from ml.customer_anomalies where is_flagged")}
    validate(home_copy, as_of=AS_OF)
    exported = set(pd.read_csv(publish(home_copy, as_of=AS_OF).path)["customer_id"])
    assert flagged and exported == scored - flagged


def test_exclusion_can_be_switched_off(home_copy):
    detect_anomalies(home_copy, as_of=AS_OF)
    keep_all = home_copy.model_copy(update={"anomaly_exclude_from_segments": False})
    run = recluster(keep_all, as_of=AS_OF)
    assert run.customers == _rows(home_copy, "select count(*) from marts.customer_features")[0][0]


def test_erasure_removes_the_persons_anomaly_rows(home_copy):
    detect_anomalies(home_copy, as_of=AS_OF)
    person = _rows(home_copy, "select customer_id from ml.customer_anomalies where is_flagged order by 1 limit 1")[0][0]
    result = erase(home_copy, customers=[person], reference="TEST-1")
    assert result.tables["ml.customer_anomalies"] == 1
    assert _rows(home_copy, "select count(*) from ml.customer_anomalies where customer_id = ?", [person]) == [(0,)]
    assert _rows(home_copy, "select count(*) from ml.customer_anomalies")[0][0] > 0


def test_cli_scores_then_lists_the_flagged_with_reasons(home_copy, monkeypatch, capsys):
    monkeypatch.setenv("SEGFLOW_HOME", str(home_copy.home))
    assert main(["anomalies", "--list"]) != 0  # nothing scored yet: one clear line, not a traceback
    assert "segflow anomalies" in capsys.readouterr().err
    assert main(["anomalies", "--as-of", AS_OF.isoformat()]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert main(["anomalies", "--list"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["flagged"] == scored["flagged"] == len(listed["anomalies"]) > 0
    assert all(a["reasons"] for a in listed["anomalies"])
    assert listed["anomalies"][0]["isolation_score"] >= listed["anomalies"][-1]["isolation_score"]
