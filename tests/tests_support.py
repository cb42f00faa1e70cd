"""Helpers shared by test modules (tests/ is on sys.path: import as `tests_support`)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

TEST_PII_KEY = "segflow-test-suite-pii-key-never-use-in-production"
"""The suite's PII key (conftest sets SEGFLOW_PII_KEY to it): most tests build homes of their own data, which
the public demo key may not pseudonymize. Tests of the key rules set or remove the variable themselves."""

SMALL_START = date(2025, 9, 1)
SMALL_DAYS = 35


def small_config(**overrides):
    from segflow.sources.generator import GeneratorConfig

    values = {"customers": 400, "start": SMALL_START, "days": SMALL_DAYS, "seed": 11, "drift_week": None}
    values.update(overrides)
    return GeneratorConfig(**values)


def week_end(weeks: int) -> datetime:
    return datetime.combine(SMALL_START + timedelta(weeks=weeks), datetime.min.time())


AUDIT_COLUMNS = ("created_at", "published_at", "loaded_at", "validated_at")


def table_fingerprint(con, table: str) -> tuple[int, str]:
    """Row count + an order-independent hash of every row (audit timestamps left out)."""
    schema, name = table.split(".")
    columns = [c for (c,) in con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
        "order by ordinal_position", [schema, name]).fetchall() if c not in AUDIT_COLUMNS]
    projection = ", ".join(f'"{c}"' for c in columns)
    count, digest = con.execute(
        f"select count(*), coalesce(sum(hash(t)), 0)::varchar from (select {projection} from {table}) t"
    ).fetchone()
    return count, digest
