"""Segment KPIs and the A/B readout on a real built warehouse (home_copy), and the `segflow ab-readout` CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from tests_support import table_fingerprint, week_end

from segflow.cli import main
from segflow.errors import NotReady
from segflow.jobs.segment import recluster
from segflow.jobs.segment_kpis import segment_kpis
from segflow.warehouse import connect

AS_OF = week_end(4)


@pytest.fixture
def segmented(home_copy):
    # the fixture holds 4 weeks of data: 14-day windows leave a previous window inside it
    settings = home_copy.model_copy(update={"kpi_window_days": 14, "churn_inactive_days": 14})
    recluster(settings, as_of=AS_OF)
    return settings


def test_segment_kpis_counts_match_assignments_and_rerun_is_idempotent(segmented):
    run = segment_kpis(segmented, as_of=AS_OF)
    json.dumps(run.as_dict(), allow_nan=False)  # the result is an Airflow XCom: strict JSON, no NaN
    with connect(segmented, read_only=True) as con:
        assigned = dict(con.execute("select segment_id, count(*) from ml.segment_assignments where as_of = ? "
                                    "group by segment_id", [AS_OF]).fetchall())
        kpis = con.execute("select * from ml.segment_kpis where as_of = ?", [AS_OF]).df()
        separation = con.execute("select * from ml.segment_separation where as_of = ?", [AS_OF]).df()
        orders_in_window, = con.execute(
            "select count(*) from marts.fct_orders where ordered_at >= ? and ordered_at < ? and customer_id in "
            "(select customer_id from ml.segment_assignments where as_of = ?)",
            [AS_OF - pd.Timedelta(days=14), AS_OF, AS_OF]).fetchone()
        before = [table_fingerprint(con, t) for t in ("ml.segment_kpis", "ml.segment_separation")]
    counts = kpis[kpis["kpi"] == "customers"].set_index("segment_id")["value"]
    assert counts.drop("(all)").astype(int).to_dict() == assigned
    assert counts["(all)"] == sum(assigned.values()) == run.customers
    assert set(kpis["run_id"]) == {run.run_id}
    # orders per customer x customers, overall, equals the orders counted independently from fct_orders
    total = kpis[kpis["segment_id"] == "(all)"].set_index("kpi")
    assert total.loc["orders_per_customer", "value"] * total.loc["customers", "value"] == \
        pytest.approx(orders_in_window)
    shares = kpis[(kpis["kpi"] == "revenue_share") & (kpis["segment_id"] != "(all)")]["value"]
    assert shares.sum() == pytest.approx(1.0)
    rates = kpis[kpis["kpi"].isin(["conversion_rate", "retention_rate", "churn_rate"])].dropna(subset=["value"])
    assert ((rates["ci_low"] <= rates["value"]) & (rates["value"] <= rates["ci_high"])).all()
    assert set(separation["kpi"]) == {"conversion_rate", "orders_per_customer", "revenue_per_customer", "aov",
                                      "retention_rate", "churn_rate"}
    # the demo's segments differ in how much they buy: the separation test must see it
    assert separation.set_index("kpi").loc["conversion_rate", "p_value"] < 0.001

    segment_kpis(segmented, as_of=AS_OF)
    with connect(segmented, read_only=True) as con:
        assert [table_fingerprint(con, t) for t in ("ml.segment_kpis", "ml.segment_separation")] == before


def test_segment_kpis_needs_a_segmentation(home_copy):
    with pytest.raises(NotReady, match="recluster that week first"):
        segment_kpis(home_copy, as_of=AS_OF)


def _experiment_csv(settings, path, lift_segment=None):
    with connect(settings, read_only=True) as con:
        customers = con.execute("select customer_id, segment_id from ml.segment_assignments where as_of = ? "
                                "order by customer_id", [AS_OF]).df()
    rng = np.random.default_rng(8)
    customers["arm"] = np.where(np.arange(len(customers)) % 2 == 0, "control", "treatment")
    customers["experiment_id"] = "exp-1"
    customers[["customer_id", "arm", "experiment_id"]].to_csv(path, index=False)
    return customers, rng


def test_ab_readout_cli_from_files_and_from_the_marts(segmented, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SEGFLOW_HOME", str(segmented.home))
    monkeypatch.setenv("SEGFLOW_AB_MIN_ARM_SIZE", "30")
    assignments = tmp_path / "exp.csv"
    customers, rng = _experiment_csv(segmented, assignments)
    target = customers["segment_id"].value_counts().index[0]  # the largest segment gets a planted uplift
    treated = (customers["arm"] == "treatment") & (customers["segment_id"] == target)
    converted = np.where(treated, rng.random(len(customers)) < 0.9, rng.random(len(customers)) < 0.1)
    outcomes = tmp_path / "outcomes.csv"
    pd.DataFrame({"customer_id": customers["customer_id"], "converted": converted.astype(int),
                  "revenue": np.where(converted, 50.0, 0.0)}).to_csv(outcomes, index=False)

    assert main(["ab-readout", "--assignments", str(assignments), "--outcomes", str(outcomes)]) == 0
    printed = capsys.readouterr().out
    assert "experiment exp-1" in printed and target in printed
    with connect(segmented, read_only=True) as con:
        rows = con.execute("select * from ml.ab_readouts where experiment_id = 'exp-1'").df()
    conv = rows[rows["metric"] == "conversion_rate"].set_index("segment_id")
    assert conv.loc[target, "ci_low"] > 0.5
    others = conv.drop(index=[target, "(all)"])
    assert (others["ci_low"] < 0.25).all()
    assert set(conv.index) == set(customers["segment_id"]) | {"(all)"}
    assert conv.loc["(all)", "n_control"] + conv.loc["(all)", "n_treatment"] == len(customers)
    small = customers.groupby(["segment_id", "arm"]).size().unstack().min(axis=1) < 30
    assert conv.drop(index="(all)")["small_sample"].sort_index().tolist() == small.sort_index().tolist()

    # outcomes from the marts, twice: the experiment's rows for the week are replaced, not added
    for _ in range(2):
        assert main(["ab-readout", "--assignments", str(assignments), "--from", "2025-09-15",
                     "--to", "2025-09-28"]) == 0
    capsys.readouterr()
    with connect(segmented, read_only=True) as con:
        count, = con.execute("select count(*) from ml.ab_readouts where experiment_id = 'exp-1'").fetchone()
        overall = con.execute("select control, treatment from ml.ab_readouts where experiment_id = 'exp-1' "
                              "and segment_id = '(all)' and metric = 'conversion_rate'").fetchone()
        buyers = {c for (c,) in con.execute("select distinct customer_id from marts.fct_orders where "
                                            "ordered_date between '2025-09-15' and '2025-09-28'").fetchall()}
    assert count == len(rows)
    bought = customers["customer_id"].isin(buyers)
    expected = [bought[customers["arm"] == arm].mean() for arm in ("control", "treatment")]
    assert list(overall) == pytest.approx(expected)


BAD_INPUTS = [
    ("customer_id,arm\nc1,control\nc1,treatment\n", [], "one row per customer"),
    ("customer_id,arm\nc1,control\nc2,holdout\n", [], "'control' or 'treatment'"),
    ("customer_id,arm,experiment_id\nc1,control,a\nc2,treatment,b\n", [], "one experiment per file"),
    ("customer_id,arm\nc1,control\nc2,treatment\n", ["--from", "2025-09-20"], "--from and --to"),
    ("customer_id,arm\nc1,control\nc2,treatment\n", ["--from", "2025-09-20", "--to", "2025-09-01"], "is after"),
]


def test_ab_readout_cli_errors_are_one_line(segmented, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SEGFLOW_HOME", str(segmented.home))
    outcomes = tmp_path / "outcomes.csv"
    outcomes.write_text("customer_id,converted,revenue\nc1,1,10\n")
    for i, (content, args, message) in enumerate(BAD_INPUTS):
        path = tmp_path / f"bad{i}.csv"
        path.write_text(content)
        assert main(["ab-readout", "--assignments", str(path), *(args or ["--outcomes", str(outcomes)])]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    with connect(segmented, read_only=True) as con:
        assert con.execute("select count(*) from ml.ab_readouts").fetchone() == (0,)
