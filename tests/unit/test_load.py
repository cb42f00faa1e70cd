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

from segflow.errors import InputError, LoadFailed
from segflow.jobs.load import (
    META_COLUMNS,
    Delivery,
    canonical_mapping,
    discover,
    ensure_schema,
    load_file,
    load_landing,
    partition_date,
)
from segflow.settings import Settings
from segflow.sources import canonical
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


# the smallest canonical event header: id, type, time and an identity
HEADER = "event_id,event_type,occurred_at,user_id"
ROW = "page_view,2025-01-01T10:00:00Z,u1"


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


def test_discover_orders_by_partition_and_reports_unusable_folders(tmp_path):
    landing = tmp_path / "landing"
    for rel in ("events/events_2025-09-02.csv", "events/events_2025-09-01.csv", "customers/customers_2025-09-02.csv",
                "events/undated.csv", "events/.hidden_2025-09-01.csv", "events/events_2025-09-03.csv",
                "other/events_2025-09-01.csv", "shop/orders_2025-09-01.csv", "shop/_mapping.yml",
                ".trash/events_2025-09-01.csv"):
        (landing / rel).parent.mkdir(parents=True, exist_ok=True)
        (landing / rel).write_text("a\n1\n")
    (landing / "shop" / "_mapping.yml").write_text(
        "name: shop\nstream: orders\ncolumns: {order_id: a, event_type: {value: purchase}, occurred_at: a, "
        "user_id: a}\nevent_id: {hash: [a]}\n")
    (landing / "events" / "subdir_2025-09-01").mkdir()

    found, unusable = discover(landing)
    assert [(d.source, d.path.name) for d in found] == [
        ("events", "undated.csv"),  # no date: sorts first, never filtered by `until`
        ("events", "events_2025-09-01.csv"),
        ("shop", "orders_2025-09-01.csv"),
        ("customers", "customers_2025-09-02.csv"),
        ("events", "events_2025-09-02.csv"),
        ("events", "events_2025-09-03.csv"),
    ]
    assert {d.source: d.mapping.stream for d in found} == {"events": "events", "shop": "orders",
                                                          "customers": "customers"}
    # every other entry has a status and a reason (nothing disappears silently)
    assert sorted((e.source, e.path.name, e.status) for e in unusable) == [
        ("", ".trash", "ignored"),
        ("events", ".hidden_2025-09-01.csv", "ignored"),
        ("events", "subdir_2025-09-01", "ignored"),
        ("other", "events_2025-09-01.csv", "ignored"),
        ("shop", "_mapping.yml", "mapping"),
    ]
    other = next(e for e in unusable if e.source == "other")
    assert "neither a canonical stream" in other.reason and "_mapping.yml" in other.reason
    assert all(e.reason for e in unusable)
    until, _ = discover(landing, until=date(2025, 9, 2))
    assert [(d.source, d.path.name) for d in until] == [
        ("events", "undated.csv"), ("events", "events_2025-09-01.csv"), ("shop", "orders_2025-09-01.csv")]


def test_invalid_folder_mapping_rejects_its_files_with_the_reason(settings):
    folder = settings.landing_dir / "shop"
    folder.mkdir(parents=True)
    (folder / "_mapping.yml").write_text("name: shop\nstream: orders\ncolumns: {order_no: InvoiceNo}\n")
    (folder / "orders_2025-01-01.csv").write_text("InvoiceNo\n1\n")
    (f,) = load_landing(settings).files
    assert f.status == "rejected"
    assert "columns" in f.reason and "order_no" in f.reason and "not canonical columns" in f.reason
    assert _query(settings, "select entry_name, source, status from meta.landing_entries order by 1") == [
        ("_mapping.yml", "shop", "mapping"), ("orders_2025-01-01.csv", "shop", "rejected")]


def test_missing_landing_dir_is_a_helpful_input_error(settings):
    with pytest.raises(InputError) as info:
        load_landing(settings)
    message = str(info.value)
    assert str(settings.landing_dir) in message
    assert "landing/<stream>/" in message and "_mapping.yml" in message and "segflow generate" in message
    assert not settings.warehouse_path.exists(), "nothing should be created for a failed load"


