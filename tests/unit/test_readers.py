"""The file readers' whole-file and per-line verdicts on hostile files (fast; the bad-input corpus in
tests/corpus/ checks them end to end through the loader)."""

from __future__ import annotations

import duckdb
import pytest

from segflow.sources.mapping import CsvOptions
from segflow.sources.read_common import FileRejected
from segflow.sources.readers import read_csv, read_jsonl, read_parquet

HEADER = "event_id,event_type,occurred_at,user_id,event_name\n"


@pytest.fixture
def con():
    with duckdb.connect() as connection:
        yield connection


def test_csv_rejects_carry_the_physical_line_after_a_quoted_line_break(con, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text(HEADER + 'e1,page_view,2025-01-10T09:00:00Z,u1,"first\nsecond"\n'
                    "e2,page_view,2025-01-10T09:01:00Z,u1,name,stray\n"
                    "e3,page_view,2025-01-10T09:02:00Z,u1,plain\n")
    rejects = read_csv(con, path, CsvOptions())
    assert [(line, code) for line, code, *_ in rejects] == [(4, "csv_too_many_columns")]
    assert con.execute("select event_id from _incoming order by _source_row").fetchall() == [("e1",), ("e3",)]


def test_a_csv_with_cr_line_endings_reads_its_header_and_rows(con, tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(HEADER.replace("\n", "\r").encode() + b"e1,page_view,2025-01-10T09:00:00Z,u1,n\r")
    assert read_csv(con, path, CsvOptions()) == []
    assert con.execute("select event_id, event_name from _incoming").fetchall() == [("e1", "n")]


@pytest.mark.parametrize(("reader", "name"), [(read_csv, "x.csv"), (read_jsonl, "x.jsonl")])
def test_a_utf16_file_is_rejected_as_a_whole(con, tmp_path, reader, name):
    path = tmp_path / name
    text = HEADER if name.endswith(".csv") else '{"event_id": "e1"}\n'
    path.write_bytes(text.encode("utf-16"))
    with pytest.raises(FileRejected, match="UTF-16"):
        reader(con, path, CsvOptions())


def test_a_latin1_header_is_rejected_but_a_latin1_row_only_rejects_its_line(con, tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b"event_id,r\xe9f\n")
    with pytest.raises(FileRejected, match="not valid UTF-8"):
        read_csv(con, path, CsvOptions())
    path.write_bytes(HEADER.encode() + b"e1,page_view,2025-01-10T09:00:00Z,u1,caf\xe9\n")
    assert [(line, code) for line, code, *_ in read_csv(con, path, CsvOptions())] == [(2, "invalid_utf8")]


def test_parquet_columns_differing_only_in_case_reject_the_file(con, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"event_id": ["a"], "EVENT_ID": ["b"]}), path)
    with pytest.raises(FileRejected, match="twice"):
        read_parquet(con, path)
