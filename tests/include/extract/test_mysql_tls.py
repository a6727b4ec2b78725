"""TLS to MySQL is configured on the Airflow connection and never silently falls back to plaintext."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import MySQLdb
import pytest
from airflow.providers.mysql.hooks.mysql import MySqlHook

from include.extract.run import make_reader

pytestmark = pytest.mark.integration

CA = Path(__file__).resolve().parents[3] / ".local" / "tls" / "ca.pem"


def hook_with(monkeypatch, mysql_env, extra: dict) -> MySqlHook:
    # no default database: the end-to-end tests drop and re-create the test profile's meanwhile
    conn = {"conn_type": "mysql", "host": "127.0.0.1", "port": int(mysql_env["MYSQL_PORT"]),
            "schema": "", "login": mysql_env["MYSQL_EXTRACT_USER"],
            "password": mysql_env["MYSQL_EXTRACT_PASSWORD"], "extra": {"charset": "utf8mb4", **extra}}
    monkeypatch.setenv("AIRFLOW_CONN_MYSQL_TLS_TEST", json.dumps(conn))
    return MySqlHook(mysql_conn_id="mysql_tls_test")


def cipher(hook: MySqlHook) -> str:
    conn = hook.get_conn()
    try:
        cur = conn.cursor()
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        return cur.fetchone()[1]
    finally:
        conn.close()


@pytest.fixture
def ca(mysql_env) -> str:
    if not CA.exists():
        pytest.fail(f"{CA} is missing: `dev/stack.sh start` creates it with the MariaDB server certificate")
    return str(CA)


def test_required_mode_encrypts(monkeypatch, mysql_env, ca):
    assert cipher(hook_with(monkeypatch, mysql_env, {"ssl_mode": "REQUIRED"})).startswith("TLS_")


def test_verify_identity_checks_the_server_certificate(monkeypatch, mysql_env, ca, tmp_path):
    good = hook_with(monkeypatch, mysql_env, {"ssl_mode": "VERIFY_IDENTITY", "ssl": {"ca": ca}})
    assert cipher(good).startswith("TLS_")

    other_ca = tmp_path / "other-ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other",
                    "-keyout", str(tmp_path / "k.pem"), "-out", str(other_ca)], check=True, capture_output=True)
    bad = hook_with(monkeypatch, mysql_env, {"ssl_mode": "VERIFY_IDENTITY", "ssl": {"ca": str(other_ca)}})
    with pytest.raises(MySQLdb.OperationalError):
        cipher(bad)


def test_plain_connection_is_not_encrypted(monkeypatch, mysql_env, ca):
    """Shows the check above means something: without ssl options the session has no cipher."""
    assert cipher(hook_with(monkeypatch, mysql_env, {})) == ""


def test_tls_connections_read_through_mysqlclient(monkeypatch, mysql_env, ca):
    assert make_reader(hook_with(monkeypatch, mysql_env, {"ssl_mode": "REQUIRED"}), "10.11.19-MariaDB") is None
    assert make_reader(hook_with(monkeypatch, mysql_env, {}), "10.11.19-MariaDB") is not None
