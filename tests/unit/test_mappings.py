"""Mapping files: validation, the expression language, timestamps, derived ids, and `segflow mapping`.

Each test writes a small export and a mapping into tmp_path, runs the real loader (DuckDB) or the check
command, and reads back what was stored. Expected values are written out by hand from the input rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from segflow.cli import main
from segflow.jobs.load import load_landing, load_paths
from segflow.settings import Settings
from segflow.sources.mapping import MappingError, json_schema, load_mapping
from segflow.sources.mapping_sql import compile_select
from segflow.warehouse import connect

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "segflow" / "mappings").rglob("*.yml"))


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(home=tmp_path / "home")


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _rows(settings: Settings, sql: str) -> list[tuple]:
    with connect(settings, read_only=True) as con:
        return con.execute(sql).fetchall()


ORDERS_MAPPING = """\
name: shop
stream: orders
format: csv
timezone: Europe/London
columns:
  event_type: {expr: "if(starts_with(Invoice, 'C'), 'cancellation', 'purchase')"}
  occurred_at: {column: Date, timestamp_format: "%m/%d/%Y %H:%M"}
  order_id: Invoice
  product_id: Sku
  quantity: Qty
  price: Price
  revenue: {expr: "abs(Qty) * Price"}
  user_id: {expr: "coalesce(Customer, concat('guest-', Invoice))"}
  channel: {value: store}
  currency: {value: gbp, value_map: {gbp: GBP}}
  payment_method: {column: Paid, boolean: true}
