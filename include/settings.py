"""Every environment-dependent value of the pipelines, parsed in one place and typed.

Only names and knobs live here, never secrets: credentials and endpoints come from Airflow connections
(AIRFLOW_CONN_* locally, a secrets backend in production). Reading os.environ is cheap, so importing this
module at DAG parse time does no I/O. A malformed value raises ValueError naming the variable, so a bad
setting fails the DAG's import (visible in the UI) instead of a run. `.env.example` lists each variable.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

from include.databricks_runtime import DEFAULT_RUNTIME
from lakehouse_jobs import __version__ as JOBS_VERSION
from lakehouse_jobs.results import REPORTING_CURRENCY, currency_code


def _int(env: Mapping[str, str], name: str, default: int, minimum: int | None = None,
         maximum: int | None = None) -> int:
    value = env.get(name) or str(default)
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name}={value!r}: expected a whole number") from None
    if minimum is not None and number < minimum:
        raise ValueError(f"{name}={value!r}: expected a whole number of at least {minimum}")
    if maximum is not None and number > maximum:
        raise ValueError(f"{name}={value!r}: expected a whole number of at most {maximum}")
    return number


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = (env.get(name) or "").strip().lower()
    return default if not value else value not in ("false", "0", "no", "off")


def _json_object(env: Mapping[str, str], name: str) -> dict[str, str]:
    value = json.loads(env.get(name) or "{}")
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a JSON object, got {value!r}")
    return {str(k): str(v) for k, v in value.items()}


# ---------------------------------------------------------------------------- connections and storage
MYSQL_CONN_ID = os.getenv("MYSQL_CONN_ID", "mysql_members")
AWS_CONN_ID = os.getenv("AWS_CONN_ID", "aws_lakehouse")
DATABRICKS_CONN_ID = os.getenv("DATABRICKS_CONN_ID", "databricks_default")

LANDING_BUCKET = os.getenv("LANDING_BUCKET", "landing")
LAKEHOUSE_BUCKET = os.getenv("LAKEHOUSE_BUCKET", "lakehouse")

# Server-side encryption for every object the extract writes: "AES256" (SSE-S3) or "aws:kms" (SSE-KMS,
# with S3_SSE_KMS_KEY_ID naming the key).
S3_SSE = os.getenv("S3_SSE", "AES256")
S3_SSE_KMS_KEY_ID = os.getenv("S3_SSE_KMS_KEY_ID") or None

# ------------------------------------------------------------------------------------------- extract
# Rows per Parquet file of an extract batch (row groups hold 128K rows; see README "Design choices").
EXTRACT_ROWS_PER_FILE = _int(os.environ, "EXTRACT_ROWS_PER_FILE", 1_000_000)
# "connectorx" (default, fastest) or "mysqlclient" (pure DB-API; also used whenever the MySQL connection
# carries ssl* options, which ConnectorX cannot take).
EXTRACT_READER = os.getenv("EXTRACT_READER", "connectorx")
# The member extract task's execution_timeout (dags/member_pipeline.py).
EXTRACT_TASK_TIMEOUT = dt.timedelta(minutes=20)
# Seconds the ConnectorX reader waits for the next rows before it stops the read as stalled (a server that
# holds the statement, a network path that drops packets without closing): far above a healthy gap between
# two 64K-row batches (well under a second), and at least a minute below EXTRACT_TASK_TIMEOUT, or the task's
# timeout would end a stalled read first, without saying why.
EXTRACT_STALL_SECONDS = _int(os.environ, "EXTRACT_STALL_SECONDS", 300, minimum=1,
                             maximum=int(EXTRACT_TASK_TIMEOUT.total_seconds()) - 60)
# Extra Hive-style partition columns inside each batch, comma-separated (e.g. "country"); by default a
# batch is partitioned only by its extraction interval (README, "Design choices").
EXTRACT_PARTITION_COLS = tuple(c.strip() for c in os.getenv("EXTRACT_PARTITION_COLS", "").split(",") if c.strip())

# Days after which every object of a landed batch (its Parquet files and its _manifest.json) expires, by
# the landing bucket's lifecycle rule (include/landing/retention.py; docs/conventions.md, "Retention").
# The batches hold members' names, emails, phones and addresses in plaintext and a new one lands every
# day. 14 is long enough to replay two weeks of batches (a fortnight of failed or wrong merges found and
# re-run, across holidays), short enough that at most two weeks of daily plaintext snapshots exist at
# once instead of all of them forever. Changing it takes `python -m include.landing.retention apply`.
LANDING_RETENTION_DAYS = _int(os.environ, "LANDING_RETENTION_DAYS", 14, minimum=1)

# How often invoice_pipeline claims and loads what arrived (a cron expression or preset): each run that finds
# files starts a job cluster, so fewer runs cost less and deliver later (docs/scaling-and-cost.md, "Invoice
# pipeline: what an hour costs"). The sensor, batch ids and claim work with any interval.
INVOICE_SCHEDULE = os.getenv("INVOICE_SCHEDULE", "@hourly")

# The currency of the invoice facts' *_reporting amounts (lakehouse_jobs.invoice.exchange_rates): one every
# invoice converts into, so totals of invoices in different currencies can be added. Facts already loaded
# keep theirs (reporting_currency_code says which).
# Its shape is checked here; whether the ECB publishes it, by the run (the rates ship with the jobs wheel).
INVOICE_REPORTING_CURRENCY = currency_code(os.getenv("INVOICE_REPORTING_CURRENCY", REPORTING_CURRENCY))

# ---------------------------------------------------------------------------------------- Databricks
COMPUTE_KINDS = ("job_cluster", "serverless", "existing_cluster")
AVAILABILITY = ("SPOT_WITH_FALLBACK", "SPOT", "ON_DEMAND")  # the Clusters API's aws_attributes.availability


@dataclass(frozen=True)
class DatabricksSettings:
    """How runs are submitted and where they run (docs/databricks-submission.md has each field's use).

    compute: "job_cluster" (a cluster created for the run and deleted after it; the default),
    "serverless", or "existing_cluster" (an all-purpose cluster: development only; the default when
    DATABRICKS_EXISTING_CLUSTER_ID is set).
    """

    compute: str
    spark_version: str  # DBR version key of the job cluster; include/databricks_runtime.py maps it to Spark
    node_type: str
    min_workers: int
    max_workers: int
    policy_id: str | None  # a cluster policy (instance profile, limits); its defaults are applied
    # AWS capacity of the job cluster's workers: SPOT_WITH_FALLBACK (the default), SPOT or ON_DEMAND. The
    # driver is always on-demand (first_on_demand=1): losing it loses the run, losing a worker a few tasks.
    availability: str
    spark_conf: dict[str, str]  # over spark.sql.session.timeZone=UTC
    tags: dict[str, str]  # extra custom_tags of the job cluster (cost attribution)
    existing_cluster_id: str | None
    environment_version: str  # serverless environment version (2: Python 3.11, like the jobs)
    budget_policy_id: str | None  # serverless: its tags attribute the cost
    run_timeout_seconds: int  # the run's timeout_seconds, after which Databricks ends it
    jobs_wheel_path: str  # the spark_jobs wheel every run attaches (databricks.yml uploads it there)
    deferrable: bool  # True: the triggerer polls the run; False: the worker does (holds a worker slot)
    poll_seconds: int
    # the Databricks secret scope holding the PII keys (pii_hmac_key, pii_encryption_key), which job
    # clusters receive as environment variables through secret references (docs/pii.md)
    secret_scope: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DatabricksSettings:
        """Settings from environment variables (DATABRICKS_*, JOBS_WHEEL_PATH); raises ValueError."""
        compute = env.get("DATABRICKS_COMPUTE") or (
            "existing_cluster" if env.get("DATABRICKS_EXISTING_CLUSTER_ID") else "job_cluster"
        )
        if compute not in COMPUTE_KINDS:
            raise ValueError(f"DATABRICKS_COMPUTE={compute!r}: expected one of {', '.join(COMPUTE_KINDS)}")
        if compute == "existing_cluster" and not env.get("DATABRICKS_EXISTING_CLUSTER_ID"):
            raise ValueError("DATABRICKS_COMPUTE=existing_cluster needs DATABRICKS_EXISTING_CLUSTER_ID")
        availability = env.get("DATABRICKS_AVAILABILITY") or "SPOT_WITH_FALLBACK"
        if availability not in AVAILABILITY:
            raise ValueError(f"DATABRICKS_AVAILABILITY={availability!r}: expected one of {', '.join(AVAILABILITY)}")
        return cls(
            compute=compute,
            availability=availability,
            spark_version=env.get("DATABRICKS_SPARK_VERSION") or DEFAULT_RUNTIME,
            node_type=env.get("DATABRICKS_NODE_TYPE") or "m6gd.large",
            min_workers=_int(env, "DATABRICKS_MIN_WORKERS", 1),
            max_workers=_int(env, "DATABRICKS_MAX_WORKERS", 4),
            policy_id=env.get("DATABRICKS_POLICY_ID") or None,
            spark_conf=_json_object(env, "DATABRICKS_SPARK_CONF"),
            tags=_json_object(env, "DATABRICKS_TAGS"),
            existing_cluster_id=env.get("DATABRICKS_EXISTING_CLUSTER_ID") or None,
            environment_version=env.get("DATABRICKS_ENVIRONMENT_VERSION") or "2",
            budget_policy_id=env.get("DATABRICKS_BUDGET_POLICY_ID") or None,
            run_timeout_seconds=_int(env, "DATABRICKS_RUN_TIMEOUT_SECONDS", 3000),
            # `databricks bundle deploy -t prod` uploads the wheel to <root_path>/artifacts/.internal/
            # (databricks.yml); locally `dev/stack.sh deploy` puts it at the same path in the runner's
            # workspace folder
            jobs_wheel_path=env.get("JOBS_WHEEL_PATH")
            or f"/Workspace/Shared/lakehouse-ref/artifacts/.internal/lakehouse_jobs-{JOBS_VERSION}-py3-none-any.whl",
            deferrable=_flag(env, "DATABRICKS_DEFERRABLE", True),
            poll_seconds=_int(env, "DATABRICKS_POLL_SECONDS", 5),
            secret_scope=env.get("DATABRICKS_SECRET_SCOPE") or "lakehouse",
        )


DATABRICKS = DatabricksSettings.from_env(os.environ)
JOBS_WHEEL_PATH = DATABRICKS.jobs_wheel_path
