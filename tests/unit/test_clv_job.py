"""The weekly CLV job on a real built warehouse: tables, idempotency, the not-ready outcome, erasure."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from tests_support import table_fingerprint, week_end

from segflow.errors import NotReady
from segflow.jobs.clv import fit_clv
from segflow.settings import Settings
from segflow.warehouse import connect


def _tables(settings):
    with connect(settings, read_only=True) as con:
        models = con.execute("select * from ml.clv_models order by as_of").df()
        customers = con.execute("select * from ml.customer_clv order by as_of, customer_id").df()
        summary = con.execute("select s.customer_id, s.frequency, v.net_revenue from marts.customer_purchase_summary "
                              "s inner join marts.customer_value v using (customer_id) order by 1").df()
        fingerprints = {t: table_fingerprint(con, t) for t in ("ml.customer_clv",)}
    return models, customers, summary, fingerprints


def test_fit_clv_writes_one_model_row_and_one_row_per_customer_idempotently(home_copy):
    run = fit_clv(home_copy, as_of=week_end(4))
    models, customers, summary, first = _tables(home_copy)
    assert run.status == "fitted", run.reason
    assert len(models) == 1
    model = models.iloc[0]
    assert model["status"] == "fitted" and model["converged"]
    assert model["customer_count"] == len(summary) == len(customers) == run.customers
    assert model["repeat_customer_count"] == (summary["frequency"] > 0).sum() >= home_copy.clv_min_repeat_customers
    assert all(model[k] > 0 for k in ("r", "alpha", "a", "b", "p", "q", "gamma"))
    assert model["bgnbd_log_likelihood"] < 0 and model["code_version"]
    assert model["horizon_weeks"] == home_copy.clv_horizon_weeks
    # every customer of the marts, once, with sane predictions
    assert list(customers["customer_id"]) == list(summary["customer_id"])
    assert customers["probability_alive"].between(0, 1).all()
    assert (customers["expected_purchases"] >= 0).all() and (customers["expected_avg_spend"] > 0).all()
    assert (customers["predictive_clv"] >= 0).all()
    pd.testing.assert_series_equal(customers["historic_clv"], summary["net_revenue"].astype(float),
                                   check_names=False)
    # customers without repeat purchases are alive by the model's assumption; silent repeat buyers less so
    no_repeat = customers["customer_id"].isin(summary.loc[summary["frequency"] == 0, "customer_id"])
    assert (customers.loc[no_repeat, "probability_alive"] == 1).all()
    # the same week again: the same rows, not twice as many
    again = fit_clv(home_copy, as_of=week_end(4))
    assert again.params == pytest.approx(run.params)
    models_again, _, _, second = _tables(home_copy)
    assert second["ml.customer_clv"] == first["ml.customer_clv"]
    timing = ["fit_seconds", "created_at"]
    pd.testing.assert_frame_equal(models_again.drop(columns=timing), models.drop(columns=timing))


def test_too_few_repeat_customers_is_recorded_not_raised(home_copy):
    fit_clv(home_copy, as_of=week_end(4))  # a fitted week first: the not-ready rerun must replace its rows
    strict = Settings(home=home_copy.home, clv_min_repeat_customers=1_000_000)
    run = fit_clv(strict, as_of=week_end(4))
    models, customers, _, _ = _tables(home_copy)
    assert run.status == "not_ready" and "SEGFLOW_CLV_MIN_REPEAT_CUSTOMERS" in run.reason
    assert list(models["status"]) == ["not_ready"] and models["r"].isna().all()
    assert customers.empty


def test_a_week_the_marts_are_not_built_for_is_not_ready(home_copy):
    with pytest.raises(NotReady, match="built as of"):
        fit_clv(home_copy, as_of=week_end(3))


def test_cli_prints_the_run_and_refuses_an_unbuilt_week_in_one_line(home_copy, monkeypatch, capsys):
    from segflow.cli import main

    monkeypatch.setenv("SEGFLOW_HOME", str(home_copy.home))
    assert main(["clv", "--as-of", week_end(4).isoformat()]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "fitted" and set(out["params"]) == {"r", "alpha", "a", "b", "p", "q", "gamma"}
    assert main(["clv", "--as-of", week_end(3).date().isoformat()]) == 2
    err = capsys.readouterr().err
    assert err.startswith("segflow: error:") and "built as of" in err and len(err.strip().splitlines()) == 1
