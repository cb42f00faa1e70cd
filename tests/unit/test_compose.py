"""The container topology (docker-compose.yml, Dockerfile, .env.example, docker/) is correct by construction.

No Docker engine runs where the tests run, so these tests read the files and assert the topology the
pipeline relies on: eight services, CeleryExecutor on Postgres + Redis, one shared JWT secret, tasks
reaching the Execution API through the api-server, the 1-slot DuckDB writer pool, a UI bound to loopback,
every compose variable documented, and an image whose Airflow matches pyproject.toml's pin.

The roles and the parsing come from :mod:`segflow.topology`, which also turns the compose file into the local
processes (segflow.topology_local) that tests/e2e/test_celery_topology.py starts: the tests at the end check that
every service maps to a process with the compose command and environment, and that an unmappable value is refused
rather than ignored.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from packaging.requirements import Requirement

from segflow import topology, topology_local

ROOT = topology.PROJECT_ROOT
COMPOSE_FILE = topology.COMPOSE_FILE
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = topology.DOCKERFILE
DOCKERIGNORE = ROOT / ".dockerignore"
DOCKER_DIR = ROOT / "docker"

AIRFLOW_SERVICES = set(topology.AIRFLOW_SERVICES)
ALL_SERVICES = AIRFLOW_SERVICES | set(topology.BACKING_SERVICES)
LONG_RUNNING = set(topology.LONG_RUNNING)
SEGFLOW_HOME = "/opt/segflow/home"

VAR_REF = topology.VAR_REF
env_of = topology.environment_of
command_of = topology.command_of
dockerfile_instructions = topology.dockerfile_instructions


# --- helpers ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return topology.load_compose()


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example line is not KEY=VALUE: {line!r}"
            values[key.strip()] = value.strip()
    return values


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose-style interpolation of one string against ``env`` (falling back on ``:-`` defaults)."""
    try:
        return topology.interpolate(value, env)
    except topology.TopologyError as exc:
        raise AssertionError(str(exc)) from None


def pip_requirements() -> dict[str, Requirement]:
    """Requirements named in the Dockerfile's `pip install` commands, by canonical project name."""
    reqs = {}
    for keyword, args in dockerfile_instructions():
        if keyword != "RUN" or "pip install" not in args:
            continue
        tokens = shlex.split(args)
        start = tokens.index("install") + 1
        for token in tokens[start:]:
            if token in ("&&", ";"):
                break
            if token.startswith(("-", "/", ".")) or "$" in token:
                continue
            req = Requirement(token)
            reqs[req.name.lower().replace("_", "-")] = req
    return reqs


def pyproject_airflow_version() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for dep in project["dependencies"]:
        req = Requirement(dep)
        if req.name == "apache-airflow":
            (spec,) = req.specifier
            assert spec.operator == "==", f"pyproject.toml must pin apache-airflow exactly, not {spec}"
            return spec.version
    raise AssertionError("pyproject.toml does not depend on apache-airflow")


def init_script() -> Path:
    return DOCKER_DIR / "airflow-init.sh"


# --- services and their wiring -----------------------------------------------------------------------------


def test_all_eight_services_and_no_version_key(compose, services):
    assert set(services) == ALL_SERVICES
    assert "version" not in compose, "the Compose spec has no `version:` key"


def test_airflow_services_share_one_image_and_build(services):
    images = {services[name]["image"] for name in AIRFLOW_SERVICES}
    assert len(images) == 1, images
    for name in AIRFLOW_SERVICES:
        assert services[name]["build"]["context"] == "."
        assert services[name]["build"]["dockerfile"] == "Dockerfile"


