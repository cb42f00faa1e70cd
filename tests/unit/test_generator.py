"""The synthetic generator: deterministic, shaped by its config, and honest about what it wrote.

Every test generates real files into ``tmp_path`` with a small config and reads them back with the
standard library / pyarrow; nothing is mocked. Expected numbers are derived from the config (persona
shares, fault kinds) or from the files themselves, never copied from a previous run.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
import tracemalloc
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from segflow.sources import generator_io
from segflow.sources.generator import (
    CUSTOMER_COLUMNS,
    EVENT_COLUMNS,
    MALFORMED_KINDS,
    PERSONA_BY_NAME,
    PERSONAS,
    GeneratorConfig,
    generate,
)

SMALL = {"customers": 60, "days": 14}
VALID_EVENT_TYPES = {
    "page_view", "product_view", "add_to_cart", "remove_from_cart", "checkout", "purchase", "in_app_purchase",
    "app_open", "feature_use", "email_send", "email_open", "email_click", "support_ticket",
}


def _run(root: Path, **overrides):
    cfg = GeneratorConfig(**{**SMALL, **overrides})
    report = generate(cfg, root / "landing", root / "truth")
    return cfg, report


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix != ".ready"  # markers are empty: equal whatever the seed
    }


def _personas(truth_dir: Path) -> list[dict[str, str]]:
    with open(truth_dir / "personas.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _csv_rows(folder: Path) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for path in sorted(folder.glob("*.csv")):
        with open(path, newline="") as fh:
            rows.extend(csv.DictReader(fh))
    return rows


# -- determinism ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_same_config_gives_byte_identical_landing_and_truth(tmp_path, fmt):
    _, first = _run(tmp_path / "a", format=fmt, broken_line_share=0.01)
    _, second = _run(tmp_path / "b", format=fmt, broken_line_share=0.01)
    a, b = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert any(name.startswith("landing/events/") and name.endswith(f".{fmt}") for name in a)
    assert any(name.startswith("truth/") for name in a)
    assert a == b
    assert first.as_dict() | {"landing_dir": "", "truth_dir": ""} == second.as_dict() | {
        "landing_dir": "", "truth_dir": ""}


def test_parquet_flushing_changes_row_groups_not_rows(tmp_path, monkeypatch):
    # tiny buffers force many flushes (by total and by row-group size); the rows of every file stay the same
    _run(tmp_path / "default", format="parquet")
    monkeypatch.setattr(generator_io, "MAX_BUFFERED_ROWS", 300)
    monkeypatch.setattr(generator_io, "ROW_GROUP_ROWS", 40)
    _run(tmp_path / "tiny", format="parquet")
    _run(tmp_path / "tiny_again", format="parquet")
    assert _digests(tmp_path / "tiny") == _digests(tmp_path / "tiny_again")
    default = sorted((tmp_path / "default" / "landing").rglob("*.parquet"))
    tiny = sorted((tmp_path / "tiny" / "landing").rglob("*.parquet"))
    assert [p.relative_to(tmp_path / "default") for p in default] == [
        p.relative_to(tmp_path / "tiny") for p in tiny]
    groups = 0
    for d, t in zip(default, tiny, strict=True):
        assert pq.read_table(d).to_pylist() == pq.read_table(t).to_pylist()
        meta = pq.read_metadata(t)
        assert all(meta.row_group(i).num_rows <= 40 for i in range(meta.num_row_groups))
        groups += meta.num_row_groups
    assert groups > 2 * len(tiny), "expected most day files to be written in several row groups"


def test_peak_memory_does_not_grow_with_the_number_of_customers(tmp_path):
    # customers are streamed to disk one by one: 4x the events must not mean 4x the memory
    peaks, events = [], []
    for customers in (100, 400):
        tracemalloc.start()
        try:
            _, report = _run(tmp_path / str(customers), customers=customers, days=7)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        events.append(report.events_generated)
    assert events[1] > 3 * events[0]
    assert peaks[1] < 1.5 * peaks[0] + 1_000_000


def test_different_seed_gives_different_data(tmp_path):
    _run(tmp_path / "a", seed=1)
    _run(tmp_path / "b", seed=2)
    a, b = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    shared_event_files = [n for n in a if n.startswith("landing/events/") and n in b]
    assert shared_event_files, "both seeds should cover the same days"
    assert all(a[n] != b[n] for n in shared_event_files)
    assert a["truth/personas.csv"] != b["truth/personas.csv"]


# -- personas / truth -------------------------------------------------------------------------------------


@pytest.mark.parametrize("customers", [1, 7, 60, 333])
def test_persona_counts_follow_shares_and_sum_to_customers(tmp_path, customers):
    _, report = _run(tmp_path, customers=customers, days=1)
    counts = Counter(row["persona"] for row in _personas(tmp_path / "truth"))
    assert sum(counts.values()) == customers == report.customers
    total_share = sum(p.share for p in PERSONAS)
    largest = max(PERSONAS, key=lambda p: p.share)
    for persona in PERSONAS:
        exact = persona.share / total_share * customers
        if persona is largest:
            # the rounding remainder (< one customer per persona) goes to the largest persona
            assert math.floor(exact) <= counts[persona.name] < math.floor(exact) + len(PERSONAS)
        else:
            assert counts[persona.name] == math.floor(exact)


def test_persona_subset_is_respected(tmp_path):
    _run(tmp_path, customers=50, days=1, personas=("power_user", "bot"))
    counts = Counter(row["persona"] for row in _personas(tmp_path / "truth"))
    assert set(counts) == {"power_user", "bot"}
    assert sum(counts.values()) == 50
    assert counts["bot"] == math.floor(0.02 / 0.14 * 50)


def test_truth_lists_every_customer_exactly_once(tmp_path):
    cfg, _ = _run(tmp_path)
    truth = _personas(tmp_path / "truth")
    ids = [row["customer_id"] for row in truth]
    assert len(ids) == len(set(ids)) == cfg.customers
    assert set(row["persona"] for row in truth) <= set(PERSONA_BY_NAME)
    assert all(row["is_bot"] == str(row["persona"] == "bot") for row in truth)
    # the customers drop contains the same customers, each once
    delivered = [row["customer_id"] for row in _csv_rows(tmp_path / "landing" / "customers")]
    assert sorted(delivered) == sorted(ids)
    # and the header of every customers file is exactly CUSTOMER_COLUMNS
    for path in (tmp_path / "landing" / "customers").glob("*.csv"):
        assert path.read_text().splitlines()[0] == ",".join(CUSTOMER_COLUMNS)


# -- the report -------------------------------------------------------------------------------------------


def test_generation_report_matches_csv_files(tmp_path):
    cfg, report = _run(tmp_path, broken_line_share=0.01)
    meta = json.loads((tmp_path / "truth" / "generation.json").read_text())
    rep = meta["report"]
    assert rep == {k: v for k, v in report.as_dict().items() if k not in ("landing_dir", "truth_dir")}
    assert meta["config"]["customers"] == cfg.customers and meta["config"]["seed"] == cfg.seed

    event_files = sorted((tmp_path / "landing" / "events").glob("*.csv"))
    customer_files = sorted((tmp_path / "landing" / "customers").glob("*.csv"))
    data_lines = 0
    broken = 0
    for path in event_files:
        lines = path.read_text().splitlines()
        assert lines[0] == ",".join(EVENT_COLUMNS)
        data_lines += len(lines) - 1
        broken += sum(1 for row in csv.reader(lines[1:]) if len(row) != len(EVENT_COLUMNS))
    assert rep["events_delivered"] == data_lines
    assert rep["events_delivered"] == rep["events_generated"] - rep["undelivered"] + rep["duplicates"]
    assert rep["broken_lines"] == broken > 0
    assert rep["files"] == len(event_files) + len(customer_files)
    assert rep["customers"] == cfg.customers
    assert set(rep["malformed"]) <= set(MALFORMED_KINDS)


def _event_lines(folder: Path, fmt: str) -> list[tuple[dict[str, str | None] | None, str | None]]:
    """Every delivered event line as (parsed row or None if the line is broken, event_id if readable)."""
    out: list[tuple[dict[str, str | None] | None, str | None]] = []
    for path in sorted(folder.glob(f"*.{fmt}")):
        if fmt == "parquet":
            out.extend((r, r["event_id"]) for r in pq.read_table(path).to_pylist())
        elif fmt == "csv":
            with open(path, newline="") as fh:
                reader = csv.reader(fh)
                assert next(reader) == list(EVENT_COLUMNS)
                for values in reader:
                    row = dict(zip(EVENT_COLUMNS, values, strict=False)) if values else {}
                    intact = len(values) == len(EVENT_COLUMNS)
                    out.append(({k: v or None for k, v in row.items()} if intact else None,
                                values[0] if values and values[0] else None))
        else:
            for line in path.read_text().splitlines():
                # a broken line is the first half of the JSON object; event_id is its first key
                match = re.match(r'\{"event_id":"([^"]+)"', line)
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    row = None
                out.append(({c: row.get(c) for c in EVENT_COLUMNS} if row is not None else None,
                            match.group(1) if match else None))
    return out


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_report_counts_are_what_the_files_hold(tmp_path, fmt):
    # every count is measured from the files alone, then compared with the report
    _, report = _run(tmp_path, format=fmt, late_share=0.05, duplicate_share=0.02, malformed_share=0.02,
                     broken_line_share=0.02)
    landing = tmp_path / "landing"
    lines = _event_lines(landing / "events", fmt)
    assert len(lines) == report.events_delivered > 1000
    broken = sum(row is None for row, _ in lines)
    assert broken == report.broken_lines
    assert (broken > 0) == (fmt != "parquet")
    ids = Counter(event_id for _, event_id in lines if event_id is not None)
    # a duplicate is the same event delivered twice; malformed rows (some without an id) are never doubled
    assert sum(n - 1 for n in ids.values()) == report.duplicates > 0
    assert max(ids.values()) == 2
    # faults do not stack: a broken line is neither a duplicate nor a row that lost its id
    assert all(event_id is not None and ids[event_id] == 1 for row, event_id in lines if row is None)
    events_in_files = len(ids) + sum(event_id is None for _, event_id in lines)
    assert events_in_files == report.events_generated - report.undelivered

    def parse(value: str | None) -> datetime | None:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except (AttributeError, ValueError):
            return None

    late, unreadable = set(), 0
    for row, event_id in lines:
        occurred, received = (parse(row["occurred_at"]), parse(row["received_at"])) if row else (None, None)
        if occurred is None or received is None:
            unreadable += 1
        elif received - occurred > timedelta(hours=25):
            late.add(event_id or id(row))
    # late events received after the period end are undelivered, so not in the files
    assert len(late) <= report.late_events <= len(late) + unreadable + report.undelivered
    assert len(late) > 0.5 * report.late_events

    files = [p for p in landing.rglob("*") if p.is_file() and p.suffix != ".ready"]
    assert report.files == len(files)
    # every data file is complete under its own name with a ready marker beside it; no partial file is left
    assert sorted(p.name for p in landing.rglob("*.ready")) == sorted(p.name + ".ready" for p in files)
    assert not [p for p in landing.rglob(".*")]
    assert all(re.fullmatch(rf"(events|customers)_\d{{4}}-\d{{2}}-\d{{2}}\.{fmt}", p.name) for p in files)
    if fmt == "parquet":
        customer_rows = sum(pq.read_metadata(p).num_rows for p in landing.glob("customers/*.parquet"))
    elif fmt == "jsonl":
        customer_rows = sum(len(p.read_text().splitlines()) for p in landing.glob("customers/*.jsonl"))
    else:
        customer_rows = sum(len(p.read_text().splitlines()) - 1 for p in landing.glob("customers/*.csv"))
    assert customer_rows == report.customers == len(_personas(tmp_path / "truth"))


def test_malformed_counts_match_rows_in_files(tmp_path):
    # parquet has no broken lines, so every corrupted row is visible intact
    _, report = _run(tmp_path, format="parquet", malformed_share=0.05)
    rows = [r for p in sorted((tmp_path / "landing" / "events").glob("*.parquet"))
            for r in pq.read_table(p).to_pylist()]
    assert len(rows) == report.events_delivered

    def valid_ts(value: str) -> bool:
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
            return len(value) == len("2025-09-01T00:00:00.000Z")
        except ValueError:
            return False

    def is_number(value: str | None) -> bool:
        try:
            float(value)
            return True
        except (TypeError, ValueError):
            return False

    seen = Counter()
    for r in rows:
        seen["missing_event_id"] += r["event_id"] is None
        seen["unknown_event_type"] += r["event_type"] not in VALID_EVENT_TYPES
        seen["invalid_timestamp"] += not valid_ts(r["occurred_at"])
        seen["missing_identity"] += r["anonymous_id"] is None and r["user_id"] is None
        seen["invalid_number"] += r["price"] is not None and not is_number(r["price"])
        seen["non_positive_quantity"] += r["quantity"] is not None and int(r["quantity"]) <= 0
    observed = {k: v for k, v in seen.items() if v}
    assert sum(report.malformed.values()) > 10
    assert observed == report.malformed
    assert sum(observed.values()) == sum(report.malformed.values())


# -- formats -------------------------------------------------------------------------------------------


def test_all_formats_write_the_same_rows(tmp_path):
    counts: dict[str, dict[str, int]] = {}
    values: dict[str, dict[str, list[list[str]]]] = {}
    for fmt in ("csv", "jsonl", "parquet"):
        root = tmp_path / fmt
        _run(root, format=fmt, broken_line_share=0.0)
        counts[fmt], values[fmt] = {}, {}
        for path in sorted((root / "landing").rglob(f"*.{fmt}")):
            key = f"{path.parent.name}/{path.stem}"
            columns = EVENT_COLUMNS if path.parent.name == "events" else CUSTOMER_COLUMNS
            if fmt == "csv":
                with open(path, newline="") as fh:
                    rows = [[r[c] for c in columns] for r in csv.DictReader(fh)]
            elif fmt == "jsonl":
                objects = [json.loads(line) for line in path.read_text().splitlines()]
                rows = [[obj.get(c) or "" for c in columns] for obj in objects]
            else:
                rows = [[r[c] or "" for c in columns] for r in pq.read_table(path).to_pylist()]
            counts[fmt][key] = len(rows)
            values[fmt][key] = rows
    assert counts["csv"] and sum(counts["csv"].values()) > 1000
    assert counts["csv"] == counts["jsonl"] == counts["parquet"]
    assert values["csv"] == values["jsonl"] == values["parquet"]


def test_format_row_counts_agree_with_broken_lines(tmp_path):
    # with broken lines, csv and jsonl still hold one line per delivered row
    totals = {}
    for fmt, suffix in (("csv", ".csv"), ("jsonl", ".jsonl"), ("parquet", ".parquet")):
        _, report = _run(tmp_path / fmt, format=fmt, broken_line_share=0.02)
        files = sorted((tmp_path / fmt / "landing" / "events").glob(f"*{suffix}"))
        if fmt == "csv":
            n = sum(len(p.read_text().splitlines()) - 1 for p in files)
        elif fmt == "jsonl":
            n = sum(len(p.read_text().splitlines()) for p in files)
        else:
            n = sum(pq.read_metadata(p).num_rows for p in files)
        totals[fmt] = n
        assert n == report.events_delivered
        assert (report.broken_lines > 0) == (fmt != "parquet")
    assert len(set(totals.values())) == 1


# -- drift ----------------------------------------------------------------------------------------------


def _owned_events(root: Path) -> list[tuple[dict[str, str], str | None]]:
    """Every event with the customer it belongs to (anonymous devices resolved via a later login)."""
    rows = _csv_rows(root / "landing" / "events")
    owner = {r["anonymous_id"]: r["user_id"] for r in rows if r["anonymous_id"] and r["user_id"]}
    return [(r, r["user_id"] or owner.get(r["anonymous_id"])) for r in rows]


def test_drift_lowers_activity_of_the_drifted_persona_only(tmp_path):
    clean = {"customers": 100, "days": 28, "late_share": 0.0, "duplicate_share": 0.0, "malformed_share": 0.0,
             "broken_line_share": 0.0}
    base_cfg, _ = _run(tmp_path / "base", drift_week=None, **clean)
    drift_cfg, _ = _run(tmp_path / "drift", drift_week=2, **clean)
    drift_start = drift_cfg.drift_start().isoformat()
    persona = {r["customer_id"]: r["persona"] for r in _personas(tmp_path / "base" / "truth")}
    assert persona == {r["customer_id"]: r["persona"] for r in _personas(tmp_path / "drift" / "truth")}
    drifted = {c for c, p in persona.items() if p == drift_cfg.drift_persona}
    assert len(drifted) >= 10

    def split(root: Path):
        before, after, others = set(), Counter(), set()
        # stay clear of the period end, where delivery jitter can drop the last events
        cutoff = (datetime.combine(base_cfg.end, datetime.min.time()) - timedelta(hours=1)).isoformat()
        for row, customer in _owned_events(root):
            if customer in drifted:
                if row["occurred_at"] < drift_start:
                    before.add(row["event_id"])
                elif row["channel"] != "email":  # campaigns are sent regardless of behavior
                    after[customer] += 1
            elif customer is not None and row["occurred_at"] < cutoff:
                others.add(row["event_id"])
        return before, after, others

    base_before, base_after, base_others = split(tmp_path / "base")
    drift_before, drift_after, drift_others = split(tmp_path / "drift")
    # same customers, same behavior up to the drift start; other personas untouched
    assert base_before and base_before == drift_before
    assert base_others and base_others == drift_others
    # after it, the drifted persona is far less active (sessions x0.4 in the generator)
    per_customer_base = sum(base_after.values()) / len(drifted)
    per_customer_drift = sum(drift_after.values()) / len(drifted)
    assert per_customer_base > 10
    assert per_customer_drift < 0.6 * per_customer_base

    meta = json.loads((tmp_path / "drift" / "truth" / "generation.json").read_text())
    assert meta["drift"]["persona"] == drift_cfg.drift_persona
    assert meta["drift"]["starts"] == drift_start
    assert json.loads((tmp_path / "base" / "truth" / "generation.json").read_text())["drift"]["starts"] is None


# -- identity ---------------------------------------------------------------------------------------------


def test_anonymous_web_devices_log_in_later(tmp_path):
    _run(tmp_path, malformed_share=0.0, broken_line_share=0.0)
    rows = sorted(_csv_rows(tmp_path / "landing" / "events"), key=lambda r: r["occurred_at"])
    first_anonymous: dict[str, str] = {}
    stitched = set()
    user_of_device: dict[str, set[str]] = {}
    for r in rows:
        anon, user = r["anonymous_id"], r["user_id"]
        if anon and not user and r["channel"] == "web":
            first_anonymous.setdefault(anon, r["occurred_at"])
        if anon and user:
            user_of_device.setdefault(anon, set()).add(user)
            if anon in first_anonymous and first_anonymous[anon] < r["occurred_at"]:
                stitched.add(anon)
    assert len(first_anonymous) >= 5, "expected anonymous web traffic"
    assert len(stitched) >= 3, "expected anonymous devices that later log in"
    # a device only ever logs in as one customer
    assert all(len(users) == 1 for users in user_of_device.values())
    # app traffic is always identified
    assert all(r["user_id"] for r in rows if r["channel"] == "app")


def test_every_device_has_one_form_factor_that_fits_its_channel_and_persona(tmp_path):
    _run(tmp_path, customers=80, malformed_share=0.0, broken_line_share=0.0)
    rows = _csv_rows(tmp_path / "landing" / "events")
    persona = {r["customer_id"]: r["persona"] for r in _personas(tmp_path / "truth")}
    types_of_device: dict[str, set[str]] = {}
    for r in rows:
        if r["anonymous_id"]:
            types_of_device.setdefault(r["anonymous_id"], set()).add(r["device_type"])
    assert types_of_device and all(len(types) == 1 for types in types_of_device.values())
    # events without a device (e-mail, support) carry no device type
    assert all(not r["device_type"] for r in rows if not r["anonymous_id"])
    assert all(r["device_type"] in ("mobile", "tablet") for r in rows if r["channel"] == "app")
    identified = [r for r in rows if r["user_id"] and r["anonymous_id"]]
    assert all((r["device_type"] == "other") == (persona[r["user_id"]] == "bot") for r in identified)
    web = Counter(r["device_type"] for r in rows if r["channel"] == "web" and persona.get(r["user_id"]) != "bot")
    assert {"desktop", "mobile", "tablet"} <= set(web)


# -- validation -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"customers": 0}, "positive"),
        ({"days": 0}, "positive"),
        ({"drift_persona": "nobody"}, "unknown drift persona"),
        ({"format": "xml"}, "format"),
        ({"late_share": 0.5}, "fault shares"),
        ({"malformed_share": -0.1}, "fault shares"),
    ],
)
def test_invalid_config_raises_value_error(overrides, message):
    with pytest.raises(ValueError, match=message):
        GeneratorConfig(**{**SMALL, **overrides})
