"""Command line: ``python -m dev.databricks_runner serve --host 127.0.0.1 --port 8765 --state-dir DIR``.

Environment: DATABRICKS_TOKEN (required: the only bearer token accepted), RUNNER_MAX_CONCURRENT_RUNS
(default 1), RUNNER_SECRETS_FILE (the secret store, default ``<state-dir>/secrets.json``), and the S3_*
variables that dev/local_spark.py turns into S3A settings. Logs go to stdout.

The secret store, like the Databricks CLI's ``databricks secrets`` (the value comes from stdin, never from
argv, which any local user can read with ``ps``)::

    printf '%s' "$VALUE" | python -m dev.databricks_runner secrets put-secret --state-dir DIR <scope> <key>
    python -m dev.databricks_runner secrets list-secrets --state-dir DIR <scope>
"""

from __future__ import annotations

import argparse
import getpass
import ipaddress
import logging
import os
import sys
from pathlib import Path

from dev.databricks_runner.config import ConfigError, RunnerConfig
from dev.databricks_runner.secrets import (
    DEFAULT_SECRETS_FILE,
    SECRETS_FILE_ENV,
    SecretError,
    SecretStore,
    store_path,
)

log = logging.getLogger("dev.databricks_runner")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _secrets(args: argparse.Namespace) -> int:
    """``secrets put-secret`` / ``secrets list-secrets``. Messages go to stderr and never hold a value."""
    if args.state_dir is None and not os.environ.get(SECRETS_FILE_ENV, "").strip():
        print(f"secrets: give --state-dir (the runner's) or set {SECRETS_FILE_ENV}", file=sys.stderr)
        return 2
    store = SecretStore(store_path(args.state_dir or Path("."), os.environ))
    try:
        if args.verb == "list-secrets":
            for key in store.keys(args.scope):
                print(key)
            return 0
        if sys.stdin.isatty():  # typed by hand: do not echo it
            value = getpass.getpass(f"value of {args.scope}/{args.key} (not echoed): ")
        else:  # piped: taken as it comes, trailing newline included, as the Databricks CLI does
            try:
                value = sys.stdin.buffer.read().decode("utf-8")
            except UnicodeDecodeError:
                print("secrets: the value on stdin is not UTF-8 text", file=sys.stderr)
                return 2
        store.put(args.scope, args.key, value)
    except SecretError as e:
        print(f"secrets: {e}", file=sys.stderr)
        return 2
    print(f"secrets: {args.scope}/{args.key} stored in {store.path}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dev.databricks_runner",
        description="A local stand-in for the Databricks Jobs API: runs Python tasks with spark-submit.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the Jobs API slice and run submitted runs")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--state-dir", type=Path, required=True, help="run records, driver logs, environments")
    serve.add_argument(
        "--workspace-dir", type=Path, default=None,
        help="the workspace file system: /Workspace/..., /Volumes/..., dbfs:/... map into it "
        "(default: .local/workspace of this checkout)",
    )  # fmt: skip
    serve.add_argument(
        "--runtime-python", type=Path, default=None,
        help="the Python of the Databricks runtime environment every task builds on "
        "(default: .local/databricks-runtime/bin/python of this checkout)",
    )  # fmt: skip
    serve.add_argument("--spark-master", default="local[2]", help="spark-submit --master (default: local[2])")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])

    secrets_cmd = commands.add_parser("secrets", help="the runner's secret store (as `databricks secrets`)")
    secrets_verbs = secrets_cmd.add_subparsers(dest="verb", required=True)
    put = secrets_verbs.add_parser(
        "put-secret", help="store a secret; its value is read from stdin (never give it as an argument)"
    )
    put.add_argument("scope")
    put.add_argument("key")
    listing = secrets_verbs.add_parser("list-secrets", help="the keys of a scope (never their values)")
    listing.add_argument("scope")
    for verb in (put, listing):
        verb.add_argument(
            "--state-dir", type=Path, default=None,
            help=f"the runner's state dir: the store is its {DEFAULT_SECRETS_FILE} unless {SECRETS_FILE_ENV} is set",
        )  # fmt: skip
    args = parser.parse_args(argv)
    if args.command == "secrets":
        return _secrets(args)

    logging.basicConfig(
        stream=sys.stdout,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = RunnerConfig.load(
            state_dir=args.state_dir,
            workspace_dir=args.workspace_dir,
            runtime_python=args.runtime_python,
            spark_master=args.spark_master,
        )
    except ConfigError as e:
        log.error("refusing to start: %s", e)
        return 2
    if not _is_loopback(args.host):
        log.warning("listening on %s: run pages (driver logs) need no token; keep it on loopback", args.host)

    # imported late so a configuration error is reported without paying for FastAPI's import
    import uvicorn

    from dev.databricks_runner.app import create_app
    from dev.databricks_runner.store import StateDirBusy

    try:
        app = create_app(config)
    except StateDirBusy as e:
        log.error("refusing to start: %s", e)
        return 2
    log.info(
        "Jobs API on http://%s:%d/api/2.1|2.2, state in %s, workspace in %s, runtime %s, "
        "%d run(s) at a time on %s",
        args.host, args.port, config.state_dir, config.workspace_dir, config.runtime.python,
        config.max_concurrent_runs, config.spark_master,
    )  # fmt: skip
    # log_config=None: uvicorn's loggers propagate to the stdout handler configured above
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
