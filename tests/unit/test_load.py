"""The verbatim loader: real files in ``tmp_path``, a real DuckDB warehouse, read back with SQL.

Expected values come from the files the tests write (or the generator writes with a config the test
controls), parsed independently with ``csv`` / ``json`` / ``pyarrow``.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import shutil
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from segflow.errors import InputError
from segflow.jobs.load import (
    META_COLUMNS,
    discover,
    ensure_schema,
    load_file,
    load_landing,
    partition_date,
)
from segflow.settings import Settings
from segflow.sources.generator import CUSTOMER_COLUMNS, EVENT_COLUMNS, GeneratorConfig, generate
from segflow.warehouse import connect


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(home=tmp_path / "home")


def _events_dir(settings: Settings) -> Path:
    folder = settings.landing_dir / "events"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _query(settings: Settings, sql: str, params: list | None = None) -> list[tuple]:
    with connect(settings, read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def _raw_columns(settings: Settings, source: str = "events") -> dict[str, str]:
    return dict(_query(settings, "select column_name, data_type from information_schema.columns "
                                 "where table_schema = 'raw' and table_name = ? order by ordinal_position",
                       [source]))


def _generate(settings: Settings, **overrides):
    cfg = GeneratorConfig(**{"customers": 60, "days": 14, **overrides})
    return generate(cfg, settings.landing_dir, settings.truth_dir)


# -- partition_date / discover ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("events_2025-09-03.csv", date(2025, 9, 3)),
        ("customers_2024-02-29.jsonl.gz", date(2024, 2, 29)),
        ("2025-01-31-export.parquet", date(2025, 1, 31)),
        ("events.csv", None),
        ("events_2025-13-01.csv", None),  # looks like a date, is not one
        ("events_2025-02-30.csv", None),
    ],
)
def test_partition_date(name, expected):
    assert partition_date(Path("landing/events") / name) == expected


def test_discover_orders_by_partition_and_skips_hidden_and_later(tmp_path):
    landing = tmp_path / "landing"
    for rel in ("events/events_2025-09-02.csv", "events/events_2025-09-01.csv", "customers/customers_2025-09-02.csv",
                "events/undated.csv", "events/.hidden_2025-09-01.csv", "events/events_2025-09-03.csv",
                "other/events_2025-09-01.csv"):
        (landing / rel).parent.mkdir(parents=True, exist_ok=True)
        (landing / rel).write_text("a\n1\n")
    (landing / "events" / "subdir_2025-09-01").mkdir()

    found = [(source, p.name) for source, p in discover(landing)]
    assert found == [
        ("events", "undated.csv"),  # no date: sorts first, never filtered by `until`
        ("events", "events_2025-09-01.csv"),
        ("customers", "customers_2025-09-02.csv"),
        ("events", "events_2025-09-02.csv"),
        ("events", "events_2025-09-03.csv"),
    ]
    until = [(s, p.name) for s, p in discover(landing, until=date(2025, 9, 2))]
    assert until == [("events", "undated.csv"), ("events", "events_2025-09-01.csv")]


def test_missing_landing_dir_is_a_helpful_input_error(settings):
    with pytest.raises(InputError) as info:
        load_landing(settings)
    message = str(info.value)
    assert str(settings.landing_dir) in message
    assert "landing/events/" in message and "segflow generate" in message
    assert not settings.warehouse_path.exists(), "nothing should be created for a failed load"


# -- verbatim loading of each format ------------------------------------------------------------------


def _file_rows(path: Path, columns: tuple[str, ...]) -> list[list[str | None]]:
    """The file's rows as the loader must store them: text, absent/empty fields as NULL."""
    if path.suffix == ".csv":
        with open(path, newline="") as fh:
            return [[r[c] or None for c in columns] for r in csv.DictReader(fh)]
    if path.suffix == ".jsonl":
        return [[json.loads(line).get(c) for c in columns] for line in path.read_text().splitlines()]
    return [[r[c] for c in columns] for r in pq.read_table(path).to_pylist()]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_each_format_loads_verbatim(settings, fmt):
    report = _generate(settings, format=fmt, broken_line_share=0.0, malformed_share=0.02)
    result = load_landing(settings)

    assert result.count("loaded") == report.files and result.count("rejected") == 0
    assert result.rows_rejected == 0
    assert result.rows_loaded == report.events_delivered + report.customers

    for source, columns in (("events", EVENT_COLUMNS), ("customers", CUSTOMER_COLUMNS)):
        types = _raw_columns(settings, source)
        assert list(types)[:3] == list(META_COLUMNS)
        # jsonl rows are sparse: columns appear in first-seen order there, in file order otherwise
        if fmt == "jsonl":
            assert sorted(list(types)[3:]) == sorted(columns)
        else:
            assert list(types)[3:] == list(columns)
        assert {types[c] for c in columns} == {"VARCHAR"}
        for path in sorted((settings.landing_dir / source).glob(f"*.{fmt}")):
            expected = _file_rows(path, columns)
            names = ", ".join(columns)
            stored = _query(settings, f"select {names} from raw.{source} where _source_file = ? "
                                      "order by _source_row", [path.name])
            assert [list(r) for r in stored] == expected, path.name
    # the malformed rows are kept as delivered too (validation is dbt's job)
    bad_ts = _query(settings, "select count(*) from raw.events where occurred_at in "
                              "('yesterday', '2025-13-45T25:61:00Z', '1700000000000')")[0][0]
    assert bad_ts == report.malformed.get("invalid_timestamp", 0)


