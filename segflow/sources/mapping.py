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
from typing import Annotated, Literal

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
    pii: list[str] = Field(
        default_factory=list, description="Source columns (or JSON keys) holding personal data besides the one "
        "mapped to email, e.g. phone, address, date of birth. Only canonical columns are stored; these are also "
        "replaced by <redacted> in the copy of a rejected line kept in meta.load_rejects.")

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
        # without an empty `pii` list: a mapping's checksum stays what it was before that field existed
        return hashlib.sha256(self.model_dump_json(exclude={"pii"} if not self.pii else None).encode()).hexdigest()[:16]


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


def parse_expr(text: str) -> ast.Expression:
    """Python syntax, with ``if(c, a, b)`` allowed as a function (``if`` is a keyword in Python)."""
    return ast.parse(re.sub(r"(?<![\w.])if\s*\(", "iif(", text), mode="eval")
