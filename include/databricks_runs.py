"""The JSON of each Databricks run the DAGs submit (`jobs/runs/submit`, one `python_wheel_task`).

Every run is built here from `settings.DATABRICKS`, so the run sent to the local runner and the run sent
to a real workspace differ only by configured values, never by code path (tests/include/
test_databricks_runs.py shows the difference, and checks every payload against databricks-sdk's models).
The operator that sends it, and what it adds at execution time (the idempotency token), is
include/databricks_submit.py.

Why `python_wheel_task` and not `spark_python_task` shims: the cluster code is one wheel
(spark_jobs/pyproject.toml) whose entry points are declared in its own metadata; the run names the
package and entry point, attaches the wheel, and Databricks installs it with its declared dependencies.
No per-job script has to be deployed or kept in step, and the same wheel is the dependency of a
serverless environment.

Libraries: on a cluster the wheel is the task's `libraries` entry; on serverless it is a dependency of
the run's environment. Tags: runs/submit has no run-level tags, so they go on the job cluster
(`custom_tags`, which also tag the cloud instances); an existing cluster keeps its own tags, serverless
is tagged by its budget policy.
"""

from __future__ import annotations

from collections.abc import Mapping

from include import invoice_landing, layout, settings
from include.landing.layout import manifest_uri
from include.settings import DatabricksSettings
from lakehouse_jobs.results import ErasureParams, InvoiceLoadParams, JobParams, MaintenanceParams, MemberMergeParams

PACKAGE_NAME = "lakehouse_jobs"  # the import name of the spark_jobs wheel
DEFAULT_SPARK_CONF = {"spark.sql.session.timeZone": "UTC"}
ENVIRONMENT_KEY = "default"


# environment variable of the job -> key in the secret scope
PII_SECRETS = {"LAKEHOUSE_PII_HMAC_KEY": "pii_hmac_key", "LAKEHOUSE_PII_ENCRYPTION_KEY": "pii_encryption_key"}


def pii_key_references(scope: str) -> dict[str, str]:
    """spark_env_vars that give a job cluster the PII keys: Databricks secret references
    ``{{secrets/<scope>/<key>}}``, each wrapped in a Jinja string literal, because the operator renders its
    `json` field as a template and would otherwise take the braces for an expression."""
    return {env: "{{ '{{secrets/%s/%s}}' }}" % (scope, key) for env, key in PII_SECRETS.items()}


def job_cluster(task_key: str, db: DatabricksSettings) -> dict:
    """A `new_cluster` created for the run and deleted after it."""
    cluster = {
        "spark_version": db.spark_version,
        "node_type_id": db.node_type,
        "autoscale": {"min_workers": db.min_workers, "max_workers": db.max_workers},
        "aws_attributes": {"availability": db.availability, "first_on_demand": 1},
        # the jobs use spark._jvm (lakehouse_jobs.hadoop_fs): dedicated access mode, not standard/shared
        "data_security_mode": "SINGLE_USER",
        "spark_conf": {**DEFAULT_SPARK_CONF, **db.spark_conf},
        # secret references, resolved by Databricks when the cluster starts (the values never appear in the
        # run's JSON, its cluster spec or Airflow); the jobs read them with lakehouse_jobs.pii.PiiKeys.
        "spark_env_vars": pii_key_references(db.secret_scope),
        "custom_tags": {
            "project": "lakehouse-ref",
            "job": task_key,
            # rendered by the operator (json is a template field): the Airflow task that paid for it
            "airflow_dag_id": "{{ ti.dag_id }}",
            "airflow_task_id": "{{ ti.task_id }}",
            **db.tags,
        },
    }
    if db.policy_id:
        cluster["policy_id"] = db.policy_id
        cluster["apply_policy_default_values"] = True
    return cluster


