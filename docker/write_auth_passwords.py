"""Write the Simple auth manager's passwords file from the environment.

Airflow's SimpleAuthManager takes its users from ``AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS``
(``name:role,name:role``) and their passwords from the JSON file ``{"name": "password"}`` named by
``AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE``. For a user missing from that file the api-server
invents a random password and prints it to its log. This script writes the passwords chosen in ``.env``
instead: the password of user ``name`` comes from ``SEGFLOW_<NAME>_PASSWORD`` (``SEGFLOW_ADMIN_PASSWORD``).

The file is rewritten on every run (the airflow-init service runs before the api-server starts), so a
password changed in ``.env`` takes effect on the next ``docker compose up``. Stdlib only.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from pathlib import Path

USERS_VAR = "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"
FILE_VAR = "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"


def password_var(username: str) -> str:
    return "SEGFLOW_" + re.sub(r"[^A-Za-z0-9]", "_", username).upper() + "_PASSWORD"


def usernames(spec: str) -> list[str]:
    """``"admin:admin,viewer:viewer"`` -> ``["admin", "viewer"]``."""
    return [entry.split(":", 1)[0].strip() for entry in spec.split(",") if entry.strip()]


def build_passwords(env: dict[str, str]) -> dict[str, str]:
    users = usernames(env.get(USERS_VAR, ""))
    if not users:
        raise SystemExit(f"{USERS_VAR} names no user")
    passwords: dict[str, str] = {}
    for user in users:
        value = env.get(password_var(user), "")
        if value:
            passwords[user] = value
        else:
            print(
                f"warning: {password_var(user)} is not set: the api-server will generate a password for "
                f"'{user}' and print it to its log",
                file=sys.stderr,
            )
    return passwords


def write_atomically(path: Path, passwords: dict[str, str]) -> None:
    # Owner-only: the file holds plaintext passwords. The api-server opens it read-write, so it must stay
    # owned by the user Airflow runs as (the init service runs as that same user).
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(passwords, handle)
            handle.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main() -> int:
    target = os.environ.get(FILE_VAR)
    if not target:
        raise SystemExit(f"{FILE_VAR} is not set")
    passwords = build_passwords(dict(os.environ))
    write_atomically(Path(target), passwords)
    print(f"wrote passwords for {sorted(passwords)} to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