def test_manifest_balances_every_file(settings):
    report = _generate(settings, broken_line_share=0.02)
    result = load_landing(settings)
    manifest = _query(settings, "select file_name, source, rows_in_file, rows_loaded, rows_rejected, file_format, "
                                "partition_date from meta.load_manifest order by file_name")
    assert len(manifest) == report.files
    for name, source, rows_in, loaded, rejected, fmt, day in manifest:
        assert rows_in == loaded + rejected
        lines = (settings.landing_dir / source / name).read_text().splitlines()
        assert rows_in == len(lines) - 1  # every data line is accounted for
        assert loaded == _query(settings, f"select count(*) from raw.{source} where _source_file = ?", [name])[0][0]
        assert rejected == _query(settings, "select count(*) from meta.load_rejects where file_name = ?",
                                  [name])[0][0]
        assert fmt == "csv" and day == partition_date(Path(name))
    assert sum(r[4] for r in manifest) == report.broken_lines == result.rows_rejected > 0
    # the broken lines are the truncated ones: too few columns, with their text kept
    rejects = _query(settings, "select reason, raw_line from meta.load_rejects")
    assert all("MISSING COLUMNS" in reason for reason, _ in rejects)
    assert all(len(next(csv.reader([line]))) < len(EVENT_COLUMNS) for _, line in rejects)


# -- broken lines -------------------------------------------------------------------------------------------


def test_broken_csv_lines_are_rejected_with_line_number_and_reason(settings):
    lines = ["event_id,event_type,price", "e1,page_view,1.50", "e2,page_view", "e3,page_view,2,extra",
             "e4,purchase,007", '"e5, quoted",page_view,', "e6"]
    (_events_dir(settings) / "events_2025-01-01.csv").write_text("\n".join(lines) + "\n")

    result = load_landing(settings)
    (f,) = result.files
    assert (f.status, f.rows_in_file, f.rows_loaded, f.rows_rejected) == ("loaded", 6, 3, 3)
    assert _query(settings, "select event_id, event_type, price from raw.events order by _source_row") == [
        ("e1", "page_view", "1.50"), ("e4", "purchase", "007"), ("e5, quoted", "page_view", None)]
    rejects = _query(settings, "select line_number, reason, raw_line, file_name, source from meta.load_rejects "
                               "order by line_number")
    # line numbers count the header as line 1, like an editor does
    assert [(r[0], r[2]) for r in rejects] == [(3, "e2,page_view"), (4, "e3,page_view,2,extra"), (7, "e6")]
    assert "MISSING COLUMNS" in rejects[0][1] and "TOO MANY COLUMNS" in rejects[1][1]
    assert all(r[1].startswith("unparseable CSV line") for r in rejects)
    assert all(r[3:] == ("events_2025-01-01.csv", "events") for r in rejects)


