"""The runs/submit JSON the DAGs build (include/databricks_runs.py), checked against the official
databricks-sdk models, across compute kinds, and local against workspace configuration. No services."""

from __future__ import annotations

import inspect

import pytest
import yaml
from databricks.sdk.service import jobs

from include import settings
from include.databricks_runs import member_merge_run, wheel_run
from include.settings import DatabricksSettings
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit

BATCH = "extract_date=2026-11-26"
SUBMIT_PARAMETERS = set(inspect.signature(jobs.JobsAPI.submit).parameters) - {"self"}


def assert_valid_submit(run: dict) -> None:
    """What a workspace would accept: the top-level fields are parameters of JobsAPI.submit, and each
    task and environment survives a round trip through the SDK's model (which silently drops every key
    it does not know, so a misspelt or unknown field shows as a difference)."""
    assert set(run) <= SUBMIT_PARAMETERS, f"not runs/submit fields: {set(run) - SUBMIT_PARAMETERS}"
    for task in run["tasks"]:
        assert jobs.SubmitTask.from_dict(task).as_dict() == task
    for environment in run.get("environments", []):
        assert jobs.JobEnvironment.from_dict(environment).as_dict() == environment


def db(**env: str) -> DatabricksSettings:
    return DatabricksSettings.from_env(env)


@pytest.mark.parametrize("env", [
    {},
    {"DATABRICKS_EXISTING_CLUSTER_ID": "0101-abc"},
    {"DATABRICKS_POLICY_ID": "ABC123", "DATABRICKS_TAGS": '{"cost_center": "data"}'},
], ids=["job_cluster", "existing_cluster", "policy_and_tags"])
def test_member_merge_run_is_a_valid_submit(env):
    assert_valid_submit(member_merge_run(BATCH, db(**env)))


def test_serverless_run_is_a_valid_submit():
    serverless = db(DATABRICKS_COMPUTE="serverless", DATABRICKS_BUDGET_POLICY_ID="bp-1")
    assert_valid_submit(wheel_run("t", "some_entry_point", {"x": "1"}, run_name="r", db=serverless))


@pytest.mark.parametrize("broken", [
    lambda task: task["new_cluster"].update(num_workerz=2),
    lambda task: task.update(python_wheel_taskk=task["python_wheel_task"]),
    lambda task: task["libraries"].append({"wheel": "/Workspace/x.whl"}),
    lambda task: task["python_wheel_task"].update(entrypoint="member_merge"),
], ids=["misspelt cluster field", "unknown task field", "unknown library type", "misspelt wheel field"])
def test_validation_catches_what_a_workspace_would_refuse(broken):
    run = member_merge_run(BATCH, db())
    broken(run["tasks"][0])
    with pytest.raises(AssertionError):
        assert_valid_submit(run)


def test_every_compute_attaches_the_jobs_wheel_and_runs_the_same_task():
    wheel = settings.DATABRICKS.jobs_wheel_path
    job_cluster = wheel_run("t", "ep", {"x": "1"}, run_name="r", db=db())
    existing = wheel_run("t", "ep", {"x": "1"}, run_name="r", db=db(DATABRICKS_EXISTING_CLUSTER_ID="0101-abc"))
    serverless = wheel_run("t", "ep", {"x": "1"}, run_name="r",
                           db=db(DATABRICKS_COMPUTE="serverless", DATABRICKS_BUDGET_POLICY_ID="bp-1"))
    (jc_task,), (ex_task,), (sl_task,) = job_cluster["tasks"], existing["tasks"], serverless["tasks"]
    assert jc_task["libraries"] == ex_task["libraries"] == [{"whl": wheel}]
    assert ex_task["existing_cluster_id"] == "0101-abc" and "new_cluster" not in ex_task
    # serverless: no cluster and no task libraries; the wheel is the environment's dependency
    assert not {"new_cluster", "existing_cluster_id", "libraries"} & sl_task.keys()
    assert serverless["environments"] == [{"environment_key": sl_task["environment_key"],
                                           "spec": {"environment_version": "2", "dependencies": [wheel]}}]
    assert serverless["budget_policy_id"] == "bp-1"
    assert jc_task["python_wheel_task"] == ex_task["python_wheel_task"] == sl_task["python_wheel_task"] == {
        "package_name": "lakehouse_jobs", "entry_point": "ep", "named_parameters": {"x": "1"}}


