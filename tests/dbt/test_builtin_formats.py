"""Built-in formats (Segment, GA4 from JSON and Parquet) and an invoice-lines CSV through its shipped mapping:
landing folder -> load -> dbt build -> marts (and the data gate for the invoice feed), with exact accounting.

Expected values come from the fixture files and their READMEs (``tests/fixtures/formats/README.md``,
``tests/fixtures/mappings/README.md``), parsed here independently of segflow; never from the warehouse's own
totals. Each home is loaded and built once; the dbt builds run side by side (each is its own subprocess).
"""

from __future__ import annotations

import csv
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from segflow.errors import GateFailed
from segflow.jobs.build import build, run_dbt
from segflow.jobs.load import load_landing, load_paths
from segflow.jobs.validate import validate
from segflow.settings import Settings
from segflow.sources.mapping import MappingError
from segflow.warehouse import connect

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
FORMATS = ROOT / "tests" / "fixtures" / "formats"
SEGMENT, GA4 = FORMATS / "segment_sample.jsonl", FORMATS / "ga4_sample.jsonl"
INVOICES = ROOT / "tests" / "fixtures" / "mappings" / "invoice_lines_sample.csv"
INVOICE_MAPPING = ROOT / "segflow" / "mappings" / "examples" / "invoice_lines.yml"
STREAMS = ("events", "identities", "customers", "consent")