def test_invalid_json_lines_are_rejected_with_line_number_and_reason(settings):
    lines = ['{"event_id": "e1", "price": "1.50"}', '{"event_id": "e2", "price": ', "",
             '["not", "an", "object"]', '{"event_id": "e3", "user_id": null}', "not json at all"]
    (_events_dir(settings) / "events_2025-01-01.jsonl").write_text("\n".join(lines) + "\n")

    (f,) = load_landing(settings).files
    assert (f.status, f.rows_in_file, f.rows_loaded, f.rows_rejected) == ("loaded", 5, 2, 3)
    assert _query(settings, "select event_id, price, user_id from raw.events order by _source_row") == [
        ("e1", "1.50", None), ("e3", None, None)]
    rejects = _query(settings, "select line_number, reason, raw_line from meta.load_rejects order by line_number")
    assert [(r[0], r[2]) for r in rejects] == [(2, lines[1]), (4, lines[3]), (6, lines[5])]
    assert rejects[0][1].startswith("invalid JSON") and rejects[2][1].startswith("invalid JSON")
    assert rejects[1][1] == "JSON line is not an object"


# -- idempotence ------------------------------------------------------------------------------------------


def test_loading_twice_skips_every_file(settings):
    _generate(settings)
    first = load_landing(settings)
    count = _query(settings, "select count(*) from raw.events")[0][0]
    manifest = _query(settings, "select count(*) from meta.load_manifest")[0][0]

    second = load_landing(settings)
    assert first.count("loaded") == len(first.files) > 0
    assert [f.status for f in second.files] == ["skipped"] * len(first.files)
    assert all(f.reason == "already loaded (same checksum)" for f in second.files)
    assert second.rows_loaded == 0 and second.as_dict()["files_skipped"] == len(first.files)
    assert _query(settings, "select count(*) from raw.events")[0][0] == count
    assert _query(settings, "select count(*) from meta.load_manifest")[0][0] == manifest


def test_same_bytes_under_another_name_are_skipped(settings):
    events = _events_dir(settings)
    (events / "events_2025-01-01.csv").write_text("event_id,event_type\ne1,page_view\ne2,purchase\n")
    load_landing(settings)
    shutil.copy(events / "events_2025-01-01.csv", events / "events_2025-01-01_redelivered.csv")
    customers = settings.landing_dir / "customers"
    customers.mkdir()
    shutil.copy(events / "events_2025-01-01.csv", customers / "customers_2025-01-01.csv")

    result = load_landing(settings)
    assert {f.file: f.status for f in result.files} == {
        "events_2025-01-01.csv": "skipped", "events_2025-01-01_redelivered.csv": "skipped",
        "customers_2025-01-01.csv": "skipped"}
    assert _query(settings, "select count(*) from raw.events")[0][0] == 2
    assert _query(settings, "select count(*) from information_schema.tables where table_schema = 'raw' "
                            "and table_name = 'customers'")[0][0] == 0


# -- schema evolution --------------------------------------------------------------------------------------


def test_extra_column_is_added_and_older_rows_stay_null(settings):
    events = _events_dir(settings)
    (events / "events_2025-01-01.csv").write_text("event_id,price\ne1,1.00\ne2,2.00\n")
    (events / "events_2025-01-02.csv").write_text("event_id,coupon_code,price\ne3,SAVE10,3.00\n")
    (events / "events_2025-01-03.jsonl").write_text('{"event_id": "e4"}\n')

    result = load_landing(settings)
    assert [f.status for f in result.files] == ["loaded"] * 3
    assert list(_raw_columns(settings)) == [*META_COLUMNS, "event_id", "price", "coupon_code"]
    assert _query(settings, "select event_id, price, coupon_code from raw.events order by event_id") == [
        ("e1", "1.00", None), ("e2", "2.00", None), ("e3", "3.00", "SAVE10"), ("e4", None, None)]


