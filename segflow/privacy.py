"""The PII key: where it comes from, when it is refused, and how SQL gets it without ever seeing it as text.

E-mail addresses are pseudonymized in dbt staging with HMAC-SHA-256 keyed by a secret (``SEGFLOW_PII_KEY`` or
``SEGFLOW_PII_KEY_FILE``; in Airflow also the Variable ``segflow_pii_key``, see
:func:`segflow.orchestration.task_settings`). A keyed hash cannot be reversed with a dictionary of likely
addresses unless the key is known, which is why the key never appears in SQL text, dbt ``--vars``, the
compiled SQL, ``manifest.json``, ``run_results.json``, a command line or the warehouse:

* ``segflow build`` hands it to its dbt child in the environment variable ``DBT_ENV_SECRET_SEGFLOW_PII_KEY_HEX``
  (dbt masks the values of ``DBT_ENV_SECRET_*`` variables in its logs and refuses them in model SQL);
* on DuckDB the dbt-duckdb plugin :mod:`segflow.dbt_plugin` turns it into the HMAC's two padded keys, stores
  them as session variables of each connection and defines the temporary macro ``segflow_pseudonymize(text)``
  over them; on PostgreSQL the padded keys travel as the custom settings ``segflow.pii_ipad`` /
  ``segflow.pii_opad`` in ``PGOPTIONS`` and the function ``segflow_pseudonymize(text)`` (created on-run-start,
  no key inside) reads them with ``current_setting``. Model SQL only ever says ``segflow_pseudonymize(...)``.

HMAC(K, m) = SHA-256((K' xor opad) || SHA-256((K' xor ipad) || m)) with K' the key zero-padded to the 64-byte
block (a longer key is hashed first), RFC 2104: both engines compute it with their built-in ``sha256``.

Without a key, segflow uses :data:`DEMO_PII_KEY`, which is published here and therefore protects nothing. It
is accepted only in a *demo home*, one whose data the generator wrote (``segflow demo`` / ``segflow
generate`` leave ``$SEGFLOW_HOME/truth/generation.json``); any other home is refused with the way to create
a key.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from segflow.errors import InputError

if TYPE_CHECKING:
    import duckdb

    from segflow.settings import Settings

DEMO_PII_KEY = "segflow-demo-pii-key-published-in-the-source-never-use-it-for-real-data"
"""The key of demo homes. Public: pseudonyms made with it are as good as plain e-mail addresses."""

PLACEHOLDER_MARK = "change-me"
"""What the placeholders of ``.env.example`` contain; a key containing it is refused."""

MIN_KEY_LENGTH = 32
NEW_KEY_COMMAND = 'python -c "import secrets; print(secrets.token_hex(32))"'
KEY_ENV = "DBT_ENV_SECRET_SEGFLOW_PII_KEY_HEX"
"""The dbt child's copy of the key (hex of its bytes): dbt masks DBT_ENV_SECRET_* values in its output."""

FUNCTION = "segflow_pseudonymize"
_IPAD_VARIABLE, _OPAD_VARIABLE = "segflow_pii_ipad", "segflow_pii_opad"
_PG_IPAD_SETTING, _PG_OPAD_SETTING = "segflow.pii_ipad", "segflow.pii_opad"

PSEUDONYM_SQL = "segflow_pseudonymize(lower(nullif(trim({column}), '')))"
"""The pseudonym of a raw text column, exactly as staging computes it (macro ``pseudonymize``)."""


class PiiKeyError(InputError):
    """The PII key is missing, unusable, or the public demo key in a home that holds real data."""


def _hint() -> str:
    return (f"create one with `{NEW_KEY_COMMAND}` and set SEGFLOW_PII_KEY (or SEGFLOW_PII_KEY_FILE, a file "
            "holding it; in Airflow the Variable segflow_pii_key)")


@dataclass(frozen=True)
class PiiKey:
    """The resolved key. ``secret`` is left out of ``repr`` so a key never reaches a log by accident."""

    secret: bytes = field(repr=False)
    source: str
    is_demo: bool = False

    @property
    def key_id(self) -> str:
        """A short, non-secret name of the key (an HMAC of a constant): tells keys apart in audit tables and
        build fingerprints without storing the key or a plain hash of it."""
        return hmac.new(self.secret, b"segflow-pii-key-id", hashlib.sha256).hexdigest()[:16]

    @property
    def pads(self) -> tuple[bytes, bytes]:
        return hmac_pads(self.secret)


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """RFC 2104's inner and outer padded keys for SHA-256 (64-byte block)."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def is_demo_home(settings: Settings) -> bool:
    """True when the generator wrote this home's data (it leaves ``truth/generation.json``)."""
    return (settings.truth_dir / "generation.json").is_file()