event_id: {hash: [Invoice, Sku, Qty, Date, Price, Customer]}
"""
ORDERS_CSV = """\
Invoice,Sku,Qty,Date,Price,Customer,Paid,Notes
536365,A1,6,12/1/2010 8:26,2.55,17850,yes,first
536365,B2,2,12/1/2010 8:26,3.39,17850,YES,second
C536379,A1,-1,12/1/2010 9:41,2.55,17850,0,refund
536400,A1,1,7/1/2011 10:00,2.55,,no,summer guest
536365,A1,6,12/1/2010 8:26,2.55,17850,yes,first
"""


def test_a_mapping_renames_computes_and_converts(settings, tmp_path):
    mapping = _write(tmp_path / "shop.yml", ORDERS_MAPPING)
    data = _write(tmp_path / "orders.csv", ORDERS_CSV)
    (f,) = load_paths([data], mapping, settings).files
    assert (f.status, f.rows_in_file, f.rows_loaded, f.streams) == ("loaded", 5, 5, {"orders": 5})
    assert f.columns_dropped == ["Notes"]  # read by no column: not stored, listed
    rows = _rows(settings, "select event_type, occurred_at, order_id, quantity, price, revenue, user_id, channel, "
                           "currency, payment_method, event_id from raw.orders order by _source_row")
    assert [r[:10] for r in rows] == [
        ("purchase", "2010-12-01T08:26:00.000000Z", "536365", "6", "2.55", "15.3", "17850", "store", "GBP", "true"),
        ("purchase", "2010-12-01T08:26:00.000000Z", "536365", "2", "3.39", "6.78", "17850", "store", "GBP", "true"),
        ("cancellation", "2010-12-01T09:41:00.000000Z", "C536379", "-1", "2.55", "2.55", "17850", "store", "GBP",
         "false"),
        # London summer time is UTC+1: 10:00 local is 09:00 UTC
        ("purchase", "2011-07-01T09:00:00.000000Z", "536400", "1", "2.55", "2.55", "guest-536400", "store", "GBP",
         "false"),
        ("purchase", "2010-12-01T08:26:00.000000Z", "536365", "6", "2.55", "15.3", "17850", "store", "GBP", "true"),
    ]
    ids = [r[10] for r in rows]
    # a content hash: the exact duplicate (rows 1 and 5) collapses, everything else stays distinct
    assert ids[0] == ids[4] and len(set(ids)) == 4
    assert all(i.startswith("shop:") and len(i) == len("shop:") + 32 for i in ids)
    assert _rows(settings, "select mapping_name, stream, file_format from meta.load_manifest") == [
        ("shop", "orders", "csv")]


def test_a_landing_folder_mapping_is_used_by_scheduled_loads(settings):
    folder = settings.landing_dir / "shop"
    _write(folder / "_mapping.yml", ORDERS_MAPPING)
    _write(folder / "orders_2010-12-01.csv", ORDERS_CSV)
    _write(folder / "notes.md", "not data")
    _write(folder / "_README.txt", "underscore files are configuration, never loaded")
    result = load_landing(settings)
    assert [(f.source, f.file, f.status) for f in result.files] == [
        ("shop", "_README.txt", "ignored"), ("shop", "notes.md", "rejected"), ("shop", "orders_2010-12-01.csv", "loaded")]
    assert [(f.file, f.status) for f in result.config] == [("_mapping.yml", "mapping")]
    assert _rows(settings, "select count(*) from raw.orders") == [(5,)]


@pytest.mark.parametrize(("change", "expected"), [
    (("order_id: Invoice", "order_id: InvoiceNo"), "column 'InvoiceNo' is not in the file"),
    (("abs(Qty) * Price", "abs(Qty) * UnitPrice"), "column 'UnitPrice' is not in the file"),
    (('timestamp_format: "%m/%d/%Y %H:%M"', 'timestamp_format: "%Y-%m-%d %H:%M:%S"'),
     "occurred_at matches no row (first offending row 1: '12/1/2010 8:26')"),
    (("coalesce(Customer", "lookup(Customer"), "function 'lookup' is not supported"),
])
def test_a_mapping_that_does_not_fit_fails_before_writing(settings, tmp_path, change, expected):
    mapping = _write(tmp_path / "shop.yml", ORDERS_MAPPING.replace(*change))
    data = _write(tmp_path / "orders.csv", ORDERS_CSV)
    with pytest.raises(MappingError) as err:
        load_paths([data], mapping, settings)
    assert expected in str(err.value)
    assert _rows(settings, "select count(*) from raw.orders") == [(0,)]
    assert _rows(settings, "select count(*) from meta.load_manifest") == [(0,)]
    assert _rows(settings, "select count(*) from meta.load_rejects") == [(0,)]


@pytest.mark.parametrize(("text", "expected"), [
    ("name: x\nstream: orders\ncolumns: {order_no: a}\n", "['order_no'] are not canonical columns of stream 'orders'"),
    ("name: x\nstream: events\ncolumns: {event_type: a, occurred_at: b, user_id: c}\n",
     "stream 'events' needs ['event_id']"),
    ("name: x\nstream: events\ncolumns: {event_id: a, event_type: a, occurred_at: b}\n",
     "needs one of ['user_id', 'anonymous_id', 'email'] mapped"),
    ("name: x\nformat: segment\ncolumns: {event_id: a}\n", "format 'segment' is built in"),
    ("name: x\nstream: events\ncolumns: {event_id: {column: a, value: b}}\n", "give exactly one of column, value"),
    ("name: x\nstream: nowhere\n", "stream: Input should be"),
    ("name: [unclosed\n", "not valid YAML"),
    ("- just\n- a list\n", "a mapping file is a YAML object"),
])
def test_invalid_mapping_files_name_the_field(tmp_path, text, expected):
    with pytest.raises(MappingError) as err:
        load_mapping(_write(tmp_path / "bad.yml", text))
    assert expected in str(err.value)
    assert "bad.yml" in str(err.value)


@pytest.mark.parametrize(("expr", "values", "expected"), [
    ("quantity * unit_price", {"quantity": "3", "unit_price": "2.10"}, "6.3"),
    ("quantity * unit_price", {"quantity": "3", "unit_price": "n/a"}, None),
    ("(a - b) / 4", {"a": "10", "b": "2"}, "2"),
    ("a / b", {"a": "1", "b": "0"}, None),
    ("concat(a, '-', b)", {"a": "x", "b": "y"}, "x-y"),
    ("coalesce(a, b, 'none')", {"a": None, "b": None}, "none"),
    ("if(a == 'view', 'product_view', lower(a))", {"a": "CART", "b": ""}, "cart"),
    ("if(a > 100 and not starts_with(b, 'x'), 'big', 'small')", {"a": "150", "b": "yy"}, "big"),
    ("if(a > 100 or ends_with(b, 'x'), 'big', 'small')", {"a": "50", "b": "yy"}, "small"),
    ("upper(trim(a))", {"a": "  gb "}, "GB"),
    ("replace(a, ',', '.')", {"a": "12,50"}, "12.50"),
    ("substr(a, 1, 4)", {"a": "20250102"}, "2025"),
    ("nullif(a, '-')", {"a": "-"}, None),
    ("col('Customer ID')", {"Customer ID": "C9"}, "C9"),
    ("props.revenue", {"props": json.dumps({"revenue": "9.90"})}, "9.90"),
])
def test_expression_language(expr, values, expected):
    con = duckdb.connect()
    columns = list(values)
    con.execute("create table _incoming as select " + ", ".join(
        f"cast(? as varchar) as \"{c}\"" for c in columns) + ", 1 as _source_row", list(values.values()))
    from segflow.sources.mapping import Mapping

    mapping = Mapping.model_validate({"name": "t", "stream": "customers",
                                      "columns": {"customer_id": {"expr": expr}}})
    sql = compile_select(mapping, columns)
    assert con.execute(f"select customer_id from ({sql})").fetchone()[0] == expected
    con.close()


def test_whitespace_text_files_and_epoch_timestamps(settings, tmp_path):
    mapping = _write(tmp_path / "m.yml", """\