def wheel_run(task_key: str, entry_point: str, named_parameters: Mapping[str, str], *, run_name: str,
              classic_only: bool = False, db: DatabricksSettings | None = None) -> dict:
    """The runs/submit JSON of one entry point of the jobs wheel, on the configured compute.

    `named_parameters` {"table-path": "s3://..."} reach the entry point as `--table-path=s3://...`. Named,
    not positional `parameters`: the Airflow provider copies a DAG's params into a python_wheel_task's
    `named_parameters` when that field is empty, and Databricks refuses a task that has both.

    `classic_only`: the job needs a classic cluster (it uses `spark._jvm`), so serverless is refused with
    ValueError when the DAG is parsed rather than failing on Databricks later.
    """
    db = db or settings.DATABRICKS
    if db.compute == "serverless" and classic_only:
        raise ValueError(f"{entry_point} needs a classic cluster: DATABRICKS_COMPUTE=serverless cannot run it")
    task: dict = {
        "task_key": task_key,
        "python_wheel_task": {
            "package_name": PACKAGE_NAME,
            "entry_point": entry_point,
            "named_parameters": dict(named_parameters),
        },
    }
    run: dict = {"run_name": run_name, "timeout_seconds": db.run_timeout_seconds, "tasks": [task]}
    if db.compute == "serverless":
        task["environment_key"] = ENVIRONMENT_KEY
        spec = {"environment_version": db.environment_version, "dependencies": [db.jobs_wheel_path]}
        run["environments"] = [{"environment_key": ENVIRONMENT_KEY, "spec": spec}]
        if db.budget_policy_id:
            run["budget_policy_id"] = db.budget_policy_id
        return run
    if db.compute == "job_cluster":
        task["new_cluster"] = job_cluster(task_key, db)
    else:
        task["existing_cluster_id"] = db.existing_cluster_id
    task["libraries"] = [{"whl": db.jobs_wheel_path}]
    return run


def job_run(params: JobParams, label: str, db: DatabricksSettings | None) -> dict:
    """The run of one of this project's jobs: its entry point as the task, its parameters as the job parses
    them, named "<entry point> <label>". Every job of the wheel uses `spark._jvm`, so each is classic-only."""
    return wheel_run(params.ENTRY_POINT, params.ENTRY_POINT, params.to_args(),
                     run_name=f"{params.ENTRY_POINT} {label}", classic_only=True, db=db)


def member_merge_run(batch_id: str, db: DatabricksSettings | None = None, *,
                     max_delete_ratio: str = "0.05", max_quarantine_ratio: str = "0.05") -> dict:
    """The run that applies one landed member batch to the Delta tables `member` and `dim_member`.

    `batch_id` and the two ratios (shares of the table, 0 to 1; see the job's --help) may be Jinja
    templates: the operator renders its `json` field. The parameters are the job's own type
    (lakehouse_jobs.results.MemberMergeParams): the run and the job's parser share every name.
    """
    params = MemberMergeParams(
        manifest=manifest_uri("member", batch_id), tables_root=layout.delta_root_uri(),
        result_path=layout.result_uri("member", batch_id), max_delete_ratio=max_delete_ratio,
        max_quarantine_ratio=max_quarantine_ratio, change_state=layout.change_state_uri("member"),
    )
    return job_run(params, batch_id, db)


def invoice_load_run(batch_id: str, member_cards_batch_id: str, db: DatabricksSettings | None = None) -> dict:
    """The run that loads one claimed batch of invoice PDFs (include/invoice_landing.py) into the invoice
    star schema (lakehouse_jobs.invoice.job), mapping card numbers with a landed member_card batch.
    Both ids may be Jinja templates. The PDF parser (pypdfium2) is a dependency of the wheel, installed
    with it on the cluster."""
    params = InvoiceLoadParams(
        manifest=f"s3://{settings.LANDING_BUCKET}/{invoice_landing.file_list_key(batch_id)}",
        member_cards=manifest_uri("member_card", member_cards_batch_id), tables_root=layout.delta_root_uri(),
        batch_id=batch_id, result_path=layout.result_uri("invoice", batch_id),
        reporting_currency=settings.INVOICE_REPORTING_CURRENCY,
    )
    return job_run(params, batch_id, db)


def member_erasure_run(member_id: str, request_id: str, landing: str, db: DatabricksSettings | None = None) -> dict:
    """The run that erases one member from the Delta tables, history included (lakehouse_jobs.member.erasure).
    `member_id`, `request_id` and `landing` (the landing erasure's counts, JSON) may be Jinja templates.
    Its writer window is every run's timeout_seconds plus 10 minutes for clocks that differ: Databricks ends
    any run of a writer before that, so no file younger than it is left by a finished writer alone."""
    db = db or settings.DATABRICKS
    params = ErasureParams(
        member_id=member_id, tables_root=layout.delta_root_uri(), request_id=request_id, landing=landing,
        result_path=layout.result_uri("member_erasure", request_id),
        writer_hours=round((db.run_timeout_seconds + 600) / 3600, 3),
    )
    return job_run(params, request_id, db)


def table_maintenance_run(request_id: str, db: DatabricksSettings | None = None) -> dict:
    """The run that OPTIMIZEs and VACUUMs (7-day retention) every Delta table (lakehouse_jobs.maintenance)."""
    params = MaintenanceParams(tables_root=layout.delta_root_uri(),
                               result_path=layout.result_uri("table_maintenance", request_id))
    return job_run(params, request_id, db)
