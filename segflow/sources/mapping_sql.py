"""Compile a mapping to SQL: one DuckDB ``select`` over the delivered text, and checks of it against rows.

The expression language is Python syntax (parsed with :mod:`ast`, never evaluated) translated to SQL over text
columns; arithmetic is exact (DECIMAL(38, 9)) and turned back into text without trailing zeros.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from segflow.sources import canonical
from segflow.sources.mapping import (
    EPOCH_FORMATS,
    FALSE_WORDS,
    TRUE_WORDS,
    ColumnSpec,
    Mapping,
    MappingError,
    parse_expr,
)


def _literal(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "'true'" if value else "'false'"
    return "'" + str(value).replace("'", "''") + "'"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _num(sql: str) -> str:
    return f"try_cast({sql} as decimal(38, 9))"


def _num_text(sql: str) -> str:
    # exact decimal back to text without trailing zeros: 30.600000000 -> 30.6, 10.000000000 -> 10
    return f"rtrim(rtrim(cast({sql} as varchar), '0'), '.')"


class _ExprCompiler:
    """Translate the small expression language (Python syntax) to DuckDB SQL over text columns."""

    FUNCS = {"concat", "coalesce", "iif", "lower", "upper", "trim", "nullif", "starts_with", "ends_with",
             "contains", "replace", "substr", "abs", "col"}

    def __init__(self, resolve) -> None:
        self.resolve = resolve  # name -> SQL (raises MappingError for unknown columns)

    def compile(self, text: str) -> str:
        try:
            tree = parse_expr(text)
        except SyntaxError as exc:
            hint = " - compare with ==, not =" if re.search(r"[^=!<>]=[^=]", text) else ""
            raise MappingError(f"expression {text!r} is not valid ({exc.msg}){hint}") from None
        return self._text(tree.body)

    def _text(self, node: ast.AST) -> str:
        """SQL yielding text (or a boolean for conditions)."""
        if isinstance(node, ast.Constant):
            return _literal(node.value)
        if isinstance(node, ast.Name):
            if node.id.lower() in ("null", "none"):
                return "null"
            return self.resolve(node.id)
        if isinstance(node, ast.Attribute):
            return self.resolve(_dotted(node))
        if isinstance(node, ast.BinOp | ast.UnaryOp) and not isinstance(getattr(node, "op", None), ast.Not):
            return _num_text(self._number(node))
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.BoolOp):
            op = " and " if isinstance(node.op, ast.And) else " or "
            return "(" + op.join(self._cond(v) for v in node.values) + ")"
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return f"(not {self._cond(node.operand)})"
        if isinstance(node, ast.Call):
            return self._call(node)
        raise MappingError(f"expression element {ast.unparse(node)!r} is not supported")

    def _number(self, node: ast.AST) -> str:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float) \
                and not isinstance(node.value, bool):
            return f"cast({node.value!r} as decimal(38, 9))"
        if isinstance(node, ast.BinOp):
            ops = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
            op = ops.get(type(node.op))
            if op is None:
                raise MappingError(f"operator in {ast.unparse(node)!r} is not supported (use + - * /)")
            right = self._number(node.right)
            if op == "/":
                right = f"nullif({right}, 0)"
            return f"cast(({self._number(node.left)} {op} {right}) as decimal(38, 9))"
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return f"(-{self._number(node.operand)})"
        return _num(self._text(node))

    def _cond(self, node: ast.AST) -> str:
        if isinstance(node, ast.Compare | ast.BoolOp) or (
                isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not)):
            return self._text(node)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("starts_with", "ends_with",
                                                                           "contains"):
            return self._call(node)
        return f"({self._text(node)} is not null)"

    def _compare(self, node: ast.Compare) -> str:
        ops = {ast.Eq: "=", ast.NotEq: "<>", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
        parts, left = [], node.left
        for op, right in zip(node.ops, node.comparators, strict=True):
            sql_op = ops.get(type(op))
            if sql_op is None:
                raise MappingError(f"comparison in {ast.unparse(node)!r} is not supported")
            numeric = any(isinstance(n, ast.Constant) and isinstance(n.value, int | float)
                          and not isinstance(n.value, bool) for n in (left, right))
            conv = self._number if numeric else self._text
            parts.append(f"({conv(left)} {sql_op} {conv(right)})")
            left = right
        return "(" + " and ".join(parts) + ")"

    def _call(self, node: ast.Call) -> str:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in self.FUNCS or node.keywords:
            raise MappingError(f"function {ast.unparse(node.func)!r} is not supported; use one of "
                               f"{', '.join(sorted(self.FUNCS))}")
        args = node.args
        if name == "col":
            if len(args) != 1 or not isinstance(args[0], ast.Constant) or not isinstance(args[0].value, str):
                raise MappingError("col() takes one column name in quotes")
            return self.resolve(args[0].value)
        if name == "abs":
            return _num_text(f"abs({self._number(args[0])})")
        if name == "iif":
            if len(args) != 3:
                raise MappingError("if(condition, then, else) takes three arguments")
            return f"(case when {self._cond(args[0])} then {self._text(args[1])} else {self._text(args[2])} end)"
        if name in ("starts_with", "ends_with", "contains"):
            fn = {"starts_with": "starts_with", "ends_with": "suffix", "contains": "contains"}[name]
            return f"coalesce({fn}({self._text(args[0])}, {self._text(args[1])}), false)"
        if name == "concat":
            return "concat(" + ", ".join(self._text(a) for a in args) + ")"
        if name == "substr":
            return "substr(" + ", ".join([self._text(args[0])] + [str(int(a.value)) for a in args[1:]]) + ")"
        return f"{name}(" + ", ".join(self._text(a) for a in args) + ")"


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Name):
        return node.id
    raise MappingError(f"{ast.unparse(node)!r} is not a column path")


def _timestamp_sql(sql: str, fmt: str | None, zone: str) -> str:
    """Text timestamp -> ISO-8601 UTC text; where it does not parse, the text as delivered (staging
    quarantines it as invalid_timestamp)."""
    if fmt is None and zone == "UTC":
        return sql  # ISO text: staging parses it (offsets included)
    if fmt in EPOCH_FORMATS:
        micros = f"try_cast(try_cast({sql} as decimal(38, 6)) * {EPOCH_FORMATS[fmt]} as bigint)"
        parsed = f"make_timestamp({micros})"
    elif fmt is None:
        parsed = f"try_cast({sql} as timestamp)"
    else:
        parsed = f"try_strptime({sql}, {_literal(fmt)})"
    if zone != "UTC" and fmt not in EPOCH_FORMATS:
        parsed = f"timezone('UTC', {parsed} at time zone {_literal(zone)})"
    return f"coalesce(strftime({parsed}, '%Y-%m-%dT%H:%M:%S.%fZ'), {sql})"


def compile_select(mapping: Mapping, source_columns: list[str], relation: str = "_incoming",
                   file_name: str = "") -> str:
    """SQL selecting ``_source_row`` and the canonical columns of ``mapping.stream`` (text) from ``relation``."""
    source_columns = [c for c in source_columns if c != "_source_row"]
    lower = {c.lower(): c for c in source_columns}

    def resolve(name: str) -> str:
        head, _, path = name.partition(".")
        actual = lower.get(name.lower()) or (lower.get(head.lower()) if path else None)
        if actual is None:
            raise MappingError(f"column {name!r} is not in the file (it has: {', '.join(source_columns)})")
        if actual.lower() == name.lower():
            return f"{relation}.{_quote(actual)}"
        json_path = "$." + ".".join(f'"{p}"' for p in path.split("."))
        return f"json_extract_string({relation}.{_quote(actual)}, {_literal(json_path)})"

    compiler = _ExprCompiler(resolve)
    selects = []
    for target in canonical.columns(mapping.stream):
        spec = mapping.columns.get(target)
        if target == "event_id" and mapping.event_id is not None:
            sql = _event_id_sql(mapping, resolve, relation, file_name)
        elif spec is None:
            sql = "null"
        else:
            try:
                sql = _column_sql(spec, target, compiler, resolve, mapping.timezone)
            except MappingError as exc:
                raise MappingError(f"columns.{target}: {exc}") from None
        selects.append(f"cast({sql} as varchar) as {_quote(target)}")
    return f"select {relation}._source_row, " + ", ".join(selects) + f" from {relation}"


def _column_sql(spec: ColumnSpec, target: str, compiler: _ExprCompiler, resolve, zone: str) -> str:
    if spec.column is not None:
        sql = resolve(spec.column)
    elif spec.expr is not None:
        sql = compiler.compile(spec.expr)
    else:
        sql = _literal(spec.value)
    sql = f"nullif(trim(cast({sql} as varchar)), '')"
    if spec.boolean:
        sql = (f"(case when lower({sql}) in ({', '.join(map(_literal, TRUE_WORDS))}) then 'true' "
               f"when lower({sql}) in ({', '.join(map(_literal, FALSE_WORDS))}) then 'false' else {sql} end)")
    if spec.value_map:
        key = f"lower({sql})" if spec.ignore_case else sql
        whens = " ".join(f"when {_literal(k.lower() if spec.ignore_case else k)} then {_literal(v)}"
                         for k, v in spec.value_map.items())
        sql = f"(case {key} {whens} else {sql} end)"
    if target in canonical.TIMESTAMP_COLUMNS:
        sql = _timestamp_sql(sql, spec.timestamp_format, zone)
    elif spec.timestamp_format:
        raise MappingError(f"{target}: timestamp_format only applies to {sorted(canonical.TIMESTAMP_COLUMNS)}")
    if spec.default is not None:
        sql = f"coalesce({sql}, {_literal(spec.default)})"
    return sql


def _event_id_sql(mapping: Mapping, resolve, relation: str, file_name: str) -> str:
    parts = [f"coalesce(cast({resolve(c)} as varchar), chr(0))" for c in mapping.event_id.hash]
    if mapping.event_id.include_row_number:
        parts += [_literal(file_name), f"cast({relation}._source_row as varchar)"]
    joined = " || chr(31) || ".join(parts)
    return f"{_literal(mapping.name + ':')} || left(sha256({joined}), 32)"


# --- checking a mapping against rows ---------------------------------------------------------------


def parses(sql: str) -> str:
    """SQL that is true where ``sql`` is a timestamp staging will accept (see canonical.ISO_TIMESTAMP_PATTERN)."""
    return (f"coalesce(regexp_full_match({sql}, {_literal(canonical.ISO_TIMESTAMP_PATTERN)}) "
            f"and try_cast({sql} as timestamptz) is not null, false)")


def timestamp_failures(con, mapping: Mapping, relation: str = "_incoming") -> list[tuple[str, int, str]]:
    """(column, first bad row, its text) for every mapped timestamp column that parses on no sampled row."""
    out = []
    for target, spec in mapping.columns.items():
        if target not in canonical.TIMESTAMP_COLUMNS or not isinstance(spec, ColumnSpec) or spec.column is None:
            continue
        source_columns = [c for (c,) in con.execute(f"select column_name from (describe {relation})").fetchall()]
        lower = {c.lower(): c for c in source_columns}
        actual = lower.get(spec.column.lower())
        if actual is None:
            continue  # reported by compile_select
        src = f"nullif(trim({_quote(actual)}), '')"
        converted = _timestamp_sql(src, spec.timestamp_format, mapping.timezone)
        row = con.execute(
            f"select count(*) filter (where {src} is not null), "
            f"count(*) filter (where {parses(converted)}), "
            f"min(_source_row) filter (where {src} is not null and not {parses(converted)}) "
            f"from {relation}").fetchone()
        nonempty, parsed, first_bad = row
        if nonempty and not parsed:
            text = con.execute(f"select {_quote(actual)} from {relation} where _source_row = ?",
                               [first_bad]).fetchone()[0]
            out.append((target, int(first_bad), text))
    return out
