"""The fault-injection suite's tools: Toxiproxy (a TCP proxy that drops, stalls, cuts and slows connections
on command, built by dev/stack.sh install) between the code under test and the real MariaDB and MinIO.

The proxy server runs on loopback for the test session (started here unless one already answers on
TOXIPROXY_PORT, default 8474); each test gets proxies of its own, removed afterwards. Its HTTP API is small
enough to call directly: https://github.com/Shopify/toxiproxy#http-api.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest
import requests


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Proxy:
    """One proxy: clients connect to `port` on loopback, the proxy connects them to its upstream."""

    api: str
    name: str
    port: int

    def toxic(self, kind: str, stream: str = "downstream", **attributes) -> str:
        """Add a toxic (latency, timeout, reset_peer, limit_data, bandwidth, ...); its name, to remove it."""
        name = f"{kind}_{stream}"
        r = requests.post(f"{self.api}/proxies/{self.name}/toxics", timeout=10,
                          json={"name": name, "type": kind, "stream": stream, "toxicity": 1.0,
                                "attributes": attributes})
        r.raise_for_status()
        return name

    def remove(self, toxic: str) -> None:
        requests.delete(f"{self.api}/proxies/{self.name}/toxics/{toxic}", timeout=10).raise_for_status()

    def enabled(self, on: bool) -> None:
        """Down (every connection closed, none accepted) or up again."""
        requests.post(f"{self.api}/proxies/{self.name}", json={"enabled": on}, timeout=10).raise_for_status()


class Toxiproxy:
    def __init__(self, api: str):
        self.api = api

    @contextlib.contextmanager
    def proxy(self, name: str, upstream: str) -> Iterator[Proxy]:
        port = _free_port()
        requests.delete(f"{self.api}/proxies/{name}", timeout=10)  # one an interrupted test left
        r = requests.post(f"{self.api}/proxies", timeout=10, json={
            "name": name, "listen": f"127.0.0.1:{port}", "upstream": upstream, "enabled": True})
        r.raise_for_status()
        try:
            yield Proxy(self.api, name, port)
        finally:
            requests.delete(f"{self.api}/proxies/{name}", timeout=10)


@pytest.fixture(scope="session")
def toxiproxy() -> Iterator[Toxiproxy]:
    port = int(os.environ.get("TOXIPROXY_PORT", "8474"))
    api = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return requests.get(f"{api}/version", timeout=2).ok
        except requests.ConnectionError:
            return False

    server = None
    if not up():
        binary = os.environ.get("TOXIPROXY_BIN", "")
        if not os.access(binary, os.X_OK):
            pytest.fail(f"Toxiproxy is not installed (TOXIPROXY_BIN={binary!r}): run `dev/stack.sh install` "
                        "(make test does)")
        server = subprocess.Popen([binary, "-host", "127.0.0.1", "-port", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not up():
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Toxiproxy did not start on 127.0.0.1:{port}")
            time.sleep(0.2)
    yield Toxiproxy(api)
    if server:
        server.terminate()
        server.wait(10)


@pytest.fixture
def mysql_proxy(toxiproxy, mysql_env) -> Iterator[Proxy]:
    with toxiproxy.proxy("mysql", f"{mysql_env['MYSQL_HOST']}:{mysql_env['MYSQL_PORT']}") as proxy:
        yield proxy


@pytest.fixture
def s3_proxy(toxiproxy, s3_env) -> Iterator[Proxy]:
    with toxiproxy.proxy("s3", s3_env["S3_ENDPOINT_URL"].split("//", 1)[1]) as proxy:
        yield proxy


def s3_through(proxy: Proxy, s3_env: dict[str, str]):
    """An S3 client whose every request goes through `proxy`, retrying as the extract's does (botocore's
    standard mode, 3 attempts) but giving up on a dead connection in seconds, not minutes."""
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{proxy.port}",
                        aws_access_key_id=s3_env["S3_ACCESS_KEY_ID"],
                        aws_secret_access_key=s3_env["S3_SECRET_ACCESS_KEY"],
                        region_name=os.environ.get("S3_REGION", "us-east-1"),
                        config=Config(retries={"mode": "standard", "max_attempts": 3},
                                      connect_timeout=2, read_timeout=5))