# -- whole-file rejects ------------------------------------------------------------------------------------


def test_unsupported_extension_is_rejected_and_recorded(settings):
    events = _events_dir(settings)
    (events / "events_2025-01-01.txt").write_text("event_id\ne1\n")
    (events / "events_2025-01-02.csv").write_text("event_id\ne2\n")

    result = load_landing(settings)
    status = {f.file: f for f in result.files}
    rejected = status["events_2025-01-01.txt"]
    assert rejected.status == "rejected"
    assert "unsupported file type .txt" in rejected.reason
    assert all(ext in rejected.reason for ext in (".csv", ".jsonl", ".parquet"))
    assert status["events_2025-01-02.csv"].status == "loaded"
    assert _query(settings, "select file_name, source, reason from meta.file_rejects") == [
        ("events_2025-01-01.txt", "events", rejected.reason)]
    assert _query(settings, "select file_name from meta.load_manifest") == [("events_2025-01-02.csv",)]
    assert _query(settings, "select event_id from raw.events") == [("e2",)]
    # it is retried (and recorded again) on the next load; the good file is skipped
    again = load_landing(settings)
    assert {f.file: f.status for f in again.files} == {"events_2025-01-01.txt": "rejected",
                                                        "events_2025-01-02.csv": "skipped"}
    assert _query(settings, "select count(*) from meta.file_rejects")[0][0] == 2


@pytest.mark.parametrize("bad_header", ["event id", "price-usd", "1st_column", "_load_id"])
def test_non_identifier_header_rejects_the_whole_file(settings, bad_header):
    events = _events_dir(settings)
    (events / "events_2025-01-01.csv").write_text("event_id,price\ne1,1.00\n")
    # a new valid column first: it must not survive the rejected file either
    (events / "events_2025-01-02.csv").write_text(f"event_id,fresh_column,{bad_header}\ne2,x,y\ne3,z\n")

    result = load_landing(settings)
    good, bad = result.files
    assert good.status == "loaded"
    assert bad.status == "rejected" and bad.rows_loaded == 0
    assert repr(bad_header) in bad.reason and "not valid identifiers or are reserved" in bad.reason
    assert _query(settings, "select event_id from raw.events") == [("e1",)]
    assert "fresh_column" not in _raw_columns(settings)
    assert _query(settings, "select file_name from meta.load_manifest") == [("events_2025-01-01.csv",)]
    assert _query(settings, "select count(*) from meta.load_rejects")[0][0] == 0
    assert _query(settings, "select file_name from meta.file_rejects") == [("events_2025-01-02.csv",)]


def test_failed_file_rolls_back_raw_rows_rejects_and_new_columns(settings):
    """A failure at the last step (manifest insert) undoes everything the file wrote before it."""
    events = _events_dir(settings)
    path = events / "events_2025-01-01.csv"
    path.write_text("event_id,brand_new\ne1,x\ne2\n")  # one good row, one broken line
    checksum = hashlib.sha256(path.read_bytes()).hexdigest()
    with connect(settings) as con:
        ensure_schema(con)
        con.execute("create table raw.events (_load_id varchar not null, _source_file varchar not null, "
                    "_source_row bigint not null, event_id varchar)")
        # a manifest row that takes this file's load id under another checksum: the final insert fails
        con.execute("insert into meta.load_manifest values (?, 'events', 'other.csv', 'other.csv', 'x', 'csv', "
                    "null, 0, 0, 0, now())", [f"events:{checksum[:16]}"])
        result = load_file(con, "events", path)
        assert result.status == "rejected"
        assert result.reason.startswith("file not loaded:")
        assert con.execute("select count(*) from raw.events").fetchone()[0] == 0
        assert con.execute("select count(*) from meta.load_rejects").fetchone()[0] == 0
        columns = [c for (c,) in con.execute("select column_name from (describe raw.events)").fetchall()]
        assert "brand_new" not in columns
        assert con.execute("select file_name from meta.load_manifest").fetchall() == [("other.csv",)]
        # the connection is usable afterwards (no transaction left open)
        con.execute("delete from meta.load_manifest")
        retry = load_file(con, "events", path)
    assert (retry.status, retry.rows_loaded, retry.rows_rejected) == ("loaded", 1, 1)