def test_misconfigured_compute_fails_when_the_dag_is_parsed():
    with pytest.raises(ValueError, match="member_merge needs a classic cluster"):
        member_merge_run(BATCH, db(DATABRICKS_COMPUTE="serverless"))
    with pytest.raises(ValueError, match="expected one of job_cluster, serverless, existing_cluster"):
        db(DATABRICKS_COMPUTE="gpu")
    with pytest.raises(ValueError, match="needs DATABRICKS_EXISTING_CLUSTER_ID"):
        db(DATABRICKS_COMPUTE="existing_cluster")
    with pytest.raises(ValueError, match="DATABRICKS_TAGS must be a JSON object"):
        db(DATABRICKS_TAGS='["a"]')
    with pytest.raises(ValueError, match="DATABRICKS_MAX_WORKERS='four': expected a whole number"):
        db(DATABRICKS_MAX_WORKERS="four")
    with pytest.raises(ValueError, match="DATABRICKS_AVAILABILITY='spot': expected one of SPOT_WITH_FALLBACK"):
        db(DATABRICKS_AVAILABILITY="spot")


def test_job_cluster_workers_run_on_spot_with_an_on_demand_driver():
    (task,) = member_merge_run(BATCH, db())["tasks"]
    assert task["new_cluster"]["aws_attributes"] == {"availability": "SPOT_WITH_FALLBACK", "first_on_demand": 1}
    (task,) = member_merge_run(BATCH, db(DATABRICKS_AVAILABILITY="ON_DEMAND"))["tasks"]
    assert task["new_cluster"]["aws_attributes"]["availability"] == "ON_DEMAND"


@pytest.mark.parametrize(("value", "expected"), [
    ("", True), ("true", True), ("1", True), ("false", False), ("FALSE", False), ("0", False), ("off", False),
])
def test_deferrable_flag(value, expected):
    assert db(DATABRICKS_DEFERRABLE=value).deferrable is expected


# What a real workspace configures differently from the local stack (docs/production.md).
WORKSPACE_ENV = {
    "DATABRICKS_SPARK_VERSION": "17.3.x-scala2.13",
    "DATABRICKS_NODE_TYPE": "r6gd.xlarge",
    "DATABRICKS_MAX_WORKERS": "8",
    "DATABRICKS_POLICY_ID": "ABC123",
    "DATABRICKS_SPARK_CONF": '{"spark.sql.shuffle.partitions": "64"}',
    "DATABRICKS_TAGS": '{"cost_center": "data-platform"}',
    "DATABRICKS_RUN_TIMEOUT_SECONDS": "5400",
    "JOBS_WHEEL_PATH": "/Volumes/prod/jobs/wheels/lakehouse_jobs-0.1.0-py3-none-any.whl",
}


def leaves(value, path=()) -> dict[tuple, object]:
    if isinstance(value, dict):
        return {p: v for key, item in value.items() for p, v in leaves(item, (*path, key)).items()}
    if isinstance(value, list):
        return {p: v for i, item in enumerate(value) for p, v in leaves(item, (*path, i)).items()}
    return {path: value}


