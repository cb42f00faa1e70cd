"""CDNOW's purchase summary for CLV models: customer_purchase_summary equals the buy-till-you-die convention.

The CDNOW master log (../shared/data/cdnow_master) is loaded through the shipped mapping (segflow/mappings/
cdnow.yml) and only the models the summary needs are built (``dbt build --select +customer_purchase_summary``),
once without a calibration end (the whole period) and once with the standard split: calibration end
1997-09-30 (39 weeks from 1997-01-01), observation end 1998-06-30 (the last day before the build's as-of).
Both are compared, every customer and every column, with ``_btyd_reference`` below: an independent pandas
implementation of the convention that reads the raw text file (amounts in integer cents, so sums are exact).

``_btyd_reference`` was checked once against the ``lifetimes`` package (0.11.3, the reference implementation
of Fader & Hardie's models; installed in a throw-away venv with pandas 3.1.1 / numpy 2.4.6, never a project
dependency): ``summary_data_from_transaction_data(freq='D', observation_period_end='1998-06-30',
monetary_value_col='dollar_value')`` and ``calibration_and_holdout_data(freq='D', calibration_period_end=
'1997-09-30', observation_period_end='1998-06-30', monetary_value_col='dollar_value')`` on the raw file:
the same 23,570 / 23,570 customers; frequency, recency, T, frequency_holdout and duration_holdout equal
for every customer; monetary_value within 1e-9 (float sums). One documented difference: lifetimes'
monetary_value_holdout averages the raw holdout transactions, not the purchase days (it differs for 464 of
the 23,570 customers, by up to $183); given the transactions already summed per customer-day it equals ours
within 1e-9. Totals of that check (asserted below, so the numbers stay traceable):
  whole period (to 1998-06-30): 23,570 customers, sum x = 44,021, sum t_x = 3,178,932 days,
      sum T = 11,834,346 days, repeat value $1,715,755.02 (lifetimes: sum of frequency x monetary_value).
  39-week split: 23,570 customers, sum x = 24,337, sum t_x = 1,129,644 days, sum T = 5,399,736 days;
      holdout: 19,684 purchase days worth $776,961.13, duration_holdout 273 days (39 weeks) for everyone.
"""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from segflow.jobs.build import run_dbt
from segflow.jobs.load import load_landing
from segflow.settings import Settings
from segflow.warehouse import connect

ROOT = Path(__file__).resolve().parents[2]
CDNOW = ROOT.parent / "shared" / "data" / "cdnow_master" / "CDNOW_master.txt.gz"
MAPPING = ROOT / "segflow" / "mappings" / "cdnow.yml"
CALIBRATION_END = "1997-09-30"
OBSERVATION_END = "1998-06-30"

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]

INTEGER_COLUMNS = ["frequency", "recency_days", "t_days", "frequency_holdout", "duration_holdout_days"]
CENT_COLUMNS = ["repeat_revenue", "holdout_revenue"]
FLOAT_COLUMNS = ["recency_weeks", "t_weeks", "monetary_value", "monetary_value_holdout"]
DATE_COLUMNS = ["first_purchase_date", "last_purchase_date", "calibration_end_date", "observation_end_date"]


def _read_raw(path: Path) -> pd.DataFrame:
    """The raw log: customer id as written (zero-padded text), date, value in integer cents."""
    frame = pd.read_csv(path, sep=r"\s+", dtype=str)
    return pd.DataFrame({
        "customer_id": frame["customer_id"],
        "date": pd.to_datetime(frame["date"], format="%Y%m%d"),
        "cents": [int(Decimal(v) * 100) for v in frame["dollar_value"]],
    })


