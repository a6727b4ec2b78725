"""A server's statement-time limit (issue 23 item 4) on the real MariaDB: the extract lifts it for its own
sessions, on both readers, and an error the server sends is never taken for a bad value.

The source table is a view that sleeps per row, so reading its five rows takes ~1 s whatever the machine;
the extract user's limit (MariaDB's per-user MAX_STATEMENT_TIME) is a quarter of that.
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from include.extract.engine import extract_table
from include.extract.readers import (
    SourceError,
    connectorx_reader,
    locating,
    statement_time_unlimited,
    stream_record_batches,
)
from lakehouse_jobs.contracts import Column, SourceContract
from tests.services import mysql_connect

pytestmark = pytest.mark.integration

DB = "extract_statement_limits_test"
USER, PASSWORD = "limited_reader", "limited-reader-pw"
EVENT = SourceContract("event", "event_id", (Column("event_id", "string", nullable=False, max_length=10),))
SLEEP_PER_ROW_S, ROWS, LIMIT_S = 0.2, 5, 0.25


@pytest.fixture
def limited_source(mysql_env, mysql_root):
    """A user whose statements the server stops after LIMIT_S, and a view that takes ~1 s to read."""
    cur = mysql_root.cursor()
    cur.execute(f"DROP DATABASE IF EXISTS {DB}")
    cur.execute(f"CREATE DATABASE {DB}")
    cur.execute(f"CREATE TABLE {DB}.event_rows (event_id VARCHAR(10) NOT NULL PRIMARY KEY)")
    cur.executemany(f"INSERT INTO {DB}.event_rows VALUES (%s)", [(f"e{i}",) for i in range(ROWS)])
    cur.execute(f"CREATE VIEW {DB}.event AS SELECT event_id FROM {DB}.event_rows WHERE SLEEP({SLEEP_PER_ROW_S}) = 0")
    cur.execute(f"DROP USER IF EXISTS '{USER}'@'%'")
    cur.execute(f"CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}' WITH MAX_STATEMENT_TIME {LIMIT_S}")
    cur.execute(f"GRANT SELECT ON {DB}.* TO '{USER}'@'%'")
    conn = mysql_connect(mysql_env, USER, PASSWORD, DB)
    url = f"mysql://{USER}:{PASSWORD}@{mysql_env['MYSQL_HOST']}:{mysql_env['MYSQL_PORT']}/{DB}"
    yield conn, url
    conn.close()
    cur.execute(f"DROP USER IF EXISTS '{USER}'@'%'")
    cur.execute(f"DROP DATABASE IF EXISTS {DB}")


def test_the_limit_is_real(limited_source):
    """Without the extract's session statement the server stops the read: the fixture proves something."""
    conn, url = limited_source
    with pytest.raises(Exception, match="max_statement_time exceeded"):
        list(stream_record_batches(conn, "SELECT event_id FROM event", pa.schema([("event_id", pa.string())])))


@pytest.mark.parametrize("reader", ["connectorx", "mysqlclient"])
def test_the_extract_lifts_the_limit_for_its_own_sessions(limited_source, s3, scratch_bucket, reader):
    conn, url = limited_source
    session_sql = [statement_time_unlimited(conn.get_server_info())]
    manifest = extract_table(conn, s3, contract=EVENT, bucket=scratch_bucket, batch_id="b", run_id="t",
                             reader=connectorx_reader(url, session_sql=session_sql) if reader == "connectorx"
                             else None)
    assert manifest.row_count == ROWS


def test_a_server_error_is_reported_as_such_without_probing_for_a_bad_value(limited_source):
    """ConnectorX reports the server's error as a Rust panic, as it does a value it cannot convert; the
    extract names the server's error at once instead of bisecting the table (~log2(rows) more reads)."""
    _, url = limited_source
    reads = []

    def counted(query, schema):
        reads.append(query)
        return connectorx_reader(url)(query, schema)

    with pytest.raises(SourceError, match=r"table 'event': the read from MySQL failed: .*ERROR 1969"):
        list(locating(counted, "event", "event_id")("SELECT event_id FROM event",
                                                   pa.schema([("event_id", pa.string())])))
    assert len(reads) == 1


@pytest.mark.parametrize(("version", "statement"), [
    ("10.11.19-MariaDB-0+deb12u1", "SET SESSION max_statement_time = 0"),
    ("11.4.2-MariaDB", "SET SESSION max_statement_time = 0"),
    ("8.4.3", "SET SESSION max_execution_time = 0"),
    ("8.0.36-google", "SET SESSION max_execution_time = 0"),
])
def test_each_server_gets_its_own_form(version, statement):
    assert statement_time_unlimited(version) == statement
