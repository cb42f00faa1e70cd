"""The rules: which raw rows are a person's, how identifiers are matched in values and in free text."""

from __future__ import annotations

import getpass
import re
import socket
from collections.abc import Iterable
from datetime import UTC, datetime

REDACTED = "[erased]"
# characters that continue an identifier (ids, devices, e-mail addresses): a match must not be part of a longer one
_ID_CHARS = "A-Za-z0-9_.@+-"
TOKEN_SPLIT = re.compile(f"[^{_ID_CHARS}]+")

# identity columns of each raw stream, by kind: user (a user / customer id), anon (a device), email (plain)
EVENT_IDENTITY = {"user": ("user_id",), "anon": ("anonymous_id",), "email": ("email",)}
RAW_IDENTITY: dict[str, dict[str, tuple[str, ...]]] = {
    "events": EVENT_IDENTITY, "orders": EVENT_IDENTITY, "support_tickets": EVENT_IDENTITY,
    "email_events": EVENT_IDENTITY,
    "customers": {"user": ("customer_id",)},
    "consent": {"user": ("customer_id",)},
    "identities": {"user": ("user_id", "previous_id"), "anon": ("previous_id",)},
}
DIGEST_KINDS = {"user": "user_id", "anon": "anonymous_id", "email": "email"}


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def who() -> str:
    """The OS user and host running this process (for the audit log)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def normalize(kind: str, value: str | None) -> str | None:
    """An identifier as staging compares it: trimmed, empty = none; e-mail addresses lower-cased."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    return text.lower() if kind == "email" else text


def raw_row_predicate(stream: str, user: str, anon: str, email: str, pseudonym: str | None = None) -> str:
    """SQL condition (over a raw.<stream> row) for "this row is one of the person's", given one-column tables
    ``user``, ``anon``, ``email`` (column ``v``) holding the person's identifiers. ``pseudonym``: a table of
    their e-mail pseudonyms, for an event table whose purged rows keep only ``_email_pseudonym`` (retention,
    segflow.jobs.purge_pii)."""
    def t(col: str) -> str:
        return f"nullif(trim({col}), '')"

    def member(expr: str, table: str) -> str:
        return f"{expr} in (select v from {table})"

    if stream == "customers" or stream == "consent":
        return member(t("customer_id"), user)
    if stream == "identities":
        return (f"{member(t('user_id'), user)} or {member(t('previous_id'), user)} "
                f"or {member(t('previous_id'), anon)}")
    purged = f" or {member(t('_email_pseudonym'), pseudonym)}" if pseudonym else ""
    return (f"{member(t('user_id'), user)} or ({t('user_id')} is null and "
            f"({member(t('anonymous_id'), anon)} or {member('lower(' + t('email') + ')', email)}{purged}))")


def token_regex(values: Iterable[str]) -> str | None:
    """A regular expression (RE2 and Python) matching any of ``values`` as a whole token; None when empty.
    Group 2 is the identifier; groups 1 and 3 the characters around it."""
    tokens = sorted({v for v in values if v}, key=len, reverse=True)
    if not tokens:
        return None
    alternatives = "|".join(re.escape(v) for v in tokens)
    return f"(^|[^{_ID_CHARS}])({alternatives})($|[^{_ID_CHARS}])"


def redact_text(text: str, pattern: re.Pattern) -> tuple[str, int]:
    """Replace every token match by ``[erased]``; returns the text and the number of replacements. Runs until
    stable: adjacent matches share a separator that the first replacement consumed."""
    total = 0
    while True:
        text, count = pattern.subn(lambda m: m.group(1) + REDACTED + m.group(3), text)
        total += count
        if not count:
            return text, total


def distinctive(value: str) -> bool:
    """Whether an identifier can be searched for in free text (log lines, rejected lines, messages): short
    numbers (CDNOW's customer 1234) are indistinguishable there from a quantity or a price."""
    return len(value) >= 10 or (len(value) >= 6 and not value.isdigit())
