"""Every column dbt builds is described: each column of each relation in the staging, intermediate and marts
schemas of the built warehouse has a non-empty description in dbt's parsed manifest (docs blocks resolved).

The columns come from the warehouse (information_schema), not from the yml, so a column added to a model's SQL
without a description fails here. Seeds count too (they are built into staging)."""

from __future__ import annotations

import json

from segflow.warehouse import connect

DOCUMENTED_SCHEMAS = ("staging", "intermediate", "marts")


def _manifest_descriptions(settings) -> dict[tuple[str, str], dict[str, str]]:
    """(schema, relation) -> {column: description} for every model and seed in the build's manifest."""
    manifest = json.loads((settings.dbt_target_dir / "manifest.json").read_text())
    described: dict[tuple[str, str], dict[str, str]] = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] not in ("model", "seed"):
            continue
        relation = (node["schema"].lower(), (node.get("alias") or node["name"]).lower())
        described[relation] = {name.lower(): (column.get("description") or "").strip()
                               for name, column in node["columns"].items()}
    return described


def _built_columns(settings) -> list[tuple[str, str, str]]:
    placeholders = ", ".join("?" for _ in DOCUMENTED_SCHEMAS)
    with connect(settings, read_only=True) as con:
        return con.execute(
            "select lower(table_schema), lower(table_name), lower(column_name) from information_schema.columns "
            f"where table_schema in ({placeholders}) order by 1, 2, ordinal_position",
            list(DOCUMENTED_SCHEMAS)).fetchall()


def test_every_built_column_is_described(built_home):
    described = _manifest_descriptions(built_home)
    columns = _built_columns(built_home)
    assert {schema for schema, _, _ in columns} == set(DOCUMENTED_SCHEMAS), "the warehouse was not built"

    undocumented = [f"{schema}.{relation}.{column}" for schema, relation, column in columns
                    if not described.get((schema, relation), {}).get(column)]
    assert not undocumented, (
        f"{len(undocumented)} built columns have no description in the models' yml (write one, or reference a "
        "docs block of dbt_project/models/docs/columns.md):\n  " + "\n  ".join(undocumented))

    unresolved = [f"{schema}.{relation}.{column}" for schema, relation, column in columns
                  if "{{" in described[(schema, relation)][column] or "{%" in described[(schema, relation)][column]]
    assert not unresolved, f"descriptions with unrendered Jinja: {unresolved}"