def q(settings: Settings, sql: str, params: list | None = None) -> list[tuple]:
    with connect(settings, read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def jsonl(path: Path) -> list[dict | None]:
    """Every line parsed (numbers as Decimal), None where the line is not JSON."""
    def parse(line: str) -> dict | None:
        try:
            return json.loads(line, parse_float=Decimal)
        except json.JSONDecodeError:
            return None
    return [parse(line) for line in path.read_text(encoding="utf-8").splitlines()]


def table(readme: Path, width: int) -> list[list[str]]:
    """The cells of every markdown table row of ``readme`` with ``width`` cells."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in readme.read_text().splitlines()]
    return [cells for cells in rows if len(cells) == width]


def readme_counts() -> dict[str, dict]:
    """The 'Expected counts' table of the formats README: {file: {lines, events, ..., bad}}."""
    return {c[0]: {"lines": int(c[1]), **dict(zip(STREAMS, map(int, c[2:6]), strict=True)),
                   "bad": [int(n) for n in c[6].split(",")]}
            for c in table(FORMATS / "README.md", 7) if c[0].endswith(".jsonl")}


def invoice_readme() -> dict[str, dict]:
    """Per-customer rows of the mappings README: {customer: {orders, gross, cancelled, net}}."""
    return {c[0]: {"orders": int(c[1]), "gross": Decimal(c[2]), "cancelled": Decimal(c[3]), "net": Decimal(c[4])}
            for c in table(INVOICES.parent / "README.md", 5) if c[0].isdigit()}


def invoice_rows() -> list[dict[str, str]]:
    with open(INVOICES, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def london_to_utc(text: str) -> datetime:
    local = datetime.strptime(text, "%m/%d/%Y %H:%M").replace(tzinfo=ZoneInfo("Europe/London"))
    return local.astimezone(UTC).replace(tzinfo=None)


def micros(value) -> datetime:
    return datetime(1970, 1, 1) + timedelta(microseconds=int(value))


def _home(root: Path, name: str, folder: str, mapping: str | Path, *files: Path) -> Settings:
    settings = Settings(home=root / name, consent_policy="collected_under_consent", min_events=1, min_customers=2)
    target = settings.landing_dir / folder
    target.mkdir(parents=True)
    (target / "_mapping.yml").write_text(mapping.read_text() if isinstance(mapping, Path) else mapping)
    for path in files:
        shutil.copy(path, target / path.name)
    return settings


@pytest.fixture(scope="module")
def homes(tmp_path_factory) -> dict[str, tuple[Settings, object, Exception | None]]:
    """Four homes loaded, then built in parallel: {name: (settings, load report, build error or None)}."""
    root = tmp_path_factory.mktemp("builtin")
    parquet = root / "ga4_sample.parquet"  # the JSON rows as Parquet (line 10 keeps a null event_timestamp)
    pq.write_table(pa.Table.from_pylist([json.loads(line) for line in GA4.read_text().splitlines()]), parquet)
    settings = {
        "segment": _home(root, "segment", "web", "name: web\nformat: segment\n", SEGMENT),
        "ga4": _home(root, "ga4", "ga4", "name: ga4\nformat: ga4\n", GA4),
        "ga4_parquet": _home(root, "ga4_parquet", "ga4", "name: ga4\nformat: ga4\n", parquet),
        "shop": _home(root, "shop", "shop", INVOICE_MAPPING, INVOICES),
    }
    reports = {name: load_landing(s) for name, s in settings.items()}

    def run(name: str) -> Exception | None:
        if not any(f.status == "loaded" for f in reports[name].files):
            return None  # nothing to build: the tests report the load
        try:
            if name == "ga4_parquet":  # only staging is compared: build it and the load audit
                # cautious: tests that also need a node outside the selection (e.g. a seed's relationships test
                # whose seed is not built) are left out, as dbt advises for building a sub-graph
                run_dbt(["build", "--select", "+fct_load_audit", "--indirect-selection", "cautious"], settings[name])
            else:
                build(settings[name])
        except Exception as exc:  # noqa: BLE001 - reported by the tests of that home
            return exc
        return None

    with ThreadPoolExecutor(max_workers=len(settings)) as pool:
        futures = {name: pool.submit(run, name) for name in settings}
        import great_expectations  # noqa: F401 - its slow first import overlaps the builds
        errors = {name: f.result() for name, f in futures.items()}
    return {name: (settings[name], reports[name], errors[name]) for name in settings}


def built(homes, name: str) -> Settings:
    """The home's settings once its file loaded and its build succeeded."""
    settings, report, error = homes[name]
    (f,) = report.files
    assert f.status == "loaded", f"{f.file} not loaded: {f.reason}"
    if error is not None:
        raise error
    return settings


def assert_load_accounting(settings: Settings, fixture: Path, file_name: str) -> None:
    """Manifest, rejects, per-stream outputs and raw rows equal the README; every audit row balances."""
    expected = readme_counts()[fixture.name]
    lines = fixture.read_text(encoding="utf-8").splitlines()
    assert len(lines) == expected["lines"]
    bad = expected["bad"]
    assert q(settings, "select file_name, rows_in_file, rows_loaded, rows_rejected from meta.load_manifest") == [
        (file_name, len(lines), len(lines) - len(bad), len(bad))]
    rejects = q(settings, "select line_number, reason from meta.load_rejects order by 1")
    assert [line for line, _ in rejects] == bad
    written = dict(q(settings, "select stream, rows_written from meta.load_outputs"))
    assert written == {s: expected[s] for s in STREAMS if expected[s]}
    for stream in STREAMS:
        assert q(settings, f"select count(*) from raw.{stream}") == [(expected[stream],)], stream
    audit = q(settings, "select stream, rows_in_file, rows_rejected_at_load, rows_written, rows_in_raw, rows_staged "
                        "+ rows_quarantined + rows_duplicate, is_balanced from marts.fct_load_audit")
    assert sorted(audit) == sorted((s, len(lines), len(bad), n, n, n, True) for s, n in written.items())


# -- Segment --------------------------------------------------------------------------------------------------


def test_segment_file_is_accounted_for_line_by_line(homes):
    settings = built(homes, "segment")
    assert_load_accounting(settings, SEGMENT, "segment_sample.jsonl")
    lines = SEGMENT.read_text(encoding="utf-8").splitlines()
    rejects = q(settings, "select line_number, reason, raw_line from meta.load_rejects order by 1")
    assert rejects[0][0] == 8 and rejects[0][1].startswith("invalid JSON") and rejects[0][2] == lines[7]
    assert rejects[1] == (17, "Segment message has no 'type'", lines[16])
    # events: 21 rows = 20 distinct ids + line 16 repeating msg-013; nothing in the sample is invalid
    assert q(settings, "select rows_written, rows_staged, rows_quarantined, rows_duplicate from marts.fct_load_audit "
                       "where stream = 'events'") == [(21, 20, 0, 1)]
    assert q(settings, "select _source_row, event_id from staging.stg_raw__events_duplicates") == [(16, "msg-013")]
    assert q(settings, "select count(*) from staging.stg_raw__events_quarantine") == [(0,)]


def test_segment_late_identification_and_alias(homes):
    settings = built(homes, "segment")
    stitched = dict(q(settings, "select event_id, customer_id from intermediate.int_events_stitched "
                                "where event_id in ('msg-001', 'msg-002', 'msg-003', 'msg-004') and is_stitched"))
    # lines 1-4 are anonymous (anon-a1 only); the identify on line 5 links anon-a1 to cust-1 afterwards
    assert stitched == dict.fromkeys(("msg-001", "msg-002", "msg-003", "msg-004"), "cust-1")
    assert q(settings, "select customer_id from intermediate.int_identity_graph where identifier = 'legacy-4711'") \
        == [("cust-1",)]
    assert q(settings, "select customer_id, person_key from intermediate.int_events_stitched "
                       "where event_id = 'msg-023'") == [(None, "anon:anon-c3")]


def test_segment_returns_and_cancellations_reduce_revenue(homes):
    settings = built(homes, "segment")
    rows = jsonl(SEGMENT)
    gross = sum(p["price"] * int(p["quantity"]) for p in rows[6]["properties"]["products"])  # line 7, ORD-1001
    refunded = -rows[8]["properties"]["total"]  # line 9: total -29.90 (= SKU-200 2 x 14.95)
    assert refunded == sum(p["price"] * int(p["quantity"]) for p in rows[8]["properties"]["products"])
    ord_2001, cancelled = rows[18]["properties"]["revenue"], rows[19]["properties"]["total"]  # 42.50 / 47.40
    orders = {r[0]: r[1:] for r in q(settings, "select order_id, customer_id, revenue, reversed_revenue, "
                                               "net_revenue from marts.fct_orders")}
    assert orders == {"ORD-1001": ("cust-1", gross, refunded, gross - refunded),
                      # the cancellation's total includes 4.90 the purchase's revenue did not: net goes below 0
                      "ORD-2001": ("cust-2", ord_2001, cancelled, ord_2001 - cancelled)}
    assert (gross, refunded, ord_2001 - cancelled) == (Decimal("149.80"), Decimal("29.90"), Decimal("-4.90"))
    monetary = dict(q(settings, "select customer_id, monetary from marts.customer_features"))
    assert monetary == {"cust-1": pytest.approx(float(gross - refunded)), "cust-2": 0.0}  # clamped at 0


# -- GA4 ------------------------------------------------------------------------------------------------------


def test_ga4_file_is_accounted_for_line_by_line(homes):
    settings = built(homes, "ga4")
    assert_load_accounting(settings, GA4, "ga4_sample.jsonl")
    assert q(settings, "select line_number, reason from meta.load_rejects") == [(10, "GA4 row has no 'event_timestamp'")]
    assert q(settings, "select rows_written, rows_staged, rows_quarantined, rows_duplicate from marts.fct_load_audit "
                       "where stream = 'events'") == [(20, 19, 0, 1)]
    assert q(settings, "select _source_row from staging.stg_raw__events_duplicates") == [(9,)]  # repeats line 2


def test_ga4_pseudo_ids_stitch_to_user_ids(homes):
    settings = built(homes, "ga4")
    rows = [r for r in jsonl(GA4) if r and r.get("event_timestamp") is not None]
    for device in {r["user_pseudo_id"] for r in rows}:
        users = {r["user_id"] for r in rows if r["user_pseudo_id"] == device and r["user_id"]}
        anonymous = {micros(r["event_timestamp"]) for r in rows if r["user_pseudo_id"] == device and not r["user_id"]}
        got = q(settings, "select occurred_at, customer_id, is_stitched from intermediate.int_events_stitched "
                          "where anonymous_id = ?", [device])
        got_anonymous = {t: (c, s) for t, c, s in got if t in anonymous}
        assert set(got_anonymous) == anonymous, device
        # a device seen with one user belongs to it; the never-identified web user stays anonymous
        assert set(got_anonymous.values()) == {(users.pop(), True) if users else (None, False)}, device
    login = min(micros(r["event_timestamp"]) for r in rows if r["user_id"] == "C-1001")  # line 5
    # lines 1-4 and 19 (line 9 repeats line 2): the web user's anonymous events before it logs in
    assert q(settings, "select count(*) from intermediate.int_events_stitched where customer_id = 'C-1001' "
                       "and is_stitched and occurred_at < ?", [login]) == [(5,)]


def test_ga4_refund_reduces_net_revenue(homes):
    settings = built(homes, "ga4")
    rows = jsonl(GA4)
    gross = sum(item["item_revenue"] for item in rows[6]["items"])  # line 7, T-5001: 89.9 + 29.9
    refunded = sum(item["item_refund"] for item in rows[7]["items"])  # line 8: 29.9
    t6001, t6001_refund = rows[14]["ecommerce"]["purchase_revenue"], rows[15]["ecommerce"]["refund_value"]
    in_app = next(p["value"]["double_value"] for p in rows[13]["event_params"] if p["key"] == "value")
    orders = {r[0]: r[1:] for r in q(settings, "select order_id, customer_id, revenue, reversed_revenue, net_revenue "
                                               "from marts.fct_orders where order_id like 'T-%'")}
    assert orders == {"T-5001": ("C-1001", gross, refunded, gross - refunded),
                      "T-6001": ("C-2002", t6001, t6001_refund, t6001 - t6001_refund)}
    assert (gross - refunded, t6001 - t6001_refund) == (Decimal("89.9"), 0)
    monetary = dict(q(settings, "select customer_id, monetary from marts.customer_features"))
    assert monetary == {"C-1001": pytest.approx(float(gross - refunded)),
                        "C-2002": pytest.approx(float(in_app + t6001 - t6001_refund))}
    assert q(settings, "select returned_at from marts.fct_returns where original_order_id = 'T-5001'") == [
        (datetime(2021, 1, 31, 23, 59, 59, 123456),)]  # README: 1612137599123456


def test_ga4_parquet_stages_the_same_events_as_json(homes):
    from_json, from_parquet = built(homes, "ga4"), built(homes, "ga4_parquet")
    assert_load_accounting(from_parquet, GA4, "ga4_sample.parquet")  # line 10 is rejected from Parquet too
    events = "select event_id, event_type, occurred_at from staging.stg_raw__events"
    assert set(q(from_parquet, events)) == set(q(from_json, events))
    assert len(q(from_parquet, events)) == 19
    others = ("select _source_row, event_id from staging.stg_raw__events_duplicates union all "
              "select _source_row, quarantine_reason from staging.stg_raw__events_quarantine")
    assert q(from_parquet, others) == q(from_json, others)


# -- invoice lines (CSV + shipped mapping) --------------------------------------------------------------------


def test_invoice_lines_accounting(homes):
    settings = built(homes, "shop")
    rows = invoice_rows()
    duplicate = [i for i, r in enumerate(rows, 1) if r in rows[:i - 1]]
    no_customer = [i for i, r in enumerate(rows, 1) if not r["CustomerID"].strip()]
    assert (len(rows), duplicate, no_customer) == (30, [19], [18])
    assert q(settings, "select rows_in_file, rows_loaded, rows_rejected from meta.load_manifest") == [(30, 30, 0)]
    assert q(settings, "select count(*) from raw.orders") == [(30,)]
    assert q(settings, "select stream, rows_written, rows_in_raw, rows_staged, rows_quarantined, rows_duplicate, "
                       "is_balanced from marts.fct_load_audit") == [("orders", 30, 30, 28, 1, 1, True)]
    assert q(settings, "select _source_row, quarantine_reason from staging.stg_raw__events_quarantine") == [
        (18, "missing_identity")]
    assert q(settings, "select _source_row from staging.stg_raw__events_duplicates") == [(19,)]
    assert dict(q(settings, "select event_type, count(*) from staging.stg_raw__events group by 1")) == {
        "purchase": 26, "cancellation": 2}


def test_invoice_lines_revenue_per_customer(homes):
    settings = built(homes, "shop")
    expected = invoice_readme()
    # the README's numbers, recomputed from the CSV (dedup exact rows, skip the row without a customer)
    rows, recomputed = invoice_rows(), {}
    for row in (dict(zip(rows[0], v, strict=True)) for v in dict.fromkeys(tuple(r.values()) for r in rows)):
        c = recomputed.setdefault(row["CustomerID"], {"orders": set(), "gross": 0, "cancelled": 0})
        kind = "cancelled" if row["InvoiceNo"].startswith("C") else "gross"
        c[kind] += abs(int(row["Quantity"]) * Decimal(row["UnitPrice"]))
        c["orders"] |= {row["InvoiceNo"]} if kind == "gross" else set()
    assert {k: {"orders": len(v["orders"]), "gross": v["gross"], "cancelled": v["cancelled"],
                "net": v["gross"] - v["cancelled"]} for k, v in recomputed.items() if k} == expected
    orders = q(settings, "select customer_id, count(*), sum(revenue), sum(reversed_revenue), sum(net_revenue) "
                         "from marts.fct_orders group by 1")
    assert {c: (n, g, r, net) for c, n, g, r, net in orders} == {
        c: (e["orders"], e["gross"], 0, e["gross"]) for c, e in expected.items()}  # no original order id here
    returns = q(settings, "select customer_id, sum(returned_revenue), count(*) filter (where original_order_id "
                          "is null) from marts.fct_returns group by 1")
    assert {c: (r, n) for c, r, n in returns} == {c: (e["cancelled"], 1) for c, e in expected.items() if e["cancelled"]}
    monetary = dict(q(settings, "select customer_id, monetary from marts.customer_features"))
    assert monetary == {c: pytest.approx(float(e["net"])) for c, e in expected.items()}
    assert sum(e["gross"] for e in expected.values()) == Decimal("11673.45")
    assert sum(e["net"] for e in expected.values()) == Decimal("11648.83")


def test_invoice_lines_london_time_becomes_utc(homes):
    settings = built(homes, "shop")
    rows = invoice_rows()
    staged = q(settings, "select _source_row, occurred_at from staging.stg_raw__events")
    assert len(staged) == 28
    assert {n: t for n, t in staged} == {n: london_to_utc(rows[n - 1]["InvoiceDate"]) for n, _ in staged}
    # GMT: 12/6/2010 8:26 stays 08:26; BST: 7/1/2011 10:00 is 09:00 UTC
    assert (dict(staged)[1], dict(staged)[30]) == (datetime(2010, 12, 6, 8, 26), datetime(2011, 7, 1, 9, 0))
    assert q(settings, "select as_of from intermediate.int_run_context") == [(datetime(2011, 7, 1, 9, 0, 1),)]


def test_invoice_lines_gate_needs_a_wholesale_quantity_limit(homes):
    settings = built(homes, "shop")
    assert max(abs(int(r["Quantity"])) for r in invoice_rows()) == 12000 > settings.dq_max_quantity
    with pytest.raises(GateFailed, match=r"staged_events.*on quantity \(1 unexpected rows\)"):
        validate(settings)
    result = validate(settings.model_copy(update={"dq_max_quantity": 20000}))
    assert result.success and {"staged_events", "customer_features"} <= set(result.suites)
    assert all(s["success"] for s in result.suites.values())


# -- a mapping that does not fit fails before writing -------------------------------------------------------------


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: m["columns"].update(price="Price"), "column 'Price' is not in the file"),
    (lambda m: m["columns"]["occurred_at"].update(timestamp_format="%Y-%m-%d %H:%M:%S"),
     "occurred_at matches no row (first offending row 1: '12/6/2010 8:26')"),
], ids=["missing_column", "timestamp_format_matches_no_row"])
def test_bad_mapping_fails_before_writing(tmp_path, change, message):
    mapping = yaml.safe_load(INVOICE_MAPPING.read_text())
    change(mapping)
    mapping_file = tmp_path / "bad_mapping.yml"
    mapping_file.write_text(yaml.safe_dump(mapping))
    csv_file = Path(shutil.copy(INVOICES, tmp_path / INVOICES.name))
    settings = Settings(home=tmp_path / "home")
    with pytest.raises(MappingError) as excinfo:
        load_paths([csv_file], mapping_file, settings)
    assert message in str(excinfo.value)
    assert q(settings, "select count(*) from raw.orders") == [(0,)]
    assert q(settings, "select count(*) from meta.load_manifest where file_name = ?", [csv_file.name]) == [(0,)]
    assert q(settings, "select count(*) from meta.load_outputs") == [(0,)]
    assert q(settings, "select entry_name, status from meta.landing_entries") == [(csv_file.name, "rejected")]