def _btyd_reference(transactions: pd.DataFrame, calibration_end: str, observation_end: str) -> pd.DataFrame:
    """Buy-till-you-die summary (lifetimes / BTYD cbs, days): transactions summed per customer-day; x = repeat
    days in calibration, t_x = first to last calibration day, T = first day to calibration end, mean value of the
    repeat days (0 when x = 0); holdout = days in (calibration end, observation end], their mean value."""
    calibration_end, observation_end = pd.Timestamp(calibration_end), pd.Timestamp(observation_end)
    days = (transactions[transactions["date"] <= observation_end]
            .groupby(["customer_id", "date"], as_index=False)["cents"].sum())
    calibration = days[days["date"] <= calibration_end].sort_values(["customer_id", "date"])
    holdout = days[days["date"] > calibration_end]
    by_customer = calibration.groupby("customer_id")
    out = pd.DataFrame({
        "first_purchase_date": by_customer["date"].min(),
        "last_purchase_date": by_customer["date"].max(),
        "frequency": by_customer.size() - 1,
        "repeat_cents": by_customer["cents"].sum() - by_customer["cents"].first(),
    })
    out["recency_days"] = (out["last_purchase_date"] - out["first_purchase_date"]).dt.days
    out["t_days"] = (calibration_end - out["first_purchase_date"]).dt.days
    out["recency_weeks"] = out["recency_days"] / 7
    out["t_weeks"] = out["t_days"] / 7
    out["monetary_value"] = (out["repeat_cents"] / 100 / out["frequency"]).where(out["frequency"] > 0, 0.0)
    held = holdout.groupby("customer_id")["cents"].agg(["size", "sum"]).reindex(out.index, fill_value=0)
    out["frequency_holdout"] = held["size"]
    out["holdout_cents"] = held["sum"]
    out["monetary_value_holdout"] = (held["sum"] / 100 / held["size"]).where(held["size"] > 0, 0.0)
    out["duration_holdout_days"] = (observation_end - calibration_end).days
    out["calibration_end_date"] = calibration_end
    out["observation_end_date"] = observation_end
    return out.sort_index()


def _summary_table(settings: Settings) -> pd.DataFrame:
    with connect(settings, read_only=True) as con:
        frame = con.execute("select * from marts.customer_purchase_summary").df()
    frame = frame.set_index("customer_id").sort_index()
    for column in CENT_COLUMNS:  # decimal(18, 2) -> exact integer cents
        frame[column.replace("revenue", "cents")] = [int(Decimal(str(v)) * 100) for v in frame[column]]
    for column in DATE_COLUMNS:
        frame[column] = pd.to_datetime(frame[column])
    return frame


@pytest.fixture(scope="module")
def cdnow_summaries(tmp_path_factory):
    """One load, one build of the summary's lineage, one rebuild of the summary with the 39-week split."""
    if not CDNOW.is_file():
        pytest.skip(f"shared data set not found at {CDNOW} (expected the repo cloned next to shared/)")
    settings = Settings(home=tmp_path_factory.mktemp("cdnow_clv") / "home", consent_policy="collected_under_consent")
    landing = settings.landing_dir / "cdnow"
    landing.mkdir(parents=True)
    shutil.copy(MAPPING, landing / "_mapping.yml")
    shutil.copy(CDNOW, landing / CDNOW.name)
    load_landing(settings)
    # tests run only where every parent was built; the as-of is derived: one second after the last event
    cautious = ["--indirect-selection", "cautious"]
    run_dbt(["build", "--select", "+customer_purchase_summary", *cautious], settings)
    whole = _summary_table(settings)
    run_dbt(["build", "--select", "customer_purchase_summary", *cautious], settings,
            extra_vars={"segflow__clv_calibration_end": CALIBRATION_END})
    split = _summary_table(settings)
    return _read_raw(CDNOW), whole, split


def _assert_same_summary(model: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(model.index) == list(expected.index)  # the same customers
    for column in INTEGER_COLUMNS + FLOAT_COLUMNS + DATE_COLUMNS + ["repeat_cents", "holdout_cents"]:
        different = model[column].to_numpy() != expected[column].to_numpy()
        assert not different.any(), (column, model.loc[different, column].head(), expected.loc[different, column].head())


def test_whole_period_summary_equals_the_btyd_convention(cdnow_summaries):
    raw, whole, _ = cdnow_summaries
    expected = _btyd_reference(raw, OBSERVATION_END, OBSERVATION_END)
    _assert_same_summary(whole, expected)
    # the totals the docstring traces to the lifetimes check
    assert len(whole) == raw["customer_id"].nunique() == 23_570
    assert (whole["frequency"].sum(), whole["recency_days"].sum(), whole["t_days"].sum()) == (
        44_021, 3_178_932, 11_834_346)
    assert whole["repeat_cents"].sum() == 171_575_502
    assert (whole["frequency_holdout"] == 0).all() and (whole["duration_holdout_days"] == 0).all()


def test_39_week_calibration_and_holdout_equal_the_btyd_convention(cdnow_summaries):
    raw, _, split = cdnow_summaries
    expected = _btyd_reference(raw, CALIBRATION_END, OBSERVATION_END)
    _assert_same_summary(split, expected)
    assert len(split) == 23_570  # the whole cohort bought in 1997-Q1, inside the calibration weeks
    assert (split["frequency"].sum(), split["recency_days"].sum(), split["t_days"].sum()) == (
        24_337, 1_129_644, 5_399_736)
    assert (split["frequency_holdout"].sum(), split["holdout_cents"].sum()) == (19_684, 77_696_113)
    assert set(split["duration_holdout_days"]) == {273} and set(split["t_weeks"] <= 39) == {True}
