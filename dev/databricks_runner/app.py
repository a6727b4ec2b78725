"""The HTTP face of the runner: the Jobs API slice the Airflow provider calls, a health check, run pages.

Every API route is served under both ``/api/2.1`` and ``/api/2.2`` and needs ``Authorization: Bearer
<DATABRICKS_TOKEN>`` (401 without a bearer token, 403 with a wrong one). ``/health`` and the HTML run
pages (``/runs/<id>``, the ``run_page_url``) need no token, so a browser can open them: bind the runner
to loopback (the default) and keep it there.
"""

from __future__ import annotations

import hmac
import json
import logging
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from dev.databricks_runner import render
from dev.databricks_runner.config import RunnerConfig
from dev.databricks_runner.errors import ApiError, as_bool, as_int, required_int
from dev.databricks_runner.executor import Executor
from dev.databricks_runner.spark import read_tail
from dev.databricks_runner.state import Run, TaskRun
from dev.databricks_runner.store import RunStore
from dev.databricks_runner.submit import build_run, idempotency_token

log = logging.getLogger(__name__)

API_VERSIONS = ("2.1", "2.2")
OUTPUT_LOG_LIMIT = 5 << 20  # runs/get-output returns the last 5 MB of the driver log, like Databricks
PAGE_LOG_LIMIT = 64 << 10  # the run page shows the last 64 KB of each task's log


async def read_params(request: Request) -> dict[str, Any]:
    """Query string and JSON body merged: the sync hook sends GET parameters as a query string, the
    async trigger as a JSON body."""
    params: dict[str, Any] = dict(request.query_params)
    body = await request.body()
    if body.strip():
        try:
            data = json.loads(body)
        except ValueError:
            raise ApiError(400, "MALFORMED_REQUEST", "The request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise ApiError(400, "MALFORMED_REQUEST", "The request body must be a JSON object")
        params.update(data)
    return params


def create_app(config: RunnerConfig) -> FastAPI:
    store = RunStore(config.state_dir)
    executor = Executor(config, store)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        executor.recover()  # before the first request: runs a dead runner left in flight
        yield
        executor.shutdown()

    # no OpenAPI/docs pages: they would be unauthenticated and this is not the real API's reference
    app = FastAPI(title="Local Databricks runner", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error_code": exc.error_code, "message": exc.message}, status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            code, message = "ENDPOINT_NOT_FOUND", f"No API found for '{request.method} {request.url.path}'"
        else:
            code, message = "BAD_REQUEST", str(exc.detail)
        return JSONResponse({"error_code": code, "message": message}, status_code=exc.status_code)

    def check_token(request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(
                401, "UNAUTHENTICATED", "Credential was not sent or was of an unsupported type for this API."
            )
        if not hmac.compare_digest(token.strip().encode(), config.token.encode()):
            raise ApiError(403, "PERMISSION_DENIED", "Invalid access token.")

    def lookup(any_run_id: int) -> tuple[Run, TaskRun | None]:
        found = store.find(any_run_id)
        if found is None:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Run {any_run_id} does not exist.")
        return found

    def base_url(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    api = APIRouter(dependencies=[Depends(check_token)])

    @api.post("/jobs/runs/submit")
    async def submit(request: Request) -> dict:
        body = await read_params(request)
        token = idempotency_token(body)
        with store.lock:  # the token check and the new record must be one step
            if token and (existing := store.by_token(token)):
                log.info("idempotency token already used by run %d: returning it", existing.run_id)
                return {"run_id": existing.run_id}
            run = build_run(body, store.new_id, config)
            store.add(run)
        log.info("run %d submitted: %s, %d task(s)", run.run_id, run.run_name, len(run.tasks))
        executor.start(run)
        return {"run_id": run.run_id}

    @api.get("/jobs/runs/get")
    async def get_run(request: Request) -> dict:
        params = await read_params(request)
        run_id = required_int(params, "run_id")
        offset = as_int(params.get("page_token") or 0, "page_token")
        with store.lock:
            run, task = lookup(run_id)
            if task is not None:
                return render.task_as_run_json(run, task, base_url(request))
            return render.run_json(run, base_url(request), offset, as_bool(params.get("include_history")))

    @api.get("/jobs/runs/get-output")
    async def get_output(request: Request) -> dict:
        run_id = required_int(await read_params(request), "run_id")
        with store.lock:
            run, task = lookup(run_id)
            if task is None:
                if len(run.tasks) != 1:
                    raise ApiError(
                        400,
                        "INVALID_PARAMETER_VALUE",
                        "Retrieving the output of runs with multiple tasks is not supported. "
                        "Please retrieve the output of each individual task run instead.",
                    )
                task = run.tasks[0]
            out: dict[str, Any] = {"metadata": render.task_as_run_json(run, task, base_url(request))}
            if task.state.result_state == "FAILED":
                out["error"] = task.error or task.state.state_message
                out["error_trace"] = task.error_trace or out["error"]
        out["logs"], out["logs_truncated"] = read_tail(store.driver_log(task.run_id), OUTPUT_LOG_LIMIT)
        return out

    @api.post("/jobs/runs/cancel")
    async def cancel(request: Request) -> dict:
        run, _task = lookup(required_int(await read_params(request), "run_id"))
        log.info("run %d: cancel requested", run.run_id)
        executor.cancel(run.run_id)  # a task run id cancels its whole run
        return {}

    @api.get("/jobs/runs/list")
    async def list_runs(request: Request) -> dict:
        params = await read_params(request)
        limit = min(max(as_int(params.get("limit") or 25, "limit"), 1), 1000)
        offset = as_int(params.get("page_token") or params.get("offset") or 0, "offset")
        job_id = as_int(params["job_id"], "job_id") if params.get("job_id") else None
        active_only = as_bool(params.get("active_only"))
        completed_only = as_bool(params.get("completed_only"))
        with_tasks = as_bool(params.get("expand_tasks"))
        with store.lock:
            runs = [
                r
                for r in store.all_runs()
                if (job_id is None or r.job_id == job_id)
                and not (active_only and r.state.is_terminal)
                and not (completed_only and not r.state.is_terminal)
            ]
            page = [render.run_json(r, base_url(request)) for r in runs[offset : offset + limit]]
        if not with_tasks:
            for r in page:
                r.pop("tasks")
        out: dict[str, Any] = {"runs": page, "has_more": offset + limit < len(runs)}
        if out["has_more"]:
            out["next_page_token"] = str(offset + limit)
        return out

    @api.get("/clusters/spark-versions")
    async def spark_versions() -> dict:
        spark, delta = config.runtime.packages["pyspark"], config.runtime.packages.get("delta-spark")
        name = f"Local Spark {spark} with Delta {delta}"
        return {"versions": [{"key": f"local-spark-{spark}", "name": name}]}

    for api_version in API_VERSIONS:
        app.include_router(api, prefix=f"/api/{api_version}")

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    async def run_page(run_id: int) -> HTMLResponse:
        found = store.find(run_id)
        if found is None:
            return HTMLResponse(f"<h1>Run {run_id} does not exist</h1>", status_code=404)
        run = found[0]
        logs = {t.run_id: read_tail(store.driver_log(t.run_id), PAGE_LOG_LIMIT)[0] for t in run.tasks}
        with store.lock:
            return HTMLResponse(render.run_page(run, logs))

    return app
