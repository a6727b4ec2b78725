#!/usr/bin/env bash
# The local stack as plain processes on loopback, for machines without docker.
#
#   dev/stack.sh install   install what is missing: Debian packages, the locked venv, Spark jars, MinIO, .env
#   dev/stack.sh start     start MariaDB, Postgres, MinIO, the Databricks runner and Airflow (reuses running ones)
#   dev/stack.sh deploy    build the spark_jobs wheel and deploy it to the runner's local workspace
#   dev/stack.sh stop      stop them all; data stays under .local/ for the next start
#   dev/stack.sh status    what runs, where
#   dev/stack.sh restart-airflow scheduler triggerer ...   restart those Airflow components of the profile
#   dev/stack.sh run CMD   run CMD with the stack's environment (.env + Airflow settings)
#
# LAKEHOUSE_PROFILE picks whose data: `demo` (the default, `make demo`) or `test` (`make test`). Both share
# the servers (MariaDB, Postgres, MinIO, the runner); the test profile has its own MySQL database, buckets and
# Airflow (home, metadata database, ports; the TEST_* names in .env), so no test reads or changes what the demo
# loaded, and the DAGs run unchanged: only their connections and settings name other places, as between two
# deployments. `start` starts the profile's Airflow beside the other's; `stop` and `status` cover both.
#
# Everything it starts belongs to this checkout: data and logs under .local/, downloads cached under
# $LAKEHOUSE_CACHE (default ~/.cache/lakehouse-ref) so a second checkout on the same machine installs fast.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${LAKEHOUSE_STATE:-$REPO/.local}
CACHE=${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse-ref}
VENV=$REPO/.venv
RUNTIME=$STATE/databricks-runtime
PY=$VENV/bin/python
UV_VERSION=0.13.8
# MinIO publishes no semver tags, so the Go proxy knows it by commit; this one is 2026-02-12.
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
MINIO_BIN=$CACHE/bin/minio-$MINIO_VERSION
# Toxiproxy, the TCP proxy the fault tests put in front of MariaDB and MinIO (tests/faults/)
TOXIPROXY_VERSION=v2.5.0
TOXIPROXY_BIN=$CACHE/bin/toxiproxy-server-$TOXIPROXY_VERSION
# The Docker Compose CLI, which tests/test_compose.py runs (`config`) to load the compose file as Docker does
COMPOSE_VERSION=v5.6.0
COMPOSE_BIN=$CACHE/bin/docker-compose-$COMPOSE_VERSION
APT_PACKAGES=(mariadb-server mariadb-client libmariadb-dev pkg-config postgresql maven openjdk-17-jre-headless)

say() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }
die() { printf '\033[1;31mstack: %s\033[0m\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------- install
install_apt() {
  local missing=()
  command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
  command -v mariadb >/dev/null || missing+=(mariadb-client)
  [ -f /usr/include/mariadb/mysql.h ] || missing+=(libmariadb-dev)
  command -v pkg-config >/dev/null || missing+=(pkg-config)
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
  command -v mvn >/dev/null || missing+=(maven)
  command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
  if [ ${#missing[@]} -eq 0 ]; then say "Debian packages: all present"; return; fi
  say "Debian packages: installing ${missing[*]} (one minute or two)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >"$STATE/logs/apt.log" 2>&1 \
    || die "apt-get install failed; see $STATE/logs/apt.log"
}

install_venv() {
  local want have
  want=$(cat "$REPO/requirements/dev.lock" "$REPO/spark_jobs/pyproject.toml" | sha256sum | cut -c1-16)
  have=$(cat "$VENV/.lock-hash" 2>/dev/null || true)
  if [ "$want" = "$have" ]; then say "Python venv: up to date with requirements/dev.lock"; return; fi
  say "Python venv: installing requirements/dev.lock into .venv (about a minute; pyspark alone is 400 MB)"
  [ -x "$PY" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "uv==$UV_VERSION"
  # mysqlclient builds against libmariadb; pkg-config finds it
  "$VENV/bin/uv" pip sync -q -p "$PY" --require-hashes "$REPO/requirements/dev.lock"
  # the jobs package itself, editable: its dependencies are already in the lock (compiled from its pyproject)
  "$VENV/bin/uv" pip install -q -p "$PY" --no-deps -e "$REPO/spark_jobs"
  echo "$want" >"$VENV/.lock-hash"
}

# The base environment of the local Databricks runner: what a Databricks runtime provides (runtime.lock)
# and nothing else, so a job that imports a library its run does not declare fails here as on Databricks.
install_runtime() {
  local want have
  want=$(sha256sum "$REPO/requirements/runtime.lock" | cut -c1-16)
  have=$(cat "$RUNTIME/.lock-hash" 2>/dev/null || true)
  if [ "$want" = "$have" ]; then say "Databricks runtime environment: up to date with requirements/runtime.lock"; return; fi
  say "Databricks runtime environment: installing requirements/runtime.lock into ${RUNTIME#"$REPO"/}"
  rm -rf "$RUNTIME"
  "$VENV/bin/uv" venv -q -p "$(command -v python3)" "$RUNTIME"
  "$VENV/bin/uv" pip sync -q -p "$RUNTIME/bin/python" --require-hashes "$REPO/requirements/runtime.lock"
  echo "$want" >"$RUNTIME/.lock-hash"
}

install_jars() {
  local want have
  want=$(sha256sum "$REPO/dev/jars/pom.xml" | cut -c1-16)
  have=$(cat "$CACHE/jars/.pom-hash" 2>/dev/null || true)
  if [ "$want" = "$have" ]; then say "Spark jars: cached in $CACHE/jars"; return; fi
  say "Spark jars: resolving Delta + S3A from Maven Central into $CACHE/jars (~700 MB, the AWS SDK bundle)"
  rm -rf "$CACHE/jars"
  mvn -q -B -f "$REPO/dev/jars/pom.xml" org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DexcludeTransitive=true -DoutputDirectory="$CACHE/jars" >"$STATE/logs/maven.log" 2>&1 \
    || die "maven could not resolve the jars; see $STATE/logs/maven.log"
  echo "$want" >"$CACHE/jars/.pom-hash"
}

# go_tool <name> <module>@<version> <binary> <cached path> <duration>: build a Go program from its module
# into the cache once per machine (the cache is a speed-up; the module proxy is the source)
go_tool() {
  local name=$1 module=$2 binary=$3 target=$4 took=$5 log
  if [ -x "$target" ]; then say "$name: cached at $target"; return; fi
  command -v go >/dev/null || die "Go is needed to build $name from its Go module; install Go >= 1.24"
  say "$name: building ${module##*@} from its Go module ($took, once per machine)"
  local gobin; gobin=$(mktemp -d); log=$STATE/logs/${name,,}-build.log
  GOBIN=$gobin GOFLAGS=-mod=mod go install "$module" >"$log" 2>&1 || die "$name build failed; see $log"
  mkdir -p "$CACHE/bin" && mv "$gobin/$binary" "$target" && rmdir "$gobin"
}

install_minio() {
  go_tool MinIO "github.com/minio/minio@$MINIO_VERSION" minio "$MINIO_BIN" "about 3 minutes on 2 cores"
}

install_toxiproxy() {
  go_tool Toxiproxy "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION" server "$TOXIPROXY_BIN" \
    "about a minute"
}

# Compose's go.mod has exclude and replace directives, which `go install module@version` refuses: build it as
# its own Makefile does, inside the module's source (from the module proxy), with the version stamped in.
install_compose() {
  if [ -x "$COMPOSE_BIN" ]; then say "Docker Compose: cached at $COMPOSE_BIN"; return; fi
  command -v go >/dev/null || die "Go is needed to build Docker Compose from its Go module; install Go >= 1.26"
  say "Docker Compose: building $COMPOSE_VERSION from its Go module (about a minute, once per machine)"
  local module=github.com/docker/compose/v5 src log=$STATE/logs/compose-build.log dir
  dir=$(GOFLAGS=-mod=mod go mod download -json "$module@$COMPOSE_VERSION" \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])') \
    || die "could not download $module@$COMPOSE_VERSION from the Go module proxy"
  src=$(mktemp -d) && cp -r "$dir/." "$src" && chmod -R u+w "$src"
  mkdir -p "$CACHE/bin"
  (cd "$src" && GOFLAGS=-mod=mod go build -trimpath -ldflags "-w -X $module/internal.Version=$COMPOSE_VERSION" \
    -o "$COMPOSE_BIN.tmp" ./cmd) >"$log" 2>&1 || die "Docker Compose build failed; see $log"
  mv "$COMPOSE_BIN.tmp" "$COMPOSE_BIN" && rm -rf "$src"
}

# .env from .env.example, every `change-me` replaced by a fresh random secret of the right shape. An
# existing .env is kept as it is, but gets any variable of .env.example it lacks (with the comment lines
# just above it, and a fresh secret for a change-me), so an older clone picks up new settings; only the
# names of what was added are printed, never a value.
install_env() {
  local existed=false added
  [ -f "$REPO/.env" ] && existed=true
  $existed || say ".env: creating from .env.example with random secrets"
  added=$(python3 - "$REPO/.env.example" "$REPO/.env" <<'EOF'
import base64, os, re, secrets, sys
src, dst = sys.argv[1:]
def secret(name):
    if name == "MINIO_KMS_SECRET_KEY":  # MinIO's static KMS key: name:base64(32 bytes)
        return "lakehouse-key:" + base64.b64encode(secrets.token_bytes(32)).decode()
    if name == "AIRFLOW__CORE__FERNET_KEY":
        return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    if name.startswith("LAKEHOUSE_PII_") or name == "LAKEHOUSE_CHANGE_HASH_KEY":  # standard base64 of 32 bytes
        return base64.b64encode(secrets.token_bytes(32)).decode()
    return secrets.token_hex(16)  # URI-safe: these go into AIRFLOW_CONN_* URIs
def fill(line):
    return re.sub(r"^(\w+)=change-me$", lambda m: f"{m[1]}={secret(m[1])}", line.rstrip("\n")) + "\n"
assignment = re.compile(r"^\s*(?:export\s+)?(\w+)=")
example = open(src).readlines()
if not os.path.exists(dst):
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.writelines(fill(line) for line in example)
    sys.exit()
with open(dst) as f:
    present = {m[1] for line in f if (m := assignment.match(line))}
added, block = [], []
for i, line in enumerate(example):
    m = assignment.match(line)
    if not m or m[1] in present:
        continue
    comments = []  # the comment lines right above it, which say what it is for (not a section header)
    j = i - 1
    while j >= 0 and example[j].startswith("#") and not example[j].startswith("# ---"):
        if assignment.match(example[j].lstrip("# ")):
            break  # a commented-out default of another variable
        comments.insert(0, example[j].rstrip("\n") + "\n")
        j -= 1
    block += comments + [fill(line)]
    added.append(m[1])
if added:
    with open(dst, "a") as f:
        f.write("\n# added from .env.example by dev/stack.sh install\n")
        f.writelines(block)
    print(" ".join(added))
EOF
  ) || die "could not write .env from .env.example"
  chmod 600 "$REPO/.env"
  if ! $existed; then return; fi
  if [ -n "$added" ]; then say ".env: present (kept); added from .env.example: $added"
  else say ".env: present (kept)"; fi
}

cmd_install() {
  mkdir -p "$STATE/logs" "$STATE/run" "$CACHE"
  install_apt
  install_venv
  install_runtime
  install_jars
  install_minio
  install_toxiproxy
  install_compose
  install_env
  say "install: done"
}

# ---------------------------------------------------------------------------------------------- environment
load_env() {
  [ -f "$REPO/.env" ] || die ".env is missing: run 'dev/stack.sh install' (or make demo) first"
  set -a
  # shellcheck disable=SC1091
  . "$REPO/.env"
  LAKEHOUSE_PROFILE=${LAKEHOUSE_PROFILE:-demo}
  LAKEHOUSE_STATE=$STATE
  TOXIPROXY_BIN=$TOXIPROXY_BIN  # started by the fault tests themselves (tests/faults/conftest.py)
  COMPOSE_BIN=$COMPOSE_BIN  # run by tests/test_compose.py
  # Airflow's default ports for its log servers and the scheduler's health check, and every scheduled run
  AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=8793
  AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=8794
  AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT=8974
  AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE=True
  case $LAKEHOUSE_PROFILE in
    demo) AIRFLOW_NAME=airflow ;;
    test)
      [ -n "${TEST_MYSQL_DATABASE:-}" ] || die "TEST_* settings missing from .env: run 'dev/stack.sh install' (make test does)"
      MYSQL_DATABASE=$TEST_MYSQL_DATABASE
      LANDING_BUCKET=$TEST_LANDING_BUCKET
      LAKEHOUSE_BUCKET=$TEST_LAKEHOUSE_BUCKET
      AIRFLOW_API_PORT=$TEST_AIRFLOW_API_PORT
      # .env's own connection lines once more, now that they expand to the test database
      eval "$(grep -E '^AIRFLOW_CONN_[A-Z0-9_]+=' "$REPO/.env")"
      AIRFLOW_NAME=airflow-test
      # only the runs a test triggers: no scheduled or Asset-triggered run lands between a test's runs
      AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE=False
      # beside the demo's Airflow, which may be running
      AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=8797
      AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=8798
      AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT=8975
      ;;
    *) die "LAKEHOUSE_PROFILE=$LAKEHOUSE_PROFILE: expected demo or test" ;;
  esac
  # the profile's Airflow: process and log names, home and metadata database (airflow, airflow_test)
  AIRFLOW_HOME=$STATE/$AIRFLOW_NAME
  AIRFLOW_METADATA_DB=${AIRFLOW_NAME//-/_}
  AIRFLOW__CORE__DAGS_FOLDER=$REPO/dags
  AIRFLOW__CORE__PLUGINS_FOLDER=$REPO/plugins
  AIRFLOW__CORE__LOAD_EXAMPLES=False
  AIRFLOW__CORE__EXECUTOR=LocalExecutor
  AIRFLOW__CORE__PARALLELISM=4
  AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=postgresql+psycopg2://airflow:${AIRFLOW_METADATA_PASSWORD}@127.0.0.1:${AIRFLOW_METADATA_PORT}/${AIRFLOW_METADATA_DB}
  AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:${AIRFLOW_API_PORT}/execution/
  AIRFLOW__API__BASE_URL=http://127.0.0.1:${AIRFLOW_API_PORT}
  AIRFLOW__API__PORT=${AIRFLOW_API_PORT}
  AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=${AIRFLOW_ADMIN_USER}:admin
  AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=$AIRFLOW_HOME/passwords.json
  # new DAG files show up within seconds instead of the default five minutes
  AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=15
  AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK=True
  PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}
  PATH=$VENV/bin:$PATH
  set +a
  export -n AIRFLOW_NAME AIRFLOW_METADATA_DB  # this script's own
}

