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


# --- privacy tests: does anything still name a person? ---------------------------------------------------------

def identifier_pattern(values) -> str:
    """Regex (DuckDB and Python, applied to lower-cased text) matching any of ``values`` as a whole token."""
    import re

    alternatives = "|".join(re.escape(v.lower()) for v in sorted(set(values), key=len, reverse=True))
    return f"(^|[^a-z0-9_.@+-])({alternatives})($|[^a-z0-9_.@+-])"


def relations(con, views: bool = True) -> dict[str, list[str]]:
    """Every table (and view) of the DuckDB file -> its varchar columns, from information_schema."""
    kinds = ("BASE TABLE", "VIEW") if views else ("BASE TABLE",)
    out: dict[str, list[str]] = {}
    for schema, table, kind in con.execute(
            "select table_schema, table_name, table_type from information_schema.tables "
            "where table_catalog = current_database() order by 1, 2").fetchall():
        if kind in kinds:
            out[f"{schema}.{table}"] = [c for (c,) in con.execute(
                "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
                "and data_type = 'VARCHAR' order by ordinal_position", [schema, table]).fetchall()]
    return out


def mention_split(con, relation: str, columns: list[str], pattern: str) -> tuple[int, int, str]:
    """(rows naming the person, other rows, order-independent hash of the other rows) of one relation."""
    mention = " or ".join(f"coalesce(regexp_matches(lower(\"{c}\"), $1), false)" for c in columns) or "false"
    schema, name = relation.split(".")
    return con.execute(
        f"select count(*) filter (where {mention}), count(*) filter (where not ({mention})), "
        f"coalesce(sum(hash(t)) filter (where not ({mention})), 0)::varchar "
        f'from "{schema}"."{name}" as t', [pattern] if columns else []).fetchall()[0]


def files_naming(root, values) -> list[str]:
    """Files under ``root`` whose bytes contain one of ``values`` as a token (case-insensitive)."""
    import re

    pattern = re.compile(identifier_pattern(values).encode())
    return sorted(str(p) for p in root.rglob("*") if p.is_file() and pattern.search(p.read_bytes().lower()))


# --- incremental vs full builds -----------------------------------------------------------------------------

def table_differences(a, b, tables) -> dict[str, tuple[int, int, int]]:
    """Per table of two DuckDB files: (rows in a, rows only in a, rows only in b), every column but _build_seq."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"attach '{a}' as a (read_only)")
    con.execute(f"attach '{b}' as b (read_only)")
    out = {}
    for table in tables:
        schema, name = table.split(".")
        columns = [c for (c,) in con.execute(
            "select column_name from duckdb_columns() where database_name = 'a' and schema_name = ? and "
            "table_name = ? order by column_index", [schema, name]).fetchall() if c != "_build_seq"]
        assert columns, f"{table} has no columns in {a}"
        cols = ", ".join(f'"{c}"' for c in columns)
        rows = con.execute(f"select count(*) from a.{table}").fetchall()[0][0]
        only_a = con.execute(f"select count(*) from (select {cols} from a.{table} except all "
                             f"select {cols} from b.{table})").fetchall()[0][0]
        only_b = con.execute(f"select count(*) from (select {cols} from b.{table} except all "
                             f"select {cols} from a.{table})").fetchall()[0][0]
        out[table] = (rows, only_a, only_b)
    con.close()
    return out
