"""The extract as the DAG and the command line run it: connections resolved by Airflow's hooks.

Hooks read connections from AIRFLOW_CONN_* variables (or a secrets backend) with or without a running
Airflow, so `python -m include.extract` behaves exactly like the task.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from include import layout, settings
from include.extract.change_set import StateLocation
from include.extract.engine import extract_table
from include.extract.readers import Reader, connectorx_reader, statement_time_unlimited
from include.landing.layout import manifest_key
from lakehouse_jobs.contracts import MEMBER, SourceContract

log = logging.getLogger(__name__)


def connectorx_url(conn) -> str:
    """The Airflow connection as a ConnectorX URL (credentials URL-quoted; never logged)."""
    auth = f"{quote(conn.login or '', safe='')}:{quote(conn.password or '', safe='')}@"
    return f"mysql://{auth}{conn.host}:{conn.port or 3306}/{conn.schema}"


def make_reader(hook, server_version: str) -> Reader | None:
    """ConnectorX unless configured otherwise or the connection asks for TLS settings it cannot take
    (None: the extract reads through mysqlclient). Its connections lift the server's statement-time
    limit as the extract's own does (readers.statement_time_unlimited, for `server_version`), and a read
    that stalls for EXTRACT_STALL_SECONDS is stopped (readers.ReadStalled).

    Falling back is explicit and logged: a TLS connection is never read over plaintext.
    """
    conn = hook.get_connection(hook.mysql_conn_id)
    if settings.EXTRACT_READER == "mysqlclient":
        return None
    tls = {k for k in conn.extra_dejson if k.startswith("ssl")}
    if tls:
        log.info("connection %s sets %s: reading through mysqlclient, which applies them", conn.conn_id, sorted(tls))
        return None
    return connectorx_reader(connectorx_url(conn), session_sql=[statement_time_unlimited(server_version)],
                             stall_seconds=settings.EXTRACT_STALL_SECONDS)


def extract_member_batch(batch_id: str, run_id: str) -> dict:
    return extract_batch(MEMBER, batch_id, run_id)


def extract_batch(contract: SourceContract, batch_id: str, run_id: str) -> dict:
    """Extract one source table (its contract) to a published batch in the landing bucket; the batch's
    id, manifest key and row count (the tasks' XCom)."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.providers.mysql.hooks.mysql import MySqlHook

    hook = MySqlHook(mysql_conn_id=settings.MYSQL_CONN_ID)
    conn = hook.get_conn()
    try:
        manifest = extract_table(
            conn, S3Hook(aws_conn_id=settings.AWS_CONN_ID).get_conn(), contract=contract,
            reader=make_reader(hook, conn.get_server_info()),
            bucket=settings.LANDING_BUCKET, batch_id=batch_id, run_id=run_id,
            sse=settings.S3_SSE, sse_kms_key_id=settings.S3_SSE_KMS_KEY_ID,
            rows_per_file=settings.EXTRACT_ROWS_PER_FILE,
            # the setting names member columns (e.g. country); other tables are small and unpartitioned
            partition_cols=settings.EXTRACT_PARTITION_COLS if contract is MEMBER else (),
            # the member job keeps a change state: the extract lands what changed against it beside the snapshot
            change_state=StateLocation(settings.LAKEHOUSE_BUCKET, layout.change_state_key(contract.table),
                                       layout.delta_table_key(contract.table) + "/") if contract is MEMBER else None,
        )
    finally:
        conn.close()
    change_set = manifest.change_set
    return {
        "batch_id": batch_id,
        "manifest_key": manifest_key(contract.table, batch_id),
        "row_count": manifest.row_count,
        # against the job's change state: rows by kind, or None when the job must compare the whole snapshot
        "changes": change_set and change_set.counts,
        "no_changes": bool(change_set and change_set.is_empty),
    }