def resolve_pii_key(settings: Settings) -> PiiKey:
    """The key this home pseudonymizes with; raises :class:`PiiKeyError` with one line naming the setting."""
    given = settings.pii_key.get_secret_value() if settings.pii_key is not None else None
    if given is not None and settings.pii_key_file is not None:
        raise PiiKeyError("both SEGFLOW_PII_KEY and SEGFLOW_PII_KEY_FILE are set: keep one")
    if settings.pii_key_file is not None:
        try:
            given = settings.pii_key_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeError) as exc:
            raise PiiKeyError(f"SEGFLOW_PII_KEY_FILE={settings.pii_key_file}: cannot read the key "
                              f"({exc.__class__.__name__}: {getattr(exc, 'strerror', None) or exc})") from None
        source = f"SEGFLOW_PII_KEY_FILE ({settings.pii_key_file})"
    else:
        source = "SEGFLOW_PII_KEY"
    if given is None or given == DEMO_PII_KEY:
        if not is_demo_home(settings):
            what = "is the public demo key" if given else "is not set"
            raise PiiKeyError(
                f"{source} {what}, and {settings.home} is not a demo home (its data was not generated by `segflow "
                f"demo`/`segflow generate`): e-mail pseudonyms made with a published key are reversible; {_hint()}")
        return PiiKey(DEMO_PII_KEY.encode(), "demo key", is_demo=True)
    if PLACEHOLDER_MARK in given.lower():
        raise PiiKeyError(f"{source} is still the placeholder from .env.example: {_hint()}")
    if len(given) < MIN_KEY_LENGTH:
        raise PiiKeyError(f"{source} is {len(given)} characters long; a PII key needs at least {MIN_KEY_LENGTH}: "
                          f"{_hint()}")
    return PiiKey(given.encode("utf-8"), source)


def pseudonymize(value: str | None, key: PiiKey) -> str | None:
    """The pseudonym staging gives ``value`` (trimmed of spaces, lower-cased, HMAC-SHA-256 hex), in Python.

    For ASCII and the usual accented letters Python's ``lower`` equals the engines'; for an exact match on any
    text compute it in SQL instead (:func:`install_pseudonymizer` and :data:`PSEUDONYM_SQL`)."""
    if value is None:
        return None
    text = value.strip(" ").lower()
    return hmac.new(key.secret, text.encode("utf-8"), hashlib.sha256).hexdigest() if text else None


def install_pseudonymizer(con: duckdb.DuckDBPyConnection, secret: bytes | None) -> None:
    """Define ``segflow_pseudonymize(text)`` on one DuckDB connection (variables and a temporary macro: they
    live and die with the connection, nothing reaches the database file). Without a key the macro raises a
    clear error when called, so ``dbt parse``/``compile`` by hand still work but no model hashes with NULL."""
    if secret is None:
        con.execute(f"create or replace temp macro {FUNCTION}(value) as error("
                    "'segflow_pseudonymize: no PII key in this dbt process: run dbt through segflow build (it "
                    f"passes the key in {KEY_ENV})')")
        return
    ipad, opad = hmac_pads(secret)
    con.execute(f"set variable {_IPAD_VARIABLE} = ?", [ipad])
    con.execute(f"set variable {_OPAD_VARIABLE} = ?", [opad])
    con.execute(f"create or replace temp macro {FUNCTION}(value) as sha256(getvariable('{_OPAD_VARIABLE}') || "
                f"unhex(sha256(getvariable('{_IPAD_VARIABLE}') || encode(value))))")


def dbt_secret_env(settings: Settings, base_pgoptions: str = "") -> dict[str, str]:
    """The dbt child's key variables: the key for the DuckDB plugin, the padded keys for PostgreSQL (hex, so
    PGOPTIONS needs no escaping)."""
    key = resolve_pii_key(settings)
    ipad, opad = key.pads
    options = f"-c {_PG_IPAD_SETTING}={ipad.hex()} -c {_PG_OPAD_SETTING}={opad.hex()}"
    return {KEY_ENV: key.secret.hex(), "PGOPTIONS": f"{base_pgoptions} {options}".strip()}


def secret_from_env(environ: dict[str, str]) -> bytes | None:
    """The key segflow handed to this dbt process, or None (dbt run by hand)."""
    value = environ.get(KEY_ENV)
    return bytes.fromhex(value) if value else None