name: ticks
stream: support_tickets
format: text
csv: {delimiter: whitespace}
columns:
  event_id: id
  event_type: {value: support_ticket}
  occurred_at: {column: at, timestamp_format: epoch_millis}
  user_id: who
""")
    data = _write(tmp_path / "tickets.txt", "  id   at             who\n  t1   1700000000123  u1\n t2 oops u2\n"
                                            "t3 1700000000000\n")
    (f,) = load_paths([data], mapping, settings).files
    assert (f.rows_in_file, f.rows_loaded, f.rows_rejected) == (3, 2, 1)
    assert _rows(settings, "select event_id, occurred_at, user_id from raw.support_tickets order by 1") == [
        ("t1", "2023-11-14T22:13:20.123000Z", "u1"),
        ("t2", "oops", "u2"),  # unparseable: kept as delivered, staging quarantines it as invalid_timestamp
    ]
    # t3 has a missing field: rejected at load with its line number
    assert _rows(settings, "select line_number, reason from meta.load_rejects") == [
        (4, "expected 3 fields, found 2")]


def test_include_row_number_keeps_identical_rows_apart(settings, tmp_path):
    mapping = _write(tmp_path / "m.yml", ORDERS_MAPPING.replace(
        "event_id: {hash: [Invoice, Sku, Qty, Date, Price, Customer]}",
        "event_id: {hash: [Invoice, Sku, Qty, Date, Price, Customer], include_row_number: true}"))
    data = _write(tmp_path / "orders.csv", ORDERS_CSV)
    load_paths([data], mapping, settings)
    assert _rows(settings, "select count(distinct event_id) from raw.orders") == [(5,)]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_mappings_are_valid(path):
    mapping = load_mapping(path)
    assert mapping.name and mapping.stream
    assert "$schema=" in path.read_text().splitlines()[0]


def test_the_committed_json_schema_is_current():
    committed = json.loads((ROOT / "docs" / "mapping.schema.json").read_text())
    assert committed == json_schema()
    assert set(committed["properties"]) >= {"name", "stream", "format", "columns", "event_id", "timezone"}


def test_cli_mapping_check_prints_canonical_rows_and_findings(tmp_path, capsys):
    mapping = _write(tmp_path / "shop.yml", ORDERS_MAPPING)
    data = _write(tmp_path / "orders.csv", ORDERS_CSV.replace("12/1/2010 9:41", "31/31/2010 9:41"))
    assert main(["mapping", "check", str(mapping), str(data), "--rows", "2"]) == 0
    out = capsys.readouterr().out
    assert "mapping shop -> stream orders: 5 rows of orders.csv checked" in out
    assert "row 1: event_id=shop:" in out and "occurred_at=2010-12-01T08:26:00.000000Z" in out
    assert "\n  row 3:" not in out  # --rows 2
    assert "not used (not stored): Notes" in out
    assert "1 of the sampled rows: occurred_at does not parse as a timestamp (first: row 3" in out


def test_cli_mapping_check_and_load_errors_are_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SEGFLOW_HOME", str(tmp_path / "home"))
    mapping = _write(tmp_path / "shop.yml", ORDERS_MAPPING.replace("order_id: Invoice", "order_id: InvoiceNo"))
    data = _write(tmp_path / "orders.csv", ORDERS_CSV)
    for argv in (["mapping", "check", str(mapping), str(data)], ["load", str(data), "--mapping", str(mapping)]):
        assert main(argv) == 2
        # `load` shows its step line (progress) first; the error itself is one line, the last
        *progress, error = capsys.readouterr().err.splitlines()
        assert error.startswith("segflow: error:") and "column 'InvoiceNo' is not in the file" in error
        assert all(not line.startswith("segflow") and "Traceback" not in line for line in progress), progress
        assert len(progress) <= (1 if argv[0] == "load" else 0), progress


def test_cli_mapping_schema_and_list(tmp_path, capsys):
    assert main(["mapping", "schema", "--output", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text()) == json_schema()
    capsys.readouterr()
    assert main(["mapping", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [Path(line).name for line in out if not line.startswith(" ")] == [p.name for p in SHIPPED]
    assert any(line.startswith("    cdnow -> stream orders (text): CDNOW purchase log") for line in out)


def test_load_help_explains_the_feature_with_an_example(capsys):
    assert main(["load", "--help"]) == 0
    text = capsys.readouterr().out
    for needle in ("landing/<source>/", "_mapping.yml", "--mapping", "format: segment", "timestamp_format",
                   "event_id: {hash:", "segflow mapping check"):
        assert needle in text


def test_the_timestamp_rule_is_one_expression_in_python_and_dbt():
    from segflow.sources.canonical import ISO_TIMESTAMP_PATTERN

    macros = (ROOT / "dbt_project" / "macros" / "segflow_utils.sql").read_text()
    body = macros.split("{% macro iso_timestamp_pattern() -%}")[1].split("{%- endmacro %}")[0]
    assert body.strip() == ISO_TIMESTAMP_PATTERN.strip()
    con = duckdb.connect()
    from segflow.sources.mapping_sql import parses

    for text, ok in (("2025-01-02T03:04:05.123456Z", True), ("2019-10-01 00:00:00 UTC", True),
                     ("2025-01-02", True), ("2025-01-02T03:04:05+02:00", True), ("yesterday", False),
                     ("infinity", False), ("1700000000000", False), ("2025-13-45T25:61:00Z", False)):
        assert con.execute(f"select {parses('$v')}", {"v": text}).fetchone()[0] is ok, text
    con.close()


def test_replace_reloads_a_file_after_a_mapping_fix(settings, tmp_path):
    data = _write(tmp_path / "orders.csv", ORDERS_CSV)
    wrong = _write(tmp_path / "wrong.yml", ORDERS_MAPPING.replace("product_id: Sku", "product_id: Invoice"))
    load_paths([data], wrong, settings)
    assert _rows(settings, "select distinct product_id from raw.orders order by 1")[0] == ("536365",)
    fixed = _write(tmp_path / "shop.yml", ORDERS_MAPPING)
    (skipped,) = load_paths([data], fixed, settings).files
    assert skipped.status == "skipped"  # same bytes: not loaded twice by accident
    (again,) = load_paths([data], fixed, settings, replace=True).files
    assert (again.status, again.rows_loaded) == ("loaded", 5)
    assert _rows(settings, "select distinct product_id from raw.orders order by 1") == [("A1",), ("B2",)]
    assert _rows(settings, "select count(*), count(distinct load_id) from meta.load_manifest") == [(1, 1)]
    assert _rows(settings, "select count(*) from raw.orders") == [(5,)]


@pytest.mark.parametrize(("change", "expected"), [
    (("if(starts_with(Invoice, 'C')", "if(Invoice = 'C'"), "columns.event_type: expression"),
    (("if(starts_with(Invoice, 'C')", "if(Invoice = 'C'"), "compare with ==, not ="),
    (("coalesce(Customer", "coalesce(Customerr"), "columns.user_id: column 'Customerr' is not in the file"),
])
def test_expression_errors_name_the_mapping_column_and_the_fix(settings, tmp_path, change, expected):
    mapping = _write(tmp_path / "shop.yml", ORDERS_MAPPING.replace(*change))
    with pytest.raises(MappingError) as err:
        load_paths([_write(tmp_path / "orders.csv", ORDERS_CSV)], mapping, settings)
    assert expected in str(err.value)


def test_null_is_a_constant():
    from segflow.sources.mapping import Mapping

    mapping = Mapping.model_validate({"name": "t", "stream": "customers",
                                      "columns": {"customer_id": {"expr": "coalesce(a, null, NULL, None, 'x')"}}})
    con = duckdb.connect()
    con.execute("create table _incoming as select cast(null as varchar) as a, 1 as _source_row")
    assert con.execute(f"select customer_id from ({compile_select(mapping, ['a'])})").fetchone()[0] == "x"
    con.close()


def test_time_zones_are_checked(tmp_path):
    with pytest.raises(MappingError) as err:
        load_mapping(_write(tmp_path / "tz.yml", ORDERS_MAPPING.replace("Europe/London", "Europe/Londn")))
    assert "timezone: 'Europe/Londn' is not an IANA time zone" in str(err.value)
    assert "Value error" not in str(err.value)


def test_mapping_check_flags_decimal_commas_and_an_email_only_export_is_valid(tmp_path, capsys):
    mapping = _write(tmp_path / "m.yml", """\
name: eshop
stream: orders
format: csv
csv: {delimiter: ";"}
columns:
  event_id: Nr
  event_type: {value: purchase}
  occurred_at: {column: Datum, timestamp_format: "%d.%m.%Y %H:%M"}
  price: Preis
  quantity: Menge
  email: Mail
""")
    data = _write(tmp_path / "e.csv", "Nr;Datum;Preis;Menge;Mail\n1;31.12.2024 14:05;19,90;1;a@x.de\n"
                                      "2;01.01.2025 09:00;5.00;2;b@x.de\n")
    assert main(["mapping", "check", str(mapping), str(data)]) == 0
    out = capsys.readouterr().out
    assert "1 of the sampled rows: price is not a number (e.g. a decimal comma: use replace(price, ',', '.'))" in out
    assert "(first: row 1: " in out
    assert "no user_id, anonymous_id or email" not in out  # the e-mail identifies the customer