@pytest.mark.parametrize("name", sorted(AIRFLOW_SERVICES))
def test_airflow_service_environment(services, env_example, name):
    env = env_of(services[name])
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"

    db = urlsplit(interpolate(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], env_example))
    assert (db.scheme, db.hostname, db.path, db.username) == (
        "postgresql+psycopg2",
        "postgres",
        "/airflow",
        "airflow",
    )

    result = urlsplit(interpolate(env["AIRFLOW__CELERY__RESULT_BACKEND"], env_example))
    assert (result.scheme, result.hostname, result.path) == ("db+postgresql", "postgres", "/airflow")

    broker = urlsplit(env["AIRFLOW__CELERY__BROKER_URL"])
    assert (broker.scheme, broker.hostname, broker.port) == ("redis", "redis", 6379)

    # Tasks reach the Execution API through the api-server service, on the port it listens on.
    execution = urlsplit(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert execution.hostname == "airflow-apiserver" and "airflow-apiserver" in services
    assert execution.port == 8080 and execution.path == "/execution/"

    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"].lower() == "false"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/airflow/dags"
    assert env["AIRFLOW__COSMOS__ENABLE_TELEMETRY"].lower() == "false"
    assert env["DBT_SEND_ANONYMOUS_USAGE_STATS"].lower() == "false"
    assert env["SEGFLOW_HOME"] == SEGFLOW_HOME
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"].startswith("/opt/airflow/auth/")


@pytest.mark.parametrize(
    "key", ["AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__CORE__FERNET_KEY"]
)
def test_secrets_are_one_variable_shared_by_every_airflow_service(services, key):
    values = {env_of(services[name])[key] for name in AIRFLOW_SERVICES}
    assert len(values) == 1, f"{key} differs between Airflow services: {values}"
    (value,) = values
    refs = VAR_REF.findall(value)
    assert len(refs) == 1 and VAR_REF.fullmatch(value), f"{key} must be exactly one ${{VAR}} from .env"
    # No published fallback for a secret: compose must refuse to start without it.
    assert refs[0][1] in (":?", "?"), f"{key} must use ${{VAR:?message}}, not a default"


def test_every_airflow_container_mounts_segflow_home(compose, services):
    for name in AIRFLOW_SERVICES:
        mounts = dict(volume.split(":")[1::-1] for volume in services[name]["volumes"])
        assert mounts.get(SEGFLOW_HOME) == "segflow-home", f"{name} lacks the SEGFLOW_HOME volume"
    assert "segflow-home" in compose["volumes"]


def test_passwords_file_volume_only_where_needed(services):
    file_dir = Path(
        env_of(services["airflow-init"])["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    ).parent
    having = {
        name
        for name in AIRFLOW_SERVICES
        if any(v.endswith(f":{file_dir}") for v in services[name]["volumes"])
    }
    assert having == {"airflow-init", "airflow-apiserver"}


def test_start_order(services):
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"], f"{name} needs a healthcheck for service_healthy"
    for name in AIRFLOW_SERVICES:
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy"
        assert deps["redis"]["condition"] == "service_healthy"
    for name in LONG_RUNNING:
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
        assert "healthcheck" in services[name], f"{name} has no healthcheck"
    assert "airflow-init" not in services["airflow-init"]["depends_on"]
    assert services["airflow-init"].get("restart", "no") == "no"


def test_component_commands(services):
    assert command_of(services["airflow-apiserver"]) == ["api-server"]
    assert command_of(services["airflow-scheduler"]) == ["scheduler"]
    assert command_of(services["airflow-dag-processor"]) == ["dag-processor"]
    assert command_of(services["airflow-triggerer"]) == ["triggerer"]
    assert command_of(services["airflow-worker"]) == ["celery", "worker"]
    assert services["airflow-worker"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"


def test_backing_services(services):
    assert services["postgres"]["image"].startswith("postgres:16")
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert services["redis"]["image"].startswith("redis:7")
    assert services["redis"]["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]


def test_only_the_api_server_is_published_and_only_on_loopback(services, env_example):
    published = {name for name, svc in services.items() if svc.get("ports")}
    assert published == {"airflow-apiserver"}
    (port,) = services["airflow-apiserver"]["ports"]
    host_ip, host_port, container_port = interpolate(port, env_example).split(":")
    assert host_ip == "127.0.0.1"
    assert container_port == "8080" and host_port.isdigit()
    health = services["airflow-apiserver"]["healthcheck"]["test"]
    assert "http://localhost:8080/api/v2/monitor/health" in health


# --- airflow-init --------------------------------------------------------------------------------------------


def test_init_runs_the_script_baked_into_the_image(services):
    command = command_of(services["airflow-init"])
    assert command[0] == "bash"
    in_image = Path(command[1])
    # The Dockerfile copies docker/ to the folder the command runs the script from.
    copies = [args.split() for keyword, args in dockerfile_instructions() if keyword == "COPY"]
    assert any(c[-2:] == ["docker/", f"{in_image.parent}/"] for c in copies), copies
    assert (DOCKER_DIR / in_image.name).is_file()


def test_init_script_is_valid_bash():
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash not found")
    subprocess.run([bash, "-n", str(init_script())], check=True)


def test_init_creates_the_warehouse_pool_with_one_slot_and_migrates():
    commands = [
        shlex.split(line)
        for line in init_script().read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    pools = [c for c in commands if c[:3] == ["airflow", "pools", "set"]]
    assert any(c[3:5] == ["segflow_warehouse", "1"] and len(c) == 6 for c in pools), pools
    assert ["airflow", "db", "migrate"] in commands
    assert any(c[:1] == ["python"] and c[1].endswith("write_auth_passwords.py") for c in commands)
    text = init_script().read_text()
    for folder in ("landing", "artifacts", "exports"):
        assert f"${{SEGFLOW_HOME}}/{folder}" in text


def test_init_gets_the_ui_passwords_and_nobody_else(services):
    users_spec = env_of(services["airflow-init"])["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"]
    sys.path.insert(0, str(DOCKER_DIR))
    sys.dont_write_bytecode, saved = True, sys.dont_write_bytecode  # no __pycache__ inside docker/
    try:
        import write_auth_passwords as writer
    finally:
        sys.path.remove(str(DOCKER_DIR))
        sys.dont_write_bytecode = saved
    wanted = {writer.password_var(user) for user in writer.usernames(users_spec)}
    assert wanted == {"SEGFLOW_ADMIN_PASSWORD", "SEGFLOW_VIEWER_PASSWORD"}
    assert wanted <= set(env_of(services["airflow-init"]))
    for name in LONG_RUNNING:
        assert not wanted & set(env_of(services[name])), f"{name} must not see UI passwords"


def test_password_writer_writes_the_json_the_auth_manager_reads(tmp_path):
    target = tmp_path / "auth" / "passwords.json"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer,ops:op",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(target),
        "SEGFLOW_ADMIN_PASSWORD": "s3cret",
        "SEGFLOW_VIEWER_PASSWORD": 'quo"te',
    }
    script = DOCKER_DIR / "write_auth_passwords.py"
    run = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, check=True)
    # ops has no SEGFLOW_OPS_PASSWORD: left out (Airflow generates one) with a warning.
    assert json.loads(target.read_text()) == {"admin": "s3cret", "viewer": 'quo"te'}
    assert "SEGFLOW_OPS_PASSWORD" in run.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    # Rewritten on the next run, so a password changed in .env takes effect.
    env["SEGFLOW_ADMIN_PASSWORD"] = "rotated"
    subprocess.run([sys.executable, str(script)], env=env, capture_output=True, check=True)
    assert json.loads(target.read_text())["admin"] == "rotated"


# --- .env.example ---------------------------------------------------------------------------------------------


def strings_in(node) -> list[str]:
    """Every string value and key in the parsed compose file (comments are not interpolated)."""
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in strings_in(key) + strings_in(value)]
    if isinstance(node, list):
        return [s for item in node for s in strings_in(item)]
    return [node] if isinstance(node, str) else []


def test_every_compose_variable_is_documented_in_env_example(compose, env_example):
    used = {name for text in strings_in(compose) for name, _, _ in VAR_REF.findall(text)}
    assert used, "no ${VAR} found: the regex is broken"
    assert not used - set(env_example), f"undocumented in .env.example: {sorted(used - set(env_example))}"
    assert not set(env_example) - used, f"unused in docker-compose.yml: {sorted(set(env_example) - used)}"


SECRET_VARS = {"POSTGRES_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY",
               "SEGFLOW_PII_KEY", "SEGFLOW_ADMIN_PASSWORD", "SEGFLOW_VIEWER_PASSWORD"}


def secrets_checker():
    sys.path.insert(0, str(DOCKER_DIR))
    sys.dont_write_bytecode, saved = True, sys.dont_write_bytecode  # no __pycache__ inside docker/
    try:
        import check_secrets
    finally:
        sys.path.remove(str(DOCKER_DIR))
        sys.dont_write_bytecode = saved
    return check_secrets


def run_checker(services, values: dict[str, str]) -> subprocess.CompletedProcess:
    """docker/check_secrets.py with airflow-init's environment as compose would build it from ``values``."""
    env = {key: interpolate(value, values) for key, value in env_of(services["airflow-init"]).items()}
    env["PATH"] = os.environ.get("PATH", "")
    return subprocess.run([sys.executable, str(DOCKER_DIR / "check_secrets.py")], env=env, capture_output=True,
                          text=True, check=False)


def good_secrets(env_example: dict[str, str]) -> dict[str, str]:
    import secrets

    from cryptography.fernet import Fernet

    values = dict(env_example)
    values.update({name: secrets.token_urlsafe(32) for name in SECRET_VARS})
    values["AIRFLOW_FERNET_KEY"] = Fernet.generate_key().decode()
    values["SEGFLOW_PII_KEY"] = secrets.token_hex(32)
    return values


def test_env_example_ships_placeholders_only(env_example):
    for key, value in env_example.items():
        # empty would make compose itself refuse (${VAR:?}) before init could say what to do
        assert value, f"{key} is empty in .env.example"
    assert SECRET_VARS <= set(env_example)
    for name in SECRET_VARS:
        assert "change-me" in env_example[name].lower(), f"{name} must be a placeholder, not a usable secret"
    assert re.fullmatch(r"[A-Za-z0-9._-]+", env_example["POSTGRES_PASSWORD"]), "must be URL-safe"


def test_init_checks_the_secrets_before_anything_else():
    commands = [shlex.split(line) for line in init_script().read_text().splitlines()
                if line.strip() and not line.lstrip().startswith(("#", "echo", ":", "here=", "set "))]
    assert commands[0][:1] == ["python"] and commands[0][1].endswith("check_secrets.py"), commands[0]
    assert commands.index(["airflow", "db", "migrate"]) > 0


def test_init_refuses_every_placeholder_of_env_example_by_name(services, env_example):
    run = run_checker(services, env_example)
    assert run.returncode == 1
    refused = set(re.findall(r"refusing to start: (\w+) in \.env is still the placeholder", run.stderr))
    assert refused == SECRET_VARS, run.stderr
    assert "secrets.token_hex(32)" in run.stderr and "Fernet.generate_key()" in run.stderr


def test_init_accepts_generated_secrets_and_refuses_published_or_weak_ones(services, env_example):
    good = good_secrets(env_example)
    run = run_checker(services, good)
    assert run.returncode == 0, run.stderr
    for name, bad, why in (("AIRFLOW_FERNET_KEY", "2ZgiVMvmwZ8Yq7CNz2Sg5cbkTzCQrDHfnNrZCo3TKBc=", "published"),
                           ("AIRFLOW_FERNET_KEY", "x" * 44, "not a Fernet key"),
                           ("POSTGRES_PASSWORD", "airflow", "published"),
                           ("SEGFLOW_PII_KEY", "short-key", "characters long"),
                           ("SEGFLOW_ADMIN_PASSWORD", "Change-Me-please-soon", "placeholder")):
        run = run_checker(services, {**good, name: bad})
        assert run.returncode == 1
        assert f"{name} in .env" in run.stderr and why in run.stderr, run.stderr
        assert bad not in run.stderr or why == "published", "the checker must not print a secret it refuses"


def test_checker_rules_match_segflow(services):
    from segflow.privacy import MIN_KEY_LENGTH, PLACEHOLDER_MARK

    checker = secrets_checker()
    assert (checker.PLACEHOLDER_MARK, checker.MIN_KEY_LENGTH) == (PLACEHOLDER_MARK, MIN_KEY_LENGTH)
    # every secret it checks reaches airflow-init, so none is checked against an empty value by mistake
    init_env = env_of(services["airflow-init"])
    assert {seen_as for seen_as, _, _ in checker.SECRETS.values()} <= set(init_env)


def test_only_init_and_the_worker_see_the_pii_key(services):
    having = {name for name in AIRFLOW_SERVICES if "SEGFLOW_PII_KEY" in env_of(services[name])}
    assert having == {"airflow-init", "airflow-worker"}
    for name in having:
        (ref,) = VAR_REF.findall(env_of(services[name])["SEGFLOW_PII_KEY"])
        assert ref[0] == "SEGFLOW_PII_KEY" and ref[1] == ":?", "no default for a secret"


def test_postgres_refuses_its_placeholder_password_before_creating_the_volume(services, env_example):
    sh = shutil.which("sh")
    if sh is None:
        pytest.skip("sh not found")
    entrypoint = services["postgres"]["entrypoint"]
    assert entrypoint[:2] == ["/bin/sh", "-c"]
    script = entrypoint[2].replace("$$", "$")  # compose's escape for a literal $
    for password, refused in ((env_example["POSTGRES_PASSWORD"], True), ("CHANGE-ME", True),
                              (good_secrets(env_example)["POSTGRES_PASSWORD"], False)):
        run = subprocess.run([sh, "-c", script], env={"POSTGRES_PASSWORD": password, "PATH": "/nonexistent"},
                             capture_output=True, text=True, check=False)
        if refused:
            assert run.returncode == 1 and "POSTGRES_PASSWORD in .env is still the placeholder" in run.stderr
        else:  # past the guard: it execs the image's entrypoint, which does not exist here
            assert run.returncode == 127 and "docker-entrypoint.sh" in run.stderr, run.stderr


# --- Dockerfile ----------------------------------------------------------------------------------------------


def test_base_image_matches_the_airflow_pin():
    froms = [args for keyword, args in dockerfile_instructions() if keyword == "FROM"]
    assert len(froms) == 1, froms
    match = re.fullmatch(r"apache/airflow:(?P<version>[0-9][^-\s]*)-python3\.11", froms[0])
    assert match, f"unexpected base image {froms[0]!r}"
    assert match["version"] == pyproject_airflow_version()


def test_image_installs_segflow_with_the_celery_extra():
    install = next(a for k, a in dockerfile_instructions() if k == "RUN" and "pip install" in a)
    assert "--no-cache-dir" in install
    assert "apache-airflow==${AIRFLOW_VERSION}" in install, "pin Airflow to the base image's version"
    assert "/opt/segflow/src[celery]" in shlex.split(install), "segflow itself, with its celery extra"
    assert not pip_requirements(), "pin the image's packages in pyproject.toml (one place for image and venv)"
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    reqs = {r.name: r for r in map(Requirement, extras["celery"])}
    assert "redis" in reqs["celery"].extras
    assert not reqs["celery"].specifier.contains("5.7.0"), "celery 5.7 breaks apache-airflow-providers-celery"
    assert reqs["celery"].specifier.contains("5.6.3")
    assert str(reqs["apache-airflow-providers-celery"].specifier) == "==3.26.0"
    assert {"apache-airflow-providers-postgres", "psycopg2-binary"} <= set(reqs)
    assert "segflow[celery]" in extras["dev"], "the dev install (and so the test suite) has the celery stack"


def test_image_layout():
    instructions = dockerfile_instructions()
    copies = [args.split() for keyword, args in instructions if keyword == "COPY"]
    destinations = {c[-1].rstrip("/") for c in copies}
    assert {"/opt/airflow/dags", "/opt/airflow/plugins", "/opt/airflow/dbt_project"} <= destinations
    env = " ".join(args for keyword, args in instructions if keyword == "ENV")
    assert f"SEGFLOW_HOME={SEGFLOW_HOME}" in env
    # The image must run as the airflow user, the official image's way.
    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users and users[-1] == "airflow"


def test_copy_sources_exist_and_are_not_dockerignored():
    ignored = {
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for keyword, args in dockerfile_instructions():
        if keyword != "COPY":
            continue
        sources = [token for token in args.split()[:-1] if not token.startswith("--")]
        for source in sources:
            if any(ch in source for ch in "*?["):
                continue  # optional by design (README*)
            assert (ROOT / source).exists(), f"COPY source {source} is missing: the build would fail"
            assert source.rstrip("/") not in ignored, f"{source} is copied but .dockerignore drops it"


def test_dockerignore_keeps_local_state_and_secrets_out():
    ignored = {line.strip() for line in DOCKERIGNORE.read_text().splitlines()}
    assert {".venv", ".segflow", ".git", ".env", "**/__pycache__", ".pytest_cache"} <= ignored


# --- optional: the real Compose parser --------------------------------------------------------------------------


def compose_cli() -> list[str] | None:
    """`docker compose` (v2 plugin) or a standalone v2 `docker-compose`; None if neither works."""
    candidates = []
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
    for cli in candidates:
        try:
            out = subprocess.run([*cli, "version", "--short"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip().lstrip("v").startswith("2"):
            return cli
    return None


def test_docker_compose_config_accepts_the_file(tmp_path):
    """`docker compose config` validates against the Compose spec and interpolates, without an engine."""
    cli = compose_cli()
    if cli is None:
        pytest.skip(
            "no Compose v2 CLI here (`docker compose` plugin or v2 `docker-compose`); "
            "the structural tests above still ran"
        )
    base = [*cli, "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE)]
    run = subprocess.run(
        [*base, "--env-file", str(ENV_EXAMPLE), "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    config = json.loads(run.stdout)
    assert set(config["services"]) == ALL_SERVICES
    assert config["services"]["airflow-apiserver"]["ports"][0]["host_ip"] == "127.0.0.1"

    # Without a .env the secrets have no value: Compose must refuse instead of using a default.
    clean_env = {k: v for k, v in os.environ.items() if not re.match(r"(AIRFLOW_|POSTGRES_|SEGFLOW_)", k)}
    empty_env = tmp_path / "empty.env"
    empty_env.write_text("")
    refused = subprocess.run(
        [*base, "--env-file", str(empty_env), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env,
    )
    assert refused.returncode != 0
    assert "required variable" in refused.stderr or "missing a value" in refused.stderr, refused.stderr


# --- the same topology as local processes (segflow.topology_local; started by tests/e2e/test_celery_topology.py)


@pytest.fixture(scope="module")
def local(tmp_path_factory) -> topology_local.LocalEndpoints:
    return topology_local.LocalEndpoints(root=tmp_path_factory.mktemp("topology"), database="segflow_x",
                                         redis_db=7, api_port=18101)


@pytest.fixture(scope="module")
def plan(compose, local) -> list[topology_local.ProcessSpec]:
    dotenv = {**topology.generated_secrets(compose), "AIRFLOW_WORKER_CONCURRENCY": "2"}
    return topology_local.process_plan(dotenv, local, workers=2, base_env={"PATH": "/usr/bin"}, compose=compose)


def test_generated_secrets_cover_every_required_variable_and_pass_the_init_check(compose, services, plan):
    secrets_ = topology.generated_secrets(compose)
    assert set(secrets_) == topology.required_variables(compose) == SECRET_VARS
    assert secrets_checker().problems(plan[0].env) == []
    # ... and compose would refuse to start without each of them
    with pytest.raises(topology.TopologyError, match="set AIRFLOW_JWT_SECRET in .env"):
        without_jwt = {k: v for k, v in secrets_.items() if k != "AIRFLOW_JWT_SECRET"}
        nowhere = topology_local.LocalEndpoints(root=Path("/x"), database="d", redis_db=0, api_port=1)
        topology_local.service_env(topology.WORKER, without_jwt, nowhere, compose)


def test_every_airflow_service_becomes_a_process_running_the_compose_command(services, plan, local):
    by_service: dict[str, list] = {}
    for spec in plan:
        by_service.setdefault(spec.service, []).append(spec)
    assert list(by_service) == list(topology.AIRFLOW_SERVICES)  # init first, the api-server before the workers
    assert len(by_service[topology.WORKER]) == 2
    init = by_service[topology.INIT][0]
    assert init.argv == ["bash", str(DOCKER_DIR / "airflow-init.sh")]
    for name in topology.LONG_RUNNING:
        for spec in by_service[name]:
            assert Path(spec.argv[0]).name == "airflow"
            assert spec.argv[1:1 + len(command_of(services[name]))] == command_of(services[name])
    assert spec.env["PATH"].startswith(str(Path(sys.executable).parent))
    # compose starts the workers once the api-server is healthy (tasks need the Execution API); so do the processes
    assert {spec.wait_for for spec in by_service[topology.WORKER]} == {(topology.API_SERVER,)}
    assert not any(spec.wait_for for spec in plan if spec.service != topology.WORKER)


def test_process_environment_is_the_compose_environment_mapped_to_this_machine(services, plan, local):
    for spec in plan:
        compose_env = env_of(services[spec.service])
        assert set(compose_env) <= set(spec.env), f"{spec.name} lost a compose variable"
        for key, value in spec.env.items():
            assert "/opt/" not in value, f"{spec.name}: {key}={value} still names a container path"
            if "://" in value:
                assert urlsplit(value).hostname not in ALL_SERVICES, f"{spec.name}: {key}={value}"
        env = spec.env
        db = urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        assert (db.hostname, db.port, db.path, db.username) == ("127.0.0.1", 5432, "/segflow_x", "postgres")
        assert urlsplit(env["AIRFLOW__CELERY__BROKER_URL"]).path == "/7"
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18101/execution/"
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(ROOT / "dags")  # the image's COPY source
        assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == str(ROOT / "plugins")
        assert env["SEGFLOW_HOME"] == str(local.root / "segflow-home")  # the named volume, as a local folder
        assert env["AIRFLOW__LOGGING__BASE_LOG_FOLDER"] == str(local.root / "airflow-logs")
    # the passwords file: written by init, read by the api-server, on the airflow-auth volume of both
    auth = {spec.name: spec.env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] for spec in plan}
    assert auth[topology.INIT] == auth[topology.API_SERVER]
    assert auth[topology.INIT].startswith(str(local.root / "airflow-auth"))


def test_processes_of_one_machine_get_distinct_ports_and_host_names(plan):
    workers = [spec for spec in plan if spec.service == topology.WORKER]
    assert len({w.env["HOSTNAME"] for w in workers}) == 2
    assert [w.argv[-2:] for w in workers] == [["--celery-hostname", f"celery@{w.env['HOSTNAME']}"]
                                              for w in workers]
    ports = [int(w.env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"]) for w in workers]
    ports += [int(plan[0].env[key]) for key in ("AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT",
                                                "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT",
                                                "AIRFLOW__API__PORT")]
    assert len(set(ports)) == len(ports)
    assert {spec.env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] for spec in plan} == {topology_local.HOSTNAME_CALLABLE}
    os.environ["HOSTNAME"], saved = "airflow-worker-9", os.environ.get("HOSTNAME")
    try:
        assert topology_local.process_hostname() == "airflow-worker-9"
    finally:
        os.environ.pop("HOSTNAME") if saved is None else os.environ.update(HOSTNAME=saved)


@pytest.mark.parametrize("value", ["/opt/airflow-extra/thing", "http://airflow-scheduler:8974/health",
                                   "postgresql://u:p@postgres-replica/airflow"])
def test_a_value_the_local_topology_cannot_map_is_refused(compose, local, value):
    import copy

    changed = copy.deepcopy(compose)
    changed["services"]["airflow-worker"]["environment"]["NEW_SETTING"] = value
    if "postgres-replica" in value:
        changed["services"]["postgres-replica"] = {"image": "postgres:16"}
    with pytest.raises(topology.TopologyError, match="NEW_SETTING|names service"):
        topology_local.process_plan(topology.generated_secrets(compose), local, compose=changed)