# -- loading each format ------------------------------------------------------------------------------------


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
        # every raw table has the meta columns, every canonical column of its stream (text), then the columns a
        # PII purge keeps pseudonyms in
        assert list(types) == [*META_COLUMNS, *canonical.columns(source), *canonical.pseudonym_columns(source)]
        assert {types[c] for c in canonical.columns(source)} == {"VARCHAR"}
        assert set(columns) <= set(canonical.columns(source))
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
                                "partition_date, load_seq from meta.load_manifest order by load_seq")
    assert len(manifest) == report.files
    assert [r[7] for r in manifest] == list(range(1, report.files + 1))  # delivery order, no gaps
    for name, source, rows_in, loaded, rejected, fmt, day, _ in manifest:
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
    lines = [f"{HEADER},price", f"e1,{ROW},1.50", f"e2,{ROW}", f"e3,{ROW},2,extra",
             f"e4,{ROW},007", f'"e5, quoted",{ROW},', "e6"]
    (_events_dir(settings) / "events_2025-01-01.csv").write_text("\n".join(lines) + "\n")

    result = load_landing(settings)
    (f,) = result.files
    assert (f.status, f.rows_in_file, f.rows_loaded, f.rows_rejected) == ("loaded", 6, 3, 3)
    assert _query(settings, "select event_id, event_type, price from raw.events order by _source_row") == [
        ("e1", "page_view", "1.50"), ("e4", "page_view", "007"), ("e5, quoted", "page_view", None)]
    rejects = _query(settings, "select line_number, reason, raw_line, file_name, source from meta.load_rejects "
                               "order by line_number")
    # line numbers count the header as line 1, like an editor does
    assert [(r[0], r[2]) for r in rejects] == [(3, f"e2,{ROW}"), (4, f"e3,{ROW},2,extra"), (7, "e6")]
    assert "MISSING COLUMNS" in rejects[0][1] and "TOO MANY COLUMNS" in rejects[1][1]
    assert all(r[1].startswith("unparseable CSV line") for r in rejects)
    assert all(r[3:] == ("events_2025-01-01.csv", "events") for r in rejects)


