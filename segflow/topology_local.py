"""docker-compose.yml's Airflow services as processes of this machine: same commands, same environment.

:func:`process_plan` takes each service of the compose file (:mod:`segflow.topology`) and maps every value that
names a container to a local one: service host names in URLs to ``127.0.0.1`` ports (the metadata database and
the Redis database of the caller), image paths to the checkout folders the Dockerfile copies, named volumes to
folders under one root, the image's AIRFLOW_HOME to another. It adds only what processes sharing one host need:
their own ports for the per-process log and health servers, and a host name per worker. A value it cannot map
raises :class:`~segflow.topology.TopologyError`. Started by tests/e2e/test_celery_topology.py (docs/deployment.md).
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from segflow.topology import (
    AIRFLOW_SERVICES,
    API_SERVER,
    BROKER,
    IMAGE_AIRFLOW_HOME,
    METADATA_DB,
    SCALABLE,
    WORKER,
    TopologyError,
    command_of,
    compose_services,
    environment_of,
    image_copies,
    image_env,
    interpolate,
    load_compose,
    named_volumes,
)

HOSTNAME_CALLABLE = "segflow.topology_local.process_hostname"


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
    wait_for: tuple[str, ...] = ()
    """Services that must be healthy before this one starts (compose's ``condition: service_healthy``)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_hostname() -> str:
    """Airflow's ``hostname_callable`` for a process replica: its ``HOSTNAME`` (what a container gets), else the
    machine's name. Two workers on one machine thus record distinct host names on their task instances."""
    return os.environ.get("HOSTNAME") or socket.getfqdn()


class _Mapper:
    """Maps values of the containers' environment to this machine's."""

    def __init__(self, services: dict[str, dict], service: dict, local: LocalEndpoints):
        self.services = services
        self.local = local
        self.addresses = {METADATA_DB: local.postgres, BROKER: local.redis,
                          API_SERVER: (local.host, local.api_port)}
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
                                "local address in segflow.topology_local")
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
                                "segflow.topology_local does not map to this machine (add it to the image or a "
                                "volume)")
        return value


def healthy_first(service: dict) -> tuple[str, ...]:
    """The Airflow services compose waits to be healthy before it starts ``service`` (Postgres and Redis are the
    caller's: already running)."""
    depends = service.get("depends_on", {})
    return tuple(name for name, spec in depends.items() if name in AIRFLOW_SERVICES and isinstance(spec, dict)
                 and spec.get("condition") == "service_healthy")


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

    ``dotenv`` plays ``.env`` (see :func:`segflow.topology.generated_secrets`); ``base_env`` is the rest of the
    environment (PATH gets this interpreter's folder first: ``airflow`` and ``python`` are this installation's)."""
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
            plan.append(ProcessSpec(name=label, service=name, argv=[*argv, *extra], env=penv,
                                    wait_for=healthy_first(service)))
    return plan
