# syntax=docker/dockerfile:1
# One image for every Airflow component AND the local Databricks Jobs API runner (see docker-compose.yaml).
#
#   docker compose build            (or: docker build -t lakehouse-ref/airflow:local .)
#
# Python packages come only from requirements/airflow.lock (every version pinned, every file hash-checked,
# build dependencies too), installed into a fresh virtualenv that replaces the base image's: the image runs
# exactly the packages the local process stack and CI run, not the ~80 providers the stock image ships. The
# local Databricks runner's base environment (what a Databricks runtime provides) comes from
# requirements/runtime.lock the same way, and the jobs wheel is built from spark_jobs/ and deployed into the
# runner's workspace folder, as `dev/stack.sh install` and `dev/stack.sh deploy` do.
# tests/test_compose.py checks that the base image's Airflow version equals the apache-airflow pin in the lock.

ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11
# the uv release dev/stack.sh installs
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.8
ARG MAVEN_IMAGE=maven:3.9-eclipse-temurin-17
ARG JRE_IMAGE=eclipse-temurin:17-jre

FROM ${UV_IMAGE} AS uv

FROM ${JRE_IMAGE} AS jre

# ------------------------------------------------------------------------------------------------ Spark jars
# Delta Lake + S3A for local Spark, resolved the way `dev/stack.sh install` does it (see dev/jars/pom.xml for
# why transitives are excluded). The plugin version is pinned so the result does not depend on which Maven
# release the build image carries.
FROM ${MAVEN_IMAGE} AS jars
WORKDIR /build
COPY dev/jars/pom.xml pom.xml
RUN mvn -B -q org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
        -DexcludeTransitive=true -DoutputDirectory=/opt/lakehouse-cache/jars \
 && ls /opt/lakehouse-cache/jars/*.jar

# ------------------------------------------------------------------------------------------------ Python venv
FROM ${AIRFLOW_IMAGE} AS python-deps
USER root
# mysqlclient ships no Linux wheels: it compiles against MariaDB Connector/C (the base image already pins
# MariaDB's apt repository, so libmariadb-dev matches the runtime libmariadb3 the final image keeps).
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config libmariadb-dev \
 && rm -rf /var/lib/apt/lists/*
COPY --from=uv /uv /usr/local/bin/uv
USER airflow
COPY requirements/airflow.lock /tmp/airflow.lock
COPY requirements/runtime.lock /tmp/runtime.lock
# The venv must be built at the path it runs from (its scripts' shebangs are absolute): the base image's own
# virtualenv, /home/airflow/.local, which is already first on PATH for every user.
# --build-constraints with the lock: the setuptools that builds mysqlclient is hash-checked as well.
ENV UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_CACHE_DIR=/tmp/.cache/uv
RUN --mount=type=cache,target=/tmp/.cache/uv,uid=50000,gid=0 \
    rm -rf /home/airflow/.local \
 && uv venv --python 3.11 /home/airflow/.local \
 && uv pip install --python /home/airflow/.local/bin/python \
        --require-hashes --require-build-hashes --build-constraints /tmp/airflow.lock \
        -r /tmp/airflow.lock \
 && /home/airflow/.local/bin/python -c "import airflow, MySQLdb, connectorx" \
 && chmod -R g+rwX /home/airflow/.local \
 && uv venv --python 3.11 /opt/airflow/databricks-runtime \
 && uv pip install --python /opt/airflow/databricks-runtime/bin/python --require-hashes -r /tmp/runtime.lock \
 && /opt/airflow/databricks-runtime/bin/python -c "import pyspark, delta, pandas, pyarrow"
# `databricks bundle deploy` for the local runner: the wheel at JOBS_WHEEL_PATH's default inside its workspace
COPY --chown=airflow:0 spark_jobs/ /tmp/spark_jobs/
RUN uv build --wheel /tmp/spark_jobs -o /tmp/dist \
 && mkdir -p /opt/airflow/workspace/Workspace/Shared/lakehouse-ref/artifacts/.internal \
 && cp /tmp/dist/*.whl /opt/airflow/workspace/Workspace/Shared/lakehouse-ref/artifacts/.internal/

# ------------------------------------------------------------------------------------------------ final image
FROM ${AIRFLOW_IMAGE}
USER root

# Java 17 for Spark, copied from the Temurin JRE image rather than apt: it does not depend on which Debian
# release the Airflow base image is built on.
ENV JAVA_HOME=/opt/java/openjdk \
    LAKEHOUSE_CACHE=/opt/lakehouse-cache
ENV PATH=${JAVA_HOME}/bin:${PATH}
COPY --from=jre /opt/java/openjdk ${JAVA_HOME}
# dev/local_spark.py puts every jar in $LAKEHOUSE_CACHE/jars on spark.jars
COPY --from=jars /opt/lakehouse-cache/jars ${LAKEHOUSE_CACHE}/jars

# Replace the stock virtualenv with the locked one (removing it first, so no stock package lingers).
RUN rm -rf /home/airflow/.local
COPY --from=python-deps --chown=airflow:0 /home/airflow/.local /home/airflow/.local
COPY --from=python-deps --chown=airflow:0 /opt/airflow/databricks-runtime /opt/airflow/databricks-runtime
COPY --from=python-deps --chown=airflow:0 /opt/airflow/workspace /opt/airflow/workspace
# the local Databricks runner installs each run's declared libraries with uv (from PyPI, into its state dir)
COPY --from=uv /uv /usr/local/bin/uv

# The runner's state dir and the simple auth manager's passwords dir are named volumes in docker-compose.yaml.
# Docker seeds an empty named volume with the image's ownership, so create them owned by airflow, group-
# writable for an arbitrary AIRFLOW_UID running with GID 0 (the base image's OpenShift-style convention).
RUN mkdir -p /opt/airflow/.local/databricks_runner /opt/airflow/auth \
 && chown -R airflow:0 /opt/airflow/.local /opt/airflow/auth \
 && chmod -R g+rwX /opt/airflow/.local /opt/airflow/auth

USER airflow
WORKDIR /opt/airflow
# The project itself. PYTHONPATH makes `include` and `dev` importable, and the pure-Python contracts of the
# jobs package (lakehouse_jobs.contracts, .manifest), which the DAGs share with the Spark jobs.
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 include/ /opt/airflow/include/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
COPY --chown=airflow:0 spark_jobs/ /opt/airflow/spark_jobs/
COPY --chown=airflow:0 dev/ /opt/airflow/dev/
ENV PYTHONPATH=/opt/airflow:/opt/airflow/spark_jobs/src