def test_invalid_json_lines_are_rejected_with_line_number_and_reason(settings):
    base = '"event_type": "page_view", "occurred_at": "2025-01-01T10:00:00Z", "user_id": "u1"'
    lines = ['{"event_id": "e1", "price": 1.50, ' + base + "}", '{"event_id": "e2", "price": ', "",
             '["not", "an", "object"]', '{"event_id": "e3", "anonymous_id": null, ' + base + "}",
             "not json at all"]
    (_events_dir(settings) / "events_2025-01-01.jsonl").write_text("\n".join(lines) + "\n")

    (f,) = load_landing(settings).files
    assert (f.status, f.rows_in_file, f.rows_loaded, f.rows_rejected) == ("loaded", 5, 2, 3)
    # a JSON number keeps its text exactly ("1.50", not 1.5)
    assert _query(settings, "select event_id, price, anonymous_id from raw.events order by _source_row") == [
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


def test_a_known_unchanged_file_is_not_read_again_and_a_rewritten_one_is(settings, monkeypatch):
    _generate(settings)
    load_landing(settings)
    import segflow.jobs.load as load_module

    hashed = []
    real = load_module.file_checksum
    monkeypatch.setattr(load_module, "file_checksum", lambda path: hashed.append(path.name) or real(path))
    second = load_landing(settings)
    assert hashed == [] and {f.status for f in second.files} == {"skipped"}

    # a file rewritten with other content (new size and modification time) is read, hashed and loaded
    target = sorted((settings.landing_dir / "events").glob("*.csv"))[0]
    lines = target.read_text().splitlines(keepends=True)
    target.write_text("".join(lines[:-1]))
    third = load_landing(settings)
    assert hashed == [target.name]
    assert [f.status for f in third.files if f.file == target.name] == ["loaded"]


def test_same_bytes_under_another_name_are_skipped(settings):
    events = _events_dir(settings)
    (events / "events_2025-01-01.csv").write_text(f"{HEADER}\ne1,{ROW}\ne2,{ROW}\n")
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
    assert _query(settings, "select count(*) from raw.customers")[0][0] == 0


# -- the canonical schema ----------------------------------------------------------------------------------


def test_columns_outside_the_canonical_schema_are_not_stored_and_are_listed(settings):
    events = _events_dir(settings)
    (events / "events_2025-01-01.csv").write_text(f"{HEADER},price\ne1,{ROW},1.00\ne2,{ROW},2.00\n")
    (events / "events_2025-01-02.csv").write_text(f"{HEADER},coupon_code,ssn,price\ne3,{ROW},SAVE10,123,3.00\n")

    result = load_landing(settings)
    assert [f.status for f in result.files] == ["loaded"] * 2
    assert [f.columns_dropped for f in result.files] == [[], ["coupon_code", "ssn"]]
    assert list(_raw_columns(settings)) == [*META_COLUMNS, *canonical.EVENT_COLUMNS, *canonical.pseudonym_columns("events")]
    assert _query(settings, "select event_id, price from raw.events order by event_id") == [
        ("e1", "1.00"), ("e2", "2.00"), ("e3", "3.00")]
    assert _query(settings, "select columns_dropped from meta.load_manifest order by load_seq") == [
        (None,), ("coupon_code, ssn",)]


def test_a_raw_table_created_before_a_canonical_column_existed_gets_it_appended(settings):
    """A warehouse loaded before device_type joined the canonical schema: the next load adds the column (null
    for the old rows) and stores the new files' values."""
    (_events_dir(settings) / "events_2025-01-01.csv").write_text(f"{HEADER}\ne1,{ROW}\n")
    load_landing(settings)
    with connect(settings) as con:
        con.execute("alter table raw.events drop column device_type")
    assert "device_type" not in _raw_columns(settings)

    (_events_dir(settings) / "events_2025-01-02.csv").write_text(f"{HEADER},device_type\ne2,{ROW},Phone\n")
    assert [f.status for f in load_landing(settings).files] == ["skipped", "loaded"]
    assert _raw_columns(settings)["device_type"] == "VARCHAR"
    assert _query(settings, "select event_id, device_type from raw.events order by event_id") == [
        ("e1", None), ("e2", "Phone")]


@pytest.mark.parametrize("missing", ["event_id", "occurred_at", "user_id"])
def test_a_file_without_a_required_canonical_column_is_refused_with_advice(settings, missing):
    header = ",".join(c for c in HEADER.split(",") if c != missing)
    (_events_dir(settings) / "events_2025-01-01.csv").write_text(f"{header}\nx,y,z\n")
    (f,) = load_landing(settings).files
    assert f.status == "rejected" and f.rows_loaded == 0
    expected = "user_id or anonymous_id or email" if missing == "user_id" else missing
    assert f"has no column {expected} of segflow's canonical 'events' schema" in f.reason
    assert "--mapping" in f.reason
    assert _query(settings, "select count(*) from raw.events")[0][0] == 0
    assert _query(settings, "select count(*) from meta.load_manifest")[0][0] == 0


def test_a_file_lacking_optional_columns_loads_and_they_stay_null(settings):
    (_events_dir(settings) / "events_2025-01-01.csv").write_text(f"{HEADER}\ne1,{ROW}\n")
    (f,) = load_landing(settings).files
    assert f.status == "loaded"
    row = _query(settings, "select * from raw.events")[0]
    stored = dict(zip(_raw_columns(settings), row, strict=True))
    assert {k for k, v in stored.items() if v is not None} == {*META_COLUMNS, *HEADER.split(",")}


# -- whole-file rejects ------------------------------------------------------------------------------------


def test_unsupported_extension_is_rejected_and_recorded(settings):
    events = _events_dir(settings)
    (events / "events_2025-01-01.txt").write_text(f"{HEADER}\ne1,{ROW}\n")
    (events / "events_2025-01-02.csv").write_text(f"{HEADER}\ne2,{ROW}\n")

    result = load_landing(settings)
    status = {f.file: f for f in result.files}
    rejected = status["events_2025-01-01.txt"]
    assert rejected.status == "rejected"
    assert "unsupported file type .txt" in rejected.reason
    assert all(ext in rejected.reason for ext in (".csv", ".jsonl", ".parquet"))
    assert status["events_2025-01-02.csv"].status == "loaded"
    assert _query(settings, "select entry_name, source, status, reason from meta.landing_entries order by 1") == [
        ("events_2025-01-01.txt", "events", "rejected", rejected.reason),
        ("events_2025-01-02.csv", "events", "loaded", None)]
    assert _query(settings, "select file_name from meta.load_manifest") == [("events_2025-01-02.csv",)]
    assert _query(settings, "select event_id from raw.events") == [("e2",)]
    # it is retried on the next load and stays recorded once; the good file is skipped
    again = load_landing(settings)
    assert {f.file: f.status for f in again.files} == {"events_2025-01-01.txt": "rejected",
                                                        "events_2025-01-02.csv": "skipped"}
    assert _query(settings, "select entry_name, status from meta.landing_entries order by 1") == [
        ("events_2025-01-01.txt", "rejected"), ("events_2025-01-02.csv", "skipped")]


def test_failed_file_rolls_back_raw_rows_and_rejects(settings):
    """A failure at the last step (manifest insert) undoes everything the file wrote before it."""
    events = _events_dir(settings)
    path = events / "events_2025-01-01.csv"
    path.write_text(f"{HEADER}\ne1,{ROW}\ne2\n")  # one good row, one broken line
    checksum = hashlib.sha256(path.read_bytes()).hexdigest()
    delivery = Delivery("events", path, canonical_mapping("events"))
    with connect(settings) as con:
        ensure_schema(con)
        # a manifest row that takes this file's load id under another checksum: the final insert fails
        con.execute("insert into meta.load_manifest (load_id, load_seq, source, stream, file_name, file_path, "
                    "checksum, file_format, rows_in_file, rows_loaded, rows_rejected, loaded_at) values "
                    "(?, 1, 'events', 'events', 'other.csv', 'other.csv', 'x', 'csv', 0, 0, 0, now())",
                    [f"events:{checksum[:16]}"])
        # not the file's fault: the run stops loudly instead of filing the file as bad
        with pytest.raises(LoadFailed, match="not the file's content"):
            load_file(con, delivery)
        assert con.execute("select count(*) from raw.events").fetchone()[0] == 0
        assert con.execute("select count(*) from meta.load_rejects").fetchone()[0] == 0
        assert con.execute("select count(*) from meta.load_outputs").fetchone()[0] == 0
        assert con.execute("select file_name from meta.load_manifest").fetchall() == [("other.csv",)]
        # the connection is usable afterwards (no transaction left open)
        con.execute("delete from meta.load_manifest")
        retry = load_file(con, delivery)
    assert (retry.status, retry.rows_loaded, retry.rows_rejected) == ("loaded", 1, 1)


# -- until / gzip ------------------------------------------------------------------------------------------


def test_until_loads_only_partitions_strictly_before(settings):
    report = _generate(settings)
    cut = date(2025, 9, 5)
    first = load_landing(settings, until=cut)
    expected = {p.name for p in settings.landing_dir.rglob("*")
                if p.is_file() and partition_date(p) < cut and p.suffix != ".ready"}
    assert {f.file for f in first.files if f.status == "loaded"} == expected
    assert {partition_date(Path(name)) for name in expected} == {date(2025, 9, d) for d in range(1, 5)}
    # the later partitions are listed as deferred, with the reason, and not loaded
    later = [f for f in first.files if f.file not in expected]
    assert later and all(f.status == "deferred" and "not before this run's as-of 2025-09-05" in f.reason
                         for f in later)
    assert _query(settings, "select max(partition_date) from meta.load_manifest")[0][0] == date(2025, 9, 4)

    rest = load_landing(settings)
    assert rest.count("loaded") == report.files - len(expected) > 0
    assert all(f.status == "skipped" for f in rest.files if partition_date(Path(f.file)) < cut)
    assert first.rows_loaded + rest.rows_loaded + first.rows_rejected + rest.rows_rejected == (
        report.events_delivered + report.customers)


@pytest.mark.parametrize("suffix", [".csv.gz", ".jsonl.gz"])
def test_gzipped_files_load(settings, suffix):
    if suffix == ".csv.gz":
        text = f"{HEADER},price\ne1,{ROW},0.10\ne2,{ROW},12\nbroken\n"
    else:
        base = '"event_type": "page_view", "occurred_at": "2025-01-01T10:00:00Z", "user_id": "u1"'
        text = ('{"event_id": "e1", "price": "0.10", ' + base + '}\n{"event_id": "e2", "price": "12", ' + base
                + "}\n{broken\n")
    with gzip.open(_events_dir(settings) / f"events_2025-01-01{suffix}", "wt") as fh:
        fh.write(text)
    (f,) = load_landing(settings).files
    assert (f.status, f.rows_loaded, f.rows_rejected) == ("loaded", 2, 1)
    assert _query(settings, "select event_id, price from raw.events order by _source_row") == [
        ("e1", "0.10"), ("e2", "12")]
    assert _query(settings, "select file_format, rows_in_file from meta.load_manifest") == [
        (suffix.split(".")[1], 3)]


# -- regressions: defects found by these tests and fixed --


def test_empty_csv_loads_nothing_and_changes_no_table(settings):
    events = _events_dir(settings)
    (events / "events_2025-01-01.csv").write_text(f"{HEADER}\ne1,{ROW}\n")
    (events / "events_2025-01-02.csv").write_bytes(b"")
    result = load_landing(settings)
    assert [(f.status, f.rows_in_file) for f in result.files] == [("loaded", 1), ("loaded", 0)]
    assert list(_raw_columns(settings)) == [*META_COLUMNS, *canonical.EVENT_COLUMNS, *canonical.pseudonym_columns("events")]


def test_jsonl_with_only_invalid_lines_keeps_them_as_rejects(settings):
    (_events_dir(settings) / "events_2025-01-01.jsonl").write_text('{"event_id": \nnot json\n')
    (f,) = load_landing(settings).files
    assert (f.status, f.rows_in_file, f.rows_rejected) == ("loaded", 2, 2)
    assert _query(settings, "select line_number from meta.load_rejects order by 1") == [(1,), (2,)]


def test_header_case_variant_of_a_canonical_column_loads(settings):
    events = _events_dir(settings)
    (events / "events_2025-01-01.csv").write_text(f"{HEADER},price\ne1,{ROW},1.00\n")
    (events / "events_2025-01-02.csv").write_text(f"{HEADER.upper()},Price\ne2,{ROW},2.00\n")
    result = load_landing(settings)
    assert [f.status for f in result.files] == ["loaded", "loaded"]
    assert _query(settings, "select event_id, price from raw.events order by event_id") == [
        ("e1", "1.00"), ("e2", "2.00")]


def test_running_out_of_memory_stops_the_run_instead_of_rejecting_the_file(tmp_path, capsys, monkeypatch):
    """An infrastructure error is not the file's fault: the run stops with one clear line, nothing of that file is
    written, it is not filed as rejected, and a later run with enough memory loads it."""
    from segflow.cli import main

    settings = Settings(home=tmp_path / "home", duckdb_memory_limit="2MB", duckdb_threads=1)
    events = _events_dir(settings)
    (events / "events_2025-01-01.csv").write_text(f"{HEADER}\ne1,{ROW}\ne2,{ROW}\n")
    with pytest.raises(LoadFailed, match="not the file's content.*Out of Memory"):
        load_landing(settings)
    assert _query(settings, "select count(*) from raw.events") == [(0,)]
    assert _query(settings, "select count(*) from meta.load_manifest") == [(0,)]
    assert _query(settings, "select count(*) from meta.landing_entries where status = 'rejected'") == [(0,)]

    monkeypatch.setenv("SEGFLOW_HOME", str(settings.home))
    monkeypatch.setenv("SEGFLOW_DUCKDB_MEMORY_LIMIT", "2MB")
    assert main(["load"]) == 2
    monkeypatch.delenv("SEGFLOW_DUCKDB_MEMORY_LIMIT")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("segflow: error: loading ") and "Traceback" not in err[0]

    assert load_landing(Settings(home=settings.home)).count("loaded") == 1
    assert _query(settings, "select count(*) from raw.events") == [(2,)]
