"""The matching rules behind erasure and consent redaction, on hand-made values, files and raw rows."""

from __future__ import annotations

import csv
import json
import re

import duckdb
import pandas as pd
import pytest
from tests_support import TEST_PII_KEY

from segflow.ddl import ensure_schema
from segflow.erasure import (
    REDACTED,
    ErasureKeyMismatch,
    digest,
    distinctive,
    filter_erased,
    key_id,
    redact_files,
    redact_text,
    token_regex,
)
from segflow.settings import Settings

PERSON = ["C000041", "a-44f782d50a842e8b", "jane.doe@example.com"]
TEXTS = {
    "C000041,page_view": True,
    "C0000410,page_view": False,  # a longer id
    "XC000041": False,
    "anon:a-44f782d50a842e8b": True,  # the person key of a stitched device
    "a-44f782d50a842e8bb": False,
    "mail to Jane.Doe@Example.com now": True,  # case-insensitive
    "john.jane.doe@example.com": False,
    '"C000041"': True,
    "": False,
}


@pytest.mark.parametrize("text, expected", TEXTS.items())
def test_token_pattern_matches_whole_identifiers_the_same_in_duckdb_and_python(text, expected):
    regex = token_regex(PERSON)
    assert bool(re.search(regex, text, re.IGNORECASE)) is expected
    assert duckdb.sql("select regexp_matches(?, ?, 'i')", params=[text, regex]).fetchall()[0][0] is expected


def test_adjacent_identifiers_are_all_replaced():
    pattern = re.compile(token_regex(PERSON), re.IGNORECASE)
    text, count = redact_text("C000041,C000041,a-44f782d50a842e8b;C0000410", pattern)
    assert (text, count) == (f"{REDACTED},{REDACTED},{REDACTED};C0000410", 3)


def test_short_numbers_are_not_searched_in_free_text():
    assert not distinctive("1234") and not distinctive("123456789")
    assert distinctive("C00041") and distinctive("1234567890") and distinctive("a@b.de")


def _write_csv(path, rows):
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)


def test_exports_lose_exactly_the_rows_that_name_the_person(tmp_path):
    exports = tmp_path / "exports"
    (exports / "segments").mkdir(parents=True)
    _write_csv(exports / "segments" / "s.csv", [["customer_id", "segment_id"], ["12", "S1"], ["123", "S1"],
                                                ["C000041 ", "S2"], ["c9", "S2"]])
    (exports / "a.jsonl").write_text('{"id": "12", "x": 1}\n{"id": "x", "n": {"deep": ["12"]}}\n{"id": "7"}\n')
    pd.DataFrame({"customer_id": ["12", "7", "c000041"], "v": [1, 2, 3]}).to_parquet(exports / "p.parquet")
    before = (exports / "segments" / "s.csv").read_text()

    counted = redact_files(exports, ["12", "C000041"], rows=True, apply=False)
    assert (exports / "segments" / "s.csv").read_text() == before  # counting changes nothing
    changes = redact_files(exports, ["12", "C000041"], rows=True)

    assert [c.as_dict() for c in counted] == [c.as_dict() for c in changes]
    assert {c.path: (c.action, c.count) for c in changes} == {
        "exports/a.jsonl": ("rows_removed", 2), "exports/p.parquet": ("rows_removed", 2),
        "exports/segments/s.csv": ("rows_removed", 2)}
    assert list(csv.reader(open(exports / "segments" / "s.csv"))) == [["customer_id", "segment_id"], ["123", "S1"],
                                                                       ["c9", "S2"]]
    assert [json.loads(x) for x in (exports / "a.jsonl").read_text().splitlines()] == [{"id": "7"}]
    assert pd.read_parquet(exports / "p.parquet").to_dict("list") == {"customer_id": ["7"], "v": [2]}


def test_artifacts_have_identifiers_replaced_binaries_deleted_and_symlinks_left(tmp_path):
    artifacts = tmp_path / "artifacts"
    (artifacts / "dbt").mkdir(parents=True)
    (artifacts / "dbt" / "dbt.log").write_text("failed for C000041 and C0000410\n")
    (artifacts / "cache.msgpack").write_bytes(b"\x00\x01C000041\x00")
    (artifacts / "other.bin").write_bytes(b"\x00\x01nothing\x00")
    outside = tmp_path / "outside.txt"
    outside.write_text("C000041")
    (artifacts / "link.txt").symlink_to(outside)

    changes = redact_files(artifacts, ["C000041"], rows=False)

    assert {c.path: (c.action, c.count) for c in changes} == {"artifacts/dbt/dbt.log": ("redacted", 1),
                                                              "artifacts/cache.msgpack": ("deleted", 1)}
    assert (artifacts / "dbt" / "dbt.log").read_text() == f"failed for {REDACTED} and C0000410\n"
    assert not (artifacts / "cache.msgpack").exists() and (artifacts / "other.bin").exists()
    assert outside.read_text() == "C000041"


KEY = TEST_PII_KEY.encode()  # conftest sets SEGFLOW_PII_KEY to it
EVENTS = [  # (row, user_id, anonymous_id, email)
    (1, "U-000001", "D1", None),  # the erased user
    (2, " U-000001 ", None, None),  # the same after trimming, as staging reads it
    (3, None, "D1", None),  # the erased user's device, anonymous
    (4, None, None, "Erased@Example.com"),  # the erased user's address, no user id
    (5, "U-000002", "D1", None),  # someone else on that device: theirs
    (6, "U-000002", None, "erased@example.com"),  # someone else's row with that address: theirs
    (7, None, "D2", None),
]


def _warehouse(key: bytes = KEY):
    con = duckdb.connect()
    ensure_schema(con)
    for (row, user, anon, email) in EVENTS:
        con.execute("insert into raw.events (_load_id, _source_file, _source_row, user_id, anonymous_id, email) "
                    "values ('L1', 'f.csv', ?, ?, ?, ?)", [row, user, anon, email])
    con.executemany("insert into meta.erasure_list values (?, ?, ?, 'er-1', now())", [
        (digest(key, kind, value), kind, key_id(key)) for kind, value in
        (("user_id", "U-000001"), ("anonymous_id", "D1"), ("email", "erased@example.com"))])
    return con


def test_a_redelivered_row_of_an_erased_person_is_dropped_and_counted(tmp_path):
    con = _warehouse()
    rejects = [(9, "bad line", "x,U-000001,broken"), (10, "bad line", "x,U-000002,broken"), (11, "bad line", "1,2")]

    erased, kept = filter_erased(con, "L1", ["events"], rejects, Settings(home=tmp_path))

    assert sorted(r for (r,) in con.execute("select _source_row from raw.events").fetchall()) == [5, 6, 7]
    assert erased == {"events": 4, "load_rejects": 1} and kept == rejects[1:]
    assert sorted(con.execute("select stream, rows_erased from meta.erased_rows").fetchall()) == [
        ("events", 4), ("load_rejects", 1)]


def test_an_erasure_list_keyed_with_another_key_stops_the_load(tmp_path):
    con = _warehouse(key=b"old-key")
    with pytest.raises(ErasureKeyMismatch, match="different PII key"):
        filter_erased(con, "L1", ["events"], [], Settings(home=tmp_path))
    assert con.execute("select count(*) from raw.events").fetchall()[0][0] == len(EVENTS)
