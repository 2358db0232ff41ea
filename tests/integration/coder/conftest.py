"""Fixtures for the Coder module tests: throwaway REAL Coder servers on loopback.

Each throwaway server is the testbed's `coder` binary on a free 127.0.0.1 port with a database of its own in the
testbed's PostgreSQL (created and dropped here), so tests start from an empty Coder and never disturb the shared
server of testbed/svc_30_coder.sh that the playbooks and other engineers use.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests" / "unit" / "coder"))
from coder_mu import load

CoderClient = load("coder_client").CoderClient
STATE = Path(os.environ.get("CODERSTACK_TESTBED_DIR", REPO / ".testbed"))
ADMIN = {
    "username": "admin",
    "email": "admin@it.example.com",
    "password": "It-Admin-Pass-8b1d6f0c2e",
    "name": "IT Admin",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2) as r:  # noqa: S310 - loopback http URL
            return r.status == 200
    except OSError:
        return False


class CoderServer:
    """A throwaway Coder server with its own database."""

    def __init__(self, tmp: Path):
        self.binary = STATE / "bin" / "coder"
        self.pg_url = (STATE / "postgres-url").read_text().strip()
        self.db = "coder_it_" + uuid.uuid4().hex[:8]
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = tmp / self.db
        self.proc: subprocess.Popen | None = None

    def _admin_sql(self, sql: str) -> None:
        import psycopg2

        conn = psycopg2.connect(self.pg_url)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    def start(self) -> CoderServer:
        self._admin_sql(f"CREATE DATABASE {self.db}")
        self.dir.mkdir(parents=True)
        env = {
            "PATH": f"{STATE / 'bin'}:/usr/bin:/bin",
            "HOME": str(self.dir),
            "CODER_PG_CONNECTION_URL": self.pg_url.replace("/coder?", f"/{self.db}?"),
            "CODER_HTTP_ADDRESS": f"127.0.0.1:{self.port}",
            "CODER_ACCESS_URL": self.url,
            "CODER_TELEMETRY_ENABLE": "false",
            "CODER_UPDATE_CHECK": "false",
            "CODER_DERP_SERVER_STUN_ADDRESSES": "disable",
            "CODER_OAUTH2_GITHUB_DEFAULT_PROVIDER_ENABLE": "false",
            "CODER_CACHE_DIRECTORY": str(self.dir / "cache"),
            "CODER_CONFIG_DIR": str(self.dir / "config"),
            "CODER_PROVISIONER_DAEMONS": "0",  # no Terraform here: these tests only use the users/tokens API
        }
        self.log = open(self.dir / "coder.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [str(self.binary), "server"], env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 120
        while not _healthy(self.url):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = (self.dir / "coder.log").read_text()[-3000:]
                raise RuntimeError(f"throwaway Coder server did not start:\n{tail}")
            time.sleep(0.2)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if getattr(self, "log", None):
            self.log.close()
        try:
            self._admin_sql(f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def client(self, token: str | None = None) -> CoderClient:
        return CoderClient(self.url, token=token)


def need(condition: bool, reason: str) -> None:
    """Skip on a developer machine, fail in CI (same rule as tests/conftest.py)."""
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"required part missing in CI: {reason}")
    pytest.skip(reason)


def _need_parts() -> None:
    need((STATE / "bin" / "coder").exists(), "no Coder binary (bash testbed/build_coder.sh)")
    need((STATE / "postgres-url").exists(), "testbed PostgreSQL is not running (bash testbed/svc_20_postgres.sh start)")
    try:
        import psycopg2

        psycopg2.connect((STATE / "postgres-url").read_text().strip(), connect_timeout=3).close()
    except Exception as e:  # noqa: BLE001 - any failure means the part is missing
        need(False, f"testbed PostgreSQL does not answer: {e}")


@pytest.fixture()
def fresh_coder(tmp_path_factory):
    """An empty Coder (no first user yet), for this test only."""
    _need_parts()
    srv = CoderServer(tmp_path_factory.mktemp("coder")).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def coder_server(tmp_path_factory):
    """One throwaway Coder for the session, with its first user ADMIN."""
    _need_parts()
    srv = CoderServer(tmp_path_factory.mktemp("coder")).start()
    c = srv.client()
    c.create_first_user(ADMIN["username"], ADMIN["email"], ADMIN["password"], ADMIN["name"])
    session = c.login(ADMIN["email"], ADMIN["password"])
    srv.admin_token = CoderClient(srv.url, token=session).create_token("me", "it-admin", 86400)
    yield srv
    srv.stop()


@pytest.fixture()
def admin_client(coder_server) -> CoderClient:
    return coder_server.client(coder_server.admin_token)


@pytest.fixture()
def namespace(kube):
    """A throwaway Kubernetes namespace on the testbed API server for the Secrets."""
    from kubernetes import client

    name = "coder-it-" + uuid.uuid4().hex[:6]
    core = client.CoreV1Api(kube)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def run_module(module: str, args: dict, check: bool = False, diff: bool = True, testbed=None) -> dict:
    """Run one of our modules with `ansible localhost -m` and return its JSON result."""
    cmd = [
        str(REPO / ".venv/bin/ansible"),
        "localhost",
        "-i",
        "inventories/testbed",
        "-m",
        module,
        "-a",
        json.dumps(args),
    ]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
        ANSIBLE_NOCOLOR="1",
    )
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    try:
        out = json.loads(proc.stdout[proc.stdout.index("{") :])
    except ValueError as e:
        raise AssertionError(f"no JSON from ansible ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}") from e
    return out["plays"][0]["tasks"][0]["hosts"]["localhost"]


@pytest.fixture()
def module():
    return run_module
