"""One-line messages for settings that do not validate: the variable, the value given and what is allowed.

pydantic reports a bad ``SEGFLOW_*`` value as a multi-line ValidationError (and a bad JSON list as a traceback
from pydantic-settings), and python-dotenv skips a line of ``.env`` it cannot parse with only a warning, so a
setting written there is silently lost. Here the allowed values are derived from the field's type and
constraints, so every setting, including one added later, gets the same kind of message.
"""

from __future__ import annotations

import io
import os
import re
import types
import typing
from datetime import date
from pathlib import Path

from annotated_types import Ge, Gt, Le, Lt
from pydantic import SecretStr

_MAX_VALUE_CHARS = 100
_SECRET = re.compile(r"salt|key|secret|password|token")  # a name like these, but not a *_file (a path)


def _variable(field: str) -> str:
    return f"SEGFLOW_{field.upper()}"


def _strip_optional(annotation) -> tuple[object, bool]:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else annotation), True
    return annotation, False


def _bounds(metadata: list) -> str:
    parts = []
    for item in metadata:
        for kind, name, symbol in ((Ge, "ge", ">="), (Gt, "gt", ">"), (Le, "le", "<="), (Lt, "lt", "<")):
            if isinstance(item, kind):
                parts.append(f"{symbol} {getattr(item, name)}")
    return " and ".join(parts)


def allowed(model: type, field: str) -> str:
    """What a setting accepts, in words (from its type and constraints, or its ``allowed`` hint)."""
    info = model.model_fields[field]
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    if "allowed" in extra:
        return str(extra["allowed"])
    annotation, optional = _strip_optional(info.annotation)
    unset = ", or empty for unset" if optional else ""
    origin = typing.get_origin(annotation)
    bounds = _bounds(info.metadata)
    if origin is typing.Literal:
        return "one of " + ", ".join(str(v) for v in typing.get_args(annotation)) + unset
    if annotation is bool:
        return "true or false (also 1/0, yes/no, on/off)"
    if annotation is int:
        return "a whole number" + (f" {bounds}" if bounds else "") + unset
    if annotation is float:
        return "a finite number" + (f" {bounds}" if bounds else "") + unset
    if annotation is date:
        return "a date YYYY-MM-DD" + unset
    if annotation is Path:
        kind = "a folder path" if field == "home" or field.endswith("_dir") else (
            "a file path" if field.endswith("_file") else "a path")
        return kind + unset
    if annotation is SecretStr:
        return "a secret (kept out of messages and logs)" + unset
    if origin in (tuple, list):
        return 'a JSON list of names, e.g. ["recency_days", "frequency"]'
    for item in info.metadata:
        pattern = getattr(item, "pattern", None)
        if pattern:
            return f"text matching {pattern}"
    return "text"


def _value(raw, field: str = "") -> str:
    if _SECRET.search(field) and not field.endswith("_file"):
        return "'***'"  # an error message must not print a secret (logs keep it)
    text = repr(raw)
    return text if len(text) <= _MAX_VALUE_CHARS else text[:_MAX_VALUE_CHARS - 4] + "...'"


def describe_validation_error(model: type, exc) -> str:
    """``invalid setting SEGFLOW_K_MIN='x': allowed: a whole number >= 2`` (several joined with '; ')."""
    parts = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else ""
        if field not in model.model_fields:
            parts.append(f"invalid settings: {err['msg']}")
            continue
        text = f"{_variable(field)}={_value(err.get('input'), field)}: allowed: {allowed(model, field)}"
        if err.get("type") == "value_error":  # a rule of our own (k_max >= k_min, a folder that is a file): say it
            text += f" ({str(err['msg']).removeprefix('Value error, ')})"
        parts.append(text)
    return "invalid setting " + "; ".join(parts)


def describe_source_error(model: type, exc) -> str:
    """pydantic-settings' own parse errors (a value that must be JSON): name the variable all the same."""
    found = re.search(r'field "([a-z0-9_]+)"', str(exc))
    if found and found.group(1) in model.model_fields:
        field = found.group(1)
        given = {k.upper(): v for k, v in os.environ.items()}.get(_variable(field))
        value = f"={_value(given, field)}" if given is not None else ""
        return f"invalid setting {_variable(field)}{value}: allowed: {allowed(model, field)} (it could not be parsed)"
    return f"invalid setting: {str(exc).splitlines()[0]}"


def check_env_file(path: Path) -> str | None:
    """Why a ``.env`` cannot be used as it is (a line python-dotenv cannot parse would be skipped and its setting
    lost), or None."""
    if not path.is_file():
        return None
    from dotenv.parser import parse_stream

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return f"cannot read {path.resolve()}: {exc}"
    bad = [binding for binding in parse_stream(io.StringIO(text)) if binding.error]
    if not bad:
        return None
    first = bad[0]
    more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
    return (f"{path.resolve()} line {first.original.line} is not NAME=value: {first.original.string.strip()[:60]!r}{more}; "
            "fix or remove it (quote a value that holds spaces or #)")
