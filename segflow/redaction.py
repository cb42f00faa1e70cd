"""Redacted copies of rejected lines: what ``meta.load_rejects.raw_line`` may keep of personal data (nothing).

A line the loader cannot use is kept for diagnosis, but its personal data is not: the values of PII fields
are replaced by ``<redacted>`` and anything that looks like an e-mail address is masked wherever it appears.

* **PII fields** of a delivery: the canonical PII columns (``email``; :data:`canonical.PII_COLUMNS`), the
  source columns a mapping reads into them, the columns its ``pii:`` list names, and common personal-data
  field names (:data:`COMMON_PII_NAMES`: phone, address, date of birth, ip, ...). Names compare
  case-insensitively, ignoring ``_``, ``-`` and spaces.
* **JSON** (JSON lines, Segment, GA4): a line that parses has those keys redacted at any depth (``traits.email``,
  ``context.ip``), then e-mail addresses masked in the remaining strings. A line that does not parse is masked.
* **CSV / whitespace text**: when the line splits into exactly as many fields as the file's header names, the
  PII fields are redacted by position; otherwise (shifted columns, broken quotes) the fields cannot be
  identified and e-mail addresses are masked in the whole line. A phone number or address in such a line
  cannot be told from other values and stays; :mod:`segflow.jobs.purge_pii` masks e-mail again at retention.
"""

from __future__ import annotations

import ast
import csv
import gzip
import io
import json
import re
from pathlib import Path

from segflow.sources import canonical
from segflow.sources.mapping import Mapping, parse_expr
from segflow.sources.read_common import Reject  # (line, reason code, reason, text)
from segflow.sources.readers import file_format

REDACTED = "<redacted>"
EMAIL_PATTERN_SQL = r"[A-Za-z0-9._%+-]+(@|%40)[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
"""An e-mail address, also URL-encoded (``%40``): the same expression in Python and DuckDB (RE2)."""
EMAIL_PATTERN = re.compile(EMAIL_PATTERN_SQL)

COMMON_PII_NAMES = frozenset({
    "email", "emailaddress", "mail", "phone", "phonenumber", "mobile", "mobilephone", "telephone", "firstname",
    "lastname", "fullname", "surname", "address", "streetaddress", "street", "postalcode", "postcode", "zip",
    "zipcode", "birthday", "birthdate", "dateofbirth", "dob", "ssn", "socialsecuritynumber", "nationalid",
    "passport", "ip", "ipaddress", "creditcard", "cardnumber", "iban", "password",
})
"""Field names treated as personal data in every source (normalized: lower case, letters and digits only)."""


def normalize(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def mask_emails(text: str | None) -> str | None:
    return None if text is None else EMAIL_PATTERN.sub(REDACTED, text)


def pii_fields(mapping: Mapping) -> frozenset[str]:
    """Normalized names of the fields of this source that hold personal data."""
    names = set(COMMON_PII_NAMES) | {normalize(c) for c in canonical.PII_COLUMNS} | {normalize(c) for c in mapping.pii}
    for target, spec in mapping.columns.items():
        if target not in canonical.PII_COLUMNS:
            continue
        if spec.column:
            names.update(normalize(part) for part in (spec.column, spec.column.split(".")[-1]))
        if spec.expr:
            try:
                tree = parse_expr(spec.expr)
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Name):
                    names.add(normalize(node.id))
                elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                    names.add(normalize(node.value))  # col('Name with spaces')
    names.discard("")
    return frozenset(names)


def _redact_json(value, fields: frozenset[str]):
    if isinstance(value, dict):
        return {k: (REDACTED if normalize(str(k)) in fields and v not in (None, "")
                    else _redact_json(v, fields)) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_json(v, fields) for v in value]
    return mask_emails(value) if isinstance(value, str) else value


def redact_line(text: str | None, fields: frozenset[str], header: list[str] | None = None,
                delimiter: str = ",", quote: str = '"') -> str | None:
    """The line with PII field values replaced by ``<redacted>`` and e-mail addresses masked."""
    if text is None:
        return None
    if text.lstrip().startswith(("{", "[")):
        try:
            parsed = json.loads(text)
        except ValueError:
            return mask_emails(text)
        return json.dumps(_redact_json(parsed, fields), ensure_ascii=False)
    if header:
        if delimiter == "whitespace":
            values = text.split()
        else:
            values = next(csv.reader([text], delimiter=delimiter, quotechar=quote), [])
        if len(values) == len(header):
            values = [REDACTED if normalize(name) in fields and value.strip() else mask_emails(value)
                      for name, value in zip(header, values, strict=True)]
            if delimiter == "whitespace":
                return " ".join(values)
            out = io.StringIO()
            csv.writer(out, delimiter=delimiter, quotechar=quote, lineterminator="").writerow(values)
            return out.getvalue()
    return mask_emails(text)


def _header(path: Path, mapping: Mapping) -> list[str] | None:
    """The field names of a delimited file (its first line, or the mapping's column_names)."""
    if mapping.csv.column_names:
        return list(mapping.csv.column_names)
    if mapping.format in ("segment", "ga4", "jsonl", "parquet") or not mapping.csv.header:
        return None
    if mapping.format == "canonical" and file_format(path) != "csv":
        return None
    try:
        opener = gzip.open if path.suffix.lower() == ".gz" else open
        with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as fh:
            first = next((line.rstrip("\r\n") for line in fh if line.strip()), None)
    except (OSError, EOFError, UnicodeError):
        return None
    if first is None:
        return None
    if mapping.csv.delimiter == "whitespace":
        return first.split()
    return next(csv.reader([first], delimiter=mapping.csv.delimiter, quotechar=mapping.csv.quote), None)


def redact_rejects(rejects: list[Reject], mapping: Mapping, path: Path) -> list[Reject]:
    """What ``meta.load_rejects`` stores for these rejects: same lines and reasons, personal data removed."""
    if not rejects:
        return []
    fields = pii_fields(mapping)
    header = _header(path, mapping)
    return [(line, code, mask_emails(reason) or "", redact_line(text, fields, header, mapping.csv.delimiter,
                                                                mapping.csv.quote))
            for line, code, reason, text in rejects]