# ---------------------------------------------------------------------------------------------- processes
pidfile() { echo "$STATE/run/$1.pid"; }
running() { local p; p=$(cat "$(pidfile "$1")" 2>/dev/null) && kill -0 "$p" 2>/dev/null; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_bg NAME PORT CMD...: a new session (so stop can kill the whole tree), log under .local/logs
start_bg() {
  local name=$1 port=$2; shift 2
  if running "$name"; then say "$name: already running (pid $(cat "$(pidfile "$name")"))"; return 1; fi
  port_free "$port" || die "$name: port $port is taken by a process this checkout did not start (another checkout's stack? 'make down' there)"
  setsid nohup "$@" >>"$STATE/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$(pidfile "$name")"
  say "$name: starting on 127.0.0.1:$port (log: .local/logs/$name.log)"
}

wait_for() {  # wait_for NAME SECONDS CMD...: poll until CMD succeeds
  local name=$1 secs=$2; shift 2
  for _ in $(seq "$secs"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if ! running "$name" && [ -f "$(pidfile "$name")" ]; then
      tail -20 "$STATE/logs/$name.log" >&2; die "$name exited during start-up (log above)"
    fi
    sleep 1
  done
  tail -20 "$STATE/logs/$name.log" >&2; die "$name not ready after ${secs}s (log above)"
}

http_ok() { curl -fsS -o /dev/null "$1"; }

# A private CA and a server certificate for 127.0.0.1/localhost, so TLS to MySQL (ssl_mode REQUIRED or
# VERIFY_IDENTITY in the connection's extra) can be exercised locally. Clients find the CA at
# .local/tls/ca.pem.
make_tls() {
  local dir=$STATE/tls
  [ -f "$dir/server-cert.pem" ] && return
  say "tls: creating a local CA and a server certificate for MariaDB in .local/tls"
  mkdir -p "$dir" && chmod 700 "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=lakehouse-ref local CA" \
    -keyout "$dir/ca-key.pem" -out "$dir/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$dir/server-key.pem" \
    -out "$dir/server.csr" 2>/dev/null
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" -CAcreateserial \
    -days 3650 -extfile <(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost') -out "$dir/server-cert.pem" 2>/dev/null
  rm -f "$dir/server.csr"
}

start_mariadb() {
  local data=$STATE/mariadb
  make_tls
  if [ ! -d "$data/mysql" ]; then
    say "mariadb: initialising a data directory in .local/mariadb"
    mariadb-install-db --datadir="$data" --user=root --auth-root-authentication-method=normal \
      --skip-test-db >"$STATE/logs/mariadb-init.log" 2>&1 || die "mariadb-install-db failed; see .local/logs/mariadb-init.log"
  fi
  # local_infile lets the seeder bulk-load; the extract user never gets FILE privileges
  start_bg mariadb "$MYSQL_PORT" "$(command -v mariadbd || echo /usr/sbin/mariadbd)" --no-defaults \
    --datadir="$data" --user=root --port="$MYSQL_PORT" --bind-address=127.0.0.1 \
    --socket="$STATE/run/mysqld.sock" --pid-file="$STATE/run/mysqld.own.pid" --local-infile=1 \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
    --innodb-buffer-pool-size=512M --innodb-flush-log-at-trx-commit=2 \
    --ssl-ca="$STATE/tls/ca.pem" --ssl-cert="$STATE/tls/server-cert.pem" --ssl-key="$STATE/tls/server-key.pem" || true
  # ping answers "alive" even when the login is refused, which is all we ask here. `env -u`: the
  # client would otherwise follow MYSQL_HOST from .env to TCP instead of the socket.
  local client=(--no-defaults --protocol=socket --socket="$STATE/run/mysqld.sock" -uroot)
  wait_for mariadb 60 env -u MYSQL_HOST mariadb-admin "${client[@]}" ping
  # a fresh data directory has password-less root accounts: give them the password from .env
  if env -u MYSQL_HOST mariadb "${client[@]}" -e 'SELECT 1' >/dev/null 2>&1; then
    env -u MYSQL_HOST mariadb "${client[@]}" -e "
      ALTER USER 'root'@'localhost' IDENTIFIED BY '$MYSQL_ROOT_PASSWORD';
      DROP USER IF EXISTS 'root'@'127.0.0.1', 'root'@'::1', 'root'@'$(hostname)';
      DELETE FROM mysql.global_priv WHERE User='';
      FLUSH PRIVILEGES;"
  fi
}

pg_bin() { ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1; }

start_postgres() {
  # Postgres refuses to run as root, so its data directory belongs to the postgres user; if that user
  # cannot reach .local/ (a checkout under /root), the data lives under /var/lib/postgresql instead.
  local data=$STATE/postgres bin; bin=$(pg_bin)
  if ! runuser -u postgres -- test -x "$STATE"; then
    data=/var/lib/postgresql/lakehouse-ref-$(echo -n "$REPO" | sha256sum | cut -c1-12)
  fi
  echo "$data" >"$STATE/run/postgres.datadir"
  if [ ! -f "$data/PG_VERSION" ]; then
    say "postgres: initialising the Airflow metadata database in $data"
    mkdir -p "$data" && chown postgres:postgres "$data" && chmod 700 "$data"
    local pw; pw=$(mktemp); echo "$AIRFLOW_METADATA_PASSWORD" >"$pw"; chown postgres "$pw"
    runuser -u postgres -- "$bin/initdb" -D "$data" -U postgres --auth=scram-sha-256 --pwfile="$pw" \
      >"$STATE/logs/postgres-init.log" 2>&1 || die "initdb failed; see .local/logs/postgres-init.log"
    rm -f "$pw"
  fi
  if runuser -u postgres -- "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    say "postgres: already running"
  else
    port_free "$AIRFLOW_METADATA_PORT" || die "postgres: port $AIRFLOW_METADATA_PORT is taken by another process"
    say "postgres: starting on 127.0.0.1:$AIRFLOW_METADATA_PORT"
    touch "$STATE/logs/postgres.log" && chown postgres "$STATE/logs/postgres.log" 2>/dev/null || true
    runuser -u postgres -- "$bin/pg_ctl" -D "$data" -w -t 60 -l "$STATE/logs/postgres.log" start \
      -o "-p $AIRFLOW_METADATA_PORT -c listen_addresses=127.0.0.1 -k /tmp" >/dev/null \
      || { tail -20 "$STATE/logs/postgres.log" >&2; die "postgres did not start"; }
  fi
  local psql=("$bin/psql" -h 127.0.0.1 -p "$AIRFLOW_METADATA_PORT" -U postgres -q)
  export PGPASSWORD=$AIRFLOW_METADATA_PASSWORD
  "${psql[@]}" -tA -c "SELECT 1 FROM pg_roles WHERE rolname='airflow'" | grep -q 1 \
    || "${psql[@]}" -c "CREATE ROLE airflow LOGIN PASSWORD '$AIRFLOW_METADATA_PASSWORD'"
  "${psql[@]}" -tA -c "SELECT 1 FROM pg_database WHERE datname='$AIRFLOW_METADATA_DB'" | grep -q 1 \
    || "${psql[@]}" -c "CREATE DATABASE $AIRFLOW_METADATA_DB OWNER airflow"
  unset PGPASSWORD
}

start_minio() {
  local port=${S3_ENDPOINT_URL##*:}
  MINIO_ROOT_USER=$S3_ACCESS_KEY_ID MINIO_ROOT_PASSWORD=$S3_SECRET_ACCESS_KEY \
    MINIO_BROWSER_REDIRECT=off start_bg minio "$port" "$MINIO_BIN" server "$STATE/minio" \
    --address "127.0.0.1:$port" --console-address "127.0.0.1:$S3_CONSOLE_PORT" || true
  wait_for minio 60 http_ok "$S3_ENDPOINT_URL/minio/health/live"
  "$PY" -m dev.bootstrap buckets
  # the landing batches hold plaintext PII: they expire after LANDING_RETENTION_DAYS (docs/conventions.md)
  "$PY" -m include.landing.retention apply >"$STATE/logs/landing-retention.log" 2>&1 \
    || { tail -20 "$STATE/logs/landing-retention.log" >&2; die "applying the landing lifecycle rule failed"; }
}

# What `databricks bundle deploy` does for a workspace, for the local runner: build the jobs wheel and put it
# at JOBS_WHEEL_PATH inside the runner's workspace folder, where every run's `whl` library points.
deploy_jobs() {
  local dist=$STATE/dist wheel path target
  rm -rf "$dist"
  "$VENV/bin/uv" build -q --wheel "$REPO/spark_jobs" -o "$dist" >"$STATE/logs/wheel-build.log" 2>&1 \
    || { tail -20 "$STATE/logs/wheel-build.log" >&2; die "building the spark_jobs wheel failed"; }
  wheel=$(ls "$dist"/*.whl)
  path=$("$PY" -c 'from include import settings; print(settings.JOBS_WHEEL_PATH)')
  target=$STATE/workspace$path
  [ "$(basename "$wheel")" = "$(basename "$target")" ] \
    || die "built $(basename "$wheel"), but JOBS_WHEEL_PATH names $(basename "$target")"
  mkdir -p "$(dirname "$target")" && cp "$wheel" "$target.tmp" && mv "$target.tmp" "$target"
  say "jobs wheel: $(basename "$wheel") deployed to the local workspace at $path"
}

# The runner's secret store, as `databricks secrets put-secret` fills a workspace's scope: the PII keys of
# .env under the scope the runs reference ({{secrets/<scope>/pii_hmac_key}}, include/databricks_runs.py).
# Values go through stdin (printf is a bash builtin), never through a command line that `ps` shows. The
# runner reads the store when a task starts, so a running runner picks new values up with its next run.
load_runner_secrets() {
  local scope=${DATABRICKS_SECRET_SCOPE:-lakehouse} name key out
  for name in LAKEHOUSE_PII_HMAC_KEY LAKEHOUSE_PII_ENCRYPTION_KEY; do
    [ -n "${!name:-}" ] || die "$name is not set in .env: 'dev/stack.sh install' adds it"
    key=${name#LAKEHOUSE_}; key=${key,,}  # pii_hmac_key, pii_encryption_key
    # its messages name the scope, the key and the file, never the value
    out=$(printf '%s' "${!name}" | "$PY" -m dev.databricks_runner secrets put-secret \
      --state-dir "$STATE/databricks_runner" "$scope" "$key" 2>&1) \
      || { echo "$out" >&2; die "could not store $scope/$key in the runner's secret store"; }
  done
  say "databricks-runner: secret scope $scope has pii_hmac_key and pii_encryption_key (from .env)"
}

start_runner() {
  load_runner_secrets
  start_bg databricks-runner "$DATABRICKS_RUNNER_PORT" "$PY" -m dev.databricks_runner serve \
    --host 127.0.0.1 --port "$DATABRICKS_RUNNER_PORT" --state-dir "$STATE/databricks_runner" \
    --workspace-dir "$STATE/workspace" --runtime-python "$RUNTIME/bin/python" || true
  wait_for databricks-runner 30 http_ok "http://127.0.0.1:$DATABRICKS_RUNNER_PORT/health"
}

start_airflow() {
  # Airflow never needs the PII keys (in production they exist only in the Databricks secret scope); the
  # runner, started before, has them
  unset LAKEHOUSE_PII_HMAC_KEY LAKEHOUSE_PII_ENCRYPTION_KEY
  mkdir -p "$AIRFLOW_HOME"
  printf '{"%s": "%s"}\n' "$AIRFLOW_ADMIN_USER" "$AIRFLOW_ADMIN_PASSWORD" >"$AIRFLOW_HOME/passwords.json"
  chmod 600 "$AIRFLOW_HOME/passwords.json"
  local migrate_log=$STATE/logs/$AIRFLOW_NAME-migrate.log
  if ! running "$AIRFLOW_NAME-api-server"; then
    say "$AIRFLOW_NAME: migrating the metadata database $AIRFLOW_METADATA_DB (first time ~30 s)"
    airflow db migrate >"$migrate_log" 2>&1 || { tail -30 "$migrate_log" >&2; die "airflow db migrate failed"; }
  fi
  # the one slot every writer of the member tables takes, deferred tasks included (include/assets.py)
  airflow pools set lakehouse_member_tables 1 "writers of the member Delta tables" --include-deferred \
    >>"$migrate_log" 2>&1 || die "could not create the Airflow pool lakehouse_member_tables"
  start_bg "$AIRFLOW_NAME-api-server" "$AIRFLOW_API_PORT" airflow api-server --host 127.0.0.1 --port "$AIRFLOW_API_PORT" || true
  # the other components listen on no port of ours; 0 skips the port check
  for c in scheduler dag-processor triggerer; do
    running "$AIRFLOW_NAME-$c" && { say "$AIRFLOW_NAME-$c: already running"; continue; }
    setsid nohup airflow "$c" >>"$STATE/logs/$AIRFLOW_NAME-$c.log" 2>&1 </dev/null &
    echo $! >"$(pidfile "$AIRFLOW_NAME-$c")"
    say "$AIRFLOW_NAME-$c: starting (log: .local/logs/$AIRFLOW_NAME-$c.log)"
  done
  wait_for "$AIRFLOW_NAME-api-server" 120 http_ok "http://127.0.0.1:$AIRFLOW_API_PORT/api/v2/monitor/health"
}

cmd_start() {
  mkdir -p "$STATE/logs" "$STATE/run"
  load_env
  [ -x "$PY" ] && [ -x "$MINIO_BIN" ] || die "not installed yet: run 'dev/stack.sh install' first"
  start_mariadb
  start_postgres
  start_minio
  say "mysql: schema, read-only extract user, seed (if empty: $SEED_ROWS rows)"
  "$PY" -m dev.seed_members --if-empty --rows "$SEED_ROWS" --dirty
  deploy_jobs
  start_runner
  start_airflow
  say "stack is up ($LAKEHOUSE_PROFILE profile): Airflow http://127.0.0.1:$AIRFLOW_API_PORT (user $AIRFLOW_ADMIN_USER, password in .env)"
}

stop_one() {
  local name=$1 p
  p=$(cat "$(pidfile "$name")" 2>/dev/null) || return 0
  if kill -0 "$p" 2>/dev/null; then
    say "$name: stopping"
    kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$p" 2>/dev/null || true
  fi
  rm -f "$(pidfile "$name")"
}

cmd_stop() {
  local af
  for af in airflow airflow-test; do
    for n in scheduler triggerer dag-processor api-server; do stop_one "$af-$n"; done
  done
  for n in databricks-runner minio mariadb; do stop_one "$n"; done
  local data; data=$(cat "$STATE/run/postgres.datadir" 2>/dev/null || true)
  if [ -n "$data" ] && runuser -u postgres -- "$(pg_bin)/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    say "postgres: stopping"; runuser -u postgres -- "$(pg_bin)/pg_ctl" -D "$data" -m fast stop >/dev/null
  fi
  say "stopped; data kept under .local/"
}

AIRFLOW_COMPONENTS="scheduler triggerer dag-processor api-server"

# restart means running: every component named must be one of the profile's and up, or nothing is touched;
# the start that follows is `start`'s, so a component of the profile that was down is started too
cmd_restart_airflow() {
  load_env
  [ $# -gt 0 ] || die "name the Airflow components to restart: $AIRFLOW_COMPONENTS"
  local c
  for c in "$@"; do
    [[ $c =~ ^[a-z-]+$ && " $AIRFLOW_COMPONENTS " == *" $c "* ]] \
      || die "'$c' is not an Airflow component of the stack: $AIRFLOW_COMPONENTS"
  done
  for c in "$@"; do
    running "$AIRFLOW_NAME-$c" || die "$AIRFLOW_NAME-$c is not running ($LAKEHOUSE_PROFILE profile): 'dev/stack.sh start' starts it"
  done
  for c in "$@"; do stop_one "$AIRFLOW_NAME-$c"; done
  start_airflow
}

cmd_status() {
  for n in mariadb minio databricks-runner {airflow,airflow-test}-{api-server,scheduler,dag-processor,triggerer}; do
    if running "$n"; then printf '  %-27s running (pid %s)\n' "$n" "$(cat "$(pidfile "$n")")"
    else printf '  %-27s stopped\n' "$n"; fi
  done
  local data; data=$(cat "$STATE/run/postgres.datadir" 2>/dev/null || true)
  if [ -n "$data" ] && runuser -u postgres -- "$(pg_bin)/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    printf '  %-27s running\n' postgres; else printf '  %-27s stopped\n' postgres; fi
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  deploy) load_env; deploy_jobs ;;
  # stop the named Airflow components of the profile (scheduler, triggerer, dag-processor, api-server) and
  # start them again, as an operator restarts them; tests/e2e restarts the scheduler and triggerer mid-run with it
  restart-airflow) shift; cmd_restart_airflow "$@" ;;
  run) shift; load_env; exec "$@" ;;
  *) sed -n '2,10p' "$0"; exit 2 ;;
esac
