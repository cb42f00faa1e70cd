"""The production topology of ``docker-compose.yml``, read as data.

``docker-compose.yml`` (with the ``Dockerfile`` it builds) is the one description of the Celery topology:
PostgreSQL metadata DB, Redis broker, a one-shot ``airflow-init``, then api-server, scheduler, dag-processor,
triggerer and Celery worker(s). This module names the roles and reads the two files: each service's command and
environment (as compose interpolates it), its named volumes, the image's environment and copied folders, the
secrets compose requires. ``tests/unit/test_compose.py`` checks the compose file with it;
:mod:`segflow.topology_local` replays the same services as processes of one machine (no Docker engine needed),
which ``tests/e2e/test_celery_topology.py`` starts.
"""

from __future__ import annotations

import re
import secrets
import shlex
from pathlib import Path

from segflow.errors import SegflowError
from segflow.settings import PROJECT_ROOT

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
DOCKERFILE = PROJECT_ROOT / "Dockerfile"

# --- roles: the service names of docker-compose.yml ------------------------------------------------------------
METADATA_DB = "postgres"
BROKER = "redis"
INIT = "airflow-init"
API_SERVER = "airflow-apiserver"
SCHEDULER = "airflow-scheduler"
DAG_PROCESSOR = "airflow-dag-processor"
TRIGGERER = "airflow-triggerer"
WORKER = "airflow-worker"
BACKING_SERVICES = (METADATA_DB, BROKER)
LONG_RUNNING = (API_SERVER, SCHEDULER, DAG_PROCESSOR, TRIGGERER, WORKER)
"""In start order: tasks need the api-server (Execution API) before any worker runs them."""
AIRFLOW_SERVICES = (INIT, *LONG_RUNNING)
SCALABLE = (WORKER,)
"""Services run as several replicas (``docker compose up --scale airflow-worker=N``); the others run once."""

IMAGE_AIRFLOW_HOME = "/opt/airflow"
IMAGE_BASE_ENV = {
    # What the official apache/airflow image sets or implies (its AIRFLOW_HOME and the folders under it):
    # explicit here because a local process has another AIRFLOW_HOME.
    "AIRFLOW_HOME": IMAGE_AIRFLOW_HOME,
    "AIRFLOW__CORE__PLUGINS_FOLDER": f"{IMAGE_AIRFLOW_HOME}/plugins",
    "AIRFLOW__LOGGING__BASE_LOG_FOLDER": f"{IMAGE_AIRFLOW_HOME}/logs",
}

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR?err}; not $${VAR} (a literal for the container).
VAR_REF = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


class TopologyError(SegflowError):
    """docker-compose.yml names something the local process topology cannot map, or lacks a value."""


# --- reading the files -------------------------------------------------------------------------------------------


def load_compose(path: Path = COMPOSE_FILE) -> dict:
    import yaml

    # safe_load resolves the x-airflow-common anchor and its `<<:` merge keys, as compose does.
    return yaml.safe_load(path.read_text())


def compose_services(compose: dict | None = None) -> dict[str, dict]:
    return (compose or load_compose())["services"]


def environment_of(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if not isinstance(env, dict):
        raise TopologyError("use the mapping form of `environment` in docker-compose.yml (services merge it)")
    return {key: str(value) for key, value in env.items()}


def command_of(service: dict) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def named_volumes(service: dict) -> dict[str, str]:
    """Mount point in the container -> named volume, for the ``volume:/path`` entries of a service."""
    mounts = {}
    for entry in service.get("volumes", []):
        source, _, target = str(entry).partition(":")
        if target and not source.startswith((".", "/", "~")):
            mounts[target.split(":")[0].rstrip("/")] = source
    return mounts


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per logical line, with backslash continuations joined."""
    instructions, current = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line.startswith("#") or (not current and not line):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        keyword, _, args = current.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        current = ""
    return instructions


def image_env(path: Path = DOCKERFILE) -> dict[str, str]:
    """The official image's AIRFLOW_HOME layout plus every ``ENV key=value`` of segflow's Dockerfile."""
    env = dict(IMAGE_BASE_ENV)
    for keyword, args in dockerfile_instructions(path):
        if keyword == "ENV":
            for token in shlex.split(args):
                key, sep, value = token.partition("=")
                if not sep:
                    raise TopologyError(f"Dockerfile: use the ENV key=value form, not {args!r}")
                env[key] = value
    return env


def image_copies(path: Path = DOCKERFILE, root: Path = PROJECT_ROOT) -> dict[str, Path]:
    """Folder in the image -> the checkout's folder it is copied from (``COPY dags/ /opt/airflow/dags/``)."""
    copies = {}
    for keyword, args in dockerfile_instructions(path):
        if keyword != "COPY":
            continue
        tokens = [t for t in args.split() if not t.startswith("--")]
        *sources, target = tokens
        if len(sources) == 1 and sources[0].endswith("/"):
            copies[target.rstrip("/")] = root / sources[0].rstrip("/")
    return copies


# --- compose interpolation -----------------------------------------------------------------------------------


def interpolate(value: str, dotenv: dict[str, str]) -> str:
    """Compose's interpolation of one value against ``dotenv`` (what ``.env`` holds): ``:-`` defaults apply,
    a ``:?`` variable without a value raises with compose's message."""

    def repl(match: re.Match) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if dotenv.get(name):
            return dotenv[name]
        if op in (":-", "-"):
            return arg
        raise TopologyError(f"docker-compose.yml needs {name}: {arg or 'no value and no default'}")

    return VAR_REF.sub(repl, value).replace("$$", "$")


def required_variables(compose: dict | None = None) -> set[str]:
    """Variables compose refuses to start without (``${VAR:?...}``): the secrets, which have no default."""
    found = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(key)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, str):
            found.update(name for name, op, _ in VAR_REF.findall(node) if op in (":?", "?"))

    walk(compose or load_compose())
    return found


def generated_secrets(compose: dict | None = None) -> dict[str, str]:
    """A fresh, random value for every required variable of the compose file (a throw-away ``.env``)."""
    from cryptography.fernet import Fernet

    return {name: Fernet.generate_key().decode() if "FERNET" in name else secrets.token_hex(32)
            for name in sorted(required_variables(compose))}
