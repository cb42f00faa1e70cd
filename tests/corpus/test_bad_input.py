"""The bad-input corpus, end to end: every kind of bad delivery in tests/fixtures/bad_input/ loaded by the real
loader into a fresh home and built by the real dbt project, then each case checked against the warehouse.

The expected numbers come from ``cases.yml`` (written from reading the files) and, for the balance, from the
test's own record counter (:func:`bad_input_support.count_records`), never from segflow's output.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import bad_input_support as corpus_files
import pytest

from segflow.jobs.build import build
from segflow.jobs.load import load_landing
from segflow.settings import Settings
from segflow.warehouse import connect

CASES = corpus_files.load_cases()


@dataclass
class Warehouse:
    """What the corpus left in the warehouse, read once after the build."""

    landing: Path
    entries: list[dict[str, dict]] = field(default_factory=list)  # per load run: entry path -> row
    on_disk: list[set[str]] = field(default_factory=list)          # per load run: the entries it had to see
    manifest: list[dict] = field(default_factory=list)             # ordered by load_seq
    counted: dict[str, int] = field(default_factory=dict)           # load id -> records counted by the test
    rejects: dict[str, list[tuple]] = field(default_factory=dict)   # load id -> [(line, code, text length)]
    raw: dict[str, list[dict]] = field(default_factory=dict)       # load id -> raw.events rows
    staged: dict[str, dict] = field(default_factory=dict)          # event id -> stg_raw__events row
    staged_per_load: Counter = field(default_factory=Counter)
    quarantined: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    duplicates: Counter = field(default_factory=Counter)
    audit: dict[str, dict] = field(default_factory=dict)            # load id -> fct_load_audit row (events)

    def entry(self, run: int, relative: str) -> dict | None:
        return self.entries[run].get(str(self.landing / relative))

    def loads(self, relative: str) -> list[dict]:
        return [m for m in self.manifest if m["file_path"] == str(self.landing / relative)]


def _rows(con, sql: str) -> list[dict]:
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _landing_entries(landing: Path) -> set[str]:
    """The entries a load run must account for: files and folders at the top of landing/ (except the source
    folders themselves) and everything directly inside a source folder."""
    found = set()
    for top in landing.iterdir():
        if top.is_dir() and not top.is_symlink() and not top.name.startswith("."):
            found |= {str(p) for p in top.iterdir()}
        else:
            found.add(str(top))
    return found


def _snapshot(settings: Settings, warehouse: Warehouse) -> None:
    """After a load run: its landing entries, and the records of each new load counted by the test."""
    warehouse.on_disk.append(_landing_entries(settings.landing_dir))
    with connect(settings, read_only=True) as con:
        warehouse.entries.append({r["entry_path"]: r for r in _rows(con, "select * from meta.landing_entries")})
        for load in _rows(con, "select load_id, file_path from meta.load_manifest"):
            if load["load_id"] not in warehouse.counted:
                warehouse.counted[load["load_id"]] = corpus_files.count_records(Path(load["file_path"]))


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Warehouse:
    """The whole corpus: load run 1, the files changed between runs, load run 2, one dbt build."""
    root = tmp_path_factory.mktemp("bad_input")
    settings = Settings(home=root / "home", load_min_file_age_seconds=60)
    settings.ensure_dirs()
    result = Warehouse(landing=settings.landing_dir)
    corpus_files.materialize(settings.landing_dir, root / "outside", CASES)
    load_landing(settings)
    _snapshot(settings, result)
    corpus_files.change_for_rerun(settings.landing_dir, CASES)
    load_landing(settings)
    _snapshot(settings, result)
    build(settings)
    with connect(settings, read_only=True) as con:
        result.manifest = _rows(con, "select * from meta.load_manifest order by load_seq")
        for r in _rows(con, "select load_id, line_number, reason_code, length(raw_line) as text_length "
                            "from meta.load_rejects order by line_number"):
            result.rejects.setdefault(r["load_id"], []).append((r["line_number"], r["reason_code"], r["text_length"]))
        for r in _rows(con, "select * from raw.events"):
            result.raw.setdefault(r["_load_id"], []).append(r)
        for r in _rows(con, "select * from staging.stg_raw__events"):
            result.staged[r["event_id"]] = r
            result.staged_per_load[r["_load_id"]] += 1
        for r in _rows(con, "select _load_id, quarantine_reason from staging.stg_raw__events_quarantine"):
            result.quarantined[r["_load_id"]][r["quarantine_reason"]] += 1
        for r in _rows(con, "select _load_id from staging.stg_raw__events_duplicates"):
            result.duplicates[r["_load_id"]] += 1
        result.audit = {r["load_id"]: r for r in _rows(con, "select * from marts.fct_load_audit "
                                                            "where stream = 'events'")}
    return result


def _params():
    for case in CASES:
        marks = [pytest.mark.xfail(reason=case["xfail"], strict=True)] if case.get("xfail") else []
        yield pytest.param(case, id=case["case"], marks=marks)


def _check_values(rows: dict, expected: dict, where: str) -> None:
    for event_id, columns in expected.items():
        assert event_id in rows, f"{where}: no row with event_id {event_id!r}"
        for column, value in columns.items():
            actual = rows[event_id][column]
            if isinstance(value, dict):
                assert str(actual).startswith(value["startswith"]), (where, event_id, column, actual)
            else:
                assert str(actual) == value, (where, event_id, column, actual)


def _check_load(warehouse: Warehouse, load: dict, expected: dict, earlier: dict | None) -> None:
    where = load["file_name"]
    load_id = load["load_id"]
    assert (load["rows_in_file"], load["rows_loaded"], load["rows_rejected"]) == (
        expected["records"], expected["loaded"], len(expected.get("rejects", []))), where
    rejects = warehouse.rejects.get(load_id, [])
    assert [[line, code] for line, code, _ in rejects] == expected.get("rejects", []), where
    if "reject_text_max" in expected:
        assert all(length <= expected["reject_text_max"] for *_, length in rejects), where
    assert (load["damage"] is not None) == bool(expected.get("damage")), (where, load["damage"])
    assert load["columns_dropped"] == expected.get("columns_dropped"), where
    assert load["previous_load_id"] == (earlier["load_id"] if expected.get("previous") else None), where
    raw = warehouse.raw.get(load_id, [])
    assert len(raw) == expected["loaded"], where
    _check_values({r["event_id"]: r for r in raw}, expected.get("raw_values", {}), f"raw of {where}")
    outcome = (warehouse.staged_per_load[load_id], dict(warehouse.quarantined[load_id]),
               warehouse.duplicates[load_id])
    assert outcome == (expected.get("staged", 0), expected.get("quarantined", {}), expected.get("duplicates", 0)), where
    audit = warehouse.audit[load_id]
    assert (audit["rows_in_raw"], audit["rows_staged"], audit["rows_quarantined"], audit["rows_duplicate"]) == (
        expected["loaded"], expected.get("staged", 0), sum(expected.get("quarantined", {}).values()),
        expected.get("duplicates", 0)), where
    _check_values(warehouse.staged, expected.get("staged_values", {}), f"staging of {where}")


@pytest.mark.slow  # one load of the corpus and one dbt build (~1 min), shared by the module
@pytest.mark.parametrize("case", _params())
def test_case(warehouse: Warehouse, case: dict) -> None:
    for spec in case["files"]:
        path = spec["path"]
        first, second = warehouse.entry(0, path), warehouse.entry(1, path)
        if spec["status"] == "absent":
            assert first is None, path
            first = {"status": "absent", "reason": None}
        assert first["status"] == spec["status"], (path, first["reason"])
        assert second["status"] == corpus_files.rerun_status(spec), (path, second["reason"])
        if "reason" in spec:
            reasons = " | ".join(str(e["reason"]) for e in (first, second))
            assert spec["reason"].lower() in reasons.lower(), (path, reasons)
        loads = warehouse.loads(path)
        expected = corpus_files.loads_of(spec)
        assert len(loads) == len(expected), (path, [m["load_id"] for m in loads])
        for number, (load, wanted) in enumerate(zip(loads, expected, strict=True)):
            _check_load(warehouse, load, wanted, loads[number - 1] if number else None)
        if spec["status"] == "skipped":
            # the same bytes were loaded before: the entry names that load
            assert first["load_id"] in {m["load_id"] for m in warehouse.manifest}, path


@pytest.mark.slow  # one load of the corpus and one dbt build (~1 min), shared by the module
def test_every_landing_entry_has_one_status_and_a_case(warehouse: Warehouse) -> None:
    for seen, on_disk in zip(warehouse.entries, warehouse.on_disk, strict=True):
        assert set(seen) == on_disk
    described = {str(warehouse.landing / f["path"]) for f in corpus_files.all_files(CASES)}
    assert warehouse.on_disk[-1] == described, "every corpus entry is described by a case, and only those"


@pytest.mark.slow  # one load of the corpus and one dbt build (~1 min), shared by the module
def test_the_whole_corpus_balances(warehouse: Warehouse) -> None:
    """Per loaded file: records counted by the test = loaded + rejected. Per load: rows in raw = staged +
    quarantined + duplicates, and the audit mart says the same."""
    assert warehouse.manifest, "nothing was loaded"
    for load in warehouse.manifest:
        load_id, where = load["load_id"], load["file_name"]
        assert warehouse.counted[load_id] == load["rows_loaded"] + load["rows_rejected"] == load["rows_in_file"], where
        assert len(warehouse.rejects.get(load_id, [])) == load["rows_rejected"], where
        in_raw = len(warehouse.raw.get(load_id, []))
        assert in_raw == load["rows_loaded"], where
        accounted = (warehouse.staged_per_load[load_id] + sum(warehouse.quarantined[load_id].values())
                     + warehouse.duplicates[load_id])
        assert accounted == in_raw, where
        assert warehouse.audit[load_id]["is_balanced"], where
    loads = {m["load_id"] for m in warehouse.manifest}
    assert set(warehouse.audit) == loads
    # nothing written by a file that was rejected or rolled back
    assert set(warehouse.raw) <= loads and set(warehouse.rejects) <= loads


def test_the_corpus_readme_is_generated_from_the_case_table() -> None:
    assert len(CASES) >= 40
    assert len({c["case"] for c in CASES}) == len(CASES)
    assert corpus_files.README.read_text(encoding="utf-8") == corpus_files.render_readme(CASES), (
        "run: python tests/corpus/bad_input_support.py --readme")


def test_committed_corpus_files_are_tiny() -> None:
    for folder, _, files in os.walk(corpus_files.CORPUS / "landing"):
        for name in files:
            assert (Path(folder) / name).stat().st_size < 2048, name
