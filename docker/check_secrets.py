"""Refuse to start the stack with a secret from .env.example (the first step of the airflow-init service).

``.env.example`` ships placeholders, never usable secrets: every one contains ``change-me``. This script
reads the secrets the way the containers receive them (the Airflow settings, the database URL, segflow's PII
key, the UI passwords), and exits 1 naming each ``.env`` variable that is missing, still a placeholder, a value
this repository once published as an example, too short, or (the Fernet key) malformed, with the command
that makes a good one. Every other service waits for airflow-init to succeed, so nothing runs with them.
Stdlib only, plus ``cryptography`` (an Airflow dependency) to validate the Fernet key.
"""

from __future__ import annotations

import os
import sys
from urllib.parse import unquote, urlsplit

PLACEHOLDER_MARK = "change-me"  # segflow.privacy.PLACEHOLDER_MARK (a test keeps them equal)
MIN_KEY_LENGTH = 32  # segflow.privacy.MIN_KEY_LENGTH
MIN_PASSWORD_LENGTH = 12
TOKEN = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'
HEX_KEY = 'python -c "import secrets; print(secrets.token_hex(32))"'
FERNET = 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'

# values earlier versions of .env.example shipped: public, so never accepted
PUBLISHED = frozenset({
    "airflow", "admin", "viewer", "2ZgiVMvmwZ8Yq7CNz2Sg5cbkTzCQrDHfnNrZCo3TKBc=",
    "segflow-local-only-jwt-secret-change-me", "segflow-local-only-api-secret-change-me",
    "segflow-local-only-salt-change-me", "segflow-demo-salt",
})

# .env variable -> (where the container sees it, minimum length, how to make one)
SECRETS = {
    "POSTGRES_PASSWORD": ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", MIN_PASSWORD_LENGTH, TOKEN),
    "AIRFLOW_FERNET_KEY": ("AIRFLOW__CORE__FERNET_KEY", 0, FERNET),
    "AIRFLOW_JWT_SECRET": ("AIRFLOW__API_AUTH__JWT_SECRET", MIN_KEY_LENGTH, TOKEN),
    "AIRFLOW_API_SECRET_KEY": ("AIRFLOW__API__SECRET_KEY", MIN_KEY_LENGTH, TOKEN),
    "SEGFLOW_PII_KEY": ("SEGFLOW_PII_KEY", MIN_KEY_LENGTH, HEX_KEY),
    "SEGFLOW_ADMIN_PASSWORD": ("SEGFLOW_ADMIN_PASSWORD", MIN_PASSWORD_LENGTH, TOKEN),
    "SEGFLOW_VIEWER_PASSWORD": ("SEGFLOW_VIEWER_PASSWORD", MIN_PASSWORD_LENGTH, TOKEN),
}


def _value(env: dict[str, str], seen_as: str) -> str:
    value = env.get(seen_as, "")
    if seen_as == "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN":
        return unquote(urlsplit(value).password or "") if value else ""
    return value


def _fernet_problem(value: str) -> str | None:
    try:
        from cryptography.fernet import Fernet
    except ImportError:
        return None  # the Airflow image has it; elsewhere only the other rules apply
    try:
        Fernet(value.encode())
    except (ValueError, TypeError):
        return "is not a Fernet key (32 url-safe base64-encoded bytes)"
    return None


def problems(env: dict[str, str]) -> list[str]:
    """One line per unusable secret, naming the .env variable and how to make a good value."""
    found = []
    for name, (seen_as, min_length, make) in SECRETS.items():
        value = _value(env, seen_as)
        if not value:
            why = "is not set"
        elif PLACEHOLDER_MARK in value.lower():
            why = "is still the placeholder from .env.example"
        elif value in PUBLISHED:
            why = "is a value published in this repository"
        elif len(value) < min_length:
            why = f"is {len(value)} characters long (at least {min_length})"
        elif name == "AIRFLOW_FERNET_KEY" and (bad := _fernet_problem(value)):
            why = bad
        else:
            continue
        found.append(f"{name} in .env {why}: set it to the output of `{make}`")
    return found


def main() -> int:
    found = problems(dict(os.environ))
    for line in found:
        print(f"airflow-init: refusing to start: {line}", file=sys.stderr)
    if found:
        print("airflow-init: edit .env (cp .env.example .env, then replace every change-me) and run "
              "`docker compose up` again", file=sys.stderr)
        return 1
    print("secrets: none is a placeholder or a published value")
    return 0


if __name__ == "__main__":
    sys.exit(main())
