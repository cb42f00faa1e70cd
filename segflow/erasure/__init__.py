"""Finding and removing a person's identifiers: shared by erasure (segflow.jobs.erase), consent redaction
(segflow.jobs.consent) and the loader's erasure filter (segflow.jobs.load).

* **Which raw rows are a person's.** One rule for every stream, used when erasing and again at load time:
  a row with a user id belongs to that user (events, identities), a profile or consent row to its
  customer id; a row without a user id belongs to the person whose device (anonymous id) or e-mail it carries;
  an alias statement also belongs to the person whose earlier id it names.
* **Identifiers in values and text.** A value (a table cell, an export's cell) matches when it equals an
  identifier (trimmed, case-insensitive). Free text (a rejected line, a log, a message) is searched for
  identifiers long enough to be told apart from other numbers (:func:`distinctive`) as whole tokens, so
  ``C00004`` never matches inside ``C000041`` but ``a-1f2e3d`` matches inside ``anon:a-1f2e3d``. The same
  pattern runs in DuckDB (RE2) and in Python.
* **The erasure list** keeps a keyed hash (HMAC-SHA-256 over kind and value) of every erased raw identifier,
  never the identifier: the loader drops re-delivered rows of an erased person without the warehouse holding
  who they were. The key is the deployment's PII secret (a setting, never stored in the warehouse); the list
  records a key id so a changed key fails loudly instead of silently letting erased people back.
"""

from segflow.erasure.erasure_list import (
    ErasureKeyMismatch,
    digest,
    erasure_key,
    erasure_list,
    filter_erased,
    key_id,
    line_names_erased,
)
from segflow.erasure.files import FileChange, redact_files
from segflow.erasure.rules import (
    RAW_IDENTITY,
    REDACTED,
    distinctive,
    normalize,
    raw_row_predicate,
    redact_text,
    token_regex,
    utc_now,
    who,
)

__all__ = ["RAW_IDENTITY", "REDACTED", "ErasureKeyMismatch", "FileChange", "digest", "distinctive", "erasure_key",
           "erasure_list", "filter_erased", "key_id", "line_names_erased", "normalize", "raw_row_predicate",
           "redact_files", "redact_text", "token_regex", "utc_now", "who"]
