"""BG/NBD and Gamma-Gamma on CDNOW reproduce the published estimates (Fader, Hardie & Lee 2005).

The published fits use the 1/10 sample of the CDNOW cohort (2,357 customers; Hardie's ``CDNOW_sample``), weeks as
the time unit and the first 39 weeks (1997-01-01 .. 1997-09-30) as calibration period:
  BG/NBD (Marketing Science 24(2), 2005): r = 0.2426, alpha = 4.4136, a = 0.7929, b = 2.4259, LL = -9582.4;
  Gamma-Gamma (Fader & Hardie, "The Gamma-Gamma model of monetary value", 2013; FHL, JMR 42(4), 2005) on the
      946 repeat customers' mean repeat-transaction value: p = 6.25, q = 3.74, gamma = 15.44.
The shared folder holds the master log of the whole cohort (23,570 customers). The sample's customers are chosen
from it by their master ids (tests/fixtures/cdnow/cdnow_sample_master_ids.txt, see the README there), and the
summary is built from the master log's transactions.

The last test runs the weekly job on the whole cohort loaded through the warehouse (mapping, dbt, marts): the job
must fit exactly what the library fits on the raw file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.clv import BetaGeoFitter, GammaGammaFitter
from ml.clv.summary import purchase_summary
from segflow.jobs.build import run_dbt
from segflow.jobs.clv import fit_clv
from segflow.jobs.load import load_landing
from segflow.settings import Settings
from segflow.warehouse import connect

ROOT = Path(__file__).resolve().parents[2]
CDNOW = ROOT.parent / "shared" / "data" / "cdnow_master" / "CDNOW_master.txt.gz"
SAMPLE_IDS = ROOT / "tests" / "fixtures" / "cdnow" / "cdnow_sample_master_ids.txt"
MAPPING = ROOT / "segflow" / "mappings" / "cdnow.yml"

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    if not CDNOW.is_file():
        pytest.skip(f"shared data set not found at {CDNOW} (expected the repo cloned next to shared/)")
    raw = pd.read_csv(CDNOW, sep=r"\s+", dtype=str)
    return pd.DataFrame({"customer_id": raw["customer_id"], "date": pd.to_datetime(raw["date"], format="%Y%m%d"),
                         "value": raw["dollar_value"].astype(float)})


@pytest.fixture(scope="module")
def sample_summary(transactions) -> pd.DataFrame:
    ids = {int(line) for line in SAMPLE_IDS.read_text().split()}
    sample = transactions[transactions["customer_id"].astype(int).isin(ids)]
    return purchase_summary(sample, "1997-09-30", "1998-06-30")


def test_the_sample_is_the_published_cohort(sample_summary):
    assert len(sample_summary) == 2357
    assert int(sample_summary["frequency"].sum()) == 2457  # repeat purchases in the 39 calibration weeks
    assert int((sample_summary["frequency"] > 0).sum()) == 946
    assert sample_summary["T"].max() == pytest.approx(272 / 7)  # bought on 1997-01-01: 38.86 weeks


def test_bgnbd_reproduces_the_published_parameters(sample_summary):
    model = BetaGeoFitter().fit(sample_summary["frequency"], sample_summary["recency"], sample_summary["T"])
    assert model.converged_
    published = {"r": 0.2426, "alpha": 4.4136, "a": 0.7929, "b": 2.4259}
    for name, value in published.items():
        assert model.params_[name] == pytest.approx(value, abs=1e-4), name
    assert model.log_likelihood_ == pytest.approx(-9582.4, abs=0.05)
    # the paper's worked example (section 5) with the parameters as fitted here
    assert model.expected_purchases(39, [2], [30.43], [38.86])[0] == pytest.approx(1.226, abs=1e-3)


def test_gamma_gamma_reproduces_the_published_parameters(sample_summary):
    spend = GammaGammaFitter().fit(sample_summary["frequency"], sample_summary["monetary_value"])
    assert spend.converged_ and spend.n_customers_ == 946
    for name, value in {"p": 6.25, "q": 3.74, "gamma": 15.44}.items():
        assert spend.params_[name] == pytest.approx(value, abs=5e-3), name
    repeat = sample_summary[sample_summary["frequency"] > 0]
    # the model's independence assumption holds roughly here (Fader & Hardie report a correlation of 0.11)
    assert abs(np.corrcoef(repeat["frequency"], repeat["monetary_value"])[0, 1]) < 0.2


@pytest.mark.slow
def test_the_weekly_job_on_the_warehouse_fits_what_the_library_fits_on_the_raw_file(transactions, tmp_path):
    settings = Settings(home=tmp_path / "home", consent_policy="collected_under_consent")
    landing = settings.landing_dir / "cdnow"
    landing.mkdir(parents=True)
    shutil.copy(MAPPING, landing / "_mapping.yml")
    shutil.copy(CDNOW, landing / CDNOW.name)
    load_landing(settings)
    # as-of derived from the data (one second after the last purchase): observation end 1998-06-30
    run_dbt(["build", "--select", "+customer_purchase_summary", "+customer_value", "--indirect-selection",
             "cautious"], settings)
    run = fit_clv(settings)
    assert run.status == "fitted", run.reason
    with connect(settings, read_only=True) as con:
        model = con.execute("select * from ml.clv_models").df().iloc[0]
        customers = con.execute("select * from ml.customer_clv order by customer_id").df()

    expected = purchase_summary(transactions, "1998-06-30")
    purchases = BetaGeoFitter().fit(expected["frequency"], expected["recency"], expected["T"])
    free = (expected["frequency"] > 0) & (expected["monetary_value"] <= 0)  # one repeat buyer paid $0
    spend = GammaGammaFitter().fit(expected["frequency"].where(~free, 0), expected["monetary_value"])
    assert model["customer_count"] == len(customers) == len(expected) == 23_570
    assert model["spend_customer_count"] == spend.n_customers_ == int((expected["frequency"] > 0).sum()) - 1
    for name, value in {**purchases.params_, **spend.params_}.items():
        assert model[name] == pytest.approx(value, rel=1e-6), name
    assert model["bgnbd_log_likelihood"] == pytest.approx(purchases.log_likelihood_, rel=1e-9)
    np.testing.assert_allclose(
        customers["probability_alive"],
        purchases.probability_alive(expected["frequency"], expected["recency"], expected["T"]), rtol=1e-6)
    # historic CLV is net revenue: CDNOW has no returns, so it adds up to the log's total (README: $2,500,315.63)
    assert customers["historic_clv"].sum() == pytest.approx(2_500_315.63, abs=0.01)