# -- until / gzip ------------------------------------------------------------------------------------------


def test_until_loads_only_partitions_strictly_before(settings):
    report = _generate(settings)
    cut = date(2025, 9, 5)
    first = load_landing(settings, until=cut)
    expected = {p.name for p in settings.landing_dir.rglob("*") if p.is_file() and partition_date(p) < cut}
    assert {f.file for f in first.files} == expected
    assert {partition_date(Path(name)) for name in expected} == {date(2025, 9, d) for d in range(1, 5)}
    assert all(f.status == "loaded" for f in first.files)
    assert _query(settings, "select max(partition_date) from meta.load_manifest")[0][0] == date(2025, 9, 4)

    rest = load_landing(settings)
    assert rest.count("loaded") == report.files - len(first.files) > 0
    assert all(f.status == "skipped" for f in rest.files if partition_date(Path(f.file)) < cut)
    assert first.rows_loaded + rest.rows_loaded + first.rows_rejected + rest.rows_rejected == (
        report.events_delivered + report.customers)


@pytest.mark.parametrize("suffix", [".csv.gz", ".jsonl.gz"])
def test_gzipped_files_load(settings, suffix):
    if suffix == ".csv.gz":
        text = "event_id,price\ne1,0.10\ne2,12\nbroken\n"
    else:
        text = '{"event_id": "e1", "price": "0.10"}\n{"event_id": "e2", "price": "12"}\n{broken\n'
    with gzip.open(_events_dir(settings) / f"events_2025-01-01{suffix}", "wt") as fh:
        fh.write(text)
    (f,) = load_landing(settings).files
    assert (f.status, f.rows_loaded, f.rows_rejected) == ("loaded", 2, 1)
    assert _query(settings, "select event_id, price from raw.events order by _source_row") == [
        ("e1", "0.10"), ("e2", "12")]
    assert _query(settings, "select file_format, rows_in_file from meta.load_manifest") == [
        (suffix.split(".")[1], 3)]


# -- regressions: defects found by these tests and fixed --


def test_empty_csv_adds_no_column(settings):
    events = _events_dir(settings)
    (events / "events_2025-01-01.csv").write_text("event_id\ne1\n")
    (events / "events_2025-01-02.csv").write_bytes(b"")
    load_landing(settings)
    assert list(_raw_columns(settings)) == [*META_COLUMNS, "event_id"]


def test_jsonl_with_only_invalid_lines_keeps_them_as_rejects(settings):
    (_events_dir(settings) / "events_2025-01-01.jsonl").write_text('{"event_id": \nnot json\n')
    (f,) = load_landing(settings).files
    assert (f.status, f.rows_in_file, f.rows_rejected) == ("loaded", 2, 2)
    assert _query(settings, "select line_number from meta.load_rejects order by 1") == [(1,), (2,)]


def test_header_case_variant_of_existing_column_loads(settings):
    events = _events_dir(settings)
    (events / "events_2025-01-01.csv").write_text("event_id,price\ne1,1.00\n")
    (events / "events_2025-01-02.csv").write_text("event_id,Price\ne2,2.00\n")
    result = load_landing(settings)
    assert [f.status for f in result.files] == ["loaded", "loaded"]
    assert _query(settings, "select event_id, price from raw.events order by event_id") == [
        ("e1", "1.00"), ("e2", "2.00")]
