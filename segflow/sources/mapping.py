"""Mapping files: how one source's export becomes segflow's canonical schema.

A mapping is a YAML file (schema: ``docs/mapping.schema.json``, from :func:`json_schema`)::

    name: invoice_lines
    stream: orders                       # which canonical stream (raw table) the rows land in
    format: csv                          # csv | jsonl | parquet | text | segment | ga4 | canonical
    timezone: Europe/London              # zone of timestamps that carry no offset (default UTC)
    columns:                             # canonical column -> how to fill it
      order_id: InvoiceNo                #   a source column, as delivered
      occurred_at: {column: InvoiceDate, timestamp_format: "%m/%d/%Y %H:%M"}
      event_type: {expr: "if(starts_with(InvoiceNo, 'C'), 'cancellation', 'purchase')"}
      channel: {value: store}            #   a constant
      revenue: {expr: "Quantity * UnitPrice"}
    event_id: {hash: [InvoiceNo, StockCode, Quantity, InvoiceDate, UnitPrice, CustomerID]}

A mapping compiles into one SQL ``select`` over the delivered rows (all text), so it runs inside DuckDB at
load time at the speed of the file scan. Values stay text: typing, validation and quarantine happen in dbt
staging exactly as for canonical files. A mapping that does not fit the file (a missing column, a timestamp
format that matches none of the sampled rows, an expression over an unknown column) raises
:class:`MappingError` before anything is written, naming the column and the first offending row.
"""

from __future__ import annotations

import ast
import hashlib
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from segflow.errors import InputError
from segflow.sources import canonical

FORMATS = ("csv", "jsonl", "parquet", "text", "segment", "ga4", "canonical")
EPOCH_FORMATS = {"epoch_seconds": 1_000_000, "epoch_millis": 1_000, "epoch_micros": 1}
TRUE_WORDS = ("true", "t", "yes", "y", "1", "on")
FALSE_WORDS = ("false", "f", "no", "n", "0", "off")


class MappingError(InputError):
    """A mapping that does not fit its file (or is itself invalid)."""


class ColumnSpec(BaseModel):
    """How one canonical column is filled: exactly one of ``column``, ``value`` or ``expr``."""

    model_config = ConfigDict(extra="forbid")

    column: str | None = Field(None, description="Source column (a dotted path reads into a JSON object).")
    value: str | int | float | bool | None = Field(None, description="A constant for every row.")
    expr: str | None = Field(
        None, description="Expression over source columns: + - * / on numbers, comparisons, and/or/not, "
        "functions concat, coalesce, if, lower, upper, trim, nullif, starts_with, ends_with, contains, "
        "replace, substr, abs, col('Name with spaces').")
    value_map: dict[str, str | None] | None = Field(
        None, description="Replace delivered values (after trimming); values not listed are kept.")
    ignore_case: bool = Field(False, description="Match value_map keys case-insensitively.")
    boolean: bool = Field(False, description="Normalize yes/no, 1/0, on/off, t/f to true/false.")
    timestamp_format: str | None = Field(
        None, description="strptime format of the source text (e.g. '%m/%d/%Y %H:%M'), or epoch_seconds, "
        "epoch_millis, epoch_micros. Default: ISO-8601.")
    default: str | None = Field(None, description="Used where the result is empty.")

    @model_validator(mode="after")
    def _one_source(self) -> ColumnSpec:
        given = [k for k in ("column", "value", "expr") if getattr(self, k) is not None]
        if len(given) != 1 and not (not given and self.default is not None):
            raise ValueError(f"give exactly one of column, value, expr (got {given or 'none'})")
        return self


class EventIdSpec(BaseModel):
    """How to derive an event id when the source has none."""

    model_config = ConfigDict(extra="forbid")

    hash: list[str] = Field(
        ..., min_length=1,
        description="Source columns whose content identifies an event. Rows equal in all of them get the "
        "same id (exact duplicates collapse); rows that differ in any get different ids.")
    include_row_number: bool = Field(
        False, description="Also hash the file name and row number: use when identical rows are distinct "
        "events (then only re-delivered files collapse, through the load manifest).")


class CsvOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delimiter: str = Field(",", description="Field separator; 'whitespace' splits on runs of blanks.")
    header: bool = True
    quote: str = '"'
    column_names: list[str] | None = Field(None, description="Names for a file without a header row.")


class Mapping(BaseModel):
    """A mapping file."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$", description="Short source name.")]
    description: str | None = None
    stream: Literal[canonical.STREAMS] = Field("events", description="Canonical stream the rows land in.")
    format: Literal[FORMATS] = Field(
        "csv", description="File format; segment and ga4 are built in (no columns needed).")
    csv: CsvOptions = Field(default_factory=CsvOptions)
    timezone: str = Field("UTC", description="IANA zone of timestamps without an offset (e.g. Europe/Berlin).")
    columns: dict[str, str | ColumnSpec] = Field(default_factory=dict)
    event_id: EventIdSpec | None = None
    file_pattern: str = Field("*", description="Glob of the files this mapping reads in a landing folder.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. UTC, Europe/Berlin, America/New_York)"
                             ) from None
        return value

    @field_validator("columns")
    @classmethod
    def _canonical_targets(cls, value: dict, info) -> dict:
        stream = info.data.get("stream", "events")
        allowed = canonical.columns(stream)
        unknown = [c for c in value if c not in allowed]
        if unknown:
            raise ValueError(f"{unknown} are not canonical columns of stream {stream!r}; allowed: "
                             f"{', '.join(allowed)}")
        return {k: ColumnSpec(column=v) if isinstance(v, str) else v for k, v in value.items()}

    @model_validator(mode="after")
    def _complete(self) -> Mapping:
        if self.format in ("segment", "ga4", "canonical"):
            if self.columns or self.event_id:
                raise ValueError(f"format {self.format!r} is built in: it takes no columns or event_id")
            return self
        missing = [c for c in canonical.REQUIRED[self.stream]
                   if c not in self.columns and not (c == "event_id" and self.event_id)]
        if missing:
            raise ValueError(f"stream {self.stream!r} needs {missing} (map them, or give event_id: {{hash: "
                             "[...]}} to derive the id)")
        if "event_id" in self.columns and self.event_id:
            raise ValueError("map event_id or derive it with event_id.hash, not both")
        needs_any = canonical.IDENTITY_ANY.get(self.stream)
        if needs_any and not any(c in self.columns for c in needs_any):
            raise ValueError(f"stream {self.stream!r} needs one of {list(needs_any)} mapped")
        return self

    @property
    def is_builtin(self) -> bool:
        return self.format in ("segment", "ga4", "canonical")

    def referenced_columns(self) -> set[str]:
        """Lower-cased top-level source columns the mapping reads."""
        names: set[str] = set()
        for spec in self.columns.values():
            if spec.column:
                names.add(spec.column.split(".")[0].lower())
            if spec.expr:
                try:
                    tree = parse_expr(spec.expr)
                except SyntaxError:
                    continue
                for node in ast.walk(tree):
                    if isinstance(node, ast.Name):
                        names.add(node.id.lower())
                    elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                        names.add(node.value.lower())  # col('Name')
        if self.event_id:
            names.update(c.split(".")[0].lower() for c in self.event_id.hash)
        return names

    def checksum(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


def json_schema() -> dict:
    schema = Mapping.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "segflow mapping file"
    return schema


def load_mapping(path: Path) -> Mapping:
    """Read and validate a mapping file; errors name the file and the field."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise MappingError(f"mapping file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise MappingError(f"{path.name}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise MappingError(f"{path.name}: a mapping file is a YAML object with at least name and stream")
    try:
        return Mapping.model_validate(data)
    except ValidationError as exc:
        parts = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            parts.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
        raise MappingError(f"{path.name}: " + "; ".join(parts)) from None


# --- compiling to SQL ---------------------------------------------------------------------------------

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


def parse_expr(text: str) -> ast.Expression:
    """Python syntax, with ``if(c, a, b)`` allowed as a function (``if`` is a keyword in Python)."""
    return ast.parse(re.sub(r"(?<![\w.])if\s*\(", "iif(", text), mode="eval")


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
