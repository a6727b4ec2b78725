"""Checks of docker-compose.yaml, the Dockerfile and .dockerignore: no Docker engine needed.

The compose file is loaded by the real Docker Compose CLI (`docker compose config`, built from its Go module
by `dev/stack.sh install`) with .env.example as its env file, both as written and interpolated: Compose
itself parses the env file, interpolates, and validates against the Compose Specification. The other tests
pin down what Compose accepts but this project does not: every ${VAR} is documented or defaulted, secrets
are required rather than defaulted, long-running services have healthchecks, Airflow waits for
airflow-init, connections point at service names, and the image installs only the hash-locked requirements
of the same Airflow version as its base image.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
ENV_EXAMPLE = REPO / ".env.example"
LOCK = REPO / "requirements" / "airflow.lock"

AIRFLOW_SERVICES = {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"}
# run once and exit 0; everything else runs for good and must report health
ONE_SHOT = {"airflow-init", "member-seed", "minio-init"}
EXPECTED_SERVICES = {"postgres", "mysql", "minio", "databricks-runner", *ONE_SHOT, *AIRFLOW_SERVICES}
# a scope is a name, and an access key id a user name; every other *_KEY is key material
SECRET_NAME = re.compile(r"PASSWORD|SECRET(?!_SCOPE)|TOKEN|FERNET|KMS|(?<!ACCESS)_KEY$")


# ------------------------------------------------------------------------------------ the Compose CLI
# Variable names a compose string refers to (`$$` is a literal dollar): only to find which service mentions
# a variable; the Compose CLI does all interpolation.
_REF = re.compile(r"\$\$|\$\{(?P<name>\w+)[^}]*\}|\$(?P<bare>[A-Za-z_]\w*)")


def variable_names(text: str) -> set[str]:
    return {m.group("name") or m.group("bare") for m in _REF.finditer(text) if m.group(0) != "$$"}


def compose_cli(*args: str, env_file: Path = ENV_EXAMPLE, file: Path = COMPOSE_FILE) -> subprocess.CompletedProcess:
    """`docker compose --env-file <env_file> -f <file> config <args>`, run by the Docker Compose CLI that
    `dev/stack.sh install` builds (COMPOSE_BIN), in an environment holding nothing but PATH and HOME: a
    variable of the caller's environment would win over the env file's, as it does for `docker compose`."""
    binary = os.environ.get("COMPOSE_BIN", "")
    if not os.access(binary, os.X_OK):
        pytest.fail(f"the Docker Compose CLI is not installed (COMPOSE_BIN={binary!r}): run `dev/stack.sh install` "
                    "and the tests through `dev/stack.sh run` (make test does both)")
    return subprocess.run([binary, "--project-directory", str(REPO), "--env-file", str(env_file), "-f", str(file),
                           "config", *args], capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(REPO)})


_CLI_ENV = {"PATH", "HOME"}


def compose_ok(*args: str, **kwargs) -> str:
    done = compose_cli(*args, **kwargs)
    assert done.returncode == 0, done.stderr
    return done.stdout


def strings(node) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)
    elif isinstance(node, str):
        yield node


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict]:
    return compose["services"]


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    """.env.example as Compose reads an env file (`config --environment`)."""
    env = dict(line.split("=", 1) for line in compose_ok("--environment").splitlines() if "=" in line)
    return {k: v for k, v in env.items() if k not in _CLI_ENV}  # compose_cli's own environment


@pytest.fixture(scope="module")
def resolved() -> dict:
    """The compose model as `docker compose` sees it with .env copied from .env.example: interpolated,
    validated against the Compose Specification, in its canonical long form (`config --format json`)."""
    return json.loads(compose_ok("--format", "json"))


@pytest.fixture(scope="module")
def variables() -> dict[str, dict]:
    """Every variable the compose file refers to: {name: {"DefaultValue", "Required", ...}}."""
    return json.loads(compose_ok("--variables", "--format", "json"))


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def depends_on(service: dict) -> dict[str, dict]:
    deps = service.get("depends_on") or {}
    # the short (list) form means condition: service_started
    return {d: {"condition": "service_started"} for d in deps} if isinstance(deps, list) else deps


def container_ports(service: dict) -> set[int]:
    ports = set()
    for p in service.get("ports", []):
        ports.add(int(p["target"]) if isinstance(p, dict) else int(str(p).rsplit(":", 1)[-1].split("/")[0]))
    return ports


# ------------------------------------------------------------------------------------ compose: shape
def test_compose_defines_the_whole_stack(compose, services):
    assert set(services) == EXPECTED_SERVICES, "a new service must be classified here (one-shot or not)"
    assert {"x-airflow-common"} <= set(compose), "Airflow services share the official x-airflow-common anchor"
    assert set(compose["volumes"]) >= {"postgres-data", "mysql-data", "minio-data", "airflow-logs"}


@pytest.mark.parametrize("variant", [("--no-interpolate",), ()], ids=["as written", "interpolated with .env.example"])
def test_the_compose_cli_loads_the_file(variant):
    compose_ok("--quiet", *variant)


@pytest.mark.parametrize(("path", "value", "message"), [
    (("services", "postgres", "healthchek"), {"test": ["CMD", "true"]}, "healthchek"),
    (("services", "member-seed", "depends_on", "mysql", "condition"), "service_done",
     "services.member-seed.depends_on.mysql.condition"),
])
def test_the_compose_cli_refuses_a_broken_file(compose, tmp_path, path, value, message):
    # guards against a check that passes everything
    broken = copy.deepcopy(compose)
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    (tmp_path / "docker-compose.yaml").write_text(yaml.safe_dump(broken))
    done = compose_cli("--quiet", file=tmp_path / "docker-compose.yaml")
    assert done.returncode != 0 and message in done.stderr, done.stderr


def referenced_paths(service: dict) -> Iterator[tuple[Path, str]]:
    """(path, kind) of the build context, Dockerfile, required env files and bind-mount sources."""
    build = service.get("build")
    if build is not None:
        build = {"context": build} if isinstance(build, str) else build
        context = REPO / build.get("context", ".")
        yield context, "dir"
        yield context / build.get("dockerfile", "Dockerfile"), "file"
    env_files = service.get("env_file") or []
    for entry in [env_files] if isinstance(env_files, str) else env_files:
        entry = {"path": entry} if isinstance(entry, str) else entry
        if entry.get("required", True):
            yield REPO / entry["path"], "file"
    for volume in service.get("volumes", []):
        if isinstance(volume, str):  # short syntax: a bind mount's source is a path, a volume's a name
            source = volume.split(":", 1)[0]
            volume = {"type": "bind" if source.startswith((".", "/", "~")) else "volume", "source": source}
        if volume.get("type") == "bind":
            yield REPO / volume["source"], "any"


def test_every_path_the_compose_file_references_exists(services):
    paths = [(name, path, kind) for name, svc in services.items() for path, kind in referenced_paths(svc)]
    assert any(kind == "dir" for _, _, kind in paths), "expected at least the build context to be checked"
    exists = {"dir": Path.is_dir, "file": Path.is_file, "any": Path.exists}
    missing = [f"{name}: {path}" for name, path, kind in paths if not exists[kind](path)]
    assert not missing, missing


def test_every_variable_is_in_env_example_or_has_a_default(variables, env_example):
    assert {"MYSQL_ROOT_PASSWORD", "AIRFLOW_API_PORT"} <= set(variables), "expected the file's variables"
    undocumented = sorted(name for name, v in variables.items()
                          if name not in env_example and not v["DefaultValue"] and not v["Required"])
    assert not undocumented, f"add to .env.example or give a :-default: {undocumented}"


def test_env_example_satisfies_every_required_variable(variables, env_example, tmp_path):
    required = sorted(name for name, v in variables.items() if v["Required"])
    assert required and not [name for name in required if not env_example.get(name)]
    # and without an .env, compose refuses to start, naming what is missing
    (tmp_path / "empty.env").write_text("")
    done = compose_cli("--quiet", env_file=tmp_path / "empty.env")
    assert done.returncode != 0 and any(name in done.stderr for name in required), done.stderr


def test_secrets_are_required_never_defaulted(variables, services):
    secrets = {name: v for name, v in variables.items() if SECRET_NAME.search(name)}
    assert {"MYSQL_ROOT_PASSWORD", "DATABRICKS_TOKEN", "AIRFLOW__CORE__FERNET_KEY", "LAKEHOUSE_PII_HMAC_KEY",
            "LAKEHOUSE_PII_ENCRYPTION_KEY", "LAKEHOUSE_CHANGE_HASH_KEY"} <= set(secrets)
    defaulted = sorted(name for name, v in secrets.items() if not v["Required"] or v["DefaultValue"])
    assert not defaulted, f"secrets must be ${{VAR:?...}}, never defaulted or optional: {defaulted}"
    for name, svc in services.items():
        for key, value in environment(svc).items():
            if SECRET_NAME.search(key) and not key.endswith("_FILE"):
                assert "${" in value, f"{name}: {key} is hard-coded; take it from .env"


def test_long_running_services_have_healthchecks(services):
    for name, svc in services.items():
        if name in ONE_SHOT:
            assert svc.get("restart") == "no", f"{name} is a one-shot job: restart must be 'no'"
            assert not svc.get("ports"), f"{name} is a one-shot job and should publish no port"
            continue
        check = svc.get("healthcheck") or {}
        test = check.get("test")
        assert test and not check.get("disable"), f"{name} has no healthcheck"
        assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, (name, test)


def test_dependencies_wait_for_health_or_successful_completion(services):
    for name, svc in services.items():
        for dep, spec in depends_on(svc).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            want = "service_completed_successfully" if dep in ONE_SHOT else "service_healthy"
            assert spec.get("condition") == want, f"{name} -> {dep}: condition should be {want}"


def test_airflow_components_are_gated_by_airflow_init(services):
    init = services["airflow-init"]
    assert depends_on(init) == {"postgres": {"condition": "service_healthy"}}
    script = " ".join(init["command"]) if isinstance(init["command"], list) else init["command"]
    assert "airflow db migrate" in script
    # the _AIRFLOW_DB_MIGRATE entrypoint hook ignores a failed migration (`|| true`): not used
    assert "_AIRFLOW_DB_MIGRATE" not in environment(init)
    for name in AIRFLOW_SERVICES:
        assert depends_on(services[name]).get("airflow-init") == {
            "condition": "service_completed_successfully"
        }, name


def test_admin_password_reaches_the_api_server_only_through_the_passwords_file(services):
    init, api = services["airflow-init"], services["airflow-apiserver"]
    passwords_file = environment(api)["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    assert environment(init)["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] == passwords_file
    assert "AIRFLOW_ADMIN_PASSWORD" in environment(init)
    assert all("AIRFLOW_ADMIN_PASSWORD" not in environment(services[n]) for n in AIRFLOW_SERVICES)
    # init writes the file, the api-server reads it: the same named volume must hold its folder in both
    folder = str(Path(passwords_file).parent)
    init_mounts, api_mounts = (
        {v for v in svc["volumes"] if v.split(":")[1] == folder} for svc in (init, api)
    )
    assert init_mounts and init_mounts == api_mounts, (init_mounts, api_mounts)


def test_airflow_settings(services, resolved, env_example):
    for name in AIRFLOW_SERVICES | {"airflow-init"}:
        svc, env = services[name], environment(resolved["services"][name])
        assert "build" in svc and svc["build"]["context"] == ".", f"{name}: image is built from ./Dockerfile"
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"].lower() == "false"
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
        metadata = urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        assert (metadata.hostname, metadata.port) == ("postgres", 5432)
        assert metadata.password == env_example["AIRFLOW_METADATA_PASSWORD"]
        assert env["AIRFLOW__CORE__FERNET_KEY"] == env_example["AIRFLOW__CORE__FERNET_KEY"]
        assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == env_example["AIRFLOW__API_AUTH__JWT_SECRET"]
        assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == f"{env_example['AIRFLOW_ADMIN_USER']}:admin"
        assert "_PIP_ADDITIONAL_REQUIREMENTS" not in env
        if name != "airflow-init":  # init alone runs as root, to hand the volumes to AIRFLOW_UID
            assert svc["user"] == "${AIRFLOW_UID:-50000}:0", name
    assert 8080 in container_ports(services["airflow-apiserver"])


def test_airflow_connections_point_at_services(services, resolved, env_example):
    env = environment(resolved["services"]["airflow-scheduler"])

    mysql = urlsplit(env["AIRFLOW_CONN_MYSQL_MEMBERS"])
    assert (mysql.scheme, mysql.hostname, mysql.port) == ("mysql", "mysql", 3306)
    assert (mysql.username, mysql.password) == (env_example["MYSQL_EXTRACT_USER"],
                                                env_example["MYSQL_EXTRACT_PASSWORD"])
    assert mysql.path == f"/{env_example['MYSQL_DATABASE']}"
    assert 3306 in container_ports(services["mysql"])

    aws = json.loads(env["AIRFLOW_CONN_AWS_LAKEHOUSE"])
    assert aws["conn_type"] == "aws" and aws["extra"]["endpoint_url"] == "http://minio:9000"
    assert aws["extra"]["region_name"] == env_example["S3_REGION"]
    assert aws["login"] == env_example["S3_ACCESS_KEY_ID"]
    assert aws["password"] == env_example["S3_SECRET_ACCESS_KEY"]
    assert 9000 in container_ports(services["minio"])

    databricks = urlsplit(env["AIRFLOW_CONN_DATABRICKS_DEFAULT"])
    assert (databricks.scheme, databricks.hostname) == ("databricks", "databricks-runner")
    assert databricks.port == 8765
    assert (databricks.path, databricks.password) == ("/http", env_example["DATABRICKS_TOKEN"])
    runner = runner_argv(services)
    assert runner[runner.index("--port") + 1] == "8765" and runner[runner.index("--host") + 1] == "0.0.0.0"

    # apart from where the service lives, each connection is the one .env.example gives the process stack
    for key in ("AIRFLOW_CONN_MYSQL_MEMBERS", "AIRFLOW_CONN_DATABRICKS_DEFAULT"):
        ours, theirs = urlsplit(env[key]), urlsplit(env_example[key])
        assert (ours.scheme, ours.username, ours.password, ours.path, ours.query) == (
            theirs.scheme, theirs.username, theirs.password, theirs.path, theirs.query), key
    theirs = json.loads(env_example["AIRFLOW_CONN_AWS_LAKEHOUSE"])
    for conn in (aws, theirs):
        conn["extra"].pop("endpoint_url")
    assert aws == theirs


def test_in_network_services_use_service_names(resolved):
    runner = environment(resolved["services"]["databricks-runner"])
    assert runner["S3_ENDPOINT_URL"] == "http://minio:9000"
    seed = environment(resolved["services"]["member-seed"])
    assert (seed["MYSQL_HOST"], seed["MYSQL_PORT"]) == ("mysql", "3306")
    for name, svc in resolved["services"].items():
        for key, value in environment(svc).items():
            assert "127.0.0.1" not in value and "localhost" not in value, f"{name}: {key}={value}"


# Which code runs in which service: every .env.example variable that code reads must reach that service
# (its environment, or a ${VAR} in its definition), or the docker stack silently falls back to a default.
CODE_OF_SERVICE = {
    "airflow-scheduler": ["dags/**/*.py", "include/**/*.py", "plugins/**/*.py"],
    "databricks-runner": ["dev/databricks_runner/**/*.py", "dev/local_spark.py", "spark_jobs/**/*.py"],
    "member-seed": ["dev/seed_members.py"],
}
_ENV_READ = re.compile(r"""\b(?:environ|getenv|env)(?:\.get)?\s*[\[(]\s*["']([A-Z][A-Z0-9_]*)["']""")


@pytest.mark.parametrize("service", sorted(CODE_OF_SERVICE))
def test_variables_the_code_reads_reach_its_service(service, compose, services, env_example):
    files = sorted({p for pattern in CODE_OF_SERVICE[service] for p in REPO.glob(pattern)})
    assert files, f"no code found for {service}"
    read = {name for f in files for name in _ENV_READ.findall(f.read_text(encoding="utf-8"))}
    # the Airflow components share one environment, so all of them must pass what DAG code reads
    for target in sorted(AIRFLOW_SERVICES) if service in AIRFLOW_SERVICES else [service]:
        svc = services[target]
        given = set(environment(svc)) | {name for text in strings(svc) for name in variable_names(text)}
        missing = sorted((read & set(env_example)) - given)
        assert not missing, f"{target} does not pass {missing}, which its code reads"


def runner_argv(services: dict) -> list[str]:
    """The argv the runner service finally execs (its command is a script that fills the secret store
    first)."""
    script = services["databricks-runner"]["command"][0]
    return shlex.split(script.split("exec ", 1)[1].replace("\\\n", " "))


def test_data_lives_in_named_volumes(compose, services):
    expected = {
        "postgres": "/var/lib/postgresql/data",
        "mysql": "/var/lib/mysql",
        "minio": "/data",
        "databricks-runner": "/opt/airflow/.local/databricks_runner",
        "airflow-scheduler": "/opt/airflow/logs",
    }
    for name, target in expected.items():
        sources = [v.split(":")[0] for v in services[name].get("volumes", []) if v.split(":")[1] == target]
        assert sources and sources[0] in compose["volumes"], f"{name}:{target} is not on a named volume"
    runner = runner_argv(services)
    assert runner[runner.index("--state-dir") + 1] == expected["databricks-runner"]


def test_ports_are_published_on_loopback_only(services):
    for name, svc in services.items():
        for port in svc.get("ports", []):
            host_ip = port.get("host_ip") if isinstance(port, dict) else str(port).split(":")[0]
            assert host_ip == "127.0.0.1", f"{name} publishes {port} on every interface"


# ------------------------------------------------------------------------------------ Dockerfile
def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comment lines dropped."""
    instructions, current = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") or (not line.strip() and not current):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        keyword, _, args = current.strip().partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        current = ""
    return instructions


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return dockerfile_instructions(DOCKERFILE.read_text())


def global_args(instructions) -> dict[str, str]:
    args = {}
    for keyword, value in instructions:
        if keyword == "FROM":
            break
        if keyword == "ARG" and "=" in value:
            name, default = value.split("=", 1)
            args[name] = default.strip('"')
    return args


def stages(instructions) -> list[dict]:
    """Each FROM: resolved image, stage name, and its instructions."""
    args, result = global_args(instructions), []
    for keyword, value in instructions:
        if keyword == "FROM":
            words = value.split()
            words = [w for w in words if not w.startswith("--platform")]
            image = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m[1] or m[2], ""), words[0])
            name = words[2] if len(words) > 2 and words[1].upper() == "AS" else None
            result.append({"image": image, "name": name, "instructions": []})
        elif result:
            result[-1]["instructions"].append((keyword, value))
    return result


def env_of(stage: dict) -> dict[str, str]:
    env = {}
    for keyword, value in stage["instructions"]:
        if keyword == "ENV":
            for pair in shlex.split(value):
                key, _, val = pair.partition("=")
                env[key] = val
    return env


def lock_pin(package: str) -> str:
    match = re.search(rf"^{re.escape(package)}==(\S+)", LOCK.read_text(), re.MULTILINE)
    assert match, f"{package} is not pinned in {LOCK.name}"
    return match.group(1)


def test_base_image_airflow_version_matches_the_lock(dockerfile):
    airflow_images = {s["image"] for s in stages(dockerfile) if s["image"].startswith("apache/airflow:")}
    assert len(airflow_images) == 1, f"every Airflow stage should use one base image: {airflow_images}"
    final = stages(dockerfile)[-1]["image"]
    assert final in airflow_images
    match = re.fullmatch(r"apache/airflow:(?P<airflow>[\d.]+)-python(?P<python>[\d.]+)", final)
    assert match, f"base image {final} is not apache/airflow:<version>-python<version>"
    assert match["airflow"] == lock_pin("apache-airflow")
    compiled_for = re.search(r"--python-version (\S+)", LOCK.read_text())
    assert compiled_for and match["python"] == compiled_for.group(1), "lock compiled for another Python"


# pip/uv options that take a value (consumed so the value is not mistaken for a package)
_VALUE_OPTIONS = {"-r", "--requirement", "-c", "--constraint", "--constraints", "-b", "--build-constraints",
                  "-p", "--python", "--target", "--prefix", "--index-url", "-i", "--cache-dir"}
_INSTALLERS = [("uv", "pip", "install"), ("uv", "pip", "sync"), ("pip", "install"), ("pip3", "install"),
               ("python", "-m", "pip", "install"), ("python3", "-m", "pip", "install")]


def shell_commands(script: str) -> Iterator[list[str]]:
    """The simple commands of a shell script, split at ;, &&, || and | (outside quotes)."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    command: list[str] = []
    for token in lexer:
        if set(token) <= set(";&|"):
            yield command
            command = []
        else:
            command.append(token)
    yield command


def install_commands(instructions) -> list[list[str]]:
    commands = []
    for keyword, value in instructions:
        if keyword != "RUN":
            continue
        for words in shell_commands(value):
            words = [w for w in words if not w.startswith("--mount=")]
            words = [w.rsplit("/", 1)[-1] if i == 0 else w for i, w in enumerate(words)]  # /x/bin/pip -> pip
            if any(tuple(words[: len(installer)]) == installer for installer in _INSTALLERS):
                commands.append(words)
    return commands


def test_dockerfile_installs_only_the_hash_locked_requirements(dockerfile):
    text = DOCKERFILE.read_text()
    for forbidden in ("no-verify-hashes", "NO_VERIFY_HASHES", "_PIP_ADDITIONAL_REQUIREMENTS", "pipx",
                      "uv tool install", "uv add", "easy_install", "conda install"):
        assert forbidden not in text, f"Dockerfile uses {forbidden}"
    commands = install_commands(dockerfile)
    assert commands, "no pip/uv install found in the Dockerfile"
    copied = {shlex.split(v)[-1] for k, v in dockerfile
              if k == "COPY" and any(w.startswith("requirements/") and w.endswith(".lock") for w in shlex.split(v))}
    for words in commands:
        assert "--require-hashes" in words, f"install without --require-hashes: {' '.join(words)}"
        requirement_files = []
        i = next(i for i, word in enumerate(words) if word in ("install", "sync")) + 1
        while i < len(words):
            word = words[i]
            if word in _VALUE_OPTIONS:
                if word in ("-r", "--requirement"):
                    requirement_files.append(words[i + 1])
                i += 2
            elif word.startswith("-"):
                i += 1
            else:
                pytest.fail(f"installs {word!r} outside the lock: {' '.join(words)}")
        assert requirement_files and all(f in copied for f in requirement_files), (requirement_files, copied)


def test_dockerfile_ships_the_spark_runtime(dockerfile):
    all_stages = stages(dockerfile)
    by_name = {s["name"]: s for s in all_stages if s["name"]}
    maven = [s for s in all_stages
             if any("copy-dependencies" in v for k, v in s["instructions"] if k == "RUN")]
    assert len(maven) == 1
    run = " ".join(v for k, v in maven[0]["instructions"] if k == "RUN")
    assert "-DexcludeTransitive=true" in run and "-DoutputDirectory=/opt/lakehouse-cache/jars" in run
    assert any(k == "COPY" and v.split()[0] == "dev/jars/pom.xml" for k, v in maven[0]["instructions"])

    final = all_stages[-1]
    env = env_of(final)
    assert env["LAKEHOUSE_CACHE"] == "/opt/lakehouse-cache"
    copies = [shlex.split(v) for k, v in final["instructions"] if k == "COPY"]
    assert [f"--from={maven[0]['name']}", "/opt/lakehouse-cache/jars", "${LAKEHOUSE_CACHE}/jars"] in copies
    # Java 17 (Spark 4 runs on 17 and 21): the JRE copied in must be a 17
    java_from = [c[0].removeprefix("--from=") for c in copies if c[-1] == "${JAVA_HOME}"]
    assert java_from and re.search(r"temurin:17\b", by_name[java_from[0]]["image"])
    assert env["JAVA_HOME"] and env["PATH"].startswith("${JAVA_HOME}/bin")


def test_dockerfile_copies_the_project_onto_pythonpath(dockerfile):
    final = stages(dockerfile)[-1]
    # the project root, and the jobs package's sources for the contracts the DAGs share with the jobs
    assert env_of(final)["PYTHONPATH"] == "/opt/airflow:/opt/airflow/spark_jobs/src"
    copies = [[w for w in shlex.split(v) if not w.startswith("--")]
              for k, v in final["instructions"] if k == "COPY" and "--from=" not in v]
    destinations = {src.rstrip("/"): dst.rstrip("/") for src, dst in copies}
    for folder in ("dags", "include", "plugins", "spark_jobs", "dev"):
        assert destinations.get(folder) == f"/opt/airflow/{folder}", folder
    # every local COPY source exists, or the build fails on a fresh clone
    for keyword, value in dockerfile:
        if keyword == "COPY" and "--from=" not in value:
            for source in [w for w in shlex.split(value) if not w.startswith("--")][:-1]:
                assert (REPO / source).exists(), f"COPY source {source} does not exist"


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_build_context():
    patterns = {line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip()}
    assert {".env", ".venv", ".local", ".git"} <= patterns
