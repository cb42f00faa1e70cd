"""The production topology of ``docker-compose.yml``, read as data and replayable as processes on one machine.

``docker-compose.yml`` (with the ``Dockerfile`` it builds) is the one description of the Celery topology:
PostgreSQL metadata DB, Redis broker, a one-shot ``airflow-init``, then api-server, scheduler, dag-processor,
triggerer and Celery worker(s). This module reads those two files and answers:

- :func:`compose_services`: every service with the command and the environment compose gives it;
- :func:`process_plan`: the same Airflow services as processes of this machine (no Docker engine needed), with
  the **same commands and the same environment**, in which every container address is mapped to a local one:
  service host names to ``127.0.0.1`` ports, image and volume paths to local folders, the metadata database
  and the Redis database to the caller's. Only what many processes sharing one host need on top is added
  (distinct ports for the per-process log/health servers, a host name per worker).

A value that names a container host or path the mapping does not know makes :func:`process_plan` raise, so the
compose file and the process topology cannot drift apart silently. ``tests/unit/test_compose.py`` checks the
compose file against the roles below; ``tests/e2e/test_celery_topology.py`` starts :func:`process_plan`.
"""

from __future__ import annotations

import re
import secrets
import shlex
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

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
HOSTNAME_CALLABLE = "segflow.topology.process_hostname"

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


# --- compose interpolation ----------------------------------------------------------------------------------------


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


# --- the processes ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalEndpoints:
    """Where this machine runs what compose runs in containers."""

    root: Path
    """Folder for the named volumes (``<root>/<volume>``) and AIRFLOW_HOME."""
    database: str
    """Metadata database on the local PostgreSQL (created by the caller)."""
    redis_db: int
    api_port: int
    postgres: tuple[str, int] = ("127.0.0.1", 5432)
    postgres_user: str = "postgres"
    redis: tuple[str, int] = ("127.0.0.1", 6379)
    host: str = "127.0.0.1"
    extra_ports: dict[str, int] = field(default_factory=dict)
    """Per-process server ports (log servers, scheduler health); free ports are taken when missing."""


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    """``airflow-worker-1``: the compose service, with the replica number for scaled services."""
    service: str
    argv: list[str]
    env: dict[str, str]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_hostname() -> str:
    """Airflow's ``hostname_callable`` for a process replica: its ``HOSTNAME`` (what a container gets), else the
    machine's name. Two workers on one machine thus record distinct host names on their task instances."""
    import os

    return os.environ.get("HOSTNAME") or socket.getfqdn()


class _Mapper:
    """Maps values of the containers' environment to this machine's."""

    def __init__(self, services: dict[str, dict], service: dict, local: LocalEndpoints):
        self.services = services
        self.local = local
        self.addresses = {METADATA_DB: local.postgres, BROKER: local.redis, API_SERVER: (local.host, local.api_port)}
        # the image's folders: copied from the checkout; AIRFLOW_HOME; the service's named volumes (local folders)
        paths: dict[str, Path] = {**image_copies(), IMAGE_AIRFLOW_HOME: local.root / "airflow-home"}
        paths.update({path: local.root / volume for path, volume in named_volumes(service).items()})
        self.paths = dict(sorted(paths.items(), key=lambda item: -len(item[0])))  # longest prefix first

    def url(self, value: str) -> str | None:
        parts = urlsplit(value)
        if not parts.scheme or not parts.netloc or parts.hostname not in self.services:
            return None
        if parts.hostname not in self.addresses:
            raise TopologyError(f"docker-compose.yml: {value!r} names service {parts.hostname!r}, which has no "
                                "local address in segflow.topology")
        host, port = self.addresses[parts.hostname]
        user, password, path = parts.username, parts.password, parts.path
        if parts.hostname == METADATA_DB:
            user, path = self.local.postgres_user, f"/{self.local.database}"
        elif parts.hostname == BROKER:
            path = f"/{self.local.redis_db}"
        userinfo = ""
        if user is not None or password is not None:
            userinfo = (user or "") + (f":{password}" if password is not None else "") + "@"
        return urlunsplit((parts.scheme, f"{userinfo}{host}:{port}", path, parts.query, parts.fragment))

    def path(self, value: str) -> str | None:
        for prefix, local in self.paths.items():
            if value == prefix or value.startswith(prefix + "/"):
                return str(local) + value[len(prefix):]
        return None

    def __call__(self, key: str, value: str) -> str:
        mapped = self.url(value) or (self.path(value) if value.startswith("/") else None)
        if mapped is not None:
            return mapped
        if value.startswith("/opt/"):
            raise TopologyError(f"docker-compose.yml: {key}={value!r} names a container path that "
                                "segflow.topology does not map to this machine (add it to the image or a volume)")
        return value


def service_env(name: str, dotenv: dict[str, str], local: LocalEndpoints, compose: dict | None = None
                ) -> dict[str, str]:
    """The environment compose gives service ``name`` (over the image's), mapped to this machine."""
    services = compose_services(compose)
    service = services[name]
    mapper = _Mapper(services, service, local)
    env = {**image_env(), **{k: interpolate(v, dotenv) for k, v in environment_of(service).items()}}
    return {key: mapper(key, value) for key, value in env.items()}


def process_plan(dotenv: dict[str, str], local: LocalEndpoints, *, workers: int = 1,
                 base_env: dict[str, str] | None = None, compose: dict | None = None) -> list[ProcessSpec]:
    """``airflow-init`` then every long-running Airflow service (``workers`` Celery workers) as local processes.

    ``dotenv`` plays ``.env`` (see :func:`generated_secrets`); ``base_env`` is the rest of the environment (PATH
    with this interpreter's folder first is added, so ``airflow`` and ``python`` are this installation's)."""
    compose = compose or load_compose()
    services = compose_services(compose)
    bin_dir = str(Path(sys.executable).parent)
    base = dict(base_env or {})
    base["PATH"] = bin_dir + ":" + base.get("PATH", "/usr/bin:/bin")
    ports = dict(local.extra_ports)

    def port(key: str) -> int:
        return ports.setdefault(key, free_port())

    plan = []
    for name in AIRFLOW_SERVICES:
        service = services[name]
        env = {**base, **service_env(name, dotenv, local, compose)}
        # One host for many processes: each in-process server needs its own port (in containers each has its own
        # network namespace); the api-server listens on the local port the Execution API URL points at.
        env.update({"AIRFLOW__API__HOST": local.host, "AIRFLOW__API__PORT": str(local.api_port),
                    "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(port("trigger_log_server")),
                    "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(port("scheduler_health")),
                    "AIRFLOW__CORE__HOSTNAME_CALLABLE": HOSTNAME_CALLABLE})
        command = command_of(service)
        if command[:1] in (["bash"], ["python"]):  # the official image's entrypoint runs these as they are
            mapper = _Mapper(services, service, local)
            argv = [command[0], *(mapper("command", c) for c in command[1:])]
        else:  # ... and anything else as `airflow <command>`
            argv = [str(Path(bin_dir) / "airflow"), *command]
        replicas = workers if name in SCALABLE else 1
        for replica in range(1, replicas + 1):
            label = f"{name}-{replica}" if name in SCALABLE else name
            penv = {**env, "HOSTNAME": label}
            extra = []
            if name == WORKER:
                penv["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(port(f"worker_log_server_{replica}"))
                extra = ["--celery-hostname", f"celery@{label}"]
            plan.append(ProcessSpec(name=label, service=name, argv=[*argv, *extra], env=penv))
    return plan
