"""Dates and times with no calendar equivalent, as legacy MySQL schemas hold them, on the real MariaDB:
both readers land the same rows (a null value and its source text), and a value a reader cannot convert
fails naming table, column and key."""

from __future__ import annotations

import datetime as dt
import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dev.seed_members import setup_schema
from include.extract.engine import extract_table
from include.extract.readers import UnreadableValue, connectorx_reader, locating
from lakehouse_jobs.contracts import MEMBER, Column, SourceContract, mysql_ddl
from tests.services import mysql_connect

pytestmark = pytest.mark.integration

DB = "extract_dirty_dates_test"
EVENT = SourceContract("event", "event_id", (Column("event_id", "string", nullable=False, max_length=10),
                                             Column("happened_at", "timestamp", nullable=False)))

# (key, value as stored, value as landed): every kind of date MySQL stores without a calendar equivalent
# (2023-02-30 needs ALLOW_INVALID_DATES; the others any sql_mode without NO_ZERO_DATE / NO_ZERO_IN_DATE),
# beside the edges of real dates and a NULL
MEMBER_DATES = [
    ("m1", "0000-00-00", None), ("m2", "2024-00-15", None), ("m3", "2024-02-00", None),
    ("m4", "2023-02-30", None), ("m5", "0000-01-01", None),
    ("m6", "2024-02-29", dt.date(2024, 2, 29)), ("m7", "1000-01-01", dt.date(1000, 1, 1)), ("m8", None, None),
]
EVENT_TIMES = [
    ("e1", "0000-00-00 00:00:00.000000", None), ("e2", "2024-02-30 10:00:00.500000", None),
    ("e3", "2024-02-00 10:00:00.000000", None),
    ("e4", "2024-01-15 10:00:00.123456", dt.datetime(2024, 1, 15, 10, 0, 0, 123456)),
]


@pytest.fixture
def dirty_source(mysql_env, mysql_root):
    """A member table with the dates above and an event table with the times above (sql_mode relaxed)."""
    cur = mysql_root.cursor()
    cur.execute(f"DROP DATABASE IF EXISTS {DB}")
    setup_schema(mysql_root, DB, mysql_env["MYSQL_EXTRACT_USER"], mysql_env["MYSQL_EXTRACT_PASSWORD"])
    cur.execute(mysql_ddl(EVENT))
    cur.execute(f"GRANT SELECT ON `{DB}`.`event` TO %s@'%%'", (mysql_env["MYSQL_EXTRACT_USER"],))
    cur.execute("SET SESSION sql_mode = 'ALLOW_INVALID_DATES'")
    cur.executemany("INSERT INTO member (member_id, registration_date) VALUES (%s, %s)",
                    [(k, v) for k, v, _ in MEMBER_DATES])
    cur.executemany("INSERT INTO event VALUES (%s, %s)", [(k, v) for k, v, _ in EVENT_TIMES])
    cur.execute("SET SESSION sql_mode = DEFAULT")
    # the server stored exactly these values, so the test proves something about each of them
    cur.execute("SELECT member_id, CAST(registration_date AS CHAR) FROM member ORDER BY member_id")
    assert cur.fetchall() == tuple((k, v) for k, v, _ in MEMBER_DATES)
    cur.execute("SELECT event_id, CAST(happened_at AS CHAR) FROM event ORDER BY event_id")
    assert cur.fetchall() == tuple((k, v) for k, v, _ in EVENT_TIMES)
    conn = mysql_connect(mysql_env, mysql_env["MYSQL_EXTRACT_USER"], mysql_env["MYSQL_EXTRACT_PASSWORD"], DB)
    url = (f"mysql://{mysql_env['MYSQL_EXTRACT_USER']}:{mysql_env['MYSQL_EXTRACT_PASSWORD']}"
           f"@{mysql_env['MYSQL_HOST']}:{mysql_env['MYSQL_PORT']}/{DB}")
    yield conn, url
    conn.close()
    cur.execute(f"DROP DATABASE IF EXISTS {DB}")


def landed_rows(s3, manifest) -> list[dict]:
    tables = []
    for f in manifest.files:
        bucket, key = f.path.removeprefix("s3://").split("/", 1)
        tables.append(pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())))
    return pa.concat_tables(tables).sort_by(manifest.schema[0]["name"]).to_pylist()


@pytest.mark.parametrize("reader", ["connectorx", "mysqlclient"])
def test_dates_without_calendar_equivalent_land_null_with_their_text(dirty_source, s3, scratch_bucket, reader):
    conn, url = dirty_source
    for contract, values in [(MEMBER, MEMBER_DATES), (EVENT, EVENT_TIMES)]:
        manifest = extract_table(conn, s3, contract=contract, bucket=scratch_bucket, batch_id="b", run_id="t",
                                 reader=connectorx_reader(url) if reader == "connectorx" else None)
        typed = next(c.name for c in contract.columns if c.type != "string")
        rows = [(r[contract.key], r[typed], r[f"{typed}_raw"]) for r in landed_rows(s3, manifest)]
        # the raw text is there exactly when the typed value is not: null for real values and NULL
        assert rows == [(k, landed, stored if stored and landed is None else None) for k, stored, landed in values]


def test_a_value_the_reader_cannot_convert_names_table_column_and_key(dirty_source, capfd):
    """Read without the extract's date rule, ConnectorX panics in Rust on m1's zero date."""
    _, url = dirty_source
    read = locating(connectorx_reader(url), "member", "member_id")
    schema = pa.schema([("member_id", pa.string()), ("first_name", pa.string()), ("registration_date", pa.date32())])
    query = "SELECT member_id, first_name, registration_date FROM member WHERE member_id <> 'm1'"
    with pytest.raises(UnreadableValue) as err:
        list(read(query, schema))
    assert str(err.value).startswith(
        "table 'member': the reader cannot convert column 'registration_date' (date32[day]) of the row "
        "member_id = 'm2': ")  # m2 is the first row after m1 in key order; all of m2 to m5 are unreadable
    assert err.value.__cause__ is None and err.value.__suppress_context__
    assert "panicked" in capfd.readouterr().err  # the panic happened; it is not what the task fails with

    with pytest.raises(RuntimeError) as err:  # not a value's fault: the reader's own error, untouched
        list(read("SELECT member_id FROM no_such_table", pa.schema([("member_id", pa.string())])))
    assert type(err.value) is not UnreadableValue and "no_such_table" in str(err.value)


def test_a_failure_of_every_row_is_the_readers_own():
    """An error no single value causes (here every row fails) is raised as the reader raised it."""
    def broken(query: str, schema: pa.Schema):
        if query.startswith(("SELECT COUNT(*)", "SELECT CAST(")):  # the row count, the key of a row
            yield pa.record_batch([pa.array([3] if "COUNT" in query else ["m1"], schema.field(0).type)],
                                  schema=schema)
        else:
            raise pa.ArrowInvalid("schema mismatch")

    schema = pa.schema([("member_id", pa.string()), ("registration_date", pa.date32())])
    with pytest.raises(pa.ArrowInvalid, match="schema mismatch"):
        list(locating(broken, "member", "member_id")("SELECT member_id, registration_date FROM member", schema))