def test_run_json_local_and_workspace_differ_only_by_configuration():
    local, workspace = leaves(member_merge_run(BATCH, db())), leaves(member_merge_run(BATCH, db(**WORKSPACE_ENV)))
    diff = {path: (local.get(path), workspace.get(path)) for path in local.keys() | workspace.keys()
            if local.get(path) != workspace.get(path)}
    task = ("tasks", 0)
    cluster = (*task, "new_cluster")
    assert diff == {
        ("timeout_seconds",): (3000, 5400),
        (*cluster, "node_type_id"): ("m6gd.large", "r6gd.xlarge"),
        (*cluster, "autoscale", "max_workers"): (4, 8),
        (*cluster, "policy_id"): (None, "ABC123"),
        (*cluster, "apply_policy_default_values"): (None, True),
        (*cluster, "spark_conf", "spark.sql.shuffle.partitions"): (None, "64"),
        (*cluster, "custom_tags", "cost_center"): (None, "data-platform"),
        (*task, "libraries", 0, "whl"): (db().jobs_wheel_path, WORKSPACE_ENV["JOBS_WHEEL_PATH"]),
    }, "\n".join(f"{'.'.join(map(str, p))}: {a!r} -> {b!r}" for p, (a, b) in sorted(diff.items(), key=str))
    # the same code path: entry point, parameters and every other field are identical
    assert local[(*task, "python_wheel_task", "entry_point")] == "member_merge"


def test_bundle_uploads_the_wheel_where_the_runs_point():
    """databricks.yml builds spark_jobs/ as a wheel artifact; `bundle deploy -t prod` uploads it to
    <root_path>/artifacts/.internal/<wheel>, JOBS_WHEEL_PATH's default."""
    bundle = yaml.safe_load((REPO_ROOT / "databricks.yml").read_text())
    (artifact,) = bundle["artifacts"].values()
    assert artifact["type"] == "whl" and artifact["path"] == "./spark_jobs"
    root = bundle["targets"]["prod"]["workspace"]["root_path"]
    default = db().jobs_wheel_path
    assert default.startswith(f"{root}/artifacts/.internal/lakehouse_jobs-")


def test_entry_points_of_the_runs_exist_in_the_wheel_metadata():
    """The entry point a run names must be a console script of the wheel, or Databricks fails the run."""
    import tomllib

    scripts = tomllib.loads((REPO_ROOT / "spark_jobs" / "pyproject.toml").read_text())["project"]["scripts"]
    entry_point = member_merge_run(BATCH, db())["tasks"][0]["python_wheel_task"]["entry_point"]
    assert scripts[entry_point] == "lakehouse_jobs.member.job:main"


def test_dag_params_do_not_collide_with_the_runs_parameters():
    """The provider copies a DAG's params into python_wheel_task.named_parameters when that field is empty;
    with positional parameters set too, Databricks (and the local runner) refuse the run."""
    from include.databricks_submit import DatabricksSubmitRun

    run = member_merge_run(BATCH, db())
    operator = DatabricksSubmitRun(task_id="merge_members", json=run, params={"max_delete_ratio": 0.05})
    submitted = operator._prepare_submit_json(context={})
    (task,) = submitted["tasks"]
    assert "parameters" not in task["python_wheel_task"]
    assert task["python_wheel_task"]["named_parameters"] == run["tasks"][0]["python_wheel_task"]["named_parameters"]


def test_pii_keys_reach_the_job_cluster_as_secret_references_after_rendering():
    """The operator renders its `json` as a Jinja template: the references must come out as Databricks'
    own `{{secrets/<scope>/<key>}}` syntax (never a key), and the scope follows DATABRICKS_SECRET_SCOPE."""
    import jinja2

    run = member_merge_run("b", db=DatabricksSettings.from_env({"DATABRICKS_SECRET_SCOPE": "prod-keys"}))
    env_vars = run["tasks"][0]["new_cluster"]["spark_env_vars"]
    rendered = {k: jinja2.Environment().from_string(v).render() for k, v in env_vars.items()}
    assert rendered == {"LAKEHOUSE_PII_HMAC_KEY": "{{secrets/prod-keys/pii_hmac_key}}",
                        "LAKEHOUSE_PII_ENCRYPTION_KEY": "{{secrets/prod-keys/pii_encryption_key}}"}
